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
}
