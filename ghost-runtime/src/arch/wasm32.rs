//! wasm32 SIMD128 token: one channel block is a pair of `v128` (lanes 0..4 and 4..8).
//!
//! SIMD128 has no fused multiply-add (relaxed SIMD's `relaxed_madd` may or may not fuse, and
//! node 20 does not enable it by default), so `fma` is a multiply then an add, rounded twice,
//! exactly like the scalar reference: results equal the scalar path's bit for bit. `max`/`min`
//! use the pseudo-min/max instructions (`b < a ? a : b`), which compile to one `maxps`/`minps`
//! on x86 hosts and match the scalar path's comparison, NaN handling included.

use super::Simd;
use core::arch::wasm32::*;

/// Proves SIMD128 (a compile-time property of the module: an engine without it rejects the
/// whole module at load time).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Simd128(());

impl Simd128 {
    /// # Safety
    /// The module must be compiled with `target_feature = "simd128"`.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Self {
        Simd128(())
    }
}

/// Two `v128` holding lanes 0..4 and 4..8.
#[derive(Clone, Copy)]
pub(crate) struct W2(v128, v128);

impl Simd for Simd128 {
    type V = W2;
    #[inline(always)]
    fn zero(self) -> W2 {
        W2(f32x4_splat(0.0), f32x4_splat(0.0))
    }
    #[inline(always)]
    fn splat(self, x: f32) -> W2 {
        W2(f32x4_splat(x), f32x4_splat(x))
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> W2 {
        // SAFETY: 8 readable f32 guaranteed by the caller; v128_load has no alignment
        // requirement.
        unsafe { W2(v128_load(p.cast()), v128_load(p.add(4).cast())) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: W2) {
        // SAFETY: 8 writable f32 guaranteed by the caller; no alignment requirement.
        unsafe {
            v128_store(p.cast(), v.0);
            v128_store(p.add(4).cast(), v.1);
        }
    }
    #[inline(always)]
    unsafe fn bcast(self, p: *const f32) -> W2 {
        // SAFETY: one readable f32 guaranteed by the caller.
        let x = unsafe { v128_load32_splat(p.cast()) };
        W2(x, x)
    }
    #[inline(always)]
    fn add(self, a: W2, b: W2) -> W2 {
        W2(f32x4_add(a.0, b.0), f32x4_add(a.1, b.1))
    }
    #[inline(always)]
    fn mul(self, a: W2, b: W2) -> W2 {
        W2(f32x4_mul(a.0, b.0), f32x4_mul(a.1, b.1))
    }
    #[inline(always)]
    fn max(self, a: W2, b: W2) -> W2 {
        // pmax(b, a) = b < a ? a : b, the scalar path's `a > b ? a : b`.
        W2(f32x4_pmax(b.0, a.0), f32x4_pmax(b.1, a.1))
    }
    #[inline(always)]
    fn min(self, a: W2, b: W2) -> W2 {
        // pmin(b, a) = a < b ? a : b, the scalar path's `a < b ? a : b`.
        W2(f32x4_pmin(b.0, a.0), f32x4_pmin(b.1, a.1))
    }
    #[inline(always)]
    fn fma(self, a: W2, b: W2, c: W2) -> W2 {
        // Unfused, as the scalar reference (see the module docs).
        self.add(self.mul(a, b), c)
    }
    #[inline(always)]
    fn div(self, a: W2, b: W2) -> W2 {
        W2(f32x4_div(a.0, b.0), f32x4_div(a.1, b.1))
    }
    #[inline(always)]
    fn pow2_neg_rounded(self, t: W2) -> W2 {
        let b = i32x4_splat(127 << 23);
        W2(
            i32x4_sub(b, i32x4_shl(t.0, 23)),
            i32x4_sub(b, i32x4_shl(t.1, 23)),
        )
    }
    #[inline(always)]
    fn pow2i(self, n: W2) -> W2 {
        // Saturating truncation, as the scalar path's `as i32`; exact on integers.
        let b = i32x4_splat(127);
        W2(
            i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n.0), b), 23),
            i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n.1), b), 23),
        )
    }
    #[inline(always)]
    fn sqrt(self, a: W2) -> W2 {
        // Correctly rounded, as the scalar path's.
        W2(f32x4_sqrt(a.0), f32x4_sqrt(a.1))
    }
    #[inline(always)]
    fn and(self, a: W2, b: W2) -> W2 {
        W2(v128_and(a.0, b.0), v128_and(a.1, b.1))
    }
    #[inline(always)]
    fn transpose_sum(self, v: [W2; 8]) -> W2 {
        // The halves' sum of each vector, then two rounds of pairwise sums ([a0+a1, a2+a3,
        // b0+b1, b2+b3] from two shuffles and an add): the scalar path's order.
        let pair = |a: v128, b: v128| {
            f32x4_add(
                i32x4_shuffle::<0, 2, 4, 6>(a, b),
                i32x4_shuffle::<1, 3, 5, 7>(a, b),
            )
        };
        let h = |i: usize| f32x4_add(v[i].0, v[i].1);
        let quad = |i: usize| pair(pair(h(i), h(i + 1)), pair(h(i + 2), h(i + 3)));
        W2(quad(0), quad(4))
    }
}

