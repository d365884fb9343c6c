//! The columns of [`crate::kernels::qdepthwise`] in integer dot products, for x86 with AVX-512
//! VNNI and VBMI: two output pixels of a channel block per zmm, one `vpermb` and one
//! `vpdpbusd` per tap row and group of 4 taps.
//!
//! A 32-bit lane of `vpdpbusd` adds 4 `u8 * s8` products; in NCHW8c the 4 taps a lane needs
//! (consecutive input pixels of one channel) sit 8 bytes apart, so each tap row's window
//! (`ST + K` input pixels: one load) is rearranged by `vpermb` into `[pixel][channel][tap]`
//! order, and the weights are packed once per block in the same order (taps past `K` zero).
//! The sum is exact `i32`: the bias, minus `zx * sum(w)` of the rows inside the image, plus
//! every row's dot product; `f32(sum)` is what the `f32` path gives (its partial sums are
//! exact integers), so both paths store the same bytes. Border columns need no separate code:
//! a masked load reads the window's pixels outside the image as the zero point, which then
//! adds nothing; a tap row outside the image gets zero weights.
//!
//! With 512-bit operations in flight only ports 0 and 5 take vector operations, so the
//! requantization of 4 pixels also runs 16 lanes wide ([`Zq`]): in 8-lane form it took half
//! the time. Measured (`ghost-bench --filter "dw u8"`, one core, the `f32` path's GMAC/s ->
//! this one's): 3x3 s1 c40 @56 24.7 -> 44.9, 3x3 s1 c240 @14 21.1 -> 30.1, 3x3 s2 c48 @112
//! 19.7 -> 42.6, 5x5 s2 c80 @56 26.2 -> 63.0.
//!
//! Deliberately not done here: CPUs with VNNI but no VBMI (Cascade Lake: the `f32` path), and
//! packing taps of two rows into one lane group (5x5 would use 7 groups instead of 10, at a
//! second source register per `vpermi2b`).

use crate::arch::x86_64::{join, join_ps, requant16, Vnni};
use crate::arch::{QSimd, QWide};
use crate::kernels::qdepthwise::{run_with, Columns, Fma, Line, QDwArgs};
use crate::kernels::qpointwise::RqV;
use core::arch::x86_64::*;

/// Groups of 4 taps per row (`K` = 3: 1, 5: 2).
const fn groups(k: usize) -> usize {
    k.div_ceil(4)
}

/// The `vpermb` index of group `g` of a pair's window with stride `st`: byte `32 p + 4 l + t`
/// of the result is byte `8 (p st + 4 g + t) + l` of the window (capped at the window's last
/// pixel, `st + k - 1`, where the weight is 0 anyway).
const fn windows(st: usize, k: usize, g: usize) -> [u8; 64] {
    let mut ix = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        let (p, l, t) = (i / 32, i % 32 / 4, i % 4);
        let mut j = p * st + 4 * g + t;
        if j > st + k - 1 {
            j = st + k - 1;
        }
        ix[i] = (8 * j + l) as u8;
        i += 1;
    }
    ix
}

/// One channel block's weights and shuffles for the dot-product interior.
pub(crate) struct Dot<const K: usize, const ST: usize> {
    /// Row `ky`, group `g`: for each of the 2 pixels, channel `l`, slot `t`, byte
    /// `32 p + 4 l + t` = `w[l][ky][4 g + t]` as `s8` (0 past `K`).
    w: [[__m512i; 2]; K],
    /// `-zx * sum over kx of w[l][ky][kx]`: what the zero point takes from row `ky`'s sum.
    zsum: [__m256i; K],
    /// `vpermb` index of group `g`: byte `32 p + 4 l + t` of the result is byte
    /// `8 (p ST + 4 g + t) + l` of the window (any byte where the weight is 0).
    idx: [__m512i; 2],
    /// The input zero point in every byte: what a window's pixels outside the image read.
    zx: __m512i,
}

