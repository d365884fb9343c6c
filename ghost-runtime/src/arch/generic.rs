//! The portable scalar path: the reference every SIMD path is tested against.

use super::Simd;

/// Token for the scalar path; needs no CPU feature.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

impl Simd for Scalar {
    type V = [f32; 8];
    #[inline(always)]
    fn zero(self) -> [f32; 8] {
        [0.0; 8]
    }
    #[inline(always)]
    fn splat(self, x: f32) -> [f32; 8] {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> [f32; 8] {
        // SAFETY: the caller guarantees 8 readable f32; read_unaligned tolerates any alignment.
        unsafe { p.cast::<[f32; 8]>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: [f32; 8]) {
        // SAFETY: the caller guarantees 8 writable f32.
        unsafe { p.cast::<[f32; 8]>().write_unaligned(v) }
    }
    #[inline(always)]
    fn add(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        core::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    fn mul(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        core::array::from_fn(|i| a[i] * b[i])
    }
    #[inline(always)]
    fn max(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        core::array::from_fn(|i| if a[i] > b[i] { a[i] } else { b[i] })
    }
    #[inline(always)]
    fn min(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        core::array::from_fn(|i| if a[i] < b[i] { a[i] } else { b[i] })
    }
    #[inline(always)]
    fn fma(self, a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
        // Unfused on purpose: core has no portable fma without libm, and the reference
        // should be the plain textbook formula.
        core::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    fn div(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        core::array::from_fn(|i| a[i] / b[i])
    }
    #[inline(always)]
    fn pow2_neg_rounded(self, t: [f32; 8]) -> [f32; 8] {
        t.map(|v| f32::from_bits((127u32 << 23).wrapping_sub(v.to_bits() << 23)))
    }
    #[inline(always)]
    fn pow2i(self, n: [f32; 8]) -> [f32; 8] {
        // `as i32` saturates (NaN gives 0), so the add cannot overflow and the shift keeps
        // whatever bits land in the exponent field.
        n.map(|v| f32::from_bits(((v as i32).saturating_add(127) as u32) << 23))
    }
    #[inline(always)]
    fn sqrt(self, a: [f32; 8]) -> [f32; 8] {
        a.map(sqrt_f32)
    }
    #[inline(always)]
    fn and(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        core::array::from_fn(|i| f32::from_bits(a[i].to_bits() & b[i].to_bits()))
    }
    #[inline(always)]
    fn transpose_sum(self, v: [[f32; 8]; 8]) -> [f32; 8] {
        // The NEON and SIMD128 order (the halves added, then pairwise sums twice).
        v.map(|l| ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7])))
    }
}

/// IEEE `sqrt(x)`, correctly rounded (`core` has no `f32::sqrt` without `std`): Newton's
/// iteration in `f64` from an estimate with the exponent halved, rounded to `f32`, then one
/// exact comparison with the neighbouring midpoints fixes the rounding. NaN for `x < 0`.
pub(crate) fn sqrt_f32(x: f32) -> f32 {
    if x.is_nan() || x == 0.0 || x == f32::INFINITY {
        return x;
    }
    if x < 0.0 {
        return f32::NAN;
    }
    // Exact, and normal in f64 even for subnormal x.
    let d = x as f64;
    // Halving the biased exponent: within 6 % of the root; 5 steps reach f64 precision.
    let mut y = f64::from_bits((d.to_bits() >> 1) + (1023u64 << 51));
    for _ in 0..5 {
        y = 0.5 * (y + d / y);
    }
    // `y` is within a few f64 ulp of the root, so its f32 rounding is the correctly rounded
    // root or a neighbour. The root is at least 2^-75 (normal), the midpoints between f32
    // neighbours have 25 significant bits, so their squares are exact in f64; the root is
    // never a midpoint (its square would need more than 24 bits).
    let mut r = y as f32;
    let up = f32::from_bits(r.to_bits() + 1);
    let mid = (r as f64 + up as f64) * 0.5;
    if mid * mid < d {
        r = up;
    } else {
        let down = f32::from_bits(r.to_bits() - 1);
        let mid = (r as f64 + down as f64) * 0.5;
        if mid * mid > d {
            r = down;
        }
    }
    r
}

super::wide_as_pair!(Scalar);

super::qwide_as_pair!(Scalar);

impl super::QSimd for Scalar {
    type I = [i32; 8];
    type W = [[i8; 4]; 8];
    type X = [u8; 4];
    #[inline(always)]
    fn isplat(self, x: i32) -> [i32; 8] {
        [x; 8]
    }
    #[inline(always)]
    fn wzero(self) -> [[i8; 4]; 8] {
        [[0; 4]; 8]
    }
    #[inline(always)]
    unsafe fn iload(self, p: *const u8) -> [i32; 8] {
        // SAFETY: the caller guarantees 32 readable bytes; read_unaligned tolerates any
        // alignment and every bit pattern is a valid [i32; 8].
        unsafe { p.cast::<[i32; 8]>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn wload(self, p: *const u8) -> [[i8; 4]; 8] {
        // SAFETY: as `iload`, 32 bytes.
        unsafe { p.cast::<[[i8; 4]; 8]>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn xbcast(self, p: *const u8) -> [u8; 4] {
        // SAFETY: the caller guarantees 4 readable bytes.
        unsafe { p.cast::<[u8; 4]>().read_unaligned() }
    }
    #[inline(always)]
    fn dot(self, acc: [i32; 8], x: [u8; 4], w: [[i8; 4]; 8]) -> [i32; 8] {
        core::array::from_fn(|j| {
            // At most 4 * 255 * 128 in magnitude: exact; only the final add can wrap.
            let d: i32 = (0..4).map(|t| x[t] as i32 * w[j][t] as i32).sum();
            acc[j].wrapping_add(d)
        })
    }
    #[inline(always)]
    fn iadd(self, a: [i32; 8], b: [i32; 8]) -> [i32; 8] {
        core::array::from_fn(|j| a[j].wrapping_add(b[j]))
    }
    #[inline(always)]
    fn to_f32(self, a: [i32; 8]) -> [f32; 8] {
        a.map(|v| v as f32)
    }
    #[inline(always)]
    fn round(self, v: [f32; 8]) -> [i32; 8] {
        v.map(round_even)
    }
    #[inline(always)]
    unsafe fn load_u8(self, p: *const u8) -> [f32; 8] {
        // SAFETY: the caller guarantees 8 readable bytes.
        unsafe { p.cast::<[u8; 8]>().read_unaligned() }.map(|b| b as f32)
    }
    #[inline(always)]
    unsafe fn store_u8(self, p: *mut u8, a: [i32; 8]) {
        // SAFETY: the caller guarantees 8 writable bytes.
        unsafe { p.cast::<[u8; 8]>().write_unaligned(a.map(|v| v as u8)) }
    }
}

/// Rounds half to even for `|v| < 2^22` (adding and removing `1.5 * 2^23` leaves no fraction
/// bits, and IEEE addition rounds to nearest even), as `cvtps2dq` and `vcvtnq` do.
#[inline(always)]
pub(crate) fn round_even(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    ((v + MAGIC) - MAGIC) as i32
}
