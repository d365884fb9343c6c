//! Depthwise convolution of any kernel shape (`kh x kw`: 1xK, Kx1, KxK), any stride, any
//! dilation and any padding, on NCHW8c.
//!
//! This is what GhostNetV2's DFC attention (1x5 and 5x1 at quarter resolution) and
//! large-kernel or dilated depthwise layers need; the square 3x3/5x5 stride-1/2 layers keep the
//! register-resident kernel of [`crate::kernels::depthwise`], which the safe entry picks when
//! it applies.
//!
//! Algorithm: per channel block and output row, the valid kernel rows are the clipped range
//! `ky0 .. ky1` (taps outside the image are never visited, so top and bottom borders cost
//! nothing). Along x the row splits into left border columns, an interior where every tap
//! column is inside the image, and right border columns. Columns go `C` at a time: per tap one
//! weight vector is loaded and `C` independent FMAs read their inputs straight from memory (one
//! load per FMA plus one per tap), so the FMA latency is hidden for any kernel size and no
//! weights need to stay in registers (a 9x9 kernel has 81 tap vectors). Border tiles test each
//! tap's input column (a compare and a well-predicted branch: the pattern repeats every row);
//! interior tiles do not. Every output value adds its taps in the same order (bias, then `ky`
//! ascending, then `kx` ascending) whichever tile computes it, so splitting the layer by rows
//! or blocks gives identical bits.
//!
//! Line kernels: stride-1, undilated `1xK` and `Kx1` layers with `K` in {3, 5} (GhostNetV2's
//! DFC 1x5 / 5x1; for `1xK` any stride across the lines, for `Kx1` stride 1; no padding
//! across the lines) run as independent lines of a 1-D convolution (rows for `1xK`, columns
//! for `Kx1`) with the `K` tap vectors in registers. A tile is `R` lines by `C` outputs: each
//! input position is loaded once per line and feeds up to `K` accumulators (`C + K - 1` loads
//! for `K * C` FMAs), positions outside the input are skipped (the border needs no separate
//! code), and input pointers are bumped, not recomputed. For `1xK` the tile is one row (two
//! or three on the tiny images) of `C` outputs: `C` is the whole row on images 1..4, 7 or 8
//! wide (one tile per line at 7x7, 4x4, 3x3), else 8 or 7 when it divides the width, else 8
//! with an overlapping last tile that stores only its new outputs. For `Kx1` it is 3, 4, 7 or
//! 8 adjacent columns by one to three rows (per ISA), so that every load of a tile sits at a
//! constant offset from one row pointer. The taps are added in the same order as below, so both
//! kernels give the same bits. `ghost-bench`, AVX-512 (ymm), the DFC shapes from 7x7 to
//! 56x56: 1x5 37-41 GMAC/s, 5x1 31-36 (13-18 for both with three-row `1xK` tiles, which
//! spilled their 24 accumulators, and one-column `Kx1` tiles); 4x4 and 3x3 images 19-28.
//!
//! Packed format: per channel block `[bias: 8][kh*kw taps: 8 each]`, i.e. `c_pad * (kh*kw + 1)`
//! floats; for a square kernel it is exactly [`crate::pack_depthwise`]'s format.
//!
//! Deliberately not done here: keeping taps in registers or reusing loaded input columns across
//! taps (the 3x3/5x5 kernel does that; with memory operands the loads are not what limits the
//! shapes measured in `ghost-bench`), and wide tiles for column strides other than 1 and 2
//! (they run as single-column tiles: correct, not fast), and tiles spanning several channel
//! blocks (the line kernels at 3x3 are limited by per-block setup, not FMAs).

use crate::arch::{ActV, Wide};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Isa, Kernels};
use crate::kernels::conv::pack_conv;
use crate::kernels::depthwise::{depthwise_args, depthwise_exec, DwViews};
use crate::{DepthwiseShape, Dst, Epilogue, Src};
use core::ptr;

/// Number of `f32` in a packed general depthwise weight.
pub const fn depthwise_general_packed_len(c_pad: usize, kh: usize, kw: usize) -> usize {
    c_pad * (kh * kw + 1)
}

/// Packs `[c_pad][kh][kw]` weights and `bias[c_pad]` (zero-padded channels) into the block
/// format.
pub fn pack_depthwise_general(
    weights: &[f32],
    bias: &[f32],
    c_pad: usize,
    kh: usize,
    kw: usize,
    packed: &mut [f32],
) -> Result<(), Error> {
    check(kh > 0 && kw > 0, "kh", "kernel must be non-empty")?;
    // Same layout as a dense conv's packed weight with one input channel.
    pack_conv(weights, bias, 1, c_pad, kh, kw, packed)
}

/// Shape of a depthwise convolution of any kernel size over one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthwiseGeneralShape {
    /// Channel blocks.
    pub blocks: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Strides (h, w).
    pub stride: [usize; 2],
    /// Dilations (h, w).
    pub dilation: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub pads: [usize; 4],
}

impl DepthwiseGeneralShape {
    /// Kernel `kh x kw`, stride and dilation 1, "same" padding (`(k-1)/2` before, the rest
    /// after, as PyTorch's `padding=k//2` for odd `k`).
    pub fn same(blocks: usize, in_h: usize, in_w: usize, kh: usize, kw: usize) -> Self {
        DepthwiseGeneralShape {
            blocks,
            in_h,
            in_w,
            kh,
            kw,
            stride: [1, 1],
            dilation: [1, 1],
            pads: [kh / 2, kw / 2, (kh - 1) / 2, (kw - 1) / 2],
        }
    }

