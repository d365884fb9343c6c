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
pub(crate) mod math;

// Under Miri only the scalar path is dispatched to (unless `--cfg ghost_miri_simd`, see
// `isa`); the SIMD tokens still compile.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(all(miri, not(ghost_miri_simd)), allow(dead_code))]
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
    /// IEEE `a / b`.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `2^n` built from exponent bits, for lanes of `n` holding integers in `[-126, 127]`
    /// (other lanes give unspecified finite or infinite values, never a trap).
    fn pow2i(self, n: Self::V) -> Self::V;
    /// `2^-n` from `t = v + 1.5 * 2^23` (the rounding trick of [`math`]), whose low mantissa
    /// bits hold `n = round(v)`: the bits `(127 - n) << 23`, computed with integer
    /// arithmetic. Exact for `n` in `[-126, 126]`; `+0` for `n = 127` and `+inf` for `n =
    /// -128` (what the logistic functions want there); a NaN `t` gives `1`.
    fn pow2_neg_rounded(self, t: Self::V) -> Self::V;
    /// IEEE `sqrt(a)`, correctly rounded (NaN for negative lanes), so every token gives the
    /// same bits.
    fn sqrt(self, a: Self::V) -> Self::V;
    /// Bitwise AND of the lanes' bit patterns. With a mask of all-ones and all-zeros lanes it
    /// keeps or zeroes lanes whatever they hold (NaN and infinities included).
    fn and(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane `i` is the sum of the 8 lanes of `v[i]` (a transpose and an add tree in
    /// registers). The scalar, NEON and SIMD128 tokens add as
    /// `((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))`, x86 (`vhaddps`) as
    /// `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`.
    fn transpose_sum(self, v: [Self::V; 8]) -> Self::V;
}

/// Two adjacent channel blocks (16 `f32` lanes) as one value: a zmm register where the token
/// has AVX-512F (Intel server cores with two 512-bit FMA units do twice the multiply-adds per
/// cycle there), else a pair of [`Simd::V`] (the same instructions as two blocks). Used by the
/// multiply-add loop of the pointwise GEMM tile, whose packed weight rows hold consecutive
/// blocks; epilogues split it back into blocks with [`Wide::halves`], so every other kernel
/// stays 8 lanes wide.
pub(crate) trait Wide: Simd {
    /// Blocks `j` and `j + 1`, lanes 0..8 and 8..16.
    type P: Copy;
    fn pzero(self) -> Self::P;
    /// # Safety
    /// `p` must be valid for reading 16 `f32`.
    unsafe fn pload(self, p: *const f32) -> Self::P;
    /// One scalar from memory in all 16 lanes.
    /// # Safety
    /// `p` must be valid for reading one `f32`.
    unsafe fn pbcast(self, p: *const f32) -> Self::P;
    /// `a * b + c` per lane, exactly as [`Simd::fma`] does it (so a value computed wide equals
    /// the same value computed one block at a time, bit for bit).
    fn pfma(self, a: Self::P, b: Self::P, c: Self::P) -> Self::P;
    /// The two blocks.
    fn halves(self, p: Self::P) -> [Self::V; 2];
    /// Lanes 0..8 from `lo`, 8..16 from `hi`: [`Wide::halves`] reversed.
    #[cfg_attr(not(miri), allow(dead_code))] // Miri's path of the AVX-512 `ptranscendental`
    fn pjoin(self, lo: Self::V, hi: Self::V) -> Self::P;
    /// Lanes 0..8 from `lo`, 8..16 from `hi` (two blocks' vectors that are not adjacent in
    /// memory).
    /// # Safety
    /// `lo` and `hi` must each be valid for reading 8 `f32`.
    unsafe fn pload2(self, lo: *const f32, hi: *const f32) -> Self::P;
    /// The exp-based activation of [`ActV`] kind `KIND` ([`SIGMOID`], [`SILU`], [`GELU`] or [`MISH`],
    /// see [`math::by_kind`]) on all 16 lanes: one zmm evaluation with AVX-512, where 512-bit
    /// instructions in flight leave port 1 idle to 256-bit ones, so blocks would run at half
    /// the rate; the same arithmetic per lane as on blocks.
    fn ptranscendental<const KIND: u8>(self, p: Self::P) -> Self::P;
    /// [`Wide::ptranscendental`] in place on the `n` vectors (8 `f32` each, any alignment)
    /// from `t`, two at a time (an odd last one alone): [`transcendental_run`] in a function
    /// of its own, one per ISA and `KIND` whatever the caller's tile shape (see
    /// [`ActV::apply_tile_wide`]).
    /// # Safety
    /// `t` must be valid for reading and writing `8 * n` `f32`.
    unsafe fn transcendental_tile<const KIND: u8>(self, t: *mut f32, n: usize);
}

/// Declares `transcendental_tile` in a [`Wide`] impl for `$token`: the out-of-line function
/// compiled with `$features` (the token's; none where the target enables them all).
macro_rules! transcendental_tile {
    ($token:ty $(, $features:literal)?) => {
        #[inline(always)]
        unsafe fn transcendental_tile<const KIND: u8>(self, t: *mut f32, n: usize) {
            #[cfg_attr(not(ghost_runtime_opt0), inline(never))]
            $(#[target_feature(enable = $features)])?
            unsafe fn go<const KIND: u8>(s: $token, t: *mut f32, n: usize) {
                // SAFETY: forwarded; `$features` are the token's, which proves them.
                unsafe { $crate::arch::transcendental_run::<$token, KIND>(s, t, n) }
            }
            // SAFETY: forwarded; the token proves `$features`.
            unsafe { go::<KIND>(self, t, n) }
        }
    };
}
pub(crate) use transcendental_tile;

/// [`Wide`] as a pair of blocks, for tokens without a register that wide.
macro_rules! wide_as_pair {
    ($token:ty $(, $features:literal)?) => {
        impl $crate::arch::Wide for $token {
            $crate::arch::transcendental_tile!($token $(, $features)?);
            type P = [<$token as $crate::arch::Simd>::V; 2];
            #[inline(always)]
            fn pzero(self) -> Self::P {
                [$crate::arch::Simd::zero(self); 2]
            }
            #[inline(always)]
            unsafe fn pload(self, p: *const f32) -> Self::P {
                // SAFETY: the caller guarantees 16 readable f32.
                unsafe {
                    [
                        $crate::arch::Simd::load(self, p),
                        $crate::arch::Simd::load(self, p.add(8)),
                    ]
                }
            }
            #[inline(always)]
            unsafe fn pbcast(self, p: *const f32) -> Self::P {
                // SAFETY: the caller guarantees one readable f32.
                let v = unsafe { $crate::arch::Simd::bcast(self, p) };
                [v, v]
            }
            #[inline(always)]
            fn pfma(self, a: Self::P, b: Self::P, c: Self::P) -> Self::P {
                [
                    $crate::arch::Simd::fma(self, a[0], b[0], c[0]),
                    $crate::arch::Simd::fma(self, a[1], b[1], c[1]),
                ]
            }
            #[inline(always)]
            fn ptranscendental<const KIND: u8>(self, p: Self::P) -> Self::P {
                // Indexed, not `map`: a closure would not inherit the caller's target features.
                [
                    $crate::arch::math::by_kind::<_, KIND>(self, p[0]),
                    $crate::arch::math::by_kind::<_, KIND>(self, p[1]),
                ]
            }
            #[inline(always)]
            fn halves(self, p: Self::P) -> [<$token as $crate::arch::Simd>::V; 2] {
                p
            }
            #[inline(always)]
            fn pjoin(
                self,
                lo: <$token as $crate::arch::Simd>::V,
                hi: <$token as $crate::arch::Simd>::V,
            ) -> Self::P {
                [lo, hi]
            }
            #[inline(always)]
            unsafe fn pload2(self, lo: *const f32, hi: *const f32) -> Self::P {
                // SAFETY: the caller guarantees 8 readable f32 at each.
                unsafe {
                    [
                        $crate::arch::Simd::load(self, lo),
                        $crate::arch::Simd::load(self, hi),
                    ]
                }
            }
        }
    };
}
pub(crate) use wide_as_pair;

/// Runs `$body` with `$i` bound to each literal `0, 1, ..` below `$n` (at most 32), for loops
/// over a register tile whose bodies are too big for LLVM to unroll fully (GELU is ~40
/// operations per vector): one runtime-indexed access to a tile array keeps the whole tile in
/// stack memory, and the multiply-add loop that fills it then stores every accumulator after
/// every FMA. That happened when GELU joined the epilogues: pointwise tiles fell from 74-94 %
/// of peak to ~30 % (ghost-bench), the DFC's 5x1 depthwise from 42-48 % to 17-19 %. The
/// `if` on each literal folds away per instantiation; callers check `$n <= 32` at compile
/// time (a larger `$n` would skip the cells past 31).
///
/// Without optimization (`ghost_runtime_opt0`, see build.rs) it is a plain loop: nothing folds
/// the 32 copies there, which made a debug build of this crate for wasm32 take 9 minutes
/// instead of seconds and would give every copy its own stack slots.
macro_rules! each_cell {
    ($n:expr, |$i:ident| $body:block) => {
        #[cfg(ghost_runtime_opt0)]
        for $i in 0..$n {
            $body
        }
        #[cfg(not(ghost_runtime_opt0))]
        each_cell!(@ $n, $i, $body; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23
            24 25 26 27 28 29 30 31)
    };
    (@ $n:expr, $i:ident, $body:block; $($k:literal)*) => {$(
        if $k < $n {
            let $i: usize = $k;
            $body
        }
    )*};
}
pub(crate) use each_cell;

/// [`ActV`] kinds: one per [`Activation`] variant.
pub(crate) const NONE: u8 = 0;
pub(crate) const RELU: u8 = 1;
pub(crate) const CLAMP: u8 = 2;
pub(crate) const HARD_SIGMOID: u8 = 3;
pub(crate) const HARD_SWISH: u8 = 4;
/// The exp-based kinds ([`ActV::transcendental`]).
pub(crate) const SIGMOID: u8 = 5;
pub(crate) const SILU: u8 = 6;
pub(crate) const GELU: u8 = 7;
pub(crate) const MISH: u8 = 8;

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
            Activation::None => (NONE, 0.0, 0.0),
            Activation::Relu => (RELU, 0.0, 0.0),
            Activation::Clamp { lo, hi } => (CLAMP, lo, hi),
            Activation::HardSigmoid { alpha, beta } => (HARD_SIGMOID, alpha, beta),
            Activation::HardSwish => (HARD_SWISH, 1.0 / 6.0, 0.5),
            Activation::Sigmoid => (SIGMOID, 0.0, 0.0),
            Activation::Silu => (SILU, 0.0, 0.0),
            Activation::Gelu => (GELU, 0.0, 0.0),
            Activation::Mish => (MISH, 0.0, 0.0),
        };
        ActV {
            kind,
            a: s.splat(a),
            b: s.splat(b),
            zero: s.zero(),
            one: s.splat(1.0),
        }
    }

    /// [`ActV::apply`] with the activation known at compile time (kind [`NONE`], or one
    /// `new` does not give, is the identity).
    #[inline(always)]
    pub(crate) fn apply_kind<S: Simd<V = V>, const KIND: u8>(&self, s: S, v: V) -> V {
        match KIND {
            RELU => s.max(self.zero, v),
            CLAMP => s.min(self.b, s.max(self.a, v)),
            HARD_SIGMOID => s.min(self.one, s.max(self.zero, s.fma(v, self.a, self.b))),
            HARD_SWISH => s.mul(
                v,
                s.min(self.one, s.max(self.zero, s.fma(v, self.a, self.b))),
            ),
            SIGMOID | SILU | GELU | MISH => math::by_kind::<S, KIND>(s, v),
            _ => v,
        }
    }

    // Index loops on purpose (see `apply_tile`); the exp-based kinds of the wide kernels go
    // through `Wide::transcendental_tile` instead.
    #[allow(clippy::needless_range_loop)]
    #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
    #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
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
    #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
    #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
    pub(crate) fn apply_tile<S: Simd<V = V>, const R: usize, const C: usize>(
        &self,
        s: S,
        t: &mut [[V; C]; R],
    ) {
        // No iterator adapters here: their methods are not `inline(always)`, and when LLVM
        // declined to inline them (ghost-runtime built as one codegen unit) the tile's address
        // escaped and every accumulator lived on the stack (pointwise kernels at a third of
        // their speed).
        match self.kind {
            RELU => self.apply_all::<S, RELU, R, C>(s, t),
            CLAMP => self.apply_all::<S, CLAMP, R, C>(s, t),
            HARD_SIGMOID => self.apply_all::<S, HARD_SIGMOID, R, C>(s, t),
            HARD_SWISH => self.apply_all::<S, HARD_SWISH, R, C>(s, t),
            SIGMOID => self.apply_all::<S, SIGMOID, R, C>(s, t),
            SILU => self.apply_all::<S, SILU, R, C>(s, t),
            GELU => self.apply_all::<S, GELU, R, C>(s, t),
            MISH => self.apply_all::<S, MISH, R, C>(s, t),
            _ => {}
        }
    }

    /// [`ActV::apply_tile`] with the exp-based activations (sigmoid, SiLU, GELU, Mish) evaluated on
    /// pairs of the tile's vectors, 16 lanes at a time ([`Wide::ptranscendental`]: one zmm
    /// evaluation with AVX-512, half the instructions of two ymm ones). The same arithmetic per
    /// lane, so the same bits as `apply_tile`. For kernels whose multiply-adds are 8 lanes wide
    /// but whose epilogue is one of those (GhostNetV2's DFC gate, EfficientNet's depthwise):
    /// there the activation, not the multiply-adds, bounds the tile (`ghost-bench` `dwg5x1
    /// ..-sig`).
    #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
    #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
    pub(crate) fn apply_tile_wide<S: Wide<V = V>, const R: usize, const C: usize>(
        &self,
        s: S,
        t: &mut [[V; C]; R],
    ) {
        if !matches!(self.kind, SIGMOID | SILU | GELU | MISH) {
            return self.apply_tile(s, t);
        }
        // A copy whose address goes to the call; the tile's own address never escapes, so
        // it stays in registers (one escaping access would keep it in stack memory, see
        // `each_cell!`). The function call, not the tile, holds the activation: inlined into
        // every tile shape (unrolled 16 lanes at a time) it was over half of this crate's
        // release build time.
        let mut buf = *t;
        let p = buf.as_flattened_mut().as_mut_ptr().cast::<f32>();
        // SAFETY: `p` holds R * C vectors; the kind is exp-based (checked above).
        unsafe { self.apply_mem_wide(s, p, R * C) };
        *t = buf;
    }

    /// [`ActV::apply_tile_wide`] of an exp-based kind (sigmoid, SiLU, GELU, Mish) in place
    /// on the `n` vectors (8 `f32` each, any alignment) at `p`, pairs at a time.
    ///
    /// # Safety
    /// `p` must be valid for reading and writing `8 * n` `f32`.
    #[inline(always)]
    pub(crate) unsafe fn apply_mem_wide<S: Wide<V = V>>(&self, s: S, p: *mut f32, n: usize) {
        // SAFETY: forwarded.
        unsafe {
            match self.kind {
                SIGMOID => s.transcendental_tile::<SIGMOID>(p, n),
                SILU => s.transcendental_tile::<SILU>(p, n),
                MISH => s.transcendental_tile::<MISH>(p, n),
                GELU => s.transcendental_tile::<GELU>(p, n),
                _ => debug_assert!(false, "not an exp-based activation"),
            }
        }
    }

    /// The kind constant ([`NONE`] .. [`MISH`]), for kernels that monomorphize on it.
    #[inline(always)]
    pub(crate) fn kind(&self) -> u8 {
        self.kind
    }

    /// [`ActV::apply_kind`] with the kind read at run time (one branch per call; the
    /// arithmetic is `apply_kind`'s, so the two cannot drift apart).
    #[inline(always)]
    pub(crate) fn apply<S: Simd<V = V>>(&self, s: S, v: V) -> V {
        match self.kind {
            SIGMOID => self.apply_kind::<S, SIGMOID>(s, v),
            SILU => self.apply_kind::<S, SILU>(s, v),
            GELU => self.apply_kind::<S, GELU>(s, v),
            MISH => self.apply_kind::<S, MISH>(s, v),
            _ => self.apply_cheap(s, v),
        }
    }

    /// [`ActV::apply`] for the kinds without `exp` (the identity for the others, which the
    /// caller evaluates apart): a few instructions per arm, so loops around it still unroll.
    #[inline(always)]
    pub(crate) fn apply_cheap<S: Simd<V = V>>(&self, s: S, v: V) -> V {
        match self.kind {
            RELU => self.apply_kind::<S, RELU>(s, v),
            CLAMP => self.apply_kind::<S, CLAMP>(s, v),
            HARD_SIGMOID => self.apply_kind::<S, HARD_SIGMOID>(s, v),
            HARD_SWISH => self.apply_kind::<S, HARD_SWISH>(s, v),
            _ => v,
        }
    }
}

