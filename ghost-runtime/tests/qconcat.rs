//! Int8 channel concatenation: several inputs at any channel offset (block-aligned or not),
//! requantized or copied, against the ONNX formula (dequantize, then quantize); every SIMD path
//! bit for bit; the lanes outside an input's channels untouched, the last block's padding set to
//! the output zero point.

mod common;
use common::*;
use ghost_runtime::*;

/// `DequantizeLinear` then `QuantizeLinear` of one byte, as ONNX defines them.
fn want(q: u8, r: &U8Requant) -> u8 {
    let x = (q as i32 - r.in_zero_point as i32) as f32 * r.in_scale;
    ((x / r.out_scale).round_ties_even() + r.out_zero_point as f32).clamp(0.0, 255.0) as u8
}

fn params(rng: &mut Rng) -> (f32, u8) {
    let scale = [1e-3f32, 0.0137, 0.05, 0.5, 40.0][rng.range(0, 4)] * (1.0 + rng.f() * 0.3);
    let zp = [0u8, 128, 255, rng.range(0, 255) as u8][rng.range(0, 3)];
    (scale, zp)
}

struct Input {
    channels: usize,
    data: Vec<u8>,
    block_offset: usize,
    requant: U8Requant,
}

#[test]
fn concat_matches_formula_and_scalar_on_every_path() {
    let mut rng = Rng::new(97);
    for t in 0..trials(80) {
        let px = [1, 7, 63, 64, 65, 130][t % 6];
        let (out_scale, out_zp) = params(&mut rng);
        let n_inputs = rng.range(1, 4);
        let mut inputs = Vec::new();
        for _ in 0..n_inputs {
            let channels = rng.range(1, 20);
            let block_offset = rng.range(0, 1);
            let data = (0..(block_offset + channels.div_ceil(8)) * px * 8)
                .map(|_| rng.range(0, 255) as u8)
                .collect();
            // About one input in three already has the output's parameters (a copy).
            let (in_scale, in_zero_point) = if rng.range(0, 2) == 0 {
                (out_scale, out_zp)
            } else {
                params(&mut rng)
            };
            let requant = U8Requant {
                in_scale,
                in_zero_point,
                out_scale,
                out_zero_point: out_zp,
            };
            inputs.push(Input {
                channels,
                data,
                block_offset,
                requant,
            });
        }
        let out_channels: usize = inputs.iter().map(|i| i.channels).sum();
        let out_off = rng.range(0, 1);
        let out_len = (out_off + out_channels.div_ceil(8)) * px * 8;
        let run = |k: Kernels| {
            let mut y = vec![0xA5u8; out_len];
            let mut offset = 0;
            for i in &inputs {
                let shape = ConcatU8Shape {
                    pixels: px,
                    channels: i.channels,
                    channel_offset: offset,
                    out_channels,
                };
                k.concat_u8(
                    shape,
                    i.requant,
                    Src::at(&i.data, i.block_offset),
                    Dst::at(&mut y, out_off),
                )
                .unwrap();
                offset += i.channels;
            }
            y
        };
        let y = run(scalar());
        assert!(y[..out_off * px * 8].iter().all(|&b| b == 0xA5));
        let y_img = &y[out_off * px * 8..];
        let mut offset = 0;
        for i in &inputs {
            let x_img = &i.data[i.block_offset * px * 8..];
            for c in 0..i.channels {
                for p in 0..px {
                    let q = x_img[at(px, c, p)];
                    assert_eq!(
                        y_img[at(px, offset + c, p)],
                        want(q, &i.requant),
                        "trial {t} channel {c} of {} at {offset}, pixel {p}, {:?}",
                        i.channels,
                        i.requant
                    );
                }
            }
            offset += i.channels;
        }
        for c in out_channels..pad8(out_channels) {
            for p in 0..px {
                assert_eq!(y_img[at(px, c, p)], out_zp, "padding lane {c}");
            }
        }
        for kern in int8_isas() {
            assert_eq!(run(kern), y, "trial {t} {:?}", kern.isa());
        }
    }
}

#[test]
fn concat_checks_its_arguments() {
    let k = Kernels::new();
    let r = U8Requant {
        in_scale: 0.1,
        in_zero_point: 3,
        out_scale: 0.2,
        out_zero_point: 4,
    };
    let shape = ConcatU8Shape {
        pixels: 4,
        channels: 10,
        channel_offset: 6,
        out_channels: 16,
    };
    let x = vec![0u8; 2 * 4 * 8];
    let mut y = vec![0u8; 2 * 4 * 8];
    k.concat_u8(shape, r, Src::new(&x), Dst::new(&mut y))
        .unwrap();
    // The input's 10 channels need 2 blocks; one is too few.
    assert!(k
        .concat_u8(shape, r, Src::new(&x[..4 * 8]), Dst::new(&mut y))
        .is_err());
    // Channels 6..16 reach the output's second block.
    assert!(k
        .concat_u8(shape, r, Src::new(&x), Dst::new(&mut y[..4 * 8]))
        .is_err());
    let past_end = ConcatU8Shape {
        channel_offset: 7,
        ..shape
    };
    assert!(k
        .concat_u8(past_end, r, Src::new(&x), Dst::new(&mut y))
        .is_err());
    let zero_scale = U8Requant {
        out_scale: 0.0,
        ..r
    };
    assert!(k
        .concat_u8(shape, zero_scale, Src::new(&x), Dst::new(&mut y))
        .is_err());
}
