//! Pointwise (1x1) convolution as a register-blocked GEMM, and the packing of its weights.
//!
//! Algorithm: `out[o][p] = act(bias[o] + sum_k W[o][k] * x[k][p]) (+ residual[o][p])`.
//! Output channels are vectorized in pairs of 8-lane blocks (`Wide`: one zmm register with
//! AVX-512, two block registers elsewhere; an odd last block alone); a register tile holds
//! `MR` pixels x `NP` pairs of accumulators. Per input channel `k` the tile loads `NP` weight
//! pairs from the panel row, broadcasts `MR` input scalars and issues `MR * NP` multiply-adds;
//! the epilogue (activation, residual, stores, sums) then runs block by block, except SiLU,
//! sigmoid and GELU, which run on the pairs before the split: with AVX-512 the zmm
//! multiply-adds leave port 1 idle to 256-bit instructions, so the ~17 operations of the
//! logistic function (~40 for GELU) per value cost half as much 16 lanes wide (EfficientNet-B0's 16->96 expansion at 112x112: 21.5
//! -> 32 GMAC/s; the same bits as the AVX2 path, `tests/pointwise.rs`).
//! The panel loop is outermost so a panel (`K x 32` floats) stays in L1/L2 while the pixels
//! stream past it. A pixel tail shorter than `MR` is handled by re-running the last full tile
//! shifted left (overlapping) and storing only the new pixels, so there is no scalar tail code.
//!
//! Packed format (ISA-independent, also the format of [`Kernels::fc`]): output channels are
//! grouped in panels of up to [`PANEL_BLOCKS`] blocks (32 channels). Panel `t` covers blocks
//! `4t .. 4t + pw` with `pw = min(4, n_blocks - 4t)` and starts at float offset
//! `t * 32 * (K + 1)`; it holds `pw * 8` biases followed by `K` rows of `pw * 8` weights:
//! `panel[pw*8 + k*pw*8 + c] = W[4t*8 + c][k]`. Total length `n_pad * (k_pad + 1)`.

use crate::arch::{each_cell, math, ActV, Simd, Wide, GELU, MISH, NONE, SIGMOID, SILU};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::tiles::walk_row;
use crate::{Dst, Epilogue, Src};
use core::ptr;

/// Output blocks per packed panel.
pub const PANEL_BLOCKS: usize = 4;

/// Number of `f32` in a packed pointwise/FC weight for `k_pad` inputs and `n_pad` outputs.
pub const fn pointwise_packed_len(k_pad: usize, n_pad: usize) -> usize {
    n_pad * (k_pad + 1)
}

/// [`pointwise_packed_len`] of `k_blocks` input and `n_blocks` output blocks, saturating (for
/// the checks, see [`size`]).
pub(crate) fn packed_len_blocks(k_blocks: usize, n_blocks: usize) -> usize {
    size(&[n_blocks, 8, size(&[k_blocks, 8]).saturating_add(1)])
}

/// Offset, in a packed weight of `n_blocks` output blocks and `k_pad` inputs (the panel format
/// above), of output channel `o`'s bias (`k` = `None`) or of its weight for input `k`.
pub(crate) fn packed_offset(n_blocks: usize, k_pad: usize, o: usize, k: Option<usize>) -> usize {
    let t0 = o / (8 * PANEL_BLOCKS) * PANEL_BLOCKS;
    let width = PANEL_BLOCKS.min(n_blocks - t0) * 8;
    t0 * 8 * (k_pad + 1) + (o - t0 * 8) + k.map_or(0, |k| width * (k + 1))
}

