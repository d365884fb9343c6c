//! `exp`, sigmoid, SiLU, `tanh`, GELU and Mish in place over flat `f32` slices of any length: the vector functions
//! of `arch::math` (method and accuracy documented there) on the kernels' ISA. Used by the DFC
//! gate, by glue steps with no epilogue to live in, and by the tests that hold the functions
//! to f64.

use crate::arch::{self, math, Simd, Wide};
use crate::isa::{dispatch, Kernels};

/// A function [`Kernels::transcendental`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transcendental {
    /// `e^x`.
    Exp,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// SiLU (Swish): `x * sigmoid(x)`.
    Silu,
    /// `tanh(x)` (to a few `2^-24` absolute, see `arch::math`).
    Tanh,
    /// GELU, `x (1 + erf(x / sqrt 2)) / 2` (as [`crate::Activation::Gelu`]).
    Gelu,
    /// Mish, `x tanh(softplus(x))` (as [`crate::Activation::Mish`]).
    Mish,
}

struct Args {
    x: *mut f32,
    len: usize,
    f: Transcendental,
}

/// The functions as `run`'s const parameter `F`: the activations' `ActV` kinds (evaluated 16
/// lanes wide by `Wide::ptranscendental`), then two kinds of their own.
const SIGMOID: u8 = arch::SIGMOID;
const SILU: u8 = arch::SILU;
const GELU: u8 = arch::GELU;
const MISH: u8 = arch::MISH;
const EXP: u8 = 100;
const TANH: u8 = 101;

/// Function `F` on one vector; a generic fn, not a closure, so it inlines into the
/// `#[target_feature]` wrapper with its features.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
fn apply<S: Simd, const F: u8>(s: S, v: S::V) -> S::V {
    match F {
        EXP => math::exp(s, v),
        TANH => math::tanh(s, v),
        _ => math::by_kind::<S, F>(s, v),
    }
}

/// `x[i] = f(x[i])` for the `len` floats from `x`, full vectors then one padded tail.
///
/// # Safety
/// `x` valid for reading and writing `len` floats.
#[inline(always)]
unsafe fn run<S: Wide, const F: u8>(s: S, a: &Args) {
    let full = a.len / 8 * 8;
    let mut i = 0;
    if F == SIGMOID || F == SILU || F == GELU || F == MISH {
        // Sigmoid, SiLU and GELU 16 lanes at a time (one zmm evaluation with AVX-512: twice
        // the work per instruction of two ymm ones; the same arithmetic per lane, so the same
        // bits). GhostNetV2's DFC gates spent ~3 % of the run here with ymm.
        while i + 16 <= full {
            // SAFETY: i + 16 <= len.
            unsafe {
                let p = a.x.add(i);
                let [lo, hi] = s.halves(s.ptranscendental::<F>(s.pload(p)));
                s.store(p, lo);
                s.store(p.add(8), hi);
            }
            i += 16;
        }
    }
    while i < full {
        // SAFETY: i + 8 <= len.
        unsafe {
            let p = a.x.add(i);
            s.store(p, apply::<S, F>(s, s.load(p)));
        }
        i += 8;
    }
    if full < a.len {
        let mut t = [0.0f32; 8];
        let n = a.len - full;
        // SAFETY: the n floats from x + full are inside x; `t` is a distinct local.
        unsafe {
            core::ptr::copy_nonoverlapping(a.x.add(full), t.as_mut_ptr(), n);
            s.store(t.as_mut_ptr(), apply::<S, F>(s, s.load(t.as_ptr())));
            core::ptr::copy_nonoverlapping(t.as_ptr(), a.x.add(full), n);
        }
    }
}

/// # Safety
/// As [`run`].
#[inline(always)]
unsafe fn body<S: Wide>(s: S, a: &Args) {
    // SAFETY: forwarded.
    unsafe {
        match a.f {
            Transcendental::Exp => run::<S, EXP>(s, a),
            Transcendental::Sigmoid => run::<S, SIGMOID>(s, a),
            Transcendental::Silu => run::<S, SILU>(s, a),
            Transcendental::Tanh => run::<S, TANH>(s, a),
            Transcendental::Gelu => run::<S, GELU>(s, a),
            Transcendental::Mish => run::<S, MISH>(s, a),
        }
    }
}

/// [`Kernels::transcendental`] on a raw range.
///
/// # Safety
/// `x` valid for reading and writing `len` floats, not accessed by anyone else meanwhile.
pub(crate) unsafe fn transcendental_raw(k: Kernels, f: Transcendental, x: *mut f32, len: usize) {
    let a = Args { x, len, f };
    dispatch!(k, body, &a, Args; avx512 []; avx2 []; neon []; scalar []);
}

impl Kernels {
    /// Applies `f` to every element of `x` in place (any length).
    pub fn transcendental(self, f: Transcendental, x: &mut [f32]) {
        // SAFETY: the slice is valid and uniquely borrowed for its length.
        unsafe { transcendental_raw(self, f, x.as_mut_ptr(), x.len()) }
    }
}
