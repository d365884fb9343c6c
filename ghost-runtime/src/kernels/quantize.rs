//! Quantize (`f32` NCHW8c -> `u8` NCHW8c) and dequantize (`u8` -> `f32`) at the boundaries of
//! an int8 region, per-tensor scale and zero point (layout: [`crate::kernels::qpointwise`]).
//!
//! * Quantize (ONNX `QuantizeLinear`): `q = clamp(round_half_to_even(x / scale) + zp, 0, 255)`
//!   with an IEEE division (as ONNX Runtime's MLAS), clamped to `[-zp, 255 - zp]` before
//!   rounding; NaN gives 0.
//! * Dequantize (`DequantizeLinear`): `x = f32(q - zp) * scale`.
//!
//! Both are bit-identical on every path. Padded lanes are converted like the others.

use crate::arch::QSimd;
use crate::error::{check, check_len, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::pointwise::view;
#[cfg(all(target_arch = "x86_64", not(miri)))]
use crate::kernels::qelementwise_zmm as zmm;
use crate::{Dst, Src};

/// A validated conversion of `n` vectors of 8 lanes.
#[derive(Clone, Copy)]
pub(crate) struct QuantArgs {
    pub f: *mut f32,
    pub q: *mut u8,
    pub n: usize,
    pub scale: f32,
    pub zp: i32,
    /// `true`: `f -> q`; `false`: `q -> f`.
    pub quantize: bool,
}

impl QuantArgs {
    /// Vectors `v0 .. v1` only.
    pub(crate) fn share(&self, v0: usize, v1: usize) -> QuantArgs {
        QuantArgs {
            f: self.f.wrapping_add(v0 * 8),
            q: self.q.wrapping_add(v0 * 8),
            n: v1 - v0,
            ..*self
        }
    }
}

/// # Safety
/// `f` and `q` valid for `n * 8` elements (`f` only read when quantizing, `q` only read when
/// dequantizing) and not overlapping.
#[inline(always)]
unsafe fn run<S: QSimd>(s: S, a: &QuantArgs) {
    let scale = s.splat(a.scale);
    let zp = s.isplat(a.zp);
    if a.quantize {
        let lo = s.splat(-a.zp as f32);
        let hi = s.splat((255 - a.zp) as f32);
        for i in 0..a.n {
            // SAFETY: vector i < n of both views.
            unsafe {
                let v = s.clamp(s.div(s.load(a.f.add(i * 8)), scale), lo, hi);
                s.store_u8(a.q.add(i * 8), s.iadd(s.round(v), zp));
            }
        }
    } else {
        let nzp = s.splat(-a.zp as f32);
        for i in 0..a.n {
            // SAFETY: vector i < n of both views.
            unsafe {
                let v = s.add(s.load_u8(a.q.add(i * 8)), nzp);
                s.store(a.f.add(i * 8), s.mul(v, scale));
            }
        }
    }
}

/// # Safety
/// As [`run`].
pub(crate) unsafe fn quant_exec(k: Kernels, a: &QuantArgs) {
    // SAFETY: forwarded.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if unsafe { zmm::try_run(k, a, zmm::quant) } {
        return;
    }
    qdispatch!(k, run, a, QuantArgs; vnni []; avx2 []; scalar [])
}

/// A validated quantize-dequantize round trip over `len` plain `f32` values.
pub(crate) struct FakeArgs {
    pub(crate) x: *const f32,
    pub(crate) y: *mut f32,
    pub(crate) len: usize,
    pub(crate) scale: f32,
    pub(crate) zp: i32,
}

/// # Safety
/// `x` valid for reading and `y` for writing `len` floats; they do not overlap.
#[inline(always)]
unsafe fn fake<S: QSimd>(s: S, a: &FakeArgs) {
    let scale = s.splat(a.scale);
    let lo = s.splat(-a.zp as f32);
    let hi = s.splat((255 - a.zp) as f32);
    // `q - zp` is the clamped, rounded quotient, so the dequantized value is that times the
    // scale: the same bits as `quantize_u8` then `dequantize_u8`. (A function, not a closure:
    // a closure can lose the caller's target features.)
    #[inline(always)]
    fn round_trip<S: QSimd>(s: S, v: S::V, scale: S::V, lo: S::V, hi: S::V) -> S::V {
        s.mul(s.to_f32(s.round(s.clamp(s.div(v, scale), lo, hi))), scale)
    }
    let full = a.len / 8;
    for i in 0..full {
        // SAFETY: vector i < len / 8 of both.
        unsafe {
            s.store(
                a.y.add(i * 8),
                round_trip(s, s.load(a.x.add(i * 8)), scale, lo, hi),
            )
        };
    }
    let rest = a.len - full * 8;
    if rest > 0 {
        let mut t = [0f32; 8];
        // SAFETY: the last `rest` floats of both; `t` holds 8.
        unsafe {
            core::ptr::copy_nonoverlapping(a.x.add(full * 8), t.as_mut_ptr(), rest);
            s.store(
                t.as_mut_ptr(),
                round_trip(s, s.load(t.as_ptr()), scale, lo, hi),
            );
            core::ptr::copy_nonoverlapping(t.as_ptr(), a.y.add(full * 8), rest);
        }
    }
}

