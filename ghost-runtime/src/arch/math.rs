//! Vector `exp`, sigmoid, SiLU, `tanh` and GELU written once over the [`Simd`] primitives, so
//! every ISA (scalar included) gets them and every epilogue can apply them in registers.
//!
//! `exp(x)`: `x` is clamped to `[-104, 89]` (so `-inf` and everything below `-103.98` give
//! `+0`, everything above `88.73` gives `+inf`; the clamp keeps NaN, see below), then split as
//! `x = n ln2 + r` with `n = round(x log2 e)` (the `1.5 * 2^23` rounding trick) and `|r| <=
//! ln2/2` (Cody-Waite: `ln2_hi` has 15 significant bits, so `n * ln2_hi` is exact for `|n| <=
//! 150`). `e^r` is `1 + r + r^2 P(r)` with `P` of degree 4 fitted to minimize the relative
//! error over `[-ln2/2, ln2/2]` (3e-9 in exact arithmetic, far below an ulp), evaluated by
//! Horner. The scale `2^n` is applied as two exponent-bit powers, `2^n1` with `n1 = clamp(n,
//! -125, 127)` (exact: `e^r * 2^n1` stays normal) then `2^(n - n1)`, so the only rounding of
//! the scale is the last multiply: results in the subnormal range and the top of the range
//! (`88.0 .. 88.72`, where `n = 128`) come out right instead of flushing or overflowing.
//!
//! Sigmoid and SiLU need `e^-x` only where `1 + e^-x` is not rounded away, so they use a
//! cheaper scale (`exp_neg_logistic`): the same reduction and polynomial (evaluated at `-r`),
//! with `x` clamped to `[-89, 88]` and `2^-n` built by one integer subtraction into the
//! exponent bits (`Simd::pow2_neg_rounded`), no second multiply. That gives `+0` for `n =
//! 127` (`x >= 87.68`, where `1 + e^-x` is 1 anyway) and `+inf` for `n = -128` (`x <
//! -88.37`, where the true sigmoid is below `4e-39`, subnormal). Nine fewer vector
//! operations per value: SiLU after EfficientNet-B0's 16->96 expansion 1x1 at 112x112 went
//! from 17.9 to 21.0 GMAC/s (`ghost-bench --filter silu`, Sapphire Rapids, AVX-512).
//!
//! NaN propagates: `max(lo, x)` then `min(hi, x)` return `x` when it is NaN on every token
//! (x86 `maxps` returns its second operand, the scalar and SIMD128 forms compare the same way,
//! NEON propagates NaN), NaN through the polynomial stays NaN, and the integer scale of a NaN
//! is 1.
//!
//! Accuracy, measured by `tests/vmath.rs` against f64 on a 0.01-step sweep of `[-110, 95]`
//! plus edge values (the test asserts 1.5 ulp for `exp`, 3 ulp for the others): `exp` within
//! 0.85 ulp of the exact value with FMA (AVX2, AVX-512), 1.08 ulp unfused (scalar, and
//! SIMD128, which computes the scalar path's bits), subnormal results included (in subnormal
//! steps); `sigmoid(x) = 1 / (1 + exp(-x))` within 1.93 ulp and `silu(x) = x / (1 + exp(-x))`
//! within 1.54 ulp (1.58 unfused), except that both flush to zero for `x < -88.37`, where
//! `e^-x` saturates (sigmoid gives `+0` for a true value below `4e-39`, SiLU `-0` for one
//! below `3.6e-37`). `silu(-inf)` is NaN (`-inf / inf`), as ONNX's `Mul(x, Sigmoid(x))` gives.
//!
//! `tanh(x) = 1 - 2 / (e^2x + 1)`: within `1.65e-7` (`2.8 * 2^-24`) absolute on the same
//! sweep (the test asserts `2^-21`), not in ulp, since the subtraction cancels near 0 (as in
//! the scalar form `glue::unary` used before); exactly `±1` once `e^2x` saturates, NaN kept.
//!
//! GELU, `gelu(x) = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`, is evaluated as `max(x, 0) - m
//! Phi(-m)` with `m = |x|` (`Phi(-m) = erfc(m / sqrt 2) / 2`, the normal tail, at most 1/2),
//! which is `x (1 - Phi(-x))` for `x >= 0` and `x Phi(x)` below, without a select. For `x >= 0`
//! the final FMA subtracts at most half of `x` (no cancellation); for `x < 0` it adds a product
//! to 0, so the negative side keeps its relative accuracy down the tail. The tail is
//! `Phi(-m) = e^(-m^2/2) t P(t)`, `t = 1 / (1 + p m)` with `p = 19/64`, `P` of degree 9 fitted
//! (Lawson's iteration on 400 Chebyshev points in `t`, then the coefficients rounded to `f32`
//! one at a time, refitting the others) to the least maximal relative error over `m` in `[0,
//! 14]`: `4e-9` in exact arithmetic with the `f32` coefficients. `m^2/2` would cost up to 6
//! ulp of relative error at `m = 13` if rounded, so `m^2 = h + l` with `l = fma(m, m, -h)` and
//! `e^(-m^2/2) = e^(-h/2) (1 - l/2)`; `e^(-h/2)` is the logistic functions' cheap exponential
//! (it flushes to 0 once `h/2 > 87.68`, `|x| > 13.24`, where `|gelu(x)| < 1.1e-38`), and the
//! final product `e^(-h/2) * (-m t P(t))` is formed last, so it is rounded once, and normal
//! wherever the result is. `m` is clamped to 16 (the tail is 0 there), which makes `+-inf`
//! give `inf` and `0` instead of `inf * 0`. About 40 vector operations and a division per
//! value, some 2.5 times a SiLU.
//!
//! GELU accuracy, measured by `tests/vmath.rs` against an f64 reference (through `erfc`) on the
//! sweep above, a 0.00073-step sweep of `[-14, 14]` and magnitudes from `1e-45` to `1e38`:
//! within `7.2e-8 * max(1, |x|)` absolute with FMA (`7.9e-8` unfused; the test asserts
//! `2e-7`), and on the negative tail (`x < -1`, results normal, so `x >= -13.2`) within 4.9 ulp
//! relative with FMA. Unfused (scalar, SIMD128), `l` is 0 and the tail's relative error grows
//! as `m^2/2 * 2^-24`, to 66 ulp at `x = -13` (absolute: below `1e-36`). NaN propagates
//! (the `max`/`min` operand order above), `gelu(inf) = inf`, `gelu(-inf) = 0`.
//!
//! Deliberately not done here: an approximate reciprocal (`rcp` + a Newton step + one
//! correction of the quotient) instead of the division. It is more vector operations, and
//! the divider runs beside them: on Sapphire Rapids the SiLU case above went from 17.9 to
//! 16.5 GMAC/s with it. A lower-degree polynomial: its error (about an ulp) would leave
//! little of the 3-ulp bound for the division's rounding.