    /// Input extent covered by the kernel along an axis.
    fn extent(k: usize, dilation: usize) -> usize {
        size(&[dilation, k.saturating_sub(1)]).saturating_add(1)
    }

    /// Output height.
    pub fn out_h(&self) -> usize {
        let padded = self
            .in_h
            .saturating_add(self.pads[0])
            .saturating_add(self.pads[2]);
        (padded.saturating_sub(Self::extent(self.kh, self.dilation[0])) / self.stride[0].max(1))
            .saturating_add(1)
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        let padded = self
            .in_w
            .saturating_add(self.pads[1])
            .saturating_add(self.pads[3]);
        (padded.saturating_sub(Self::extent(self.kw, self.dilation[1])) / self.stride[1].max(1))
            .saturating_add(1)
    }

    /// The same layer as a [`DepthwiseShape`] when the register-resident 3x3/5x5 kernel can
    /// run it: square `k` in {3, 5}, equal strides in {1, 2}, no dilation, padding below `k`.
    pub fn as_square(&self) -> Option<DepthwiseShape> {
        let k = self.kh;
        let st = self.stride[0];
        let ok = (k == 3 || k == 5)
            && self.kw == k
            && (st == 1 || st == 2)
            && self.stride[1] == st
            && self.dilation == [1, 1]
            && self.pads.iter().all(|&p| p < k);
        ok.then_some(DepthwiseShape {
            blocks: self.blocks,
            in_h: self.in_h,
            in_w: self.in_w,
            k,
            stride: st,
            pad_top: self.pads[0],
            pad_left: self.pads[1],
            pad_bottom: self.pads[2],
            pad_right: self.pads[3],
        })
    }
}

/// Validated raw arguments of one layer (or a share of it).
#[derive(Clone, Copy)]
pub(crate) struct DwgArgs {
    pub w: *const f32,
    pub kh: usize,
    pub kw: usize,
    pub sy: usize,
    pub sx: usize,
    pub dy: usize,
    pub dx: usize,
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

impl DwgArgs {
    /// The same layer restricted to blocks `b0 .. b1`.
    pub(crate) fn blocks(&self, b0: usize, b1: usize) -> DwgArgs {
        DwgArgs {
            w: self.w.wrapping_add(b0 * 8 * (self.kh * self.kw + 1)),
            blocks: b1 - b0,
            x: self.x.wrapping_add(b0 * self.x_bs),
            y: self.y.wrapping_add(b0 * self.y_bs),
            r: if self.r.is_null() {
                self.r
            } else {
                self.r.wrapping_add(b0 * self.r_bs)
            },
            sums: if self.sums.is_null() {
                self.sums
            } else {
                self.sums.wrapping_add(b0 * 8)
            },
            ..*self
        }
    }

