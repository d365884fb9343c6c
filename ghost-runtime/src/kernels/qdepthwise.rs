//! Int8 depthwise k x k convolution (k = 3 or 5, stride 1 or 2, any padding) on `u8`
//! NCHW8c (layout and requantization as in [`crate::kernels::qpointwise`]).
//!
//! Semantics (ONNX `QLinearConv` with `group = C`): `acc[c] = b[c] + sum over taps inside the
//! image of (x - zx) * w[c][tap]` (padding holds the zero point, so taps outside add nothing),
//! then the requantization epilogue of [`crate::Requant`].
//!
//! Arithmetic: int8 in, exact `f32` accumulation. Every product `(x - zx) * w` is an integer
//! of magnitude at most `255 * 128`, and a sum of at most 25 of them stays below `2^24`, so
//! `f32` fused or unfused multiply-adds hold it exactly: the result equals the integer sum on
//! every path, and the `f32` pipes (8 lanes per FMA) run it without any widening multiply.
//! The sum is converted to `i32`, the `i32` bias added, then requantized.
//!
//! Packed format ([`pack_depthwise_u8`]): per channel block, 32 bytes of little-endian `i32`
//! biases, 32 bytes of `f32` scales (`sx * sw[c] / sy`), then `k*k` taps of 8 bytes holding
//! `w + 128` (so a tap loads with the `u8` widening load). Length `c_pad * (k*k + 8)` bytes.

