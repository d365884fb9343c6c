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
}
