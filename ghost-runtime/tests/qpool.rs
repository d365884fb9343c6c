//! Int8 global average pool: the scalar path against the integer formula (ONNX Runtime's
//! `QLinearGlobalAveragePool`: exact sum, `(sum - n * zx) as f32 * scale`, round half to even),
//! every SIMD path bit for bit, pixel counts past one `f32` run, the arguments checked.

mod common;
use common::*;
use ghost_runtime::*;

fn want(x: &[u8], pixels: usize, b: usize, lane: usize, p: &PoolU8Params) -> u8 {
    let sum: i64 = (0..pixels)
        .map(|i| x[(b * pixels + i) * 8 + lane] as i64)
        .sum();
    let acc = sum - pixels as i64 * p.in_zero_point as i64;
    let v = (acc as f32 * p.scale).round_ties_even() + p.out_zero_point as f32;
    v.clamp(0.0, 255.0) as u8
}

#[test]
fn pool_matches_formula_and_scalar_on_every_path() {
    let mut rng = Rng::new(151);
    for t in 0..trials(60) {
        // 16,384 pixels make one f32 run; 40,000 take three.
        let pixels = [1, 3, 49, 196, 3136, 16_385, 40_000][t % 7];
        let blocks = rng.range(1, 5);
        let (in_zero_point, out_zero_point) = (rng.range(0, 255) as u8, rng.range(0, 255) as u8);
        // About the real scale, x_s / (y_s * n), or far off it (saturating).
        let base = [1.0, 0.3, 3.0, 1e-4, 50.0][rng.range(0, 4)] * (rng.f() + 1.5) * 0.5;
        let p = PoolU8Params {
            scale: base / pixels as f32,
            in_zero_point,
            out_zero_point,
        };
        // Every fifth trial, all 255 (the largest sums).
        let x: Vec<u8> = (0..blocks * pixels * 8)
            .map(|_| {
                if t % 5 == 4 {
                    255
                } else {
                    rng.range(0, 255) as u8
                }
            })
            .collect();
        let run = |k: Kernels| {
            let mut y = vec![7u8; blocks * 8];
            k.global_avgpool_u8(p, blocks, pixels, &x, &mut y).unwrap();
            y
        };
        let want_y = run(scalar());
        for (i, v) in want_y.iter().enumerate() {
            assert_eq!(*v, want(&x, pixels, i / 8, i % 8, &p), "{p:?} {pixels} px");
        }
        for k in int8_isas() {
            assert_eq!(run(k), want_y, "{:?} {p:?} {pixels} px", k.isa());
        }
    }
}

#[test]
fn pool_checks_its_arguments() {
    let k = Kernels::new();
    let p = PoolU8Params {
        scale: 0.1,
        in_zero_point: 0,
        out_zero_point: 0,
    };
    let (x, mut y) = (vec![0u8; 16], vec![0u8; 8]);
    assert!(k.global_avgpool_u8(p, 1, 2, &x, &mut y).is_ok());
    let err = k.global_avgpool_u8(p, 1, 3, &x, &mut y).unwrap_err();
    assert_eq!(
        err,
        Error::Length {
            arg: "x",
            expected: 24,
            actual: 16
        }
    );
    assert!(k.global_avgpool_u8(p, 1, 2, &x, &mut [0u8; 7]).is_err());
    assert!(k.global_avgpool_u8(p, 1, 0, &[], &mut y).is_err());
    for scale in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let bad = PoolU8Params { scale, ..p };
        assert!(matches!(
            k.global_avgpool_u8(bad, 1, 2, &x, &mut y),
            Err(Error::Shape { arg: "scale", .. })
        ));
    }
}