    /// The same layer restricted to output rows `oy0 .. oy1` (needs `sums` null).
    pub(crate) fn rows(&self, oy0: usize, oy1: usize) -> DwgArgs {
        DwgArgs { oy0, oy1, ..*self }
    }
}

/// The valid tap range `k0 .. k1` of output coordinate `o` along one axis: taps `k` with
/// `0 <= o*stride - pad + k*dil < n`.
#[inline(always)]
fn tap_range(
    o: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    k: usize,
    n: usize,
) -> (usize, usize) {
    let start = o * stride; // input coordinate of tap 0, plus `pad`
    if dil == 1 {
        let k0 = pad.saturating_sub(start);
        let k1 = (n + pad).saturating_sub(start).min(k);
        return (k0.min(k1), k1);
    }
    let k0 = if start >= pad {
        0
    } else {
        (pad - start).div_ceil(dil)
    };
    // Last valid: start + k*dil < n + pad.
    let k1 = if start >= n + pad {
        0
    } else {
        ((n + pad - start - 1) / dil + 1).min(k)
    };
    (k0.min(k1), k1)
}

/// `R` adjacent output rows of one block with the same valid kernel rows: where their inputs
/// and weights are.
struct Rows {
    /// Input row of the first valid kernel row of the first output row, column 0.
    x: *const f32,
    /// Floats from one output row's input rows to the next one's (`sy * iw * 8`).
    step: usize,
    /// Weights of the first valid kernel row (tap `(ky0, 0)`).
    w: *const f32,
    /// Valid kernel rows.
    nky: usize,
}

/// `R x C` output pixels (rows `0 .. R` of `rows`, columns `ox .. ox + C`) over every valid
/// kernel row: accumulators after every tap, bias first, then `ky` ascending, then `kx`
/// ascending. With `CHECK`, taps whose input column falls outside `0 .. iw` are skipped
/// (border columns); without, every tap must be inside (interior columns).
///
/// # Safety
/// `rows` describes valid input rows (for each of the `R` output rows, `nky` rows of `iw`
/// pixels, `iw*8*dy` floats apart; weights `kw*8` apart); `ox + C <= ow`; without `CHECK`,
/// the input column `(ox + c)*sx - pl + kx*dx` is in `0 .. iw` for every `c < C`, `kx < kw`.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::needless_range_loop)] // constant-index loops keep the accumulators in registers
unsafe fn tile<S: Wide, const SX: usize, const R: usize, const C: usize, const CHECK: bool>(
    s: S,
    a: &DwgArgs,
    rows: &Rows,
    bias: S::V,
    ox: usize,
    sx: usize,
) -> [[S::V; C]; R] {
    let mut acc = [[bias; C]; R];
    let col_step = if SX == 0 { sx } else { SX };
    // Input column of (ox, kx = 0), as a wrapping offset (may be "negative" with CHECK).
    let col0 = (ox * sx).wrapping_sub(a.pl);
    let mut xr = rows.x;
    let mut wr = rows.w;
    for _ in 0..rows.nky {
        let mut wp = wr;
        let mut col = col0;
        for _ in 0..a.kw {
            // SAFETY: tap (ky, kx) of this block's packed weights.
            let w = unsafe { s.load(wp) };
            for c in 0..C {
                let ix = col.wrapping_add(c * col_step);
                if !CHECK || ix < a.iw {
                    for r in 0..R {
                        // SAFETY: 0 <= ix < iw on a valid row (checked, or the contract).
                        let x = unsafe { s.load(xr.add(r * rows.step + ix * 8)) };
                        acc[r][c] = s.fma(x, w, acc[r][c]);
                    }
                }
            }
            col = col.wrapping_add(a.dx);
            wp = wp.wrapping_add(8);
        }
        xr = xr.wrapping_add(a.dy * a.iw * 8);
        wr = wr.wrapping_add(a.kw * 8);
    }
    acc
}

/// Where `R` adjacent output rows of one block go.
struct Out<V, const R: usize> {
    y: [*mut f32; R],
    r: [*const f32; R],
    /// Whether the layer accumulates channel sums (into `sum`).
    sums: bool,
    sum: V,
}

/// Activation, residual, store and channel sum of `R x C` output pixels at column `ox`. The
/// activation kind is dispatched once per tile; the residual and the channel sum (a serial
/// chain of adds) only cost when present.
///
/// # Safety
/// `ox + C <= ow`; `out.y` (and non-null `out.r`) valid for `ow` pixels.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::needless_range_loop)]
unsafe fn store<S: Wide, const R: usize, const C: usize>(
    s: S,
    act: &ActV<S::V>,
    out: &mut Out<S::V, R>,
    ox: usize,
    mut acc: [[S::V; C]; R],
) {
    act.apply_tile_wide(s, &mut acc);
    for r in 0..R {
        if !out.r[r].is_null() {
            for c in 0..C {
                // SAFETY: ox + c < ow (contract).
                acc[r][c] = s.add(acc[r][c], unsafe { s.load(out.r[r].add((ox + c) * 8)) });
            }
        }
        for c in 0..C {
            // SAFETY: ox + c < ow (contract).
            unsafe { s.store(out.y[r].add((ox + c) * 8), acc[r][c]) };
        }
    }
    if out.sums {
        for r in 0..R {
            for c in 0..C {
                out.sum = s.add(out.sum, acc[r][c]);
            }
        }
    }
}

/// Columns `lo .. hi` of `R` rows in tiles of `C1`, `C2`, `C3` columns, then 1 (`CHECK` as in
/// [`tile`]).
///
/// # Safety
/// As [`tile`] for every column in `lo .. hi`; `hi <= ow`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn columns<
    S: Wide,
    const SX: usize,
    const R: usize,
    const C1: usize,
    const C2: usize,
    const C3: usize,
    const CHECK: bool,
>(
    s: S,
    a: &DwgArgs,
    rows: &Rows,
    bias: S::V,
    act: &ActV<S::V>,
    out: &mut Out<S::V, R>,
    sx: usize,
    lo: usize,
    hi: usize,
) {
    let mut ox = lo;
    while ox + C1 <= hi {
        // SAFETY: columns ox .. ox + C1 are in lo .. hi (contract).
        unsafe {
            let acc = tile::<S, SX, R, C1, CHECK>(s, a, rows, bias, ox, sx);
            store::<S, R, C1>(s, act, out, ox, acc);
        }
        ox += C1;
    }
    while ox + C2 <= hi {
        // SAFETY: as above.
        unsafe {
            let acc = tile::<S, SX, R, C2, CHECK>(s, a, rows, bias, ox, sx);
            store::<S, R, C2>(s, act, out, ox, acc);
        }
        ox += C2;
    }
    while ox + C3 <= hi {
        // SAFETY: as above.
        unsafe {
            let acc = tile::<S, SX, R, C3, CHECK>(s, a, rows, bias, ox, sx);
            store::<S, R, C3>(s, act, out, ox, acc);
        }
        ox += C3;
    }
    while ox < hi {
        // SAFETY: as above.
        unsafe {
            let acc = tile::<S, SX, R, 1, CHECK>(s, a, rows, bias, ox, sx);
            store::<S, R, 1>(s, act, out, ox, acc);
        }
        ox += 1;
    }
}

/// One band of `R` output rows starting at `oy` whose valid kernel rows are `ky0 .. ky1`:
/// left border, interior, right border.
///
/// # Safety
/// As [`run`]; rows `oy .. oy + R` are in the share and all have the valid range `ky0 .. ky1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn band<
    S: Wide,
    const SX: usize,
    const R: usize,
    const C1: usize,
    const C2: usize,
    const C3: usize,
>(
    s: S,
    a: &DwgArgs,
    cb: usize,
    (ky0, ky1): (usize, usize),
    oy: usize,
    (lo, hi): (usize, usize),
    bias: S::V,
    act: &ActV<S::V>,
    sum: &mut S::V,
) {
    let sx = if SX == 0 { a.sx } else { SX };
    let wb = a.w.wrapping_add(cb * 8 * (a.kh * a.kw + 1));
    let rows = if ky0 < ky1 {
        let iy = oy * a.sy + ky0 * a.dy - a.pt;
        Rows {
            x: a.x.wrapping_add(cb * a.x_bs + iy * a.iw * 8),
            step: a.sy * a.iw * 8,
            w: wb.wrapping_add(8 + ky0 * a.kw * 8),
            nky: ky1 - ky0,
        }
    } else {
        Rows {
            x: a.x,
            step: 0,
            w: wb,
            nky: 0,
        }
    };
    let mut out = Out {
        y: [ptr::null_mut(); R],
        r: [ptr::null(); R],
        sums: !a.sums.is_null(),
        sum: *sum,
    };
    for r in 0..R {
        out.y[r] = a.y.wrapping_add(cb * a.y_bs + (oy + r) * a.ow * 8);
        if !a.r.is_null() {
            out.r[r] = a.r.wrapping_add(cb * a.r_bs + (oy + r) * a.ow * 8);
        }
    }
    // SAFETY: border columns are checked tap by tap, lo .. hi are interior; the rows are the
    // valid ones of these output rows (contract).
    unsafe {
        columns::<S, SX, R, C1, C2, C3, true>(s, a, &rows, bias, act, &mut out, sx, 0, lo);
        columns::<S, SX, R, C1, C2, C3, false>(s, a, &rows, bias, act, &mut out, sx, lo, hi);
        columns::<S, SX, R, C1, C2, C3, true>(s, a, &rows, bias, act, &mut out, sx, hi, a.ow);
    }
    *sum = out.sum;
}

/// Runs the (share of the) layer. `SX` is the column stride when it is 1 or 2, 0 for any other
/// stride (then every `C*` is 1). Adjacent output rows with the same valid kernel rows go in
/// pairs (tiles of `2 x D*`), others alone (tiles of `1 x C*`).
///
/// # Safety
/// `a` comes from [`depthwise_general_args`] (possibly restricted by [`DwgArgs::blocks`] /
/// [`DwgArgs::rows`]) and the borrows it was made from are alive.
#[inline(always)]
unsafe fn run<
    S: Wide,
    const SX: usize,
    const C1: usize,
    const C2: usize,
    const C3: usize,
    const D1: usize,
    const D2: usize,
    const D3: usize,
>(
    s: S,
    a: &DwgArgs,
) {
    let act = ActV::new(s, a.act);
    let sx = if SX == 0 { a.sx } else { SX };
    // Interior columns: every kernel column inside [0, iw).
    let span = (a.kw - 1) * a.dx; // checked not to overflow by the safe entry
    let lo = a.pl.div_ceil(sx).min(a.ow);
    let hi = if a.iw + a.pl > span {
        ((a.iw + a.pl - span - 1) / sx + 1).min(a.ow)
    } else {
        0
    }
    .max(lo);
    for cb in 0..a.blocks {
        // SAFETY: the block's bias vector.
        let bias = unsafe { s.load(a.w.add(cb * 8 * (a.kh * a.kw + 1))) };
        let mut sum = s.zero();
        let mut oy = a.oy0;
        while oy < a.oy1 {
            let ky = tap_range(oy, a.sy, a.pt, a.dy, a.kh, a.ih);
            let pair = oy + 1 < a.oy1
                && ky.0 < ky.1
                && tap_range(oy + 1, a.sy, a.pt, a.dy, a.kh, a.ih) == ky;
            // SAFETY: rows oy (.. oy + 2) are in the share with the valid range `ky`.
            unsafe {
                if pair {
                    band::<S, SX, 2, D1, D2, D3>(s, a, cb, ky, oy, (lo, hi), bias, &act, &mut sum);
                    oy += 2;
                } else {
                    band::<S, SX, 1, C1, C2, C3>(s, a, cb, ky, oy, (lo, hi), bias, &act, &mut sum);
                    oy += 1;
                }
            }
        }
        if !a.sums.is_null() {
            // SAFETY: sums has blocks*8 floats.
            unsafe {
                let q = a.sums.add(cb * 8);
                s.store(q, s.add(s.load(q), sum));
            }
        }
    }
}

/// A stride-1 `1xK` or `Kx1` layer seen as independent lines of a 1-D convolution: for `1xK`
/// the lines are output rows and the convolved axis is x; for `Kx1` the lines are output
/// columns and the axis is y. Along the other axis the kernel has one tap and no padding, so
/// line `l` reads input line `l * stride` only.
#[derive(Clone, Copy)]
struct Lines {
    /// Output positions `o0 .. o1` along the convolved axis.
    o0: usize,
    o1: usize,
    /// Input length and leading padding along the convolved axis.
    n_in: usize,
    pad: usize,
    /// Lines `l0 .. l1`.
    l0: usize,
    l1: usize,
    /// Float strides of the input along the axis and from one line to the next.
    x_cs: usize,
    x_ls: usize,
    /// Float strides of the output (and residual) along the axis and between lines.
    y_cs: usize,
    y_ls: usize,
}

impl Lines {
    /// The line view of `a` when it is a stride-1, undilated `1xK` / `Kx1` layer with
    /// `K` in {3, 5} and no padding across the lines; `None` otherwise.
    fn of(a: &DwgArgs) -> Option<(usize, Lines)> {
        let ok_k = |k: usize| k == 3 || k == 5;
        if a.kh == 1
            && ok_k(a.kw)
            && a.sx == 1
            && a.dx == 1
            && a.pt == 0
            && a.oh == a.ih.div_ceil(a.sy)
        {
            // Rows: output row l reads input row l * sy (< ih: oh rows of stride sy fit).
            return Some((
                a.kw,
                Lines {
                    o0: 0,
                    o1: a.ow,
                    n_in: a.iw,
                    pad: a.pl,
                    l0: a.oy0,
                    l1: a.oy1,
                    x_cs: 8,
                    x_ls: a.sy * a.iw * 8,
                    y_cs: 8,
                    y_ls: a.ow * 8,
                },
            ));
        }
        if a.kw == 1
            && ok_k(a.kh)
            && a.sy == 1
            && a.dy == 1
            && a.pl == 0
            && a.sx == 1
            && a.ow == a.iw
        {
            return Some((
                a.kh,
                Lines {
                    o0: a.oy0,
                    o1: a.oy1,
                    n_in: a.ih,
                    pad: a.pt,
                    l0: 0,
                    l1: a.ow,
                    x_cs: a.iw * 8,
                    x_ls: 8,
                    y_cs: a.ow * 8,
                    y_ls: 8,
                },
            ));
        }
        None
    }
}

/// One block's pointers and weights for [`line_tile`].
struct LineBlock<V, const K: usize> {
    x: *const f32,
    y: *mut f32,
    r: *const f32,
    w: [V; K],
    bias: V,
    sums: bool,
    sum: V,
}

/// `R` lines (`l .. l + R`) by `C` outputs along the axis (`o .. o + C`) of one block, storing
/// outputs `o + lo .. o + C` (`lo > 0` only for the overlapping last tile of a line).
///
/// Each input position is loaded once per line and feeds the (up to `K`) accumulators whose
/// taps read it; positions outside `0 .. n_in` are skipped, so every output adds the bias,
/// then its valid taps in ascending order: the same operations as [`tile`], whichever tile
/// computes it.
///
/// # Safety
/// `b` holds one block's valid pointers; lines `l .. l + R` are `< l1` and outputs
/// `o .. o + C` are `<= ` the output length along the axis.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::needless_range_loop)] // constant-index loops keep the accumulators in registers
unsafe fn line_tile<S: Wide, const K: usize, const C: usize, const R: usize, const H: bool>(
    s: S,
    g: &Lines,
    act: &ActV<S::V>,
    b: &mut LineBlock<S::V, K>,
    l: usize,
    o: usize,
    lo: usize,
) {
    // Strides known at compile time where they are: `H` (1xK) walks pixels along a row.
    let (x_cs, y_cs) = if H { (8, 8) } else { (g.x_cs, g.y_cs) };
    let y_ls = if H { g.y_ls } else { 8 };
    // Taps and bias as locals: read through `b` they were reloaded after every store (the
    // output pointer could alias `b` for all LLVM knows).
    let w = b.w;
    let mut acc = [[b.bias; C]; R];
    // Input position of output `o`'s tap 0 (wraps below zero: then it fails `< n_in`), and
    // a pointer walking the input positions (bumped, not recomputed: per-input address
    // products kept a dozen pointers on the stack).
    let p0 = o.wrapping_sub(g.pad);
    // Kx1 lines are adjacent columns (stride 1 across them: `Lines::of`).
    let x_ls = if H { g.x_ls } else { 8 };
    let mut xp =
        b.x.wrapping_add(p0.wrapping_mul(x_cs).wrapping_add(l * x_ls));
    // Every index a literal (input position `j`, line `r`, tap `k`), every loop written out:
    // with `for` loops over `r` and `k` LLVM left the 165-FMA tile of `R = 3, C = 7, K = 5`
    // partly rolled, and the accumulators lived on the stack (a store after every FMA; the
    // 1x5 / 5x1 layers ran at 13-18 % of peak).
    macro_rules! taps {
        ($j:literal, $r:literal, $xv:ident; $($k:literal)*) => {$(
            // Output c = j - k uses this input as its tap k (the index is clamped only to
            // keep the dead branches' constant indices in bounds).
            if $k < K && $j >= $k && $j - $k < C {
                let c = ($j - $k).min(C - 1);
                acc[$r][c] = s.fma($xv, w[$k], acc[$r][c]);
            }
        )*};
    }
    macro_rules! lines {
        ($j:literal; $($r:literal)*) => {$(
            if $r < R {
                // SAFETY: the position is < n_in on input line (l + r) * stride (contract).
                let xv = unsafe { s.load(xp.add($r * x_ls)) };
                taps!($j, $r, xv; 0 1 2 3 4);
            }
        )*};
    }
    macro_rules! input {
        ($($j:literal)*) => {$(
            if $j < C + K - 1 {
                if p0.wrapping_add($j) < g.n_in {
                    lines!($j; 0 1 2 3 4 5 6 7);
                }
                xp = xp.wrapping_add(x_cs);
            }
        )*};
    }
    input!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14);
    debug_assert!(C + K - 1 <= 15, "line_tile unrolls at most 15 inputs");
    debug_assert!(
        K <= 5 && R <= 8,
        "line_tile unrolls at most 5 taps and 8 lines"
    );
    act.apply_tile_wide(s, &mut acc);
    let mut off = o * y_cs + l * y_ls;
    for c in 0..C {
        if c >= lo {
            for r in 0..R {
                let mut v = acc[r][c];
                let at = off + r * y_ls;
                // SAFETY: output (l + r, o + c) exists (contract); the residual has the
                // output's layout.
                unsafe {
                    if !b.r.is_null() {
                        v = s.add(v, s.load(b.r.add(at)));
                    }
                    s.store(b.y.add(at), v);
                }
                if b.sums {
                    b.sum = s.add(b.sum, v);
                }
            }
        }
        off += y_cs;
    }
}

