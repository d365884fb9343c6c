//! Int8 depthwise k x k convolution (k = 3 or 5, stride 1 or 2, any padding) on `u8`
//! NCHW8c (layout and requantization as in [`crate::kernels::qpointwise`]).
//!
//! Semantics (ONNX `QLinearConv` with `group = C`): `acc[c] = b[c] + sum over taps inside the
//! image of (x - zx) * w[c][tap]` (padding holds the zero point, so taps outside add nothing),
//! then the requantization epilogue of [`crate::Requant`].
//!
//! Arithmetic: int8 in, exact `f32` accumulation. Every product `x * w` or `(x - zx) * w` is
//! an integer of magnitude at most `255 * 128`, and every partial sum of a pixel (at most 25
//! products, plus the zero point's share `-zx * sum(w)` in the interior) stays below `2^21`,
//! so `f32` fused or unfused multiply-adds hold it exactly: the result equals the integer sum
//! on every path and in any order, and the `f32` pipes (8 lanes per FMA) run it without any
//! widening multiply. A bias up to `2^24 - 2^21` starts the sum (still exact); a larger
//! one is added to the sum in `i32`. Then the requantization epilogue.
//!
//! Interior pixels go `COLS` at a time: each input pixel of a tap row is widened to `f32`
//! once and feeds every tap of the chunk that reads it (`(COLS - 1) * stride + k` widenings
//! per row instead of `COLS * k`), the zero point enters once per pixel as `-zx * sum(w)`
//! of the rows inside the image, and whole groups of 4 pixels requantize in one packed
//! store. Border pixels test each tap and subtract the zero point per tap. Measured
//! (`ghost-bench --int8`, AVX-512 VNNI, one core), GMAC/s before -> after: 3x3 s1 c40 @56
//! 17.6 -> 25.0, 3x3 s1 c240 @14 15.2 -> 21.1, 3x3 s2 c48 @112 12.1 -> 19.6, 5x5 s2 c80 @56
//! 14.9 -> 26.2.
//!
//! With AVX-512 VNNI and VBMI, whole lines go through integer dot products instead
//! (`kernels/qdepthwise_dot.rs`, 1.4-2.4x faster; the same bytes).
//!
//! An int8 Ghost module's cheap operation can write the module's concatenation itself
//! ([`Kernels::depthwise_u8_concat`], [`GhostConcatU8`]): groups of its lines go into a
//! caller's buffer (or straight to their place when its output starts on a block boundary of
//! the concatenation with the same parameters), then the group's lines and the input rows
//! under them are converted into the concatenation with `qconcat`'s table lookup, the same
//! bytes as `depthwise_u8` and two `concat_u8` calls (`tests/qghost_concat.rs`). Measured
//! (`ghost-bench --int8 --filter ghost`, cache-resident) from 5 % faster (24 channels @112)
//! to 2-9 % slower (36 @56) than the three calls, and GhostNet-1.0 int8 1.003-1.005 of them:
//! no speed gain on tensors that fit L2; the win is one step instead of three and no tensor
//! for the conv's output.
//!
//! Packed format ([`pack_depthwise_u8`]): per channel block, 32 bytes of little-endian `i32`
//! biases, 32 bytes of `f32` scales (`sx * sw[c] / sy`), then `k*k` taps of 8 bytes holding
//! `w + 128` (so a tap loads with the `u8` widening load). Length `c_pad * (k*k + 8)` bytes.