use crate::arch::QSimd;
use crate::error::{check, check_len, size, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::depthwise::{check_shape, DepthwiseShape};
use crate::kernels::pointwise::view;
use crate::kernels::qpointwise::{Requant, Rq, RqV};
use crate::{Dst, Src};
use core::ptr;

/// Bytes of a packed int8 depthwise weight.
pub const fn depthwise_u8_packed_len(c_pad: usize, k: usize) -> usize {
    c_pad * (k * k + 8)
}

/// Packs `[c_pad][k][k]` `s8` weights, `i32` biases and `f32` requantization scales
/// (`sx * sw[c] / sy`, finite and >= 0; all zero-padded to `c_pad`) into the block format.
pub fn pack_depthwise_u8(
    weights: &[i8],
    bias: &[i32],
    scale: &[f32],
    c_pad: usize,
    k: usize,
    packed: &mut [u8],
) -> Result<(), Error> {
    check(
        c_pad.is_multiple_of(8) && c_pad > 0,
        "c_pad",
        "must be a positive multiple of 8",
    )?;
    check(k > 0, "k", "must be positive")?;
    let kk = size(&[k, k]);
    check_len("weights", weights.len(), size(&[c_pad, kk]))?;
    check_len("bias", bias.len(), c_pad)?;
    check_len("scale", scale.len(), c_pad)?;
    check(
        scale[..c_pad].iter().all(|s| s.is_finite() && *s >= 0.0),
        "scale",
        "must be finite and >= 0",
    )?;
    check_len("packed", packed.len(), size(&[c_pad, kk.saturating_add(8)]))?;
    for cb in 0..c_pad / 8 {
        let base = cb * 8 * (kk + 8);
        for l in 0..8 {
            let c = cb * 8 + l;
            packed[base + 4 * l..base + 4 * l + 4].copy_from_slice(&bias[c].to_le_bytes());
            packed[base + 32 + 4 * l..base + 36 + 4 * l].copy_from_slice(&scale[c].to_le_bytes());
            for t in 0..kk {
                packed[base + 64 + t * 8 + l] = (weights[c * kk + t] as i32 + 128) as u8;
            }
        }
    }
    Ok(())
}

/// A validated int8 depthwise layer (byte strides).
#[derive(Clone, Copy)]
pub(crate) struct QDwArgs {
    pub w: *const u8,
    pub k: usize,
    pub stride: usize,
    pub blocks: usize,
    pub x: *const u8,
    pub x_bs: usize,
    pub ih: usize,
    pub iw: usize,
    pub xzp: f32,
    pub y: *mut u8,
    pub y_bs: usize,
    pub oh: usize,
    pub ow: usize,
    pub pt: usize,
    pub pl: usize,
    pub rq: Rq,
    /// Output rows `oy0 .. oy1` are computed.
    pub oy0: usize,
    pub oy1: usize,
}

impl QDwArgs {
    /// The same layer restricted to blocks `b0 .. b1` and output rows `oy0 .. oy1`.
    pub(crate) fn share(&self, b0: usize, b1: usize, oy0: usize, oy1: usize) -> QDwArgs {
        let mut rq = self.rq;
        if !rq.r.is_null() {
            rq.r = rq.r.wrapping_add(b0 * rq.r_bs);
        }
        QDwArgs {
            w: self.w.wrapping_add(b0 * 8 * (self.k * self.k + 8)),
            blocks: b1 - b0,
            x: self.x.wrapping_add(b0 * self.x_bs),
            y: self.y.wrapping_add(b0 * self.y_bs),
            rq,
            oy0,
            oy1,
            ..*self
        }
    }
}

/// # Safety
/// `a` comes from [`depthwise_u8_args`] (possibly restricted by [`QDwArgs::share`]) and the
/// borrows it was made from are alive.
// Index loops with constant trip counts keep the accumulators in registers.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn run<S: QSimd, const K: usize, const ST: usize, const COLS: usize>(s: S, a: &QDwArgs) {
    let rqv = RqV::new(s, &a.rq);
    let nzp = s.splat(-a.xzp);
    let m128 = s.splat(-128.0);
    for b in 0..a.blocks {
        // SAFETY: block b < blocks of the packed weight.
        let pw = unsafe { a.w.add(b * 8 * (K * K + 8)) };
        let mut w = [[s.zero(); K]; K];
        for (ky, row) in w.iter_mut().enumerate() {
            for (kx, v) in row.iter_mut().enumerate() {
                // SAFETY: tap < K*K of this block.
                *v = s.add(unsafe { s.load_u8(pw.add(64 + (ky * K + kx) * 8)) }, m128);
            }
        }
        // SAFETY: bias and scale head the block.
        let (bias, scale) = unsafe { (s.iload(pw), s.load(pw.add(32).cast())) };
        let blk = Blk {
            // SAFETY: block b of the views.
            x: unsafe { a.x.add(b * a.x_bs) },
            // SAFETY: block b of the output view.
            y: unsafe { a.y.add(b * a.y_bs) },
            r: if a.rq.r.is_null() {
                ptr::null()
            } else {
                // SAFETY: block b of the residual view.
                unsafe { a.rq.r.add(b * a.rq.r_bs) }
            },
        };
        for oy in a.oy0..a.oy1 {
            // Valid taps rows: iy = oy*ST + ky - pt in 0..ih.
            let mut rows = [ptr::null::<u8>(); K];
            for (ky, r) in rows.iter_mut().enumerate() {
                let iy = (oy * ST + ky).wrapping_sub(a.pt);
                if iy < a.ih {
                    // SAFETY: row iy < ih of this block.
                    *r = unsafe { blk.x.add(iy * a.iw * 8) };
                }
            }
            let mut ox = 0;
            while ox < a.ow {
                let interior = ox * ST >= a.pl && (ox + COLS - 1) * ST + K - 1 < a.iw + a.pl;
                let n = if interior && ox + COLS <= a.ow {
                    COLS
                } else {
                    1
                };
                let mut acc = [s.zero(); COLS];
                for ky in 0..K {
                    let row = rows[ky];
                    if row.is_null() {
                        continue;
                    }
                    for kx in 0..K {
                        let wv = w[ky][kx];
                        if n == COLS {
                            for (c, acc) in acc.iter_mut().enumerate() {
                                let ix = (ox + c) * ST + kx - a.pl;
                                // SAFETY: interior columns: 0 <= ix < iw.
                                let xv = s.add(unsafe { s.load_u8(row.add(ix * 8)) }, nzp);
                                *acc = s.fma(xv, wv, *acc);
                            }
                        } else {
                            let ix = (ox * ST + kx).wrapping_sub(a.pl);
                            if ix < a.iw {
                                // SAFETY: checked 0 <= ix < iw.
                                let xv = s.add(unsafe { s.load_u8(row.add(ix * 8)) }, nzp);
                                acc[0] = s.fma(xv, wv, acc[0]);
                            }
                        }
                    }
                }
                for (c, acc) in acc.iter().enumerate().take(n) {
                    let pix = (oy * a.ow + ox + c) * 8;
                    // Exact integer below 2^24 in f32: `round` converts it exactly.
                    let q = s.iadd(s.round(*acc), bias);
                    // SAFETY: pixel (oy, ox + c) of the output (and residual) block.
                    unsafe {
                        let r = if blk.r.is_null() {
                            ptr::null()
                        } else {
                            blk.r.add(pix)
                        };
                        rqv.store(s, q, scale, blk.y.add(pix), r);
                    }
                }
                ox += n;
            }
        }
    }
}

