//! Gemm and MatMul: direct loops, f32 accumulation.

use super::elementwise::broadcast_index;
use super::{float_tensor, floats, Result};
use crate::ir::{Gemm, Tensor, TensorType};

/// `alpha * op(A) @ op(B) + beta * C`, C broadcast unidirectionally to `[M, N]`.
pub(super) fn gemm(
    g: &Gemm,
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    out: &TensorType,
) -> Result<Tensor> {
    let (m, n) = (out.shape[0], out.shape[1]);
    let ash = a.shape();
    let k = if g.trans_a { ash[0] } else { ash[1] };
    let (av, bv) = (floats(a)?, floats(b)?);
    let a_at = |i: usize, p: usize| {
        if g.trans_a {
            av[p * m + i]
        } else {
            av[i * k + p]
        }
    };
    let b_at = |p: usize, j: usize| {
        if g.trans_b {
            bv[j * k + p]
        } else {
            bv[p * n + j]
        }
    };
    let mut y = vec![0.0f32; m * n];
    for i in 0..m {
        for p in 0..k {
            let a_ip = a_at(i, p);
            for j in 0..n {
                y[i * n + j] += a_ip * b_at(p, j);
            }
        }
    }
    y.iter_mut().for_each(|v| *v *= g.alpha);
    if let Some(c) = c {
        let cv = floats(c)?;
        for (v, &ci) in y.iter_mut().zip(&broadcast_index(c.shape(), &[m, n])) {
            *v += g.beta * cv[ci];
        }
    }
    Ok(float_tensor(out.clone(), y))
}

/// numpy `matmul`: 1-D operands promoted to matrices, leading batch dims broadcast.
pub(super) fn matmul(a: &Tensor, b: &Tensor, out: &TensorType) -> Result<Tensor> {
    let a_shape: Vec<usize> = if a.shape().len() == 1 {
        vec![1, a.shape()[0]]
    } else {
        a.shape().to_vec()
    };
    let b_shape: Vec<usize> = if b.shape().len() == 1 {
        vec![b.shape()[0], 1]
    } else {
        b.shape().to_vec()
    };
    let (m, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let n = b_shape[b_shape.len() - 1];
    let a_batch = &a_shape[..a_shape.len() - 2];
    let b_batch = &b_shape[..b_shape.len() - 2];
    let batch_shape = crate::ir::infer::broadcast_shapes(a_batch, b_batch)?;
    let a_index = broadcast_index(a_batch, &batch_shape);
    let b_index = broadcast_index(b_batch, &batch_shape);
    let (av, bv) = (floats(a)?, floats(b)?);
    let mut y = vec![0.0f32; a_index.len() * m * n];
    for (batch, (&ai, &bi)) in a_index.iter().zip(&b_index).enumerate() {
        let a_mat = &av[ai * m * k..][..m * k];
        let b_mat = &bv[bi * k * n..][..k * n];
        let y_mat = &mut y[batch * m * n..][..m * n];
        for i in 0..m {
            for p in 0..k {
                let a_ip = a_mat[i * k + p];
                for j in 0..n {
                    y_mat[i * n + j] += a_ip * b_mat[p * n + j];
                }
            }
        }
    }
    Ok(float_tensor(out.clone(), y))
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::{eval1, t};
    use crate::ir::{Gemm, Op};

    fn seq(n: usize) -> Vec<f32> {
        (1..=n).map(|v| v as f32).collect()
    }

    #[test]
    fn gemm_transposes_and_bias() {
        let a = t(&[2, 3], &seq(6));
        let b_t = t(&[2, 3], &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        let g = |trans_a, trans_b, beta| {
            Op::Gemm(Gemm {
                alpha: 2.0,
                beta,
                trans_a,
                trans_b,
            })
        };
        // A @ B^T: rows [1+3, 2], [4+6, 5]; times alpha 2, plus 10 * C broadcast over rows.
        let y = eval1(g(false, true, 10.0), &[&a, &b_t, &t(&[2], &[1.0, -1.0])]);
        assert_eq!(y.as_f32().unwrap(), [18.0, -6.0, 30.0, 0.0]);
        // A^T ([3, 2]) @ [2, 1].
        let y = eval1(g(true, false, 0.0), &[&a, &t(&[2, 1], &[1.0, 1.0])]);
        assert_eq!(y.as_f32().unwrap(), [10.0, 14.0, 18.0]);
    }

    #[test]
    fn matmul_numpy_semantics() {
        let a = t(&[2, 3], &seq(6));
        let v = t(&[3], &[1.0, 1.0, 1.0]);
        assert_eq!(eval1(Op::MatMul, &[&a, &v]).as_f32().unwrap(), [6.0, 15.0]);
        let u = t(&[2], &[1.0, -1.0]);
        assert_eq!(
            eval1(Op::MatMul, &[&u, &a]).as_f32().unwrap(),
            [-3.0, -3.0, -3.0]
        );
        let dot = eval1(Op::MatMul, &[&v, &v]);
        assert_eq!((dot.shape(), dot.as_f32().unwrap()), (&[][..], &[3.0][..]));
        // Batched with broadcasting: [2,1,2] @ [2,2] (identity) and a scaled copy.
        let batched = t(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
        let eye = t(&[2, 2], &[1.0, 0.0, 0.0, 2.0]);
        let y = eval1(Op::MatMul, &[&batched, &eye]);
        assert_eq!(y.shape(), [2, 1, 2]);
        assert_eq!(y.as_f32().unwrap(), [1.0, 4.0, 3.0, 8.0]);
    }
}
