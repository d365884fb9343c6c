//! Spatial resize of NCHW8c images: nearest, bilinear and bicubic with ONNX coordinate
//! conventions, plus an exact 2x nearest upsample. Source coordinates are computed per output row/column
//! on the fly (no index tables, no allocation); the blend is vectorized across 8 channels.

use crate::arch::Simd;
use crate::error::{check, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::{Dst, Src};

/// ONNX `coordinate_transformation_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordMode {
    /// `x_in = (x_out + 0.5) / scale - 0.5`.
    HalfPixel,
    /// Like half-pixel, but 0 when the output length is 1.
    PytorchHalfPixel,
    /// `x_in = x_out / scale`.
    Asymmetric,
    /// `x_in = x_out * (len_in - 1) / (len_out - 1)`.
    AlignCorners,
}

/// ONNX `nearest_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    /// Round half down.
    RoundPreferFloor,
    /// Round half up.
    RoundPreferCeil,
    /// Floor.
    Floor,
    /// Ceil.
    Ceil,
}

/// Interpolation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResizeMode {
    /// Nearest neighbour.
    Nearest(NearestMode),
    /// Bilinear.
    Linear,
    /// Bicubic (Keys' kernel with parameter `a`, ONNX `cubic_coeff_a`: -0.75 from PyTorch,
    /// -0.5 by default): the 4x4 input pixels around the source point, edge pixels repeated
    /// past the border, or with `exclude_outside` those taps dropped and the others
    /// renormalized (per axis).
    Cubic {
        /// `cubic_coeff_a`.
        a: f32,
        /// ONNX `exclude_outside`.
        exclude_outside: bool,
    },
}

/// Shape of a resize of one image; the scale is `out / in` per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizeShape {
    /// Channel blocks.
    pub blocks: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