super::wide_as_pair!(Simd128);

/// 8 `i32` lanes, or 32 bytes, as two `v128`.
#[derive(Clone, Copy)]
pub(crate) struct I2(v128, v128);

super::qwide_as_pair!(Simd128);

/// SIMD128 int8: `u8 * s8` fits `i16`, so `i32x4.dot_i16x8` of the widened activations and
/// weights gives two k-pairs per channel exactly; two shuffles and an add finish 4 channels.
impl super::QSimd for Simd128 {
    type I = I2;
    type W = I2;
    type X = v128;
    #[inline(always)]
    fn isplat(self, x: i32) -> I2 {
        I2(i32x4_splat(x), i32x4_splat(x))
    }
    #[inline(always)]
    fn wzero(self) -> I2 {
        I2(i32x4_splat(0), i32x4_splat(0))
    }
    #[inline(always)]
    unsafe fn iload(self, p: *const u8) -> I2 {
        // SAFETY: 32 readable bytes guaranteed by the caller; no alignment requirement.
        unsafe { I2(v128_load(p.cast()), v128_load(p.add(16).cast())) }
    }
    #[inline(always)]
    unsafe fn wload(self, p: *const u8) -> I2 {
        // SAFETY: as `iload`.
        unsafe { I2(v128_load(p.cast()), v128_load(p.add(16).cast())) }
    }
    #[inline(always)]
    unsafe fn xbcast(self, p: *const u8) -> v128 {
        // SAFETY: 4 readable bytes guaranteed by the caller.
        u16x8_extend_low_u8x16(unsafe { v128_load32_splat(p.cast()) })
    }
    #[inline(always)]
    fn dot(self, acc: I2, x: v128, w: I2) -> I2 {
        let quad = |w: v128| {
            // [c0 k01, c0 k23, c1 k01, c1 k23] and the same for c2, c3.
            let a = i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), x);
            let b = i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), x);
            i32x4_add(
                i32x4_shuffle::<0, 2, 4, 6>(a, b),
                i32x4_shuffle::<1, 3, 5, 7>(a, b),
            )
        };
        I2(i32x4_add(acc.0, quad(w.0)), i32x4_add(acc.1, quad(w.1)))
    }
    #[inline(always)]
    fn iadd(self, a: I2, b: I2) -> I2 {
        I2(i32x4_add(a.0, b.0), i32x4_add(a.1, b.1))
    }
    #[inline(always)]
    fn to_f32(self, a: I2) -> W2 {
        W2(f32x4_convert_i32x4(a.0), f32x4_convert_i32x4(a.1))
    }
    #[inline(always)]
    fn round(self, v: W2) -> I2 {
        // `nearest` rounds ties to even; the value is then an exact small integer.
        I2(
            i32x4_trunc_sat_f32x4(f32x4_nearest(v.0)),
            i32x4_trunc_sat_f32x4(f32x4_nearest(v.1)),
        )
    }
    #[inline(always)]
    unsafe fn load_u8(self, p: *const u8) -> W2 {
        // SAFETY: 8 readable bytes guaranteed by the caller.
        let h = u16x8_extend_low_u8x16(unsafe { v128_load64_zero(p.cast()) });
        W2(
            f32x4_convert_u32x4(u32x4_extend_low_u16x8(h)),
            f32x4_convert_u32x4(u32x4_extend_high_u16x8(h)),
        )
    }
    #[inline(always)]
    unsafe fn store_u8(self, p: *mut u8, a: I2) {
        let h = i16x8_narrow_i32x4(a.0, a.1);
        // SAFETY: 8 writable bytes guaranteed by the caller.
        unsafe { v128_store64_lane::<0>(u8x16_narrow_i16x8(h, h), p.cast()) };
    }
}
