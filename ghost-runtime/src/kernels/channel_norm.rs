//! Layer normalization over the channels of each pixel (ConvNeXt's `LayerNorm2d`; ONNX
//! `LayerNormalization` on the channel axis of a channels-last view):
//! `y[c] = (x[c] - mean) / sqrt(var + eps) * gamma[c] + beta[c]`, with `mean` and the biased
//! (population) `var` taken over the pixel's `C` channel values.
//!
//! Pixels go in groups of 8, so every step is a vertical vector operation on one channel block
//! of the 8 pixels (8 consecutive vectors in memory, 256 bytes), and a group's data (8 x `C`
//! floats, 24 KiB at `C = 768`) stays in L1 for the second and third of its three passes:
//! 1. Per-pixel sums of the channel blocks (one accumulator per pixel, holding 8 channels'
//!    partial sums), reduced across lanes by `Simd::transpose_sum` (a transpose and add tree
//!    in registers: lane `i` is pixel `i`): the mean `m`.
//! 2. `d = x - m`, accumulating `sum d` and `sum d^2` per pixel (the corrected two-pass
//!    algorithm): `c = sum d / C` is the rounding error of `m`, and `var = (sum d^2 - c sum d)
//!    / C`. Inputs with a large common offset keep their accuracy (mean 1000, std 0.01: the
//!    output's error stays at a few `1e-7` of its scale, `tests/channel_norm.rs`), where
//!    `E[x^2] - E[x]^2` would lose every digit.
//! 3. `y = ((x - m) r - c r) gamma + beta` with `r = 1 / sqrt(var + eps)` (two FMAs after the
//!    subtraction, which is exact near the mean), block by block, stored.
//!
//! The last block's padding lanes are cleared with a bitwise AND (`Simd::and`) before they
//! enter the statistics and after the output is computed, so whatever `src` holds there (NaN
//! included) has no effect and `dst` gets zeros. A pixel count that is not a multiple of 8 ends
//! with one group whose missing pixels repeat the last one (computed, not stored). AVX2, NEON
//! and SIMD128 (16 registers of one block) run passes 2 and 3 on 4 pixels at a time, so the
//! accumulators and the per-pixel constants stay in registers; AVX-512VL (32) and the scalar
//! path on all 8. Groups are software-pipelined: the next group's pass 1 is issued between
//! this group's statistics and its pass 3, so the out-of-order core overlaps each group's
//! latency chain (transpose sums, divisions, square root) with independent work (+12-15 %
//! at `C = 96`). `eps = 0` with a constant pixel gives NaN (`0 * inf`), as the formula does.
//!
//! Speed (`ghost-bench` `cnorm`, Zen 5, AVX-512, on a machine busy with other work): 50-70
//! GB/s of `src` + `dst` bytes at ConvNeXt-T's sizes, 25-50 % of a `memcpy` of the same bytes:
//! the kernel is bound by its vector arithmetic (7 operations per vector, about 2.5 cycles),
//! not by memory.
//!
//! Deliberately not done here: two blocks per zmm register (2 pixels x 8 channels, one cache
//! line) on AVX-512, which would halve the arithmetic's instruction count on cores with
//! 512-bit pipes (Zen 5, Intel) and is the next step if this kernel shows up in a profile; a
//! one-pass variance (Welford, or sums shifted by a value of the pixel, one operation per
//! vector fewer): ConvNeXt's activations have outlier channels far from the mean, where a
//! shift loses accuracy quadratically in its distance from the mean.

use crate::arch::Simd;
use crate::error::{check, check_exact_len, size, Error};
use crate::isa::{dispatch, Kernels};

/// Shape of one image's channel LayerNorm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelNormShape {
    /// Channels per pixel (the normalized axis), at least 1.
    pub channels: usize,
    /// Pixels (`H * W`).
    pub pixels: usize,
    /// Added to the variance before the square root; finite and non-negative.
    pub eps: f32,
}

struct Args {
    src: *const f32,
    gamma: *const f32,
    beta: *const f32,
    dst: *mut f32,
    shape: ChannelNormShape,
}