/// Packs a row-major `[n_pad][k_pad]` weight matrix and `bias[n_pad]` (both already
/// zero-padded to multiples of 8) into the panel format described in the module docs.
/// Run by ghostc at compile time; the result is embedded as bytes.
pub fn pack_pointwise(
    weights: &[f32],
    bias: &[f32],
    k_pad: usize,
    n_pad: usize,
    packed: &mut [f32],
) -> Result<(), Error> {
    check(
        k_pad.is_multiple_of(8) && k_pad > 0,
        "k_pad",
        "must be a positive multiple of 8",
    )?;
    check(
        n_pad.is_multiple_of(8) && n_pad > 0,
        "n_pad",
        "must be a positive multiple of 8",
    )?;
    check_len("weights", weights.len(), size(&[k_pad, n_pad]))?;
    check_len("bias", bias.len(), n_pad)?;
    check_len(
        "packed",
        packed.len(),
        packed_len_blocks(k_pad / 8, n_pad / 8),
    )?;
    let n_blocks = n_pad / 8;
    let mut t0 = 0;
    while t0 < n_blocks {
        let pw = PANEL_BLOCKS.min(n_blocks - t0);
        let base = t0 * 8 * (k_pad + 1);
        let width = pw * 8;
        let o0 = t0 * 8;
        packed[base..base + width].copy_from_slice(&bias[o0..o0 + width]);
        for k in 0..k_pad {
            let row = &mut packed[base + width + k * width..base + 2 * width + k * width];
            for (c, dst) in row.iter_mut().enumerate() {
                *dst = weights[(o0 + c) * k_pad + k];
            }
        }
        t0 += pw;
    }
    Ok(())
}

/// Copies a packed pointwise weight while scaling input channel `k` by `scale[k]`:
/// `W'[o][k] = W[o][k] * scale[k]`, biases unchanged. This folds a squeeze-and-excitation gate
/// on the 1x1's input into its weights, so the gated activation is never materialized.
pub fn scale_packed_pointwise(
    packed: &[f32],
    k_pad: usize,
    n_pad: usize,
    scale: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    check(
        k_pad.is_multiple_of(8) && k_pad > 0,
        "k_pad",
        "must be a positive multiple of 8",
    )?;
    check(
        n_pad.is_multiple_of(8) && n_pad > 0,
        "n_pad",
        "must be a positive multiple of 8",
    )?;
    let len = packed_len_blocks(k_pad / 8, n_pad / 8);
    check_len("packed", packed.len(), len)?;
    check_len("scale", scale.len(), k_pad)?;
    check_len("out", out.len(), len)?;
    let n_blocks = n_pad / 8;
    let mut t0 = 0;
    while t0 < n_blocks {
        let pw = PANEL_BLOCKS.min(n_blocks - t0);
        let base = t0 * 8 * (k_pad + 1);
        let width = pw * 8;
        out[base..base + width].copy_from_slice(&packed[base..base + width]);
        let src = &packed[base + width..base + width * (k_pad + 1)];
        let dst = &mut out[base + width..base + width * (k_pad + 1)];
        for ((d, s), &f) in dst
            .chunks_exact_mut(width)
            .zip(src.chunks_exact(width))
            .zip(scale)
        {
            for (d, s) in d.iter_mut().zip(s) {
                *d = *s * f;
            }
        }
        t0 += pw;
    }
    Ok(())
}

/// Shape of a pointwise convolution over one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointwiseShape {
    /// Input channel blocks (`k_pad / 8`).
    pub k_blocks: usize,
    /// Output channel blocks (`n_pad / 8`).
    pub n_blocks: usize,
    /// Pixels, `H * W`.
    pub pixels: usize,
}

/// Validated raw arguments of the pointwise loop nest. Block strides are in floats; every
/// pointer addresses block 0, pixel 0 of its view. Null `r`/`pre`/`sums` mean "absent".
#[derive(Clone, Copy)]
pub(crate) struct PwArgs {
    pub w: *const f32,
    pub kb: usize,
    pub nb: usize,
    pub px: usize,
    pub x: *const f32,
    pub x_bs: usize,
    pub y: *mut f32,
    pub y_bs: usize,
    pub r: *const f32,
    pub r_bs: usize,
    /// Optional second destination for the value before the residual add (fused ghost).
    pub pre: *mut f32,
    pub pre_bs: usize,
    /// Multiplier applied after the residual by [`run_gated_dispatch`] (the fused ghost's
    /// DFC gate; null elsewhere): block `ob` of pixel `p` is multiplied by the vector at
    /// `g + ob * g_bs + gm[p]` (`gm` is indexed like the pixels of this view).
    pub g: *const f32,
    pub g_bs: usize,
    pub gm: *const u32,
    pub sums: *mut f32,
    pub act: crate::Activation,
    /// Output blocks `blk0 .. blk1` of the `nb` are computed (a thread's share); `0 .. nb`
    /// for the whole layer.
    pub blk0: usize,
    pub blk1: usize,
}