/// The integer operations of the int8 kernels, on the same tokens as [`Simd`] (whose `V`,
/// 8 `f32` lanes, carries the requantization arithmetic). One `I` is one output channel
/// block of `i32` accumulators; one `W` holds a k-group of 4 input channels for each of its 8
/// output channels (32 `s8`, lane `j` = bytes `4j .. 4j+4`); one `X` is 4 consecutive `u8`
/// activations (the same k-group of one pixel) broadcast to every lane.
///
/// Every operation is exact integer arithmetic (wrapping on `i32` overflow, like `vpdpbusd`)
/// or an exactly specified IEEE operation, so all paths give bit-identical results.
pub(crate) trait QSimd: Simd {
    /// 8 `i32` lanes.
    type I: Copy;
    /// 8 lanes x 4 `s8` weights.
    type W: Copy;
    /// 4 `u8` activations broadcast to every lane, in the form `dot` wants.
    type X: Copy;
    fn isplat(self, x: i32) -> Self::I;
    /// All-zero weights (initial value of register arrays).
    fn wzero(self) -> Self::W;
    /// # Safety
    /// `p` must be valid for reading 32 bytes (8 native-endian `i32`, any alignment).
    unsafe fn iload(self, p: *const u8) -> Self::I;
    /// # Safety
    /// `p` must be valid for reading 32 bytes.
    unsafe fn wload(self, p: *const u8) -> Self::W;
    /// # Safety
    /// `p` must be valid for reading 4 bytes.
    unsafe fn xbcast(self, p: *const u8) -> Self::X;
    /// `acc[j] + sum_t x[t] * w[j][t]` (`u8 * s8`, wrapping `i32`), i.e. `vpdpbusd`.
    fn dot(self, acc: Self::I, x: Self::X, w: Self::W) -> Self::I;
    /// Wrapping `i32` add.
    fn iadd(self, a: Self::I, b: Self::I) -> Self::I;
    /// `i32 -> f32`, rounding to nearest even.
    fn to_f32(self, a: Self::I) -> Self::V;
    /// `f32 -> i32` rounding half to even; `|v|` must be below `2^22`.
    fn round(self, v: Self::V) -> Self::I;
    /// `max(v, lo)` then `min(_, hi)`; NaN gives `lo`.
    #[inline(always)]
    fn clamp(self, v: Self::V, lo: Self::V, hi: Self::V) -> Self::V {
        self.min(self.max(v, lo), hi)
    }
    /// 8 `u8` widened to `f32`.
    /// # Safety
    /// `p` must be valid for reading 8 bytes.
    unsafe fn load_u8(self, p: *const u8) -> Self::V;
    /// Stores the 8 lanes, each in `0 ..= 255`, as bytes.
    /// # Safety
    /// `p` must be valid for writing 8 bytes.
    unsafe fn store_u8(self, p: *mut u8, a: Self::I);
    /// `dst[i] = lut[src[i]]` for `i < n`: a byte table lookup (an int8 requantization whose
    /// 256 results were computed ahead). The default goes one byte at a time; AVX-512 VBMI
    /// looks up 64 bytes with two `vpermi2b`.
    /// # Safety
    /// `src` must be valid for reading and `dst` for writing `n` bytes; they may not overlap.
    #[inline(always)]
    unsafe fn lut_u8(self, lut: &[u8; 256], src: *const u8, dst: *mut u8, n: usize) {
        // SAFETY: forwarded.
        unsafe { lut_bytes(lut, src, dst, n) }
    }
    /// Requantizes 4 rows of accumulators (4 consecutive pixels of one channel block) and
    /// stores their 32 bytes at `p`: `clamp(round(f32(acc) * scale) + zp, min, max)`, with
    /// `c = (zp, min - zp, max - zp, min, max)` (the first three splat once by the caller) and
    /// `min <= max`. [`Self::requant4_f32`] of the converted accumulators.
    /// # Safety
    /// `p` must be valid for writing 32 bytes.
    #[inline(always)]
    unsafe fn requant4(self, p: *mut u8, acc: [Self::I; 4], scale: Self::V, c: Rq4<Self>) {
        // SAFETY: forwarded.
        unsafe { self.requant4_f32(p, acc.map(|a| self.to_f32(a)), scale, c) }
    }
    /// [`Self::requant4`] of accumulators already in `f32`. The default is the formula, row
    /// by row; x86 saturates in packs instead (same bytes).
    /// # Safety
    /// `p` must be valid for writing 32 bytes.
    #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
    #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
    unsafe fn requant4_f32(self, p: *mut u8, acc: [Self::V; 4], scale: Self::V, c: Rq4<Self>) {
        for (i, a) in acc.into_iter().enumerate() {
            let f = self.clamp(self.mul(a, scale), c.lo, c.hi);
            // SAFETY: row i's 8 bytes are within the caller's 32.
            unsafe { self.store_u8(p.add(8 * i), self.iadd(self.round(f), c.zp)) };
        }
    }
}

