//! The vector abstraction the kernels are written against.
//!
//! One vector `V` is one NCHW8c channel block: 8 `f32` lanes. On x86_64 that is a ymm register
//! (`__m256`), on aarch64 a pair of q registers, on wasm32 with SIMD128 a pair of `v128`, in
//! the scalar path `[f32; 8]`. Tokens are
//! zero-sized types whose existence proves the CPU can run their instructions; kernels are
//! generic `#[inline(always)]` bodies over a token, instantiated inside `#[target_feature]`
//! wrappers by [`crate::isa::dispatch`].

// Unused in wasm builds with `--cfg ghost_runtime_simd_only` (see `crate::isa`).
#[cfg_attr(
    all(
        ghost_runtime_simd_only,
        target_arch = "wasm32",
        target_feature = "simd128"
    ),
    allow(dead_code)
)]
pub(crate) mod generic;

// Under Miri only the scalar path is dispatched to; the SIMD tokens still compile.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(miri, allow(dead_code))]
pub(crate) mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod wasm32;

use crate::Activation;

/// Eight-lane `f32` vector operations. Memory operations are unaligned.
pub(crate) trait Simd: Copy {
    /// One channel block.
    type V: Copy;
    fn zero(self) -> Self::V;
    fn splat(self, x: f32) -> Self::V;
    /// # Safety
    /// `p` must be valid for reading 8 `f32`.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// # Safety
    /// `p` must be valid for writing 8 `f32`.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// Broadcast of one scalar from memory.
    /// # Safety
    /// `p` must be valid for reading one `f32`.
    #[inline(always)]
    unsafe fn bcast(self, p: *const f32) -> Self::V {
        // SAFETY: forwarded from the caller.
        self.splat(unsafe { *p })
    }
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, fused where the ISA has FMA.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
}

/// An [`Activation`] with its constants splatted once, applied in registers.
#[derive(Clone, Copy)]
pub(crate) struct ActV<V> {
    kind: u8,
    a: V,
    b: V,
    zero: V,
    one: V,
}

impl<V: Copy> ActV<V> {
    #[inline(always)]
    pub(crate) fn new<S: Simd<V = V>>(s: S, act: Activation) -> Self {
        let (kind, a, b) = match act {
            Activation::None => (0, 0.0, 0.0),
            Activation::Relu => (1, 0.0, 0.0),
            Activation::Clamp { lo, hi } => (2, lo, hi),
            Activation::HardSigmoid { alpha, beta } => (3, alpha, beta),
            Activation::HardSwish => (4, 1.0 / 6.0, 0.5),
        };
        ActV {
            kind,
            a: s.splat(a),
            b: s.splat(b),
            zero: s.zero(),
            one: s.splat(1.0),
        }
    }

    /// [`ActV::apply`] with the activation known at compile time.
    #[inline(always)]
    pub(crate) fn apply_kind<S: Simd<V = V>, const KIND: u8>(&self, s: S, v: V) -> V {
        match KIND {
            0 => v,
            1 => s.max(self.zero, v),
            2 => s.min(self.b, s.max(self.a, v)),
            3 => s.min(self.one, s.max(self.zero, s.fma(v, self.a, self.b))),
            _ => s.mul(
                v,
                s.min(self.one, s.max(self.zero, s.fma(v, self.a, self.b))),
            ),
        }
    }

    // Index loops on purpose (see `apply_tile`).
    #[allow(clippy::needless_range_loop)]
    #[inline(always)]
    fn apply_all<S: Simd<V = V>, const K: u8, const R: usize, const C: usize>(
        &self,
        s: S,
        t: &mut [[V; C]; R],
    ) {
        for r in 0..R {
            for c in 0..C {
                t[r][c] = self.apply_kind::<S, K>(s, t[r][c]);
            }
        }
    }

    /// Applies the activation in place to a whole register tile; the dispatch on the kind
    /// happens once, outside the (unrolled) loops.
    #[inline(always)]
    pub(crate) fn apply_tile<S: Simd<V = V>, const R: usize, const C: usize>(
        &self,
        s: S,
        t: &mut [[V; C]; R],
    ) {
        // Index loops with constant trip counts, not iterator adapters: the adapters'
        // methods are not `inline(always)`, and when LLVM declined to inline them (ghost-runtime
        // built as one codegen unit) the tile's address escaped and every accumulator lived on
        // the stack (pointwise kernels at a third of their speed).
        match self.kind {
            0 => {}
            1 => self.apply_all::<S, 1, R, C>(s, t),
            2 => self.apply_all::<S, 2, R, C>(s, t),
            3 => self.apply_all::<S, 3, R, C>(s, t),
            _ => self.apply_all::<S, 4, R, C>(s, t),
        }
    }

    #[inline(always)]
    pub(crate) fn apply<S: Simd<V = V>>(&self, s: S, v: V) -> V {
        match self.kind {
            0 => v,
            1 => s.max(self.zero, v),
            2 => s.min(self.b, s.max(self.a, v)),
            3 => s.min(self.one, s.max(self.zero, s.fma(v, self.a, self.b))),
            _ => s.mul(
                v,
                s.min(self.one, s.max(self.zero, s.fma(v, self.a, self.b))),
            ),
        }
    }
}