/// # Safety
/// As [`fake`].
unsafe fn fake_exec(k: Kernels, a: &FakeArgs) {
    // SAFETY: forwarded.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if unsafe { zmm::try_run(k, a, zmm::fake) } {
        return;
    }
    qdispatch!(k, fake, a, FakeArgs; vnni []; avx2 []; scalar [])
}

/// Start offsets of the input and output views (`(len, block_offset)` each), both holding
/// `blocks` blocks of `pixels` pixels.
fn views(
    blocks: usize,
    pixels: usize,
    input: (usize, usize),
    output: (usize, usize),
) -> Result<(usize, usize), Error> {
    Ok((
        view("input", input.0, input.1, blocks, pixels)?,
        view("output", output.0, output.1, blocks, pixels)?,
    ))
}

/// A scale that divides: finite and positive.
pub(crate) fn check_scale(scale: f32, arg: &'static str) -> Result<(), Error> {
    check(
        scale.is_finite() && scale > 0.0,
        arg,
        "must be finite and positive",
    )
}

/// Checks of [`Kernels::quantize_u8`].
pub(crate) fn quantize_args(
    blocks: usize,
    pixels: usize,
    scale: f32,
    zero_point: u8,
    input: Src<'_>,
    output: Dst<'_, u8>,
) -> Result<QuantArgs, Error> {
    check_scale(scale, "scale")?;
    let (xo, yo) = views(
        blocks,
        pixels,
        (input.data.len(), input.block_offset),
        (output.data.len(), output.block_offset),
    )?;
    Ok(QuantArgs {
        // Only read (quantize): the pointer is never written through.
        f: input.data[xo..].as_ptr().cast_mut(),
        q: output.data[yo..].as_mut_ptr(),
        n: blocks * pixels,
        scale,
        zp: zero_point as i32,
        quantize: true,
    })
}

/// Checks of [`Kernels::dequantize_u8`].
pub(crate) fn dequantize_args(
    blocks: usize,
    pixels: usize,
    scale: f32,
    zero_point: u8,
    input: Src<'_, u8>,
    output: Dst<'_>,
) -> Result<QuantArgs, Error> {
    check(scale.is_finite(), "scale", "must be finite")?;
    let (xo, yo) = views(
        blocks,
        pixels,
        (input.data.len(), input.block_offset),
        (output.data.len(), output.block_offset),
    )?;
    Ok(QuantArgs {
        f: output.data[yo..].as_mut_ptr(),
        // Only read (dequantize).
        q: input.data[xo..].as_ptr().cast_mut(),
        n: blocks * pixels,
        scale,
        zp: zero_point as i32,
        quantize: false,
    })
}

impl Kernels {
    /// Quantizes `blocks` blocks of `pixels` pixels of an `f32` NCHW8c tensor into `u8`
    /// NCHW8c (`QuantizeLinear`, see [`crate::kernels::quantize`]); `scale > 0`.
    pub fn quantize_u8(
        self,
        blocks: usize,
        pixels: usize,
        scale: f32,
        zero_point: u8,
        input: Src<'_>,
        output: Dst<'_, u8>,
    ) -> Result<(), Error> {
        let a = quantize_args(blocks, pixels, scale, zero_point, input, output)?;
        // SAFETY: extents checked; the output is a unique borrow.
        unsafe { quant_exec(self, &a) };
        Ok(())
    }

    /// `y = DequantizeLinear(QuantizeLinear(x))` on `len` plain `f32` values (any layout):
    /// each value rounded to the nearest of the 256 levels `(q - zero_point) * scale`, as
    /// [`Kernels::quantize_u8`] then [`Kernels::dequantize_u8`] would give it, without the
    /// bytes in between (a QDQ model's quantized input in front of an `f32` stem).
    pub fn fake_quantize_u8(
        self,
        scale: f32,
        zero_point: u8,
        len: usize,
        x: &[f32],
        y: &mut [f32],
    ) -> Result<(), Error> {
        check_scale(scale, "scale")?;
        check_len("x", x.len(), len)?;
        check_len("y", y.len(), len)?;
        let a = FakeArgs {
            x: x.as_ptr(),
            y: y.as_mut_ptr(),
            len,
            scale,
            zp: zero_point as i32,
        };
        // SAFETY: lengths checked; `y` is a unique borrow, so it does not overlap `x`.
        unsafe { fake_exec(self, &a) };
        Ok(())
    }

    /// Dequantizes `blocks` blocks of `pixels` pixels of a `u8` NCHW8c tensor into `f32`
    /// NCHW8c (`DequantizeLinear`).
    pub fn dequantize_u8(
        self,
        blocks: usize,
        pixels: usize,
        scale: f32,
        zero_point: u8,
        input: Src<'_, u8>,
        output: Dst<'_>,
    ) -> Result<(), Error> {
        let a = dequantize_args(blocks, pixels, scale, zero_point, input, output)?;
        // SAFETY: extents checked; the output is a unique borrow.
        unsafe { quant_exec(self, &a) };
        Ok(())
    }
}