use super::Simd;

/// The lane operations these functions use, so they run on any register width: every [`Simd`]
/// token on its blocks (the blanket impl below) and, with AVX-512, `x86_64::Zmm` on two blocks
/// in one zmm register (the pointwise tile's activation, see [`super::Wide::ptranscendental`]).
/// Each method is the [`Simd`] method of the same name.
pub(crate) trait Lanes: Copy {
    type L: Copy;
    fn splat(self, x: f32) -> Self::L;
    fn add(self, a: Self::L, b: Self::L) -> Self::L;
    fn mul(self, a: Self::L, b: Self::L) -> Self::L;
    fn max(self, a: Self::L, b: Self::L) -> Self::L;
    fn min(self, a: Self::L, b: Self::L) -> Self::L;
    fn fma(self, a: Self::L, b: Self::L, c: Self::L) -> Self::L;
    fn div(self, a: Self::L, b: Self::L) -> Self::L;
    fn pow2i(self, n: Self::L) -> Self::L;
    fn pow2_neg_rounded(self, t: Self::L) -> Self::L;
}

impl<S: Simd> Lanes for S {
    type L = S::V;
    #[inline(always)]
    fn splat(self, x: f32) -> S::V {
        Simd::splat(self, x)
    }
    #[inline(always)]
    fn add(self, a: S::V, b: S::V) -> S::V {
        Simd::add(self, a, b)
    }
    #[inline(always)]
    fn mul(self, a: S::V, b: S::V) -> S::V {
        Simd::mul(self, a, b)
    }
    #[inline(always)]
    fn max(self, a: S::V, b: S::V) -> S::V {
        Simd::max(self, a, b)
    }
    #[inline(always)]
    fn min(self, a: S::V, b: S::V) -> S::V {
        Simd::min(self, a, b)
    }
    #[inline(always)]
    fn fma(self, a: S::V, b: S::V, c: S::V) -> S::V {
        Simd::fma(self, a, b, c)
    }
    #[inline(always)]
    fn div(self, a: S::V, b: S::V) -> S::V {
        Simd::div(self, a, b)
    }
    #[inline(always)]
    fn pow2i(self, n: S::V) -> S::V {
        Simd::pow2i(self, n)
    }
    #[inline(always)]
    fn pow2_neg_rounded(self, t: S::V) -> S::V {
        Simd::pow2_neg_rounded(self, t)
    }
}