/// Every line of `R` (then fewer) at once, each in tiles of `C` along the axis (`C` no more
/// than the axis length: the last tile overlaps the previous one and stores only the new
/// outputs).
///
/// # Safety
/// As [`line_tile`] for `b`; `C <= o1 - o0`.
#[inline(always)]
unsafe fn line_rows<S: Wide, const K: usize, const C: usize, const R: usize, const H: bool>(
    s: S,
    g: &Lines,
    act: &ActV<S::V>,
    b: &mut LineBlock<S::V, K>,
    l: usize,
) {
    let mut o = g.o0;
    while o + C <= g.o1 {
        // SAFETY: outputs o .. o + C exist.
        unsafe { line_tile::<S, K, C, R, H>(s, g, act, b, l, o, 0) };
        o += C;
    }
    if o < g.o1 {
        // SAFETY: o1 - C >= o0: outputs o1 - C .. o1 exist.
        unsafe { line_tile::<S, K, C, R, H>(s, g, act, b, l, g.o1 - C, C - (g.o1 - o)) };
    }
}

/// The whole (share of the) layer with tiles of `R x C`.
///
/// # Safety
/// As [`run`]; `g` is `Lines::of(a)` and `1 <= C <= o1 - o0`.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn line_blocks<S: Wide, const K: usize, const C: usize, const R: usize, const H: bool>(
    s: S,
    a: &DwgArgs,
    g: &Lines,
) {
    let act = ActV::new(s, a.act);
    for cb in 0..a.blocks {
        let wb = a.w.wrapping_add(cb * 8 * (K + 1));
        // SAFETY: the block's bias and K taps (kh * kw == K).
        let bias = unsafe { s.load(wb) };
        let mut w = [bias; K];
        for (k, wk) in w.iter_mut().enumerate() {
            // SAFETY: as above.
            *wk = unsafe { s.load(wb.add(8 + 8 * k)) };
        }
        let mut b = LineBlock {
            x: a.x.wrapping_add(cb * a.x_bs),
            y: a.y.wrapping_add(cb * a.y_bs),
            r: if a.r.is_null() {
                a.r
            } else {
                a.r.wrapping_add(cb * a.r_bs)
            },
            w,
            bias,
            sums: !a.sums.is_null(),
            sum: s.zero(),
        };
        let mut l = g.l0;
        while l + R <= g.l1 {
            // SAFETY: lines l .. l + R exist; forwarded.
            unsafe { line_rows::<S, K, C, R, H>(s, g, &act, &mut b, l) };
            l += R;
        }
        while l < g.l1 {
            // SAFETY: the remaining lines exist.
            unsafe { line_rows::<S, K, C, 1, H>(s, g, &act, &mut b, l) };
            l += 1;
        }
        if b.sums {
            // SAFETY: sums has blocks*8 floats.
            unsafe {
                let q = a.sums.add(cb * 8);
                s.store(q, s.add(s.load(q), b.sum));
            }
        }
    }
}

