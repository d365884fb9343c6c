//! Elementwise sum of two int8 (`u8`-stored) tensors of the same layout, as a QDQ graph writes a
//! residual connection (`QuantizeLinear(Add(DequantizeLinear(a), DequantizeLinear(b)))`):
//! `y = clamp(round_half_to_even((f32(a - za) * sa + f32(b - zb) * sb) / sy) + zy, 0, 255)`,
//! each input dequantized, the sum rounded once, quantized with an IEEE division, all in `f32`
//! as [`crate::kernels::quantize`] does, so every path gives the QDQ graph's bytes.
//!
//! Deliberately not done here: broadcasting (a residual adds tensors of one shape), and the
//! ratio form of com.microsoft `QLinearAdd` (`a * sa/sy + b * sb/sy`), which rounds differently.

use crate::arch::QSimd;
use crate::error::{check, check_len, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::quantize::check_scale;

/// Quantization parameters of the two inputs and the output of [`Kernels::add_u8`]; zero
/// points in `u8` storage (an ONNX `int8` zero point plus 128).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AddU8Params {
    /// Scale and zero point of the first input.
    pub a: (f32, u8),
    /// Scale and zero point of the second input.
    pub b: (f32, u8),
    /// Scale and zero point of the output.
    pub y: (f32, u8),
}

struct QAddArgs {
    a: *const u8,
    b: *const u8,
    y: *mut u8,
    /// Vectors of 8 bytes.
    n: usize,
    p: AddU8Params,
}

/// # Safety
/// `a`, `b` valid for reading and `y` for writing `n * 8` bytes; `y` overlaps neither input.
#[inline(always)]
unsafe fn run<S: QSimd>(s: S, args: &QAddArgs) {
    let p = args.p;
    let (sa, za) = (s.splat(p.a.0), s.splat(-(p.a.1 as f32)));
    let (sb, zb) = (s.splat(p.b.0), s.splat(-(p.b.1 as f32)));
    let sy = s.splat(p.y.0);
    let zy = s.isplat(p.y.1 as i32);
    let lo = s.splat(-(p.y.1 as f32));
    let hi = s.splat((255 - p.y.1 as i32) as f32);
    for i in 0..args.n {
        // SAFETY: vector i < n of all three.
        unsafe {
            let x = s.mul(s.add(s.load_u8(args.a.add(i * 8)), za), sa);
            let z = s.mul(s.add(s.load_u8(args.b.add(i * 8)), zb), sb);
            let q = s.round(s.clamp(s.div(s.add(x, z), sy), lo, hi));
            s.store_u8(args.y.add(i * 8), s.iadd(q, zy));
        }
    }
}

/// # Safety
/// As [`run`].
unsafe fn add_exec(k: Kernels, a: &QAddArgs) {
    qdispatch!(k, run, a, QAddArgs; vnni []; avx2 []; scalar [])
}

impl Kernels {
    /// `y = a + b` on int8 tensors of `len` bytes each (`len` a multiple of 8: whole NCHW8c
    /// vectors), requantized as the QDQ graph does (see [`crate::kernels::qadd`]).
    pub fn add_u8(
        self,
        params: AddU8Params,
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
}
