//! Int8 stem: the scalar path against the exact integer formula of a QLinearConv (taps outside
//! the image skipped), every SIMD path bit for bit against it, on odd shapes (1-4 input
//! channels, kernels 1-7, strides 1-3, asymmetric padding, output channels not multiples of
//! 8, widths that are not multiples of 4 or 8), ReLU or none, block offsets; and the padded
//! quantization against the QuantizeLinear formula.

mod common;
use common::*;
use ghost_runtime::*;

fn pick_zp(rng: &mut Rng) -> u8 {
    [0u8, 128, 255, rng.range(1, 254) as u8][rng.range(0, 3)]
}

#[test]
fn stem_u8_matches_formula_and_scalar_on_every_path() {
    let mut rng = Rng::new(211);
    for t in 0..trials(60) {
        let c_in = rng.range(1, 4);
        let k = [1, 2, 3, 5, 7][rng.range(0, 4)];
        let stride = rng.range(1, 3);
        let (h, w) = (rng.range(k, 19), rng.range(k, 23));
        let pads = [0; 4].map(|_| rng.range(0, k - 1));
        let (pt, pl, pb, pr) = (pads[0], pads[1], pads[2], pads[3]);
        let oh = (h + pt + pb - k) / stride + 1;
        let ow = (w + pl + pr - k) / stride + 1;
        let c_out = rng.range(1, 20);
        let (xzp, zp) = (pick_zp(&mut rng), pick_zp(&mut rng));
        let relu = rng.range(0, 1) == 1;
        let x: Vec<u8> = (0..c_in * h * w).map(|_| rng.next() as u8).collect();
        let wt: Vec<i8> = (0..c_out * c_in * k * k)
            .map(|i| if i % 11 == 0 { -128 } else { rng.next() as i8 })
            .collect();
        let bias: Vec<i32> = (0..c_out)
            .map(|_| (rng.next() >> 48) as i32 - 30000)
            .collect();
        let scale: Vec<f32> = (0..c_out)
            .map(|_| [1e-4f32, 2e-3, 0.05][rng.range(0, 2)] * (1.0 + rng.f()))
            .collect();
        let mut packed = vec![0u8; stem_u8_packed_len(c_in, k, c_out)];
        pack_stem_u8(&wt, &bias, &scale, c_in, k, c_out, xzp, &mut packed).unwrap();
        // The padded input.
        let hp = h + pt + pb;
        let wp = StemShape::padded_width(w, pl, pr, k, stride, ow) + rng.range(0, 2);
        let mut xp = vec![xzp; c_in * hp * wp];
        for c in 0..c_in {
            for r in 0..h {
                let at = (c * hp + pt + r) * wp + pl;
                xp[at..at + w].copy_from_slice(&x[(c * h + r) * w..(c * h + r + 1) * w]);
            }
        }
        let shape = StemShape {
            c_in,
            hp,
            wp,
            k,
            stride,
            c_out,
            oh,
            ow,
        };
        let rq = if relu {
            Requant::relu(zp)
        } else {
            Requant::new(zp)
        };
        let off = rng.range(0, 1);
        let len = (off + c_out.div_ceil(8)) * oh * ow * 8;
        let run = |kern: Kernels| {
            let mut y = vec![7u8; len + 8];
            kern.stem_u8(&packed, shape, &xp, Dst::at(&mut y[..len], off), rq)
                .unwrap();
            y
        };
        let y = run(scalar());
        for o in 0..c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias[o] as i64;
                    for c in 0..c_in {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * stride + ky) as isize - pt as isize;
                                let ix = (ox * stride + kx) as isize - pl as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let xv = x[(c * h + iy as usize) * w + ix as usize] as i64;
                                let wv = wt[((o * c_in + c) * k + ky) * k + kx] as i64;
                                acc += (xv - xzp as i64) * wv;
                            }
                        }
                    }
                    let lo = if relu { 0.0 } else { -(zp as f32) };
                    let f = (acc as i32 as f32 * scale[o])
                        .max(lo)
                        .min((255 - zp as i32) as f32);
                    let want = (f.round_ties_even() as i32 + zp as i32) as u8;
                    let at = off * oh * ow * 8 + at(oh * ow, o, oy * ow + ox);
                    assert_eq!(y[at], want, "trial {t}: o {o} at ({oy}, {ox}), {shape:?}");
                }
            }
        }
        assert_eq!(
            &y[..off * oh * ow * 8],
            vec![7u8; off * oh * ow * 8],
            "wrote before the view"
        );
        assert_eq!(&y[len..], &[7u8; 8], "wrote past the output");
        for kern in int8_isas() {
            assert_eq!(run(kern), y, "trial {t} {} {shape:?}", kern.int8_path());
        }
    }
}