use crate::arch::QSimd;
use crate::error::{check, check_len, size, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::depthwise::{check_shape, interior_cols, DepthwiseShape};
use crate::kernels::pointwise::view;
use crate::kernels::qconcat::{conversion, span_exec, Conversion, Span, U8Requant};
use crate::kernels::qpointwise::{Requant, Rq, RqV};
use crate::kernels::quantize::check_scale;
use crate::{Dst, Src};
use core::ptr;

/// The largest bias magnitude the kernel adds in `f32`: a pixel's partial sums without it are
/// below `2^21` in magnitude (module docs), so a bias up to `2^24 - 2^21` keeps every partial
/// sum an exact integer in `f32`.
const F32_BIAS_MAX: u32 = (1 << 24) - (1 << 21);

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

/// The bytes of line buffer a depthwise conv writing a Ghost module's concatenation
/// ([`Kernels::depthwise_u8_concat`]) works best with: 0 when its output goes to the
/// concatenation in place (`concat.cheap` a copy, `concat.channels` a multiple of 8), else the
/// conv's whole output up to 16 KiB (fewer, larger groups of lines; at least one line).
pub fn depthwise_u8_concat_buffer_len(shape: &DepthwiseShape, concat: &GhostConcatU8) -> usize {
    if in_place(concat) {
        return 0;
    }
    let line = size(&[shape.out_w(), 8]);
    size(&[shape.blocks, shape.out_h(), line]).min(GROUP_BYTES.max(line))
}

/// The conv's output starts on a block boundary of the concatenation with its parameters.
fn in_place(g: &GhostConcatU8) -> bool {
    g.cheap.is_identity() && g.channels.is_multiple_of(8)
}

/// The concatenation `Concat(x, depthwise(x))` an int8 Ghost module's depthwise conv writes
/// instead of an output of its own ([`Kernels::depthwise_u8_concat`]): the conv's input `x`
/// converted into lanes `0 .. channels` and its output into lanes `channels .. 2 * channels`,
/// each exactly as [`Kernels::concat_u8`] converts an input, a group of output lines at a
/// time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GhostConcatU8 {
    /// Channels of the conv's input and of its output (`blocks` of the shape hold them).
    pub channels: usize,
    /// From the input's parameters to the concatenation's.
    pub primary: U8Requant,
    /// From the conv output's parameters to the concatenation's.
    pub cheap: U8Requant,
}

/// Where a [`GhostConcatU8`] goes.
#[derive(Clone, Copy)]
pub(crate) struct CatArgs {
    /// Pixel 0 of the concatenation's block 0.
    dst: *mut u8,
    /// Bytes between the concatenation's blocks.
    dst_bs: usize,
    g: GhostConcatU8,
    /// The line buffer (unused in place) and its length, at least a line.
    buf: *mut u8,
    buf_len: usize,
}

impl CatArgs {
    /// The same with the buffer's part `i` of `parts` (whole lines), for a split layer.
    pub(crate) fn part(&self, i: usize, parts: usize, ow: usize) -> CatArgs {
        let lines = self.buf_len / (8 * ow) / parts;
        CatArgs {
            buf: self.buf.wrapping_add(i * lines * 8 * ow),
            buf_len: lines * 8 * ow,
            ..*self
        }
    }

    /// Whether each of `parts` gets at least one line of the buffer.
    pub(crate) fn splits(&self, parts: usize, ow: usize) -> bool {
        in_place(&self.g) || self.buf_len / (8 * ow) >= parts
    }
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
    /// Writes a Ghost module's concatenation instead of `y` (then null).
    pub cat: Option<CatArgs>,
}

impl QDwArgs {
    /// The same layer restricted to blocks `b0 .. b1` and output rows `oy0 .. oy1`.
    /// A layer writing a concatenation is shared by rows only (its blocks' conversions
    /// write lanes of neighbouring blocks).
    pub(crate) fn share(&self, b0: usize, b1: usize, oy0: usize, oy1: usize) -> QDwArgs {
        debug_assert!(self.cat.is_none() || (b0, b1) == (0, self.blocks));
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

/// How an output line's columns are computed: [`Fma`] on every token (border columns tap by
/// tap, interior ones in chunks), integer dot products on byte-shuffled windows with AVX-512
/// VNNI and VBMI ([`crate::kernels::qdepthwise_dot`]).
pub(crate) trait Columns<S: QSimd, const K: usize, const ST: usize> {
    /// The per-block state, from the block's packed weights at `pw` and the input zero point.
    ///
    /// # Safety
    /// `pw` valid for reading one packed block (`8 * (K*K + 8)` bytes).
    unsafe fn new(s: S, pw: *const u8, zx: u8) -> Self;

    /// Every column of the line; `lo .. hi` are the interior ones (every tap inside the
    /// image, [`interior_cols`]), `w` the block's weights in `f32` and `nzp` `-zx` splat.
    ///
    /// # Safety
    /// The line's pointers are block views of `a`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn line(
        &self,
        s: S,
        a: &QDwArgs,
        w: &[[S::V; K]; K],
        line: &Line<'_, S, K>,
        rqv: &RqV<S>,
        nzp: S::V,
        lo: usize,
        hi: usize,
    );
}

/// Border columns tap by tap ([`border`]), interior ones in `f32` multiply-adds `COLS` at a
/// time (then 4, then 1: [`chunk`]).
pub(crate) struct Fma<const COLS: usize>;

impl<S: QSimd, const K: usize, const ST: usize, const COLS: usize> Columns<S, K, ST> for Fma<COLS> {
    #[inline(always)]
    unsafe fn new(_: S, _: *const u8, _: u8) -> Self {
        Fma
    }

