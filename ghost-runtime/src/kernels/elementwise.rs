//! Elementwise glue on NCHW8c tensors: binary add/sub/mul/div/PRelu of equal shapes, per-channel broadcast
//! (a `[C_pad]` vector against `[C/8][HW][8]`), and scalar activation helpers. Memory-bound;
//! one vector per 8 floats.

use crate::arch::generic::Scalar;
use crate::arch::{math, ActV, Simd};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::Activation;

/// Binary operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a * b`.
    Mul,
    /// `a - b` (computed as `a + (-b)`, which IEEE defines it to be).
    Sub,
    /// `a / b` (IEEE division).
    Div,
    /// ONNX PRelu with slope `b`: `a * b` where `a < 0`, else `a` (NaN stays NaN). Computed
    /// as `max(a, 0) + b * min(a, 0)` (one rounding, as `a * b`); the one difference from the
    /// definition is the sign of a zero result (`a = -0` with `b < 0` gives `+0`).
    PRelu,
}

/// The operations as `run_op`'s const parameter.
const ADD: u8 = 0;
const MUL: u8 = 1;
const SUB: u8 = 2;
const DIV: u8 = 3;
const PRELU: u8 = 4;

/// Scalar activation (reference semantics of [`Activation`]).
pub(crate) fn act_scalar(act: Activation, x: f32) -> f32 {
    // Written so that NaN passes through, as ONNX Runtime's Relu/Clip/HardSigmoid do (and as
    // the SIMD paths' `max(lo, v)` / `min(hi, v)` operand order does).
    let clamp = |v: f32, lo: f32, hi: f32| {
        let v = if v < lo { lo } else { v };
        if v > hi {
            hi
        } else {
            v
        }
    };
    match act {
        Activation::None => x,
        Activation::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        Activation::Clamp { lo, hi } => clamp(x, lo, hi),
        Activation::HardSigmoid { alpha, beta } => clamp(alpha * x + beta, 0.0, 1.0),
        Activation::HardSwish => x * clamp(x * (1.0 / 6.0) + 0.5, 0.0, 1.0),
        // The scalar path's lane function (the formula is in `arch::math`).
        Activation::Sigmoid => math::sigmoid(Scalar, [x; 8])[0],
        Activation::Silu => math::silu(Scalar, [x; 8])[0],
        Activation::Gelu => math::gelu(Scalar, [x; 8])[0],
        Activation::Mish => math::mish(Scalar, [x; 8])[0],
    }
}

struct EwArgs {
    a: *const f32,
    b: *const f32,
    y: *mut f32,
    /// Number of 8-float vectors.
    n: usize,
    /// Pixels per block when `b` is a per-channel vector (0: `b` has `n` vectors).
    bcast_px: usize,
    op: BinaryOp,
    act: Activation,
}

/// # Safety
/// `a`, `y` valid for `n` vectors; `b` for `n` vectors, or `n / bcast_px` if broadcasting.
/// `y` may equal `a` (in place) but must not partially overlap.
#[inline(always)]
unsafe fn run<S: Simd>(s: S, e: &EwArgs) {
    // The operation, the broadcast and the activation are chosen once per call, not per
    // vector: with a `match` on each and an integer division for the channel of every vector,
    // an SE gate's channel multiply (960 x 7x7) ran at ~6 cycles per vector.
    // SAFETY: forwarded.
    unsafe {
        match e.op {
            BinaryOp::Add => run_op::<S, ADD>(s, e),
            BinaryOp::Mul => run_op::<S, MUL>(s, e),
            BinaryOp::Sub => run_op::<S, SUB>(s, e),
            BinaryOp::Div => run_op::<S, DIV>(s, e),
            BinaryOp::PRelu => run_op::<S, PRELU>(s, e),
        }
    }
}

/// `a[at] op b[bi]` for vector `at` and `b`'s vector `bi` (a function, not a closure:
/// closures do not inherit the caller's target features).
///
/// # Safety
/// `at < n` and `bi` within `b` (see [`run`]).
#[inline(always)]
unsafe fn op<S: Simd, const OP: u8>(s: S, e: &EwArgs, at: usize, bi: usize) -> S::V {
    // SAFETY: forwarded.
    let (x, z) = unsafe { (s.load(e.a.add(at * 8)), s.load(e.b.add(bi * 8))) };
    match OP {
        MUL => s.mul(x, z),
        // `-z` is exact, so this is `x - z` bit for bit.
        SUB => s.add(x, s.mul(z, s.splat(-1.0))),
        DIV => s.div(x, z),
        // `x` second: `max`/`min` return their second operand when either is NaN.
        PRELU => {
            let zero = s.zero();
            s.fma(z, s.min(zero, x), s.max(zero, x))
        }
        _ => s.add(x, z),
    }
}

