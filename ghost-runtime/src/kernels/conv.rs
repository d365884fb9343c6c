//! Dense convolution (the stem: 3x3 stride 2 over the RGB image) and a general grouped
//! convolution fallback.
//!
//! Dense conv algorithm: output channels are vectorized (8 per block, `NB` blocks at once);
//! an interior tile of `COLS` output pixels of one row accumulates `COLS x NB` vectors, each
//! tap loading `NB` weight vectors and broadcasting `COLS` input scalars. Pixels whose taps
//! leave the image take a per-tap-checked path. The input may be plain NCHW (the network
//! input, no conversion pass) or NCHW8c. The RGB stem (NCHW, 3 channels, 3x3 stride 2) gets
//! its own instantiation of the same loop nest with those sizes as constants: the tap loops
//! unroll and every input offset becomes an immediate, where the generic loop spends more
//! integer instructions on addresses than FMAs.
//! With two output blocks (16 channels, GhostNet's stem) the stem's interior runs both in
//! one `Wide` register per pixel (`stem_wide`: zmm with AVX-512), 16 pixels a tile, each
//! input scalar broadcast once for the two pixels that read it. The stem also prefetches the
//! input rows and output lines of the row two ahead (`STEM_AHEAD`): in a model both are
//! cold when it runs.
//!
//! Packed dense weights: per output block `[bias: 8][cin][kh][kw][8]`, i.e.
//! `cout_pad * (cin*kh*kw + 1)` floats.
//!
//! The grouped fallback ([`Kernels::conv_general`]) is a direct scalar loop over logical
//! channels (any kernel, stride, padding, dilation, groups) taking ONNX-layout weights. It is
//! for rare layers; GhostNet itself never needs it.

use crate::arch::{prefetch, ActV, Simd, Wide};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::{Dst, Epilogue, Src};
use core::ptr;

/// Memory layout of a convolution input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputLayout {
    /// Plain `[C][H][W]`.
    Nchw,
    /// `[ceil(C/8)][H][W][8]`.
    Nchw8c,
}

/// Shape of a dense (groups = 1, dilation = 1) convolution over one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels (logical; NCHW8c inputs are padded to 8).
    pub cin: usize,
    /// Layout of the input.
    pub layout: InputLayout,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channel blocks.
    pub out_blocks: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Padding: top, left, bottom, right.
    pub pads: [usize; 4],
}

impl ConvShape {
    /// Output height.
    pub fn out_h(&self) -> usize {
        let padded = self
            .in_h
            .saturating_add(self.pads[0])
            .saturating_add(self.pads[2]);
        (padded.saturating_sub(self.kh) / self.stride_h.max(1)).saturating_add(1)
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        let padded = self
            .in_w
            .saturating_add(self.pads[1])
            .saturating_add(self.pads[3]);
        (padded.saturating_sub(self.kw) / self.stride_w.max(1)).saturating_add(1)
    }
    fn input_len(&self) -> usize {
        match self.layout {
            InputLayout::Nchw => size(&[self.cin, self.in_h, self.in_w]),
            InputLayout::Nchw8c => size(&[self.cin.div_ceil(8), 8, self.in_h, self.in_w]),
        }
    }
}

/// Number of `f32` of a packed dense convolution weight.
pub const fn conv_packed_len(cin: usize, cout_pad: usize, kh: usize, kw: usize) -> usize {
    cout_pad * (cin * kh * kw + 1)
}