    #[inline(always)]
    unsafe fn line(
        &self,
        s: S,
        a: &QDwArgs,
        w: &[[S::V; K]; K],
        line: &Line<'_, S, K>,
        rqv: &RqV<S>,
        nzp: S::V,
        lo: usize,
        hi: usize,
    ) {
        for ox in 0..lo {
            // SAFETY: ox < ow.
            unsafe { border::<S, K, ST>(s, a, w, line, rqv, nzp, ox) };
        }
        let mut ox = lo;
        while ox + COLS <= hi {
            // SAFETY: interior columns ox .. ox + COLS.
            unsafe { chunk::<S, K, ST, COLS>(s, a, w, line, rqv, ox) };
            ox += COLS;
        }
        // SAFETY: the rest of the interior columns, 4 then 1 at a time.
        unsafe { chunk_tail::<S, K, ST>(s, a, w, line, rqv, ox, hi) };
        for ox in hi..a.ow {
            // SAFETY: ox < ow.
            unsafe { border::<S, K, ST>(s, a, w, line, rqv, nzp, ox) };
        }
    }
}

/// Interior columns `ox .. hi` (fewer than a chunk) in groups of 4, then one by one.
///
/// # Safety
/// Columns `ox .. hi` interior; the line's pointers are block views of `a`.
#[inline(always)]
unsafe fn chunk_tail<S: QSimd, const K: usize, const ST: usize>(
    s: S,
    a: &QDwArgs,
    w: &[[S::V; K]; K],
    line: &Line<'_, S, K>,
    rqv: &RqV<S>,
    mut ox: usize,
    hi: usize,
) {
    while ox + 4 <= hi {
        // SAFETY: interior columns ox .. ox + 4.
        unsafe { chunk::<S, K, ST, 4>(s, a, w, line, rqv, ox) };
        ox += 4;
    }
    while ox < hi {
        // SAFETY: interior column ox.
        unsafe { chunk::<S, K, ST, 1>(s, a, w, line, rqv, ox) };
        ox += 1;
    }
}

/// [`run_with`] with [`Fma`] interiors of `COLS` columns.
///
/// # Safety
/// As [`run_with`].
#[inline(always)]
unsafe fn run<S: QSimd, const K: usize, const ST: usize, const COLS: usize>(s: S, a: &QDwArgs) {
    // SAFETY: forwarded.
    unsafe { run_with::<S, Fma<COLS>, K, ST>(s, a) }
}

/// # Safety
/// `a` comes from [`depthwise_u8_args`] (possibly restricted by [`QDwArgs::share`]) and the
/// borrows it was made from are alive.
// Index loops with constant trip counts keep the accumulators in registers.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
pub(crate) unsafe fn run_with<S: QSimd, I: Columns<S, K, ST>, const K: usize, const ST: usize>(
    s: S,
    a: &QDwArgs,
) {
    let rqv = RqV::new(s, &a.rq);
    let nzp = s.splat(-a.xzp);
    let m128 = s.splat(-128.0);
    for b in 0..a.blocks {
        // SAFETY: block b < blocks of the packed weight.
        let pw = unsafe { a.w.add(b * 8 * (K * K + 8)) };
        let mut w = [[s.zero(); K]; K];
        // `-zx * (sum of row ky's taps)`: what the zero point takes from a chunk's sum for
        // each of its rows inside the image (exact: at most 255 * 5 * 128 in magnitude).
        let mut row_corr = [s.zero(); K];
        for (ky, row) in w.iter_mut().enumerate() {
            let mut sum = s.zero();
            for (kx, v) in row.iter_mut().enumerate() {
                // SAFETY: tap < K*K of this block.
                *v = s.add(unsafe { s.load_u8(pw.add(64 + (ky * K + kx) * 8)) }, m128);
                sum = s.add(sum, *v);
            }
            row_corr[ky] = s.mul(sum, nzp);
        }
        // SAFETY: bias and scale head the block.
        let (bias, scale) = unsafe { (s.iload(pw), s.load(pw.add(32).cast())) };
        // SAFETY: block b of the packed weight.
        let columns = unsafe { I::new(s, pw, a.xzp as u8) };
        let fbias = (0..8).all(|l| {
            // SAFETY: bias l of the 8 at the head of the block (bytes, any alignment).
            let b = i32::from_le_bytes(unsafe { *pw.add(4 * l).cast::<[u8; 4]>() });
            b.unsigned_abs() <= F32_BIAS_MAX
        });
        // With a small bias the sum starts from it: see `Line::fbias`.
        let bias_f = if fbias { s.to_f32(bias) } else { s.zero() };
        let blk = Blk {
            // SAFETY: block b of the views.
            x: unsafe { a.x.add(b * a.x_bs) },
            // Block b of the output view (its base may lie outside the view: see
            // `concat_exec`; `Line::at` only forms in-bounds pixel addresses from it).
            y: a.y.wrapping_add(b * a.y_bs),
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
            let mut corr = bias_f;
            for (ky, r) in rows.iter_mut().enumerate() {
                let iy = (oy * ST + ky).wrapping_sub(a.pt);
                if iy < a.ih {
                    // SAFETY: row iy < ih of this block.
                    *r = unsafe { blk.x.add(iy * a.iw * 8) };
                    corr = s.add(corr, row_corr[ky]);
                }
            }
            let line = Line {
                rows: &rows,
                corr,
                start: bias_f,
                fbias,
                bias,
                scale,
                y: blk.y,
                r: blk.r,
                oy,
            };
            let (lo, hi) = interior_cols(a.iw, a.ow, a.pl, K, ST);
            // SAFETY: the line's pointers are block views of `a`.
            unsafe { columns.line(s, a, &w, &line, &rqv, nzp, lo, hi) };
        }
    }
}

/// One output row of one channel block.
pub(crate) struct Line<'r, S: QSimd, const K: usize> {
    /// Input row of each tap row (null outside the image).
    pub(crate) rows: &'r [*const u8; K],
    /// The zero point's share of an interior pixel's sum over the rows inside the image
    /// (plus the bias with `fbias`).
    corr: S::V,
    /// What a border pixel's sum starts from: the bias with `fbias`, else 0.
    start: S::V,
    /// Every bias of the block is at most [`F32_BIAS_MAX`] in magnitude: then every partial
    /// sum starting from the bias stays an exact integer in `f32` (below `2^24`), and the sum
    /// needs no trip through `i32` to add the bias.
    fbias: bool,
    /// The block's biases.
    pub(crate) bias: S::I,
    /// The block's requantization scales.
    pub(crate) scale: S::V,
    /// The output block; its base may lie before the buffer (a group of lines of a layer
    /// writing a concatenation: see [`concat_exec`]), pixels of the line inside it.
    y: *mut u8,
    /// The residual block (null without a residual).
    pub(crate) r: *const u8,
    oy: usize,
}