/// [`Lines`] kernel of a `1xK` layer: lines are output rows, positions run along them. The
/// tile width `C` is the row length when it is 1..4, 7 or 8 (tiny images: one tile per line),
/// 4 at 5 and 6, else 8 or 7 when either divides it, else 8 with an overlapping last tile.
/// `R<C>` lines share a tile of width `C` (per ISA). Few widths and no other line counts
/// (remainders go one line at a time) keep the instantiations, hence the crate's build time,
/// in check.
///
/// # Safety
/// As [`run`]; `Lines::of(a)` is `Some((K, _))` and `a.kh == 1`.
#[inline(always)]
unsafe fn run_rows<
    S: Wide,
    const K: usize,
    const R1: usize,
    const R2: usize,
    const R3: usize,
    const R4: usize,
    const R7: usize,
    const R8: usize,
>(
    s: S,
    a: &DwgArgs,
) {
    let Some((_, g)) = Lines::of(a) else {
        return;
    };
    let n = g.o1.saturating_sub(g.o0);
    if n == 0 || g.l1 <= g.l0 || a.kh != 1 {
        return;
    }
    let c = match n {
        1..=4 | 7 | 8 => n,
        5 | 6 => 4,
        _ if n % 7 == 0 && n % 8 != 0 => 7,
        _ => 8,
    };
    macro_rules! go {
        ($c:literal, $r:ident) => {
            // SAFETY: C <= n; forwarded.
            unsafe { line_blocks::<S, K, $c, $r, true>(s, a, &g) }
        };
    }
    match c {
        1 => go!(1, R1),
        2 => go!(2, R2),
        3 => go!(3, R3),
        4 => go!(4, R4),
        7 => go!(7, R7),
        _ => go!(8, R8),
    }
}

