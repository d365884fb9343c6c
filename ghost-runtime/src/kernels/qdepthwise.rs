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
//! Packed format ([`pack_depthwise_u8`]): per channel block, 32 bytes of little-endian `i32`
//! biases, 32 bytes of `f32` scales (`sx * sw[c] / sy`), then `k*k` taps of 8 bytes holding
//! `w + 128` (so a tap loads with the `u8` widening load). Length `c_pad * (k*k + 8)` bytes.

use crate::arch::QSimd;
use crate::error::{check, check_len, size, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::depthwise::{check_shape, interior_cols, DepthwiseShape};
use crate::kernels::pointwise::view;
use crate::kernels::qpointwise::{Requant, Rq, RqV};
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
            (self.y.add(pix), r)
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

/// Runs the (share of the) layer: interiors in dot products where the CPU allows and `dot`
/// is set ([`crate::kernels::qdepthwise_dot`]), else in `f32` multiply-adds (the same bytes).
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn depthwise_u8_exec(k: Kernels, a: &QDwArgs, dot: bool) {
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