/// Requantizes and stores output pixel `ox` of the line from its exact `f32` sum.
///
/// # Safety
/// `ox < a.ow`; the line's pointers are block views of `a`.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn store<S: QSimd, const K: usize>(
    s: S,
    a: &QDwArgs,
    line: &Line<'_, S, K>,
    rqv: &RqV<S>,
    ox: usize,
    acc: S::V,
) {
    // SAFETY: pixel (oy, ox) of the line (caller's contract).
    unsafe {
        let (y, r) = line.at(a, ox);
        rqv.store_f32(s, total(s, line, acc), line.scale, y, r);
    }
}

impl<S: QSimd, const K: usize> Line<'_, S, K> {
    /// The output and residual (null when absent) pointers of pixel `ox` of the line.
    ///
    /// # Safety
    /// `ox < a.ow`; the line's pointers are block views of `a`.
    #[inline(always)]
    pub(crate) unsafe fn at(&self, a: &QDwArgs, ox: usize) -> (*mut u8, *const u8) {
        let pix = (self.oy * a.ow + ox) * 8;
        // SAFETY: pixel (oy, ox) of the output (and residual) block.
        unsafe {
            let r = if self.r.is_null() {
                ptr::null()
            } else {
                self.r.add(pix)
            };
            // In bounds for every pixel of the line (the caller's contract), whatever `y`.
            (self.y.wrapping_add(pix), r)
        }
    }
}