/// [`Lines`] kernel of a `Kx1` layer: lines are output columns, positions run down them. A
/// tile is `R` adjacent columns (the row width when it is 3, 4, 7 or 8; 3 at 5 and 6; else 7
/// when it divides the width, else 8; leftover columns one at a time, as are rows 1 and 2
/// wide) by `C<R>` rows (per ISA, as many as the register file holds; 1 when the image is
/// shorter). Many columns and few rows, not
/// the reverse: the columns are adjacent vectors, so the whole tile's loads sit at constant
/// offsets from one row pointer. With one column per tile (a runtime row stride between the
/// tile's loads) LLVM turned every load's address into its own pointer, bumped on the stack
/// from one column to the next (5x1 layers at 12 % of peak).
///
/// # Safety
/// As [`run`]; `Lines::of(a)` is `Some((K, _))` and `a.kw == 1`.
#[inline(always)]
unsafe fn run_cols<
    S: Wide,
    const K: usize,
    const C8: usize,
    const C7: usize,
    const C4: usize,
    const C3: usize,
>(
    s: S,
    a: &DwgArgs,
) {
    let Some((_, g)) = Lines::of(a) else {
        return;
    };
    let n = g.o1.saturating_sub(g.o0);
    let lines = g.l1.saturating_sub(g.l0);
    if n == 0 || lines == 0 || a.kw != 1 {
        return;
    }
    let r = match lines {
        3 | 4 | 7 | 8 => lines,
        1 | 2 | 5 | 6 => 3.min(lines),
        _ if lines % 7 == 0 => 7,
        _ => 8,
    };
    macro_rules! go {
        ($r:literal, $c:ident) => {
            // SAFETY: C <= n (the tile height falls to 1 on shorter images); forwarded.
            unsafe {
                if n >= $c {
                    line_blocks::<S, K, $c, $r, false>(s, a, &g)
                } else {
                    line_blocks::<S, K, 1, $r, false>(s, a, &g)
                }
            }
        };
    }
    match r {
        1 | 2 => go!(1, C3),
        3 => go!(3, C3),
        4 => go!(4, C4),
        7 => go!(7, C7),
        _ => go!(8, C8),
    }
}

