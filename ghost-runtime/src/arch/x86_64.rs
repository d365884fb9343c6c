//! x86_64 tokens. Their channel block is a ymm (`__m256`) register: AVX-512VL gives ymm16-31
//! and embedded broadcasts to the same code, so the tokens share one implementation and differ
//! in the register tiles the kernels pick. The exception is [`super::Wide`]: with AVX-512 the
//! pointwise tile multiplies and adds in zmm registers, two blocks at a time, which doubles the
//! FMA throughput on Intel cores with two 512-bit FMA units (Sapphire Rapids: 123 against 66
//! GMAC/s on one core); Zen 4 runs a zmm FMA on both 256-bit halves of its pipes, so its
//! rate per lane should stay the same there (not measured: no Zen 4 machine since).

use super::Simd;
use core::arch::x86_64::*;

macro_rules! ymm_token {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name(());

        impl $name {
            /// # Safety
            /// The CPU must support the features this token stands for, and the token must
            /// only be used inside code compiled with them enabled.
            #[inline(always)]
            pub(crate) unsafe fn new_unchecked() -> Self {
                $name(())
            }
        }

        impl Simd for $name {
            type V = __m256;
            #[inline(always)]
            fn zero(self) -> __m256 {
                // SAFETY: the token proves AVX (see `new_unchecked`).
                unsafe { _mm256_setzero_ps() }
            }
            #[inline(always)]
            fn splat(self, x: f32) -> __m256 {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_set1_ps(x) }
            }
            #[inline(always)]
            unsafe fn load(self, p: *const f32) -> __m256 {
                // SAFETY: AVX proven by the token; 8 readable f32 guaranteed by the caller.
                unsafe { _mm256_loadu_ps(p) }
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut f32, v: __m256) {
                // SAFETY: AVX proven by the token; 8 writable f32 guaranteed by the caller.
                unsafe { _mm256_storeu_ps(p, v) }
            }
            #[inline(always)]
            unsafe fn bcast(self, p: *const f32) -> __m256 {
                // SAFETY: AVX proven by the token; one readable f32 guaranteed by the caller.
                unsafe { _mm256_broadcast_ss(&*p) }
            }
            #[inline(always)]
            fn add(self, a: __m256, b: __m256) -> __m256 {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_add_ps(a, b) }
            }
            #[inline(always)]
            fn mul(self, a: __m256, b: __m256) -> __m256 {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_mul_ps(a, b) }
            }
            #[inline(always)]
            fn max(self, a: __m256, b: __m256) -> __m256 {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_max_ps(a, b) }
            }
            #[inline(always)]
            fn min(self, a: __m256, b: __m256) -> __m256 {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_min_ps(a, b) }
            }
            #[inline(always)]
            fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
                // SAFETY: the token proves FMA.
                unsafe { _mm256_fmadd_ps(a, b, c) }
            }
            #[inline(always)]
            fn div(self, a: __m256, b: __m256) -> __m256 {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_div_ps(a, b) }
            }
            #[inline(always)]
            fn pow2_neg_rounded(self, t: __m256) -> __m256 {
                // SAFETY: the token proves AVX2.
                unsafe {
                    let n = _mm256_slli_epi32::<23>(_mm256_castps_si256(t));
                    _mm256_castsi256_ps(_mm256_sub_epi32(_mm256_set1_epi32(127 << 23), n))
                }
            }
            #[inline(always)]
            fn pow2i(self, n: __m256) -> __m256 {
                // SAFETY: the token proves AVX2. `n` holds integers, so the rounding mode of
                // `cvtps2dq` does not matter.
                unsafe {
                    let e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
                    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
                }
            }
            #[inline(always)]
            fn sqrt(self, a: __m256) -> __m256 {
                // SAFETY: the token proves AVX (`vsqrtps` is correctly rounded).
                unsafe { _mm256_sqrt_ps(a) }
            }
            #[inline(always)]
            fn and(self, a: __m256, b: __m256) -> __m256 {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_and_ps(a, b) }
            }
            #[inline(always)]
            fn transpose_sum(self, v: [__m256; 8]) -> __m256 {
                // SAFETY: the token proves AVX. `hadd(a, b)` = [a01 a23 b01 b23 | a45 a67 b45
                // b67] (pair sums), so two rounds give [v0 v1 v2 v3 | v0 v1 v2 v3] partial
                // sums of lanes 0..4 (low half) and 4..8 (high half); the cross-half permutes
                // line the halves up for the last add.
                unsafe {
                    let h01 = _mm256_hadd_ps(v[0], v[1]);
                    let h23 = _mm256_hadd_ps(v[2], v[3]);
                    let h45 = _mm256_hadd_ps(v[4], v[5]);
                    let h67 = _mm256_hadd_ps(v[6], v[7]);
                    let q0 = _mm256_hadd_ps(h01, h23);
                    let q1 = _mm256_hadd_ps(h45, h67);
                    let lo = _mm256_permute2f128_ps::<0x20>(q0, q1);
                    let hi = _mm256_permute2f128_ps::<0x31>(q0, q1);
                    _mm256_add_ps(lo, hi)
                }
            }
        }
    };
}

