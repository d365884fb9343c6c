//! Grouped (and dense) convolution on NCHW8c input, register-tiled: RegNet/ResNeXt-style 3x3
//! convs with 8..64 channels per group, and any `kh x kw`, stride, dilation and padding.
//!
//! Algorithm: every output block reads one contiguous range of `span` input blocks (the
//! groups of its 8 output lanes, rounded out to whole input blocks; for a dense conv, all of
//! them). Its packed weights hold, per input block of that range, tap and input lane, the 8
//! output lanes' weights (zero where an input channel is outside a lane's group), so the inner
//! loop is the dense direct convolution: a tile of `C` output pixels of one row times `NB`
//! output blocks keeps `C x NB` accumulators; per (input block, `ky`, `kx`, input lane) it loads
//! `NB` weight vectors and broadcasts `C` input scalars (`NB + C` loads for `NB x C` FMAs).
//! `NB` blocks share a tile only when they read the same input range (a dense conv, or a group
//! of 16+ channels); 8-channel groups run `NB = 1` with a wider tile. With AVX-512, a conv
//! whose blocks all read the same inputs (a dense one) takes the wide path instead: two blocks
//! per zmm accumulator (`tile_wide`), 8 columns of 4 blocks in 16 zmm, so each broadcast
//! input feeds two 16-lane multiply-adds (ghost-bench: dense 3x3 from 41-51 to 56-85 % of peak
//! on 64..512 channels; same bits as the narrow tiles).
//!
//! Rows: the kernel rows whose input row is outside the image are skipped (top and bottom
//! borders cost nothing). Columns: the row is cut into tiles of a fixed width (the first of
//! two widths that divides the output width; else, on the narrow path, an exact mix of three
//! widths, such as 4 + 3 for a 7-wide map; else the wider one that fits, the last tile
//! overlapping its predecessor and storing only its new columns; else single columns).
//! In a tile containing a column whose taps leave the image, the narrow path points those
//! (column, `kx`) pairs at a block of zeros (the padding, multiplied like any input), the wide
//! path tests each pair. Every output value adds its taps in the same order (bias, input
//! block, `ky`, `kx`, input lane) whichever tile computes it, and a column's border taps
//! depend on its position alone, so any split by rows or blocks gives identical bits.
//!
//! Packed format (`grouped_packed_len`): per output block `[bias: 8][span][kh][kw][8 in][8 out]`.
//!
//! Deliberately not done here: Winograd (`winograd.rs` takes the dense 3x3 stride-1 convs of
//! 16+ channels in, 32+ out, when ghostc plans; the grouped layers here are small per group),
//! two-row tiles for images narrower than a tile, and non-dense output layouts for
//! `groups > 1` (the planner only needs dense ones; `groups == 1` takes any lane order).

use crate::arch::{ActV, Simd, Wide};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::conv_views;
use crate::kernels::tiles::{walk_row, ZEROS};
use crate::{Dst, Epilogue, Src};
use core::ptr;

/// Shape of a grouped convolution over one NCHW8c image for [`Kernels::conv_grouped`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupedConvShape {
    /// Input channels (logical; the input has `ceil(cin / 8)` blocks).
    pub cin: usize,
    /// Output channels (logical).
    pub cout: usize,
    /// Groups; must divide `cin` and `cout`.
    pub groups: usize,
    /// Output blocks written (`>= ceil(cout / 8)`; output lane `o` belongs to group
    /// `min(o / (cout / groups), groups - 1)`).
    pub out_blocks: usize,
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
    /// Padding: top, left, bottom, right.
    pub pads: [usize; 4],
}