/// The accumulator plus the bias, as `f32(i32 sum)`: with a small bias the sum already holds
/// it; otherwise the exact integer sum (below `2^24`) is rounded to `i32` exactly and the bias
/// added there.
#[inline(always)]
fn total<S: QSimd, const K: usize>(s: S, line: &Line<'_, S, K>, acc: S::V) -> S::V {
    if line.fbias {
        acc
    } else {
        s.to_f32(s.iadd(s.round(acc), line.bias))
    }
}

/// A column with taps outside the image: each valid tap adds `(x - zx) * w`.
///
/// # Safety
/// As [`store`].
#[allow(clippy::needless_range_loop)] // constant indices keep the weights in registers
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn border<S: QSimd, const K: usize, const ST: usize>(
    s: S,
    a: &QDwArgs,
    w: &[[S::V; K]; K],
    line: &Line<'_, S, K>,
    rqv: &RqV<S>,
    nzp: S::V,
    ox: usize,
) {
    let mut acc = line.start;
    for ky in 0..K {
        let row = line.rows[ky];
        if row.is_null() {
            continue;
        }
        for kx in 0..K {
            let ix = (ox * ST + kx).wrapping_sub(a.pl);
            if ix < a.iw {
                // SAFETY: 0 <= ix < iw on a row inside the image.
                let xv = s.add(unsafe { s.load_u8(row.add(ix * 8)) }, nzp);
                acc = s.fma(xv, w[ky][kx], acc);
            }
        }
    }
    // SAFETY: forwarded.
    unsafe { store(s, a, line, rqv, ox, acc) };
}

/// `C` interior columns from `ox`: each input pixel of a row is widened once and feeds every
/// tap that reads it (`(C - 1) * ST + K` conversions per row instead of `C * K`); the zero
/// point enters once per pixel through `line.corr`. Integer sums below `2^24`, so the order
/// of the additions cannot change the result.
///
/// # Safety
/// As [`store`], and columns `ox .. ox + C` interior.
#[allow(clippy::needless_range_loop)] // constant indices keep the accumulators in registers
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn chunk<S: QSimd, const K: usize, const ST: usize, const C: usize>(
    s: S,
    a: &QDwArgs,
    w: &[[S::V; K]; K],
    line: &Line<'_, S, K>,
    rqv: &RqV<S>,
    ox: usize,
) {
    let mut acc = [line.corr; C];
    let base = (ox * ST - a.pl) * 8;
    for ky in 0..K {
        let row = line.rows[ky];
        if row.is_null() {
            continue;
        }
        // At most (8 - 1) * 2 + 5 columns (COLS <= 8, K <= 5, ST <= 2).
        let mut xs = [s.zero(); 19];
        for j in 0..(C - 1) * ST + K {
            // SAFETY: interior columns: input column ox*ST - pl + j < iw.
            xs[j] = unsafe { s.load_u8(row.add(base + j * 8)) };
        }
        for kx in 0..K {
            for c in 0..C {
                acc[c] = s.fma(xs[c * ST + kx], w[ky][kx], acc[c]);
            }
        }
    }
    if C.is_multiple_of(4) {
        for g in 0..C / 4 {
            let q: [S::V; 4] = core::array::from_fn(|i| total(s, line, acc[4 * g + i]));
            // SAFETY: pixels ox + 4g .. + 4 < ow (interior) of the output (and residual) block.
            unsafe {
                let (y, r) = line.at(a, ox + 4 * g);
                rqv.store4_f32(s, q, line.scale, y, r);
            }
        }
    } else {
        for c in 0..C {
            // SAFETY: ox + c < ow (interior).
            unsafe { store(s, a, line, rqv, ox + c, acc[c]) };
        }
    }
}

