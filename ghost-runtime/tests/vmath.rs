//! The vector `exp`, sigmoid, SiLU, `tanh`, GELU and Mish (`Kernels::transcendental`) against f64 on
//! every ISA of this machine: a sweep of the whole finite range, edge values (saturation,
//! subnormal results and inputs, NaN, infinities) and odd lengths, with the ulp bounds (for
//! `tanh` and GELU the absolute bounds) the `arch::math` docs state.

mod common;
use common::*;
use ghost_runtime::*;

/// Bounds in ulp of the correctly rounded f32 result (module docs of `arch::math`).
const EXP_ULP: f64 = 1.5;
const SIGMOID_ULP: f64 = 3.0;
/// Below these magnitudes sigmoid and SiLU may flush to zero (`e^-x` overflows for
/// `x < -88.72`, where `sigmoid(x) < 3e-39` and `|silu(x)| < 2.7e-37`).
const SIGMOID_FLUSH: f64 = 1.1754943508222875e-38; // 2^-126
const SILU_FLUSH: f64 = 7.52316384526264e-37; // 2^-120
/// `tanh` is bounded in absolute terms: `1 - 2 / (e^2x + 1)` cancels near 0.
const TANH_ABS: f64 = 4.76837158203125e-7; // 2^-21
/// GELU: `|error| <= GELU_ABS * max(1, |x|)` everywhere.
const GELU_ABS: f64 = 2e-7;
/// GELU's negative tail in ulp of the exact result, where that is normal (`x >= -13.2`):
/// with FMA (`m^2` split exactly) and without (`e^(-m^2/2)` then off by up to `m^2/2` times
/// `2^-24` relative, 88 ulp at `m = 13.2`).
const GELU_TAIL_ULP_FMA: f64 = 6.0;
const GELU_TAIL_ULP_UNFUSED: f64 = 100.0;
/// Mish: `x t / (t + 2)` with `t = e^x (e^x + 2)`, five roundings after the `exp`'s.
const MISH_ULP: f64 = 4.0;
/// Below this magnitude Mish may be off absolutely (`e^x` subnormal from `x = -87.3` on, where
/// `|mish(x)| < 1.1e-36`).
const MISH_FLUSH: f64 = 7.52316384526264e-37; // 2^-120

/// Distance from `got` to the exact `want` in units of the f32 spacing at `want` (a subnormal
/// `want` is measured in subnormal steps, `2^-149`).
fn ulps(got: f32, want: f64) -> f64 {
    let a = want.abs();
    let e = if a < f32::MIN_POSITIVE as f64 {
        -149
    } else {
        a.log2().floor() as i32 - 23
    };
    (got as f64 - want).abs() / 2f64.powi(e)
}

fn inputs() -> Vec<f32> {
    let step = if cfg!(miri) { 7.3 } else { 0.0097 };
    let mut x: Vec<f32> = Vec::new();
    let mut v = -110.0f64;
    while v < 95.0 {
        x.push(v as f32);
        v += step;
    }
    x.extend([
        0.0,
        -0.0,
        1e-40,
        -1e-40,
        f32::MIN_POSITIVE,
        88.0,
        -88.0,
        88.72,
        88.722_83,
        88.723,
        -87.34,
        -103.27,
        -103.97,
        -104.0,
        100.0,
        -100.0,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
    ]);
    let mut rng = Rng::new(5);
    x.extend((0..trials(1001)).map(|_| rng.f() * 20.0));
    if x.len().is_multiple_of(2) {
        x.push(0.25);
    }
    x
}

/// The f64 reference of the tests (`common::erfc64`) at known values (30-digit `mpmath`).
// The references as mpmath printed them (17 significant digits).
#[allow(clippy::excessive_precision)]
#[test]
fn f64_erf_reference_matches_known_values() {
    let erf = [
        (0.001, 0.0011283787909692364),
        (0.1, 0.11246291601828489),
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (1.5, 0.9661051464753107),
        (1.99, 0.995111413199617),
        (2.0, 0.9953222650189527),
    ];
    for (x, want) in erf {
        let got = erf64(x);
        assert!((got - want).abs() <= 2e-16, "erf({x}) = {got}, want {want}");
        assert!((erf64(-x) + want).abs() <= 2e-16, "erf(-{x})");
    }
    let erfc = [
        (0.5, 0.47950012218695346),
        (1.99, 0.0048885868003830028),
        (2.0, 0.0046777349810472658),
        (2.01, 0.0044751506447517587),
        (2.5, 0.00040695201744495894),
        (3.0, 2.2090496998585441e-5),
        (4.0, 1.5417257900280019e-8),
        (5.0, 1.5374597944280349e-12),
        (7.0, 4.1838256077794144e-23),
        (10.0, 2.0884875837625448e-45),
        (20.0, 5.3958656116079009e-176),
    ];
    for (x, want) in erfc {
        let got = erfc64(x);
        assert!(
            (got / want - 1.0).abs() <= 1e-13,
            "erfc({x}) = {got:e}, want {want:e}"
        );
    }
    assert_eq!(erfc64(f64::INFINITY), 0.0);
    assert_eq!(erfc64(f64::NEG_INFINITY), 2.0);
    assert!(erfc64(f64::NAN).is_nan());
}

