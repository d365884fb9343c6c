//! Data movement and shape computation: Concat, Slice, Split, Reshape, Transpose, Identity,
//! Pad, Gather, Expand, Shape, ConstantOfShape and Range. These take any dtype; the rules are
//! about axes, bounds and element counts, and Range's length is computed from its constant
//! operands.

use super::{
    broadcasts_to, checked_numel, dtype_err, expect_same_dtype, invalid, not_constant, one,
    overflow, rank_err, InferError, InputFact, Outputs,
};
use crate::ir::{fmt_shape, DType, Data, Pad, PadMode, Slice, Tensor, TensorType};

pub(super) fn concat(axis: usize, inputs: &[InputFact<'_>]) -> Outputs {
    let first = &inputs[0].ty.shape[..];
    if axis >= first.len() {
        return Err(invalid(
            "concat",
            format!("axis {axis} out of range for rank {}", first.len()),
        ));
    }
    let mut out = first.to_vec();
    for i in 1..inputs.len() {
        expect_same_dtype(inputs, 0, i)?;
        let s = &inputs[i].ty.shape[..];
        let compatible = s.len() == first.len()
            && s.iter()
                .zip(first)
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        if !compatible {
            return Err(invalid(
                "concat",
                format!(
                    "input {i} [{}] does not match input 0 [{}] off axis {axis}",
                    fmt_shape(s),
                    fmt_shape(first)
                ),
            ));
        }
        out[axis] = out[axis].checked_add(s[axis]).ok_or(overflow("concat"))?;
    }
    one(inputs[0].ty.dtype, out)
}

pub(super) fn slice(slice: &Slice, inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    let n = slice.axes.len();
    if slice.starts.len() != n || slice.ends.len() != n || slice.steps.len() != n {
        return Err(invalid(
            "slice",
            "axes, starts, ends and steps differ in length",
        ));
    }
    let mut out = x.to_vec();
    let mut seen = vec![false; x.len()];
    for (k, &axis) in slice.axes.iter().enumerate() {
        if axis >= x.len() {
            return Err(invalid(
                "slice",
                format!("axis {axis} out of range for rank {}", x.len()),
            ));
        }
        if std::mem::replace(&mut seen[axis], true) {
            return Err(invalid("slice", format!("axis {axis} repeated")));
        }
        out[axis] = slice_len(x[axis], slice.starts[k], slice.ends[k], slice.steps[k])?;
    }
    one(inputs[0].ty.dtype, out)
}

pub(super) fn split(axis: usize, sizes: &[usize], inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    if axis >= x.len() {
        return Err(invalid(
            "split",
            format!("axis {axis} out of range for rank {}", x.len()),
        ));
    }
    if sizes.is_empty() {
        return Err(invalid("split", "no outputs"));
    }
    let total = sizes
        .iter()
        .try_fold(0usize, |acc, &s| acc.checked_add(s))
        .ok_or(overflow("split"))?;
    if total != x[axis] {
        return Err(invalid(
            "split",
            format!("sizes sum to {total}, axis {axis} has {}", x[axis]),
        ));
    }
    Ok(sizes
        .iter()
        .map(|&s| {
            let mut o = x.to_vec();
            o[axis] = s;
            TensorType::new(inputs[0].ty.dtype, o)
        })
        .collect())
}

pub(super) fn reshape(target: &[usize], inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    let from = checked_numel(x)?;
    let to = checked_numel(target)?;
    if from != to {
        return Err(invalid(
            "reshape",
            format!(
                "[{}] has {from} elements, target [{}] has {to}",
                fmt_shape(x),
                fmt_shape(target)
            ),
        ));
    }
    one(inputs[0].ty.dtype, target.to_vec())
}

pub(super) fn transpose(perm: &[usize], inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    if !is_permutation(perm, x.len()) {
        return Err(invalid(
            "transpose",
            format!("{perm:?} is not a permutation of rank {}", x.len()),
        ));
    }
    one(inputs[0].ty.dtype, perm.iter().map(|&p| x[p]).collect())
}

pub(super) fn channel_shuffle(groups: usize, inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    if x.len() != 4 || groups == 0 || !x[1].is_multiple_of(groups) {
        return Err(invalid(
            "channel_shuffle",
            format!(
                "{groups} groups of input [{}]: needs rank 4 and channels divisible by the groups",
                fmt_shape(x)
            ),
        ));
    }
    one(inputs[0].ty.dtype, x.clone())
}

pub(super) fn depth_to_space(b: usize, inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    let bb = b.checked_mul(b).filter(|&bb| bb > 0);
    let (Some(bb), 4) = (bb, x.len()) else {
        return Err(invalid(
            "depth_to_space",
            format!(
                "blocksize {b} on input [{}]: needs rank 4 and a positive blocksize",
                fmt_shape(x)
            ),
        ));
    };
    if !x[1].is_multiple_of(bb) {
        return Err(invalid(
            "depth_to_space",
            format!(
                "{} channels of input [{}] are not a multiple of blocksize^2 = {bb}",
                x[1],
                fmt_shape(x)
            ),
        ));
    }
    let (h, w) = match (x[2].checked_mul(b), x[3].checked_mul(b)) {
        (Some(h), Some(w)) => (h, w),
        _ => return Err(invalid("depth_to_space", "output size overflows")),
    };
    one(inputs[0].ty.dtype, vec![x[0], x[1] / bb, h, w])
}

pub(super) fn identity(inputs: &[InputFact<'_>]) -> Outputs {
    one(inputs[0].ty.dtype, inputs[0].ty.shape.clone())
}

pub(super) fn pad(pad: &Pad, inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    let rank = x.len();
    if pad.pads.len() != 2 * rank {
        return Err(invalid(
            "pad",
            format!("{} pad amounts for rank {rank}", pad.pads.len()),
        ));
    }
    let mut out = Vec::with_capacity(rank);
    for (d, &n) in x.iter().enumerate() {
        let (begin, end) = (pad.pads[d], pad.pads[d + rank]);
        let n_i = i64::try_from(n).map_err(|_| overflow("pad"))?;
        let len = n_i
            .checked_add(begin)
            .and_then(|v| v.checked_add(end))
            .ok_or(overflow("pad"))?;
        if len < 0 {
            return Err(invalid(
                "pad",
                format!("axis {d} of size {n} cropped by {begin},{end}"),
            ));
        }
        // Reflect and edge padding need something to copy.
        let limit = match pad.mode {
            PadMode::Reflect | PadMode::Edge if n == 0 => 0,
            _ => i64::MAX,
        };
        if begin.max(end) > limit {
            return Err(invalid(
                "pad",
                format!(
                    "{:?} padding of {begin},{end} on axis {d} of size {n}",
                    pad.mode
                ),
            ));
        }
        out.push(usize::try_from(len).map_err(|_| overflow("pad"))?);
    }
    one(inputs[0].ty.dtype, out)
}

pub(super) fn gather(axis: usize, inputs: &[InputFact<'_>]) -> Outputs {
    let data = &inputs[0].ty.shape;
    let idx_dtype = inputs[1].ty.dtype;
    if !idx_dtype.is_int() {
        return Err(dtype_err(1, "an integer type", idx_dtype));
    }
    if axis >= data.len() {
        return Err(invalid(
            "gather",
            format!("axis {axis} out of range for rank {}", data.len()),
        ));
    }
    if let Some(Data::I64(indices)) = inputs[1].value.map(|t| &t.data) {
        let n = data[axis] as i128;
        if let Some(i) = indices
            .iter()
            .find(|&&i| (i as i128) < -n || (i as i128) >= n)
        {
            return Err(invalid(
                "gather",
                format!("index {i} out of range for axis of size {n}"),
            ));
        }
    }
    let mut out = data[..axis].to_vec();
    out.extend_from_slice(&inputs[1].ty.shape);
    out.extend_from_slice(&data[axis + 1..]);
    one(inputs[0].ty.dtype, out)
}

pub(super) fn expand(target: &[usize], inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    if !broadcasts_to(x, target) {
        return Err(InferError::Broadcast {
            a: fmt_shape(x),
            b: fmt_shape(target),
        });
    }
    one(inputs[0].ty.dtype, target.to_vec())
}

pub(super) fn shape(start: usize, end: usize, inputs: &[InputFact<'_>]) -> Outputs {
    let rank = inputs[0].ty.shape.len();
    if start > end || end > rank {
        return Err(invalid(
            "shape",
            format!("dims [{start}, {end}) out of range for rank {rank}"),
        ));
    }
    one(DType::I64, vec![end - start])
}

pub(super) fn constant_of_shape(shape: &[usize], dtype: DType, value: f64) -> Outputs {
    if dtype.is_int() && !(value.is_finite() && value.fract() == 0.0) {
        return Err(invalid(
            "constant_of_shape",
            format!("value {value} is not an integer"),
        ));
    }
    one(dtype, shape.to_vec())
}

pub(super) fn range(inputs: &[InputFact<'_>]) -> Outputs {
    let dtype = inputs[0].ty.dtype;
    if dtype == DType::Bool {
        return Err(dtype_err(0, "a numeric type", dtype));
    }
    let mut scalars = Vec::with_capacity(3);
    for i in 0..3 {
        expect_same_dtype(inputs, 0, i)?;
        let s = &inputs[i].ty.shape;
        if checked_numel(s)? != 1 || s.len() > 1 {
            return Err(rank_err(i, "0 (a scalar)", s));
        }
        scalars.push(inputs[i].value.ok_or_else(|| not_constant(i))?);
    }
    let (start, limit, delta) = (scalars[0], scalars[1], scalars[2]);
    one(dtype, vec![range_len(start, limit, delta)?])
}

/// Number of elements a normalized slice selects on an axis of length `dim` (see
/// [`Slice`]): for `step > 0`, `0 <= start, end <= dim`; for `step < 0`,
/// `0 <= start < dim` and `-1 <= end < dim`. Bounds outside those ranges are errors.
pub fn slice_len(dim: usize, start: i64, end: i64, step: i64) -> Result<usize, InferError> {
    let dim = dim as i128;
    let (start, end, step) = (start as i128, end as i128, step as i128);
    let bad = || {
        invalid(
            "slice",
            format!("bounds {start}:{end}:{step} not normalized for axis of size {dim}"),
        )
    };
    let len = if step > 0 {
        if !(0..=dim).contains(&start) || !(0..=dim).contains(&end) {
            return Err(bad());
        }
        if end > start {
            (end - start + step - 1) / step
        } else {
            0
        }
    } else if step < 0 {
        if dim == 0 {
            // Nothing to select; accept the clamped forms an importer may produce.
            if !(-1..=0).contains(&start) || end != -1 {
                return Err(bad());
            }
            return Ok(0);
        }
        if !(0..dim).contains(&start) || !(-1..dim).contains(&end) {
            return Err(bad());
        }
        if start > end {
            (start - end + (-step) - 1) / (-step)
        } else {
            0
        }
    } else {
        return Err(invalid("slice", "step is 0"));
    };
    usize::try_from(len).map_err(|_| overflow("slice"))
}

/// Length of `Range(start, limit, delta)`: `max(ceil((limit - start) / delta), 0)`, computed as
/// ONNX Runtime does (integers exactly; floats as `ceil(f64(limit - start) / f64(delta))` with
/// the difference taken in f32).
pub fn range_len(start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<usize, InferError> {
    let first = |t: &Tensor| -> Result<Scalar, InferError> {
        match &t.data {
            Data::I64(v) if v.len() == 1 => Ok(Scalar::Int(v[0])),
            Data::F32(v) if v.len() == 1 => Ok(Scalar::Float(v[0])),
            _ => Err(invalid(
                "range",
                format!("operands must be numeric scalars, got {}", t.ty),
            )),
        }
    };
    let len: f64 = match (first(start)?, first(limit)?, first(delta)?) {
        (Scalar::Int(s), Scalar::Int(l), Scalar::Int(d)) => {
            if d == 0 {
                return Err(invalid("range", "delta is 0"));
            }
            let (diff, d) = (l as i128 - s as i128, d as i128);
            // Ceiling division for any signs.
            let q = diff / d;
            let ceil = if diff % d != 0 && ((diff < 0) == (d < 0)) {
                q + 1
            } else {
                q
            };
            return usize::try_from(ceil.max(0)).map_err(|_| overflow("range"));
        }
        (Scalar::Float(s), Scalar::Float(l), Scalar::Float(d)) => {
            if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
                return Err(invalid(
                    "range",
                    format!("start {s}, limit {l}, delta {d} must be finite, delta non-zero"),
                ));
            }
            (((l - s) as f64) / d as f64).ceil()
        }
        _ => return Err(invalid("range", "operands have mixed storage")),
    };
    if !len.is_finite() || len >= usize::MAX as f64 {
        return Err(overflow("range"));
    }
    Ok(len.max(0.0) as usize)
}

enum Scalar {
    Int(i64),
    Float(f32),
}

fn is_permutation(perm: &[usize], rank: usize) -> bool {
    let mut seen = vec![false; rank];
    perm.len() == rank
        && perm
            .iter()
            .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{f32t, run, shape_of};
    use super::super::{infer, InputProblem};
    use super::*;
    use crate::ir::Op;

    #[test]
    fn slices() {
        assert_eq!(slice_len(10, 0, 10, 1).unwrap(), 10);
        assert_eq!(slice_len(10, 1, 10, 3).unwrap(), 3); // 1, 4, 7
        assert_eq!(slice_len(10, 9, -1, -1).unwrap(), 10);
        assert_eq!(slice_len(10, 9, 0, -2).unwrap(), 5); // 9, 7, 5, 3, 1
        assert_eq!(slice_len(10, 5, 3, 1).unwrap(), 0);
        assert_eq!(slice_len(0, 0, -1, -1).unwrap(), 0);
        assert!(slice_len(10, 11, 10, 1).is_err());
        assert!(slice_len(10, 10, 0, -1).is_err());
        assert!(slice_len(10, 0, 5, 0).is_err());
        let op = Op::Slice(Slice {
            axes: vec![1],
            starts: vec![0],
            ends: vec![16],
            steps: vec![1],
        });
        assert_eq!(shape_of(&op, &[f32t(&[1, 24, 8, 8])]), [1, 16, 8, 8]);
        let dup = Op::Slice(Slice {
            axes: vec![1, 1],
            starts: vec![0, 0],
            ends: vec![1, 1],
            steps: vec![1, 1],
        });
        assert!(run(&dup, &[f32t(&[1, 24, 8, 8])]).is_err());
    }

    #[test]
    fn concat_split_gather() {
        let op = Op::Concat { axis: 1 };
        assert_eq!(
            shape_of(&op, &[f32t(&[1, 8, 4, 4]), f32t(&[1, 8, 4, 4])]),
            [1, 16, 4, 4]
        );
        assert!(run(&op, &[f32t(&[1, 8, 4, 4]), f32t(&[1, 8, 4, 5])]).is_err());
        assert!(run(&Op::Concat { axis: 4 }, &[f32t(&[1, 8, 4, 4])]).is_err());
        let split = run(
            &Op::Split {
                axis: 1,
                sizes: vec![3, 5],
            },
            &[f32t(&[1, 8, 2])],
        )
        .unwrap();
        assert_eq!(split, [f32t(&[1, 3, 2]), f32t(&[1, 5, 2])]);
        assert!(run(
            &Op::Split {
                axis: 1,
                sizes: vec![3, 4]
            },
            &[f32t(&[1, 8, 2])]
        )
        .is_err());
        let idx = TensorType::new(DType::I64, vec![2, 3]);
        assert_eq!(
            shape_of(&Op::Gather { axis: 1 }, &[f32t(&[4, 5, 6]), idx]),
            [4, 2, 3, 6]
        );
        let scalar_idx = TensorType::new(DType::I64, vec![]);
        let ints = TensorType::new(DType::I64, vec![4]);
        assert_eq!(
            shape_of(&Op::Gather { axis: 0 }, &[ints.clone(), scalar_idx.clone()]),
            Vec::<usize>::new()
        );
        assert!(run(&Op::Gather { axis: 0 }, &[ints.clone(), f32t(&[])]).is_err());
        let bad = Tensor::from_i64(vec![], vec![4]).unwrap();
        let facts = [
            InputFact {
                ty: &ints,
                value: None,
            },
            InputFact {
                ty: &scalar_idx,
                value: Some(&bad),
            },
        ];
        assert!(infer(&Op::Gather { axis: 0 }, &facts).is_err());
    }

    #[test]
    fn reshape_transpose_expand_pad() {
        assert_eq!(
            shape_of(
                &Op::Reshape {
                    shape: vec![1, 960]
                },
                &[f32t(&[1, 960, 1, 1])]
            ),
            [1, 960]
        );
        assert!(run(
            &Op::Reshape {
                shape: vec![1, 961]
            },
            &[f32t(&[1, 960, 1, 1])]
        )
        .is_err());
        assert!(run(
            &Op::Reshape {
                shape: vec![usize::MAX, 2]
            },
            &[f32t(&[2])]
        )
        .is_err());
        assert_eq!(
            shape_of(
                &Op::Transpose {
                    perm: vec![0, 2, 3, 1]
                },
                &[f32t(&[1, 2, 3, 4])]
            ),
            [1, 3, 4, 2]
        );
        assert!(run(
            &Op::Transpose {
                perm: vec![0, 2, 2, 1]
            },
            &[f32t(&[1, 2, 3, 4])]
        )
        .is_err());
        assert!(run(&Op::Transpose { perm: vec![0, 1] }, &[f32t(&[1, 2, 3])]).is_err());
        assert_eq!(
            shape_of(
                &Op::Expand {
                    shape: vec![2, 3, 4]
                },
                &[f32t(&[3, 1])]
            ),
            [2, 3, 4]
        );
        assert!(run(
            &Op::Expand {
                shape: vec![2, 3, 4]
            },
            &[f32t(&[2, 4])]
        )
        .is_err());
        let pad = |pads: Vec<i64>, mode| {
            Op::Pad(Pad {
                pads,
                mode,
                value: 0.0,
            })
        };
        assert_eq!(
            shape_of(&pad(vec![0, 1, 0, 2], PadMode::Constant), &[f32t(&[3, 3])]),
            [3, 6]
        );
        assert_eq!(
            shape_of(
                &pad(vec![-1, 0, 0, -1], PadMode::Constant),
                &[f32t(&[3, 3])]
            ),
            [2, 2]
        );
        assert!(run(&pad(vec![-4, 0, 0, 0], PadMode::Constant), &[f32t(&[3, 3])]).is_err());
        assert!(run(&pad(vec![0, 1, 0, 0], PadMode::Reflect), &[f32t(&[3, 0])]).is_err());
        assert_eq!(
            shape_of(&pad(vec![0, 3, 0, 0], PadMode::Constant), &[f32t(&[3, 0])]),
            [3, 3]
        );
        assert_eq!(
            shape_of(&pad(vec![0, 2, 0, 0], PadMode::Reflect), &[f32t(&[3, 3])]),
            [3, 5]
        );
        assert!(run(&pad(vec![0, 0], PadMode::Constant), &[f32t(&[3, 3])]).is_err());
    }

    #[test]
    fn shape_ops() {
        let x = f32t(&[1, 3, 8, 8]);
        let s = run(&Op::Shape { start: 2, end: 4 }, std::slice::from_ref(&x)).unwrap();
        assert_eq!(s, [TensorType::new(DType::I64, vec![2])]);
        assert!(run(&Op::Shape { start: 2, end: 5 }, std::slice::from_ref(&x)).is_err());
        let c = Op::ConstantOfShape {
            shape: vec![2, 2],
            dtype: DType::I64,
            value: 1.0,
        };
        assert_eq!(
            run(&c, &[]).unwrap(),
            [TensorType::new(DType::I64, vec![2, 2])]
        );
    }

    #[test]
    fn range_lengths() {
        let i = |v: i64| Tensor::from_i64(vec![], vec![v]).unwrap();
        let f = |v: f32| Tensor::scalar_f32(v);
        let len = |a: &Tensor, b: &Tensor, c: &Tensor| {
            let facts: Vec<InputFact<'_>> = [a, b, c]
                .iter()
                .map(|t| InputFact {
                    ty: &t.ty,
                    value: Some(t),
                })
                .collect();
            infer(&Op::Range, &facts).map(|t| t[0].shape[0])
        };
        assert_eq!(len(&i(3), &i(9), &i(3)).unwrap(), 2); // spec example: [3, 6]
        assert_eq!(len(&i(10), &i(4), &i(-3)).unwrap(), 2); // spec example: [10, 7]
        assert_eq!(len(&i(0), &i(10), &i(3)).unwrap(), 4);
        assert_eq!(len(&i(5), &i(0), &i(1)).unwrap(), 0);
        assert_eq!(len(&f(0.0), &f(1.0), &f(0.3)).unwrap(), 4);
        assert!(len(&i(0), &i(1), &i(0)).is_err());
        assert!(len(&i(0), &i(i64::MAX), &i(1)).is_err());
        assert!(len(&f(0.0), &i(1), &i(1)).is_err());
        let ty = TensorType::new(DType::I64, vec![]);
        let facts = [InputFact {
            ty: &ty,
            value: None,
        }; 3];
        assert_eq!(
            infer(&Op::Range, &facts).unwrap_err(),
            InferError::Input {
                input: 0,
                problem: InputProblem::NotConstant
            }
        );
    }
}