struct Blk {
    x: *const u8,
    y: *mut u8,
    r: *const u8,
}

/// Bytes of the line buffer [`depthwise_u8_concat_buffer_len`] asks for at most.
const GROUP_BYTES: usize = 16384;

/// A layer writing a Ghost module's concatenation: groups of lines (as many rows of as many
/// blocks as fit the caller's buffer) are computed by the plain layer into the buffer,
/// then the input's rows and the group's lines are converted into the concatenation
/// (`qconcat`'s spans) while both are in L1. The plain layer is the same code as
/// [`Kernels::depthwise_u8`] runs (a second copy of the line loop inside a concatenating
/// driver compiled 15-20 % slower: more live state, spilled epilogue constants).
///
/// # Safety
/// `a` comes from [`depthwise_u8_concat_args`] (possibly restricted by [`QDwArgs::share`])
/// and the borrows it was made from are alive.
unsafe fn concat_exec(k: Kernels, a: &QDwArgs, c: &CatArgs, dot: bool) {
    let primary = conversion(k, &c.g.primary);
    let cheap = conversion(k, &c.g.cheap);
    // The conv's output already has the concatenation's parameters and starts on a block
    // boundary: its lines go straight to their place (as `depthwise_u8` writes a view).
    let direct = in_place(&c.g);
    let buf = c.buf;
    let share_rows = a.oy1 - a.oy0;
    // In place, the whole share is one group (no buffer to fit; fewer calls). Not measured
    // to matter: the 112x112 modules were 0.5-0.8 us above the separate steps in groups of
    // 18 rows and 0.6-1.8 us above them in one group.
    let (rg, bg) = if direct {
        (share_rows, a.blocks)
    } else {
        let rg = (c.buf_len / (8 * a.ow)).min(share_rows);
        let bg = if rg == share_rows {
            c.buf_len / (8 * a.ow * rg)
        } else {
            1
        };
        (rg, bg)
    };
    let line = a.ow * 8;
    let mut r0 = a.oy0;
    while r0 < a.oy1 {
        let r1 = (r0 + rg).min(a.oy1);
        let mut b0 = 0;
        while b0 < a.blocks {
            let b1 = (b0 + bg).min(a.blocks);
            let mut g = QDwArgs { cat: None, ..*a }.share(b0, b1, r0, r1);
            if direct {
                // The conv's blocks are the concatenation's from block `channels / 8` on.
                g.y = c.dst.wrapping_add((c.g.channels / 8 + b0) * c.dst_bs);
                g.y_bs = c.dst_bs;
            } else {
                // Block b, row oy of the group at `buf + ((b - b0) * (r1 - r0) + oy - r0) *
                // line`: the base lies `r0` rows before the buffer (never dereferenced).
                g.y = buf.wrapping_sub(r0 * line);
                g.y_bs = (r1 - r0) * line;
            }
            // SAFETY: a share of a checked layer, its output the concatenation's blocks or
            // the group's buffer (`(b1 - b0) * (r1 - r0) * line <= buf_len` by the choice
            // of rg and bg).
            unsafe { plain_exec(k, &g, dot) };
            let lines = (!direct).then_some(buf.cast_const());
            // SAFETY: the buffer holds the group's lines (all written above) unless direct;
            // the input's blocks and the concatenation's extents were checked.
            unsafe { ghost_concat_group(k, a, c, (&primary, &cheap), lines, (b0, b1), (r0, r1)) };
            b0 = b1;
        }
        r0 = r1;
    }
}