/// GELU's inputs: the common sweep plus a dense one of `[-14, 14]`, tiny and huge values.
fn gelu_inputs() -> Vec<f32> {
    let mut x = inputs();
    let step = if cfg!(miri) { 0.37 } else { 0.000_73 };
    let mut v = -14.0f64;
    while v < 14.0 {
        x.push(v as f32);
        v += step;
    }
    for e in -45..=38 {
        let t = 10f32.powi(e);
        x.extend([t, -t, 3.7 * t, -3.7 * t]);
    }
    x.extend([
        f32::MIN_POSITIVE / 3.0,
        16.0,
        -16.0,
        15.99,
        -13.2,
        -13.3,
        5.5,
        -5.5,
    ]);
    if x.len().is_multiple_of(2) {
        x.push(-0.75);
    }
    x
}

#[test]
fn gelu_within_its_bounds_on_every_isa() {
    let x = gelu_inputs();
    for k in isas() {
        let y = run(k, Transcendental::Gelu, &x);
        let fused = !matches!(k.isa(), Isa::Scalar | Isa::Simd128);
        let tail_bound = if fused {
            GELU_TAIL_ULP_FMA
        } else {
            GELU_TAIL_ULP_UNFUSED
        };
        let (mut max_abs, mut max_tail) = (0.0f64, 0.0f64);
        for (&xi, &yi) in x.iter().zip(&y) {
            let want = gelu64(xi as f64);
            if want.is_nan() {
                assert!(yi.is_nan(), "{k:?}: gelu({xi}) = {yi}, want NaN");
                continue;
            }
            if want.is_infinite() {
                assert_eq!(yi as f64, want, "{k:?}: gelu({xi})");
                continue;
            }
            let err = (yi as f64 - want).abs() / (xi as f64).abs().max(1.0);
            assert!(
                err <= GELU_ABS,
                "{k:?}: gelu({xi}) = {yi:e}, want {want:e}: off by {err:e} (scaled)"
            );
            max_abs = max_abs.max(err);
            if xi < -1.0 && want.abs() >= f32::MIN_POSITIVE as f64 {
                let u = ulps(yi, want);
                assert!(
                    u <= tail_bound,
                    "{k:?}: gelu({xi}) = {yi:e}, want {want:e}: {u:.2} ulp > {tail_bound}"
                );
                max_tail = max_tail.max(u);
            }
        }
        let ends = run(
            k,
            Transcendental::Gelu,
            &[f32::NEG_INFINITY, -1e30, 0.0, 1e30, f32::INFINITY],
        );
        assert_eq!(ends, [0.0, 0.0, 0.0, 1e30, f32::INFINITY], "{k:?}");
        std::eprintln!(
            "{:?}: gelu max error {max_abs:.3e} * max(1, |x|), negative tail {max_tail:.2} ulp",
            k.isa()
        );
    }
}

fn isas() -> Vec<Kernels> {
    Isa::ALL.into_iter().filter_map(Kernels::with_isa).collect()
}

fn run(k: Kernels, f: Transcendental, x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    k.transcendental(f, &mut y);
    y
}

/// Checks `got` against the exact `want` for input `x`; returns the ulp error (0 for
/// special values). A `want` of magnitude below `flush` may be off by up to `flush` absolute.
fn check(what: &str, x: f32, got: f32, want: f64, bound: f64, flush: f64) -> f64 {
    if want.is_nan() {
        assert!(got.is_nan(), "{what}({x}) = {got}, want NaN");
        return 0.0;
    }
    let rounded = want as f32;
    if rounded.is_infinite() {
        assert_eq!(got, rounded, "{what}({x}) = {got}, want {want}");
        return 0.0;
    }
    if want.abs() < flush {
        let err = (got as f64 - want).abs();
        assert!(err <= flush, "{what}({x}) = {got:e}, want {want:e}");
        return 0.0;
    }
    let u = ulps(got, want);
    assert!(
        u <= bound,
        "{what}({x}) = {got:e}, want {want:e}: {u:.2} ulp > {bound}"
    );
    u
}

#[test]
fn exp_within_its_ulp_bound_on_every_isa() {
    let x = inputs();
    assert!(!x.len().is_multiple_of(2));
    for k in isas() {
        let y = run(k, Transcendental::Exp, &x);
        let mut max = 0.0f64;
        for (&xi, &yi) in x.iter().zip(&y) {
            let want = (xi as f64).exp();
            max = max.max(check("exp", xi, yi, want, EXP_ULP, 0.0));
        }
        // Saturation is exact: zero, not a tiny garbage value; infinity, not NaN.
        let sat = run(
            k,
            Transcendental::Exp,
            &[-104.0, -1e30, f32::NEG_INFINITY, 89.0, 1e30],
        );
        assert_eq!(sat, [0.0, 0.0, 0.0, f32::INFINITY, f32::INFINITY], "{k:?}");
        // Subnormal inputs give exactly 1.
        assert_eq!(run(k, Transcendental::Exp, &[1e-40, -1e-40]), [1.0, 1.0]);
        std::eprintln!("{:?}: exp max error {max:.3} ulp", k.isa());
    }
}

