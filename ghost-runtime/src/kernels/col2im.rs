//! The gather half of a transposed convolution (ConvTranspose), NCHW8c.
//!
//! A transposed convolution runs as two steps: the pointwise GEMM multiplies every input pixel
//! by all `kh * kw` taps at once (`cols`: `kh * kw * blocks` channel blocks over the input's
//! pixels, tap-major), then [`col2im`] sums, for each output pixel, the column entries that
//! land on it: input pixel `(iy, ix)` and tap `(ky, kx)` reach output pixel
//! `(iy * stride_h + ky * dilation_h - pad_top, ix * stride_w + kx * dilation_w - pad_left)`.
//! [`col2im_fused`] adds the bias and applies the activation (and a following unary function)
//! to each output row as soon as its taps are summed, while the row is still in cache (a block
//! row is 32 bytes per pixel: 16 KB at 512 pixels, 64 KB at the U-Net's 2048).
//!
//! Each output row is written once, from zero, adding its taps in `(ky, kx)` order: every
//! output value is the same sum in the same order whatever the caller splits, and padding
//! lanes stay whatever the columns hold there (zero when the GEMM's padded rows are zero).
//!
//! Deliberately not done here: ISA-specific code or a thread split. The body adds `[f32; 8]`
//! vectors, which the compiler vectorizes for the build's baseline; the step reads the columns
//! and writes the output once, so it is bound by memory, not arithmetic.

use crate::error::{check, check_len, size, Error};
use crate::glue::{unary, Unary};
use crate::{Activation, BinaryOp, Kernels};

/// Shape of one image's gather.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTransposeShape {
    /// Output channel blocks (of 8 lanes); `cols` holds `kh * kw` times as many.
    pub blocks: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output height (after the crop and `output_padding`).
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation.
    pub dilation_h: usize,
    /// Horizontal dilation.
    pub dilation_w: usize,
    /// Rows cropped from the top of the full transposed output.
    pub pad_top: usize,
    /// Columns cropped from the left.
    pub pad_left: usize,
}

impl ConvTransposeShape {
    /// Floats of `cols`: `kh * kw * blocks` blocks of `in_h * in_w` pixels.
    pub fn cols_len(&self) -> usize {
        size(&[self.kh, self.kw, self.blocks, self.in_h, self.in_w, 8])
    }

    /// Floats of the output.
    pub fn out_len(&self) -> usize {
        size(&[self.blocks, self.out_h, self.out_w, 8])
    }
}

/// `dst[b][oy][ox] = sum over (ky, kx) of cols[(ky * kw + kx) * blocks + b][iy][ix]` for the
/// input pixels `(iy, ix)` that reach `(oy, ox)` (module docs). `cols` and `dst` must hold at
/// least [`ConvTransposeShape::cols_len`] and [`ConvTransposeShape::out_len`] floats; only
/// those are read and written.
pub fn col2im(cols: &[f32], shape: &ConvTransposeShape, dst: &mut [f32]) -> Result<(), Error> {
    gather(cols, shape, dst, |_, _| Ok(()))
}

/// [`col2im`], then per output row (in place, before the next row is gathered):
/// `row = post(act(row + bias[channel]))`, the bias, activation and unary function the
/// per-channel step (`Kernels::channel_assign`) and `glue::unary` would apply to the whole
/// output afterwards, with the same results. `bias` holds `blocks * 8` floats.
pub fn col2im_fused(
    k: Kernels,
    cols: &[f32],
    shape: &ConvTransposeShape,
    dst: &mut [f32],
    bias: &[f32],
    act: Activation,
    post: Option<Unary>,
) -> Result<(), Error> {
    check_len("bias", bias.len(), size(&[shape.blocks, 8]))?;
    gather(cols, shape, dst, |b, row| {
        k.channel_assign(
            BinaryOp::Add,
            row,
            1,
            row.len() / 8,
            &bias[b * 8..b * 8 + 8],
            act,
        )?;
        if let Some(f) = post {
            unary(k, f, row);
        }
        Ok(())
    })
}

/// The gather of [`col2im`], calling `done(block, row)` on each output row once it is summed.
fn gather(
    cols: &[f32],
    shape: &ConvTransposeShape,
    dst: &mut [f32],
    mut done: impl FnMut(usize, &mut [f32]) -> Result<(), Error>,
) -> Result<(), Error> {
    let s = shape;
    check(
        s.stride_h > 0 && s.stride_w > 0 && s.dilation_h > 0 && s.dilation_w > 0,
        "shape",
        "strides and dilations must be positive",
    )?;
    check_len("cols", cols.len(), s.cols_len())?;
    check_len("dst", dst.len(), s.out_len())?;
    let (in_px, out_px) = (s.in_h * s.in_w, s.out_h * s.out_w);
    for b in 0..s.blocks {
        let out = &mut dst[b * out_px * 8..][..out_px * 8];
        for oy in 0..s.out_h {
            let row = &mut out[oy * s.out_w * 8..][..s.out_w * 8];
            row.fill(0.0);
            for ky in 0..s.kh {
                // The input row feeding output row `oy` through tap row `ky`, if any.
                let Some(t) = (oy + s.pad_top).checked_sub(ky * s.dilation_h) else {
                    continue;
                };
                if t % s.stride_h != 0 || t / s.stride_h >= s.in_h {
                    continue;
                }
                let iy = t / s.stride_h;
                for kx in 0..s.kw {
                    let tap = (ky * s.kw + kx) * s.blocks + b;
                    let src = &cols[(tap * in_px + iy * s.in_w) * 8..][..s.in_w * 8];
                    let offset = (kx * s.dilation_w) as isize - s.pad_left as isize;
                    let (lo, hi) = reaching(offset, s.stride_w, s.in_w, s.out_w);
                    for ix in lo..hi {
                        let ox = (ix as isize * s.stride_w as isize + offset) as usize;
                        let d: &mut [f32; 8] =
                            (&mut row[ox * 8..ox * 8 + 8]).try_into().expect("8 lanes");
                        let v: &[f32; 8] = src[ix * 8..ix * 8 + 8].try_into().expect("8 lanes");
                        for (d, v) in d.iter_mut().zip(v) {
                            *d += v;
                        }
                    }
                }
            }
            done(b, row)?;
        }
    }
    Ok(())
}

/// The input columns `[lo, hi)` (of `n_in`) whose output column `i * stride + offset` lies in
/// `[0, n_out)`.
fn reaching(offset: isize, stride: usize, n_in: usize, n_out: usize) -> (usize, usize) {
    let stride = stride as isize;
    let lo = if offset >= 0 {
        0
    } else {
        (-offset + stride - 1) / stride
    };
    let last = n_out as isize - 1 - offset;
    let hi = if last < 0 { 0 } else { last / stride + 1 };
    let hi = (hi as usize).min(n_in);
    ((lo as usize).min(hi), hi)
}
