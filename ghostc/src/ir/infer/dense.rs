//! Gemm and MatMul: matrix products, with Gemm's unidirectional C and MatMul's numpy batch
//! broadcasting.

use super::{
    broadcast_shapes, broadcasts_to, expect_float, expect_rank, expect_same_dtype, invalid, one,
    InferError, InputFact, Outputs,
};
use crate::ir::{fmt_shape, Gemm};

pub(super) fn gemm(gemm: &Gemm, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1])?;
    expect_same_dtype(inputs, 0, 1)?;
    let a = expect_rank(inputs, 0, 2)?;
    let b = expect_rank(inputs, 1, 2)?;
    let (m, k) = if gemm.trans_a {
        (a[1], a[0])
    } else {
        (a[0], a[1])
    };
    let (kb, n) = if gemm.trans_b {
        (b[1], b[0])
    } else {
        (b[0], b[1])
    };
    if k != kb {
        return Err(invalid(
            "gemm",
            format!(
                "inner dims differ: A [{}] gives K={k}, B [{}] gives K={kb}",
                fmt_shape(a),
                fmt_shape(b)
            ),
        ));
    }
    if inputs.len() == 3 {
        expect_float(inputs, &[2])?;
        expect_same_dtype(inputs, 0, 2)?;
        let c = &inputs[2].ty.shape;
        if !broadcasts_to(c, &[m, n]) {
            return Err(InferError::Broadcast {
                a: fmt_shape(c),
                b: fmt_shape(&[m, n]),
            });
        }
    }
    one(inputs[0].ty.dtype, vec![m, n])
}

pub(super) fn matmul(inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1])?;
    expect_same_dtype(inputs, 0, 1)?;
    one(
        inputs[0].ty.dtype,
        matmul_shape(&inputs[0].ty.shape, &inputs[1].ty.shape)?,
    )
}

/// numpy `matmul` output shape: 1-D operands are promoted (and the added dim dropped again),
/// leading batch dims broadcast.
pub fn matmul_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, InferError> {
    if a.is_empty() || b.is_empty() {
        return Err(invalid("matmul", "operands must have rank >= 1"));
    }
    let a2: Vec<usize> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<usize> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != kb {
        return Err(invalid(
            "matmul",
            format!("[{}] @ [{}]: inner dims differ", fmt_shape(a), fmt_shape(b)),
        ));
    }
    let mut out = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{f32t, run, shape_of};
    use super::*;
    use crate::ir::Op;

    #[test]
    fn gemm_and_matmul() {
        let g = Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        };
        let op = Op::Gemm(g.clone());
        assert_eq!(
            shape_of(&op, &[f32t(&[2, 960]), f32t(&[1000, 960]), f32t(&[1000])]),
            [2, 1000]
        );
        assert_eq!(
            shape_of(&op, &[f32t(&[2, 960]), f32t(&[1000, 960]), f32t(&[2, 1])]),
            [2, 1000]
        );
        // C is broadcast only towards [M, N].
        assert!(run(
            &op,
            &[f32t(&[2, 960]), f32t(&[1000, 960]), f32t(&[3, 1000])]
        )
        .is_err());
        assert!(run(&op, &[f32t(&[2, 960]), f32t(&[1000, 961])]).is_err());
        assert_eq!(matmul_shape(&[3], &[3]).unwrap(), Vec::<usize>::new());
        assert_eq!(matmul_shape(&[3], &[3, 4]).unwrap(), [4]);
        assert_eq!(matmul_shape(&[2, 3], &[3]).unwrap(), [2]);
        assert_eq!(
            matmul_shape(&[5, 1, 2, 3], &[4, 3, 6]).unwrap(),
            [5, 4, 2, 6]
        );
        assert!(matmul_shape(&[2, 3], &[4, 6]).is_err());
    }
}