struct Blk {
    x: *const u8,
    y: *mut u8,
    r: *const u8,
}

/// Runs the (share of the) layer.
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn depthwise_u8_exec(k: Kernels, a: &QDwArgs) {
    match (a.k, a.stride) {
        (3, 1) => qdispatch!(k, run, a, QDwArgs; vnni [3, 1, 8]; avx2 [3, 1, 4]; scalar [3, 1, 4]),
        (3, _) => qdispatch!(k, run, a, QDwArgs; vnni [3, 2, 8]; avx2 [3, 2, 4]; scalar [3, 2, 4]),
        (_, 1) => qdispatch!(k, run, a, QDwArgs; vnni [5, 1, 8]; avx2 [5, 1, 4]; scalar [5, 1, 4]),
        _ => qdispatch!(k, run, a, QDwArgs; vnni [5, 2, 8]; avx2 [5, 2, 4]; scalar [5, 2, 4]),
    }
}

impl Kernels {
    /// Int8 depthwise convolution of one `u8` NCHW8c image (`k` in {3, 5}, `stride` in
    /// {1, 2}; semantics in [`crate::kernels::qdepthwise`]): input zero point
    /// `input_zero_point`, `packed` from [`pack_depthwise_u8`], block offsets as in
    /// [`Kernels::depthwise`].
    pub fn depthwise_u8(
        self,
        packed: &[u8],
        shape: DepthwiseShape,
        input_zero_point: u8,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
        requant: Requant<'_>,
    ) -> Result<(), Error> {
        let a = depthwise_u8_args(packed, shape, input_zero_point, input, output, &requant)?;
        // SAFETY: checked by `depthwise_u8_args`; `output` is a unique borrow.
        unsafe { depthwise_u8_exec(self, &a) };
        Ok(())
    }
}

/// The checks of [`Kernels::depthwise_u8`].
pub(crate) fn depthwise_u8_args(
    packed: &[u8],
    sh: DepthwiseShape,
    input_zero_point: u8,
    input: Src<'_, u8>,
    output: Dst<'_, u8>,
    requant: &Requant<'_>,
) -> Result<QDwArgs, Error> {
    check_shape(&sh)?;
    let (oh, ow) = (sh.out_h(), sh.out_w());
    check_len(
        "packed",
        packed.len(),
        size(&[sh.blocks, 8, sh.k * sh.k + 8]),
    )?;
    let ihw = size(&[sh.in_h, sh.in_w]);
    let ohw = size(&[oh, ow]);
    let xo = view(
        "input",
        input.data.len(),
        input.block_offset,
        sh.blocks,
        ihw,
    )?;
    let yo = view(
        "output",
        output.data.len(),
        output.block_offset,
        sh.blocks,
        ohw,
    )?;
    let rq = Rq::new(requant, sh.blocks, ohw)?;
    Ok(QDwArgs {
        w: packed.as_ptr(),
        k: sh.k,
        stride: sh.stride,
        blocks: sh.blocks,
        // SAFETY: checked by `view`.
        x: unsafe { input.data.as_ptr().add(xo) },
        x_bs: ihw * 8,
        ih: sh.in_h,
        iw: sh.in_w,
        xzp: input_zero_point as f32,
        // SAFETY: checked by `view`.
        y: unsafe { output.data.as_mut_ptr().add(yo) },
        y_bs: ohw * 8,
        oh,
        ow,
        pt: sh.pad_top,
        pl: sh.pad_left,
        rq,
        oy0: 0,
        oy1: oh,
    })
}