const LOG2E: f32 = core::f32::consts::LOG2_E;
/// High part of `ln 2` (15 significant bits, so `n * LN2_HI` is exact for `|n| <= 150`).
const LN2_HI: f32 = 0.693_145_75;
/// `ln 2 - LN2_HI`.
const LN2_LO: f32 = 1.428_606_8e-6;
/// `1.5 * 2^23`: adding and subtracting it rounds `|t| < 2^22` to the nearest integer.
const ROUND: f32 = 12_582_912.0;
/// Coefficients of `P(r)`, `e^r ~ 1 + r + r^2 (C2 + C3 r + C4 r^2 + C5 r^3 + C6 r^4)`.
const C2: f32 = 0.499_999_94;
const C3: f32 = 0.166_665_21;
const C4: f32 = 0.041_668_39;
const C5: f32 = 0.008_368_707;
const C6: f32 = 0.001_381_449_9;

/// `e^x` lane by lane (see the module docs for the method and its accuracy).
#[inline(always)]
pub(crate) fn exp<S: Lanes>(s: S, x: S::L) -> S::L {
    // Operand order keeps NaN (module docs).
    let x = s.min(s.splat(89.0), s.max(s.splat(-104.0), x));
    let (_, n, r) = reduce(s, x);
    let p = poly::<S, false>(s, r);
    let n1 = s.min(s.splat(127.0), s.max(s.splat(-125.0), n));
    // n - n1 in [-25, 1], exact.
    let n2 = s.fma(n1, s.splat(-1.0), n);
    s.mul(s.mul(p, s.pow2i(n1)), s.pow2i(n2))
}

/// `x = n ln2 + r`: the rounding sum `t = x log2 e + 1.5 * 2^23` (whose low mantissa bits
/// hold `n`), `n` and `r` (module docs).
#[inline(always)]
fn reduce<S: Lanes>(s: S, x: S::L) -> (S::L, S::L, S::L) {
    let t = s.fma(x, s.splat(LOG2E), s.splat(ROUND));
    let n = s.add(t, s.splat(-ROUND));
    let r = s.fma(n, s.splat(-LN2_HI), x);
    (t, n, s.fma(n, s.splat(-LN2_LO), r))
}

/// `e^r` (`NEG`: `e^-r`) by Horner, `1 + r + r^2 (C2 + C3 r + C4 r^2 + C5 r^3 + C6 r^4)`;
/// `e^-r` is the same polynomial at `-r`, so the odd coefficients change sign.
#[inline(always)]
fn poly<S: Lanes, const NEG: bool>(s: S, r: S::L) -> S::L {
    let sign = if NEG { -1.0 } else { 1.0 };
    let mut p = s.fma(s.splat(C6), r, s.splat(sign * C5));
    p = s.fma(p, r, s.splat(C4));
    p = s.fma(p, r, s.splat(sign * C3));
    p = s.fma(p, r, s.splat(C2));
    p = s.fma(p, r, s.splat(sign));
    s.fma(p, r, s.splat(1.0))
}

/// `e^-x` for the logistic functions: exact to the same polynomial as [`exp`] where `e^-x` is
/// normal, but `+0` once `x > 87.68` and `+inf` once `x < -88.37` (module docs), so the scale
/// is a single integer subtraction into the exponent bits.
#[inline(always)]
fn exp_neg_logistic<S: Lanes>(s: S, x: S::L) -> S::L {
    // Operand order keeps NaN (module docs); the bounds keep `n` in [-128, 127].
    let x = s.min(s.splat(88.0), s.max(s.splat(-89.0), x));
    let (t, _, r) = reduce(s, x);
    s.mul(poly::<S, true>(s, r), s.pow2_neg_rounded(t))
}

/// `1 / (1 + e^-x)` lane by lane: 0 for `x < -88.37` (`e^-x` saturates), 1 for large `x`.
#[inline(always)]
pub(crate) fn sigmoid<S: Lanes>(s: S, x: S::L) -> S::L {
    let one = s.splat(1.0);
    s.div(one, s.add(one, exp_neg_logistic(s, x)))
}

/// SiLU (Swish), `x * sigmoid(x)`, as `x / (1 + e^-x)` (one rounding fewer).
#[inline(always)]
pub(crate) fn silu<S: Lanes>(s: S, x: S::L) -> S::L {
    s.div(x, s.add(s.splat(1.0), exp_neg_logistic(s, x)))
}

/// The exp-based activation of [`super::ActV`] kind `KIND`: [`sigmoid`] ([`super::SIGMOID`]),
/// [`silu`] ([`super::SILU`]), [`gelu`] ([`super::GELU`]) or [`mish`] ([`super::MISH`]);
/// callers pass no other kind (it
/// would be the identity).
#[inline(always)]
pub(crate) fn by_kind<S: Lanes, const KIND: u8>(s: S, x: S::L) -> S::L {
    match KIND {
        super::SIGMOID => sigmoid(s, x),
        super::SILU => silu(s, x),
        super::GELU => gelu(s, x),
        super::MISH => mish(s, x),
        _ => x,
    }
}