/// Per-call constants of the group loop.
struct Layout<V> {
    /// Blocks without padding lanes.
    full: usize,
    /// Whether block `full` exists (channels not a multiple of 8).
    partial: bool,
    /// All-ones bits in the lanes of the last block's channels, zero elsewhere.
    mask: V,
    /// Floats between two channel blocks (`pixels * 8`).
    bs: usize,
    /// `C` in every lane.
    count: V,
}

/// Float offsets of pixels `p0 .. p0 + 8` in a block; with `TAIL`, only `n < 8` of them exist
/// and the others repeat pixel `p0 + n - 1`.
#[inline(always)]
fn offsets<const TAIL: bool>(p0: usize, n: usize) -> [usize; 8] {
    core::array::from_fn(|i| (p0 + if TAIL { i.min(n - 1) } else { i }) * 8)
}

// In the passes below every memory access is a block `< ceil(C / 8)` (`j < full`, or `full`
// when `partial`) at an offset from [`offsets`] of existing pixels: inside `src` and `dst`,
// whose lengths `Kernels::channel_norm` checked.

/// Pass 1: minus the means of the 8 pixels at `off`.
///
/// # Safety
/// The pointers of `a` valid for the lengths [`Kernels::channel_norm`] checks; `off` from
/// [`offsets`] of pixels that exist.
// Index loops with constant trip counts, so the accumulators stay in registers (see
// `ActV::apply_tile`).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn means<S: Simd>(s: S, a: &Args, l: &Layout<S::V>, off: &[usize; 8]) -> [f32; 8] {
    let mut acc = [s.zero(); 8];
    for j in 0..l.full {
        let b = a.src.wrapping_add(j * l.bs);
        for i in 0..8 {
            // SAFETY: see above.
            acc[i] = s.add(acc[i], unsafe { s.load(b.add(off[i])) });
        }
    }
    if l.partial {
        let b = a.src.wrapping_add(l.full * l.bs);
        for i in 0..8 {
            // SAFETY: see above.
            let x = unsafe { s.load(b.add(off[i])) };
            acc[i] = s.add(acc[i], s.and(x, l.mask));
        }
    }
    let mut nm = [0.0f32; 8];
    let neg_mean = s.div(s.transpose_sum(acc), s.mul(l.count, s.splat(-1.0)));
    // SAFETY: `nm` holds 8 floats.
    unsafe { s.store(nm.as_mut_ptr(), neg_mean) };
    nm
}

/// Pass 2: with `nm` minus the means, the sums of `d = x - mean` and `d^2`, `H` pixels at a
/// time; returns `r = 1 / sqrt(var + eps)` and `-c r` per pixel (`c` the mean's correction).
///
/// # Safety
/// As [`means`].
// Index loops, not slice copies (see `means`).
#[allow(clippy::needless_range_loop, clippy::manual_memcpy)]
#[inline(always)]
unsafe fn spreads<S: Simd, const H: usize>(
    s: S,
    a: &Args,
    l: &Layout<S::V>,
    off: &[usize; 8],
    nm: &[f32; 8],
) -> ([f32; 8], [f32; 8]) {
    let (mut sd, mut sq) = ([s.zero(); 8], [s.zero(); 8]);
    let mut h = 0;
    while h < 8 {
        let mut m = [s.zero(); H];
        for i in 0..H {
            // SAFETY: h + i < 8.
            m[i] = unsafe { s.bcast(nm.as_ptr().add(h + i)) };
        }
        let (mut ad, mut aq) = ([s.zero(); H], [s.zero(); H]);
        for j in 0..l.full {
            let b = a.src.wrapping_add(j * l.bs);
            for i in 0..H {
                // SAFETY: see above.
                let d = s.add(unsafe { s.load(b.add(off[h + i])) }, m[i]);
                ad[i] = s.add(ad[i], d);
                aq[i] = s.fma(d, d, aq[i]);
            }
        }
        if l.partial {
            let b = a.src.wrapping_add(l.full * l.bs);
            for i in 0..H {
                // SAFETY: see above.
                let d = s.add(unsafe { s.load(b.add(off[h + i])) }, m[i]);
                let d = s.and(d, l.mask);
                ad[i] = s.add(ad[i], d);
                aq[i] = s.fma(d, d, aq[i]);
            }
        }
        for i in 0..H {
            sd[h + i] = ad[i];
            sq[h + i] = aq[i];
        }
        h += H;
    }
    let (sd, sq) = (s.transpose_sum(sd), s.transpose_sum(sq));
    let neg_c = s.div(sd, s.mul(l.count, s.splat(-1.0)));
    // (sum d^2 - c sum d) / C, at least 0 (it is mathematically, Cauchy-Schwarz).
    let var = s.max(s.zero(), s.div(s.fma(neg_c, sd, sq), l.count));
    let r = s.div(s.splat(1.0), s.sqrt(s.add(var, s.splat(a.shape.eps))));
    let (mut rs, mut ks) = ([0.0f32; 8], [0.0f32; 8]);
    // SAFETY: both hold 8 floats.
    unsafe {
        s.store(rs.as_mut_ptr(), r);
        s.store(ks.as_mut_ptr(), s.mul(neg_c, r));
    }
    (rs, ks)
}