/// Converts rows `r0 .. r1` of the input's blocks `b0 .. b1` and the conv's lines for them
/// (in `group`, `[b1 - b0][r1 - r0][ow][8]`; `None`: already in place) into the
/// concatenation: the input's lanes at `8 * b0 ..` and the lines' at `channels + 8 * b0 ..`
/// (the layer is shared by rows only, so `b0` is a block of the whole layer), the
/// concatenation's padding lanes after the last block's channels.
///
/// # Safety
/// Stride 1 with the input's size kept; `group` holds the group's lines; `c.dst` the
/// concatenation's extents for every row of the layer.
unsafe fn ghost_concat_group(
    k: Kernels,
    a: &QDwArgs,
    c: &CatArgs,
    (primary, cheap): (&Conversion, &Conversion),
    group: Option<*const u8>,
    (b0, b1): (usize, usize),
    (r0, r1): (usize, usize),
) {
    let n = (c.g.channels - 8 * b0).min(8 * (b1 - b0));
    let px = (r1 - r0) * a.ow;
    let dst = c.dst.wrapping_add(r0 * a.ow * 8);
    // The input: rows r0 .. r1 of its blocks, contiguous pixels of each.
    let x = a.x.wrapping_add(b0 * a.x_bs + r0 * a.iw * 8);
    let span = |src, src_bs, offset, end| Span {
        src,
        src_bs,
        dst,
        dst_bs: c.dst_bs,
        pixels: px,
        channels: n,
        offset,
        end,
    };
    // The last block's conversion also writes the concatenation's padding lanes.
    let off = c.g.channels + 8 * b0;
    let end = if b1 == a.blocks {
        (2 * c.g.channels).div_ceil(8) * 8
    } else {
        off + n
    };
    // SAFETY: the input's blocks b0 .. b1 (rows r0 .. r1) and the group's lines; rows r0 ..
    // r1 of the concatenation's blocks up to `end`.
    unsafe {
        span_exec(k, primary, &span(x, a.x_bs, 8 * b0, 8 * b0 + n));
        if let Some(group) = group {
            span_exec(k, cheap, &span(group, px * 8, off, end));
        }
    }
}

/// Runs the (share of the) layer: interiors in dot products where the CPU allows and `dot`
/// is set ([`crate::kernels::qdepthwise_dot`]), else in `f32` multiply-adds (the same bytes).
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn depthwise_u8_exec(k: Kernels, a: &QDwArgs, dot: bool) {
    match &a.cat {
        // SAFETY: forwarded.
        Some(c) => unsafe { concat_exec(k, a, c, dot) },
        // SAFETY: forwarded.
        None => unsafe { plain_exec(k, a, dot) },
    }
}

/// [`depthwise_u8_exec`] of a layer with its own output.
///
/// # Safety
/// As [`run`].
unsafe fn plain_exec(k: Kernels, a: &QDwArgs, dot: bool) {
    // SAFETY: forwarded.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if dot && unsafe { crate::kernels::qdepthwise_dot::try_exec(k, a) } {
        return;
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = dot;
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
        self.depthwise_u8_with(
            true,
            packed,
            shape,
            input_zero_point,
            input,
            output,
            requant,
        )
    }

    /// [`Kernels::depthwise_u8`] of an int8 Ghost module's cheap operation writing the
    /// module's concatenation `Concat(input, depthwise(input))` into `output` instead of an
    /// output of its own (see [`GhostConcatU8`]; `output` holds `(2 * concat.channels)
    /// .div_ceil(8)` blocks from its block offset): the same bytes as `depthwise_u8` then
    /// `concat_u8` of both inputs, without the conv's output tensor or a pass over the
    /// concatenation. Stride 1 with the input's size kept, no residual; `buffer` holds the
    /// conv's lines on their way into the concatenation: at least one line (`8 * in_w`
    /// bytes) unless the conv writes in place, best [`depthwise_u8_concat_buffer_len`].
    #[allow(clippy::too_many_arguments)]
    pub fn depthwise_u8_concat(
        self,
        packed: &[u8],
        shape: DepthwiseShape,
        input_zero_point: u8,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
        requant: Requant<'_>,
        concat: GhostConcatU8,
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        self.depthwise_u8_concat_with(
            true,
            packed,
            shape,
            input_zero_point,
            input,
            output,
            requant,
            concat,
            buffer,
        )
    }

    /// [`Kernels::depthwise_u8_concat`]; `dot` as in [`Kernels::depthwise_u8_with`].
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn depthwise_u8_concat_with(
        self,
        dot: bool,
        packed: &[u8],
        shape: DepthwiseShape,
        input_zero_point: u8,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
        requant: Requant<'_>,
        concat: GhostConcatU8,
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let a = depthwise_u8_concat_args(
            packed,
            shape,
            input_zero_point,
            input,
            output,
            &requant,
            concat,
            buffer,
        )?;
        // SAFETY: checked by `depthwise_u8_concat_args`; `output` is a unique borrow.
        unsafe { depthwise_u8_exec(self, &a, dot) };
        Ok(())
    }

    /// [`Kernels::depthwise_u8`]; `dot = false` keeps the `f32` multiply-adds even where the
    /// CPU has the dot-product path (same bytes): for tests and benchmarks of both.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn depthwise_u8_with(
        self,
        dot: bool,
        packed: &[u8],
        shape: DepthwiseShape,
        input_zero_point: u8,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
        requant: Requant<'_>,
    ) -> Result<(), Error> {
        let a = depthwise_u8_args(packed, shape, input_zero_point, input, output, &requant)?;
        // SAFETY: checked by `depthwise_u8_args`; `output` is a unique borrow.
        unsafe { depthwise_u8_exec(self, &a, dot) };
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
    let mut a = layer_args(packed, sh, input_zero_point, input, requant)?;
    let yo = view(
        "output",
        output.data.len(),
        output.block_offset,
        sh.blocks,
        a.oh * a.ow,
    )?;
    // SAFETY: checked by `view`.
    a.y = unsafe { output.data.as_mut_ptr().add(yo) };
    Ok(a)
}