impl PwArgs {
    /// A plain GEMM: `kb` input and `nb` output blocks over `px` pixels, from `x` to `y` (each
    /// with its block stride), `act` after the bias; no residual, second destination, gate or
    /// sums; all output blocks.
    pub(crate) fn plain(
        w: *const f32,
        (kb, nb, px): (usize, usize, usize),
        (x, x_bs): (*const f32, usize),
        (y, y_bs): (*mut f32, usize),
        act: crate::Activation,
    ) -> PwArgs {
        PwArgs {
            w,
            kb,
            nb,
            px,
            x,
            x_bs,
            y,
            y_bs,
            r: ptr::null(),
            r_bs: 0,
            pre: ptr::null_mut(),
            pre_bs: 0,
            g: ptr::null(),
            g_bs: 0,
            gm: ptr::null(),
            sums: ptr::null_mut(),
            act,
            blk0: 0,
            blk1: nb,
        }
    }

    /// The same layer restricted to pixels `p0 .. p1` (a thread's share when the pixels are
    /// split). Needs `sums` null: the shares would race on the channel sums.
    pub(crate) fn pixels(&self, p0: usize, p1: usize) -> PwArgs {
        let off = |p: *const f32| {
            if p.is_null() {
                p
            } else {
                p.wrapping_add(p0 * 8)
            }
        };
        PwArgs {
            px: p1 - p0,
            x: off(self.x),
            y: self.y.wrapping_add(p0 * 8),
            r: off(self.r),
            pre: if self.pre.is_null() {
                self.pre
            } else {
                self.pre.wrapping_add(p0 * 8)
            },
            gm: if self.gm.is_null() {
                self.gm
            } else {
                self.gm.wrapping_add(p0)
            },
            ..*self
        }
    }
}

/// # Safety
/// All pointers must be valid for the extents implied by the shape and strides: `w` for
/// `pointwise_packed_len(kb*8, nb*8)`, `x` for `(kb-1)*x_bs + px*8`, `y`, `r`, `pre` likewise
/// with `nb` blocks, `sums` for `nb*8`. `y` must not overlap `x`, `r`, `pre` or `w`.
///
/// Register tiles, in pairs of blocks ([`Wide`]): `MR` pixels x `NP` pairs for full-width
/// column groups, `M1P x 1` pair when two or three blocks remain (taller tiles amortize the
/// weight loads when few output blocks remain), and `M1 x 1` block for an odd last block.
#[inline(always)]
pub(crate) unsafe fn run<
    S: Wide,
    const MR: usize,
    const NP: usize,
    const M1P: usize,
    const M1: usize,
    const G: bool,
>(
    s: S,
    a: &PwArgs,
) {
    let k = a.kb * 8;
    let act = ActV::new(s, a.act);
    // Panels start at multiples of PANEL_BLOCKS; only those overlapping blk0..blk1 are read.
    let mut t0 = a.blk0 - a.blk0 % PANEL_BLOCKS;
    while t0 < a.blk1 {
        let pw = PANEL_BLOCKS.min(a.nb - t0);
        // SAFETY: panel offsets stay within the packed length (module docs).
        let panel = unsafe { a.w.add(t0 * 8 * (k + 1)) };
        let mut j0 = a.blk0.max(t0) - t0;
        let j1 = a.blk1.min(t0 + pw) - t0;
        while j0 < j1 {
            let rest = j1 - j0;
            let c = Cols {
                // SAFETY: within the panel.
                w: unsafe { panel.add(pw * 8 + j0 * 8) },
                w_stride: pw * 8,
                // SAFETY: within the panel.
                bias: unsafe { panel.add(j0 * 8) },
                ob0: t0 + j0,
            };
            // SAFETY: forwarded; the tile's blocks starting at `ob0` exist (`rest` of them).
            j0 += unsafe {
                if rest >= 2 * NP {
                    walk_wide::<S, MR, NP, G>(s, a, &act, &c);
                    2 * NP
                } else if rest >= 2 {
                    walk_wide::<S, M1P, 1, G>(s, a, &act, &c);
                    2
                } else {
                    walk_wide::<S, M1, 0, G>(s, a, &act, &c);
                    1
                }
            };
        }
        t0 += pw;
    }
}

