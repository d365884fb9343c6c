//! Global average pool of an int8 (`u8`-stored) NCHW8c tensor (com.microsoft
//! `QLinearGlobalAveragePool`, or an SE block's `QuantizeLinear(ReduceMean(DequantizeLinear(x)))`
//! folded by ghostc): per channel,
//! `y = clamp(round_half_to_even(f32(sum(x) - n * zx) * scale) + zy, 0, 255)` with
//! `scale = sx / (sy * n)` computed by the caller.
//!
//! The sum is exact: pixels are added as `f32` in runs of at most 16,384 (below `2^22`, where
//! `f32` holds every integer and `QSimd::round` converts exactly), each run converted to
//! `i32` and added there, so every path gives the same bytes as the integer formula.
//!
//! Deliberately not done here: thread splitting (an SE squeeze reads at most a few hundred KB).

use crate::arch::QSimd;
use crate::error::{check, check_len, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::quantize::check_scale;

/// Parameters of [`Kernels::global_avgpool_u8`]; zero points in `u8` storage (an ONNX `int8`
/// zero point plus 128).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolU8Params {
    /// `x_scale / (y_scale * pixels)`, as `f32` operations in that order.
    pub scale: f32,
    /// Zero point of the input.
    pub in_zero_point: u8,
    /// Zero point of the output.
    pub out_zero_point: u8,
}

/// Pixels summed in `f32` before the run goes to `i32`: `16_384 * 255 < 2^22`.
const RUN: usize = 16_384;

/// The largest pixel count: `pixels * 255` must fit `i32`.
const MAX_PIXELS: usize = i32::MAX as usize / 255;

struct QPoolArgs {
    x: *const u8,
    y: *mut u8,
    blocks: usize,
    pixels: usize,
    p: PoolU8Params,
}

/// # Safety
/// `x` valid for `blocks * pixels * 8` bytes, `y` for `blocks * 8`; `pixels <= MAX_PIXELS`.
#[inline(always)]
unsafe fn run<S: QSimd>(s: S, a: &QPoolArgs) {
    let zo = a.p.out_zero_point as i32;
    let (lo, hi) = (s.splat(-zo as f32), s.splat((255 - zo) as f32));
    let scale = s.splat(a.p.scale);
    // `-n * zx`: fits i32 (`pixels <= MAX_PIXELS`).
    let bias = s.isplat(-((a.pixels * a.p.in_zero_point as usize) as i32));
    for b in 0..a.blocks {
        // SAFETY: block b of the input.
        let xb = unsafe { a.x.add(b * a.pixels * 8) };
        let mut total = bias;
        let mut p0 = 0;
        while p0 < a.pixels {
            let n = RUN.min(a.pixels - p0);
            // Four chains of exact integers (at most RUN * 255 < 2^22 in all).
            let mut acc = [s.zero(); 4];
            let mut p = 0;
            while p + 4 <= n {
                for (i, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: pixel p0 + p + i < pixels of block b.
                    *acc = s.add(*acc, unsafe { s.load_u8(xb.add((p0 + p + i) * 8)) });
                }
                p += 4;
            }
            while p < n {
                // SAFETY: as above.
                acc[0] = s.add(acc[0], unsafe { s.load_u8(xb.add((p0 + p) * 8)) });
                p += 1;
            }
            let sum = s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3]));
            total = s.iadd(total, s.round(sum));
            p0 += n;
        }
        let v = s.clamp(s.mul(s.to_f32(total), scale), lo, hi);
        // SAFETY: block b of the output (8 bytes).
        unsafe { s.store_u8(a.y.add(b * 8), s.iadd(s.round(v), s.isplat(zo))) };
    }
}

/// # Safety
/// As [`run`].
unsafe fn pool_exec(k: Kernels, a: &QPoolArgs) {
    qdispatch!(k, run, a, QPoolArgs; vnni []; avx2 []; scalar [])
}

impl Kernels {
    /// Global average pool of an NCHW8c int8 tensor `x` of `blocks` blocks of `pixels` pixels
    /// into `y` (`blocks * 8` bytes, the `[C, 1, 1]` result in NCHW8c), requantized as in
    /// [`crate::kernels::qpool`].
    pub fn global_avgpool_u8(
        self,
        params: PoolU8Params,
        blocks: usize,
        pixels: usize,
        x: &[u8],
        y: &mut [u8],
    ) -> Result<(), Error> {
        check_scale(params.scale, "scale")?;
        check(
            pixels > 0 && pixels <= MAX_PIXELS,
            "pixels",
            "must be positive and at most i32::MAX / 255",
        )?;
        let len = blocks.checked_mul(pixels * 8).ok_or(Error::Shape {
            arg: "blocks",
            detail: "blocks * pixels * 8 overflows usize",
        })?;
        check_len("x", x.len(), len)?;
        check_len("y", y.len(), blocks * 8)?;
        let a = QPoolArgs {
            x: x.as_ptr(),
            y: y.as_mut_ptr(),
            blocks,
            pixels,
            p: params,
        };
        // SAFETY: extents checked above; `y` is a unique borrow.
        unsafe { pool_exec(self, &a) };
        Ok(())
    }
}