/// [`QSimd::lut_u8`] one byte at a time.
///
/// # Safety
/// As [`QSimd::lut_u8`].
#[inline(always)]
pub(crate) unsafe fn lut_bytes(lut: &[u8; 256], src: *const u8, dst: *mut u8, n: usize) {
    for i in 0..n {
        // SAFETY: i < n (caller's extents).
        unsafe { *dst.add(i) = lut[*src.add(i) as usize] };
    }
}

/// [`QSimd`]'s dot products two output blocks at a time, as [`Wide`] is for `f32`: one zmm
/// `vpdpbusd` with AVX-512 VNNI (twice the multiply-adds per instruction on cores with two
/// 512-bit units), a pair of blocks elsewhere. Exact integer arithmetic either way.
pub(crate) trait QWide: QSimd {
    /// Accumulators of blocks `j` and `j + 1`.
    type IP: Copy;
    /// Weights of blocks `j` and `j + 1` (64 bytes).
    type WP: Copy;
    /// 4 `u8` activations broadcast to every lane of both blocks.
    type XP: Copy;
    /// # Safety
    /// `p` must be valid for reading 64 bytes (16 native-endian `i32`, any alignment).
    unsafe fn ipload(self, p: *const u8) -> Self::IP;
    /// # Safety
    /// `p` must be valid for reading 64 bytes.
    unsafe fn wpload(self, p: *const u8) -> Self::WP;
    /// # Safety
    /// `p` must be valid for reading 4 bytes.
    unsafe fn xpbcast(self, p: *const u8) -> Self::XP;
    /// [`QSimd::dot`] on both blocks.
    fn pdot(self, acc: Self::IP, x: Self::XP, w: Self::WP) -> Self::IP;
    /// The two blocks' accumulators.
    fn ihalves(self, a: Self::IP) -> [Self::I; 2];
    /// Two blocks' accumulators as one pair (the inverse of [`Self::ihalves`]).
    fn ijoin(self, a: [Self::I; 2]) -> Self::IP;
    /// [`QSimd::requant4`] of 4 pixels of both blocks (`acc[i]`: pixel `i`), storing block
    /// `2j`'s 32 bytes at `y[0]` and block `2j + 1`'s at `y[1]`, with their scales `scale`.
    /// The default splits the pairs; AVX-512 VNNI requantizes 16 lanes wide (same bytes).
    /// # Safety
    /// `y[0]` and `y[1]` must be valid for writing 32 bytes each.
    #[inline(always)]
    unsafe fn prequant4(
        self,
        y: [*mut u8; 2],
        acc: [Self::IP; 4],
        scale: [Self::V; 2],
        c: Rq4<Self>,
    ) {
        let h = acc.map(|a| self.ihalves(a));
        for b in 0..2 {
            // SAFETY: forwarded.
            unsafe { self.requant4(y[b], h.map(|p| p[b]), scale[b], c) };
        }
    }
}