ymm_token!(
    /// Proves AVX2 + FMA.
    Avx2
);
ymm_token!(
    /// Proves AVX2 + FMA + AVX-512F + AVX-512VL.
    Avx512
);
ymm_token!(
    /// Proves AVX2 + FMA + AVX-512F/VL/BW + AVX-512 VNNI (the int8 kernels' `vpdpbusd` path).
    Vnni
);
ymm_token!(
    /// Proves AVX2 + FMA + AVX-VNNI (the int8 kernels' ymm `vpdpbusd` without AVX-512).
    #[cfg_attr(miri, allow(dead_code))]
    AvxVnni
);

super::wide_as_pair!(Avx2, "avx,avx2,fma");
super::wide_as_pair!(AvxVnni, "avx,avx2,fma,avxvnni");

/// Two blocks in one zmm register: the pointwise tile's multiply-adds run 16 lanes wide.
impl super::Wide for Avx512 {
    type P = __m512;
    super::transcendental_tile!(Avx512, "avx,avx2,fma,avx512f,avx512vl");
    #[inline(always)]
    fn pzero(self) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn pload(self, p: *const f32) -> __m512 {
        // SAFETY: AVX-512F proven by the token; 16 readable f32 guaranteed by the caller.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn pbcast(self, p: *const f32) -> __m512 {
        // SAFETY: AVX-512F proven by the token; one readable f32 guaranteed by the caller.
        unsafe { _mm512_set1_ps(*p) }
    }
    #[inline(always)]
    fn pfma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn pload2(self, lo: *const f32, hi: *const f32) -> __m512 {
        // SAFETY: AVX-512F proven by the token; 8 readable f32 at each pointer guaranteed by
        // the caller (one load, and one load folded into the insert).
        unsafe {
            let l = _mm512_castps256_ps512(_mm256_loadu_ps(lo));
            let h = _mm256_castps_pd(_mm256_loadu_ps(hi));
            _mm512_castpd_ps(_mm512_insertf64x4::<1>(_mm512_castps_pd(l), h))
        }
    }
    #[inline(always)]
    fn halves(self, p: __m512) -> [__m256; 2] {
        // SAFETY: the token proves AVX-512F; the cast is free, the extract one shuffle.
        unsafe {
            [
                _mm512_castps512_ps256(p),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(p))),
            ]
        }
    }
    #[inline(always)]
    fn pjoin(self, lo: __m256, hi: __m256) -> __m512 {
        // SAFETY: the token proves AVX-512F; a free cast and one insert.
        unsafe {
            _mm512_castpd_ps(_mm512_insertf64x4::<1>(
                _mm512_castpd256_pd512(_mm256_castps_pd(lo)),
                _mm256_castps_pd(hi),
            ))
        }
    }
    #[inline(always)]
    fn ptranscendental<const KIND: u8>(self, p: __m512) -> __m512 {
        use super::math::by_kind;
        // Miri has no 512-bit `vmaxps`/`vminps`: there the halves take the ymm forms (the same
        // arithmetic per lane, so the same bits) and the rest of the zmm tile stays under test.
        #[cfg(miri)]
        {
            let [lo, hi] = self.halves(p);
            let (lo, hi) = (by_kind::<_, KIND>(self, lo), by_kind::<_, KIND>(self, hi));
            super::Wide::pjoin(self, lo, hi)
        }
        #[cfg(not(miri))]
        by_kind::<_, KIND>(Zmm(self), p)
    }
}

/// The lane operations of `arch::math` on a whole zmm register (16 lanes), for
/// [`super::Wide::ptranscendental`]; each is the ymm token's operation of the same name, 16 lanes wide.
#[derive(Clone, Copy)]
#[cfg_attr(miri, allow(dead_code))]
struct Zmm(Avx512);