/// Pass 3: `y = fma(fma(x - mean, r, -c r), gamma, beta)` for the pixels at `off` (`TAIL`: the
/// first `n` of them), `H` at a time, stored.
///
/// # Safety
/// As [`means`].
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#[inline(always)]
unsafe fn normalize_group<S: Simd, const H: usize, const TAIL: bool>(
    s: S,
    a: &Args,
    l: &Layout<S::V>,
    off: &[usize; 8],
    n: usize,
    nm: &[f32; 8],
    rs: &[f32; 8],
    ks: &[f32; 8],
) {
    let mut h = 0;
    while h < 8 {
        let (mut m, mut rv, mut kv) = ([s.zero(); H], [s.zero(); H], [s.zero(); H]);
        for i in 0..H {
            // SAFETY: h + i < 8.
            unsafe {
                m[i] = s.bcast(nm.as_ptr().add(h + i));
                rv[i] = s.bcast(rs.as_ptr().add(h + i));
                kv[i] = s.bcast(ks.as_ptr().add(h + i));
            }
        }
        let c = PixelConsts { m, r: rv, k: kv };
        for j in 0..l.full {
            // SAFETY: forwarded (block j < ceil(C / 8)).
            unsafe { normalize::<S, H, TAIL, false>(s, a, l, &c, j, off, h, n) };
        }
        if l.partial {
            // SAFETY: forwarded (block `full` < ceil(C / 8)).
            unsafe { normalize::<S, H, TAIL, true>(s, a, l, &c, l.full, off, h, n) };
        }
        h += H;
    }
}

/// Pass 3's per-pixel constants for pixels `h .. h + H` of a group: `-mean`, `r` and `-c r`.
struct PixelConsts<V, const H: usize> {
    m: [V; H],
    r: [V; H],
    k: [V; H],
}

/// Pass 3 on block `j` of pixels `h .. h + H` of a group (`MASK`: clear the padding lanes).
///
/// # Safety
/// As [`group`]; `j < ceil(C / 8)`, `off` as `group` computes it.
// Index loops with constant trip counts (see `group`).
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#[inline(always)]
unsafe fn normalize<S: Simd, const H: usize, const TAIL: bool, const MASK: bool>(
    s: S,
    a: &Args,
    l: &Layout<S::V>,
    c: &PixelConsts<S::V, H>,
    j: usize,
    off: &[usize; 8],
    h: usize,
    n: usize,
) {
    // SAFETY: block j of `gamma` and `beta` (checked lengths).
    let (g, be) = unsafe { (s.load(a.gamma.add(j * 8)), s.load(a.beta.add(j * 8))) };
    let (b, y) = (a.src.wrapping_add(j * l.bs), a.dst.wrapping_add(j * l.bs));
    for i in 0..H {
        // SAFETY: block j at a pixel < pixels (caller).
        let t = s.add(unsafe { s.load(b.add(off[h + i])) }, c.m[i]);
        let mut v = s.fma(s.fma(t, c.r[i], c.k[i]), g, be);
        if MASK {
            v = s.and(v, l.mask);
        }
        if !TAIL || h + i < n {
            // SAFETY: as the load; `dst` has the layout of `src`.
            unsafe { s.store(y.add(off[h + i]), v) };
        }
    }
}

