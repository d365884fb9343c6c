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
//! With AVX-512 BW the sum runs on bytes (`wide`): 8 pixels per 64-byte load, widened to
//! `u16` by unpacking against zero and added there, flushed to `i32` before a lane can pass
//! `u16::MAX`; only the final 8 lanes go through `f32`, with the operations above in the same
//! order (the integer sum is the same, so the bytes are). The `f32` body spends three
//! operations per 8 bytes (widen, convert, add), which made the squeeze of a 672-channel
//! 14x14 tensor 4.5 us of GhostNet's int8 run.
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
    // SAFETY: forwarded.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if unsafe { crate::kernels::qelementwise_zmm::try_run(k, a, wide) } {
        return;
    }
    qdispatch!(k, run, a, QPoolArgs; vnni []; avx2 []; scalar [])
}

/// 64-byte loads of [`wide`]'s loop between flushes of its `u16` sums: each adds at most
/// 255 to a lane of one of two sums, and the two sums' total, `256 * 255`, fits `u16`.
#[cfg(all(target_arch = "x86_64", not(miri)))]
const FLUSH: usize = 256;

/// [`run`] summing bytes in `u16` lanes (see the module docs).
///
/// # Safety
/// As [`run`]; AVX-512F/BW/VL available.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl")]
unsafe fn wide(a: &QPoolArgs) {
    use core::arch::x86_64::*;
    let bytes = a.pixels * 8;
    let zo = a.p.out_zero_point as i32;
    // SAFETY: (whole body) the features are enabled; every load is of block b's bytes
    // `i .. i + 64`, masked to the ones below `bytes`; the store is block b's 8 output bytes.
    unsafe {
        let zero = _mm512_setzero_si512();
        let (lo, hi) = (
            _mm256_set1_ps(-zo as f32),
            _mm256_set1_ps((255 - zo) as f32),
        );
        let scale = _mm256_set1_ps(a.p.scale);
        // `-n * zx`: fits i32 (`pixels <= MAX_PIXELS`).
        let bias = _mm256_set1_epi32(-((a.pixels * a.p.in_zero_point as usize) as i32));
        for b in 0..a.blocks {
            let xb = a.x.add(b * bytes);
            // Each 128-bit lane of the `u16` sums holds the 8 channels of one pixel residue:
            // `even` the pixels at byte offsets 0 mod 16 of a load, `odd` those at 8.
            let mut total = zero;
            let mut i = 0;
            while i < bytes {
                // Two pairs of sums, for two loads in flight.
                let (mut even, mut odd, mut even2, mut odd2) = (zero, zero, zero, zero);
                let end = bytes.min(i + FLUSH * 64);
                while i + 128 <= end {
                    let x = _mm512_loadu_si512(xb.add(i).cast());
                    let x2 = _mm512_loadu_si512(xb.add(i + 64).cast());
                    even = _mm512_add_epi16(even, _mm512_unpacklo_epi8(x, zero));
                    odd = _mm512_add_epi16(odd, _mm512_unpackhi_epi8(x, zero));
                    even2 = _mm512_add_epi16(even2, _mm512_unpacklo_epi8(x2, zero));
                    odd2 = _mm512_add_epi16(odd2, _mm512_unpackhi_epi8(x2, zero));
                    i += 128;
                }
                if i < end {
                    // The last 1 to 16 pixels before the flush.
                    let m = u64::MAX >> (64 - (end - i).min(64));
                    let x = _mm512_maskz_loadu_epi8(m, xb.add(i).cast());
                    let m2 = if end - i > 64 {
                        u64::MAX >> (128 - (end - i))
                    } else {
                        0
                    };
                    let x2 = _mm512_maskz_loadu_epi8(m2, xb.wrapping_add(i + 64).cast());
                    even = _mm512_add_epi16(even, _mm512_unpacklo_epi8(x, zero));
                    odd = _mm512_add_epi16(odd, _mm512_unpackhi_epi8(x, zero));
                    even2 = _mm512_add_epi16(even2, _mm512_unpacklo_epi8(x2, zero));
                    odd2 = _mm512_add_epi16(odd2, _mm512_unpackhi_epi8(x2, zero));
                    i = end;
                }
                let (even, odd) = (_mm512_add_epi16(even, even2), _mm512_add_epi16(odd, odd2));
                let s = _mm512_add_epi32(
                    _mm512_cvtepu16_epi32(_mm512_castsi512_si256(even)),
                    _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64::<1>(even)),
                );
                let t = _mm512_add_epi32(
                    _mm512_cvtepu16_epi32(_mm512_castsi512_si256(odd)),
                    _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64::<1>(odd)),
                );
                total = _mm512_add_epi32(total, _mm512_add_epi32(s, t));
            }
            // Lanes 0-7 and 8-15 are two halves of the pixels: their sum is the channels'.
            let sum = _mm256_add_epi32(
                _mm512_castsi512_si256(total),
                _mm512_extracti64x4_epi64::<1>(total),
            );
            let v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(bias, sum)), scale);
            let v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            let q = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(zo));
            _mm_storel_epi64(a.y.add(b * 8).cast(), _mm256_cvtepi32_epi8(q));
        }
    }
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