impl<const K: usize, const ST: usize> Columns<Vnni, K, ST> for Dot<K, ST> {
    #[inline(always)]
    unsafe fn new(_: Vnni, pw: *const u8, zx: u8) -> Self {
        // SAFETY: the token proves AVX-512F/BW/VNNI and the caller VBMI (see `dot`); row ky's
        // `K * 8` tap bytes lie inside the block (caller's contract).
        unsafe {
            let idx = [0, 1].map(|g| _mm512_loadu_si512(windows(ST, K, g).as_ptr().cast()));
            // The weights' `vpermb`: `windows` with no stride, the slots past `K` zeroed.
            let widx = [0, 1].map(|g| _mm512_loadu_si512(windows(0, K, g).as_ptr().cast()));
            let keep = [0, 1].map(|g| {
                let taps = K.saturating_sub(4 * g).min(4);
                ((1u64 << taps) - 1) * 0x1111_1111_1111_1111
            });
            let zxv = _mm512_set1_epi8(zx as i8);
            let mut w = [[_mm512_setzero_si512(); 2]; K];
            let mut zsum = [_mm256_setzero_si256(); K];
            for (ky, row) in w.iter_mut().enumerate() {
                // The bytes hold `w + 128`: flipping the top bit gives the `s8` weight.
                let taps = _mm512_xor_si512(
                    _mm512_maskz_loadu_epi8(
                        u64::MAX >> (64 - 8 * K),
                        pw.add(64 + ky * K * 8).cast(),
                    ),
                    _mm512_set1_epi8(-128),
                );
                let mut zw = _mm512_setzero_si512();
                for g in 0..groups(K) {
                    row[g] = _mm512_maskz_permutexvar_epi8(keep[g], widx[g], taps);
                    zw = _mm512_dpbusd_epi32(zw, zxv, row[g]);
                }
                zsum[ky] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm512_castsi512_si256(zw));
            }
            Dot {
                w,
                zsum,
                idx,
                zx: zxv,
            }
        }
    }

    #[inline(always)]
    unsafe fn line(
        &self,
        s: Vnni,
        a: &QDwArgs,
        w: &[[__m256; K]; K],
        line: &Line<'_, Vnni, K>,
        rqv: &RqV<Vnni>,
        nzp: __m256,
        lo: usize,
        hi: usize,
    ) {
        // The bias and the zero point's share of the rows inside the image. A row outside
        // it reads a row inside with zero weights (no branch per row and pixel); a line with
        // no row inside goes through the `f32` path.
        let Some(inside) = line.rows.iter().copied().find(|r| !r.is_null()) else {
            // SAFETY: forwarded.
            return unsafe {
                <Fma<4> as Columns<Vnni, K, ST>>::line(&Fma, s, a, w, line, rqv, nzp, lo, hi)
            };
        };
        let mut corr = line.bias;
        let mut rows = [inside; K];
        // SAFETY: the token proves AVX-512F.
        let mut wl = [[unsafe { _mm512_setzero_si512() }; 2]; K];
        for ky in 0..K {
            if !line.rows[ky].is_null() {
                corr = s.iadd(corr, self.zsum[ky]);
                rows[ky] = line.rows[ky];
                wl[ky] = self.w[ky];
            }
        }
        let corr = join(corr, corr);
        let win = Window {
            rows: rows.map(|r| r.wrapping_sub(a.pl * 8)),
            w: wl,
            corr,
            pl: a.pl,
            iw: a.iw,
        };
        // Without a residual or an offset, 4 pixels requantize in zmm registers.
        let plain = rqv.plain().filter(|_| line.r.is_null());
        // SAFETY: the token proves AVX-512F/BW.
        let zq = plain.map(|c| unsafe { Zq::new(line.scale, c) });
        let mut ox = 0;
        while ox + 4 <= a.ow {
            // SAFETY: columns ox .. ox + 4 < ow.
            unsafe { self.four(s, a, &win, line, rqv, zq.as_ref(), ox, 4) };
            ox += 4;
        }
        if ox < a.ow {
            // SAFETY: columns ox .. ow; a pair's second pixel past the right edge (ox + 1 =
            // ow) only reads bytes the masked load keeps inside the row, and is not stored.
            unsafe { self.four(s, a, &win, line, rqv, zq.as_ref(), ox, a.ow - ox) };
        }
    }
}

