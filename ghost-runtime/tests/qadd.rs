//! Int8 residual add: the scalar path against the QDQ formula (dequantize both, add, quantize
//! with an IEEE division), every SIMD path bit for bit, the lengths checked.

mod common;
use common::*;
use ghost_runtime::*;

fn want(a: u8, b: u8, p: &AddU8Params) -> u8 {
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
            AddU8Params { a: y, b: y, y }
        } else {
            AddU8Params {
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
        for kern in simd_isas() {
            assert_eq!(run(kern), out, "trial {t} {:?}", kern.isa());
        }
    }
}

#[test]
fn add_checks_its_arguments() {
    let k = Kernels::new();
    let p = AddU8Params {
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
    let zero = AddU8Params { y: (0.0, 9), ..p };
    assert!(k.add_u8(zero, 16, &a, &b, &mut y).is_err());
}
