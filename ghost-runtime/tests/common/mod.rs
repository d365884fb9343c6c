//! Shared test helpers: the PRNG (`rng.rs`, shared with `ghost-bench`), ISA enumeration, tolerances and NCHW8c indexing, and
//! (in `cases`) the randomized pointwise, depthwise and Ghost cases.
#![allow(dead_code)]

mod cases;
mod rng;
#[allow(unused_imports)] // Only some test files use the cases.
pub use cases::*;
pub use rng::Rng;

#[cfg(feature = "std")]
use ghost_runtime::Team;
use ghost_runtime::{pack_pointwise, pointwise_packed_len, Activation, Fork, Isa, Kernels};

/// Scalar reference kernels.
pub fn scalar() -> Kernels {
    Kernels::with_isa(Isa::Scalar).unwrap()
}

/// Every SIMD path this machine supports (the scalar path is compared against formulas).
pub fn simd_isas() -> Vec<Kernels> {
    [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Simd128]
        .into_iter()
        .filter_map(Kernels::with_isa)
        .collect()
}

/// [`simd_isas`] plus every int8 code path they hide: on a CPU with AVX-VNNI, the AVX2 path
/// also without it (its `vpmaddubsw` split).
pub fn int8_isas() -> Vec<Kernels> {
    let mut v = simd_isas();
    let split: Vec<Kernels> = v
        .iter()
        .map(|k| k.without_avx_vnni())
        .filter(|k| !v.iter().any(|o| o.int8_path() == k.int8_path()))
        .collect();
    v.extend(split);
    v
}

pub fn apply(act: Activation, x: f64) -> f64 {
    match act {
        Activation::None => x,
        Activation::Relu => x.max(0.0),
        Activation::Clamp { lo, hi } => x.max(lo as f64).min(hi as f64),
        Activation::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
        Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Gelu => gelu64(x),
        Activation::Mish => mish64(x),
    }
}

/// Mish in f64, `x tanh(ln(1 + e^x))` (`e^x` overflowing to infinity gives `tanh = 1`).
pub fn mish64(x: f64) -> f64 {
    x * x.exp().ln_1p().tanh()
}

/// `erfc(x)` in f64, to about `1e-13` relative for `x >= 0` (and `2 - erfc(-x)` below 0):
/// `1 - erf(x)` from the series `erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ..
/// (2n+1))` (positive terms: no cancellation inside the sum) below 2, the continued fraction
/// `erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ..))))` from 2 on.
pub fn erfc64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        return 2.0 - erfc64(-x);
    }
    let frac_1_sqrt_pi = std::f64::consts::FRAC_2_SQRT_PI / 2.0;
    if x < 2.0 {
        let (x2, mut term, mut sum) = (x * x, x, x);
        let mut n = 0.0;
        while term > 1e-18 * sum {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
        }
        return 1.0 - 2.0 * frac_1_sqrt_pi * (-x2).exp() * sum;
    }
    if x > 27.0 {
        return 0.0; // below 1e-318
    }
    // Evaluated from the tail: 400 partial denominators are far more than enough at x >= 2.
    let mut f = x;
    for k in (1..=400).rev() {
        f = x + (k as f64 / 2.0) / f;
    }
    frac_1_sqrt_pi * (-x * x).exp() / f
}

/// `erf(x)` in f64 (see [`erfc64`]; absolute error about `1e-16`).
pub fn erf64(x: f64) -> f64 {
    if x < 0.0 {
        -erf64(-x)
    } else {
        1.0 - erfc64(x)
    }
}

/// GELU, `x (1 + erf(x / sqrt 2)) / 2`, in f64, through `erfc` so that the negative tail keeps
/// its relative accuracy: `x (1 - erfc(x/sqrt 2)/2)` for `x >= 0`, `x erfc(-x/sqrt 2)/2` below.
pub fn gelu64(x: f64) -> f64 {
    let a = x * std::f64::consts::FRAC_1_SQRT_2;
    if x == f64::NEG_INFINITY {
        0.0
    } else if x >= 0.0 {
        x * (1.0 - 0.5 * erfc64(a))
    } else {
        0.5 * x * erfc64(-a)
    }
}

/// `|a - b| <= 1e-5 * sqrt(k) * max(1, |ref|)` (k = number of accumulated terms).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], k: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let tol = 1e-5 * (k.max(1) as f32).sqrt();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "{what}: index {i}: got {g}, want {w} (err {err}, tol {tol})"
        );
    }
}

