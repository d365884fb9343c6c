//! Quantize / dequantize boundary kernels: scalar against the ONNX formulas (IEEE division,
//! round half to even, saturation), every SIMD path and thread split bit for bit.

mod common;
use common::*;
use ghost_runtime::*;

fn want_q(x: f32, scale: f32, zp: u8) -> u8 {
    let v = x / scale;
    if v.is_nan() {
        return 0;
    }
    (v.round_ties_even() + zp as f32).clamp(0.0, 255.0) as u8
}

fn inputs(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 11 {
            // Exact halves of the step: ties must go to even.
            0 => (rng.range(0, 600) as f32 - 300.0 + 0.5) * scale,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => f32::NAN,
            4 => rng.f() * 1e30,
            _ => rng.f() * 300.0 * scale,
        })
        .collect()
}

#[test]
fn quantize_dequantize_match_formula_and_scalar() {
    let mut rng = Rng::new(41);
    for t in 0..trials(60) {
        let (blocks, px) = (rng.range(1, 4), rng.range(1, 37));
        let off = rng.range(0, 1);
        let scale = [1e-6f32, 0.0137, 0.5, 1.0, 3e4][t % 5] * (1.0 + rng.f() * 0.3);
        let zp = [0u8, 128, 255, rng.range(0, 255) as u8][rng.range(0, 3)];
        let x = inputs(&mut rng, (off + blocks) * px * 8, scale);
        let run = |k: Kernels| {
            let mut q = vec![7u8; (blocks + 1) * px * 8];
            k.quantize_u8(blocks, px, scale, zp, Src::at(&x, off), Dst::at(&mut q, 1))
                .unwrap();
            q
        };
        let q = run(scalar());
        for (i, v) in q.iter().enumerate() {
            if i < px * 8 {
                assert_eq!(*v, 7);
            } else {
                let xv = x[off * px * 8 + i - px * 8];
                assert_eq!(*v, want_q(xv, scale, zp), "x {xv} scale {scale} zp {zp}");
            }
        }
        for kern in int8_isas() {
            assert_eq!(run(kern), q, "{:?}", kern.isa());
        }
        for fork in forks() {
            let mut got = vec![7u8; (blocks + 1) * px * 8];
            Par::new(Kernels::new(), fork.as_ref())
                .min_split_macs(0)
                .quantize_u8(
                    blocks,
                    px,
                    scale,
                    zp,
                    Src::at(&x, off),
                    Dst::at(&mut got, 1),
                )
                .unwrap();
            assert_eq!(got, q);
        }
        // Dequantize the bytes back.
        let deq = |k: Kernels| {
            let mut y = vec![0f32; blocks * px * 8];
            k.dequantize_u8(blocks, px, scale, zp, Src::at(&q, 1), Dst::new(&mut y))
                .unwrap();
            bits(&y)
        };
        let y = deq(scalar());
        for (i, v) in y.iter().enumerate() {
            let want = (q[px * 8 + i] as f32 - zp as f32) * scale;
            assert_eq!(*v, want.to_bits());
        }
        for kern in int8_isas() {
            assert_eq!(deq(kern), y, "{:?}", kern.isa());
        }
        for fork in forks() {
            let mut got = vec![0f32; blocks * px * 8];
            Par::new(Kernels::new(), fork.as_ref())
                .min_split_macs(0)
                .dequantize_u8(blocks, px, scale, zp, Src::at(&q, 1), Dst::new(&mut got))
                .unwrap();
            assert_eq!(bits(&got), y);
        }
    }
}

#[test]
fn quantize_rejects_bad_scale_and_short_slices() {
    let x = vec![0f32; 16];
    let mut q = vec![0u8; 16];
    for s in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let err = scalar().quantize_u8(1, 2, s, 0, Src::new(&x), Dst::new(&mut q));
        assert!(matches!(err, Err(Error::Shape { arg: "scale", .. })), "{s}");
    }
    let mut short = vec![0u8; 15];
    assert!(scalar()
        .quantize_u8(1, 2, 1.0, 0, Src::new(&x), Dst::new(&mut short))
        .is_err());
}

/// The round trip on plain floats gives the bits of quantize then dequantize, at any length
/// (the tail past the last whole vector included), on every path.
#[test]
fn fake_quantize_is_quantize_then_dequantize() {
    let mut rng = Rng::new(43);
    for t in 0..trials(60) {
        let len = rng.range(1, 100);
        let scale = [1e-6f32, 0.0137, 0.5, 1.0, 3e4][t % 5] * (1.0 + rng.f() * 0.3);
        let zp = [0u8, 128, 255, rng.range(0, 255) as u8][rng.range(0, 3)];
        let x = inputs(&mut rng, len, scale);
        // Through the bytes: pad to whole vectors for the blocked kernels.
        let n = len.div_ceil(8) * 8;
        let mut xp = x.clone();
        xp.resize(n, 0.0);
        let mut q = vec![0u8; n];
        scalar()
            .quantize_u8(1, n / 8, scale, zp, Src::new(&xp), Dst::new(&mut q))
            .unwrap();
        let mut want = vec![0f32; n];
        scalar()
            .dequantize_u8(1, n / 8, scale, zp, Src::new(&q), Dst::new(&mut want))
            .unwrap();
        for kern in [scalar()].into_iter().chain(int8_isas()) {
            let mut y = vec![5f32; len + 3];
            kern.fake_quantize_u8(scale, zp, len, &x, &mut y).unwrap();
            assert_eq!(
                bits(&y[..len]),
                bits(&want[..len]),
                "{:?} len {len}",
                kern.isa()
            );
            assert_eq!(&y[len..], &[5.0; 3], "wrote past len");
        }
    }
    let k = Kernels::new();
    let mut y = [0f32; 4];
    assert!(k.fake_quantize_u8(0.0, 0, 4, &[1.0; 4], &mut y).is_err());
    assert!(k.fake_quantize_u8(0.1, 0, 4, &[1.0; 3], &mut y).is_err());
    assert!(k.fake_quantize_u8(0.1, 0, 5, &[1.0; 5], &mut y).is_err());
}