/// Mish, `x tanh(softplus(x))`, lane by lane. With `n = e^x`, `tanh(ln(1 + n)) = t / (t + 2)`
/// for `t = n (n + 2)`: one `exp`, no logarithm, and no cancellation (every term is positive).
/// `x` is clamped to 20 inside the `exp` (above it `t / (t + 2)` is 1 in `f32` and `t` would
/// overflow for `x > 44`); below `-104` the `exp` is 0 and the result `-0` (the true value is
/// under `1e-43`). NaN propagates through the clamp and the `exp`.
#[inline(always)]
pub(crate) fn mish<S: Lanes>(s: S, x: S::L) -> S::L {
    let n = exp(s, s.min(s.splat(20.0), x));
    let t = s.mul(n, s.add(n, s.splat(2.0)));
    s.mul(x, s.div(t, s.add(t, s.splat(2.0))))
}

/// `tanh(x)` lane by lane, as `1 - 2 / (e^2x + 1)` (accuracy in the module docs).
#[inline(always)]
pub(crate) fn tanh<S: Lanes>(s: S, x: S::L) -> S::L {
    let one = s.splat(1.0);
    s.add(one, s.div(s.splat(-2.0), s.add(exp(s, s.add(x, x)), one)))
}

/// `p` of `t = 1 / (1 + p m)` in [`gelu`] (exact in `f32`; chosen with the fit, see the module
/// docs).
const GELU_P: f32 = 0.296_875;
/// `G[j]`: `Phi(-m) ~ e^(-m^2 / 2) t (G0 + G1 t + .. + G9 t^9)` for `m` in `[0, 14]`, fitted
/// for the least maximal relative error (module docs).
const G: [f32; 10] = [
    0.118_442_97,
    0.118_259_51,
    0.109_940_39,
    0.074_881_166,
    0.107_297_28,
    -0.099_429_31,
    0.219_605_82,
    -0.243_893_85,
    0.115_463_264,
    -0.020_567_238,
];

/// `-m Phi(-m)` (`Phi(-m)` the standard normal tail, `erfc(m / sqrt 2) / 2`) for lanes `m` in
/// `[0, 16]`, as the factors `e^(-m^2/2)` and `-m t P(t)` with `t = 1 / (1 + p m)` (module
/// docs), so that their product is rounded once (it stays normal down to `m = 13.2`, where
/// `Phi(-m)` alone would be subnormal). `m^2 = h + l` exactly (`l` by a fused multiply-add; 0
/// where `fma` is unfused), `e^-(h/2)` by the logistic functions' exponential (0 once `h/2 >
/// 87.68`: the tail is then below `1.1e-38`) and `e^(-l/2)` as `1 - l/2`.
#[inline(always)]
fn neg_normal_tail<S: Lanes>(s: S, m: S::L) -> (S::L, S::L) {
    let one = s.splat(1.0);
    let t = s.div(one, s.fma(m, s.splat(GELU_P), one));
    let mut p = s.fma(s.splat(G[9]), t, s.splat(G[8]));
    // An index loop with a constant trip count (unrolled; see `ActV::apply_tile`).
    let mut j = 8;
    while j > 0 {
        j -= 1;
        p = s.fma(p, t, s.splat(G[j]));
    }
    let tp = s.mul(t, p);
    let neg_m = s.mul(m, s.splat(-1.0));
    // -h and l = m^2 - h (exact with FMA).
    let neg_h = s.mul(neg_m, m);
    let l = s.fma(m, m, neg_h);
    let e = exp_neg_logistic(s, s.mul(neg_h, s.splat(-0.5)));
    let tp = s.fma(tp, s.mul(l, s.splat(-0.5)), tp);
    (e, s.mul(neg_m, tp))
}

/// GELU, `x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`, lane by lane, as `max(x, 0) - |x|
/// Phi(-|x|)` (module docs: method, accuracy, special values).
#[inline(always)]
pub(crate) fn gelu<S: Lanes>(s: S, x: S::L) -> S::L {
    // Operand orders keep NaN (module docs); |x| is clamped to 16, where the tail is 0.
    let relu = s.max(s.splat(0.0), x);
    let abs = s.max(x, s.mul(x, s.splat(-1.0)));
    let m = s.min(s.splat(16.0), abs);
    let (e, neg_m_tp) = neg_normal_tail(s, m);
    s.fma(e, neg_m_tp, relu)
}
