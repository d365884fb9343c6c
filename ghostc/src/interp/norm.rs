//! Layer normalizations: ONNX LayerNormalization (over the trailing dims) and the channel
//! norm the `channels_first` pass turns a channels-last one into. Mean and variance
//! accumulate in f64, two passes (no `E[x^2] - mean^2` cancellation).

use super::{float_tensor, floats, Result};
use crate::ir::Tensor;

/// Normalizes `count` groups of `n` values; value `k` of group `o` is at
/// `(o / inner * n + k) * inner + o % inner`, and its affine parameters are `param(k, o)`.
fn normalize(
    x: &[f32],
    y: &mut [f32],
    (n, inner): (usize, usize),
    epsilon: f32,
    param: impl Fn(usize) -> (f32, f32),
) {
    let outer = x.len() / (n * inner).max(1);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let mean = (0..n).map(|k| x[at(k)] as f64).sum::<f64>() / n as f64;
            let var = (0..n)
                .map(|k| (x[at(k)] as f64 - mean).powi(2))
                .sum::<f64>()
                / n as f64;
            let rstd = 1.0 / (var + epsilon as f64).sqrt();
            for k in 0..n {
                let (scale, bias) = param(k * inner + i);
                y[at(k)] = ((x[at(k)] as f64 - mean) * rstd * scale as f64 + bias as f64) as f32;
            }
        }
    }
}

/// Element `i` of the normalized dims `dims` read from `p`, broadcast to them (ONNX rules:
/// `p`'s shape aligns with the trailing dims).
fn broadcast_at(p: &Tensor, pv: &[f32], dims: &[usize], i: usize) -> f32 {
    let ps = p.shape();
    let lead = dims.len() - ps.len();
    let (mut rest, mut at, mut stride) = (i, 0, 1);
    for d in (0..dims.len()).rev() {
        let coord = rest % dims[d];
        rest /= dims[d];
        if d >= lead {
            let pd = ps[d - lead];
            if pd != 1 {
                at += coord * stride;
            }
            stride *= pd;
        }
    }
    pv[at]
}

/// ONNX LayerNormalization over the dims `axis..` (output 0 only).
pub(super) fn layer_norm(
    axis: usize,
    epsilon: f32,
    x: &Tensor,
    scale: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let dims = &x.shape()[axis..];
    let n: usize = dims.iter().product();
    let xv = floats(x)?;
    let sv = floats(scale)?;
    let bv = bias.map(floats).transpose()?;
    let mut y = vec![0.0f32; xv.len()];
    normalize(xv, &mut y, (n, 1), epsilon, |k| {
        let s = broadcast_at(scale, sv, dims, k);
        let b = match (bias, bv) {
            (Some(b), Some(bv)) => broadcast_at(b, bv, dims, k),
            _ => 0.0,
        };
        (s, b)
    });
    Ok(float_tensor(x.ty.clone(), y))
}

/// Layer normalization over axis 1 of `[N, C, ..]` at every position of the other axes.
pub(super) fn channel_norm(
    epsilon: f32,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
) -> Result<Tensor> {
    let shape = x.shape();
    let (c, inner) = (shape[1], shape[2..].iter().product::<usize>());
    let (xv, gv, bv) = (floats(x)?, floats(gamma)?, floats(beta)?);
    let mut y = vec![0.0f32; xv.len()];
    normalize(xv, &mut y, (c, inner), epsilon, |k| {
        (gv[k / inner], bv[k / inner])
    });
    Ok(float_tensor(x.ty.clone(), y))
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::{eval1, t};
    use crate::ir::Op;

    #[test]
    fn layer_norm_last_axis_with_broadcast_scale() {
        // Two rows of three: mean 2, biased variance 2/3; mean 6, variance 8.
        let x = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 4.0, 10.0]);
        let scale = t(&[3], &[1.0, 2.0, 3.0]);
        let bias = t(&[1], &[0.5]);
        let op = Op::LayerNorm {
            axis: 1,
            epsilon: 0.0,
        };
        let y = eval1(op, &[&x, &scale, &bias]);
        let r = (1.5f64).sqrt();
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let want = [
            0.5 - r,
            0.5,
            0.5 + 3.0 * r,
            0.5 - h,
            0.5 - 2.0 * h,
            0.5 + 6.0 * h,
        ];
        for (a, b) in y.as_f32().unwrap().iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn channel_norm_equals_layer_norm_of_the_transpose() {
        // [1, 2, 1, 3]: channel pairs (1, 3), (2, 6), (0, 8) per pixel.
        let x = t(&[1, 2, 1, 3], &[1.0, 2.0, 0.0, 3.0, 6.0, 8.0]);
        let g = t(&[2], &[2.0, -1.0]);
        let b = t(&[2], &[0.0, 1.0]);
        let y = eval1(Op::ChannelNorm { epsilon: 0.0 }, &[&x, &g, &b]);
        // Every pixel normalizes to (-1, 1): times gamma plus beta, (-2, 0).
        assert_eq!(y.as_f32().unwrap(), &[-2.0, -2.0, -2.0, 0.0, 0.0, 0.0]);
    }
}
