//! `exp`, sigmoid, SiLU and `tanh` in place over flat `f32` slices of any length: the vector functions
//! of `arch::math` (method and accuracy documented there) on the kernels' ISA. Used by the DFC
//! gate, by glue steps with no epilogue to live in, and by the tests that hold the functions
//! to f64.

use crate::arch::{math, Simd, Wide};
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
}

struct Args {
    x: *mut f32,
    len: usize,
    f: Transcendental,
}

/// Function `F` (0 exp, 1 sigmoid, 2 SiLU, 3 tanh) on one vector; a generic fn, not a closure, so it
/// inlines into the `#[target_feature]` wrapper with its features.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
fn apply<S: Simd, const F: u8>(s: S, v: S::V) -> S::V {
    match F {
        0 => math::exp(s, v),
        1 => math::sigmoid(s, v),
        2 => math::silu(s, v),
        _ => math::tanh(s, v),
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
    if F == 1 || F == 2 {
        // Sigmoid and SiLU 16 lanes at a time (one zmm evaluation with AVX-512: twice the
        // work per instruction of two ymm ones; the same arithmetic per lane, so the same
        // bits). GhostNetV2's DFC gates spent ~3 % of the run here with ymm.
        while i + 16 <= full {
            // SAFETY: i + 16 <= len.
            unsafe {
                let p = a.x.add(i);
                let v = s.pload(p);
                let r = if F == 2 {
                    s.plogistic::<true>(v)
                } else {
                    s.plogistic::<false>(v)
                };
                let [lo, hi] = s.halves(r);
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
            Transcendental::Exp => run::<S, 0>(s, a),
            Transcendental::Sigmoid => run::<S, 1>(s, a),
            Transcendental::Silu => run::<S, 2>(s, a),
            Transcendental::Tanh => run::<S, 3>(s, a),
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