/// Packs ONNX-layout `[cout_pad][cin][kh][kw]` weights and `bias[cout_pad]` (zero-padded in
/// the output dimension) for [`Kernels::conv`].
pub fn pack_conv(
    weights: &[f32],
    bias: &[f32],
    cin: usize,
    cout_pad: usize,
    kh: usize,
    kw: usize,
    packed: &mut [f32],
) -> Result<(), Error> {
    check(
        cout_pad.is_multiple_of(8) && cout_pad > 0,
        "cout_pad",
        "must be a positive multiple of 8",
    )?;
    let taps = size(&[cin, kh, kw]);
    check_len("weights", weights.len(), size(&[cout_pad, taps]))?;
    check_len("bias", bias.len(), cout_pad)?;
    check_len(
        "packed",
        packed.len(),
        size(&[cout_pad, taps.saturating_add(1)]),
    )?;
    for ob in 0..cout_pad / 8 {
        let base = ob * 8 * (taps + 1);
        for l in 0..8 {
            let o = ob * 8 + l;
            packed[base + l] = bias[o];
            for t in 0..taps {
                packed[base + 8 + t * 8 + l] = weights[o * taps + t];
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
pub(crate) struct ConvArgs {
    w: *const f32,
    sh: ConvShape,
    oh: usize,
    ow: usize,
    x: *const f32,
    y: *mut f32,
    r: *const f32,
    sums: *mut f32,
    act: crate::Activation,
    /// Output rows `oy0 .. oy1` are computed (a thread's share; `0 .. oh` for all).
    oy0: usize,
    oy1: usize,
}

impl ConvArgs {
    pub(crate) fn out_h(&self) -> usize {
        self.oh
    }
    pub(crate) fn has_sums(&self) -> bool {
        !self.sums.is_null()
    }
    /// The same layer restricted to output rows `oy0 .. oy1` (needs no channel sums).
    pub(crate) fn rows(&self, oy0: usize, oy1: usize) -> ConvArgs {
        ConvArgs { oy0, oy1, ..*self }
    }
    /// Offset of channel `c` at pixel 0, and the distance between pixels.
    #[inline(always)]
    fn chan(&self, c: usize) -> (usize, usize) {
        let ihw = self.sh.in_h * self.sh.in_w;
        match self.sh.layout {
            InputLayout::Nchw => (c * ihw, 1),
            InputLayout::Nchw8c => ((c / 8) * ihw * 8 + c % 8, 8),
        }
    }
}

/// A group of `nb <= NB` output blocks starting at `ob`.
#[derive(Clone, Copy)]
struct Group {
    ob: usize,
    nb: usize,
    taps: usize,
}

/// Packed weights of block `j` of the group (clamped to the last real block).
#[inline(always)]
fn wptr(a: &ConvArgs, g: Group, j: usize) -> *const f32 {
    a.w.wrapping_add((g.ob + j.min(g.nb - 1)) * 8 * (g.taps + 1))
}

/// # Safety
/// `g` within the packed weights.
#[inline(always)]
unsafe fn init<S: Simd, const NB: usize>(s: S, a: &ConvArgs, g: Group) -> [S::V; NB] {
    let mut acc = [s.zero(); NB];
    for (j, acc) in acc.iter_mut().enumerate() {
        // SAFETY: bias of a real block.
        *acc = unsafe { s.load(wptr(a, g, j)) };
    }
    acc
}

/// # Safety
/// `p < out_h * out_w`, `g` within the output blocks.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn store_px<S: Simd, const NB: usize>(
    s: S,
    a: &ConvArgs,
    act: &ActV<S::V>,
    g: Group,
    p: usize,
    acc: &[S::V; NB],
    sum: &mut [S::V; NB],
) {
    let ohw = a.oh * a.ow;
    for j in 0..g.nb.min(NB) {
        let mut v = act.apply(s, acc[j]);
        let off = (g.ob + j) * ohw * 8 + p * 8;
        // SAFETY: block < out_blocks, pixel < oh*ow.
        unsafe {
            if !a.r.is_null() {
                v = s.add(v, s.load(a.r.add(off)));
            }
            s.store(a.y.add(off), v);
        }
        sum[j] = s.add(sum[j], v);
    }
}

/// A pixel whose taps may leave the image: every tap checked.
///
/// # Safety
/// As [`run`].
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn border_px<S: Simd, const NB: usize>(
    s: S,
    a: &ConvArgs,
    g: Group,
    oy: usize,
    ox: usize,
) -> [S::V; NB] {
    let sh = &a.sh;
    // SAFETY: forwarded.
    let mut acc = unsafe { init::<S, NB>(s, a, g) };
    let mut t = 0;
    for c in 0..sh.cin {
        let (cb, ps) = a.chan(c);
        for ky in 0..sh.kh {
            let iy = (oy * sh.stride_h + ky) as isize - sh.pads[0] as isize;
            for kx in 0..sh.kw {
                let ix = (ox * sh.stride_w + kx) as isize - sh.pads[1] as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < sh.in_h && (ix as usize) < sh.in_w {
                    let p = iy as usize * sh.in_w + ix as usize;
                    // SAFETY: in-bounds pixel of channel c.
                    let xv = unsafe { s.bcast(a.x.add(cb + p * ps)) };
                    for (j, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: tap t < taps.
                        let wv = unsafe { s.load(wptr(a, g, j).add(8 + t * 8)) };
                        *acc = s.fma(xv, wv, *acc);
                    }
                }
                t += 1;
            }
        }
    }
    acc
}

/// `COLS` interior output pixels (all taps inside the row) of row `oy` from column `ox`.
///
/// # Safety
/// As [`run`]; columns `ox .. ox + COLS` interior.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::too_many_arguments)]
unsafe fn interior<S: Simd, const COLS: usize, const NB: usize, const STEM: bool>(
    s: S,
    a: &ConvArgs,
    act: &ActV<S::V>,
    g: Group,
    oy: usize,
    ox: usize,
    sum: &mut [S::V; NB],
) {
    let sh = &a.sh;
    let (cin, kh, kw, stride_h, stride_w) = if STEM {
        (3, 3, 3, 2, 2)
    } else {
        (sh.cin, sh.kh, sh.kw, sh.stride_h, sh.stride_w)
    };
    // SAFETY: forwarded.
    let mut acc = [unsafe { init::<S, NB>(s, a, g) }; COLS];
    let mut t = 0;
    for c in 0..cin {
        let (cb, ps) = if STEM {
            (c * sh.in_h * sh.in_w, 1)
        } else {
            a.chan(c)
        };
        for ky in 0..kh {
            let iy = (oy * stride_h + ky) as isize - sh.pads[0] as isize;
            if iy < 0 || iy as usize >= sh.in_h {
                t += kw;
                continue;
            }
            let rowp = cb + (iy as usize * sh.in_w + ox * stride_w - sh.pads[1]) * ps;
            for kx in 0..kw {
                let mut wv = [s.zero(); NB];
                for (j, wv) in wv.iter_mut().enumerate() {
                    // SAFETY: tap t < taps.
                    *wv = unsafe { s.load(wptr(a, g, j).add(8 + t * 8)) };
                }
                for (col, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: interior column: inside the row.
                    let xv = unsafe { s.bcast(a.x.add(rowp + (col * stride_w + kx) * ps)) };
                    for j in 0..NB {
                        acc[j] = s.fma(xv, wv[j], acc[j]);
                    }
                }
                t += 1;
            }
        }
    }
    for (col, acc) in acc.iter().enumerate() {
        // SAFETY: ox + col < ow.
        unsafe { store_px(s, a, act, g, oy * a.ow + ox + col, acc, sum) };
    }
}

/// `COLS` interior pixels of the RGB stem (NCHW, 3 channels, 3x3 stride 2) for a group of
/// two output blocks held in one [`Wide`] register per pixel: with AVX-512 one zmm
/// multiply-add per tap and pixel instead of two ymm ones (the stem ran at ~40 % of the zmm
/// peak in `ghost-bench`, the ymm bound). The taps are added in [`interior`]'s order with the
/// same `fma`, so the bits are the same.
///
/// # Safety
/// As [`run`]; the shape is the stem's, columns `ox .. ox + COLS` interior, `g.nb == 2`,
/// `NB >= 2`.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
#[allow(clippy::too_many_arguments)]
unsafe fn stem_wide<S: Wide, const COLS: usize, const NB: usize>(
    s: S,
    a: &ConvArgs,
    act: &ActV<S::V>,
    g: Group,
    oy: usize,
    ox: usize,
    sum: &mut [S::V; NB],
) {
    let sh = &a.sh;
    let (w0, w1) = (wptr(a, g, 0), wptr(a, g, 1));
    // SAFETY: the biases of the group's two blocks.
    let mut acc = [unsafe { s.pload2(w0, w1) }; COLS];
    let mut t = 0;
    for c in 0..3 {
        let cb = c * sh.in_h * sh.in_w;
        for ky in 0..3 {
            let iy = (oy * 2 + ky) as isize - sh.pads[0] as isize;
            if iy < 0 || iy as usize >= sh.in_h {
                t += 3;
                continue;
            }
            let rowp =
                a.x.wrapping_add(cb + iy as usize * sh.in_w + ox * 2 - sh.pads[1]);
            // SAFETY: taps t .. t + 3 < 27 of both blocks.
            let wv = unsafe {
                let tap = |k: usize| 8 + (t + k) * 8;
                [
                    s.pload2(w0.add(tap(0)), w1.add(tap(0))),
                    s.pload2(w0.add(tap(1)), w1.add(tap(1))),
                    s.pload2(w0.add(tap(2)), w1.add(tap(2))),
                ]
            };
            // Input column j of the row feeds output column (j - kx) / 2 as its tap kx: each
            // input scalar is broadcast once for the (up to) two pixels that read it, and the
            // row's three taps stay in registers. Every index a literal (see
            // `depthwise_general::line_tile` for why).
            macro_rules! taps {
                ($j:literal, $xv:ident; $($kx:literal)*) => {$(
                    if $j >= $kx && ($j - $kx) % 2 == 0 && ($j - $kx) / 2 < COLS {
                        let col = (($j - $kx) / 2).min(COLS - 1);
                        acc[col] = s.pfma($xv, wv[$kx], acc[col]);
                    }
                )*};
            }
            macro_rules! inputs {
                ($($j:literal)*) => {$(
                    if $j < 2 * COLS + 1 {
                        // SAFETY: interior columns: input column 2 * (ox + col) + kx - pl of
                        // the row exists for every col < COLS, kx < 3.
                        let xv = unsafe { s.pbcast(rowp.add($j)) };
                        taps!($j, xv; 0 1 2);
                    }
                )*};
            }
            inputs!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
                29 30 31 32);
            debug_assert!(COLS <= 16, "stem_wide unrolls at most 16 columns");
            t += 3;
        }
    }
    for (col, acc) in acc.iter().enumerate() {
        let [lo, hi] = s.halves(*acc);
        let mut v = [lo; NB];
        v[1] = hi;
        // SAFETY: ox + col < ow; the group's two blocks.
        unsafe { store_px(s, a, act, g, oy * a.ow + ox + col, &v, sum) };
    }
}

/// # Safety
/// Pointers valid for the extents checked by [`Kernels::conv`].
#[inline(always)]
unsafe fn run<S: Wide, const COLS: usize, const NB: usize, const WCOLS: usize>(s: S, a: &ConvArgs) {
    let sh = &a.sh;
    let stem = sh.layout == InputLayout::Nchw
        && sh.cin == 3
        && (sh.kh, sh.kw, sh.stride_h, sh.stride_w) == (3, 3, 2, 2);
    if stem {
        // SAFETY: forwarded; the shape is the one `STEM` hard-codes.
        unsafe { body::<S, COLS, NB, WCOLS, true>(s, a) }
    } else {
        // SAFETY: forwarded.
        unsafe { body::<S, COLS, NB, WCOLS, false>(s, a) }
    }
}

/// Output rows ahead of the current one whose input and output lines the stem prefetches.
/// The network input and the stem's output are usually cold: the rest of the previous
/// inference (tens of MB of weights) evicted them. Without the hints the stem ran at the speed
/// of its few demand misses in flight (`ghost-bench` `stem ... cold`: buffers past the L3).
const STEM_AHEAD: usize = 2;

/// Prefetches what output row `oy` of the stem will touch and the rows before it have not:
/// its two new input rows in each of the three planes (stride 2: the third is the previous
/// row's) and its output rows in the group's blocks (for writing). Nothing past the share.
#[inline(always)]
fn prefetch_stem_row(a: &ConvArgs, g: Group, oy: usize) {
    if oy >= a.oy1 {
        return;
    }
    let sh = &a.sh;
    let ihw = sh.in_h * sh.in_w;
    for c in 0..3 {
        for ky in 1..3 {
            let iy = (oy * 2 + ky).wrapping_sub(sh.pads[0]);
            if iy < sh.in_h {
                let row = a.x.wrapping_add(c * ihw + iy * sh.in_w);
                let mut i = 0;
                while i < sh.in_w {
                    prefetch::<false>(row.wrapping_add(i));
                    i += 16;
                }
            }
        }
    }
    let ohw = a.oh * a.ow;
    for j in 0..g.nb {
        let row = a.y.wrapping_add((g.ob + j) * ohw * 8 + oy * a.ow * 8);
        let mut i = 0;
        while i < a.ow * 8 {
            prefetch::<true>(row.wrapping_add(i));
            i += 16;
        }
    }
}

/// The loop nest of [`run`]. `STEM`: the input is NCHW with 3 channels and the kernel 3x3
/// stride 2 (the RGB stem), so the interior tiles' channel, tap and stride loops have
/// constant trip counts and strides: fully unrolled, every input offset an immediate.
///
/// # Safety
/// As [`run`]; with `STEM`, the shape must be that one.
#[inline(always)]
unsafe fn body<
    S: Wide,
    const COLS: usize,
    const NB: usize,
    const WCOLS: usize,
    const STEM: bool,
>(
    s: S,
    a: &ConvArgs,
) {
    let sh = &a.sh;
    let taps = sh.cin * sh.kh * sh.kw;
    let act = ActV::new(s, a.act);
    let pl = sh.pads[1];
    let lo = pl.div_ceil(sh.stride_w).min(a.ow);
    let hi = if sh.in_w + pl >= sh.kw {
        ((sh.in_w + pl - sh.kw) / sh.stride_w + 1).min(a.ow)
    } else {
        0
    }
    .max(lo);
    let mut ob = 0;
    while ob < sh.out_blocks {
        let g = Group {
            ob,
            nb: NB.min(sh.out_blocks - ob),
            taps,
        };
        let mut sum = [s.zero(); NB];
        for oy in a.oy0..a.oy1 {
            if STEM {
                prefetch_stem_row(a, g, oy + STEM_AHEAD);
            }
            for ox in 0..lo {
                // SAFETY: forwarded; ox < ow.
                unsafe {
                    let acc = border_px::<S, NB>(s, a, g, oy, ox);
                    store_px(s, a, &act, g, oy * a.ow + ox, &acc, &mut sum);
                }
            }
            let mut ox = lo;
            if STEM && NB >= 2 && g.nb == 2 {
                while ox + WCOLS <= hi {
                    // SAFETY: columns ox .. ox + WCOLS are interior; the group has 2 blocks.
                    unsafe { stem_wide::<S, WCOLS, NB>(s, a, &act, g, oy, ox, &mut sum) };
                    ox += WCOLS;
                }
                while ox + 4 <= hi {
                    // SAFETY: as above, for 4 columns.
                    unsafe { stem_wide::<S, 4, NB>(s, a, &act, g, oy, ox, &mut sum) };
                    ox += 4;
                }
                while ox < hi {
                    // SAFETY: column ox is interior; the group has 2 blocks.
                    unsafe { stem_wide::<S, 1, NB>(s, a, &act, g, oy, ox, &mut sum) };
                    ox += 1;
                }
            }
            while ox + COLS <= hi {
                // SAFETY: columns ox .. ox + COLS are interior.
                unsafe { interior::<S, COLS, NB, STEM>(s, a, &act, g, oy, ox, &mut sum) };
                ox += COLS;
            }
            while ox + 2 <= hi {
                // SAFETY: columns ox .. ox + 2 are interior.
                unsafe { interior::<S, 2, NB, STEM>(s, a, &act, g, oy, ox, &mut sum) };
                ox += 2;
            }
            while ox < hi {
                // SAFETY: column ox is interior.
                unsafe { interior::<S, 1, NB, STEM>(s, a, &act, g, oy, ox, &mut sum) };
                ox += 1;
            }
            for ox in ox..a.ow {
                // SAFETY: forwarded; ox < ow.
                unsafe {
                    let acc = border_px::<S, NB>(s, a, g, oy, ox);
                    store_px(s, a, &act, g, oy * a.ow + ox, &acc, &mut sum);
                }
            }
        }
        if !a.sums.is_null() {
            for (j, sum) in sum.iter().enumerate().take(g.nb) {
                // SAFETY: sums has out_blocks*8 floats.
                unsafe {
                    let q = a.sums.add((ob + j) * 8);
                    s.store(q, s.add(s.load(q), *sum));
                }
            }
        }
        ob += g.nb;
    }
}

/// Shape of a general (grouped, dilated) convolution for [`Kernels::conv_general`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneralConvShape {
    /// Input channels (logical).
    pub cin: usize,
    /// Output channels (logical).
    pub cout: usize,
    /// Groups; must divide `cin` and `cout`.
    pub groups: usize,
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

impl GeneralConvShape {
    /// Output height.
    pub fn out_h(&self) -> usize {
        let ext = size(&[self.dilation[0], self.kh.saturating_sub(1)]).saturating_add(1);
        let padded = self
            .in_h
            .saturating_add(self.pads[0])
            .saturating_add(self.pads[2]);
        (padded.saturating_sub(ext) / self.stride[0].max(1)).saturating_add(1)
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        let ext = size(&[self.dilation[1], self.kw.saturating_sub(1)]).saturating_add(1);
        let padded = self
            .in_w
            .saturating_add(self.pads[1])
            .saturating_add(self.pads[3]);
        (padded.saturating_sub(ext) / self.stride[1].max(1)).saturating_add(1)
    }
}

impl Kernels {
    /// Dense convolution of one image into NCHW8c output blocks
    /// `[output.block_offset, +out_blocks)`. `packed` from [`pack_conv`]. The input view's
    /// `block_offset` counts NCHW8c blocks, or, for NCHW input, whole channel planes.
    pub fn conv(
        self,
        packed: &[f32],
        shape: ConvShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = conv_args(packed, shape, input, output, epilogue)?;
        // SAFETY: `conv_args` checked every extent; `output` is a unique borrow.
        unsafe { conv_exec(self, &a) };
        Ok(())
    }

    /// General grouped/dilated convolution, NCHW8c in and out, ONNX-layout weights
    /// `[cout][cin/groups][kh][kw]` and `bias[cout]` over logical channels. Scalar on every
    /// ISA: a correct fallback for layers the specialized kernels do not cover. Padded output
    /// lanes are set to zero.
    pub fn conv_general(
        self,
        weights: &[f32],
        bias: &[f32],
        shape: GeneralConvShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let sh = shape;
        check(sh.groups > 0, "shape.groups", "must be positive")?;
        check(
            sh.cin.is_multiple_of(sh.groups)
                && sh.cout.is_multiple_of(sh.groups)
                && sh.cin > 0
                && sh.cout > 0,
            "shape.groups",
            "must divide cin and cout",
        )?;
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
        let cig = sh.cin / sh.groups;
        let cog = sh.cout / sh.groups;
        check_len(
            "weights",
            weights.len(),
            size(&[sh.cout, cig, sh.kh, sh.kw]),
        )?;
        check_len("bias", bias.len(), sh.cout)?;
        let ihw = size(&[sh.in_h, sh.in_w]);
        let (oh, ow) = (sh.out_h(), sh.out_w());
        // The loop computes `o * stride + k * dilation` and subtracts the pad as `isize`: every
        // such position must be representable, or wild shapes over small slices overflow
        // (fuzz `kernels` run #9: `kx * dilation`).
        let reach = |o: usize, st: usize, k: usize, d: usize, pad: usize| {
            (o - 1)
                .checked_mul(st)
                .zip((k - 1).checked_mul(d))
                .and_then(|(a, b)| a.checked_add(b))
                .is_some_and(|v| v <= isize::MAX as usize && pad <= isize::MAX as usize)
        };
        check(
            reach(oh, sh.stride[0], sh.kh, sh.dilation[0], sh.pads[0])
                && reach(ow, sh.stride[1], sh.kw, sh.dilation[1], sh.pads[1]),
            "shape.dilation",
            "strides, dilations and pads reach input positions beyond isize::MAX",
        )?;
        let ohw = size(&[oh, ow]);
        let ob = sh.cout.div_ceil(8);
        let xo = view(
            "input",
            input.data.len(),
            input.block_offset,
            sh.cin.div_ceil(8),
            ihw,
        )?;
        let yo = view("output", output.data.len(), output.block_offset, ob, ohw)?;
        let ro = match &epilogue.residual {
            Some(res) => Some(view("residual", res.data.len(), res.block_offset, ob, ohw)?),
            None => None,
        };
        if let Some(sums) = &epilogue.channel_sums {
            check_len("channel_sums", sums.len(), size(&[ob, 8]))?;
        }
        let x = &input.data[xo..];
        let y = &mut output.data[yo..];
        let mut sums = epilogue.channel_sums;
        let at = |pixels: usize, c: usize, p: usize| (c / 8) * pixels * 8 + p * 8 + c % 8;
        for o in 0..sh.cout {
            let g = o / cog;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias[o];
                    for ci in 0..cig {
                        let c = g * cig + ci;
                        for ky in 0..sh.kh {
                            let iy = (oy * sh.stride[0] + ky * sh.dilation[0]) as isize
                                - sh.pads[0] as isize;
                            if iy < 0 || iy as usize >= sh.in_h {
                                continue;
                            }
                            for kx in 0..sh.kw {
                                let ix = (ox * sh.stride[1] + kx * sh.dilation[1]) as isize
                                    - sh.pads[1] as isize;
                                if ix < 0 || ix as usize >= sh.in_w {
                                    continue;
                                }
                                let p = iy as usize * sh.in_w + ix as usize;
                                acc += weights[((o * cig + ci) * sh.kh + ky) * sh.kw + kx]
                                    * x[at(ihw, c, p)];
                            }
                        }
                    }
                    let p = oy * ow + ox;
                    let mut v = crate::kernels::elementwise::act_scalar(epilogue.activation, acc);
                    if let (Some(res), Some(ro)) = (&epilogue.residual, ro) {
                        v += res.data[ro + at(ohw, o, p)];
                    }
                    y[at(ohw, o, p)] = v;
                    if let Some(sums) = sums.as_deref_mut() {
                        sums[o] += v;
                    }
                }
            }
        }
        // Padded lanes must stay finite: consumers multiply them by zero weights.
        for o in sh.cout..ob * 8 {
            for p in 0..ohw {
                y[at(ohw, o, p)] = 0.0;
            }
        }
        Ok(())
    }
}