pub fn assert_close64(what: &str, got: &[f32], want: &[f64], k: usize) {
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_close(what, got, &want, k);
}

/// Checks a conv-like kernel's NCHW8c output `y` (`out_blocks` blocks of `ohw` pixels)
/// against the formula `want` (`cout x ohw`, logical channels) within the tolerance of `terms`
/// accumulated terms, its padded lanes finite, and, if given, its channel sums (accumulated
/// from 0.5) against `want`'s.
pub fn check_conv_output(
    what: &str,
    (y, sums): (&[f32], Option<&[f32]>),
    want: &[f64],
    (cout, out_blocks, ohw): (usize, usize, usize),
    terms: usize,
) {
    let got: Vec<f32> = (0..cout)
        .flat_map(|o| (0..ohw).map(move |p| (o, p)))
        .map(|(o, p)| y[at(ohw, o, p)])
        .collect();
    assert_close64(what, &got, want, terms);
    // Padded output lanes are finite (zero weights and bias).
    for o in cout..out_blocks * 8 {
        for p in 0..ohw {
            assert!(y[at(ohw, o, p)].is_finite(), "{what}: padded lane {o}");
        }
    }
    if let Some(sums) = sums {
        let want_sums: Vec<f64> = (0..cout)
            .map(|o| 0.5 + (0..ohw).map(|p| want[o * ohw + p]).sum::<f64>())
            .collect();
        assert_close64(
            &format!("{what} sums"),
            &sums[..cout],
            &want_sums,
            ohw * terms,
        );
    }
}

/// Index of logical channel `c`, pixel `p` in an NCHW8c tensor of `pixels` pixels.
pub fn at(pixels: usize, c: usize, p: usize) -> usize {
    (c / 8) * pixels * 8 + p * 8 + c % 8
}

pub fn pad8(c: usize) -> usize {
    c.div_ceil(8) * 8
}

/// Number of random trials: a handful under Miri (which is ~1000x slower), `n` otherwise.
pub fn trials(n: usize) -> usize {
    if cfg!(miri) {
        2
    } else {
        n
    }
}

/// Runs the parts one after another, last first, on the calling thread: a fork whose
/// scheduling is as different from the serial order as possible.
pub struct Reverse(pub usize);

impl Fork for Reverse {
    fn parts(&self) -> usize {
        self.0
    }
    fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        for i in (0..self.0).rev() {
            f(i);
        }
    }
}

/// Forks for the split-kernel tests. Real thread teams (not under Miri, where spinning threads are too slow) and odd part
/// counts, including more parts than a small layer has blocks or rows.
pub fn forks() -> Vec<Box<dyn Fork>> {
    #[cfg_attr(not(feature = "std"), allow(unused_mut))]
    let mut f: Vec<Box<dyn Fork>> = vec![Box::new(Reverse(3)), Box::new(Reverse(7))];
    // `Team` needs the std feature (Miri runs the tests without it).
    #[cfg(feature = "std")]
    if !cfg!(miri) {
        f.push(Box::new(Team::new(2).unwrap()));
        f.push(Box::new(Team::new(3).unwrap()));
    }
    f
}

pub fn all_isas() -> Vec<Kernels> {
    let mut v = vec![scalar()];
    v.extend(simd_isas());
    v
}

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs `f` for the scalar path and every SIMD path, comparing outputs with the scalar one.
pub fn each_isa(what: &str, k_terms: usize, f: impl Fn(Kernels) -> Vec<f32>) -> Vec<f32> {
    let want = f(scalar());
    for kern in simd_isas() {
        let got = f(kern);
        assert_close(&format!("{:?} {what}", kern.isa()), &got, &want, k_terms);
    }
    want
}

/// A random `k -> n` dense layer: logical weights `[n_pad][k_pad]`, bias, and the packed panel.
pub fn random_fc(rng: &mut Rng, k: usize, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (kp, np) = (pad8(k), pad8(n));
    let mut w = vec![0.0; kp * np];
    let mut b = vec![0.0; np];
    for o in 0..n {
        for i in 0..k {
            w[o * kp + i] = rng.f();
        }
        b[o] = rng.f();
    }
    let mut packed = vec![0.0; pointwise_packed_len(kp, np)];
    pack_pointwise(&w, &b, kp, np, &mut packed).unwrap();
    (w, b, packed)
}
