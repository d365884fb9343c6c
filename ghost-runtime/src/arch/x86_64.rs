//! x86_64 tokens. Both operate on ymm (`__m256`) registers: on Zen 4, zmm brings no extra FMA
//! throughput, while AVX-512VL gives ymm16-31 and embedded broadcasts to the same code, so the
//! two tokens share one implementation and differ in the register tiles the kernels pick.

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