/// # Safety
/// Pointers valid for the lengths [`Kernels::channel_norm`] checks.
#[inline(always)]
unsafe fn run<S: Simd, const H: usize>(s: S, a: &Args) {
    let ChannelNormShape {
        channels, pixels, ..
    } = a.shape;
    let rem = channels % 8;
    let mut bits = [0u32; 8];
    for (lane, b) in bits.iter_mut().enumerate() {
        if lane < rem {
            *b = u32::MAX;
        }
    }
    let l = Layout {
        full: channels / 8,
        partial: rem != 0,
        // SAFETY: `bits` holds 8 `u32`, read as the bit patterns of 8 lanes (only `and` uses
        // them).
        mask: unsafe { s.load(bits.as_ptr().cast()) },
        bs: pixels * 8,
        count: s.splat(channels as f32),
    };
    // Full groups, software-pipelined: the next group's sums (pass 1) are taken between this
    // group's statistics and its output, so the out-of-order core overlaps each group's
    // latency chain (transpose sums, divisions, square root) with independent loads and adds.
    let groups = pixels / 8;
    if groups > 0 {
        let mut off = offsets::<false>(0, 8);
        // Pixels 8g .. 8g + 8 exist for every g < groups, and `off` / `next_off` are their
        // offsets; the pointers of `a` are forwarded from this function's contract.
        // SAFETY: as above, for group 0.
        let mut nm = unsafe { means(s, a, &l, &off) };
        for g in 0..groups {
            // SAFETY: as above, for group g.
            let (rs, ks) = unsafe { spreads::<S, H>(s, a, &l, &off, &nm) };
            let next_off = offsets::<false>((g + 1) * 8, 8);
            let next_nm = if g + 1 < groups {
                // SAFETY: as above, for group g + 1 < groups.
                unsafe { means(s, a, &l, &next_off) }
            } else {
                nm
            };
            // SAFETY: as above, for group g.
            unsafe { normalize_group::<S, H, false>(s, a, &l, &off, 8, &nm, &rs, &ks) };
            (off, nm) = (next_off, next_nm);
        }
    }
    let (p0, n) = (groups * 8, pixels % 8);
    if n > 0 {
        let off = offsets::<true>(p0, n);
        // SAFETY: pixels p0 .. p0 + n exist (at least one); the pointers are forwarded.
        unsafe {
            let nm = means(s, a, &l, &off);
            let (rs, ks) = spreads::<S, H>(s, a, &l, &off, &nm);
            normalize_group::<S, H, true>(s, a, &l, &off, n, &nm, &rs, &ks);
        }
    }
}

impl Kernels {
    /// One image: `src`, `dst` `[ceil(channels / 8)][pixels][8]` (channel `c` at block `c/8`
    /// lane `c%8`); `gamma`, `beta` `ceil(channels / 8) * 8` floats (padding lanes zero).
    /// Padding lanes of `src` may hold anything and do not affect the result; `dst`'s padding
    /// lanes are written 0. Every length must be exact; `channels >= 1`, `eps` finite and
    /// non-negative. Method and accuracy: [`crate::kernels::channel_norm`].
    pub fn channel_norm(
        self,
        shape: ChannelNormShape,
        gamma: &[f32],
        beta: &[f32],
        src: &[f32],
        dst: &mut [f32],
    ) -> Result<(), Error> {
        check(shape.channels > 0, "channels", "must be positive")?;
        check(
            shape.eps.is_finite() && shape.eps >= 0.0,
            "eps",
            "must be finite and non-negative",
        )?;
        let padded = size(&[shape.channels.div_ceil(8), 8]);
        check_exact_len("gamma", gamma.len(), padded)?;
        check_exact_len("beta", beta.len(), padded)?;
        let len = size(&[padded, shape.pixels]);
        check_exact_len("src", src.len(), len)?;
        check_exact_len("dst", dst.len(), len)?;
        let a = Args {
            src: src.as_ptr(),
            gamma: gamma.as_ptr(),
            beta: beta.as_ptr(),
            dst: dst.as_mut_ptr(),
            shape,
        };
        dispatch!(self, run, &a, Args; avx512 [8]; avx2 [4]; neon [4]; scalar [8]; wasm [4]);
        Ok(())
    }
}
