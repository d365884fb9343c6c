//! aarch64 NEON token: one channel block is a pair of q registers.

use super::Simd;
use core::arch::aarch64::*;

/// Proves NEON (baseline on aarch64 targets we build for).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(());

impl Neon {
    /// # Safety
    /// The CPU must support NEON.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Self {
        Neon(())
    }
}

/// Two q registers holding lanes 0..4 and 4..8.
#[derive(Clone, Copy)]
pub(crate) struct Q2(float32x4_t, float32x4_t);

impl Simd for Neon {
    type V = Q2;
    #[inline(always)]
    fn zero(self) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe { Q2(vdupq_n_f32(0.0), vdupq_n_f32(0.0)) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe { Q2(vdupq_n_f32(x), vdupq_n_f32(x)) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> Q2 {
        // SAFETY: NEON proven; 8 readable f32 guaranteed by the caller.
        unsafe { Q2(vld1q_f32(p), vld1q_f32(p.add(4))) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: Q2) {
        // SAFETY: NEON proven; 8 writable f32 guaranteed by the caller.
        unsafe {
            vst1q_f32(p, v.0);
            vst1q_f32(p.add(4), v.1);
        }
    }
    #[inline(always)]
    unsafe fn bcast(self, p: *const f32) -> Q2 {
        // SAFETY: NEON proven; one readable f32 guaranteed by the caller.
        unsafe {
            let x = vld1q_dup_f32(p);
            Q2(x, x)
        }
    }
    #[inline(always)]
    fn add(self, a: Q2, b: Q2) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe { Q2(vaddq_f32(a.0, b.0), vaddq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn mul(self, a: Q2, b: Q2) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe { Q2(vmulq_f32(a.0, b.0), vmulq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn max(self, a: Q2, b: Q2) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe { Q2(vmaxq_f32(a.0, b.0), vmaxq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn min(self, a: Q2, b: Q2) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe { Q2(vminq_f32(a.0, b.0), vminq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn fma(self, a: Q2, b: Q2, c: Q2) -> Q2 {
        // SAFETY: the token proves NEON. vfmaq_f32(c, a, b) = c + a * b, fused.
        unsafe { Q2(vfmaq_f32(c.0, a.0, b.0), vfmaq_f32(c.1, a.1, b.1)) }
    }
    #[inline(always)]
    fn div(self, a: Q2, b: Q2) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe { Q2(vdivq_f32(a.0, b.0), vdivq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn pow2_neg_rounded(self, t: Q2) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe {
            let b = vdupq_n_u32(127 << 23);
            let n0 = vshlq_n_u32::<23>(vreinterpretq_u32_f32(t.0));
            let n1 = vshlq_n_u32::<23>(vreinterpretq_u32_f32(t.1));
            Q2(
                vreinterpretq_f32_u32(vsubq_u32(b, n0)),
                vreinterpretq_f32_u32(vsubq_u32(b, n1)),
            )
        }
    }
    #[inline(always)]
    fn pow2i(self, n: Q2) -> Q2 {
        // SAFETY: the token proves NEON; `n` holds integers, so truncation is exact.
        unsafe {
            let b = vdupq_n_s32(127);
            let e0 = vaddq_s32(vcvtq_s32_f32(n.0), b);
            let e1 = vaddq_s32(vcvtq_s32_f32(n.1), b);
            Q2(
                vreinterpretq_f32_s32(vshlq_n_s32::<23>(e0)),
                vreinterpretq_f32_s32(vshlq_n_s32::<23>(e1)),
            )
        }
    }
    #[inline(always)]
    fn sqrt(self, a: Q2) -> Q2 {
        // SAFETY: the token proves NEON (`fsqrt` is correctly rounded).
        unsafe { Q2(vsqrtq_f32(a.0), vsqrtq_f32(a.1)) }
    }
    #[inline(always)]
    fn and(self, a: Q2, b: Q2) -> Q2 {
        // SAFETY: the token proves NEON.
        unsafe {
            let and = |a: float32x4_t, b: float32x4_t| {
                vreinterpretq_f32_u32(vandq_u32(
                    vreinterpretq_u32_f32(a),
                    vreinterpretq_u32_f32(b),
                ))
            };
            Q2(and(a.0, b.0), and(a.1, b.1))
        }
    }
    #[inline(always)]
    fn transpose_sum(self, v: [Q2; 8]) -> Q2 {
        // SAFETY: the token proves NEON. `vpaddq(a, b)` = [a0+a1, a2+a3, b0+b1, b2+b3]: the
        // halves' sum of each vector, then two rounds of pairwise sums.
        unsafe {
            let h = |i: usize| vaddq_f32(v[i].0, v[i].1);
            let quad =
                |i: usize| vpaddq_f32(vpaddq_f32(h(i), h(i + 1)), vpaddq_f32(h(i + 2), h(i + 3)));
            Q2(quad(0), quad(4))
        }
    }
}

super::wide_as_pair!(Neon);

/// 8 `i32` lanes as two q registers.
#[derive(Clone, Copy)]
pub(crate) struct I2(int32x4_t, int32x4_t);

/// 32 weight bytes: output channels 0..4 and 4..8, 4 `s8` each.
#[derive(Clone, Copy)]
pub(crate) struct B2(int8x16_t, int8x16_t);

super::qwide_as_pair!(Neon);

/// Plain NEON int8 (no `sdot`): `u8 * s8` fits `i16` (`255 * 128`), so one k-group of two
/// output channels is a widening of the weights, an `i16` multiply and a pairwise widening
/// add; two more pairwise adds reduce 4 channels to one `i32` each. Exact.
impl super::QSimd for Neon {
    type I = I2;
    type W = B2;
    type X = int16x8_t;
    #[inline(always)]
    fn isplat(self, x: i32) -> I2 {
        // SAFETY: the token proves NEON.
        unsafe { I2(vdupq_n_s32(x), vdupq_n_s32(x)) }
    }
    #[inline(always)]
    fn wzero(self) -> B2 {
        // SAFETY: the token proves NEON.
        unsafe { B2(vdupq_n_s8(0), vdupq_n_s8(0)) }
    }
    #[inline(always)]
    unsafe fn iload(self, p: *const u8) -> I2 {
        // SAFETY: NEON proven; 32 readable bytes guaranteed by the caller (byte loads have
        // no alignment requirement).
        unsafe {
            I2(
                vreinterpretq_s32_u8(vld1q_u8(p)),
                vreinterpretq_s32_u8(vld1q_u8(p.add(16))),
            )
        }
    }
    #[inline(always)]
    unsafe fn wload(self, p: *const u8) -> B2 {
        // SAFETY: as `iload`.
        unsafe {
            B2(
                vreinterpretq_s8_u8(vld1q_u8(p)),
                vreinterpretq_s8_u8(vld1q_u8(p.add(16))),
            )
        }
    }
    #[inline(always)]
    unsafe fn xbcast(self, p: *const u8) -> int16x8_t {
        // SAFETY: NEON proven; 4 readable bytes guaranteed by the caller.
        unsafe {
            let x = vreinterpret_u8_u32(vdup_n_u32(p.cast::<u32>().read_unaligned()));
            vreinterpretq_s16_u16(vmovl_u8(x))
        }
    }
    #[inline(always)]
    fn dot(self, acc: I2, x: int16x8_t, w: B2) -> I2 {
        // SAFETY: the token proves NEON.
        unsafe {
            let quad = |w: int8x16_t| {
                // [c0 k0..4, c1 k0..4] and [c2 .., c3 ..] as exact i16 products.
                let p01 = vmulq_s16(vmovl_s8(vget_low_s8(w)), x);
                let p23 = vmulq_s16(vmovl_high_s8(w), x);
                // [c0 k01, c0 k23, c1 k01, c1 k23] -> [c0, c1, c2, c3].
                vpaddq_s32(vpaddlq_s16(p01), vpaddlq_s16(p23))
            };
            I2(vaddq_s32(acc.0, quad(w.0)), vaddq_s32(acc.1, quad(w.1)))
        }
    }
    #[inline(always)]
    fn iadd(self, a: I2, b: I2) -> I2 {
        // SAFETY: the token proves NEON.
        unsafe { I2(vaddq_s32(a.0, b.0), vaddq_s32(a.1, b.1)) }
    }
    #[inline(always)]
    fn to_f32(self, a: I2) -> Q2 {
        // SAFETY: the token proves NEON (round to nearest, FPCR default).
        unsafe { Q2(vcvtq_f32_s32(a.0), vcvtq_f32_s32(a.1)) }
    }
    #[inline(always)]
    fn round(self, v: Q2) -> I2 {
        // SAFETY: the token proves NEON; vcvtn rounds to nearest, ties to even.
        unsafe { I2(vcvtnq_s32_f32(v.0), vcvtnq_s32_f32(v.1)) }
    }
    #[inline(always)]
    fn clamp(self, v: Q2, lo: Q2, hi: Q2) -> Q2 {
        // SAFETY: the token proves NEON. `vmaxnm` returns the number when `v` is NaN (the
        // trait's NaN -> lo), unlike `vmax`.
        unsafe {
            Q2(
                vminq_f32(vmaxnmq_f32(v.0, lo.0), hi.0),
                vminq_f32(vmaxnmq_f32(v.1, lo.1), hi.1),
            )
        }
    }
    #[inline(always)]
    unsafe fn load_u8(self, p: *const u8) -> Q2 {
        // SAFETY: NEON proven; 8 readable bytes guaranteed by the caller.
        unsafe {
            let h = vmovl_u8(vld1_u8(p));
            Q2(
                vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))),
                vcvtq_f32_u32(vmovl_high_u16(h)),
            )
        }
    }
    #[inline(always)]
    unsafe fn store_u8(self, p: *mut u8, a: I2) {
        // SAFETY: NEON proven; 8 writable bytes guaranteed by the caller.
        unsafe {
            let h = vcombine_u16(vqmovun_s32(a.0), vqmovun_s32(a.1));
            vst1_u8(p, vqmovn_u16(h));
        }
    }
}