/// A line's tap rows for [`Dot::pair`].
struct Window<const K: usize> {
    /// Each tap row's input row (a row inside the image for one outside it), offset back
    /// by the left padding: pixel `ix` of the row is at byte `8 * (ix + pl)`.
    rows: [*const u8; K],
    /// Each tap row's weights (zero for a row outside the image).
    w: [[__m512i; 2]; K],
    /// The bias and the zero point's share, for both pixels.
    corr: __m512i,
    pl: usize,
    iw: usize,
}

impl<const K: usize, const ST: usize> Dot<K, ST> {
    /// Output pixels `ox .. ox + n` (`n` from 1 to 4) of the line: two pairs, requantized in
    /// zmm registers with `zq` (no residual, no offset), else through `rqv`.
    ///
    /// # Safety
    /// `ox + n <= ow`; AVX-512 VNNI and VBMI available.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
    #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
    unsafe fn four(
        &self,
        s: Vnni,
        a: &QDwArgs,
        win: &Window<K>,
        line: &Line<'_, Vnni, K>,
        rqv: &RqV<Vnni>,
        zq: Option<&Zq>,
        ox: usize,
        n: usize,
    ) {
        // SAFETY: columns ox .. ox + n < ow (the caller's contract).
        unsafe {
            let p0 = self.pair(win, ox);
            let p1 = if n > 2 {
                self.pair(win, ox + 2)
            } else {
                _mm512_setzero_si512()
            };
            let (y, r) = line.at(a, ox);
            if let Some(zq) = zq {
                zq.store(y, p0, p1, n);
            } else {
                let h = {
                    let ([a, b], [c, d]) = (s.ihalves(p0), s.ihalves(p1));
                    [a, b, c, d]
                };
                if n == 4 {
                    rqv.store4_f32(s, h.map(|v| s.to_f32(v)), line.scale, y, r);
                } else {
                    for (i, v) in h.into_iter().take(n).enumerate() {
                        let (y, r) = line.at(a, ox + i);
                        rqv.store_f32(s, s.to_f32(v), line.scale, y, r);
                    }
                }
            }
        }
    }

    /// The `i32` sums of output pixels `ox` and `ox + 1` (lanes 0-7 and 8-15), `corr`
    /// included. The window's input pixels outside the row read as the zero point (a masked
    /// load that touches only the row's bytes), so they add nothing once `corr` takes
    /// `zx * w` of every tap; a window whose 8 pixels lie inside the row is one plain
    /// 64-byte load.
    ///
    /// # Safety
    /// Column `ox` < ow; AVX-512 VNNI and VBMI available.
    #[inline(always)]
    unsafe fn pair(&self, win: &Window<K>, ox: usize) -> __m512i {
        let ix0 = (ox * ST) as isize - win.pl as isize;
        // A plain 64-byte load when the 8 pixels from the window's first lie inside the row
        // (`u64::MAX` stands for it); else the mask of the window's pixels inside the row:
        // a constant one when all `ST + K` are (no mask arithmetic per pair, which was a
        // sixth of a 7x7 layer's time), else that of pixels `j0 .. j1`.
        let n = (ST + K) as isize;
        let bits = |j: u32| (1u64 << (8 * j)) - 1;
        let mask = if ix0 >= 0 && ix0 as usize + 8 <= win.iw {
            u64::MAX
        } else if ix0 >= 0 && ix0 + n <= win.iw as isize {
            bits(n as u32)
        } else {
            let j0 = (-ix0).clamp(0, n) as u32;
            let j1 = (win.iw as isize - ix0).clamp(0, n) as u32;
            bits(j1) & !bits(j0)
        };
        let mut acc = win.corr;
        for ky in 0..K {
            let p = win.rows[ky].wrapping_add(ox * ST * 8);
            // SAFETY: a plain load's 8 pixels start inside the row and end by its end; the
            // masked load touches only the row's pixels of the window.
            unsafe {
                let x = if mask == u64::MAX {
                    _mm512_loadu_si512(p.cast())
                } else {
                    _mm512_mask_loadu_epi8(self.zx, mask, p.cast())
                };
                for g in 0..groups(K) {
                    let xg = _mm512_permutexvar_epi8(self.idx[g], x);
                    acc = _mm512_dpbusd_epi32(acc, xg, win.w[ky][g]);
                }
            }
        }
        acc
    }
}