impl super::math::Lanes for Zmm {
    type L = __m512;
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: the token inside proves AVX-512F.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token inside proves AVX-512F.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token inside proves AVX-512F.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token inside proves AVX-512F. `vmaxps` returns its second operand when
        // either is NaN, as the ymm form (the NaN rule of `arch::math`).
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token inside proves AVX-512F; NaN as `max`.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the token inside proves AVX-512F.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token inside proves AVX-512F.
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn pow2i(self, n: __m512) -> __m512 {
        // SAFETY: the token inside proves AVX-512F; `n` holds integers (see the ymm form).
        unsafe {
            let e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e))
        }
    }
    #[inline(always)]
    fn pow2_neg_rounded(self, t: __m512) -> __m512 {
        // SAFETY: the token inside proves AVX-512F.
        unsafe {
            let n = _mm512_slli_epi32::<23>(_mm512_castps_si512(t));
            _mm512_castsi512_ps(_mm512_sub_epi32(_mm512_set1_epi32(127 << 23), n))
        }
    }
}

/// The `QSimd` operations every x86 token shares; `$dot` and `$store` differ.
macro_rules! qsimd_impl {
    ($name:ident, $x:ty, $xbcast:expr, $dot:expr, $store:expr, $lut:path) => {
        impl super::QSimd for $name {
            #[inline(always)]
            unsafe fn lut_u8(self, lut: &[u8; 256], src: *const u8, dst: *mut u8, n: usize) {
                // SAFETY: forwarded.
                unsafe { $lut(lut, src, dst, n) }
            }
            type I = __m256i;
            type W = __m256i;
            type X = $x;
            #[inline(always)]
            fn isplat(self, x: i32) -> __m256i {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_set1_epi32(x) }
            }
            #[inline(always)]
            fn wzero(self) -> __m256i {
                // SAFETY: the token proves AVX.
                unsafe { _mm256_setzero_si256() }
            }
            #[inline(always)]
            unsafe fn iload(self, p: *const u8) -> __m256i {
                // SAFETY: AVX proven by the token; 32 readable bytes guaranteed by the caller.
                unsafe { _mm256_loadu_si256(p.cast()) }
            }
            #[inline(always)]
            unsafe fn wload(self, p: *const u8) -> __m256i {
                // SAFETY: as `iload`.
                unsafe { _mm256_loadu_si256(p.cast()) }
            }
            #[inline(always)]
            unsafe fn xbcast(self, p: *const u8) -> $x {
                // SAFETY: AVX2 proven by the token; 4 readable bytes guaranteed by the caller.
                unsafe {
                    let x = _mm256_set1_epi32(p.cast::<i32>().read_unaligned());
                    #[allow(clippy::redundant_closure_call)]
                    ($xbcast)(x)
                }
            }
            #[inline(always)]
            fn dot(self, acc: __m256i, x: $x, w: __m256i) -> __m256i {
                // SAFETY: the token proves the features the closure's intrinsics need.
                #[allow(clippy::redundant_closure_call)]
                unsafe {
                    ($dot)(acc, x, w)
                }
            }
            #[inline(always)]
            fn iadd(self, a: __m256i, b: __m256i) -> __m256i {
                // SAFETY: the token proves AVX2.
                unsafe { _mm256_add_epi32(a, b) }
            }
            #[inline(always)]
            fn to_f32(self, a: __m256i) -> __m256 {
                // SAFETY: the token proves AVX; MXCSR is at its default (round to nearest).
                unsafe { _mm256_cvtepi32_ps(a) }
            }
            #[inline(always)]
            fn round(self, v: __m256) -> __m256i {
                // SAFETY: the token proves AVX; `cvtps2dq` rounds per MXCSR, which Rust code
                // runs with at its default, round to nearest even.
                unsafe { _mm256_cvtps_epi32(v) }
            }
            #[inline(always)]
            unsafe fn load_u8(self, p: *const u8) -> __m256 {
                // SAFETY: AVX2 proven by the token; 8 readable bytes guaranteed by the caller.
                unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()))) }
            }
            /// Only the upper bound is applied in `f32` (so `cvtps2dq` never sees a value
            /// above `i32::MAX`); a value below `i32::MIN` converts to `i32::MIN`, still
            /// negative. Adding the zero point cannot wrap, the signed and unsigned saturating
            /// packs then map everything below 0 to 0, and `vpmaxub`/`vpminub` apply
            /// `[min, max]` inside `[0, 255]`: the bytes of the default formula.
            #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
            #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
            unsafe fn requant4_f32(
                self,
                p: *mut u8,
                acc: [__m256; 4],
                scale: __m256,
                c: super::Rq4<Self>,
            ) {
                // SAFETY: AVX2 proven by the token; 32 writable bytes guaranteed by the caller.
                unsafe {
                    let (hi, zp) = (c.hi, c.zp);
                    // A macro, not a closure: a closure body loses the kernel's target
                    // features and its intrinsics stop inlining.
                    macro_rules! q {
                        ($a:expr) => {{
                            let f = _mm256_min_ps(_mm256_mul_ps($a, scale), hi);
                            _mm256_add_epi32(_mm256_cvtps_epi32(f), zp)
                        }};
                    }
                    // Lanes: [r0 0..4, r1 0..4 | r0 4..8, r1 4..8] as i16, then bytes
                    // [r0 0..4 r1 0..4 r2 0..4 r3 0..4 | r0 4..8 ...]; vpermd puts each row's
                    // two dwords together.
                    let ab = _mm256_packs_epi32(q!(acc[0]), q!(acc[1]));
                    let cd = _mm256_packs_epi32(q!(acc[2]), q!(acc[3]));
                    let b = _mm256_packus_epi16(ab, cd);
                    let b =
                        _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                    // The packs saturate to 0 ..= 255: only bounds inside narrow it.
                    let mut b = b;
                    if c.min > 0 {
                        b = _mm256_max_epu8(b, _mm256_set1_epi8(c.min as i8));
                    }
                    if c.max < 255 {
                        b = _mm256_min_epu8(b, _mm256_set1_epi8(c.max as i8));
                    }
                    _mm256_storeu_si256(p.cast(), b);
                }
            }
            #[inline(always)]
            unsafe fn store_u8(self, p: *mut u8, a: __m256i) {
                // SAFETY: the token proves the closure's features; 8 writable bytes
                // guaranteed by the caller.
                #[allow(clippy::redundant_closure_call)]
                unsafe {
                    _mm_storel_epi64(p.cast(), ($store)(a))
                }
            }
        }
    };
}

