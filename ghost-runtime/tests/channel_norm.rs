//! The channel LayerNorm (`Kernels::channel_norm`) against the formula in f64 on every ISA of
//! this machine: channel counts around the 8-lane blocks (padding lanes full of garbage, NaN
//! included, in `src`), pixel counts around the 8-pixel groups, inputs with a large common
//! offset (where `E[x^2] - E[x]^2` fails) and outlier channels; the output's padding lanes
//! must come out 0.

mod common;
use common::*;
use ghost_runtime::*;

/// `|got - want| <= TOL * scale`, `scale` the largest `|want|` of the image: the kernel's error
/// is a few `f32` roundings of the normalized value, whatever the input's offset.
const TOL: f64 = 1e-6;

/// `y[c] = (x[c] - mean) / sqrt(var + eps) * gamma[c] + beta[c]` per pixel, in f64; padding
/// lanes 0.
fn reference(shape: ChannelNormShape, gamma: &[f32], beta: &[f32], x: &[f32]) -> Vec<f64> {
    let (c, p) = (shape.channels, shape.pixels);
    let mut y = vec![0.0f64; x.len()];
    for px in 0..p {
        let v: Vec<f64> = (0..c).map(|ch| x[at(p, ch, px)] as f64).collect();
        let mean = v.iter().sum::<f64>() / c as f64;
        let var = v.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() / c as f64;
        let r = 1.0 / (var + shape.eps as f64).sqrt();
        for (ch, t) in v.iter().enumerate() {
            y[at(p, ch, px)] = (t - mean) * r * gamma[ch] as f64 + beta[ch] as f64;
        }
    }
    y
}

/// How a test image's values are drawn.
#[derive(Clone, Copy, Debug)]
enum Data {
    /// Uniform in `[-1, 1]` times a per-pixel scale, plus a per-pixel offset.
    Plain,
    /// Mean 1000, spread 0.01: the variance is `1e-8` of `E[x^2]`.
    Offset,
    /// Plain, with every 7th channel 300 times larger (transformer-style outliers).
    Outliers,
}

/// A random image of `shape` with garbage (NaN, infinities, huge values) in `src`'s padding
/// lanes, and `gamma`, `beta` with zero padding.
fn image(rng: &mut Rng, shape: ChannelNormShape, data: Data) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (c, p) = (shape.channels, shape.pixels);
    let garbage = [
        f32::NAN,
        f32::INFINITY,
        -3e38,
        f32::NEG_INFINITY,
        1e30,
        -0.0,
        7.0,
    ];
    let mut x = vec![0.0f32; pad8(c) * p];
    for px in 0..p {
        let (scale, offset) = (2.0 + rng.f(), 3.0 * rng.f());
        for ch in 0..pad8(c) {
            x[at(p, ch, px)] = if ch >= c {
                garbage[(ch + px) % garbage.len()]
            } else {
                match data {
                    Data::Plain => scale * rng.f() + offset,
                    Data::Offset => 1000.0 + 0.01 * rng.f(),
                    Data::Outliers if ch % 7 == 3 => 300.0 * (scale * rng.f() + offset),
                    Data::Outliers => scale * rng.f() + offset,
                }
            };
        }
    }
    let (mut gamma, mut beta) = (vec![0.0f32; pad8(c)], vec![0.0f32; pad8(c)]);
    for ch in 0..c {
        gamma[ch] = 1.0 + 0.5 * rng.f();
        beta[ch] = 0.5 * rng.f();
    }
    (gamma, beta, x)
}

/// Runs every ISA on one image against the reference; returns the largest error relative to
/// the output's scale.
fn check_all_isas(shape: ChannelNormShape, gamma: &[f32], beta: &[f32], x: &[f32]) -> f64 {
    let want = reference(shape, gamma, beta, x);
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    let mut worst = 0.0f64;
    for kern in all_isas() {
        // Stale values in the padding lanes must be overwritten with zeros.
        let mut y = vec![f32::NAN; x.len()];
        kern.channel_norm(shape, gamma, beta, x, &mut y).unwrap();
        for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
            let (lane, block) = (i % 8, i / (8 * shape.pixels));
            if block * 8 + lane >= shape.channels {
                assert_eq!(
                    g.to_bits(),
                    0,
                    "{:?} {shape:?}: padding index {i}",
                    kern.isa()
                );
                continue;
            }
            let err = (g as f64 - w).abs() / scale;
            assert!(
                err <= TOL,
                "{:?} {shape:?}: index {i}: got {g}, want {w} (error {err:e} of {scale})",
                kern.isa()
            );
            worst = worst.max(err);
        }
    }
    worst
}

