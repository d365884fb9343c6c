//! Binary ops on int8 (`u8`-stored) tensors as a QDQ graph writes them
//! (`QuantizeLinear(op(DequantizeLinear(a), DequantizeLinear(b)))`), each input dequantized,
//! combined in `f32`, quantized with an IEEE division, as [`crate::kernels::quantize`] does, so
//! every path gives the QDQ graph's bytes:
//! * [`Kernels::add_u8`], a residual connection (two tensors of one layout):
//!   `y = clamp(round_half_to_even((f32(a - za) * sa + f32(b - zb) * sb) / sy) + zy, 0, 255)`;
//! * [`Kernels::scale_channels_u8`], an SE gate (NCHW8c `x` times a per-channel `g`):
//!   `y = clamp(round_half_to_even((f32(x - zx) * sx) * (f32(g[c] - zg) * sg) / sy) + zy, ..)`.
//!
//! Deliberately not done here: general broadcasting, and the ratio form of com.microsoft
//! `QLinearAdd` / `QLinearMul` (`a * sa/sy + b * sb/sy`), which rounds differently.

use crate::arch::QSimd;
use crate::error::{check, check_len, Error};
use crate::isa::{qdispatch, Kernels};
#[cfg(all(target_arch = "x86_64", not(miri)))]
use crate::kernels::qelementwise_zmm as zmm;
use crate::kernels::quantize::check_scale;

/// Quantization parameters of the two inputs and the output of [`Kernels::add_u8`] and
/// [`Kernels::scale_channels_u8`]; zero points in `u8` storage (an ONNX `int8` zero point
/// plus 128).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct U8BinaryParams {
    /// Scale and zero point of the first input.
    pub a: (f32, u8),
    /// Scale and zero point of the second input.
    pub b: (f32, u8),
    /// Scale and zero point of the output.
    pub y: (f32, u8),
}

pub(crate) struct QAddArgs {
    pub(crate) a: *const u8,
    pub(crate) b: *const u8,
    pub(crate) y: *mut u8,
    /// Vectors of 8 bytes.
    pub(crate) n: usize,
    pub(crate) p: U8BinaryParams,
}

/// The parameters splatted once: either input dequantized, a result quantized.
struct Lanes<S: QSimd> {
    s: S,
    a: (S::V, S::V),
    b: (S::V, S::V),
    sy: S::V,
    zy: S::I,
    lo: S::V,
    hi: S::V,
}

impl<S: QSimd> Lanes<S> {
    #[inline(always)]
    fn new(s: S, p: &U8BinaryParams) -> Self {
        let neg = |z: u8| s.splat(-(z as f32));
        Lanes {
            s,
            a: (s.splat(p.a.0), neg(p.a.1)),
            b: (s.splat(p.b.0), neg(p.b.1)),
            sy: s.splat(p.y.0),
            zy: s.isplat(p.y.1 as i32),
            lo: neg(p.y.1),
            hi: s.splat((255 - p.y.1 as i32) as f32),
        }
    }

    /// `f32(q - zp) * scale` of the 8 bytes at `p`, with `(scale, -zp)` from `a` or `b`.
    ///
    /// # Safety
    /// `p` valid for reading 8 bytes.
    #[inline(always)]
    unsafe fn dequantize(&self, p: *const u8, (scale, nzp): (S::V, S::V)) -> S::V {
        // SAFETY: forwarded.
        self.s
            .mul(self.s.add(unsafe { self.s.load_u8(p) }, nzp), scale)
    }

    /// `v` quantized with the output's parameters into the 8 bytes at `p`.
    ///
    /// # Safety
    /// `p` valid for writing 8 bytes.
    #[inline(always)]
    unsafe fn quantize(&self, p: *mut u8, v: S::V) {
        let s = self.s;
        let q = s.round(s.clamp(s.div(v, self.sy), self.lo, self.hi));
        // SAFETY: forwarded.
        unsafe { s.store_u8(p, s.iadd(q, self.zy)) };
    }
}

/// # Safety
/// `a`, `b` valid for reading and `y` for writing `n * 8` bytes; `y` overlaps neither input.
#[inline(always)]
unsafe fn run<S: QSimd>(s: S, args: &QAddArgs) {
    let l = Lanes::new(s, &args.p);
    for i in 0..args.n {
        // SAFETY: vector i < n of all three.
        unsafe {
            let x = l.dequantize(args.a.add(i * 8), l.a);
            let z = l.dequantize(args.b.add(i * 8), l.b);
            l.quantize(args.y.add(i * 8), s.add(x, z));
        }
    }
}

