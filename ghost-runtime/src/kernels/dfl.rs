//! A detector head's distribution integral (ultralytics' DFL): each of `groups` box sides is a
//! distribution over `bins` channels; the output is its expectation under a softmax,
//! `y[g][p] = sum_k w[k] e^(x[g * bins + k][p] - m) / sum_k e^(x[g * bins + k][p] - m)` with
//! `m` the largest of the bins (the weights are `0, 1, .., bins - 1` in ultralytics' export).
//!
//! The input is NCHW8c with the channels in dense order (channel `c` at lane `c`); the bins of
//! one side are gathered for 8 pixels at a time, so every step is a vertical vector operation
//! and `exp` is the vector one of `arch::math`. The output's padding lanes are written zero.
//!
//! Deliberately not done here: an in-register 8x8 transpose instead of the scalar gather (the
//! exponentials dominate: `bins` of them per side and pixel).

use crate::arch::{math, Simd};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};

/// Shape of one image's DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DflShape {
    /// Distributions per pixel (4 box sides).
    pub groups: usize,
    /// Channels per distribution.
    pub bins: usize,
    /// Pixels (anchors).
    pub pixels: usize,
}

struct DflArgs {
    src: *const f32,
    w: *const f32,
    dst: *mut f32,
    shape: DflShape,
}

/// Lane `lane` of pixels `p .. p + n` (`n <= 8`, the rest zero) as one vector.
///
/// # Safety
/// `src` valid for `(lane / 8 + 1) * pixels * 8` floats and `p + n <= pixels`.
#[inline(always)]
unsafe fn gather<S: Simd>(s: S, a: &DflArgs, lane: usize, p: usize, n: usize) -> S::V {
    let mut t = [0.0f32; 8];
    let base = (lane / 8) * a.shape.pixels * 8 + lane % 8;
    for (j, v) in t[..n].iter_mut().enumerate() {
        // SAFETY: pixel `p + j < pixels` of the lane's block (caller).
        *v = unsafe { *a.src.add(base + (p + j) * 8) };
    }
    // SAFETY: `t` holds 8 floats.
    unsafe { s.load(t.as_ptr()) }
}

/// # Safety
/// Pointers valid for the lengths [`Kernels::dfl`] checks.
#[inline(always)]
unsafe fn run<S: Simd>(s: S, a: &DflArgs) {
    let DflShape {
        groups,
        bins,
        pixels,
    } = a.shape;
    let minus_one = s.splat(-1.0);
    let mut p = 0;
    while p < pixels {
        let n = (pixels - p).min(8);
        for g in 0..groups {
            // Lanes `g * bins + k < groups * bins` and pixels `p .. p + n` are inside `src`,
            // `k < bins` inside `w` (checked by `dfl`).
            let mut m = s.splat(f32::NEG_INFINITY);
            for k in 0..bins {
                // SAFETY: see above.
                let x = unsafe { gather(s, a, g * bins + k, p, n) };
                m = s.max(x, m);
            }
            let (mut sum, mut dot) = (s.zero(), s.zero());
            for k in 0..bins {
                // SAFETY: see above.
                let (x, wk) = unsafe { (gather(s, a, g * bins + k, p, n), *a.w.add(k)) };
                let e = math::exp(s, s.fma(m, minus_one, x));
                sum = s.add(sum, e);
                dot = s.fma(e, s.splat(wk), dot);
            }
            let mut y = [0.0f32; 8];
            // SAFETY: `y` holds 8 floats.
            unsafe { s.store(y.as_mut_ptr(), s.div(dot, sum)) };
            let base = (g / 8) * pixels * 8 + g % 8;
            for (j, &v) in y[..n].iter().enumerate() {
                // SAFETY: output lane `g` of pixel `p + j < pixels` is inside `dst` (checked).
                unsafe { *a.dst.add(base + (p + j) * 8) = v };
            }
        }
        p += 8;
    }
}

impl Kernels {
    /// The DFL of one image: `src` `[ceil(groups * bins / 8)][pixels][8]` (channel `c` at lane
    /// `c`), `w` the `bins` weights, `dst` `[ceil(groups / 8)][pixels][8]` (side `g` at lane
    /// `g`, padding lanes zero).
    pub fn dfl(
        self,
        shape: DflShape,
        w: &[f32],
        src: &[f32],
        dst: &mut [f32],
    ) -> Result<(), Error> {
        check(shape.bins > 0, "bins", "must be positive")?;
        check_len("w", w.len(), shape.bins)?;
        let in_blocks = size(&[shape.groups, shape.bins]).div_ceil(8);
        check_len("src", src.len(), size(&[in_blocks, shape.pixels, 8]))?;
        let out_len = size(&[shape.groups.div_ceil(8), shape.pixels, 8]);
        check_len("dst", dst.len(), out_len)?;
        dst[..out_len].fill(0.0);
        let a = DflArgs {
            src: src.as_ptr(),
            w: w.as_ptr(),
            dst: dst.as_mut_ptr(),
            shape,
        };
        dispatch!(self, run, &a, DflArgs; avx512 []; avx2 []; neon []; scalar []);
        Ok(())
    }
}
