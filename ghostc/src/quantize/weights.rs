//! Weight and bias quantization: per-channel symmetric s8 weights, i32 biases, and bias
//! correction.
//!
//! - Weights: for each output channel `o`, `scale[o] = max|w[o]| / 127` (1 for an all-zero
//!   channel), zero point 0, `q = clamp(round_half_even(w / scale), -127, 127)`. The range is
//!   symmetric (-128 is never used) so that `-q` is always representable, which integer
//!   kernels that negate or pair weights rely on.
//! - Biases: `scale[o] = x_scale * w_scale[o]`, zero point 0, `q = round_half_even(b / scale)`;
//!   `None` when some `q` does not fit i32 (the caller then keeps the bias in f32).
//! - Bias correction: quantizing `W` shifts the expected output by `(Wq - W) . E[x]` per output
//!   channel (`Wq` dequantized). With `E[x]` per input channel from calibration, the bias is
//!   corrected by that shift before it is quantized, so the mean output of each channel stays
//!   where the f32 model had it. For a conv the shift sums over the kernel taps too (border
//!   padding, where `x` is 0 rather than `E[x]`, is ignored: it touches a thin frame only).
//!
//! Deliberately not done here: asymmetric weights, 7-bit "reduce range" weights (only needed
//! by AVX2 kernels that saturate `vpmaddubsw`; ghostc's kernels do not), empirical bias
//! correction (running the quantized model layer by layer).

/// A weight quantized per channel along `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedWeight {
    pub q: Vec<i8>,
    pub scale: Vec<f32>,
    pub axis: usize,
}

impl QuantizedWeight {
    /// The dequantized weights, `q * scale[channel]`.
    pub fn dequantized(&self, shape: &[usize]) -> Vec<f32> {
        let inner: usize = shape[self.axis + 1..].iter().product();
        let channels = shape[self.axis];
        self.q
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * self.scale[(i / inner) % channels])
            .collect()
    }
}

/// Quantizes `w` of `shape` per channel along `axis` (symmetric, s8, zero point 0).
pub fn quantize_per_channel(w: &[f32], shape: &[usize], axis: usize) -> QuantizedWeight {
    let inner: usize = shape[axis + 1..].iter().product();
    let channels = shape[axis];
    let mut absmax = vec![0f32; channels];
    for (i, x) in w.iter().enumerate() {
        let c = (i / inner) % channels;
        if x.is_finite() {
            absmax[c] = absmax[c].max(x.abs());
        }
    }
    let scale: Vec<f32> = absmax
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let s = scale[(i / inner) % channels];
            (x / s).clamp(-127.0, 127.0).round_ties_even() as i8
        })
        .collect();
    QuantizedWeight { q, scale, axis }
}

/// Quantizes a bias to i32 with scales `x_scale * w_scale[o]`; `None` when a value does not
/// fit (or is not finite).
pub fn quantize_bias(bias: &[f32], x_scale: f32, w_scale: &[f32]) -> Option<Vec<i32>> {
    bias.iter()
        .zip(w_scale)
        .map(|(&b, &ws)| {
            let q = (b / (x_scale * ws)).round_ties_even() as f64;
            (q.is_finite() && q >= i32::MIN as f64 && q <= i32::MAX as f64).then_some(q as i32)
        })
        .collect()
}

/// The expected output shift per output channel that quantizing a conv weight causes:
/// `sum_{i, taps} (Wq - W)[o, i, taps] * mean[g * cin_g + i]`, for weight `[cout, cin_g, kh,
/// kw]` in `group` groups and `mean` per input channel.
pub fn conv_shift(w: &[f32], wq: &[f32], shape: &[usize], group: usize, mean: &[f32]) -> Vec<f32> {
    let (cout, cin_g) = (shape[0], shape[1]);
    let taps: usize = shape[2..].iter().product();
    let cout_g = cout / group.max(1);
    (0..cout)
        .map(|o| {
            let g = o / cout_g.max(1);
            let mut s = 0f64;
            for i in 0..cin_g {
                let m = mean.get(g * cin_g + i).copied().unwrap_or(0.0) as f64;
                let base = (o * cin_g + i) * taps;
                let d: f64 = (base..base + taps).map(|k| (wq[k] - w[k]) as f64).sum();
                s += d * m;
            }
            s as f32
        })
        .collect()
}

/// The same for a dense weight: `[n, k]` (`trans_b`) or `[k, n]`, `mean` of length k.
pub fn dense_shift(
    w: &[f32],
    wq: &[f32],
    shape: &[usize],
    trans_b: bool,
    mean: &[f32],
) -> Vec<f32> {
    let (n, k) = if trans_b {
        (shape[0], shape[1])
    } else {
        (shape[1], shape[0])
    };
    (0..n)
        .map(|o| {
            (0..k)
                .map(|i| {
                    let idx = if trans_b { o * k + i } else { i * n + o };
                    (wq[idx] - w[idx]) as f64 * mean.get(i).copied().unwrap_or(0.0) as f64
                })
                .sum::<f64>() as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_error_is_at_most_half_a_step() {
        let shape = [3, 2, 2, 2];
        let w: Vec<f32> = (0..24)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.01 * (1 + i / 8) as f32)
            .collect();
        let qw = quantize_per_channel(&w, &shape, 0);
        let deq = qw.dequantized(&shape);
        for (i, (a, b)) in w.iter().zip(&deq).enumerate() {
            let s = qw.scale[i / 8];
            assert!(
                (a - b).abs() <= s * 0.5 + 1e-7,
                "{i}: {a} vs {b}, scale {s}"
            );
        }
        // Each channel's largest magnitude maps to +-127.
        for c in 0..3 {
            assert_eq!(
                qw.q[c * 8..c * 8 + 8]
                    .iter()
                    .map(|q| q.unsigned_abs())
                    .max(),
                Some(127)
            );
        }
        // Axis 1 (a [k, n] dense weight): channels are columns.
        let qd = quantize_per_channel(&[1.0, -0.5, 0.25, 2.0], &[2, 2], 1);
        assert_eq!(qd.scale, vec![1.0 / 127.0, 2.0 / 127.0]);
    }

    #[test]
    fn zero_channel_gets_scale_one_and_bias_overflow_is_none() {
        let qw = quantize_per_channel(&[0.0, 0.0, 1.0, -1.0], &[2, 2], 0);
        assert_eq!(qw.scale[0], 1.0);
        assert_eq!(
            quantize_bias(&[1.0, -2.0], 0.5, &[1.0, 0.25]),
            Some(vec![2, -16])
        );
        assert_eq!(quantize_bias(&[1e9], 1e-6, &[1e-6]), None);
    }

    #[test]
    fn shift_matches_the_change_in_mean_output() {
        // Depthwise conv (group = 2) with 1x2 kernels; mean input per channel.
        let shape = [2, 1, 1, 2];
        let w = [0.3, 0.7, -0.2, 0.11];
        let wq = [0.25, 0.75, -0.25, 0.0];
        let shift = conv_shift(&w, &wq, &shape, 2, &[2.0, -1.0]);
        assert!((shift[0] - ((-0.05 + 0.05) * 2.0)).abs() < 1e-6);
        assert!((shift[1] - (0.05 + 0.11)).abs() < 1e-6);
        // Dense [k=2, n=1] without trans_b.
        let s = dense_shift(&[1.0, 2.0], &[1.5, 1.0], &[2, 1], false, &[2.0, 3.0]);
        assert!((s[0] - (0.5 * 2.0 - 3.0)).abs() < 1e-6);
    }
}
