//! Pooling on NCHW8c: global average, and windowed average/max with any kernel, stride and
//! padding. Vectorized across the 8 channels of a block; taps outside the image are skipped
//! (average divides by the valid count unless `count_include_pad`).

use crate::arch::Simd;
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::{Dst, Src};

/// Window reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over valid taps.
    Max,
    /// Mean over taps.
    Avg {
        /// Divide by `kh * kw` (padding counts as zeros) instead of the valid tap count.
        count_include_pad: bool,
    },
}

/// Shape of a windowed pooling over one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    /// Channel blocks.
    pub blocks: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Strides (h, w).
    pub stride: [usize; 2],
    /// Padding: top, left, bottom, right.
    pub pads: [usize; 4],
}

impl PoolShape {
    /// Output height.
    pub fn out_h(&self) -> usize {
        let padded = self
            .in_h
            .saturating_add(self.pads[0])
            .saturating_add(self.pads[2]);
        (padded.saturating_sub(self.kh) / self.stride[0].max(1)).saturating_add(1)
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        let padded = self
            .in_w
            .saturating_add(self.pads[1])
            .saturating_add(self.pads[3]);
        (padded.saturating_sub(self.kw) / self.stride[1].max(1)).saturating_add(1)
    }
}

struct PoolArgs {
    sh: PoolShape,
    kind: PoolKind,
    x: *const f32,
    y: *mut f32,
}

/// One output pixel of block `cb` with its window clipped to the image (border pixels, and
/// every pixel of window shapes without a fixed-size path).
///
/// # Safety
/// As [`run`]; `cb`, `oy`, `ox` are in range.
#[inline(always)]
unsafe fn one<S: Simd>(s: S, a: &PoolArgs, cb: usize, oy: usize, ox: usize) -> S::V {
    let sh = &a.sh;
    let ihw = sh.in_h * sh.in_w;
    let y0 = (oy * sh.stride[0]) as isize - sh.pads[0] as isize;
    let x0 = (ox * sh.stride[1]) as isize - sh.pads[1] as isize;
    let iy0 = y0.max(0) as usize;
    let ix0 = x0.max(0) as usize;
    let iy1 = ((y0 + sh.kh as isize).max(0) as usize).min(sh.in_h);
    let ix1 = ((x0 + sh.kw as isize).max(0) as usize).min(sh.in_w);
    let mut acc = match a.kind {
        PoolKind::Max => s.splat(f32::NEG_INFINITY),
        PoolKind::Avg { .. } => s.zero(),
    };
    for iy in iy0..iy1 {
        for ix in ix0..ix1 {
            // SAFETY: in-bounds pixel of block cb.
            let v = unsafe { s.load(a.x.add(cb * ihw * 8 + (iy * sh.in_w + ix) * 8)) };
            acc = match a.kind {
                PoolKind::Max => s.max(v, acc),
                PoolKind::Avg { .. } => s.add(acc, v),
            };
        }
    }
    let valid = (iy1.saturating_sub(iy0)) * (ix1.saturating_sub(ix0));
    match a.kind {
        PoolKind::Max if valid == 0 => s.zero(),
        PoolKind::Max => acc,
        PoolKind::Avg { count_include_pad } => {
            let n = if count_include_pad {
                sh.kh * sh.kw
            } else {
                valid
            };
            s.mul(acc, s.splat(1.0 / n.max(1) as f32))
        }
    }
}

/// The layer with windows of `KH x KW` (`0 x 0`: any size, every pixel through [`one`]).
/// Pixels whose window lies inside the image take a straight-line path (the window's loads
/// and adds written out, the reciprocal hoisted); the others go through [`one`]. Both add
/// the same taps in the same order and multiply by the same reciprocal, so a pixel's bits do
/// not depend on the path. (Every pixel through `one` ran DFC's 2x2 average pools at ~30
/// cycles a pixel: 25 us for a 24-channel 56x56 input.)
///
/// # Safety
/// `x` valid for `blocks * in_h * in_w * 8`, `y` for `blocks * out_h * out_w * 8`.
#[inline(always)]
unsafe fn run_k<S: Simd, const KH: usize, const KW: usize, const MAX: bool>(s: S, a: &PoolArgs) {
    let sh = &a.sh;
    let (oh, ow) = (sh.out_h(), sh.out_w());
    let (sy, sx) = (sh.stride[0], sh.stride[1]);
    let (pt, pl) = (sh.pads[0], sh.pads[1]);
    // Interior output columns: x0 = ox * sx - pl >= 0 and x0 + KW <= in_w.
    let ox0 = pl.div_ceil(sx).min(ow);
    let ox1 = if KW == 0 || sh.in_w + pl < KW {
        ox0
    } else {
        ((sh.in_w + pl - KW) / sx + 1).clamp(ox0, ow)
    };
    let inv = s.splat(1.0 / (KH * KW).max(1) as f32);
    for cb in 0..sh.blocks {
        // Inside the loop: with no blocks the extents were never checked, and the product
        // may not fit a `usize`.
        let xb = a.x.wrapping_add(cb * sh.in_h * sh.in_w * 8);
        let yb = a.y.wrapping_add(cb * oh * ow * 8);
        for oy in 0..oh {
            let y0 = (oy * sy) as isize - pt as isize;
            let inside = KH > 0 && y0 >= 0 && y0 as usize + KH <= sh.in_h;
            let (fast0, fast1) = if inside { (ox0, ox1) } else { (ow, ow) };
            let yrow = yb.wrapping_add(oy * ow * 8);
            // fast0 <= fast1 <= ow: ox0 <= ow, and ox1 is clamped to ox0..=ow.
            for ox in (0..fast0).chain(fast1..ow) {
                // SAFETY: in range (forwarded contract).
                unsafe { s.store(yrow.add(ox * 8), one(s, a, cb, oy, ox)) };
            }
            if fast0 >= fast1 {
                continue;
            }
            let xrow = xb.wrapping_add(y0 as usize * sh.in_w * 8);
            for ox in fast0..fast1 {
                let xp = xrow.wrapping_add((ox * sx - pl) * 8);
                let mut acc = if MAX {
                    s.splat(f32::NEG_INFINITY)
                } else {
                    s.zero()
                };
                for ky in 0..KH {
                    for kx in 0..KW {
                        // SAFETY: the window lies inside the image (ox0..ox1, `inside`).
                        let v = unsafe { s.load(xp.add((ky * sh.in_w + kx) * 8)) };
                        acc = if MAX { s.max(v, acc) } else { s.add(acc, v) };
                    }
                }
                let out = if MAX { acc } else { s.mul(acc, inv) };
                // SAFETY: output pixel of block cb.
                unsafe { s.store(yrow.add(ox * 8), out) };
            }
        }
    }
}