#[test]
fn stem_u8_rejects_bad_arguments() {
    let k = Kernels::new();
    let shape = StemShape {
        c_in: 3,
        hp: 9,
        wp: 12,
        k: 3,
        stride: 2,
        c_out: 8,
        oh: 4,
        ow: 4,
    };
    let packed = vec![0u8; stem_u8_packed_len(3, 3, 8)];
    let x = vec![0u8; 3 * 9 * 12];
    let mut y = vec![0u8; 4 * 4 * 8];
    k.stem_u8(&packed, shape, &x, Dst::new(&mut y), Requant::new(0))
        .unwrap();
    let bad = [
        StemShape { hp: 8, ..shape },
        StemShape { wp: 9, ..shape },
        StemShape { k: 9, ..shape },
        StemShape { stride: 0, ..shape },
    ];
    for sh in bad {
        let x = vec![0u8; 3 * sh.hp * sh.wp];
        assert!(
            k.stem_u8(&packed, sh, &x, Dst::new(&mut y), Requant::new(0))
                .is_err(),
            "{sh:?}"
        );
    }
    assert!(k
        .stem_u8(&packed[1..], shape, &x, Dst::new(&mut y), Requant::new(0))
        .is_err());
    assert!(k
        .stem_u8(&packed, shape, &x[1..], Dst::new(&mut y), Requant::new(0))
        .is_err());
    assert!(k
        .stem_u8(&packed, shape, &x, Dst::new(&mut y[8..]), Requant::new(0))
        .is_err());
}

#[test]
fn quantize_padded_matches_formula_on_every_path() {
    let mut rng = Rng::new(223);
    for t in 0..trials(40) {
        let (c, h, w) = (rng.range(1, 3), rng.range(1, 9), rng.range(1, 27));
        let (top, left) = (rng.range(0, 3), rng.range(0, 3));
        let (hp, wp) = (top + h + rng.range(0, 2), left + w + rng.range(0, 4));
        let scale = [1e-3f32, 0.02, 0.3][rng.range(0, 2)] * (1.0 + rng.f());
        let zp = pick_zp(&mut rng);
        let x: Vec<f32> = (0..c * h * w)
            .map(|i| match i % 7 {
                // Exact ties between two levels, and values far outside the range.
                0 => (rng.range(0, 600) as f32 - 300.0 + 0.5) * scale,
                1 => 1e6 * (rng.f() - 0.5),
                _ => (rng.f() - 0.5) * 300.0 * scale,
            })
            .collect();
        let run = |kern: Kernels| {
            let mut y = vec![0u8; c * hp * wp];
            kern.quantize_padded_u8(scale, zp, (c, h, w), (hp, wp), (top, left), &x, &mut y)
                .unwrap();
            y
        };
        let y = run(scalar());
        for ci in 0..c {
            for r in 0..hp {
                for col in 0..wp {
                    let inside = (top..top + h).contains(&r) && (left..left + w).contains(&col);
                    let want = if inside {
                        let v = x[(ci * h + r - top) * w + col - left] / scale;
                        (v.round_ties_even() + zp as f32).clamp(0.0, 255.0) as u8
                    } else {
                        zp
                    };
                    assert_eq!(
                        y[(ci * hp + r) * wp + col],
                        want,
                        "trial {t} at {ci} {r} {col}"
                    );
                }
            }
        }
        for kern in int8_isas() {
            assert_eq!(run(kern), y, "trial {t} {}", kern.int8_path());
        }
    }
    let k = Kernels::new();
    let (x, mut y) = (vec![0f32; 2 * 3 * 4], vec![0u8; 2 * 5 * 6]);
    k.quantize_padded_u8(0.1, 3, (2, 3, 4), (5, 6), (1, 1), &x, &mut y)
        .unwrap();
    assert!(k
        .quantize_padded_u8(0.1, 3, (2, 3, 4), (5, 6), (3, 1), &x, &mut y)
        .is_err());
    assert!(k
        .quantize_padded_u8(0.0, 3, (2, 3, 4), (5, 6), (1, 1), &x, &mut y)
        .is_err());
    assert!(k
        .quantize_padded_u8(0.1, 3, (2, 3, 4), (5, 6), (1, 1), &x[1..], &mut y)
        .is_err());
}
