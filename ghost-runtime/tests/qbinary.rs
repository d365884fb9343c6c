//! Int8 residual add and SE channel scaling: the scalar path against the QDQ formula
//! (dequantize both, add or multiply, quantize with an IEEE division), every SIMD path bit for
//! bit, the lengths checked.

mod common;
use common::*;
use ghost_runtime::*;

fn want(a: u8, b: u8, p: &U8BinaryParams) -> u8 {
    let x = (a as i32 - p.a.1 as i32) as f32 * p.a.0;
    let z = (b as i32 - p.b.1 as i32) as f32 * p.b.0;
    (((x + z) / p.y.0).round_ties_even() + p.y.1 as f32).clamp(0.0, 255.0) as u8
}

fn params(rng: &mut Rng) -> (f32, u8) {
    let scale = [1e-3f32, 0.0137, 0.05, 0.5, 40.0][rng.range(0, 4)] * (1.0 + rng.f() * 0.3);
    let zp = [0u8, 128, 255, rng.range(0, 255) as u8][rng.range(0, 3)];
    (scale, zp)
}

#[test]
fn add_matches_formula_and_scalar_on_every_path() {
    let mut rng = Rng::new(131);
    for t in 0..trials(80) {
        let len = 8 * rng.range(1, 90);
        let y = params(&mut rng);
        // Every fourth trial, inputs sharing the output's parameters (sums on whole steps).
        let p = if t % 4 == 0 {
            U8BinaryParams { a: y, b: y, y }
        } else {
            U8BinaryParams {
                a: params(&mut rng),
                b: params(&mut rng),
                y,
            }
        };
        let a: Vec<u8> = (0..len).map(|_| rng.range(0, 255) as u8).collect();
        let b: Vec<u8> = (0..len).map(|_| rng.range(0, 255) as u8).collect();
        let run = |k: Kernels| {
            let mut out = vec![7u8; len + 8];
            k.add_u8(p, len, &a, &b, &mut out).unwrap();
            out
        };
        let out = run(scalar());
        for i in 0..len {
            assert_eq!(out[i], want(a[i], b[i], &p), "trial {t} at {i}: {p:?}");
        }
        assert_eq!(&out[len..], &[7u8; 8], "wrote past len");
        for kern in int8_isas() {
            assert_eq!(run(kern), out, "trial {t} {:?}", kern.isa());
        }
    }
}

#[test]
fn add_checks_its_arguments() {
    let k = Kernels::new();
    let p = U8BinaryParams {
        a: (0.1, 3),
        b: (0.2, 0),
        y: (0.3, 9),
    };
    let (a, b, mut y) = (vec![1u8; 16], vec![2u8; 16], vec![0u8; 16]);
    k.add_u8(p, 16, &a, &b, &mut y).unwrap();
    assert!(
        k.add_u8(p, 12, &a, &b, &mut y).is_err(),
        "not whole vectors"
    );
    assert!(k.add_u8(p, 16, &a[..8], &b, &mut y).is_err());
    assert!(k.add_u8(p, 16, &a, &b[..8], &mut y).is_err());
    assert!(k.add_u8(p, 16, &a, &b, &mut y[..8]).is_err());
    let zero = U8BinaryParams { y: (0.0, 9), ..p };
    assert!(k.add_u8(zero, 16, &a, &b, &mut y).is_err());
}

fn want_mul(x: u8, g: u8, p: &U8BinaryParams) -> u8 {
    let xf = (x as i32 - p.a.1 as i32) as f32 * p.a.0;
    let gf = (g as i32 - p.b.1 as i32) as f32 * p.b.0;
    ((xf * gf / p.y.0).round_ties_even() + p.y.1 as f32).clamp(0.0, 255.0) as u8
}

#[test]
fn scale_channels_matches_formula_and_scalar_on_every_path() {
    let mut rng = Rng::new(137);
    for t in 0..trials(60) {
        let (blocks, px) = (rng.range(1, 5), rng.range(1, 40));
        let p = U8BinaryParams {
            a: params(&mut rng),
            // A hard-sigmoid gate in [0, 1]: a small scale.
            b: (1.0 / 255.0 * (1.0 + rng.f() * 0.2), rng.range(0, 3) as u8),
            y: params(&mut rng),
        };
        let x: Vec<u8> = (0..blocks * px * 8)
            .map(|_| rng.range(0, 255) as u8)
            .collect();
        let g: Vec<u8> = (0..blocks * 8).map(|_| rng.range(0, 255) as u8).collect();
        let run = |k: Kernels| {
            let mut out = vec![7u8; blocks * px * 8 + 8];
            k.scale_channels_u8(p, blocks, px, &x, &g, &mut out)
                .unwrap();
            out
        };
        let out = run(scalar());
        for b in 0..blocks {
            for i in 0..px * 8 {
                let at = b * px * 8 + i;
                assert_eq!(
                    out[at],
                    want_mul(x[at], g[b * 8 + i % 8], &p),
                    "trial {t}: {p:?}"
                );
            }
        }
        assert_eq!(&out[blocks * px * 8..], &[7u8; 8], "wrote past the tensor");
        for kern in int8_isas() {
            assert_eq!(run(kern), out, "trial {t} {:?}", kern.isa());
        }
    }
    let k = Kernels::new();
    let p = U8BinaryParams {
        a: (0.1, 3),
        b: (0.004, 0),
        y: (0.3, 9),
    };
    let (x, g, mut y) = (vec![1u8; 32], vec![2u8; 16], vec![0u8; 32]);
    k.scale_channels_u8(p, 2, 2, &x, &g, &mut y).unwrap();
    assert!(k.scale_channels_u8(p, 2, 2, &x[..24], &g, &mut y).is_err());
    assert!(k.scale_channels_u8(p, 2, 2, &x, &g[..8], &mut y).is_err());
    assert!(k.scale_channels_u8(p, 2, 2, &x, &g, &mut y[..31]).is_err());
    assert!(k
        .scale_channels_u8(p, usize::MAX, 2, &x, &g, &mut y)
        .is_err());
}