impl GroupedConvShape {
    fn extent(k: usize, d: usize) -> usize {
        size(&[d, k.saturating_sub(1)]).saturating_add(1)
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
    /// Input channel blocks.
    pub fn in_blocks(&self) -> usize {
        self.cin.div_ceil(8)
    }
    /// Group of output lane `o`.
    fn group_of(&self, o: usize) -> usize {
        let cog = (self.cout / self.groups.max(1)).max(1);
        (o / cog).min(self.groups.max(1) - 1)
    }
    /// Input blocks `b0 .. b1` output block `ob` needs.
    fn needed(&self, ob: usize) -> (usize, usize) {
        let cig = self.cin / self.groups.max(1);
        let (g0, g1) = (self.group_of(ob * 8), self.group_of(ob * 8 + 7));
        ((g0 * cig) / 8, ((g1 + 1) * cig).div_ceil(8))
    }
    /// Input blocks every output block reads (the widest range any of them needs).
    pub fn span(&self) -> usize {
        (0..self.out_blocks)
            .map(|ob| {
                let (b0, b1) = self.needed(ob);
                b1 - b0
            })
            .max()
            .unwrap_or(0)
    }
    /// First input block output block `ob` reads (its range is `span` blocks from there).
    pub fn first_block(&self, ob: usize, span: usize) -> usize {
        self.needed(ob).0.min(self.in_blocks().saturating_sub(span))
    }
    fn validate(&self) -> Result<(), Error> {
        check(
            self.groups > 0
                && self.cin > 0
                && self.cout > 0
                && self.cin.is_multiple_of(self.groups)
                && self.cout.is_multiple_of(self.groups),
            "shape.groups",
            "must be positive and divide cin and cout",
        )?;
        check(
            self.out_blocks >= self.cout.div_ceil(8),
            "shape.out_blocks",
            "must hold cout channels",
        )?;
        check(
            self.kh > 0 && self.kw > 0,
            "shape.kh",
            "kernel must be non-empty",
        )?;
        check(
            self.stride[0] > 0
                && self.stride[1] > 0
                && self.dilation[0] > 0
                && self.dilation[1] > 0,
            "shape.stride",
            "strides and dilations must be positive",
        )?;
        check(
            self.in_h > 0 && self.in_w > 0,
            "shape.in_h",
            "input must be non-empty",
        )?;
        check(
            self.in_h
                .saturating_add(self.pads[0])
                .saturating_add(self.pads[2])
                >= Self::extent(self.kh, self.dilation[0])
                && self
                    .in_w
                    .saturating_add(self.pads[1])
                    .saturating_add(self.pads[3])
                    >= Self::extent(self.kw, self.dilation[1]),
            "shape.pads",
            "padded input smaller than the kernel",
        )
    }
}

/// Number of `f32` of a packed grouped convolution weight.
pub fn grouped_packed_len(shape: &GroupedConvShape) -> usize {
    size(&[
        shape.out_blocks,
        size(&[shape.span(), shape.kh, shape.kw, 64]).saturating_add(8),
    ])
}

/// Packs ONNX-layout weights `[out_blocks * 8][cin / groups][kh][kw]` (row `o` is output lane
/// `o`: rows past `cout`, and for `groups == 1` any lane order the caller chose, are taken
/// as given) and `bias[out_blocks * 8]` for [`Kernels::conv_grouped`].
pub fn pack_conv_grouped(
    weights: &[f32],
    bias: &[f32],
    shape: &GroupedConvShape,
    packed: &mut [f32],
) -> Result<(), Error> {
    shape.validate()?;
    let sh = shape;
    let lanes = sh.out_blocks * 8;
    let cig = sh.cin / sh.groups;
    let taps = sh.kh * sh.kw;
    check_len("weights", weights.len(), size(&[lanes, cig, taps]))?;
    check_len("bias", bias.len(), lanes)?;
    check_len("packed", packed.len(), grouped_packed_len(sh))?;
    let span = sh.span();
    let per_block = span * taps * 64 + 8;
    packed.fill(0.0);
    for ob in 0..sh.out_blocks {
        let base = ob * per_block;
        let first = sh.first_block(ob, span);
        for l in 0..8 {
            let o = ob * 8 + l;
            packed[base + l] = bias[o];
            let g = sh.group_of(o);
            for j in 0..span {
                for li in 0..8 {
                    let c = (first + j) * 8 + li;
                    if c < g * cig || c >= (g + 1) * cig {
                        continue;
                    }
                    for t in 0..taps {
                        packed[base + 8 + ((j * taps + t) * 8 + li) * 8 + l] =
                            weights[(o * cig + c - g * cig) * taps + t];
                    }
                }
            }
        }
    }
    Ok(())
}

/// Raw arguments of a checked grouped conv (or a share of one).
#[derive(Clone, Copy)]
pub(crate) struct GcArgs {
    w: *const f32,
    sh: GroupedConvShape,
    span: usize,
    oh: usize,
    ow: usize,
    x: *const f32,
    y: *mut f32,
    r: *const f32,
    sums: *mut f32,
    act: crate::Activation,
    ob0: usize,
    ob1: usize,
    oy0: usize,
    oy1: usize,
}

impl GcArgs {
    /// Output rows, output blocks, whether it accumulates channel sums.
    pub(crate) fn extent(&self) -> (usize, usize, bool) {
        (self.oh, self.sh.out_blocks, !self.sums.is_null())
    }
    /// Factors of the multiply-adds (padded lanes included).
    pub(crate) fn macs(&self) -> [usize; 6] {
        [
            self.oh,
            self.ow,
            self.sh.out_blocks,
            64,
            self.span,
            self.sh.kh * self.sh.kw,
        ]
    }
    /// Output blocks `b0 .. b1`, rows `oy0 .. oy1`.
    pub(crate) fn share(&self, b0: usize, b1: usize, oy0: usize, oy1: usize) -> GcArgs {
        GcArgs {
            ob0: b0,
            ob1: b1,
            oy0,
            oy1,
            ..*self
        }
    }
    fn per_block(&self) -> usize {
        self.span * self.sh.kh * self.sh.kw * 64 + 8
    }
}

/// One tile: `C` output columns from `ox` (storing those from `ox + skip`), `NB` output blocks
/// from `ob` reading input blocks from `first`, output row `oy` with kernel rows `ky0 .. ky1`
/// inside the image.
#[derive(Clone, Copy)]
struct Tile {
    ob: usize,
    first: usize,
    oy: usize,
    ox: usize,
    skip: usize,
    ky0: usize,
    ky1: usize,
}

/// # Safety
/// `a` checked by [`grouped_args`]; the tile inside the output; `BORDER` unless every tap
/// column of the tile is inside the image.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::needless_range_loop)]
unsafe fn tile<S: Simd, const C: usize, const NB: usize, const BORDER: bool>(
    s: S,
    a: &GcArgs,
    act: &ActV<S::V>,
    t: Tile,
    sum: &mut [S::V; NB],
) {
    let sh = &a.sh;
    let pb = a.per_block();
    let first = t.first;
    let ihw8 = sh.in_h * sh.in_w * 8;
    let mut acc = [[s.zero(); NB]; C];
    let mut wb = [ptr::null::<f32>(); NB];
    for j in 0..NB {
        wb[j] = a.w.wrapping_add((t.ob + j) * pb);
        // SAFETY: bias of a real block.
        let b = unsafe { s.load(wb[j]) };
        for c in 0..C {
            acc[c][j] = b;
        }
    }
    let (sw, dw) = (sh.stride[1], sh.dilation[1]);
    for jb in 0..a.span {
        let xb = a.x.wrapping_add((first + jb) * ihw8);
        for ky in t.ky0..t.ky1 {
            let iy = oy_in(sh, t.oy, ky);
            let row = xb.wrapping_add(iy * sh.in_w * 8);
            for kx in 0..sh.kw {
                let woff = 8 + ((jb * sh.kh + ky) * sh.kw + kx) * 64;
                // Input column of tile column 0 (may be negative in border tiles).
                let ix0 = (t.ox * sw + kx * dw) as isize - sh.pads[1] as isize;
                let xr = row.wrapping_offset(ix0 * 8);
                // Whether some column of this tap column is outside the image (only border
                // tiles test; most of their `kx` still take the unchecked loop).
                let last = ix0 + ((C - 1) * sw) as isize;
                if BORDER && (ix0 < 0 || last >= sh.in_w as isize) {
                    // The columns whose tap leaves the image read a block of zeros instead
                    // (the padding ONNX defines), so the lane loop stays the unrolled,
                    // branch-free one: with a test per column it compiled to a branchy lane
                    // loop, and on 7x7 maps every tile is a border tile (that and the
                    // overlapping tiles `exact_split` removes together held 512->512 @7 at
                    // 40 % of peak; their shares were not measured apart).
                    let mut xs = [ZEROS.0.as_ptr(); C];
                    for c in 0..C {
                        let ix = ix0 + (c * sw) as isize;
                        if ix >= 0 && (ix as usize) < sh.in_w {
                            xs[c] = xr.wrapping_add(c * sw * 8);
                        }
                    }
                    for li in 0..8 {
                        // SAFETY: each `xs[c]` is an input pixel inside the image, or the
                        // zero block; lane `li < 8`. Weights as below.
                        unsafe { taps_at::<S, C, NB>(s, &mut acc, &wb, woff + li * 8, &xs, li) };
                    }
                } else {
                    for li in 0..8 {
                        // SAFETY: every column inside the image, row inside (ky range), block
                        // inside the input; tap inside the packed weights.
                        unsafe { taps::<S, C, NB>(s, &mut acc, &wb, woff + li * 8, xr, li, sw) };
                    }
                }
            }
        }
    }
    let ohw8 = a.oh * a.ow * 8;
    for c in t.skip..C {
        let p = (t.oy * a.ow + t.ox + c) * 8;
        for j in 0..NB {
            let off = (t.ob + j) * ohw8 + p;
            let mut v = act.apply(s, acc[c][j]);
            // SAFETY: block and pixel inside the output (and residual) checked by
            // `grouped_args`.
            unsafe {
                if !a.r.is_null() {
                    v = s.add(v, s.load(a.r.add(off)));
                }
                s.store(a.y.add(off), v);
            }
            sum[j] = s.add(sum[j], v);
        }
    }
}

/// [`tile`] for `2 * NP` output blocks, two per [`Wide::P`] register (a zmm with AVX-512,
/// where the multiply-adds then run 16 lanes wide): the same multiply-adds in the same order
/// per output value, so the same bits. `sum` has one vector per block.
///
/// # Safety
/// As [`tile`]; `sum.len() == 2 * NP`.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::needless_range_loop)]
unsafe fn tile_wide<S: Wide, const C: usize, const NP: usize, const BORDER: bool>(
    s: S,
    a: &GcArgs,
    act: &ActV<S::V>,
    t: Tile,
    sum: &mut [S::V],
) {
    let sh = &a.sh;
    let pb = a.per_block();
    let ihw8 = sh.in_h * sh.in_w * 8;
    let mut acc = [[s.pzero(); NP]; C];
    let mut wb = [[ptr::null::<f32>(); 2]; NP];
    for (q, pair) in wb.iter_mut().enumerate() {
        *pair = [0, 1].map(|h| a.w.wrapping_add((t.ob + 2 * q + h) * pb));
    }
    for q in 0..NP {
        // SAFETY: biases of two real blocks.
        let b = unsafe { s.pload2(wb[q][0], wb[q][1]) };
        for c in 0..C {
            acc[c][q] = b;
        }
    }
    let (sw, dw) = (sh.stride[1], sh.dilation[1]);
    for jb in 0..a.span {
        let xb = a.x.wrapping_add((t.first + jb) * ihw8);
        for ky in t.ky0..t.ky1 {
            let row = xb.wrapping_add(oy_in(sh, t.oy, ky) * sh.in_w * 8);
            for kx in 0..sh.kw {
                let woff = 8 + ((jb * sh.kh + ky) * sh.kw + kx) * 64;
                let ix0 = (t.ox * sw + kx * dw) as isize - sh.pads[1] as isize;
                let xr = row.wrapping_offset(ix0 * 8);
                let last = ix0 + ((C - 1) * sw) as isize;
                // Only the tap columns that leave the image take the checked loop (as in
                // `tile`): with a test per column and lane in every tap of a border tile, a
                // 256->256 @14 conv (every 8-column tile touches a border) ran at 32 % of peak
                // in a generated crate, 61 % with this split.
                if BORDER && (ix0 < 0 || last >= sh.in_w as isize) {
                    let mut ok = [true; C];
                    for c in 0..C {
                        let ix = ix0 + (c * sw) as isize;
                        ok[c] = ix >= 0 && (ix as usize) < sh.in_w;
                    }
                    // SAFETY: as below, for the columns `ok` admits.
                    unsafe { taps_wide::<S, C, NP, true>(s, &mut acc, &wb, woff, xr, sw, &ok) };
                } else {
                    // SAFETY: every column inside the image, row inside (ky range), block
                    // inside the input; taps inside both blocks' packed weights.
                    unsafe {
                        taps_wide::<S, C, NP, false>(s, &mut acc, &wb, woff, xr, sw, &[true; C])
                    };
                }
            }
        }
    }
    let ohw8 = a.oh * a.ow * 8;
    for c in t.skip..C {
        let p = (t.oy * a.ow + t.ox + c) * 8;
        for q in 0..NP {
            for (h, v) in s.halves(acc[c][q]).into_iter().enumerate() {
                let j = 2 * q + h;
                let off = (t.ob + j) * ohw8 + p;
                let mut v = act.apply(s, v);
                // SAFETY: block and pixel inside the output (and residual) checked by
                // `grouped_args`.
                unsafe {
                    if !a.r.is_null() {
                        v = s.add(v, s.load(a.r.add(off)));
                    }
                    s.store(a.y.add(off), v);
                }
                sum[j] = s.add(sum[j], v);
            }
        }
    }
}

/// The 8 input lanes of one tap for [`tile_wide`]: per lane, `NP` pairs of weight rows at
/// `woff` times `C` broadcast inputs.
///
/// # Safety
/// Weights at `wb[q][h] + woff .. + 64` readable; input `xr + c * sw * 8 + li` readable for
/// every column `c` with `ok[c]` (all columns unless `CHECK`) and lane `li < 8`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn taps_wide<S: Wide, const C: usize, const NP: usize, const CHECK: bool>(
    s: S,
    acc: &mut [[S::P; NP]; C],
    wb: &[[*const f32; 2]; NP],
    woff: usize,
    xr: *const f32,
    sw: usize,
    ok: &[bool; C],
) {
    for li in 0..8 {
        let mut wv = [s.pzero(); NP];
        for q in 0..NP {
            let o = woff + li * 8;
            // SAFETY: caller's contract.
            wv[q] = unsafe { s.pload2(wb[q][0].add(o), wb[q][1].add(o)) };
        }
        for c in 0..C {
            if CHECK && !ok[c] {
                continue;
            }
            // SAFETY: caller's contract.
            let xv = unsafe { s.pbcast(xr.wrapping_add(c * sw * 8 + li)) };
            for q in 0..NP {
                acc[c][q] = s.pfma(xv, wv[q], acc[c][q]);
            }
        }
    }
}