/// # Safety
/// As [`run_k`].
#[inline(always)]
unsafe fn run<S: Simd>(s: S, a: &PoolArgs) {
    let max = matches!(a.kind, PoolKind::Max);
    // SAFETY: forwarded.
    unsafe {
        match (a.sh.kh, a.sh.kw, max) {
            (2, 2, false) => run_k::<S, 2, 2, false>(s, a),
            (2, 2, true) => run_k::<S, 2, 2, true>(s, a),
            (3, 3, false) => run_k::<S, 3, 3, false>(s, a),
            (3, 3, true) => run_k::<S, 3, 3, true>(s, a),
            _ => run_k::<S, 0, 0, false>(s, a),
        }
    }
}

struct GapArgs {
    blocks: usize,
    pixels: usize,
    x: *const f32,
    y: *mut f32,
}

/// # Safety
/// `x` valid for `blocks * pixels * 8`, `y` for `blocks * 8`.
#[inline(always)]
unsafe fn gap<S: Simd>(s: S, a: &GapArgs) {
    let inv = s.splat(1.0 / a.pixels as f32);
    for cb in 0..a.blocks {
        let mut acc = [s.zero(); 4];
        let base = a.x.wrapping_add(cb * a.pixels * 8);
        let mut p = 0;
        while p + 4 <= a.pixels {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: pixel p + j < pixels.
                *acc = s.add(*acc, unsafe { s.load(base.add((p + j) * 8)) });
            }
            p += 4;
        }
        while p < a.pixels {
            // SAFETY: pixel p < pixels.
            acc[0] = s.add(acc[0], unsafe { s.load(base.add(p * 8)) });
            p += 1;
        }
        let sum = s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3]));
        // SAFETY: block cb < blocks.
        unsafe { s.store(a.y.add(cb * 8), s.mul(sum, inv)) };
    }
}

impl Kernels {
    /// Global average pool: `out[c] = mean over pixels of x[c]`, `out` has `blocks * 8`.
    pub fn global_avg_pool(
        self,
        input: Src<'_>,
        blocks: usize,
        pixels: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        check(pixels > 0, "pixels", "must be positive")?;
        let xo = view(
            "input",
            input.data.len(),
            input.block_offset,
            blocks,
            pixels,
        )?;
        check_len("out", out.len(), size(&[blocks, 8]))?;
        let a = GapArgs {
            blocks,
            pixels,
            // SAFETY: checked by `view`.
            x: unsafe { input.data.as_ptr().add(xo) },
            y: out.as_mut_ptr(),
        };
        dispatch!(self, gap, &a, GapArgs; avx512 []; avx2 []; neon []; scalar []);
        Ok(())
    }

    /// Windowed max/average pooling of one NCHW8c image.
    pub fn pool(
        self,
        kind: PoolKind,
        shape: PoolShape,
        input: Src<'_>,
        output: Dst<'_>,
    ) -> Result<(), Error> {
        let sh = shape;
        check(
            sh.kh > 0 && sh.kw > 0,
            "shape.kh",
            "window must be non-empty",
        )?;
        check(
            sh.stride[0] > 0 && sh.stride[1] > 0,
            "shape.stride",
            "must be positive",
        )?;
        check(
            sh.in_h
                .saturating_add(sh.pads[0])
                .saturating_add(sh.pads[2])
                >= sh.kh
                && sh
                    .in_w
                    .saturating_add(sh.pads[1])
                    .saturating_add(sh.pads[3])
                    >= sh.kw,
            "shape.pads",
            "padded input smaller than the window",
        )?;
        let xo = view(
            "input",
            input.data.len(),
            input.block_offset,
            sh.blocks,
            size(&[sh.in_h, sh.in_w]),
        )?;
        let yo = view(
            "output",
            output.data.len(),
            output.block_offset,
            sh.blocks,
            size(&[sh.out_h(), sh.out_w()]),
        )?;
        let a = PoolArgs {
            sh,
            kind,
            // SAFETY: checked by `view`.
            x: unsafe { input.data.as_ptr().add(xo) },
            // SAFETY: checked by `view`.
            y: unsafe { output.data.as_mut_ptr().add(yo) },
        };
        dispatch!(self, run, &a, PoolArgs; avx512 []; avx2 []; neon []; scalar []);
        Ok(())
    }
}
