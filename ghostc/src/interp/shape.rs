//! Data movement and shape ops, for every storage class: each computes, per output element, the
//! flat index of the input element it copies (an index map), then gathers.

use super::elementwise::{broadcast_index, wrap_int};
use super::{InterpError, Result};
use crate::ir::{DType, Data, Pad, PadMode, Slice, Tensor, TensorType};

/// `data[idx[k]]` for every k; `None` entries take `fill`.
pub(super) fn gather_data(data: &Data, idx: &[Option<usize>], fill: f64) -> Data {
    fn pick<T: Copy>(v: &[T], idx: &[Option<usize>], fill: T) -> Vec<T> {
        idx.iter().map(|i| i.map_or(fill, |i| v[i])).collect()
    }
    match data {
        Data::F32(v) => Data::F32(pick(v, idx, fill as f32)),
        Data::I64(v) => Data::I64(pick(v, idx, fill as i64)),
        Data::Bool(v) => Data::Bool(pick(v, idx, fill != 0.0)),
    }
}

fn take(data: &Data, idx: impl IntoIterator<Item = usize>) -> Data {
    let idx: Vec<Option<usize>> = idx.into_iter().map(Some).collect();
    gather_data(data, &idx, 0.0)
}

fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// Calls `f` with every multi-index of `shape` in row-major order.
fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    let numel: usize = shape.iter().product();
    let mut index = vec![0usize; shape.len()];
    for _ in 0..numel {
        f(&index);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

/// Index map from per-axis source coordinates: `source[d][i]` is the input coordinate read at
/// output coordinate `i` of axis `d`, or `None` for a fill value.
pub(super) fn per_axis_map(
    in_shape: &[usize],
    out_shape: &[usize],
    source: &[Vec<Option<usize>>],
) -> Vec<Option<usize>> {
    let strides = row_major_strides(in_shape);
    let mut idx = Vec::with_capacity(out_shape.iter().product());
    for_each_index(out_shape, |i| {
        let mut flat = Some(0usize);
        for d in 0..i.len() {
            flat = flat.and_then(|f| source[d][i[d]].map(|s| f + s * strides[d]));
        }
        idx.push(flat);
    });
    idx
}

pub(super) fn concat(axis: usize, inputs: &[&Tensor], out: &TensorType) -> Result<Tensor> {
    let outer: usize = out.shape[..axis].iter().product();
    let inner: usize = out.shape[axis + 1..].iter().product();
    // Output element -> (input, flat index).
    let mut sources: Vec<(usize, usize)> = Vec::with_capacity(out.numel());
    for o in 0..outer {
        for (k, t) in inputs.iter().enumerate() {
            let chunk = t.shape()[axis] * inner;
            sources.extend((0..chunk).map(|j| (k, o * chunk + j)));
        }
    }
    fn collect<T: Copy>(parts: &[&[T]], sources: &[(usize, usize)]) -> Vec<T> {
        sources.iter().map(|&(k, i)| parts[k][i]).collect()
    }
    let mismatch = |k: usize| InterpError::Malformed {
        input: k,
        detail: "storage differs from input 0".into(),
    };
    let data = match &inputs[0].data {
        Data::F32(_) => {
            let parts = inputs
                .iter()
                .enumerate()
                .map(|(k, t)| t.as_f32().ok_or(mismatch(k)))
                .collect::<Result<Vec<_>>>()?;
            Data::F32(collect(&parts, &sources))
        }
        Data::I64(_) => {
            let parts = inputs
                .iter()
                .enumerate()
                .map(|(k, t)| t.as_i64().ok_or(mismatch(k)))
                .collect::<Result<Vec<_>>>()?;
            Data::I64(collect(&parts, &sources))
        }
        Data::Bool(_) => {
            let parts = inputs
                .iter()
                .enumerate()
                .map(|(k, t)| match &t.data {
                    Data::Bool(v) => Ok(&v[..]),
                    _ => Err(mismatch(k)),
                })
                .collect::<Result<Vec<_>>>()?;
            Data::Bool(collect(&parts, &sources))
        }
    };
    Ok(Tensor {
        ty: out.clone(),
        data,
    })
}

/// Slice with normalized bounds (see [`crate::ir::Slice`]); negative steps walk backwards.
pub(super) fn slice(s: &Slice, x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let mut source: Vec<Vec<Option<usize>>> = x
        .shape()
        .iter()
        .map(|&n| (0..n).map(Some).collect())
        .collect();
    for (k, &axis) in s.axes.iter().enumerate() {
        let (start, step) = (s.starts[k], s.steps[k]);
        source[axis] = (0..out.shape[axis] as i64)
            .map(|i| Some((start + i * step) as usize))
            .collect();
    }
    Ok(Tensor {
        ty: out.clone(),
        data: gather_data(&x.data, &per_axis_map(x.shape(), &out.shape, &source), 0.0),
    })
}

pub(super) fn split(
    axis: usize,
    sizes: &[usize],
    x: &Tensor,
    types: &[TensorType],
) -> Result<Vec<Tensor>> {
    let mut start = 0;
    let mut outputs = Vec::with_capacity(sizes.len());
    for (&size, ty) in sizes.iter().zip(types) {
        let s = Slice {
            axes: vec![axis],
            starts: vec![start as i64],
            ends: vec![(start + size) as i64],
            steps: vec![1],
        };
        outputs.push(slice(&s, x, ty)?);
        start += size;
    }
    Ok(outputs)
}

pub(super) fn transpose(perm: &[usize], x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let in_strides = row_major_strides(x.shape());
    let mut idx = Vec::with_capacity(out.numel());
    // Output axis d is input axis perm[d].
    for_each_index(&out.shape, |i| {
        idx.push(
            i.iter()
                .zip(perm)
                .map(|(&c, &p)| c * in_strides[p])
                .sum::<usize>(),
        )
    });
    Ok(Tensor {
        ty: out.clone(),
        data: take(&x.data, idx),
    })
}

/// DepthToSpace by its definition: output `(n, c, y, x)` reads input channel
/// `depth_to_space_channel(.., c, y % b, x % b)` at `(n, y / b, x / b)`.
pub(super) fn depth_to_space(b: usize, crd: bool, x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let s = x.shape();
    let c_out = out.shape[1];
    let mut idx = Vec::with_capacity(out.numel());
    for_each_index(&out.shape, |o| {
        let c = crate::ir::depth_to_space_channel(c_out, b, crd, o[1], o[2] % b, o[3] % b);
        idx.push(((o[0] * s[1] + c) * s[2] + o[2] / b) * s[3] + o[3] / b);
    });
    Ok(Tensor {
        ty: out.clone(),
        data: take(&x.data, idx),
    })
}

/// Constant, reflect or edge padding; negative pads crop.
pub(super) fn pad(p: &Pad, x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let rank = x.shape().len();
    let source: Vec<Vec<Option<usize>>> = (0..rank)
        .map(|d| {
            // i128: pads may be near the i64 limits as long as the output size is sane.
            let n = x.shape()[d] as i128;
            (0..out.shape[d] as i128)
                .map(|i| {
                    let s = i - p.pads[d] as i128;
                    if (0..n).contains(&s) {
                        return Some(s as usize);
                    }
                    match p.mode {
                        PadMode::Constant => None,
                        PadMode::Edge => Some(s.clamp(0, n - 1) as usize),
                        PadMode::Reflect => Some(reflect(s, n)),
                    }
                })
                .collect()
        })
        .collect();
    let idx = per_axis_map(x.shape(), &out.shape, &source);
    Ok(Tensor {
        ty: out.clone(),
        data: gather_data(&x.data, &idx, p.value as f64),
    })
}

/// Mirror index without repeating the edge, periodic like numpy's `reflect` (the ONNX reference)
/// when the pad exceeds `n - 1`.
fn reflect(s: i128, n: i128) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = s.rem_euclid(period);
    (if m >= n { period - m } else { m }) as usize
}