/// One (tap, input lane): `NB` weight vectors at `woff` times `C` broadcast inputs.
///
/// # Safety
/// Weights at `wb[j] + woff` readable; input `xr + c * sw * 8 + li` readable for every column
/// `c`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn taps<S: Simd, const C: usize, const NB: usize>(
    s: S,
    acc: &mut [[S::V; NB]; C],
    wb: &[*const f32; NB],
    woff: usize,
    xr: *const f32,
    li: usize,
    sw: usize,
) {
    let mut wv = [s.zero(); NB];
    for j in 0..NB {
        // SAFETY: caller's contract.
        wv[j] = unsafe { s.load(wb[j].add(woff)) };
    }
    for c in 0..C {
        // SAFETY: caller's contract.
        let xv = unsafe { s.bcast(xr.wrapping_add(c * sw * 8 + li)) };
        for j in 0..NB {
            acc[c][j] = s.fma(xv, wv[j], acc[c][j]);
        }
    }
}

/// [`taps`] with one input pointer per column (a pixel, or [`ZEROS`] for a tap outside the
/// image).
///
/// # Safety
/// Weights at `wb[j] + woff` readable; `xs[c] + li` readable for every column.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn taps_at<S: Simd, const C: usize, const NB: usize>(
    s: S,
    acc: &mut [[S::V; NB]; C],
    wb: &[*const f32; NB],
    woff: usize,
    xs: &[*const f32; C],
    li: usize,
) {
    let mut wv = [s.zero(); NB];
    for j in 0..NB {
        // SAFETY: caller's contract.
        wv[j] = unsafe { s.load(wb[j].add(woff)) };
    }
    for c in 0..C {
        // SAFETY: caller's contract.
        let xv = unsafe { s.bcast(xs[c].add(li)) };
        for j in 0..NB {
            acc[c][j] = s.fma(xv, wv[j], acc[c][j]);
        }
    }
}