/// [`run`] for one operation (`OP`: one of `ADD`, `MUL`, `SUB`, `DIV`, `PRELU`).
///
/// # Safety
/// As [`run`].
// Index loops on purpose (see `ActV::apply_tile`).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn run_op<S: Simd, const OP: u8>(s: S, e: &EwArgs) {
    let act = ActV::new(s, e.act);
    // Rows of `px` vectors: one per channel block when broadcasting (`b` holds one vector per
    // row), else one row of all `n` (`b` holds one vector per vector).
    let (px, bcast) = if e.bcast_px == 0 {
        (e.n, false)
    } else {
        (e.bcast_px, true)
    };
    let rows = e.n.checked_div(px).unwrap_or(0);
    for r in 0..rows {
        let base = r * px;
        // `b`'s vector for vector `at` of this row.
        let bi = |at: usize| if bcast { r } else { at };
        let mut i = 0;
        while i + 4 <= px {
            let mut t = [[s.zero(); 4]; 1];
            for j in 0..4 {
                let at = base + i + j;
                // SAFETY: `at < n`; the broadcast row `r < n / bcast_px`.
                t[0][j] = unsafe { op::<S, OP>(s, e, at, bi(at)) };
            }
            act.apply_tile(s, &mut t);
            for j in 0..4 {
                // SAFETY: as above; each vector is read before written.
                unsafe { s.store(e.y.add((base + i + j) * 8), t[0][j]) };
            }
            i += 4;
        }
        for at in base + i..base + px {
            // SAFETY: as above.
            unsafe { s.store(e.y.add(at * 8), act.apply(s, op::<S, OP>(s, e, at, bi(at)))) };
        }
    }
}

impl Kernels {
    /// `out = act(a op b)` elementwise; all three the same length (a multiple of 8).
    pub fn binary(
        self,
        op: BinaryOp,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        act: Activation,
    ) -> Result<(), Error> {
        check(
            a.len().is_multiple_of(8),
            "a",
            "length must be a multiple of 8",
        )?;
        check_len("b", b.len(), a.len())?;
        check_len("out", out.len(), a.len())?;
        let e = EwArgs {
            a: a.as_ptr(),
            b: b.as_ptr(),
            y: out.as_mut_ptr(),
            n: a.len() / 8,
            bcast_px: 0,
            op,
            act,
        };
        dispatch!(self, run, &e, EwArgs; avx512 []; avx2 []; neon []; scalar []);
        Ok(())
    }

    /// `acc = act(acc op b)` in place; `b` at least as long as `acc` (a multiple of 8).
    pub fn binary_assign(
        self,
        op: BinaryOp,
        acc: &mut [f32],
        b: &[f32],
        act: Activation,
    ) -> Result<(), Error> {
        check(
            acc.len().is_multiple_of(8),
            "acc",
            "length must be a multiple of 8",
        )?;
        check_len("b", b.len(), acc.len())?;
        // One mutable pointer serves as both input and output (in place), so neither
        // invalidates the other.
        let y = acc.as_mut_ptr();
        let e = EwArgs {
            a: y.cast_const(),
            b: b.as_ptr(),
            y,
            n: acc.len() / 8,
            bcast_px: 0,
            op,
            act,
        };
        dispatch!(self, run, &e, EwArgs; avx512 []; avx2 []; neon []; scalar []);
        Ok(())
    }

    /// Per-channel broadcast in place on an NCHW8c tensor of `blocks x pixels`:
    /// `x[c][p] = act(x[c][p] op v[c])`, `v` has `blocks * 8` floats (e.g. an SE gate).
    pub fn channel_assign(
        self,
        op: BinaryOp,
        x: &mut [f32],
        blocks: usize,
        pixels: usize,
        v: &[f32],
        act: Activation,
    ) -> Result<(), Error> {
        check(pixels > 0, "pixels", "must be positive")?;
        check_len("x", x.len(), size(&[blocks, pixels, 8]))?;
        check_len("v", v.len(), size(&[blocks, 8]))?;
        let y = x.as_mut_ptr();
        let e = EwArgs {
            a: y.cast_const(),
            b: v.as_ptr(),
            y,
            n: blocks * pixels,
            bcast_px: pixels,
            op,
            act,
        };
        dispatch!(self, run, &e, EwArgs; avx512 []; avx2 []; neon []; scalar []);
        Ok(())
    }
}