#[test]
fn sigmoid_and_silu_within_their_ulp_bound_on_every_isa() {
    let x = inputs();
    for k in isas() {
        let s = run(k, Transcendental::Sigmoid, &x);
        let l = run(k, Transcendental::Silu, &x);
        let (mut ms, mut ml) = (0.0f64, 0.0f64);
        for ((&xi, &si), &li) in x.iter().zip(&s).zip(&l) {
            let xd = xi as f64;
            let sig = 1.0 / (1.0 + (-xd).exp());
            ms = ms.max(check("sigmoid", xi, si, sig, SIGMOID_ULP, SIGMOID_FLUSH));
            // x / (1 + e^-x): -inf / inf is NaN, as ONNX's Mul(x, Sigmoid(x)) gives.
            let silu = if xd == f64::NEG_INFINITY {
                f64::NAN
            } else {
                xd * sig
            };
            ml = ml.max(check("silu", xi, li, silu, SIGMOID_ULP, SILU_FLUSH));
        }
        let ends = run(
            k,
            Transcendental::Sigmoid,
            &[f32::NEG_INFINITY, -100.0, 0.0, 100.0, f32::INFINITY],
        );
        assert_eq!(ends, [0.0, 0.0, 0.5, 1.0, 1.0], "{k:?}");
        std::eprintln!(
            "{:?}: sigmoid max error {ms:.3} ulp, silu {ml:.3} ulp",
            k.isa()
        );
    }
}

#[test]
fn tanh_within_its_absolute_bound_on_every_isa() {
    let x = inputs();
    for k in isas() {
        let t = run(k, Transcendental::Tanh, &x);
        let mut max = 0.0f64;
        for (&xi, &ti) in x.iter().zip(&t) {
            if xi.is_nan() {
                assert!(ti.is_nan(), "tanh({xi}) = {ti}, want NaN");
                continue;
            }
            let want = (xi as f64).tanh();
            let err = (ti as f64 - want).abs();
            assert!(
                err <= TANH_ABS,
                "{k:?}: tanh({xi}) = {ti:e}, want {want:e}: off by {err:e}"
            );
            max = max.max(err);
        }
        let ends = run(
            k,
            Transcendental::Tanh,
            &[f32::NEG_INFINITY, -10.0, 0.0, 10.0, f32::INFINITY],
        );
        assert_eq!(ends, [-1.0, -1.0, 0.0, 1.0, 1.0], "{k:?}");
        std::eprintln!("{:?}: tanh max error {max:.3e} absolute", k.isa());
    }
}

#[test]
fn mish_within_its_ulp_bound_on_every_isa() {
    let x = inputs();
    for k in isas() {
        let y = run(k, Transcendental::Mish, &x);
        let mut max = 0.0f64;
        for (&xi, &yi) in x.iter().zip(&y) {
            let want = mish64(xi as f64);
            max = max.max(check("mish", xi, yi, want, MISH_ULP, MISH_FLUSH));
        }
        let ends = run(
            k,
            Transcendental::Mish,
            &[f32::NEG_INFINITY, -200.0, 0.0, 30.0, 1e30, f32::INFINITY],
        );
        // -inf * 0 is NaN; large inputs are themselves.
        assert!(ends[0].is_nan(), "{k:?}: mish(-inf) = {}", ends[0]);
        assert_eq!(ends[1..], [-0.0, 0.0, 30.0, 1e30, f32::INFINITY], "{k:?}");
        std::eprintln!("{:?}: mish max error {max:.3} ulp", k.isa());
    }
}

/// Every length from 0 to 19 (tails of 1..7 after 0, 1 or 2 full vectors) gives the values
/// the full-vector path gives, and leaves nothing past the slice touched.
#[test]
fn odd_lengths_match_the_vector_body() {
    let mut rng = Rng::new(9);
    let x: Vec<f32> = (0..24).map(|_| rng.f() * 12.0).collect();
    for k in isas() {
        for f in [
            Transcendental::Exp,
            Transcendental::Sigmoid,
            Transcendental::Silu,
            Transcendental::Tanh,
            Transcendental::Gelu,
            Transcendental::Mish,
        ] {
            let full = run(k, f, &x);
            for n in 0..20 {
                let mut y = x.clone();
                k.transcendental(f, &mut y[..n]);
                assert_eq!(y[..n], full[..n], "{k:?} {f:?} len {n}");
                assert_eq!(y[n..], x[n..], "{k:?} {f:?} len {n}: wrote past the end");
            }
        }
    }
}