/// [`QWide`] as a pair of blocks, for tokens without a register that wide.
macro_rules! qwide_as_pair {
    ($token:ty) => {
        impl $crate::arch::QWide for $token {
            type IP = [<$token as $crate::arch::QSimd>::I; 2];
            type WP = [<$token as $crate::arch::QSimd>::W; 2];
            type XP = <$token as $crate::arch::QSimd>::X;
            #[inline(always)]
            unsafe fn ipload(self, p: *const u8) -> Self::IP {
                use $crate::arch::QSimd;
                // SAFETY: the caller guarantees 64 readable bytes.
                unsafe { [self.iload(p), self.iload(p.add(32))] }
            }
            #[inline(always)]
            unsafe fn wpload(self, p: *const u8) -> Self::WP {
                use $crate::arch::QSimd;
                // SAFETY: the caller guarantees 64 readable bytes.
                unsafe { [self.wload(p), self.wload(p.add(32))] }
            }
            #[inline(always)]
            unsafe fn xpbcast(self, p: *const u8) -> Self::XP {
                use $crate::arch::QSimd;
                // SAFETY: the caller guarantees 4 readable bytes.
                unsafe { self.xbcast(p) }
            }
            #[inline(always)]
            fn pdot(self, acc: Self::IP, x: Self::XP, w: Self::WP) -> Self::IP {
                use $crate::arch::QSimd;
                [self.dot(acc[0], x, w[0]), self.dot(acc[1], x, w[1])]
            }
            #[inline(always)]
            fn ihalves(self, a: Self::IP) -> [<$token as $crate::arch::QSimd>::I; 2] {
                a
            }
            #[inline(always)]
            fn ijoin(self, a: [<$token as $crate::arch::QSimd>::I; 2]) -> Self::IP {
                a
            }
        }
    };
}
pub(crate) use qwide_as_pair;

