//! Pooling and reductions. Sums accumulate in f64.

use super::elementwise::{max_nan, min_nan};
use super::{float_tensor, floats, InterpError, Result};
use crate::ir::{Data, Pool, PoolKind, Reduce, ReduceKind, Tensor, TensorType};

/// MaxPool / AveragePool over the two spatial dims of NCHW.
///
/// Max ignores padding (an all-padding window gives f32's lowest value, as ONNX Runtime does).
/// Average divides by the in-bounds taps, or with `count_include_pad` by the taps inside the
/// padded input.
pub(super) fn pool(p: &Pool, x: &Tensor, out: &TensorType) -> Result<Tensor> {
    if p.kind == PoolKind::Avg && p.count_include_pad && p.ceil_mode {
        // The folded pads mix the model's pads with the ceil_mode extension, which ONNX does not
        // count; the IR does not record the split.
        return Err(InterpError::Unsupported {
            op: "avg_pool",
            detail: "count_include_pad with ceil_mode (original pads not recorded)".into(),
        });
    }
    let xs = x.shape();
    let (batch, channels, h, w) = (xs[0], xs[1], xs[2] as isize, xs[3] as isize);
    let (oh, ow) = (out.shape[2], out.shape[3]);
    let [pt, pl, pb, pr] = p.pads.map(|v| v as isize);
    let xv = floats(x)?;
    let mut y = Vec::with_capacity(batch * channels * oh * ow);
    for plane in xv.chunks_exact((h * w) as usize).take(batch * channels) {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut max = f32::MIN;
                let mut sum = 0.0f64;
                let (mut in_bounds, mut in_padded) = (0usize, 0usize);
                for ky in 0..p.kernel[0] {
                    let iy = (oy * p.strides[0] + ky * p.dilations[0]) as isize - pt;
                    for kx in 0..p.kernel[1] {
                        let ix = (ox * p.strides[1] + kx * p.dilations[1]) as isize - pl;
                        if iy < h + pb && ix < w + pr {
                            in_padded += 1;
                        }
                        if iy < 0 || ix < 0 || iy >= h || ix >= w {
                            continue;
                        }
                        let v = plane[(iy * w + ix) as usize];
                        max = max_nan(max, v);
                        sum += v as f64;
                        in_bounds += 1;
                    }
                }
                y.push(match p.kind {
                    PoolKind::Max => max,
                    PoolKind::Avg => {
                        let count = if p.count_include_pad {
                            in_padded
                        } else {
                            in_bounds
                        };
                        (sum / count as f64) as f32
                    }
                });
            }
        }
    }
    Ok(float_tensor(out.clone(), y))
}

/// Mean over every dim after the first two.
pub(super) fn global_average_pool(x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let inner: usize = x.shape()[2..].iter().product();
    let planes = x.shape()[0] * x.shape()[1];
    let xv = floats(x)?;
    let y = (0..planes)
        .map(|i| {
            (xv[i * inner..][..inner]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>()
                / inner as f64) as f32
        })
        .collect();
    Ok(float_tensor(out.clone(), y))
}

/// ReduceMean/Sum/Max/Min over `axes` (empty: all). Max and Min of an empty set give the
/// type's lowest / highest value (ONNX opset 18); the mean of an empty set is NaN.
pub(super) fn reduce(r: &Reduce, x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let shape = x.shape();
    let axes = crate::ir::infer::reduce_axes(&r.axes, shape.len())?;
    // The output index of every input element: reduced axes collapse to 0.
    let kept: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(d, &n)| if axes.contains(&d) { 1 } else { n })
        .collect();
    let n_out: usize = kept.iter().product();
    let group_size: usize = axes.iter().map(|&a| shape[a]).product();
    let target = reduce_target(shape, &kept);
    let data = match &x.data {
        Data::F32(v) => {
            let (init, step): (f64, fn(f64, f64) -> f64) = match r.kind {
                ReduceKind::Sum | ReduceKind::Mean => (0.0, |a, b| a + b),
                ReduceKind::Max => (f32::MIN as f64, |a, b| max_nan(a as f32, b as f32) as f64),
                ReduceKind::Min => (f32::MAX as f64, |a, b| min_nan(a as f32, b as f32) as f64),
            };
            let mut acc = vec![init; n_out];
            for (&t, &v) in target.iter().zip(v) {
                acc[t] = step(acc[t], v as f64);
            }
            if r.kind == ReduceKind::Mean {
                acc.iter_mut().for_each(|a| *a /= group_size as f64);
            }
            Data::F32(acc.into_iter().map(|a| a as f32).collect())
        }
        Data::I64(v) => {
            let (init, step): (i64, fn(i64, i64) -> i64) = match r.kind {
                ReduceKind::Sum | ReduceKind::Mean => (0, i64::wrapping_add),
                ReduceKind::Max => (i64::MIN, i64::max),
                ReduceKind::Min => (i64::MAX, i64::min),
            };
            let mut acc = vec![init; n_out];
            for (&t, &v) in target.iter().zip(v) {
                acc[t] = step(acc[t], v);
            }
            if r.kind == ReduceKind::Mean {
                if group_size == 0 {
                    return Err(InterpError::Value {
                        op: "reduce_mean",
                        detail: "integer mean of no elements".into(),
                    });
                }
                acc.iter_mut().for_each(|a| *a /= group_size as i64);
            }
            Data::I64(acc)
        }
        Data::Bool(_) => {
            return Err(InterpError::Unsupported {
                op: "reduce",
                detail: "bool input".into(),
            })
        }
    };
    Ok(Tensor {
        ty: out.clone(),
        data,
    })
}

