//! Depthwise k x k convolution (k = 3 or 5, stride 1 or 2, any padding) on NCHW8c.
//!
//! Algorithm: per channel block the `k*k` weight vectors and the bias stay in registers. Each
//! output row is split into a left border, an interior and a right border along x (the border
//! ranges are computed from the static shape). Interior columns are produced `COLS` at a time:
//! for each tap the kernel issues `COLS` independent FMAs, so the FMA latency is hidden and
//! loads of overlapping input columns are shared. Border columns and rows test tap validity
//! instead of reading a zero-padded copy (rows: a null row pointer means "outside").
//!
//! Packed format: per channel block `[bias: 8][k*k taps: 8 each]`, i.e. `c_pad * (k*k + 1)`
//! floats; tap `(ky, kx)` of channel `c` is at `(c/8)*8*(k*k+1) + 8 + (ky*k + kx)*8 + c%8`.

use crate::arch::{ActV, Wide};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::{Dst, Epilogue, Src};
use core::ptr;

/// Number of `f32` in a packed depthwise weight.
pub const fn depthwise_packed_len(c_pad: usize, k: usize) -> usize {
    c_pad * (k * k + 1)
}

/// Packs `[c_pad][k][k]` weights and `bias[c_pad]` (zero-padded) into the block format.
pub fn pack_depthwise(
    weights: &[f32],
    bias: &[f32],
    c_pad: usize,
    k: usize,
    packed: &mut [f32],
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
    check_len("packed", packed.len(), size(&[c_pad, kk.saturating_add(1)]))?;
    for cb in 0..c_pad / 8 {
        let base = cb * 8 * (kk + 1);
        for l in 0..8 {
            let c = cb * 8 + l;
            packed[base + l] = bias[c];
            for t in 0..kk {
                packed[base + 8 + t * 8 + l] = weights[c * kk + t];
            }
        }
    }
    Ok(())
}

/// Shape of a depthwise convolution over one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthwiseShape {
    /// Channel blocks.
    pub blocks: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Kernel size, 3 or 5.
    pub k: usize,
    /// Stride, 1 or 2.
    pub stride: usize,
    /// Zero padding above.
    pub pad_top: usize,
    /// Zero padding on the left.
    pub pad_left: usize,
    /// Zero padding below.
    pub pad_bottom: usize,
    /// Zero padding on the right.
    pub pad_right: usize,
}

impl DepthwiseShape {
    /// "Same" padding `k/2` on every side.
    pub fn same(blocks: usize, in_h: usize, in_w: usize, k: usize, stride: usize) -> Self {
        DepthwiseShape {
            blocks,
            in_h,
            in_w,
            k,
            stride,
            pad_top: k / 2,
            pad_left: k / 2,
            pad_bottom: k / 2,
            pad_right: k / 2,
        }
    }
    /// Output height.
    pub fn out_h(&self) -> usize {
        let padded = self
            .in_h
            .saturating_add(self.pad_top)
            .saturating_add(self.pad_bottom);
        (padded.saturating_sub(self.k) / self.stride.max(1)).saturating_add(1)
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        let padded = self
            .in_w
            .saturating_add(self.pad_left)
            .saturating_add(self.pad_right);
        (padded.saturating_sub(self.k) / self.stride.max(1)).saturating_add(1)
    }
}

#[derive(Clone, Copy)]
pub(crate) struct DwArgs {
    pub w: *const f32,
    /// Kernel size (3 or 5).
    pub k: usize,
    /// Stride (1 or 2).
    pub stride: usize,
    pub blocks: usize,
    pub x: *const f32,
    pub x_bs: usize,
    pub ih: usize,
    pub iw: usize,
    pub y: *mut f32,
    pub y_bs: usize,
    pub oh: usize,
    pub ow: usize,
    pub pt: usize,
    pub pl: usize,
    pub r: *const f32,
    pub r_bs: usize,
    pub sums: *mut f32,
    pub act: crate::Activation,
    /// Output rows `oy0 .. oy1` are computed (a thread's share; `0 .. oh` for all).
    pub oy0: usize,
    pub oy1: usize,
}