/// The plain requantization of [`crate::arch::QSimd::requant4`] 16 lanes wide: with 512-bit
/// operations in flight only ports 0 and 5 take vector operations, where the 8-lane form's
/// conversions, multiplies and clamps would compete with `vpdpbusd` and `vpermb` for twice
/// as many slots. Same operations per lane, so the same bytes.
struct Zq {
    /// The line's 8 scales, for both pixels of a register.
    scale: __m512,
    hi: __m512,
    zp: __m512i,
    min: __m256i,
    max: __m256i,
    /// The bounds narrow the packs' `0 ..= 255`.
    lower: bool,
    upper: bool,
    /// Dword order of 4 pixels after the two saturating packs.
    order: __m512i,
}

impl Zq {
    /// # Safety
    /// AVX-512F/BW available.
    #[inline(always)]
    unsafe fn new(scale: __m256, c: crate::arch::Rq4<Vnni>) -> Zq {
        // SAFETY: forwarded.
        unsafe {
            Zq {
                scale: join_ps(scale, scale),
                hi: join_ps(c.hi, c.hi),
                zp: join(c.zp, c.zp),
                min: _mm256_set1_epi8(c.min as i8),
                max: _mm256_set1_epi8(c.max as i8),
                lower: c.min > 0,
                upper: c.max < 255,
                order: _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0),
            }
        }
    }

    /// Requantizes pixels 0-1 (`p0`) and 2-3 (`p1`) and stores the first `n` (1 to 4) at `y`,
    /// 8 bytes each: `clamp(round(min(f32(acc) * scale, hi)) + zp)` saturated to bytes, then
    /// `[min, max]`.
    ///
    /// # Safety
    /// `y` valid for writing `8 * n` bytes; AVX-512F/BW/VL available.
    #[inline(always)]
    unsafe fn store(&self, y: *mut u8, p0: __m512i, p1: __m512i, n: usize) {
        // SAFETY: forwarded.
        unsafe {
            let q = |p: __m512i| requant16(p, self.scale, self.hi, self.zp);
            // 128-bit lane L: words [p0 dwords 4L..4L+4, p1 dwords 4L..4L+4], then bytes; so
            // p0's lane L lands in dword 4L and p1's in dword 4L + 1.
            let w = _mm512_packs_epi32(q(p0), q(p1));
            let b = _mm512_permutexvar_epi32(self.order, _mm512_packus_epi16(w, w));
            // The packs saturate to 0 ..= 255: only bounds inside narrow it.
            let mut b = _mm512_castsi512_si256(b);
            if self.lower {
                b = _mm256_max_epu8(b, self.min);
            }
            if self.upper {
                b = _mm256_min_epu8(b, self.max);
            }
            if n == 4 {
                _mm256_storeu_si256(y.cast(), b);
            } else {
                _mm256_mask_storeu_epi8(y.cast(), (1u32 << (8 * n)) - 1, b);
            }
        }
    }
}

/// The layer with [`Dot`] interiors.
///
/// # Safety
/// As [`run_with`]; the CPU supports AVX-512 F/VL/BW/VNNI/VBMI.
#[target_feature(enable = "avx,avx2,fma,avx512f,avx512vl,avx512bw,avx512vnni,avx512vbmi")]
unsafe fn dot<const K: usize, const ST: usize>(a: &QDwArgs) {
    // SAFETY: the features the token stands for are enabled here; forwarded.
    unsafe { run_with::<Vnni, Dot<K, ST>, K, ST>(Vnni::new_unchecked(), a) }
}

/// Runs the layer with dot-product interiors if this CPU can (AVX-512 VNNI and VBMI) and the
/// kernels run the AVX-512 path; `false` (nothing done) otherwise.
///
/// # Safety
/// As [`run_with`].
pub(crate) unsafe fn try_exec(k: crate::isa::Kernels, a: &QDwArgs) -> bool {
    if k.isa() != crate::isa::Isa::Avx512 || !crate::isa::x86_vbmi() {
        return false;
    }
    // SAFETY: the features were detected just above; forwarded.
    unsafe {
        match (a.k, a.stride) {
            (3, 1) => dot::<3, 1>(a),
            (3, _) => dot::<3, 2>(a),
            (_, 1) => dot::<5, 1>(a),
            _ => dot::<5, 2>(a),
        }
    }
    true
}
