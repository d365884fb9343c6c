//! The int8 elementwise passes 16 lanes wide, for x86 with AVX-512F/BW: the residual add and
//! SE channel scale of [`crate::kernels::qbinary`], and the quantize, dequantize and
//! quantize-dequantize round trip of [`crate::kernels::quantize`], and the image rows of the
//! stem's padded quantization ([`crate::kernels::qstem`]). Each is the 8-lane body's
//! operations in the same order on zmm registers, so the bytes (and floats) are the same.
//!
//! Why: the add and scale are a dozen vector operations per 8 bytes (widen, convert,
//! dequantize two inputs, add or multiply, divide, clamp, round, pack), so the 8-lane body is
//! bound by the vector ports, not by memory; one zmm operation does the work of two ymm ones on
//! cores with 512-bit units. Measured (`ghost-bench --int8 --filter qadd --filter qscale`, one core of a
//! Zen 5 EPYC, median us, 8 lanes -> 16): add c16 @112 32.6 -> 17.0, c672 @14 21.5 -> 11.3;
//! channel scale c16 @112 28.0 -> 14.8, c672 @14 18.4 -> 9.7; quantize c16 @112 18.7 -> 8.9,
//! c672 @14 12.3 -> 5.8. Without the division the 8-lane add and scale were only 11-18 %
//! faster: the other operations bound them.
//!
//! A vector count that is odd ends the add, scale and dequantize with one 8-lane vector run
//! through the zmm code with its upper half zero and only its 8 lanes stored; the quantize
//! passes and the round trip end with masked loads and stores.
//!
//! Deliberately not done here: the division stays (`vdivps` is what makes the bytes the QDQ
//! graph's; a reciprocal would differ near ties).

use core::arch::x86_64::*;

use crate::kernels::qbinary::{QAddArgs, QScaleArgs, U8BinaryParams};
use crate::kernels::qstem::QuantRows;
use crate::kernels::quantize::{FakeArgs, QuantArgs};

/// `f32(q - zp) * scale` of 16 bytes, `nzp = -zp`: the 8-lane bodies' dequantization.
/// # Safety
/// AVX-512F.
#[inline(always)]
unsafe fn dequantize16(q: __m128i, scale: __m512, nzp: __m512) -> __m512 {
    // SAFETY: AVX-512F (caller).
    unsafe {
        let v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q));
        _mm512_mul_ps(_mm512_add_ps(v, nzp), scale)
    }
}

/// `round(clamp(v / scale, lo, hi))` as `i32`, `[lo, hi] = [-zp, 255 - zp]`: the 8-lane
/// bodies' quantization before the zero point (NaN gives `lo`).
/// # Safety
/// AVX-512F.
#[inline(always)]
unsafe fn round16(v: __m512, scale: __m512, lo: __m512, hi: __m512) -> __m512i {
    // SAFETY: AVX-512F (caller); MXCSR at its default (round to nearest even).
    unsafe {
        _mm512_cvtps_epi32(_mm512_min_ps(
            _mm512_max_ps(_mm512_div_ps(v, scale), lo),
            hi,
        ))
    }
}

/// [`round16`] plus the zero point `zp`, as 16 bytes: the clamp keeps the sum in 0 ..= 255,
/// so the truncating down-convert is exact.
/// # Safety
/// AVX-512F.
#[inline(always)]
unsafe fn quantize16(v: __m512, scale: __m512, lo: __m512, hi: __m512, zp: __m512i) -> __m128i {
    // SAFETY: AVX-512F (caller).
    unsafe { _mm512_cvtepi32_epi8(_mm512_add_epi32(round16(v, scale, lo, hi), zp)) }
}

/// The parameters splatted once (the 8-lane `Lanes`, 16 wide).
struct Zl {
    a: (__m512, __m512),
    b: (__m512, __m512),
    sy: __m512,
    zy: __m512i,
    lo: __m512,
    hi: __m512,
}

impl Zl {
    /// # Safety
    /// AVX-512F.
    #[inline(always)]
    unsafe fn new(p: &U8BinaryParams) -> Zl {
        // SAFETY: AVX-512F (caller).
        unsafe {
            let neg = |z: u8| _mm512_set1_ps(-(z as f32));
            Zl {
                a: (_mm512_set1_ps(p.a.0), neg(p.a.1)),
                b: (_mm512_set1_ps(p.b.0), neg(p.b.1)),
                sy: _mm512_set1_ps(p.y.0),
                zy: _mm512_set1_epi32(p.y.1 as i32),
                lo: neg(p.y.1),
                hi: _mm512_set1_ps((255 - p.y.1 as i32) as f32),
            }
        }
    }

    /// `f32(q - zp) * scale` of 16 bytes (`(scale, -zp)` from `a` or `b`).
    /// # Safety
    /// AVX-512F.
    #[inline(always)]
    unsafe fn dequantize(&self, q: __m128i, (scale, nzp): (__m512, __m512)) -> __m512 {
        // SAFETY: AVX-512F (caller).
        unsafe { dequantize16(q, scale, nzp) }
    }