/// The checks of [`Kernels::depthwise_general`], returning the raw arguments of the layer.
pub(crate) fn depthwise_general_args(
    packed: &[f32],
    shape: DepthwiseGeneralShape,
    input: Src<'_>,
    output: Dst<'_>,
    epilogue: Epilogue<'_>,
) -> Result<DwgArgs, Error> {
    let sh = shape;
    check(sh.blocks > 0, "shape.blocks", "must be positive")?;
    check(
        sh.kh > 0 && sh.kw > 0,
        "shape.kh",
        "kernel must be non-empty",
    )?;
    check(
        sh.stride[0] > 0 && sh.stride[1] > 0 && sh.dilation[0] > 0 && sh.dilation[1] > 0,
        "shape.stride",
        "strides and dilations must be positive",
    )?;
    check(
        sh.in_h > 0 && sh.in_w > 0,
        "shape.in_h",
        "input must be non-empty",
    )?;
    let (ext_h, ext_w) = (
        DepthwiseGeneralShape::extent(sh.kh, sh.dilation[0]),
        DepthwiseGeneralShape::extent(sh.kw, sh.dilation[1]),
    );
    let (ph, pw) = (
        sh.in_h
            .saturating_add(sh.pads[0])
            .saturating_add(sh.pads[2]),
        sh.in_w
            .saturating_add(sh.pads[1])
            .saturating_add(sh.pads[3]),
    );
    // Coordinates up to (out - 1)*stride + extent stay below the padded size, so no index
    // arithmetic in the kernel can overflow when the padded size itself does not.
    check(
        ph >= ext_h && pw >= ext_w && ph < usize::MAX / 16 && pw < usize::MAX / 16,
        "shape.in_h",
        "padded input must cover the dilated kernel",
    )?;
    let (oh, ow) = (sh.out_h(), sh.out_w());
    let taps = size(&[sh.kh, sh.kw]);
    check_len(
        "packed",
        packed.len(),
        size(&[sh.blocks, 8, taps.saturating_add(1)]),
    )?;
    let ihw = size(&[sh.in_h, sh.in_w]);
    let ohw = size(&[oh, ow]);
    let v = DwViews::new(sh.blocks, ihw, ohw, input, output, epilogue)?;
    Ok(DwgArgs {
        w: packed.as_ptr(),
        kh: sh.kh,
        kw: sh.kw,
        sy: sh.stride[0],
        sx: sh.stride[1],
        dy: sh.dilation[0],
        dx: sh.dilation[1],
        blocks: sh.blocks,
        x: v.x,
        x_bs: ihw * 8,
        ih: sh.in_h,
        iw: sh.in_w,
        y: v.y,
        y_bs: ohw * 8,
        oh,
        ow,
        pt: sh.pads[0],
        pl: sh.pads[1],
        r: v.r,
        r_bs: ohw * 8,
        sums: v.sums,
        act: v.act,
        oy0: 0,
        oy1: oh,
    })
}

/// Runs the (share of the) layer `a` describes.
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn depthwise_general_exec(k: Kernels, a: &DwgArgs) {
    // The dispatch is sound: the caller's contract (and `Lines::of` holds for the line
    // kernels).
    if let Some((taps, _)) = Lines::of(a) {
        // `1xK`: lines per tile for C = 1, 2, 3, 4, 7, 8; `Kx1`: rows per tile for 8, 7, 4, 3
        // columns. As many as keep the tile, the taps and an input vector in the register file
        // (32 vectors with AVX-512VL, 16 with AVX2; NEON and SIMD128 as AVX2). One line per
        // tile for the 7- and 8-wide rows: three (24 accumulators) spilled them to the stack.
        match (a.kh == 1, taps) {
            (true, 3) => dispatch!(k, run_rows, a, DwgArgs;
                avx512 [3, 3, 3, 3, 3, 1, 1]; avx2 [3, 3, 3, 3, 2, 1, 1];
                neon [3, 3, 3, 3, 2, 1, 1]; scalar [3, 3, 3, 3, 2, 1, 1]),
            (true, _) => dispatch!(k, run_rows, a, DwgArgs;
                avx512 [5, 3, 3, 3, 3, 1, 1]; avx2 [5, 3, 3, 3, 2, 1, 1];
                neon [5, 3, 3, 3, 2, 1, 1]; scalar [5, 3, 3, 3, 2, 1, 1]),
            (false, 3) => dispatch!(k, run_cols, a, DwgArgs;
                avx512 [3, 2, 2, 2, 3]; avx2 [3, 1, 1, 2, 3];
                neon [3, 1, 1, 2, 3]; scalar [3, 1, 1, 2, 3]),
            (false, _) => dispatch!(k, run_cols, a, DwgArgs;
                avx512 [5, 2, 2, 2, 3]; avx2 [5, 1, 1, 2, 3];
                neon [5, 1, 1, 2, 3]; scalar [5, 1, 1, 2, 3]),
        }
        return;
    }
    match a.sx {
        1 => dispatch!(k, run, a, DwgArgs;
            avx512 [1, 8, 4, 2, 4, 2, 1]; avx2 [1, 8, 4, 2, 4, 2, 1];
            neon [1, 8, 4, 2, 4, 2, 1]; scalar [1, 4, 2, 1, 2, 1, 1]),
        2 => dispatch!(k, run, a, DwgArgs;
            avx512 [2, 8, 4, 2, 4, 2, 1]; avx2 [2, 8, 4, 2, 4, 2, 1];
            neon [2, 8, 4, 2, 4, 2, 1]; scalar [2, 4, 2, 1, 2, 1, 1]),
        _ => dispatch!(k, run, a, DwgArgs;
            avx512 [0, 1, 1, 1, 1, 1, 1]; avx2 [0, 1, 1, 1, 1, 1, 1];
            neon [0, 1, 1, 1, 1, 1, 1]; scalar [0, 1, 1, 1, 1, 1, 1]),
    }
}