/// `u8 * s8` dot products without VNNI. `vpmaddubsw` adds two `u8 * s8` products into an `i16`
/// with saturation, which `255 * -128 * 2` would hit; splitting each activation into its low
/// 7 bits and its top bit makes both halves exact (`127 * -128 * 2` and `128 * -128 * 2` fit),
/// then `vpmaddwd` by ones widens each half to `i32`: six instructions per 32 MACs, exact.
#[inline(always)]
unsafe fn split_x(x: __m256i) -> (__m256i, __m256i) {
    // SAFETY: called from AVX2 contexts only (the tokens' `xbcast`).
    unsafe {
        let lo = _mm256_and_si256(x, _mm256_set1_epi8(0x7f));
        (lo, _mm256_xor_si256(x, lo))
    }
}

#[inline(always)]
unsafe fn dot_split(acc: __m256i, x: (__m256i, __m256i), w: __m256i) -> __m256i {
    // SAFETY: AVX2 contexts only (the tokens' `dot`).
    unsafe {
        let ones = _mm256_set1_epi16(1);
        let lo = _mm256_madd_epi16(_mm256_maddubs_epi16(x.0, w), ones);
        let hi = _mm256_madd_epi16(_mm256_maddubs_epi16(x.1, w), ones);
        _mm256_add_epi32(acc, _mm256_add_epi32(lo, hi))
    }
}

/// 8 `i32` in `0 ..= 255` to 8 bytes in the low half of an xmm (AVX2: two packs).
#[inline(always)]
unsafe fn pack_avx2(a: __m256i) -> __m128i {
    // SAFETY: AVX2 contexts only.
    unsafe {
        let w = _mm_packus_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
        _mm_packus_epi16(w, w)
    }
}

qsimd_impl!(
    Avx2,
    (__m256i, __m256i),
    |x| split_x(x),
    |a, x, w| dot_split(a, x, w),
    |a| pack_avx2(a),
    super::lut_bytes
);
qsimd_impl!(
    AvxVnni,
    __m256i,
    |x| x,
    |a, x, w| _mm256_dpbusd_avx_epi32(a, x, w),
    |a| pack_avx2(a),
    super::lut_bytes
);
qsimd_impl!(
    Vnni,
    __m256i,
    |x| x,
    |a, x, w| _mm256_dpbusd_epi32(a, x, w),
    |a| pack_vnni(a),
    lut_vnni
);