/// Requantization constants of [`QSimd::requant4`], splat once per kernel call.
#[derive(Clone, Copy)]
pub(crate) struct Rq4<S: QSimd> {
    pub zp: S::I,
    pub lo: S::V,
    pub hi: S::V,
    /// `lo`/`hi` as bytes, for stores that clamp after a saturating pack (x86 only so far).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub min: u8,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub max: u8,
}

/// The exp-based activation `KIND` ([`math::by_kind`]) on the `n` vectors from `t`, two at a
/// time in order (an odd last one alone); the body of [`Wide::transcendental_tile`].
///
/// # Safety
/// `t` valid for reading and writing `n` vectors.
#[inline(always)]
pub(crate) unsafe fn transcendental_run<S: Wide, const KIND: u8>(s: S, t: *mut f32, n: usize) {
    let mut i = 0;
    // SAFETY: i + 1 < n, then i < n (contract: 8 * n floats).
    unsafe {
        while i + 1 < n {
            let p = t.add(i * 8);
            let [lo, hi] = s.halves(s.ptranscendental::<KIND>(s.pload(p)));
            s.store(p, lo);
            s.store(p.add(8), hi);
            i += 2;
        }
        if i < n {
            let p = t.add(i * 8);
            s.store(p, math::by_kind::<S, KIND>(s, s.load(p)));
        }
    }
}

/// Asks the CPU to bring the cache line holding `p` towards the core, for reading
/// (`WRITE` false) or for writing (`WRITE`: in a state that lets a store proceed without a
/// read for ownership). A hint: it never faults and may be ignored, so any address is fine.
/// x86_64 only (`prefetcht0` / `prefetchw`); nothing elsewhere and under Miri.
#[inline(always)]
pub(crate) fn prefetch<const WRITE: bool>(p: *const f32) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint that never faults, whatever the address; SSE is part
        // of every x86_64 CPU.
        unsafe {
            if WRITE {
                _mm_prefetch::<_MM_HINT_ET0>(p.cast());
            } else {
                _mm_prefetch::<_MM_HINT_T0>(p.cast());
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}