/// Flat index into the `kept`-shaped output of every element of a `shape`-shaped input.
fn reduce_target(shape: &[usize], kept: &[usize]) -> Vec<usize> {
    let mut out_strides = vec![0usize; shape.len()];
    let mut stride = 1;
    for d in (0..shape.len()).rev() {
        out_strides[d] = if kept[d] == 1 { 0 } else { stride };
        stride *= kept[d];
    }
    let numel: usize = shape.iter().product();
    let mut target = Vec::with_capacity(numel);
    let mut counter = vec![0usize; shape.len()];
    let mut flat = 0usize;
    for _ in 0..numel {
        target.push(flat);
        for d in (0..shape.len()).rev() {
            counter[d] += 1;
            flat += out_strides[d];
            if counter[d] < shape[d] {
                break;
            }
            flat -= out_strides[d] * counter[d];
            counter[d] = 0;
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::{eval1, t};
    use crate::ir::{Op, Pool, PoolKind, Reduce, ReduceKind, Tensor};

    fn pool(kind: PoolKind, k: usize, s: usize, pads: [usize; 4], count_include_pad: bool) -> Op {
        Op::Pool(Pool {
            kind,
            kernel: [k, k],
            strides: [s, s],
            pads,
            dilations: [1, 1],
            ceil_mode: false,
            count_include_pad,
        })
    }
    #[test]
    fn max_and_avg_pool_by_hand() {
        let x = t(
            &[1, 1, 4, 4],
            &(1..=16).map(|v| v as f32).collect::<Vec<_>>(),
        );
        let y = eval1(pool(PoolKind::Max, 2, 2, [0; 4], false), &[&x]);
        assert_eq!(y.as_f32().unwrap(), [6.0, 8.0, 14.0, 16.0]);
        let y = eval1(pool(PoolKind::Avg, 2, 2, [0; 4], false), &[&x]);
        assert_eq!(y.as_f32().unwrap(), [3.5, 5.5, 11.5, 13.5]);
    }

    #[test]
    fn avg_pool_padding_counts() {
        // 3x3 of ones, 3x3 window, pad 1: corners see 4 real taps of 9.
        let x = t(&[1, 1, 3, 3], &[1.0; 9]);
        let excl = eval1(pool(PoolKind::Avg, 3, 1, [1; 4], false), &[&x]);
        assert!(excl.as_f32().unwrap().iter().all(|&v| v == 1.0));
        let incl = eval1(pool(PoolKind::Avg, 3, 1, [1; 4], true), &[&x]);
        let v = incl.as_f32().unwrap();
        assert_eq!((v[0], v[1], v[4]), (4.0 / 9.0, 6.0 / 9.0, 1.0));
        // Max pool ignores padding even when every real value is negative.
        let neg = t(&[1, 1, 2, 2], &[-1.0, -2.0, -3.0, -4.0]);
        let y = eval1(pool(PoolKind::Max, 2, 1, [1; 4], false), &[&neg]);
        assert_eq!(&y.as_f32().unwrap()[..3], [-1.0, -1.0, -2.0]);
    }

    #[test]
    fn global_pool_and_reduce() {
        let x = t(
            &[1, 2, 2, 2],
            &[1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, f32::NAN],
        );
        let g = eval1(Op::GlobalAveragePool, &[&x]);
        assert_eq!(g.shape(), [1, 2, 1, 1]);
        assert_eq!(g.as_f32().unwrap()[0], 2.5);
        assert!(g.as_f32().unwrap()[1].is_nan());
        let r = |kind, axes: Vec<usize>, keepdims| {
            Op::Reduce(Reduce {
                kind,
                axes,
                keepdims,
            })
        };
        let y = eval1(r(ReduceKind::Mean, vec![2, 3], true), &[&x]);
        assert_eq!(
            (y.shape(), y.as_f32().unwrap()[0]),
            (&[1, 2, 1, 1][..], 2.5)
        );
        let m = t(&[2, 3], &[1.0, 5.0, 3.0, 4.0, 2.0, 6.0]);
        assert_eq!(
            eval1(r(ReduceKind::Max, vec![0], false), &[&m])
                .as_f32()
                .unwrap(),
            [4.0, 5.0, 6.0]
        );
        assert_eq!(
            eval1(r(ReduceKind::Min, vec![1], false), &[&m])
                .as_f32()
                .unwrap(),
            [1.0, 2.0]
        );
        let s = eval1(r(ReduceKind::Sum, vec![], false), &[&m]);
        assert_eq!((s.shape(), s.as_f32().unwrap()), (&[][..], &[21.0][..]));
        let nan_max = eval1(r(ReduceKind::Max, vec![3], false), &[&x]);
        assert!(nan_max.as_f32().unwrap()[3].is_nan());
        let ints = Tensor::from_i64(vec![2, 2], vec![1, 2, 3, 5]).unwrap();
        assert_eq!(
            eval1(r(ReduceKind::Sum, vec![1], true), &[&ints])
                .as_i64()
                .unwrap(),
            [3, 8]
        );
    }
}