/// The checks of [`Kernels::conv`], returning the raw arguments of the whole layer.
pub(crate) fn conv_args(
    packed: &[f32],
    shape: ConvShape,
    input: Src<'_>,
    output: Dst<'_>,
    epilogue: Epilogue<'_>,
) -> Result<ConvArgs, Error> {
    let sh = shape;
    check(
        sh.cin > 0 && sh.out_blocks > 0,
        "shape.cin",
        "channels must be positive",
    )?;
    check(
        sh.kh > 0 && sh.kw > 0,
        "shape.kh",
        "kernel must be non-empty",
    )?;
    check(
        sh.stride_h > 0 && sh.stride_w > 0,
        "shape.stride_h",
        "must be positive",
    )?;
    check(
        sh.in_h > 0 && sh.in_w > 0,
        "shape.in_h",
        "input must be non-empty",
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
        "padded input smaller than the kernel",
    )?;
    check(
        sh.pads[0] < sh.kh && sh.pads[1] < sh.kw,
        "shape.pads",
        "top/left padding must be smaller than the kernel",
    )?;
    check_len(
        "packed",
        packed.len(),
        size(&[
            sh.out_blocks,
            8,
            size(&[sh.cin, sh.kh, sh.kw]).saturating_add(1),
        ]),
    )?;
    let ihw = size(&[sh.in_h, sh.in_w]);
    let xo = match sh.layout {
        InputLayout::Nchw => size(&[input.block_offset, ihw]),
        InputLayout::Nchw8c => size(&[input.block_offset, ihw, 8]),
    };
    check_len("input", input.data.len(), xo.saturating_add(sh.input_len()))?;
    let (oh, ow) = (sh.out_h(), sh.out_w());
    let yo = view(
        "output",
        output.data.len(),
        output.block_offset,
        sh.out_blocks,
        size(&[oh, ow]),
    )?;
    let r = match &epilogue.residual {
        Some(res) => {
            let ro = view(
                "residual",
                res.data.len(),
                res.block_offset,
                sh.out_blocks,
                size(&[oh, ow]),
            )?;
            // SAFETY: checked just above.
            unsafe { res.data.as_ptr().add(ro) }
        }
        None => ptr::null(),
    };
    let sums = match epilogue.channel_sums {
        Some(sums) => {
            check_len("channel_sums", sums.len(), size(&[sh.out_blocks, 8]))?;
            sums.as_mut_ptr()
        }
        None => ptr::null_mut(),
    };
    let a = ConvArgs {
        w: packed.as_ptr(),
        sh,
        oh,
        ow,
        // SAFETY: checked above.
        x: unsafe { input.data.as_ptr().add(xo) },
        // SAFETY: checked by `view`.
        y: unsafe { output.data.as_mut_ptr().add(yo) },
        r,
        sums,
        act: epilogue.activation,
        oy0: 0,
        oy1: oh,
    };
    Ok(a)
}

/// Runs the (share of the) layer `a` describes.
///
/// # Safety
/// `a` comes from [`conv_args`] (possibly restricted by [`ConvArgs::rows`]) and the borrows
/// it was made from are still alive.
pub(crate) unsafe fn conv_exec(k: Kernels, a: &ConvArgs) {
    // The dispatch is sound: the caller's contract.
    dispatch!(k, run, a, ConvArgs;
        avx512 [8, 2, 16]; avx2 [4, 2, 4]; neon [4, 2, 4]; scalar [4, 2, 4]; wasm [2, 2, 4]);
}