/// A validated channel scaling: `blocks` blocks of `pixels` pixels of `x`, one gate vector of
/// 8 lanes per block.
pub(crate) struct QScaleArgs {
    pub(crate) x: *const u8,
    pub(crate) g: *const u8,
    pub(crate) y: *mut u8,
    pub(crate) blocks: usize,
    pub(crate) pixels: usize,
    pub(crate) p: U8BinaryParams,
}

/// # Safety
/// `x` valid for reading and `y` for writing `blocks * pixels * 8` bytes, `g` for reading
/// `blocks * 8`; `y` overlaps neither input.
#[inline(always)]
unsafe fn scale<S: QSimd>(s: S, args: &QScaleArgs) {
    let l = Lanes::new(s, &args.p);
    for b in 0..args.blocks {
        // SAFETY: gate vector b < blocks.
        let m = unsafe { l.dequantize(args.g.add(b * 8), l.b) };
        for i in b * args.pixels..(b + 1) * args.pixels {
            // SAFETY: vector i < blocks * pixels of `x` and `y`.
            unsafe {
                let x = l.dequantize(args.x.add(i * 8), l.a);
                l.quantize(args.y.add(i * 8), s.mul(x, m));
            }
        }
    }
}

/// # Safety
/// As [`scale`].
unsafe fn scale_exec(k: Kernels, a: &QScaleArgs) {
    // SAFETY: forwarded.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if unsafe { zmm::try_run(k, a, zmm::scale) } {
        return;
    }
    qdispatch!(k, scale, a, QScaleArgs; vnni []; avx2 []; scalar [])
}

/// # Safety
/// As [`run`].
unsafe fn add_exec(k: Kernels, a: &QAddArgs) {
    // SAFETY: forwarded.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if unsafe { zmm::try_run(k, a, zmm::add) } {
        return;
    }
    qdispatch!(k, run, a, QAddArgs; vnni []; avx2 []; scalar [])
}

impl Kernels {
    /// `y = a + b` on int8 tensors of `len` bytes each (`len` a multiple of 8: whole NCHW8c
    /// vectors), requantized as the QDQ graph does (see [`crate::kernels::qbinary`]).
    pub fn add_u8(
        self,
        params: U8BinaryParams,
        len: usize,
        a: &[u8],
        b: &[u8],
        y: &mut [u8],
    ) -> Result<(), Error> {
        check(len.is_multiple_of(8), "len", "must be a multiple of 8")?;
        for (scale, arg) in [(params.a.0, "a scale"), (params.b.0, "b scale")] {
            check(scale.is_finite(), arg, "must be finite")?;
        }
        check_scale(params.y.0, "y scale")?;
        check_len("a", a.len(), len)?;
        check_len("b", b.len(), len)?;
        check_len("y", y.len(), len)?;
        let args = QAddArgs {
            a: a.as_ptr(),
            b: b.as_ptr(),
            y: y.as_mut_ptr(),
            n: len / 8,
            p: params,
        };
        // SAFETY: lengths checked; `y` is a unique borrow, so it overlaps neither input.
        unsafe { add_exec(self, &args) };
        Ok(())
    }

    /// `y = x * g` for an NCHW8c int8 tensor `x` of `blocks` blocks of `pixels` pixels and a
    /// per-channel int8 gate `g` (`blocks * 8` bytes, NCHW8c of `[C, 1, 1]`), requantized as
    /// the QDQ graph does (see [`crate::kernels::qbinary`]); `params.a` is `x`'s, `params.b`
    /// the gate's.
    pub fn scale_channels_u8(
        self,
        params: U8BinaryParams,
        blocks: usize,
        pixels: usize,
        x: &[u8],
        g: &[u8],
        y: &mut [u8],
    ) -> Result<(), Error> {
        for (scale, arg) in [(params.a.0, "x scale"), (params.b.0, "gate scale")] {
            check(scale.is_finite(), arg, "must be finite")?;
        }
        check_scale(params.y.0, "y scale")?;
        let len = blocks
            .checked_mul(pixels)
            .and_then(|v| v.checked_mul(8))
            .ok_or(Error::Shape {
                arg: "blocks",
                detail: "blocks * pixels * 8 overflows usize",
            })?;
        check_len("x", x.len(), len)?;
        check_len("g", g.len(), blocks * 8)?;
        check_len("y", y.len(), len)?;
        let args = QScaleArgs {
            x: x.as_ptr(),
            g: g.as_ptr(),
            y: y.as_mut_ptr(),
            blocks,
            pixels,
            p: params,
        };
        // SAFETY: lengths checked; `y` is a unique borrow, so it overlaps neither input.
        unsafe { scale_exec(self, &args) };
        Ok(())
    }
}
