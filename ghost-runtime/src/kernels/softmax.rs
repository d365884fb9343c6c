//! Softmax over a flat vector (the classifier output), and the `expf` it needs (core has no
//! transcendental functions without std).

use crate::error::{check, check_len, Error};
use crate::isa::Kernels;

/// `e^x` with relative error below ~2 ulp over the normal range: `x = n ln2 + r`,
/// `|r| <= ln2/2`, degree-6 Taylor polynomial for `e^r`, scaled by `2^n` through the exponent
/// bits. Inputs are clamped to [-87, 88] (results flush to ~1e-38 / ~1.6e38).
#[inline]
pub fn expf(x: f32) -> f32 {
    let x = if x.is_nan() {
        return x;
    } else {
        x.clamp(-87.0, 88.0)
    };
    let t = x * core::f32::consts::LOG2_E;
    let n = if t >= 0.0 {
        (t + 0.5) as i32
    } else {
        (t - 0.5) as i32
    };
    let nf = n as f32;
    let r = x - nf * 0.693_145_75 - nf * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n + 127) as u32) << 23)
}

impl Kernels {
    /// `out[i] = exp(x[i] - max) / sum_j exp(x[j] - max)` over `x.len()` values (scalar; the
    /// classifier's 1000 logits are not worth a vector path).
    pub fn softmax(self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        check(!x.is_empty(), "x", "must be non-empty")?;
        check_len("out", out.len(), x.len())?;
        let max = x
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        let mut sum = 0.0;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = expf(v - max);
            sum += *o;
        }
        let inv = 1.0 / sum;
        for o in out[..x.len()].iter_mut() {
            *o *= inv;
        }
        Ok(())
    }
}