struct Cols {
    w: *const f32,
    w_stride: usize,
    bias: *const f32,
    ob0: usize,
}

/// The tiles of one column group of `2 * NP` blocks (`NP` = 0: one block) over all pixels.
#[inline(always)]
unsafe fn walk_wide<S: Wide, const MR: usize, const NP: usize, const G: bool>(
    s: S,
    a: &PwArgs,
    act: &ActV<S::V>,
    c: &Cols,
) {
    walk_row!(a.px, MR, |p0, m, lo| {
        // SAFETY: walk_row keeps p0 + m <= px; for a short row (m < MR) the tile clamps its
        // pixel indices to px - 1.
        unsafe {
            match NP {
                0 => tile::<S, One, MR, 1, 1, G>(s, a, act, c, p0, m, lo),
                1 => tile::<S, Two, MR, 1, 2, G>(s, a, act, c, p0, m, lo),
                _ => tile::<S, Two, MR, 2, 4, G>(s, a, act, c, p0, m, lo),
            }
        }
    });
}

/// The column unit of a register tile: what one accumulator holds.
trait Unit<S: Wide> {
    type U: Copy;
    /// Blocks per unit.
    const BLOCKS: usize;
    fn zero(s: S) -> Self::U;
    /// # Safety
    /// `p` must be valid for reading `8 * BLOCKS` `f32`.
    unsafe fn load(s: S, p: *const f32) -> Self::U;
    /// # Safety
    /// `p` must be valid for reading one `f32`.
    unsafe fn bcast(s: S, p: *const f32) -> Self::U;
    fn fma(s: S, a: Self::U, b: Self::U, c: Self::U) -> Self::U;
    /// Writes the unit's blocks to `out[j * BLOCKS ..]`.
    fn put(s: S, u: Self::U, out: &mut [S::V], j: usize);
    /// The exp-based activation `KIND` (`arch::SIGMOID`, `SILU`, `GELU` or `MISH`) of every lane of
    /// the unit (the arithmetic of
    /// [`ActV::apply`] on each block).
    fn transcendental<const KIND: u8>(s: S, u: Self::U) -> Self::U;
}

/// One block per accumulator ([`Simd::V`]): the odd last block of a layer.
struct One;
/// Two blocks per accumulator ([`Wide::P`], a zmm register with AVX-512).
struct Two;

impl<S: Wide> Unit<S> for One {
    type U = S::V;
    const BLOCKS: usize = 1;
    #[inline(always)]
    fn zero(s: S) -> S::V {
        s.zero()
    }
    #[inline(always)]
    unsafe fn load(s: S, p: *const f32) -> S::V {
        // SAFETY: forwarded.
        unsafe { s.load(p) }
    }
    #[inline(always)]
    unsafe fn bcast(s: S, p: *const f32) -> S::V {
        // SAFETY: forwarded.
        unsafe { s.bcast(p) }
    }
    #[inline(always)]
    fn fma(s: S, a: S::V, b: S::V, c: S::V) -> S::V {
        s.fma(a, b, c)
    }
    #[inline(always)]
    fn put(_: S, u: S::V, out: &mut [S::V], j: usize) {
        out[j] = u;
    }
    #[inline(always)]
    fn transcendental<const KIND: u8>(s: S, u: S::V) -> S::V {
        math::by_kind::<S, KIND>(s, u)
    }
}

impl<S: Wide> Unit<S> for Two {
    type U = S::P;
    const BLOCKS: usize = 2;
    #[inline(always)]
    fn zero(s: S) -> S::P {
        s.pzero()
    }
    #[inline(always)]
    unsafe fn load(s: S, p: *const f32) -> S::P {
        // SAFETY: forwarded.
        unsafe { s.pload(p) }
    }
    #[inline(always)]
    unsafe fn bcast(s: S, p: *const f32) -> S::P {
        // SAFETY: forwarded.
        unsafe { s.pbcast(p) }
    }
    #[inline(always)]
    fn fma(s: S, a: S::P, b: S::P, c: S::P) -> S::P {
        s.pfma(a, b, c)
    }
    #[inline(always)]
    fn put(s: S, u: S::P, out: &mut [S::V], j: usize) {
        let [lo, hi] = s.halves(u);
        out[2 * j] = lo;
        out[2 * j + 1] = hi;
    }
    #[inline(always)]
    fn transcendental<const KIND: u8>(s: S, u: S::P) -> S::P {
        s.ptranscendental::<KIND>(u)
    }
}