    /// `v` quantized with the output's parameters: 16 bytes.
    /// # Safety
    /// AVX-512F.
    #[inline(always)]
    unsafe fn quantize(&self, v: __m512) -> __m128i {
        // SAFETY: AVX-512F (caller).
        unsafe { quantize16(v, self.sy, self.lo, self.hi, self.zy) }
    }
}

/// 16 bytes at `p`, or 8 (upper half zero) when `full` is false.
/// # Safety
/// `p` valid for reading 16 bytes (8 when not `full`).
#[inline(always)]
unsafe fn load(p: *const u8, full: bool) -> __m128i {
    // SAFETY: forwarded; SSE2 is baseline.
    unsafe {
        if full {
            _mm_loadu_si128(p.cast())
        } else {
            _mm_loadl_epi64(p.cast())
        }
    }
}

/// # Safety
/// `p` valid for writing 16 bytes (8 when not `full`).
#[inline(always)]
unsafe fn store(p: *mut u8, v: __m128i, full: bool) {
    // SAFETY: forwarded; SSE2 is baseline.
    unsafe {
        if full {
            _mm_storeu_si128(p.cast(), v)
        } else {
            _mm_storel_epi64(p.cast(), v)
        }
    }
}

/// # Safety
/// AVX-512F/BW; `args` as `qbinary::run` requires.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn add(args: &QAddArgs) {
    // SAFETY: AVX-512F (this fn's features).
    let l = unsafe { Zl::new(&args.p) };
    let bytes = args.n * 8;
    let mut i = 0;
    // Two vectors per step (2-3 % faster than one: ghost-bench qadd c16 @112 17.0-17.1 ->
    // 16.6-16.7 us, c672 @14 11.2 -> 10.9).
    while i + 32 <= bytes {
        // SAFETY: bytes i .. i + 32 lie inside all three tensors.
        unsafe {
            let x = l.dequantize(load(args.a.add(i), true), l.a);
            let z = l.dequantize(load(args.b.add(i), true), l.b);
            let x2 = l.dequantize(load(args.a.add(i + 16), true), l.a);
            let z2 = l.dequantize(load(args.b.add(i + 16), true), l.b);
            store(args.y.add(i), l.quantize(_mm512_add_ps(x, z)), true);
            store(args.y.add(i + 16), l.quantize(_mm512_add_ps(x2, z2)), true);
        }
        i += 32;
    }
    while i < bytes {
        let full = i + 16 <= bytes;
        // SAFETY: bytes i .. i + 16 (or i + 8 at the end) lie inside all three tensors.
        unsafe {
            let x = l.dequantize(load(args.a.add(i), full), l.a);
            let z = l.dequantize(load(args.b.add(i), full), l.b);
            store(args.y.add(i), l.quantize(_mm512_add_ps(x, z)), full);
        }
        i += 16;
    }
}

/// # Safety
/// AVX-512F/BW; `args` as `qbinary::scale` requires.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn scale(args: &QScaleArgs) {
    // SAFETY: AVX-512F (this fn's features).
    let l = unsafe { Zl::new(&args.p) };
    let bytes = args.pixels * 8;
    for b in 0..args.blocks {
        // SAFETY: gate vector b < blocks, repeated for the two pixels of a zmm.
        let m = unsafe {
            let g = _mm_loadl_epi64(args.g.add(b * 8).cast());
            l.dequantize(_mm_unpacklo_epi64(g, g), l.b)
        };
        // SAFETY: block b's bytes start here (b < blocks).
        let (x, y) = unsafe { (args.x.add(b * bytes), args.y.add(b * bytes)) };
        let mut i = 0;
        // Two vectors per step, as in `add` (ghost-bench qscale c16 @112 14.1 -> 13.0-13.2 us,
        // c672 @14 9.3 -> 8.6-8.7).
        while i + 32 <= bytes {
            // SAFETY: bytes i .. i + 32 of block b of `x` and `y`.
            unsafe {
                let v = l.dequantize(load(x.add(i), true), l.a);
                let v2 = l.dequantize(load(x.add(i + 16), true), l.a);
                store(y.add(i), l.quantize(_mm512_mul_ps(v, m)), true);
                store(y.add(i + 16), l.quantize(_mm512_mul_ps(v2, m)), true);
            }
            i += 32;
        }
        while i < bytes {
            let full = i + 16 <= bytes;
            // SAFETY: bytes i .. i + 16 (or i + 8 at the end) of block b of `x` and `y`.
            unsafe {
                let v = l.dequantize(load(x.add(i), full), l.a);
                store(y.add(i), l.quantize(_mm512_mul_ps(v, m)), full);
            }
            i += 16;
        }
    }
}