impl DwArgs {
    /// The same layer restricted to blocks `b0 .. b1`.
    pub(crate) fn blocks(&self, b0: usize, b1: usize) -> DwArgs {
        let off = |p: *const f32, bs: usize| {
            if p.is_null() {
                p
            } else {
                p.wrapping_add(b0 * bs)
            }
        };
        DwArgs {
            w: self.w.wrapping_add(b0 * 8 * (self.k * self.k + 1)),
            blocks: b1 - b0,
            x: self.x.wrapping_add(b0 * self.x_bs),
            y: self.y.wrapping_add(b0 * self.y_bs),
            r: off(self.r, self.r_bs),
            sums: if self.sums.is_null() {
                self.sums
            } else {
                self.sums.wrapping_add(b0 * 8)
            },
            ..*self
        }
    }
    /// The same layer restricted to output rows `oy0 .. oy1` (needs `sums` null).
    pub(crate) fn rows(&self, oy0: usize, oy1: usize) -> DwArgs {
        DwArgs { oy0, oy1, ..*self }
    }
}

/// Weights of one block, in registers.
pub(crate) struct BlockW<V, const K: usize> {
    pub bias: V,
    pub w: [[V; K]; K],
}

/// # Safety
/// `p` must point at a packed block of `K*K+1` vectors.
#[inline(always)]
pub(crate) unsafe fn load_block<S: Wide, const K: usize>(s: S, p: *const f32) -> BlockW<S::V, K> {
    let mut w = [[s.zero(); K]; K];
    for (ky, row) in w.iter_mut().enumerate() {
        for (kx, v) in row.iter_mut().enumerate() {
            // SAFETY: tap index < K*K.
            *v = unsafe { s.load(p.add(8 + (ky * K + kx) * 8)) };
        }
    }
    BlockW {
        // SAFETY: bias is the first vector.
        bias: unsafe { s.load(p) },
        w,
    }
}

/// Where `R` vertically adjacent output rows go.
pub(crate) struct RowsOut<V, const R: usize> {
    /// Output row pointers.
    pub y: [*mut f32; R],
    /// Residual row pointers, or null.
    pub r: [*const f32; R],
    /// Gate block (the fused ghost's DFC gate; read only by [`rows`] with `G`): after the
    /// residual, pixel `ox` of row `r` is multiplied by the vector at `g + gm[r][ox]`.
    pub g: *const f32,
    /// Gate offsets of the output rows' pixels (read only with a gate).
    pub gm: [*const u32; R],
    /// Running sum of stored values (for channel sums).
    pub sum: V,
}

/// Input row pointers for `R` output rows: entry `t` is input row `oy*ST - pad_top + t`
/// (null when outside the image); output row `r` uses entries `r*ST .. r*ST + K`.
pub(crate) type InRows = [*const f32; 8];

/// Activation, residual, gate (`G`), store, channel sum of one output pixel.
///
/// # Safety
/// `ox` < the rows' output width (see [`rows`]).
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn store<S: Wide, const R: usize, const G: bool>(
    s: S,
    act: &ActV<S::V>,
    out: &mut RowsOut<S::V, R>,
    r: usize,
    ox: usize,
    v: S::V,
) {
    // SAFETY: forwarded.
    unsafe { store_activated::<S, R, G>(s, out, r, ox, act.apply(s, v)) };
}

/// [`store`] of a value whose activation is already applied.
///
/// # Safety
/// As [`store`].
#[inline(always)]
unsafe fn store_activated<S: Wide, const R: usize, const G: bool>(
    s: S,
    out: &mut RowsOut<S::V, R>,
    r: usize,
    ox: usize,
    mut v: S::V,
) {
    // SAFETY: ox < ow; the row pointers cover ow pixels, and with a gate `gm[r]` has ow
    // offsets inside the gate block (contract).
    unsafe {
        if !out.r[r].is_null() {
            v = s.add(v, s.load(out.r[r].add(ox * 8)));
        }
        if G {
            v = s.mul(v, s.load(out.g.add(*out.gm[r].add(ox) as usize)));
        }
        s.store(out.y[r].add(ox * 8), v);
    }
    out.sum = s.add(out.sum, v);
}