/// One `MR x NU` register tile of `U` units (`NB = NU * U::BLOCKS` blocks) for pixels
/// `p0 .. p0 + m` (`m <= MR`, rows past `m` re-read the last pixel), storing rows `lo .. m`.
/// The multiply-adds run on units; the epilogue on blocks.
// Index loops on purpose: see the comment inside.
#[allow(clippy::needless_range_loop)]
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn tile<
    S: Wide,
    U: Unit<S>,
    const MR: usize,
    const NU: usize,
    const NB: usize,
    const G: bool,
>(
    s: S,
    a: &PwArgs,
    act: &ActV<S::V>,
    c: &Cols,
    p0: usize,
    m: usize,
    lo: usize,
) {
    debug_assert_eq!(NB, NU * U::BLOCKS);
    let step = 8 * U::BLOCKS;
    // Index loops with constant trip counts throughout (no iterator adapters): they unroll
    // in every LLVM pipeline, so the tile stays in registers (see `ActV::apply_tile`).
    let mut xp = [a.x; MR];
    for i in 0..MR {
        // In bounds: pixel index < px (the caller's contract).
        xp[i] = a.x.wrapping_add((p0 + i.min(m - 1)) * 8);
    }
    let mut acc = [[U::zero(s); NU]; MR];
    for j in 0..NU {
        // SAFETY: the bias row has NB blocks from here.
        let b = unsafe { U::load(s, c.bias.add(j * step)) };
        for i in 0..MR {
            acc[i][j] = b;
        }
    }
    let mut kk = 0;
    for kb in 0..a.kb {
        let off = kb * a.x_bs;
        for l in 0..8 {
            let wrow = kk * c.w_stride;
            let mut wv = [U::zero(s); NU];
            for j in 0..NU {
                // SAFETY: row kk < K of the panel, blocks of unit j < pw.
                wv[j] = unsafe { U::load(s, c.w.add(wrow + j * step)) };
            }
            for i in 0..MR {
                // SAFETY: block kb < kb_total of a valid pixel.
                let xv = unsafe { U::bcast(s, xp[i].add(off + l)) };
                for j in 0..NU {
                    acc[i][j] = U::fma(s, xv, wv[j], acc[i][j]);
                }
            }
            kk += 1;
        }
    }
    // SAFETY: forwarded contract of `tile`.
    unsafe {
        match act.kind() {
            SIGMOID => finish::<S, U, SIGMOID, MR, NU, NB, G>(s, a, act, c, &acc, p0, m, lo),
            SILU => finish::<S, U, SILU, MR, NU, NB, G>(s, a, act, c, &acc, p0, m, lo),
            GELU => finish::<S, U, GELU, MR, NU, NB, G>(s, a, act, c, &acc, p0, m, lo),
            MISH => finish::<S, U, MISH, MR, NU, NB, G>(s, a, act, c, &acc, p0, m, lo),
            // The cheap kinds share one instantiation (a branch per vector on the kind).
            _ => finish::<S, U, NONE, MR, NU, NB, G>(s, a, act, c, &acc, p0, m, lo),
        }
    }
}

/// Epilogue of one tile with the exp-based activation `KIND` known at compile time (`NONE`:
/// any other kind, read at run time per vector, a predictable branch): per stored row, the
/// activation (SiLU, sigmoid and GELU on whole units: zmm registers with AVX-512, twice the
/// lanes per instruction; the others on blocks), then the optional pre-residual copy,
/// residual, gate, store and sums.
///
/// Rows go by literal index (`each_cell!`) and each row's activation is a short loop, so no
/// access to the tile is runtime-indexed (see `each_cell!` for what one such access costs).
///
/// # Safety
/// As [`tile`].
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn finish<
    S: Wide,
    U: Unit<S>,
    const KIND: u8,
    const MR: usize,
    const NU: usize,
    const NB: usize,
    const G: bool,