fn floor(x: f32) -> f32 {
    let t = x as i64 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

pub(crate) fn src_coord(mode: CoordMode, o: usize, len_in: usize, len_out: usize) -> f32 {
    let scale = len_out as f32 / len_in as f32;
    match mode {
        CoordMode::HalfPixel => (o as f32 + 0.5) / scale - 0.5,
        CoordMode::PytorchHalfPixel => {
            if len_out > 1 {
                (o as f32 + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        CoordMode::Asymmetric => o as f32 / scale,
        CoordMode::AlignCorners => {
            if len_out > 1 {
                o as f32 * (len_in - 1) as f32 / (len_out - 1) as f32
            } else {
                0.0
            }
        }
    }
}

pub(crate) fn nearest(mode: NearestMode, x: f32, len: usize) -> usize {
    let f = floor(x);
    let i = match mode {
        NearestMode::Floor => f,
        NearestMode::Ceil => {
            if f < x {
                f + 1.0
            } else {
                f
            }
        }
        NearestMode::RoundPreferFloor => {
            if x - f > 0.5 {
                f + 1.0
            } else {
                f
            }
        }
        NearestMode::RoundPreferCeil => {
            if x - f >= 0.5 {
                f + 1.0
            } else {
                f
            }
        }
    };
    (i.max(0.0) as usize).min(len - 1)
}

/// Two neighbours and the weight of the second.
fn linear(x: f32, len: usize) -> (usize, usize, f32) {
    let x = x.max(0.0);
    let f = floor(x);
    let i0 = (f as usize).min(len - 1);
    let i1 = (i0 + 1).min(len - 1);
    let t = if i0 == len - 1 { 0.0 } else { x - f };
    (i0, i1, t)
}

/// Four taps (input index, weight) of the cubic kernel around source coordinate `x` in an axis
/// of `len`, as ONNX Runtime computes them (in f32, the same expressions).
fn cubic(x: f32, len: usize, a: f32, exclude_outside: bool) -> [(usize, f32); 4] {
    let base = floor(x);
    let s = x - base;
    let (p, q) = (s + 1.0, 2.0 - s);
    let c = [
        ((a * p - 5.0 * a) * p + 8.0 * a) * p - 4.0 * a,
        ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
        ((a + 2.0) * (1.0 - s) - (a + 3.0)) * (1.0 - s) * (1.0 - s) + 1.0,
        ((a * q - 5.0 * a) * q + 8.0 * a) * q - 4.0 * a,
    ];
    let mut taps = [(0usize, 0.0f32); 4];
    let mut total = 0.0f32;
    for (k, (t, &w)) in taps.iter_mut().zip(&c).enumerate() {
        let pos = base as i64 - 1 + k as i64;
        let inside = pos >= 0 && pos < len as i64;
        let w = if exclude_outside && !inside { 0.0 } else { w };
        *t = (pos.clamp(0, len as i64 - 1) as usize, w);
        total += w;
    }
    if exclude_outside {
        for t in &mut taps {
            t.1 /= total;
        }
    }
    taps
}

struct ResizeArgs {
    sh: ResizeShape,
    mode: ResizeMode,
    coord: CoordMode,
    x: *const f32,
    y: *mut f32,
}

/// # Safety
/// `x` valid for `blocks*in_h*in_w*8`, `y` for `blocks*out_h*out_w*8`.
#[inline(always)]
unsafe fn run<S: Simd>(s: S, a: &ResizeArgs) {
    let sh = &a.sh;
    for cb in 0..sh.blocks {
        // Inside the loop: with no blocks the extents were never checked, and the products
        // may not fit a `usize` (as in `pool`).
        let (ihw, ohw) = (sh.in_h * sh.in_w, sh.out_h * sh.out_w);
        let xb = a.x.wrapping_add(cb * ihw * 8);
        let yb = a.y.wrapping_add(cb * ohw * 8);
        for oy in 0..sh.out_h {
            let fy = src_coord(a.coord, oy, sh.in_h, sh.out_h);
            // The cubic row taps, once per output row.
            let ty = match a.mode {
                ResizeMode::Cubic {
                    a: ca,
                    exclude_outside,
                } => cubic(fy, sh.in_h, ca, exclude_outside),
                _ => [(0, 0.0); 4],
            };
            for ox in 0..sh.out_w {
                let fx = src_coord(a.coord, ox, sh.in_w, sh.out_w);
                let v = match a.mode {
                    ResizeMode::Nearest(m) => {
                        let (iy, ix) = (nearest(m, fy, sh.in_h), nearest(m, fx, sh.in_w));
                        // SAFETY: clamped indices.
                        unsafe { s.load(xb.add((iy * sh.in_w + ix) * 8)) }
                    }
                    ResizeMode::Linear => {
                        let (y0, y1, ty) = linear(fy, sh.in_h);
                        let (x0, x1, tx) = linear(fx, sh.in_w);
                        // SAFETY: clamped indices.
                        let (p00, p01, p10, p11) = unsafe {
                            (
                                s.load(xb.add((y0 * sh.in_w + x0) * 8)),
                                s.load(xb.add((y0 * sh.in_w + x1) * 8)),
                                s.load(xb.add((y1 * sh.in_w + x0) * 8)),
                                s.load(xb.add((y1 * sh.in_w + x1) * 8)),
                            )
                        };
                        let (wy0, wy1) = (s.splat(1.0 - ty), s.splat(ty));
                        let (wx0, wx1) = (s.splat(1.0 - tx), s.splat(tx));
                        let top = s.fma(p01, wx1, s.mul(p00, wx0));
                        let bot = s.fma(p11, wx1, s.mul(p10, wx0));
                        s.fma(bot, wy1, s.mul(top, wy0))
                    }
                    ResizeMode::Cubic {
                        a: ca,
                        exclude_outside,
                    } => {
                        let tx = cubic(fx, sh.in_w, ca, exclude_outside);
                        // Each input row's four columns blended, then the four rows (the
                        // interpreter sums rows first; the two agree to rounding).
                        let mut acc = s.zero();
                        for &(iy, wy) in &ty {
                            let mut row = s.zero();
                            for &(ix, wx) in &tx {
                                // SAFETY: clamped indices.
                                let p = unsafe { s.load(xb.add((iy * sh.in_w + ix) * 8)) };
                                row = s.fma(p, s.splat(wx), row);
                            }
                            acc = s.fma(row, s.splat(wy), acc);
                        }
                        acc
                    }
                };
                // SAFETY: output pixel.
                unsafe { s.store(yb.add((oy * sh.out_w + ox) * 8), v) };
            }
        }
    }
}

impl Kernels {
    /// Resizes one NCHW8c image (any sizes, ONNX semantics for the given modes).
    pub fn resize(
        self,
        mode: ResizeMode,
        coord: CoordMode,
        shape: ResizeShape,
        input: Src<'_>,
        output: Dst<'_>,
    ) -> Result<(), Error> {
        let sh = shape;
        check(
            sh.in_h > 0 && sh.in_w > 0,
            "shape.in_h",
            "input must be non-empty",
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
            size(&[sh.out_h, sh.out_w]),
        )?;
        let a = ResizeArgs {
            sh,
            mode,
            coord,
            // SAFETY: checked by `view`.
            x: unsafe { input.data.as_ptr().add(xo) },
            // SAFETY: checked by `view`.
            y: unsafe { output.data.as_mut_ptr().add(yo) },
        };
        dispatch!(self, run, &a, ResizeArgs; avx512 []; avx2 []; neon []; scalar []);
        Ok(())
    }

    /// Exact 2x nearest upsample (each pixel becomes a 2x2 square).
    pub fn upsample2x_nearest(
        self,
        blocks: usize,
        in_h: usize,
        in_w: usize,
        input: Src<'_>,
        output: Dst<'_>,
    ) -> Result<(), Error> {
        // An empty image would leave `blocks` unbounded by the slices: reject it.
        check(in_h > 0 && in_w > 0, "in_h", "input must be non-empty")?;
        let ihw = size(&[in_h, in_w]);
        let xo = view("input", input.data.len(), input.block_offset, blocks, ihw)?;
        let yo = view(
            "output",
            output.data.len(),
            output.block_offset,
            blocks,
            size(&[4, ihw]),
        )?;
        let (x, y) = (&input.data[xo..], &mut output.data[yo..]);
        let ow = 2 * in_w;
        for cb in 0..blocks {
            for iy in 0..in_h {
                for ix in 0..in_w {
                    let src = (cb * ihw + iy * in_w + ix) * 8;
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let dst = (cb * 4 * ihw + (2 * iy + dy) * ow + 2 * ix + dx) * 8;
                        y[dst..dst + 8].copy_from_slice(&x[src..src + 8]);
                    }
                }
            }
        }
        Ok(())
    }
}