/// Input row of output row `oy`, kernel row `ky` (only called for rows inside the image).
#[inline(always)]
fn oy_in(sh: &GroupedConvShape, oy: usize, ky: usize) -> usize {
    oy * sh.stride[0] + ky * sh.dilation[0] - sh.pads[0]
}

/// Kernel rows `ky0 .. ky1` of output row `oy` whose input row is inside the image.
fn ky_range(sh: &GroupedConvShape, oy: usize) -> (usize, usize) {
    let inside = |ky: usize| {
        let iy = oy * sh.stride[0] + ky * sh.dilation[0];
        iy >= sh.pads[0] && iy - sh.pads[0] < sh.in_h
    };
    let ky0 = (0..sh.kh).find(|&ky| inside(ky)).unwrap_or(sh.kh);
    let ky1 = (ky0..sh.kh).find(|&ky| !inside(ky)).unwrap_or(sh.kh);
    (ky0, ky1)
}

/// Output columns `lo .. hi` have every tap column inside the image.
fn interior_cols(sh: &GroupedConvShape, ow: usize) -> (usize, usize) {
    let (sw, pl) = (sh.stride[1], sh.pads[1]);
    let lo = pl.div_ceil(sw).min(ow);
    let ext = GroupedConvShape::extent(sh.kw, sh.dilation[1]);
    let hi = if sh.in_w + pl >= ext {
        ((sh.in_w + pl - ext) / sw + 1).min(ow)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// Tile width for a row of `ow` columns given the two widths `wa > wb`: the first that
/// divides `ow`, else the widest that fits (overlapping last tile), else 1.
fn width(ow: usize, wa: usize, wb: usize) -> usize {
    if ow.is_multiple_of(wa) {
        wa
    } else if ow.is_multiple_of(wb) {
        wb
    } else if ow >= wa {
        wa
    } else if ow >= wb {
        wb
    } else {
        1
    }
}

/// The tile `t` (width `C`, columns from `t.ox`), with the interior variant when all of its
/// columns are interior (`cols`, the [`interior_cols`]).
///
/// # Safety
/// As [`tile`]; `NP > 0` only with `NB == 2 * NP`.
#[inline(always)]
unsafe fn one_tile<S: Wide, const C: usize, const NB: usize, const NP: usize>(
    s: S,
    a: &GcArgs,
    act: &ActV<S::V>,
    t: Tile,
    cols: (usize, usize),
    sum: &mut [S::V; NB],
) {
    let interior = t.ox >= cols.0 && t.ox + C <= cols.1;
    // SAFETY: forwarded.
    unsafe {
        match (NP > 0, interior) {
            (true, true) => tile_wide::<S, C, NP, false>(s, a, act, t, sum),
            (true, false) => tile_wide::<S, C, NP, true>(s, a, act, t, sum),
            (false, true) => tile::<S, C, NB, false>(s, a, act, t, sum),
            (false, false) => tile::<S, C, NB, true>(s, a, act, t, sum),
        }
    }
}

/// One output row of `NB` blocks in tiles of width `C` (`NP > 0`: `NB = 2 * NP` blocks in
/// wide registers), the last one overlapping its predecessor; `t` carries the row's block,
/// input block and kernel rows, `cols` the [`interior_cols`].
///
/// # Safety
/// As [`tile`]; `C == 1` or `C <= ow` (and `ow >= 1`), so [`walk_row!`] gives `m == C`.
#[inline(always)]
unsafe fn row<S: Wide, const C: usize, const NB: usize, const NP: usize>(
    s: S,
    a: &GcArgs,
    act: &ActV<S::V>,
    t: Tile,
    cols: (usize, usize),
    sum: &mut [S::V; NB],
) {
    walk_row!(a.ow, C, |start, _m, skip| {
        let t = Tile {
            ox: start,
            skip,
            ..t
        };
        // SAFETY: forwarded; the tile's columns are inside the output.
        unsafe { one_tile::<S, C, NB, NP>(s, a, act, t, cols, sum) };
    });
}

/// `n` tiles of width `C` side by side from column `ox`, each storing all of its columns.
///
/// # Safety
/// As [`tile`]; `ox + n * C <= ow`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn run_of<S: Wide, const C: usize, const NB: usize, const NP: usize>(
    s: S,
    a: &GcArgs,
    act: &ActV<S::V>,
    t: Tile,
    cols: (usize, usize),
    ox: usize,
    n: usize,
    sum: &mut [S::V; NB],
) {
    for i in 0..n {
        let t = Tile {
            ox: ox + i * C,
            skip: 0,
            ..t
        };
        // SAFETY: forwarded; the tile's columns are inside the output.
        unsafe { one_tile::<S, C, NB, NP>(s, a, act, t, cols, sum) };
    }
}

/// Splits a row of `ow` columns exactly into `[na, nb, nc]` tiles of widths `ca > cb > cc`
/// (the fewest tiles), for widths neither `ca` nor `cb` divides; `None` when `cc == 0`, when
/// one of them divides `ow` ([`width`] then tiles it without overlap), or when no split
/// exists. An overlapping last tile recomputes up to `ca - 1` columns: on a 7-wide map with
/// 6-column tiles, 5 of 12 (the 3x3 512->512 conv of ResNet's last stage ran at 40 % of peak
/// that way).
fn exact_split(ow: usize, ca: usize, cb: usize, cc: usize) -> Option<[usize; 3]> {
    if cc == 0 || ow.is_multiple_of(ca) || ow.is_multiple_of(cb) {
        return None;
    }
    let mut best: Option<[usize; 3]> = None;
    for nc in 0..ca {
        for nb in 0..ca {
            let used = nb * cb + nc * cc;
            if used > ow || !(ow - used).is_multiple_of(ca) {
                continue;
            }
            let cand = [(ow - used) / ca, nb, nc];
            if best.is_none_or(|b| cand.iter().sum::<usize>() < b.iter().sum()) {
                best = Some(cand);
            }
        }
    }
    best
}

/// `NB` blocks from `ob` (all reading the same input range, from block `first`) over the
/// share's rows in tiles of widths `CA`, `CB` and `CC` ([`exact_split`]; `CC == 0`: no third
/// width); `cols` the [`interior_cols`].
///
/// # Safety
/// As [`tile`].
#[inline(always)]
unsafe fn blocks<
    S: Wide,
    const CA: usize,
    const CB: usize,
    const CC: usize,
    const NB: usize,
    const NP: usize,
>(
    s: S,
    a: &GcArgs,
    act: &ActV<S::V>,
    ob: usize,
    first: usize,
    cols: (usize, usize),
) {
    let mut sum = [s.zero(); NB];
    let w = width(a.ow, CA, CB);
    let split = exact_split(a.ow, CA, CB, CC);
    for oy in a.oy0..a.oy1 {
        let (ky0, ky1) = ky_range(&a.sh, oy);
        let t = Tile {
            ob,
            first,
            oy,
            ox: 0,
            skip: 0,
            ky0,
            ky1,
        };
        // SAFETY: forwarded; each width is used only when it fits the row, and the split's
        // tiles cover exactly `ow` columns.
        unsafe {
            if let Some([na, nb, nc]) = split {
                let (xb, xc) = (na * CA, na * CA + nb * CB);
                run_of::<S, CA, NB, NP>(s, a, act, t, cols, 0, na, &mut sum);
                run_of::<S, CB, NB, NP>(s, a, act, t, cols, xb, nb, &mut sum);
                run_of::<S, CC, NB, NP>(s, a, act, t, cols, xc, nc, &mut sum);
            } else if w == CA {
                row::<S, CA, NB, NP>(s, a, act, t, cols, &mut sum);
            } else if w == CB {
                row::<S, CB, NB, NP>(s, a, act, t, cols, &mut sum);
            } else {
                row::<S, 1, NB, NP>(s, a, act, t, cols, &mut sum);
            }
        }
    }
    if !a.sums.is_null() {
        for (j, v) in sum.iter().enumerate() {
            // SAFETY: sums has out_blocks * 8 floats.
            unsafe {
                let q = a.sums.add((ob + j) * 8);
                s.store(q, s.add(s.load(q), *v));
            }
        }
    }
}

/// The narrow path: `NB` blocks per tile in `S::V` registers where blocks share their inputs,
/// else one (8-channel groups).
///
/// # Safety
/// `a` from [`grouped_args`] (possibly shared out) with its borrows alive.
#[inline(always)]
unsafe fn run<
    S: Wide,
    const C1A: usize,
    const C1B: usize,
    const CNA: usize,
    const CNB: usize,
    const CNC: usize,
    const NB: usize,
>(
    s: S,
    a: &GcArgs,
) {
    let act = ActV::new(s, a.act);
    let cols = interior_cols(&a.sh, a.ow);
    let mut ob = a.ob0;
    while ob < a.ob1 {
        let first = a.sh.first_block(ob, a.span);
        let same = ob + NB <= a.ob1 && (1..NB).all(|j| a.sh.first_block(ob + j, a.span) == first);
        // SAFETY: forwarded; blocks ob .. ob + NB (or ob) inside the share.
        unsafe {
            if NB > 1 && same {
                blocks::<S, CNA, CNB, CNC, NB, 0>(s, a, &act, ob, first, cols);
                ob += NB;
            } else {
                blocks::<S, C1A, C1B, 0, 1, 0>(s, a, &act, ob, first, cols);
                ob += 1;
            }
        }
    }
}

/// The wide path for convs whose output blocks all read the same inputs (dense ones): `NB = 2
/// * NP` blocks per tile in `NP` [`Wide::P`] registers per column, then a pair, then one.
/// Dispatched on its own (not a branch of [`run`]): in one function with the narrow path, the
/// compiler's code for the 8-channel-group tiles ran 21-59 % slower (ghost-bench `gconv`).
///
/// # Safety
/// As [`run`].
#[inline(always)]
unsafe fn run_wide<
    S: Wide,
    const CA: usize,
    const CB: usize,
    const NB: usize,
    const NP: usize,
    const C1A: usize,
    const C1B: usize,
>(
    s: S,
    a: &GcArgs,
) {
    debug_assert_eq!(NB, 2 * NP);
    let act = ActV::new(s, a.act);
    let cols = interior_cols(&a.sh, a.ow);
    let first = a.sh.first_block(a.ob0, a.span);
    let mut ob = a.ob0;
    // The blocks of each call are inside the share, all reading from `first` (`grouped_exec`
    // checked that every block does).
    while ob + NB <= a.ob1 {
        // SAFETY: forwarded; see above.
        unsafe { blocks::<S, CA, CB, 0, NB, NP>(s, a, &act, ob, first, cols) };
        ob += NB;
    }
    while ob + 2 <= a.ob1 {
        // SAFETY: forwarded; see above.
        unsafe { blocks::<S, C1A, C1B, 0, 2, 1>(s, a, &act, ob, first, cols) };
        ob += 2;
    }
    if ob < a.ob1 {
        // SAFETY: forwarded; see above.
        unsafe { blocks::<S, C1A, C1B, 0, 1, 0>(s, a, &act, ob, first, cols) };
    }
}

/// The checks of [`Kernels::conv_grouped`], returning the raw arguments of the whole layer.
pub(crate) fn grouped_args(
    packed: &[f32],
    shape: GroupedConvShape,
    input: Src<'_>,
    mut output: Dst<'_>,
    epilogue: Epilogue<'_>,
) -> Result<GcArgs, Error> {
    let sh = shape;
    sh.validate()?;
    check_len("packed", packed.len(), grouped_packed_len(&sh))?;
    let (oh, ow) = (sh.out_h(), sh.out_w());
    let ohw = size(&[oh, ow]);
    let act = epilogue.activation;
    let v = conv_views(
        &input,
        &mut output,
        epilogue,
        (sh.in_blocks(), size(&[sh.in_h, sh.in_w])),
        (sh.out_blocks, ohw),
    )?;
    Ok(GcArgs {
        w: packed.as_ptr(),
        sh,
        span: sh.span(),
        oh,
        ow,
        x: v.x,
        y: v.y,
        r: v.r,
        sums: v.sums,
        act,
        ob0: 0,
        ob1: sh.out_blocks,
        oy0: 0,
        oy1: oh,
    })
}

/// Runs the (share of the) layer `a` describes.
///
/// # Safety
/// `a` comes from [`grouped_args`] (possibly restricted by [`GcArgs::share`]) and the borrows
/// it was made from are still alive.
pub(crate) unsafe fn grouped_exec(k: Kernels, a: &GcArgs) {
    // Widths: one block (8-channel groups) takes wide tiles; NB blocks share narrower ones,
    // within the register file: with AVX-512, 8 (or 4) columns of 4 blocks in 16 (8) zmm
    // accumulators (two blocks each, see `tile_wide`), a last pair in 14 (7) columns; with
    // AVX2, NEON and SIMD128, 6 columns of 2 blocks in 12 of 16 registers. (7 columns of 4
    // blocks for the 7-, 14- and 28-wide maps measured slower: 128->128 @28 82 -> 68 % of
    // peak, 512->512 @7 67 -> 63 %, ghost-bench alternating both builds three times on one
    // core while the other was busy.) AVX2 and NEON tile a row whose width neither 6 nor 4
    // divides exactly with 6-, 4- and 3-column tiles ([`exact_split`]): ghost-bench on the Zen 3
    // guest, alternating builds, 512->512 @7 27 -> 65 % of peak, 256->256 @14 41 -> 67 %
    // (with the zero-block border taps of `tile`).
    let shared =
        (a.ob0..a.ob1).all(|ob| a.sh.first_block(ob, a.span) == a.sh.first_block(a.ob0, a.span));
    if k.isa() == crate::Isa::Avx512 && shared && a.ob1 - a.ob0 >= 2 {
        dispatch!(k, run_wide, a, GcArgs;
            avx512 [8, 4, 4, 2, 14, 7]; avx2 [6, 4, 2, 1, 7, 4]; neon [6, 4, 2, 1, 7, 4];
            scalar [4, 2, 2, 1, 4, 2]);
    } else {
        dispatch!(k, run, a, GcArgs;
            avx512 [14, 7, 12, 7, 0, 2]; avx2 [7, 4, 6, 4, 3, 2]; neon [7, 4, 6, 4, 3, 2];
            scalar [4, 2, 4, 2, 0, 2]);
    }
}

impl Kernels {
    /// Grouped convolution of one NCHW8c image (any kernel, stride, dilation, padding;
    /// `groups == 1` is a dense conv) into NCHW8c output blocks
    /// `[output.block_offset, +out_blocks)`; `packed` from [`pack_conv_grouped`]. Reads input
    /// blocks `[input.block_offset, +ceil(cin / 8))` (padded lanes must be finite).
    /// `out = act(conv + bias) + residual`; channel sums accumulate the stored values.
    pub fn conv_grouped(
        self,
        packed: &[f32],
        shape: GroupedConvShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = grouped_args(packed, shape, input, output, epilogue)?;
        // SAFETY: `grouped_args` checked every extent; `output` is a unique borrow.
        unsafe { grouped_exec(self, &a) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::exact_split;

    /// The split covers the row exactly with the fewest tiles, and only where neither of the
    /// two wide widths divides it.
    #[test]
    fn exact_split_covers_the_row() {
        for ow in 1..200 {
            match exact_split(ow, 6, 4, 3) {
                Some([na, nb, nc]) => {
                    assert_eq!(na * 6 + nb * 4 + nc * 3, ow, "ow {ow}");
                    assert!(ow % 6 != 0 && ow % 4 != 0, "ow {ow}");
                    assert!(nb + nc <= 3, "ow {ow}: {nb} + {nc} narrow tiles");
                }
                None => assert!(
                    ow % 6 == 0 || ow % 4 == 0 || [1, 2, 5].contains(&ow),
                    "ow {ow}"
                ),
            }
        }
        assert_eq!(exact_split(7, 6, 4, 3), Some([0, 1, 1]));
        assert_eq!(exact_split(14, 6, 4, 3), Some([1, 2, 0]));
        assert_eq!(exact_split(7, 6, 4, 0), None);
    }
}