/// The checks of a layer but for its output, which is left null.
fn layer_args(
    packed: &[u8],
    sh: DepthwiseShape,
    input_zero_point: u8,
    input: Src<'_, u8>,
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
        y: ptr::null_mut(),
        y_bs: ohw * 8,
        oh,
        ow,
        pt: sh.pad_top,
        pl: sh.pad_left,
        rq,
        oy0: 0,
        oy1: oh,
        cat: None,
    })
}

/// The checks of [`Kernels::depthwise_u8_concat`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn depthwise_u8_concat_args(
    packed: &[u8],
    sh: DepthwiseShape,
    input_zero_point: u8,
    input: Src<'_, u8>,
    output: Dst<'_, u8>,
    requant: &Requant<'_>,
    g: GhostConcatU8,
    buffer: &mut [u8],
) -> Result<QDwArgs, Error> {
    // The layer's checks (shape, weights, input, requantization); its own output is never
    // written (its lines go to `buffer` or to the concatenation).
    let mut a = layer_args(packed, sh, input_zero_point, input, requant)?;
    check(
        g.channels > 8 * (sh.blocks - 1) && g.channels <= 8 * sh.blocks,
        "concat.channels",
        "must need exactly shape.blocks blocks",
    )?;
    let (oh, ow) = (sh.out_h(), sh.out_w());
    check(
        sh.stride == 1 && oh == sh.in_h && ow == sh.in_w,
        "shape",
        "must keep the input's size (stride 1, padding k - 1 on each axis) to write a concatenation",
    )?;
    check(
        in_place(&g) || buffer.len() >= size(&[ow, 8]),
        "buffer",
        "must hold one output line (8 * in_w bytes) unless the conv writes in place",
    )?;
    check(
        requant.residual.is_none(),
        "requant.residual",
        "must be None when writing a concatenation",
    )?;
    for (r, a, b) in [
        (
            &g.primary,
            "concat.primary.in_scale",
            "concat.primary.out_scale",
        ),
        (&g.cheap, "concat.cheap.in_scale", "concat.cheap.out_scale"),
    ] {
        check_scale(r.in_scale, a)?;
        check_scale(r.out_scale, b)?;
    }
    check(
        g.primary.out_zero_point == g.cheap.out_zero_point
            && g.primary.out_scale == g.cheap.out_scale,
        "concat.cheap",
        "must have the output parameters of concat.primary",
    )?;
    let ohw = size(&[oh, ow]);
    let out_blocks = (2 * g.channels).div_ceil(8);
    let yo = view(
        "output",
        output.data.len(),
        output.block_offset,
        out_blocks,
        ohw,
    )?;
    a.y_bs = 0;
    a.cat = Some(CatArgs {
        // SAFETY: checked by `view`.
        dst: unsafe { output.data.as_mut_ptr().add(yo) },
        dst_bs: ohw * 8,
        g,
        buf: buffer.as_mut_ptr(),
        buf_len: buffer.len(),
    });
    Ok(a)
}