/// [`super::QSimd::lut_u8`] for the `Vnni` token: `vpermi2b` when the CPU has AVX-512 VBMI
/// (Ice Lake and later, Zen 4), else one byte at a time. Miri implements no `vpermi2b`.
///
/// # Safety
/// As [`super::QSimd::lut_u8`].
#[inline(always)]
unsafe fn lut_vnni(lut: &[u8; 256], src: *const u8, dst: *mut u8, n: usize) {
    #[cfg(not(miri))]
    if crate::isa::x86_vbmi() {
        // SAFETY: VBMI (and with it AVX-512F/BW) detected just above; extents forwarded.
        return unsafe { lut_vbmi(lut, src, dst, n) };
    }
    // SAFETY: forwarded.
    unsafe { super::lut_bytes(lut, src, dst, n) }
}

/// A 256-byte table in four zmm registers, looked up 64 bytes at a time: the table's lower
/// and upper halves each one `vpermi2b` (index bits 0-6), the index's top bit picks between
/// them.
#[cfg(not(miri))]
#[derive(Clone, Copy)]
pub(crate) struct Lut512([__m512i; 4]);

#[cfg(not(miri))]
impl Lut512 {
    /// # Safety
    /// AVX-512F available.
    #[inline(always)]
    pub(crate) unsafe fn new(lut: &[u8; 256]) -> Lut512 {
        let t = lut.as_ptr();
        // SAFETY: four 64-byte loads of the 256-byte table; AVX-512F (caller).
        unsafe {
            Lut512([
                _mm512_loadu_si512(t.cast()),
                _mm512_loadu_si512(t.add(64).cast()),
                _mm512_loadu_si512(t.add(128).cast()),
                _mm512_loadu_si512(t.add(192).cast()),
            ])
        }
    }

    /// Each byte of `x` replaced by its table entry.
    /// # Safety
    /// AVX-512BW and VBMI available.
    #[inline(always)]
    pub(crate) unsafe fn look(&self, x: __m512i) -> __m512i {
        let [t0, t1, t2, t3] = self.0;
        // SAFETY: AVX-512BW/VBMI (caller).
        unsafe {
            let lo = _mm512_permutex2var_epi8(t0, x, t1);
            let hi = _mm512_permutex2var_epi8(t2, x, t3);
            _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi)
        }
    }
}

/// 64 bytes per step through [`Lut512`]; the tail goes through masked loads and stores.
///
/// # Safety
/// AVX-512F, BW and VBMI available; extents as [`super::QSimd::lut_u8`].
#[cfg(not(miri))]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn lut_vbmi(lut: &[u8; 256], src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: `i + 64 <= n` (or the masked tail's `n - i` bytes) stays inside both extents;
    // the features are the caller's obligation.
    unsafe {
        let t = Lut512::new(lut);
        let mut i = 0;
        while i + 64 <= n {
            let y = t.look(_mm512_loadu_si512(src.add(i).cast()));
            _mm512_storeu_si512(dst.add(i).cast(), y);
            i += 64;
        }
        if i < n {
            let k: __mmask64 = (1u64 << (n - i)) - 1;
            let y = t.look(_mm512_maskz_loadu_epi8(k, src.add(i).cast()));
            _mm512_mask_storeu_epi8(dst.add(i).cast(), k, y);
        }
    }
}

super::qwide_as_pair!(Avx2);
super::qwide_as_pair!(AvxVnni);

