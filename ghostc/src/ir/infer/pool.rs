//! Pooling and reductions: windowed Max/AveragePool, GlobalAveragePool, and the Reduce ops
//! (a reduction is a pool over whole axes).

use super::{
    dtype_err, expect_float, expect_rank, invalid, one, rank_err, window_output, InferError,
    InputFact, Outputs,
};
use crate::ir::{DType, Pool, Reduce};

pub(super) fn global_average_pool(inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0])?;
    let x = &inputs[0].ty.shape;
    if x.len() < 3 {
        return Err(rank_err(0, ">= 3", x));
    }
    let mut out = x.to_vec();
    out[2..].iter_mut().for_each(|d| *d = 1);
    one(inputs[0].ty.dtype, out)
}

pub(super) fn pool(pool: &Pool, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0])?;
    let x = expect_rank(inputs, 0, 4)?;
    let mut out = x.to_vec();
    for d in 0..2 {
        out[2 + d] = window_output(
            "pool",
            x[2 + d],
            pool.kernel[d],
            pool.strides[d],
            pool.pads[d],
            pool.pads[d + 2],
            pool.dilations[d],
        )?;
    }
    one(inputs[0].ty.dtype, out)
}

pub(super) fn reduce(reduce: &Reduce, inputs: &[InputFact<'_>]) -> Outputs {
    let dtype = inputs[0].ty.dtype;
    if dtype == DType::Bool {
        return Err(dtype_err(0, "a numeric type", dtype));
    }
    let x = &inputs[0].ty.shape;
    let axes = reduce_axes(&reduce.axes, x.len())?;
    let mut out = Vec::with_capacity(x.len());
    for (d, &n) in x.iter().enumerate() {
        if !axes.contains(&d) {
            out.push(n);
        } else if reduce.keepdims {
            out.push(1);
        }
    }
    one(dtype, out)
}

/// Reduction axes: empty means all axes (ONNX's default with `noop_with_empty_axes = 0`).
/// Errors when an axis is out of range, repeated or unsorted.
pub fn reduce_axes(axes: &[usize], rank: usize) -> Result<Vec<usize>, InferError> {
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    if axes.iter().any(|&a| a >= rank) || axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(
            "reduce",
            format!("axes {axes:?} not sorted, unique and below rank {rank}"),
        ));
    }
    Ok(axes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{f32t, run, shape_of};
    use super::*;
    use crate::ir::{Op, PoolKind, ReduceKind};

    #[test]
    fn pools_and_reduce() {
        let pool = Pool {
            kind: PoolKind::Avg,
            kernel: [2, 2],
            strides: [2, 2],
            pads: [0, 0, 1, 1],
            dilations: [1, 1],
            ceil_mode: true,
            count_include_pad: false,
        };
        assert_eq!(
            shape_of(&Op::Pool(pool), &[f32t(&[1, 4, 7, 7])]),
            [1, 4, 4, 4]
        );
        assert_eq!(
            shape_of(&Op::GlobalAveragePool, &[f32t(&[2, 4, 7, 9])]),
            [2, 4, 1, 1]
        );
        let r = |axes: Vec<usize>, keepdims| {
            Op::Reduce(Reduce {
                kind: ReduceKind::Mean,
                axes,
                keepdims,
            })
        };
        assert_eq!(
            shape_of(&r(vec![2, 3], true), &[f32t(&[1, 4, 7, 7])]),
            [1, 4, 1, 1]
        );
        assert_eq!(
            shape_of(&r(vec![2, 3], false), &[f32t(&[1, 4, 7, 7])]),
            [1, 4]
        );
        assert_eq!(
            shape_of(&r(vec![], false), &[f32t(&[1, 4, 7, 7])]),
            Vec::<usize>::new()
        );
        assert!(run(&r(vec![3, 2], true), &[f32t(&[1, 4, 7, 7])]).is_err());
        assert!(run(&r(vec![4], true), &[f32t(&[1, 4, 7, 7])]).is_err());
    }
}