/// Either kernel for one checked layer: the 3x3/5x5 register kernel when the shape allows it,
/// else the general one.
pub(crate) enum DwAny {
    /// Square 3x3/5x5, stride 1 or 2, no dilation.
    Square(crate::kernels::depthwise::DwArgs),
    /// Anything else.
    General(DwgArgs),
}

/// Checks a layer once and picks its kernel for `isa`: the 3x3/5x5 register kernel where it
/// applies, except 5x5 on AVX2, where the general kernel measured faster (ghost-bench, Zen 3,
/// 1 thread: 5x5 s1 c80 @28 62 % vs 39 % of peak, s2 c80 @56 48 % vs 34 %, s2 c672 @14
/// 35 % vs 33 %).
pub(crate) fn depthwise_any_args(
    isa: Isa,
    packed: &[f32],
    shape: DepthwiseGeneralShape,
    input: Src<'_>,
    output: Dst<'_>,
    epilogue: Epilogue<'_>,
) -> Result<DwAny, Error> {
    let square = shape
        .as_square()
        .filter(|sq| !(isa == Isa::Avx2 && sq.k == 5));
    match square {
        Some(sq) => depthwise_args(packed, sq, input, output, epilogue).map(DwAny::Square),
        None => depthwise_general_args(packed, shape, input, output, epilogue).map(DwAny::General),
    }
}

impl DwAny {
    /// Output rows and channel blocks of the layer, and whether it accumulates channel sums.
    pub(crate) fn extent(&self) -> (usize, usize, bool) {
        match self {
            DwAny::Square(a) => (a.oh, a.blocks, !a.sums.is_null()),
            DwAny::General(a) => (a.oh, a.blocks, !a.sums.is_null()),
        }
    }

    /// Multiply-adds of the layer (nominal: every tap of every output).
    pub(crate) fn macs(&self) -> [usize; 6] {
        match self {
            DwAny::Square(a) => [a.oh, a.ow, a.blocks, 8, a.k, a.k],
            DwAny::General(a) => [a.oh, a.ow, a.blocks, 8, a.kh, a.kw],
        }
    }

    /// Share: blocks `b0 .. b1`, output rows `oy0 .. oy1` (rows only without sums).
    pub(crate) fn share(&self, b0: usize, b1: usize, oy0: usize, oy1: usize) -> DwAny {
        match self {
            DwAny::Square(a) => DwAny::Square(a.blocks(b0, b1).rows(oy0, oy1)),
            DwAny::General(a) => DwAny::General(a.blocks(b0, b1).rows(oy0, oy1)),
        }
    }

    /// Runs it.
    ///
    /// # Safety
    /// As [`depthwise_general_exec`] / [`depthwise_exec`].
    pub(crate) unsafe fn exec(&self, k: Kernels) {
        match self {
            // SAFETY: forwarded contract.
            DwAny::Square(a) => unsafe { depthwise_exec(k, a) },
            // SAFETY: forwarded contract.
            DwAny::General(a) => unsafe { depthwise_general_exec(k, a) },
        }
    }
}

impl Kernels {
    /// Depthwise convolution of any kernel shape, stride, dilation and padding on one NCHW8c
    /// image: reads blocks `[input.block_offset, +blocks)` of an `in_h x in_w` tensor, writes
    /// blocks `[output.block_offset, +blocks)` of an `out_h x out_w` tensor. `packed` comes
    /// from [`pack_depthwise_general`]. Square 3x3/5x5 layers with stride 1 or 2 and no
    /// dilation run the register-resident kernel of [`Kernels::depthwise`] (except 5x5 on
    /// AVX2, see `depthwise_any_args`). Epilogue as in
    /// [`Kernels::pointwise`].
    pub fn depthwise_general(
        self,
        packed: &[f32],
        shape: DepthwiseGeneralShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = depthwise_any_args(self.isa(), packed, shape, input, output, epilogue)?;
        // SAFETY: every extent checked; `output` is a unique borrow.
        unsafe { a.exec(self) };
        Ok(())
    }

    /// [`Kernels::depthwise_general`] always on the general kernel (never the 3x3/5x5 one):
    /// for benchmarks and tests comparing the two.
    pub fn depthwise_general_only(
        self,
        packed: &[f32],
        shape: DepthwiseGeneralShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = depthwise_general_args(packed, shape, input, output, epilogue)?;
        // SAFETY: every extent checked; `output` is a unique borrow.
        unsafe { depthwise_general_exec(self, &a) };
        Ok(())
    }
}