>(
    s: S,
    a: &PwArgs,
    act: &ActV<S::V>,
    c: &Cols,
    acc: &[[U::U; NU]; MR],
    p0: usize,
    m: usize,
    lo: usize,
) {
    const { assert!(MR <= 32, "finish unrolls at most 32 rows") };
    let wide = matches!(KIND, SIGMOID | SILU | GELU | MISH);
    let mut sum = [s.zero(); NB];
    // Only the rows this tile stores: an overlapping last tile recomputes rows `..lo`, which
    // its predecessor already activated and stored.
    each_cell!(MR, |i| {
        if i >= lo && i < m {
            let mut out = [s.zero(); NB];
            for j in 0..NU {
                let u = acc[i][j];
                let u = if wide {
                    U::transcendental::<KIND>(s, u)
                } else {
                    u
                };
                U::put(s, u, &mut out, j);
            }
            if !wide {
                for j in 0..NB {
                    out[j] = act.apply_cheap(s, out[j]);
                }
            }
            // SAFETY: forwarded contract of `tile`; row i < MR exists.
            unsafe { store_row::<S, NB, G>(s, a, c, &out, (p0 + i) * 8, &mut sum) };
        }
    });
    if !a.sums.is_null() {
        for j in 0..NB {
            // SAFETY: sums has nb*8 floats.
            unsafe {
                let q = a.sums.add((c.ob0 + j) * 8);
                s.store(q, s.add(s.load(q), sum[j]));
            }
        }
    }
}

/// One row of a tile: optional pre-residual copy, residual, gate (`G`: `a.g` is set), store,
/// sums.
///
/// # Safety
/// As [`tile`], for the pixel at float offset `pix` (`8 *` its index).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn store_row<S: Simd, const NB: usize, const G: bool>(
    s: S,
    a: &PwArgs,
    c: &Cols,
    row: &[S::V; NB],
    pix: usize,
    sum: &mut [S::V; NB],
) {
    // The pixel's gate offset, read once for all the row's blocks (the stores below may
    // alias it as far as the compiler knows).
    let goff = if G {
        // SAFETY: with G, `gm` has an entry for every pixel of the view (run's contract).
        unsafe { *a.gm.add(pix / 8) as usize }
    } else {
        0
    };
    for j in 0..NB {
        let ob = c.ob0 + j;
        let mut v = row[j];
        // SAFETY: block ob < nb, pixel < px, in each view (run's contract).
        unsafe {
            if !a.pre.is_null() {
                s.store(a.pre.add(ob * a.pre_bs + pix), v);
            }
            if !a.r.is_null() {
                v = s.add(v, s.load(a.r.add(ob * a.r_bs + pix)));
            }
            if G {
                v = s.mul(v, s.load(a.g.add(ob * a.g_bs + goff)));
            }
            s.store(a.y.add(ob * a.y_bs + pix), v);
        }
        sum[j] = s.add(sum[j], v);
    }
}

/// Pointwise instantiations: (MR, NP, M1P, M1) per ISA (see [`run`]).
pub(crate) unsafe fn run_dispatch(k: Kernels, a: &PwArgs) {
    dispatch!(k, run, a, PwArgs;
        // 32 zmm: 7 x 2 pairs are 14 accumulators, 4 blocks = one whole panel.
        avx512 [7, 2, 8, 14, false]; avx2 [5, 1, 5, 10, false]; neon [6, 1, 6, 12, false];
        scalar [4, 1, 4, 8, false];
        // SIMD128: 16 xmm on an x86 host's JIT; a 3x1 pair tile is 12 v128 accumulators.
        wasm [3, 1, 3, 6, false]);
}

/// [`run_dispatch`] with the gate multiply in the epilogue (a separate instantiation, so
/// ungated layers carry no test for it).
///
/// # Safety
/// As [`run`], and `a.g` / `a.gm` valid for every block and pixel of the view.
pub(crate) unsafe fn run_gated_dispatch(k: Kernels, a: &PwArgs) {
    dispatch!(k, run, a, PwArgs;
        avx512 [7, 2, 8, 14, true]; avx2 [5, 1, 5, 10, true]; neon [6, 1, 6, 12, true];
        scalar [4, 1, 4, 8, true]; wasm [3, 1, 3, 6, true]);
}

/// Checks a view of `blocks` blocks of `pixels` pixels at `offset` in a slice of length `len`
/// and returns the float offset of its first block.
pub(crate) fn view(
    arg: &'static str,
    len: usize,
    offset: usize,
    blocks: usize,
    pixels: usize,
) -> Result<usize, Error> {
    check_len(arg, len, size(&[offset.saturating_add(blocks), pixels, 8]))?;
    Ok(offset * pixels * 8)
}