/// `out[a, i, b] = data[a, indices[i], b]` over `axis`; negative indices count from the end.
pub(super) fn gather(
    axis: usize,
    data: &Tensor,
    indices: &Tensor,
    out: &TensorType,
) -> Result<Tensor> {
    let shape = data.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let positions = indices
        .to_i64_vec()
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + n as i64 } else { i };
            if (0..n as i64).contains(&j) {
                Ok(j as usize)
            } else {
                Err(InterpError::Value {
                    op: "gather",
                    detail: format!("index {i} out of range for axis of size {n}"),
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut idx = Vec::with_capacity(out.numel());
    for o in 0..outer {
        for &p in &positions {
            idx.extend((0..inner).map(|k| (o * n + p) * inner + k));
        }
    }
    Ok(Tensor {
        ty: out.clone(),
        data: take(&data.data, idx),
    })
}

pub(super) fn expand(x: &Tensor, out: &TensorType) -> Result<Tensor> {
    Ok(Tensor {
        ty: out.clone(),
        data: take(&x.data, broadcast_index(x.shape(), &out.shape)),
    })
}

pub(super) fn constant_of_shape(dtype: DType, value: f64, out: &TensorType) -> Tensor {
    let n = out.numel();
    let data = if dtype == DType::Bool {
        Data::Bool(vec![value != 0.0; n])
    } else if dtype.is_float() {
        Data::F32(vec![value as f32; n])
    } else {
        Data::I64(vec![wrap_int(value as i64, dtype); n])
    };
    Tensor {
        ty: out.clone(),
        data,
    }
}

/// `Range` as ONNX Runtime computes it: integers `start + i * delta`; floats by repeated
/// addition of delta in f32.
pub(super) fn range(
    start: &Tensor,
    _limit: &Tensor,
    delta: &Tensor,
    out: &TensorType,
) -> Result<Tensor> {
    let n = out.shape[0];
    let data = match (&start.data, &delta.data) {
        (Data::I64(s), Data::I64(d)) => Data::I64(
            (0..n as i64)
                .map(|i| wrap_int(s[0].wrapping_add(i.wrapping_mul(d[0])), out.dtype))
                .collect(),
        ),
        (Data::F32(s), Data::F32(d)) => {
            let mut value = s[0];
            Data::F32(
                (0..n)
                    .map(|_| {
                        let v = value;
                        value += d[0];
                        v
                    })
                    .collect(),
            )
        }
        _ => {
            return Err(InterpError::Malformed {
                input: 2,
                detail: "start and delta storage differ".into(),
            })
        }
    };
    Ok(Tensor {
        ty: out.clone(),
        data,
    })
}

/// Image `i` of a batched tensor, with a leading dim of 1.
pub(super) fn batch_item(t: &Tensor, i: usize) -> Tensor {
    let mut shape = t.shape().to_vec();
    let per_image: usize = shape[1..].iter().product();
    shape[0] = 1;
    Tensor {
        ty: TensorType::new(t.dtype(), shape),
        data: take(&t.data, i * per_image..(i + 1) * per_image),
    }
}

/// Stacks per-image results (each of type `ty`, batch 1) into one tensor of batch `n`.
pub(super) fn stack_batch(parts: &[&Tensor], ty: &TensorType, n: usize) -> Result<Tensor> {
    if ty.shape.first() != Some(&1) {
        return Err(InterpError::Unsupported {
            op: "run",
            detail: format!(
                "dynamic batch with an output of type {ty} (no leading batch dim of 1)"
            ),
        });
    }
    let mut shape = ty.shape.clone();
    shape[0] = n;
    let out = TensorType::new(ty.dtype, shape);
    if parts.is_empty() {
        let empty = match ty.dtype {
            DType::Bool => Data::Bool(vec![]),
            d if d.is_float() => Data::F32(vec![]),
            _ => Data::I64(vec![]),
        };
        return Ok(Tensor {
            ty: out,
            data: empty,
        });
    }
    concat(0, parts, &out)
}

#[cfg(test)]
mod tests {
    use crate::interp::eval_op;
    use crate::interp::test_util::{eval1, t, ti};
    use crate::ir::{DType, Data, Op, Pad, PadMode, Slice, Tensor};

    fn seq(n: usize) -> Vec<f32> {
        (0..n).map(|v| v as f32).collect()
    }

    #[test]
    fn slice_negative_step() {
        // ONNX spec example slice_neg_steps: x = 20x10x5, starts [20,10,4] ends [0,0,1]
        // steps [-1,-3,-2] (normalized: starts [19,9,4], ends [0,0,1]) gives 19x3x2.
        let x = t(&[20, 10, 5], &seq(1000));
        let s = Slice {
            axes: vec![0, 1, 2],
            starts: vec![19, 9, 4],
            ends: vec![0, 0, 1],
            steps: vec![-1, -3, -2],
        };
        let y = eval1(Op::Slice(s), &[&x]);
        assert_eq!(y.shape(), [19, 3, 2]);
        let v = y.as_f32().unwrap();
        // y[0,0,:] = x[19,9,4], x[19,9,2]; y[0,1,0] = x[19,6,4]; y[18,2,1] = x[1,3,2].
        assert_eq!(
            &v[..3],
            [
                (19 * 50 + 9 * 5 + 4) as f32,
                (19 * 50 + 9 * 5 + 2) as f32,
                (19 * 50 + 6 * 5 + 4) as f32
            ]
        );
        assert_eq!(v[v.len() - 1], (50 + 3 * 5 + 2) as f32);
        // Full reversal with end -1.
        let r = Slice {
            axes: vec![0],
            starts: vec![3],
            ends: vec![-1],
            steps: vec![-1],
        };
        assert_eq!(
            eval1(Op::Slice(r), &[&ti(&[4], &[1, 2, 3, 4])])
                .as_i64()
                .unwrap(),
            [4, 3, 2, 1]
        );
    }

    #[test]
    fn slice_split_concat_channels() {
        let x = t(&[1, 3, 1, 2], &seq(6));
        let s = Slice {
            axes: vec![1],
            starts: vec![1],
            ends: vec![3],
            steps: vec![1],
        };
        assert_eq!(
            eval1(Op::Slice(s), &[&x]).as_f32().unwrap(),
            [2.0, 3.0, 4.0, 5.0]
        );
        let parts = eval_op(
            &Op::Split {
                axis: 1,
                sizes: vec![1, 2],
            },
            &[&x],
        )
        .unwrap();
        assert_eq!(parts[0].as_f32().unwrap(), [0.0, 1.0]);
        assert_eq!(parts[1].shape(), [1, 2, 1, 2]);
        let joined = eval1(Op::Concat { axis: 1 }, &[&parts[1], &parts[0]]);
        assert_eq!(joined.as_f32().unwrap(), [2.0, 3.0, 4.0, 5.0, 0.0, 1.0]);
        // Concat on the last axis interleaves rows.
        let a = ti(&[2, 1], &[1, 2]);
        let b = ti(&[2, 2], &[3, 4, 5, 6]);
        assert_eq!(
            eval1(Op::Concat { axis: 1 }, &[&a, &b]).as_i64().unwrap(),
            [1, 3, 4, 2, 5, 6]
        );
    }

    /// The ONNX specification's DepthToSpace examples (blocksize 2 on `[1, 8, 2, 3]`, input
    /// values `9 * c + 3 * y + x`), DCR and CRD.
    #[test]
    fn depth_to_space_matches_the_onnx_examples() {
        let x: Vec<f32> = (0..8)
            .flat_map(|c| (0..6).map(move |p| (9 * c + 3 * (p / 3) + p % 3) as f32))
            .collect();
        let x = t(&[1, 8, 2, 3], &x);
        let dcr = [
            0., 18., 1., 19., 2., 20., 36., 54., 37., 55., 38., 56., 3., 21., 4., 22., 5., 23.,
            39., 57., 40., 58., 41., 59., 9., 27., 10., 28., 11., 29., 45., 63., 46., 64., 47.,
            65., 12., 30., 13., 31., 14., 32., 48., 66., 49., 67., 50., 68.,
        ];
        let crd = [
            0., 9., 1., 10., 2., 11., 18., 27., 19., 28., 20., 29., 3., 12., 4., 13., 5., 14., 21.,
            30., 22., 31., 23., 32., 36., 45., 37., 46., 38., 47., 54., 63., 55., 64., 56., 65.,
            39., 48., 40., 49., 41., 50., 57., 66., 58., 67., 59., 68.,
        ];
        for (crd_mode, want) in [(false, dcr), (true, crd)] {
            let y = eval1(
                Op::DepthToSpace {
                    blocksize: 2,
                    crd: crd_mode,
                },
                &[&x],
            );
            assert_eq!(y.shape(), &[1, 2, 4, 6][..]);
            assert_eq!(y.as_f32().unwrap(), &want[..], "crd {crd_mode}");
        }
    }

    #[test]
    fn transpose_and_gather() {
        let x = t(&[2, 3], &seq(6));
        let y = eval1(Op::Transpose { perm: vec![1, 0] }, &[&x]);
        assert_eq!(
            (y.shape(), y.as_f32().unwrap()),
            (&[3, 2][..], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0][..])
        );
        let x3 = t(&[2, 3, 4], &seq(24));
        let y = eval1(
            Op::Transpose {
                perm: vec![2, 0, 1],
            },
            &[&x3],
        );
        assert_eq!(y.shape(), [4, 2, 3]);
        // y[k, i, j] = x[i, j, k]: y[1, 1, 2] = x[1, 2, 1] = 21.
        assert_eq!(y.as_f32().unwrap()[6 + 3 + 2], 21.0);
        // ONNX spec gather_0 shape rule and a negative index.
        let idx = ti(&[2, 2], &[0, 1, -1, 0]);
        let g = eval1(Op::Gather { axis: 0 }, &[&x, &idx]);
        assert_eq!(g.shape(), [2, 2, 3]);
        assert_eq!(
            g.as_f32().unwrap(),
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 0.0, 1.0, 2.0]
        );
        // The Shape -> Gather(scalar) pattern of shape subgraphs.
        let shape = ti(&[4], &[1, 3, 224, 224]);
        let g = eval1(Op::Gather { axis: 0 }, &[&shape, &ti(&[], &[2])]);
        assert_eq!((g.shape(), g.as_i64().unwrap()), (&[][..], &[224][..]));
        assert!(eval_op(&Op::Gather { axis: 1 }, &[&x, &ti(&[1], &[3])]).is_err());
    }

    #[test]
    fn pad_modes() {
        // ONNX spec Pad examples: x = [[1.0, 1.2], [2.3, 3.4], [4.5, 5.7]], pads [0, 2, 0, 0].
        let x = t(&[3, 2], &[1.0, 1.2, 2.3, 3.4, 4.5, 5.7]);
        let pad = |mode| {
            Op::Pad(Pad {
                pads: vec![0, 2, 0, 0],
                mode,
                value: 0.0,
            })
        };
        assert_eq!(
            eval1(pad(PadMode::Constant), &[&x]).as_f32().unwrap(),
            [0.0, 0.0, 1.0, 1.2, 0.0, 0.0, 2.3, 3.4, 0.0, 0.0, 4.5, 5.7]
        );
        // The spec's reflect example pads by more than n - 1 (numpy's periodic reflection).
        let y = eval1(pad(PadMode::Reflect), &[&x]);
        assert_eq!(
            y.as_f32().unwrap(),
            [1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7]
        );
        // Row [a, b, c] reflected by 2 becomes [c, b, a, b, c].
        let x3 = t(&[1, 3], &[1.0, 1.2, 1.4]);
        assert_eq!(
            eval1(pad(PadMode::Reflect), &[&x3]).as_f32().unwrap(),
            [1.4, 1.2, 1.0, 1.2, 1.4]
        );
        let y = eval1(pad(PadMode::Edge), &[&x]);
        assert_eq!(
            y.as_f32().unwrap(),
            [1.0, 1.0, 1.0, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7]
        );
        // Negative pads crop; constant value is used.
        let crop = Op::Pad(Pad {
            pads: vec![-1, 0, 0, 1],
            mode: PadMode::Constant,
            value: 9.0,
        });
        assert_eq!(
            eval1(crop, &[&x]).as_f32().unwrap(),
            [2.3, 3.4, 9.0, 4.5, 5.7, 9.0]
        );
        // Extreme pads that cancel out are not an overflow.
        let extreme = Op::Pad(Pad {
            pads: vec![0, i64::MIN, 0, i64::MAX],
            mode: PadMode::Constant,
            value: 0.0,
        });
        assert_eq!(eval1(extreme, &[&x]).shape(), [3, 1]);
    }

    #[test]
    fn shape_subgraph_ops() {
        let x = t(&[1, 3, 4, 5], &seq(60));
        let s = eval1(Op::Shape { start: 1, end: 4 }, &[&x]);
        assert_eq!(s.as_i64().unwrap(), [3, 4, 5]);
        let c = eval1(
            Op::ConstantOfShape {
                shape: vec![2],
                dtype: DType::I64,
                value: 7.0,
            },
            &[],
        );
        assert_eq!(c.as_i64().unwrap(), [7, 7]);
        let r = eval1(
            Op::Range,
            &[&ti(&[], &[10]), &ti(&[], &[4]), &ti(&[], &[-3])],
        );
        assert_eq!(r.as_i64().unwrap(), [10, 7]);
        let r = eval1(
            Op::Range,
            &[
                &Tensor::scalar_f32(1.0),
                &Tensor::scalar_f32(2.0),
                &Tensor::scalar_f32(0.25),
            ],
        );
        assert_eq!(r.as_f32().unwrap(), [1.0, 1.25, 1.5, 1.75]);
        let e = eval1(Op::Expand { shape: vec![2, 3] }, &[&ti(&[2, 1], &[1, 2])]);
        assert_eq!(e.as_i64().unwrap(), [1, 1, 1, 2, 2, 2]);
        let u = eval1(Op::Reshape { shape: vec![1, 3] }, &[&s]);
        assert_eq!(
            (u.shape(), u.as_i64().unwrap()),
            (&[1, 3][..], &[3, 4, 5][..])
        );
        let b = Tensor::new(DType::Bool, vec![2], Data::Bool(vec![true, false])).unwrap();
        let e = eval1(Op::Expand { shape: vec![2, 2] }, &[&b]);
        assert_eq!(e.data, Data::Bool(vec![true, false, true, false]));
    }
}