#[test]
fn channel_norm_matches_the_formula() {
    let mut rng = Rng::new(71);
    let mut shapes = Vec::new();
    for channels in [1, 3, 7, 8, 9, 17, 96, 100] {
        for pixels in [1, 5, 8, 13, 49] {
            shapes.push((channels, pixels));
        }
    }
    shapes.extend([(96, 3136), (17, 3137), (768, 49), (192, 15)]);
    if cfg!(miri) {
        shapes = vec![(9, 13), (3, 5)];
    }
    let mut worst = [0.0f64; 3];
    for (n, &(channels, pixels)) in shapes.iter().enumerate() {
        for (d, data) in [Data::Plain, Data::Offset, Data::Outliers]
            .into_iter()
            .enumerate()
        {
            let eps = if (n + d) % 2 == 0 { 1e-6 } else { 1e-5 };
            let shape = ChannelNormShape {
                channels,
                pixels,
                eps,
            };
            let (gamma, beta, x) = image(&mut rng, shape, data);
            worst[d] = worst[d].max(check_all_isas(shape, &gamma, &beta, &x));
        }
    }
    std::eprintln!(
        "channel_norm max error (of the output's scale): plain {:.2e}, offset 1000 {:.2e}, \
         outliers {:.2e}",
        worst[0],
        worst[1],
        worst[2]
    );
}

/// A pixel whose channels are all equal normalizes to 0 (so the output is `beta`), with any
/// `eps > 0`; one channel alone too.
#[test]
fn constant_pixels_give_beta() {
    let mut rng = Rng::new(72);
    for (channels, pixels) in [(1, 9), (12, 3), (40, 17)] {
        let shape = ChannelNormShape {
            channels,
            pixels,
            eps: 1e-5,
        };
        let (gamma, beta, mut x) = image(&mut rng, shape, Data::Plain);
        for px in 0..pixels {
            let v = 100.0 * rng.f();
            for ch in 0..channels {
                x[at(pixels, ch, px)] = v;
            }
        }
        for kern in all_isas() {
            let mut y = vec![f32::NAN; x.len()];
            kern.channel_norm(shape, &gamma, &beta, &x, &mut y).unwrap();
            for px in 0..pixels {
                for ch in 0..channels {
                    assert_eq!(y[at(pixels, ch, px)], beta[ch], "{:?}", kern.isa());
                }
            }
        }
    }
}

#[test]
fn channel_norm_rejects_bad_arguments() {
    let k = scalar();
    let shape = ChannelNormShape {
        channels: 12,
        pixels: 5,
        eps: 1e-6,
    };
    let (g, b, x, mut y) = (vec![1.0; 16], vec![0.0; 16], vec![0.5; 80], vec![0.0; 80]);
    assert!(k.channel_norm(shape, &g, &b, &x, &mut y).is_ok());
    let exact = |arg, expected, actual| {
        Err(Error::ExactLength {
            arg,
            expected,
            actual,
        })
    };
    assert_eq!(
        k.channel_norm(shape, &g[..15], &b, &x, &mut y),
        exact("gamma", 16, 15)
    );
    assert_eq!(
        k.channel_norm(shape, &g, &[0.0; 17], &x, &mut y),
        exact("beta", 16, 17)
    );
    assert_eq!(
        k.channel_norm(shape, &g, &b, &x[..79], &mut y),
        exact("src", 80, 79)
    );
    assert_eq!(
        k.channel_norm(shape, &g, &b, &x, &mut [0.0; 88]),
        exact("dst", 80, 88)
    );
    for eps in [-1e-6, f32::NAN, f32::INFINITY] {
        let bad = ChannelNormShape { eps, ..shape };
        assert!(matches!(
            k.channel_norm(bad, &g, &b, &x, &mut y),
            Err(Error::Shape { arg: "eps", .. })
        ));
    }
    let none = ChannelNormShape {
        channels: 0,
        ..shape
    };
    assert!(matches!(
        k.channel_norm(none, &[], &[], &[], &mut []),
        Err(Error::Shape {
            arg: "channels",
            ..
        })
    ));
    // No pixels: nothing to do.
    let empty = ChannelNormShape { pixels: 0, ..shape };
    assert!(k.channel_norm(empty, &g, &b, &[], &mut []).is_ok());
    // A shape whose size overflows fails its length check instead of wrapping.
    let huge = ChannelNormShape {
        pixels: usize::MAX / 4,
        ..shape
    };
    assert!(k.channel_norm(huge, &g, &b, &x, &mut y).is_err());
}