/// # Safety
/// AVX-512F/BW; `a` as `quantize::run` requires.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn quant(a: &QuantArgs) {
    let len = a.n * 8;
    let mut i = 0;
    // SAFETY: (whole body) AVX-512F (this fn's features); lanes i .. i + 16 (or i + 8 at the
    // end) lie inside both views.
    unsafe {
        let scale = _mm512_set1_ps(a.scale);
        let zp = _mm512_set1_epi32(a.zp);
        if a.quantize {
            let (lo, hi) = (
                _mm512_set1_ps(-a.zp as f32),
                _mm512_set1_ps((255 - a.zp) as f32),
            );
            quantize_span(a.f, a.q, len, scale, lo, hi, zp);
        } else {
            let nzp = _mm512_set1_ps(-a.zp as f32);
            while i < len {
                let full = i + 16 <= len;
                let f = dequantize16(load(a.q.add(i), full), scale, nzp);
                if full {
                    _mm512_storeu_ps(a.f.add(i), f);
                } else {
                    _mm256_storeu_ps(a.f.add(i), _mm512_castps512_ps256(f));
                }
                i += 16;
            }
        }
    }
}

/// The image rows of `qstem`'s padded quantization: each row 16 floats at a time, its tail
/// through masked loads and stores (one call per plane, where the 8-lane body went through a
/// call and a copied tail per row).
/// # Safety
/// AVX-512F/BW; `a`'s rows valid (`rows` rows of `w` floats `w` apart, of `w` bytes
/// `stride` apart).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn quant_rows(a: &QuantRows) {
    // SAFETY: (whole body) AVX-512F/BW (this fn's features); row r's `w` floats and `w`
    // bytes lie inside the rows the caller names.
    unsafe {
        let scale = _mm512_set1_ps(a.scale);
        let zp = _mm512_set1_epi32(a.zp);
        let (lo, hi) = (
            _mm512_set1_ps(-a.zp as f32),
            _mm512_set1_ps((255 - a.zp) as f32),
        );
        for r in 0..a.rows {
            quantize_span(
                a.f.add(r * a.w),
                a.q.add(r * a.stride),
                a.w,
                scale,
                lo,
                hi,
                zp,
            );
        }
    }
}

/// `len` floats at `f` quantized into the bytes at `q` ([`quantize16`]), 16 at a time, the
/// tail through masked loads and stores.
/// # Safety
/// AVX-512F/BW; `f` valid for reading `len` floats, `q` for writing `len` bytes.
#[inline(always)]
unsafe fn quantize_span(
    f: *const f32,
    q: *mut u8,
    len: usize,
    scale: __m512,
    lo: __m512,
    hi: __m512,
    zp: __m512i,
) {
    let mut i = 0;
    // SAFETY: (whole body) AVX-512F/BW (caller); lanes `i .. i + 16`, masked to `len`, lie
    // inside both spans.
    unsafe {
        while i + 16 <= len {
            let v = _mm512_loadu_ps(f.add(i));
            _mm_storeu_si128(q.add(i).cast(), quantize16(v, scale, lo, hi, zp));
            i += 16;
        }
        if i < len {
            let k: __mmask16 = (1 << (len - i)) - 1;
            let v = _mm512_maskz_loadu_ps(k, f.add(i));
            _mm_mask_storeu_epi8(q.add(i).cast(), k, quantize16(v, scale, lo, hi, zp));
        }
    }
}

/// # Safety
/// AVX-512F/BW; `a` as `quantize::fake` requires.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn fake(a: &FakeArgs) {
    let mut i = 0;
    // SAFETY: (whole body) AVX-512F (this fn's features); the masked lanes of i .. i + 16 lie
    // inside both slices.
    unsafe {
        let scale = _mm512_set1_ps(a.scale);
        let (lo, hi) = (
            _mm512_set1_ps(-a.zp as f32),
            _mm512_set1_ps((255 - a.zp) as f32),
        );
        while i < a.len {
            let k: __mmask16 = if i + 16 <= a.len {
                0xffff
            } else {
                (1 << (a.len - i)) - 1
            };
            let v = _mm512_maskz_loadu_ps(k, a.x.add(i));
            let r = _mm512_mul_ps(_mm512_cvtepi32_ps(round16(v, scale, lo, hi)), scale);
            _mm512_mask_storeu_ps(a.y.add(i), k, r);
            i += 16;
        }
    }
}

/// Runs `body` (one of this module's passes) on `args` when `k` is the AVX-512 path, whose
/// CPUs have the features the passes need, and returns true; false (nothing done) otherwise.
/// # Safety
/// `args` as the 8-lane body of the same pass requires.
pub(crate) unsafe fn try_run<A>(k: crate::isa::Kernels, args: &A, body: unsafe fn(&A)) -> bool {
    if !wide(k) {
        return false;
    }
    // SAFETY: `wide` confirmed the features; forwarded.
    unsafe { body(args) };
    true
}

/// The `Vnni` path's CPUs (AVX-512F/BW/VL among their features).
fn wide(k: crate::isa::Kernels) -> bool {
    k.isa() == crate::isa::Isa::Avx512 && crate::isa::x86_vnni()
}