/// The checked pointers of a conv-like kernel's NCHW8c views: the input (`ins` = blocks,
/// pixels), the output and residual (`outs`), the channel sums (`outs.0 * 8`); null where the
/// epilogue has no residual or sums. Each points at its view's first block.
pub(crate) struct ConvViews {
    pub x: *const f32,
    pub y: *mut f32,
    pub r: *const f32,
    pub sums: *mut f32,
}

/// Checks and resolves [`ConvViews`] (the lengths, as `view` does, and the sums).
pub(crate) fn conv_views(
    input: &Src<'_>,
    output: &mut Dst<'_>,
    epilogue: Epilogue<'_>,
    ins: (usize, usize),
    outs: (usize, usize),
) -> Result<ConvViews, Error> {
    let xo = view("input", input.data.len(), input.block_offset, ins.0, ins.1)?;
    let yo = view(
        "output",
        output.data.len(),
        output.block_offset,
        outs.0,
        outs.1,
    )?;
    let r = match &epilogue.residual {
        Some(res) => {
            let ro = view("residual", res.data.len(), res.block_offset, outs.0, outs.1)?;
            // SAFETY: checked by `view`.
            unsafe { res.data.as_ptr().add(ro) }
        }
        None => ptr::null(),
    };
    let sums = match epilogue.channel_sums {
        Some(sums) => {
            check_len("channel_sums", sums.len(), size(&[outs.0, 8]))?;
            sums.as_mut_ptr()
        }
        None => ptr::null_mut(),
    };
    Ok(ConvViews {
        // SAFETY: checked by `view`.
        x: unsafe { input.data.as_ptr().add(xo) },
        // SAFETY: checked by `view`.
        y: unsafe { output.data.as_mut_ptr().add(yo) },
        r,
        sums,
    })
}

impl Kernels {
    /// 1x1 convolution of one NCHW8c image: reads input blocks
    /// `[input.block_offset, +k_blocks)`, writes output blocks
    /// `[output.block_offset, +n_blocks)`; `out = act(W x + bias) + residual`, channel sums
    /// (if requested) accumulate the final values: `sums[c] += sum_p out[c][p]`.
    ///
    /// `packed` comes from [`pack_pointwise`]. Residual blocks are read at
    /// `[residual.block_offset, +n_blocks)` of a tensor with the same pixel count.
    pub fn pointwise(
        self,
        packed: &[f32],
        shape: PointwiseShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = pointwise_args(packed, shape, input, output, epilogue)?;
        // SAFETY: `pointwise_args` checked every extent; `output` is a unique borrow, so it
        // overlaps nothing else.
        unsafe { run_dispatch(self, &a) };
        Ok(())
    }
}

/// The checks of [`Kernels::pointwise`], returning the raw arguments of the whole layer.
/// The borrows end here: callers keep them alive while the pointers are used.
pub(crate) fn pointwise_args(
    packed: &[f32],
    shape: PointwiseShape,
    input: Src<'_>,
    mut output: Dst<'_>,
    epilogue: Epilogue<'_>,
) -> Result<PwArgs, Error> {
    let PointwiseShape {
        k_blocks,
        n_blocks,
        pixels,
    } = shape;
    check(k_blocks > 0, "shape.k_blocks", "must be positive")?;
    check(n_blocks > 0, "shape.n_blocks", "must be positive")?;
    check(pixels > 0, "shape.pixels", "must be positive")?;
    check_len(
        "packed",
        packed.len(),
        packed_len_blocks(k_blocks, n_blocks),
    )?;
    let act = epilogue.activation;
    let v = conv_views(
        &input,
        &mut output,
        epilogue,
        (k_blocks, pixels),
        (n_blocks, pixels),
    )?;
    let bs = pixels * 8;
    Ok(PwArgs {
        r: v.r,
        r_bs: if v.r.is_null() { 0 } else { bs },
        sums: v.sums,
        ..PwArgs::plain(
            packed.as_ptr(),
            (k_blocks, n_blocks, pixels),
            (v.x, bs),
            (v.y, bs),
            act,
        )
    })
}
