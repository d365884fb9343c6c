//! `expf` against f64 `exp`, and softmax against the f64 formula.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn softmax_and_exp() {
    for i in (-870..=880).step_by(if cfg!(miri) { 97 } else { 1 }) {
        let x = i as f32 / 10.0;
        let want = (x as f64).exp();
        let got = expf(x) as f64;
        assert!(
            (got - want).abs() <= 4e-7 * want,
            "expf({x}) = {got}, want {want}"
        );
    }
    let mut rng = Rng::new(17);
    let x: Vec<f32> = (0..1000).map(|_| rng.f() * 20.0).collect();
    let mut y = vec![0.0; 1000];
    Kernels::new().softmax(&x, &mut y).unwrap();
    let max = x.iter().cloned().fold(f32::MIN, f32::max) as f64;
    let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
    let want: Vec<f64> = x.iter().map(|&v| (v as f64 - max).exp() / sum).collect();
    assert_close64("softmax", &y, &want, 1000);
}