/// One border column of `R` rows: every tap checked against the row extent. The `R` rows are
/// independent FMA chains.
///
/// # Safety
/// As [`rows`].
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::too_many_arguments)]
unsafe fn border<S: Wide, const K: usize, const ST: usize, const R: usize, const G: bool>(
    s: S,
    inp: &InRows,
    bw: &BlockW<S::V, K>,
    act: &ActV<S::V>,
    iw: usize,
    pl: usize,
    out: &mut RowsOut<S::V, R>,
    ox: usize,
) {
    let mut acc = [bw.bias; R];
    for kx in 0..K {
        let ix = (ox * ST + kx) as isize - pl as isize;
        if ix < 0 || ix as usize >= iw {
            continue;
        }
        for ky in 0..K {
            for (r, acc) in acc.iter_mut().enumerate() {
                let rp = inp[r * ST + ky];
                if !rp.is_null() {
                    // SAFETY: 0 <= ix < iw on a valid row.
                    *acc = s.fma(
                        unsafe { s.load(rp.add(ix as usize * 8)) },
                        bw.w[ky][kx],
                        *acc,
                    );
                }
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: forwarded.
        unsafe { store::<S, R, G>(s, act, out, r, ox, *acc) };
    }
}

/// `C` interior columns of `R` rows starting at `ox`; `R*C` independent FMA chains, the
/// `K*K` weights in registers, overlapping input columns loaded once per row.
///
/// # Safety
/// As [`rows`], and columns `ox .. ox + C` must be interior.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::needless_range_loop)] // indices must be constants for register allocation
unsafe fn chunk<
    S: Wide,
    const K: usize,
    const ST: usize,
    const R: usize,
    const C: usize,
    const G: bool,
>(
    s: S,
    inp: &InRows,
    bw: &BlockW<S::V, K>,
    act: &ActV<S::V>,
    pl: usize,
    out: &mut RowsOut<S::V, R>,
    ox: usize,
) {
    let mut acc = [[bw.bias; C]; R];
    let base = (ox * ST - pl) * 8;
    for ky in 0..K {
        // With R == 1 a row may be outside the image; with R == 2 the caller guarantees all
        // rows exist.
        if R == 1 && inp[ky].is_null() {
            continue;
        }
        let mut rp = [ptr::null::<f32>(); R];
        for (r, rp) in rp.iter_mut().enumerate() {
            *rp = inp[r * ST + ky].wrapping_add(base);
        }
        for kx in 0..K {
            let w = bw.w[ky][kx];
            for r in 0..R {
                for c in 0..C {
                    // SAFETY: interior column of a valid row.
                    let x = unsafe { s.load(rp[r].add((c * ST + kx) * 8)) };
                    acc[r][c] = s.fma(x, w, acc[r][c]);
                }
            }
        }
    }
    // One dispatch on the activation for the whole chunk (see `ActV::apply_tile`).
    act.apply_tile_wide(s, &mut acc);
    for r in 0..R {
        for c in 0..C {
            // SAFETY: ox + c < ow.
            unsafe { store_activated::<S, R, G>(s, out, r, ox + c, acc[r][c]) };
        }
    }
}

/// `R` adjacent output rows (1 or 2) of one channel block: left border, interior in chunks
/// of `C1`, then `C2`, then single columns, right border.
///
/// # Safety
/// With `R == 2` every `inp[t]`, `t < K + ST`, must be non-null. Each non-null `inp[t]` (`t < K + ST*(R-1)`) must be valid for `iw` pixels; `out.y[r]` (and
/// non-null `out.r[r]`) for `ow` pixels; `ow` must be the output width for `iw`, `pl`, `K`,
/// `ST` and some right pad.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn rows<
    S: Wide,
    const K: usize,
    const ST: usize,
    const R: usize,
    const C1: usize,
    const C2: usize,
    const G: bool,
>(
    s: S,
    inp: &InRows,
    bw: &BlockW<S::V, K>,
    act: &ActV<S::V>,
    iw: usize,
    ow: usize,
    pl: usize,
    out: &mut RowsOut<S::V, R>,
) {
    let (lo, hi) = interior_cols(iw, ow, pl, K, ST);
    for ox in 0..lo {
        // SAFETY: forwarded contract; ox < ow.
        unsafe { border::<S, K, ST, R, G>(s, inp, bw, act, iw, pl, out, ox) };
    }
    let mut ox = lo;
    while ox + C1 <= hi {
        // SAFETY: forwarded contract; the columns are interior (< hi).
        unsafe { chunk::<S, K, ST, R, C1, G>(s, inp, bw, act, pl, out, ox) };
        ox += C1;
    }
    while ox + C2 <= hi {
        // SAFETY: forwarded contract; the columns are interior (< hi).
        unsafe { chunk::<S, K, ST, R, C2, G>(s, inp, bw, act, pl, out, ox) };
        ox += C2;
    }
    while ox < hi {
        // SAFETY: forwarded contract; the columns are interior (< hi).
        unsafe { chunk::<S, K, ST, R, 1, G>(s, inp, bw, act, pl, out, ox) };
        ox += 1;
    }
    for ox in hi..ow {
        // SAFETY: forwarded contract; ox < ow.
        unsafe { border::<S, K, ST, R, G>(s, inp, bw, act, iw, pl, out, ox) };
    }
}

/// The output columns `lo .. hi` whose every tap column lies inside `[0, iw)`
/// (`ox * stride >= pl` and `ox * stride - pl + k <= iw`); columns before `lo` and from `hi`
/// on are borders. `lo <= hi <= ow`.
#[inline(always)]
pub(crate) fn interior_cols(
    iw: usize,
    ow: usize,
    pl: usize,
    k: usize,
    stride: usize,
) -> (usize, usize) {
    let lo = pl.div_ceil(stride).min(ow);
    let hi = if iw + pl >= k {
        ((iw + pl - k) / stride + 1).min(ow)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// Where the row loop reads input row `iy` of channel block `cb`: a tensor ([`DwArgs`]), or
/// the fused expansion kernel's ring of bands (`kernels::pwdw`).
pub(crate) trait InputRows {
    /// Input row `iy < ih` of block `cb`, valid for the row's `iw` pixels.
    fn row(&self, cb: usize, iy: usize) -> *const f32;
}

impl InputRows for DwArgs {
    #[inline(always)]
    fn row(&self, cb: usize, iy: usize) -> *const f32 {
        self.x.wrapping_add(cb * self.x_bs + iy * self.iw * 8)
    }
}

/// The epilogue of `R` output rows whose raw sums [`rows`] has stored (with the identity and
/// no residual): the exp-based activation in place over whole rows, then, where there is a
/// residual or a channel sum, one more pass for them (in the order [`store`] applies them).
///
/// At small widths an output row is a few border columns and a short interior, each tile one
/// to eight vectors, and an exp-based activation evaluated per tile is latency-bound (one
/// vector is a chain of some 17 dependent operations, the division among them): the 7x7
/// layers of EfficientNet-B0 ran at half the speed of the same layers without it
/// (`ghost-bench`). The rows just written are in L1.
///
/// # Safety
/// `out.y[r]` (and non-null `out.r[r]`) valid for `ow` pixels; `out.y[r]` holds the raw sums.
#[inline(always)]
unsafe fn finish_rows<S: Wide, const R: usize>(
    s: S,
    act: &ActV<S::V>,
    out: &mut RowsOut<S::V, R>,
    ow: usize,
    sums: bool,
) {
    // SAFETY: the rows are valid for `ow` pixels (contract); adjacent rows of one tensor are
    // one run of `R * ow` vectors.
    unsafe {
        if R == 2 && out.y[1] == out.y[0].wrapping_add(ow * 8) {
            act.apply_mem_wide(s, out.y[0], 2 * ow);
        } else {
            for y in out.y {
                act.apply_mem_wide(s, y, ow);
            }
        }
        for r in 0..R {
            let (y, res) = (out.y[r], out.r[r]);
            if !res.is_null() {
                for ox in 0..ow {
                    let v = s.add(s.load(y.add(ox * 8)), s.load(res.add(ox * 8)));
                    s.store(y.add(ox * 8), v);
                    out.sum = s.add(out.sum, v);
                }
            } else if sums {
                for ox in 0..ow {
                    out.sum = s.add(out.sum, s.load(y.add(ox * 8)));
                }
            }
        }
    }
}

/// [`rows`], with an exp-based activation deferred to [`finish_rows`] when `DEFER` (the
/// caller's choice, made once per layer: deciding per row here, with one `rows` for both,
/// made the 3x3 kernels without an activation half as fast in ghost-bench). `a` gives the
/// widths, the left padding and whether channel sums are wanted.
///
/// # Safety
/// As [`rows`], with `a`'s `iw`, `ow` and `pl`.
#[inline(always)]
unsafe fn rows_deferred<
    S: Wide,
    const K: usize,
    const ST: usize,
    const R: usize,
    const C1: usize,
    const C2: usize,
    const DEFER: bool,
>(
    s: S,
    a: &DwArgs,
    inp: &InRows,
    (bw, act): (&BlockW<S::V, K>, &ActV<S::V>),
    out: &mut RowsOut<S::V, R>,
) {
    let (iw, ow, pl) = (a.iw, a.ow, a.pl);
    if !DEFER {
        // SAFETY: forwarded.
        return unsafe { rows::<S, K, ST, R, C1, C2, false>(s, inp, bw, act, iw, ow, pl, out) };
    }
    let mut raw = RowsOut {
        y: out.y,
        r: [ptr::null(); R],
        g: ptr::null(),
        gm: [ptr::null(); R],
        sum: s.zero(),
    };
    let identity = ActV::new(s, crate::Activation::None);
    // SAFETY: forwarded; `raw` writes the same rows, without a residual.
    unsafe {
        rows::<S, K, ST, R, C1, C2, false>(s, inp, bw, &identity, iw, ow, pl, &mut raw);
        finish_rows::<S, R>(s, act, out, ow, !a.sums.is_null());
    }
}

/// One channel block's output rows `oy0 .. oy1`: single rows, or pairs where all their
/// input rows are inside the image. Returns the running channel sum, continued from `sum`.
///
/// # Safety
/// `src` yields valid rows for every `iy < a.ih` these output rows read; `a`'s output (and
/// residual, when not null) views hold block `cb`'s rows `oy0 .. oy1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn block_rows<
    S: Wide,
    I: InputRows,
    const K: usize,
    const ST: usize,
    const C1: usize,
    const C2: usize,
    const D1: usize,
    const D2: usize,
    const DEFER: bool,
>(
    s: S,
    a: &DwArgs,
    src: &I,
    cb: usize,
    bw: &BlockW<S::V, K>,
    act: &ActV<S::V>,
    mut sum: S::V,
) -> S::V {
    let mut oy = a.oy0;
    while oy < a.oy1 {
        let mut inp: InRows = [ptr::null(); 8];
        let mut all_valid = oy + 1 < a.oy1;
        for (t, rp) in inp.iter_mut().enumerate().take(K + ST) {
            let iy = (oy * ST + t) as isize - a.pt as isize;
            if iy >= 0 && (iy as usize) < a.ih {
                *rp = src.row(cb, iy as usize);
            } else {
                all_valid = false;
            }
        }
        let orow = |oy: usize| {
            let y = a.y.wrapping_add(cb * a.y_bs + oy * a.ow * 8);
            let r = if a.r.is_null() {
                ptr::null()
            } else {
                a.r.wrapping_add(cb * a.r_bs + oy * a.ow * 8)
            };
            (y, r)
        };
        if all_valid {
            let ((y0, r0), (y1, r1)) = (orow(oy), orow(oy + 1));
            let mut out = RowsOut {
                y: [y0, y1],
                r: [r0, r1],
                g: ptr::null(),
                gm: [ptr::null(); 2],
                sum,
            };
            // SAFETY: rows oy, oy+1 exist; forwarded.
            unsafe { rows_deferred::<S, K, ST, 2, D1, D2, DEFER>(s, a, &inp, (bw, act), &mut out) };
            sum = out.sum;
            oy += 2;
        } else {
            let (y0, r0) = orow(oy);
            let mut out = RowsOut {
                y: [y0],
                r: [r0],
                g: ptr::null(),
                gm: [ptr::null()],
                sum,
            };
            // SAFETY: row oy exists; forwarded.
            unsafe { rows_deferred::<S, K, ST, 1, C1, C2, DEFER>(s, a, &inp, (bw, act), &mut out) };
            sum = out.sum;
            oy += 1;
        }
    }
    sum
}

/// # Safety
/// Pointers valid for the extents of the shape (see `Kernels::depthwise` checks); `y`
/// overlaps nothing else.
#[inline(always)]
pub(crate) unsafe fn run<
    S: Wide,
    const K: usize,
    const ST: usize,
    const C1: usize,
    const C2: usize,
    const D1: usize,
    const D2: usize,
    const DEFER: bool,
>(
    s: S,
    a: &DwArgs,
) {
    let act = ActV::new(s, a.act);
    for cb in 0..a.blocks {
        // SAFETY: block cb < blocks.
        let bw = unsafe { load_block::<S, K>(s, a.w.add(cb * 8 * (K * K + 1))) };
        // SAFETY: the input rows are the checked tensor's; forwarded.
        let sum = unsafe {
            block_rows::<S, DwArgs, K, ST, C1, C2, D1, D2, DEFER>(s, a, a, cb, &bw, &act, s.zero())
        };
        if !a.sums.is_null() {
            // SAFETY: sums has blocks*8 floats.
            unsafe {
                let q = a.sums.add(cb * 8);
                s.store(q, s.add(s.load(q), sum));
            }
        }
    }
}

impl Kernels {
    /// Depthwise convolution of one NCHW8c image (`k` in {3, 5}, `stride` in {1, 2}):
    /// reads blocks `[input.block_offset, +blocks)` of an `in_h x in_w` tensor, writes blocks
    /// `[output.block_offset, +blocks)` of an `out_h x out_w` tensor. `packed` comes from
    /// [`pack_depthwise`]. Epilogue as in [`Kernels::pointwise`].
    pub fn depthwise(
        self,
        packed: &[f32],
        shape: DepthwiseShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = depthwise_args(packed, shape, input, output, epilogue)?;
        // SAFETY: `depthwise_args` checked every extent; `output` is a unique borrow.
        unsafe { depthwise_exec(self, &a) };
        Ok(())
    }
}

/// The checked raw views of a depthwise layer's tensors (`blocks` blocks of `ihw` input and
/// `ohw` output pixels) and its epilogue; shared with the general depthwise kernel.
pub(crate) struct DwViews {
    pub x: *const f32,
    pub y: *mut f32,
    /// Residual, or null.
    pub r: *const f32,
    /// Channel sums (`blocks * 8`), or null.
    pub sums: *mut f32,
    pub act: crate::Activation,
}

impl DwViews {
    pub(crate) fn new(
        blocks: usize,
        ihw: usize,
        ohw: usize,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<DwViews, Error> {
        let xo = view("input", input.data.len(), input.block_offset, blocks, ihw)?;
        let yo = view(
            "output",
            output.data.len(),
            output.block_offset,
            blocks,
            ohw,
        )?;
        let r = match &epilogue.residual {
            Some(res) => {
                let ro = view("residual", res.data.len(), res.block_offset, blocks, ohw)?;
                // SAFETY: checked just above.
                unsafe { res.data.as_ptr().add(ro) }
            }
            None => ptr::null(),
        };
        let sums = match epilogue.channel_sums {
            Some(sums) => {
                check_len("channel_sums", sums.len(), size(&[blocks, 8]))?;
                sums.as_mut_ptr()
            }
            None => ptr::null_mut(),
        };
        Ok(DwViews {
            // SAFETY: checked by `view`.
            x: unsafe { input.data.as_ptr().add(xo) },
            // SAFETY: checked by `view`.
            y: unsafe { output.data.as_mut_ptr().add(yo) },
            r,
            sums,
            act: epilogue.activation,
        })
    }
}

/// The shape checks of the 3x3/5x5 depthwise kernels (`f32` and int8).
pub(crate) fn check_shape(sh: &DepthwiseShape) -> Result<(), Error> {
    check(sh.k == 3 || sh.k == 5, "shape.k", "must be 3 or 5")?;
    check(
        sh.stride == 1 || sh.stride == 2,
        "shape.stride",
        "must be 1 or 2",
    )?;
    check(sh.blocks > 0, "shape.blocks", "must be positive")?;
    check(
        sh.in_h > 0 && sh.in_w > 0,
        "shape.in_h",
        "input must be non-empty",
    )?;
    check(
        sh.pad_top < sh.k && sh.pad_bottom < sh.k && sh.pad_left < sh.k && sh.pad_right < sh.k,
        "shape.pad_top",
        "padding must be smaller than the kernel",
    )?;
    check(
        sh.in_h.saturating_add(sh.pad_top + sh.pad_bottom) >= sh.k
            && sh.in_w.saturating_add(sh.pad_left + sh.pad_right) >= sh.k,
        "shape.in_h",
        "padded input smaller than the kernel",
    )?;
    Ok(())
}

/// The checks of [`Kernels::depthwise`], returning the raw arguments of the whole layer.
pub(crate) fn depthwise_args(
    packed: &[f32],
    shape: DepthwiseShape,
    input: Src<'_>,
    output: Dst<'_>,
    epilogue: Epilogue<'_>,
) -> Result<DwArgs, Error> {
    {
        let sh = shape;
        check_shape(&sh)?;
        let (oh, ow) = (sh.out_h(), sh.out_w());
        check_len(
            "packed",
            packed.len(),
            size(&[sh.blocks, 8, sh.k * sh.k + 1]),
        )?;
        let ihw = size(&[sh.in_h, sh.in_w]);
        let ohw = size(&[oh, ow]);
        let v = DwViews::new(sh.blocks, ihw, ohw, input, output, epilogue)?;
        let a = DwArgs {
            w: packed.as_ptr(),
            k: sh.k,
            stride: sh.stride,
            blocks: sh.blocks,
            x: v.x,
            x_bs: ihw * 8,
            ih: sh.in_h,
            iw: sh.in_w,
            y: v.y,
            y_bs: ohw * 8,
            oh,
            ow,
            pt: sh.pad_top,
            pl: sh.pad_left,
            r: v.r,
            r_bs: ohw * 8,
            sums: v.sums,
            act: v.act,
            oy0: 0,
            oy1: oh,
        };
        Ok(a)
    }
}

/// Runs the (share of the) layer `a` describes.
///
/// # Safety
/// `a` comes from [`depthwise_args`] (possibly restricted by [`DwArgs::blocks`] /
/// [`DwArgs::rows`]) and the borrows it was made from are still alive.
pub(crate) unsafe fn depthwise_exec(k: Kernels, a: &DwArgs) {
    // The dispatch is sound: the caller's contract.
    // AVX2 takes AVX-512's tiles (8 or 2 x 4 columns of 3x3, 4 or 2 x 2 of 5x5) although its
    // 16 registers cannot hold both their accumulators and the taps (the generated code was
    // not inspected): the smaller tiles it had before (4 or 2 x 2, and 2 or 1 x 1) gave 2-4
    // FMA chains where the FMA latency wants about 8. ghost-bench on the Zen 3 guest, alternating builds: 3x3 s1 c64
    // @28 62 -> 68 % of peak, c240 @14 53 -> 58 %, 3x3 s2 c240 @28 33 -> 39 %, 5x5 unchanged
    // (61, 51 and 33 %). The same change in the Ghost module's and the expansion's depthwise
    // (`ghost.rs`, `pwdw.rs`) gained nothing there (within 3 points of peak either way, one
    // case 8 points slower, in one pass), so they keep theirs.
    // Exp-based activations are evaluated per row pair, not per tile ([`finish_rows`]): a
    // choice made here, so that each case is a function of its own (both in one function
    // made the 3x3 kernels without an activation half as fast in ghost-bench). Only where
    // the tiles are vectors of 8 with the latency to hide (x86, NEON): the scalar and SIMD128
    // tokens (Cortex-M, wasm) keep one instance, and their code size.
    let defer = matches!(
        a.act,
        crate::Activation::Sigmoid
            | crate::Activation::Silu
            | crate::Activation::Gelu
            | crate::Activation::Mish
    );
    macro_rules! go {
        ($x86:tt; $arm:tt) => {
            if defer {
                go!(@ $x86; $arm; true)
            } else {
                go!(@ $x86; $arm; false)
            }
        };
        (@ [$($x:tt),*]; [$($n:tt),*]; $d:tt) => {
            dispatch!(k, run, a, DwArgs; avx512 [$($x,)* $d]; avx2 [$($x,)* $d];
                neon [$($n,)* $d]; scalar [$($n,)* false])
        };
    }
    match (a.k, a.stride) {
        (3, 1) => go!([3, 1, 8, 4, 4, 2]; [3, 1, 4, 2, 2, 1]),
        (3, _) => go!([3, 2, 8, 4, 4, 2]; [3, 2, 4, 2, 2, 1]),
        (_, 1) => go!([5, 1, 4, 2, 2, 1]; [5, 1, 4, 2, 2, 1]),
        _ => go!([5, 2, 4, 2, 2, 1]; [5, 2, 4, 2, 2, 1]),
    }
}