/// Two blocks per zmm `vpdpbusd`. Miri implements no 512-bit `vpdpbusd`: under Miri the
/// `Vnni` token pairs ymm blocks instead (the same integers).
#[cfg(not(miri))]
impl super::QWide for Vnni {
    type IP = __m512i;
    type WP = __m512i;
    type XP = __m512i;
    #[inline(always)]
    unsafe fn ipload(self, p: *const u8) -> __m512i {
        // SAFETY: AVX-512F proven by the token; 64 readable bytes guaranteed by the caller.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }
    #[inline(always)]
    unsafe fn wpload(self, p: *const u8) -> __m512i {
        // SAFETY: as `ipload`.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }
    #[inline(always)]
    unsafe fn xpbcast(self, p: *const u8) -> __m512i {
        // SAFETY: AVX-512F proven by the token; 4 readable bytes guaranteed by the caller.
        unsafe { _mm512_set1_epi32(p.cast::<i32>().read_unaligned()) }
    }
    #[inline(always)]
    fn pdot(self, acc: __m512i, x: __m512i, w: __m512i) -> __m512i {
        // SAFETY: the token proves AVX-512 VNNI.
        unsafe { _mm512_dpbusd_epi32(acc, x, w) }
    }
    #[inline(always)]
    fn ihalves(self, a: __m512i) -> [__m256i; 2] {
        // SAFETY: the token proves AVX-512F.
        unsafe { [_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64::<1>(a)] }
    }
    #[inline(always)]
    fn ijoin(self, a: [__m256i; 2]) -> __m512i {
        join(a[0], a[1])
    }
    /// The operations of [`super::QSimd::requant4_f32`] on zmm registers: with 512-bit
    /// `vpdpbusd` in flight only ports 0 and 5 take vector operations, and 16 lanes per
    /// operation halve what the requantization takes of them.
    #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
    #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
    unsafe fn prequant4(
        self,
        y: [*mut u8; 2],
        acc: [__m512i; 4],
        scale: [__m256; 2],
        c: super::Rq4<Self>,
    ) {
        // SAFETY: AVX-512F/BW proven by the token; 32 writable bytes at each `y` guaranteed by
        // the caller.
        unsafe {
            let scale = join_ps(scale[0], scale[1]);
            let (hi, zp) = (join_ps(c.hi, c.hi), join(c.zp, c.zp));
            let q = |a: __m512i| requant16(a, scale, hi, zp);
            // 128-bit lane L (channels 4L' .. of block 2j + L / 2): bytes of pixels 0-3, 4
            // each, after the packs; vpermd gathers each block's 4 pixels x 8 channels.
            let w01 = _mm512_packs_epi32(q(acc[0]), q(acc[1]));
            let w23 = _mm512_packs_epi32(q(acc[2]), q(acc[3]));
            let b = _mm512_packus_epi16(w01, w23);
            let order = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
            let b = _mm512_permutexvar_epi32(order, b);
            // The packs saturate to 0 ..= 255: only bounds inside narrow it.
            let mut b = b;
            if c.min > 0 {
                b = _mm512_max_epu8(b, _mm512_set1_epi8(c.min as i8));
            }
            if c.max < 255 {
                b = _mm512_min_epu8(b, _mm512_set1_epi8(c.max as i8));
            }
            _mm256_storeu_si256(y[0].cast(), _mm512_castsi512_si256(b));
            _mm256_storeu_si256(y[1].cast(), _mm512_extracti64x4_epi64::<1>(b));
        }
    }
}
#[cfg(miri)]
super::qwide_as_pair!(Vnni);

/// `lo` and `hi` as the halves of one zmm.
#[cfg(not(miri))]
#[inline(always)]
pub(crate) fn join(lo: __m256i, hi: __m256i) -> __m512i {
    // SAFETY: only called from AVX-512F contexts (the `Vnni` token's paths).
    unsafe { _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi) }
}

/// [`join`] of `f32` lanes.
#[cfg(not(miri))]
#[inline(always)]
pub(crate) fn join_ps(lo: __m256, hi: __m256) -> __m512 {
    // SAFETY: as `join` (the casts are free).
    unsafe { _mm512_castsi512_ps(join(_mm256_castps_si256(lo), _mm256_castps_si256(hi))) }
}

/// The lane arithmetic of [`super::QSimd::requant4_f32`] 16 lanes wide:
/// `round(min(f32(a) * scale, hi)) + zp` as `i32` (the packs after it saturate).
#[cfg(not(miri))]
#[inline(always)]
pub(crate) fn requant16(a: __m512i, scale: __m512, hi: __m512, zp: __m512i) -> __m512i {
    // SAFETY: only called from AVX-512F contexts; MXCSR at its default (round to nearest).
    unsafe {
        let f = _mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(a), scale), hi);
        _mm512_add_epi32(_mm512_cvtps_epi32(f), zp)
    }
}

/// 8 `i32` in `0 ..= 255` to 8 bytes in the low half of an xmm (AVX-512VL: one down-convert).
#[inline(always)]
unsafe fn pack_vnni(a: __m256i) -> __m128i {
    // SAFETY: AVX-512VL contexts only (the `Vnni` token's `store_u8`).
    #[cfg(not(miri))]
    unsafe {
        _mm256_cvtepi32_epi8(a)
    }
    // Miri implements no AVX-512 down-conversion (`vpmovdb`); for lanes in `0 ..= 255` (the
    // caller's contract) the AVX2 packs store the same bytes, so the rest of the VNNI path
    // still runs under Miri (`--cfg ghost_miri_simd`).
    // SAFETY: AVX2 is implied by the `Vnni` token.
    #[cfg(miri)]
    unsafe {
        pack_avx2(a)
    }
}
