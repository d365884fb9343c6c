//! Elementwise kernels (binary, in-place binary, per-channel broadcast) against the formula,
//! and NaN propagation through every epilogue activation on every ISA.

mod common;
use common::*;
use ghost_runtime::*;

/// Every path against the formula, on lengths around the kernel's 4-vector tiles (and a
/// remainder), with and without an activation.
#[test]
fn elementwise_matches_formula() {
    let mut rng = Rng::new(15);
    for &(blocks, px) in &[(3, 7), (1, 1), (2, 4), (5, 9), (4, 12), (2, 3)] {
        let a = rng.vec(blocks * px * 8);
        let b = rng.vec(blocks * px * 8);
        let v = rng.vec(blocks * 8);
        for op in [
            BinaryOp::Add,
            BinaryOp::Mul,
            BinaryOp::Sub,
            BinaryOp::Div,
            BinaryOp::PRelu,
        ] {
            let f = |x: f32, y: f32| match op {
                BinaryOp::Add => x + y,
                BinaryOp::Mul => x * y,
                BinaryOp::Sub => x - y,
                BinaryOp::Div => x / y,
                BinaryOp::PRelu => {
                    if x < 0.0 {
                        x * y
                    } else {
                        x
                    }
                }
            };
            let y = each_isa("binary", 1, |kern| {
                let mut y = vec![0.0; a.len()];
                kern.binary(op, &a, &b, &mut y, Activation::Relu).unwrap();
                y
            });
            let want: Vec<f32> = a.iter().zip(&b).map(|(&x, &z)| f(x, z).max(0.0)).collect();
            assert_close("binary", &y, &want, 1);
            let y2 = each_isa("binary_assign", 1, |kern| {
                let mut y = a.clone();
                kern.binary_assign(op, &mut y, &b, Activation::Relu)
                    .unwrap();
                y
            });
            assert_close("binary_assign", &y2, &want, 1);
            for act in [Activation::None, Activation::Relu] {
                let y3 = each_isa("channel", 1, |kern| {
                    let mut y = a.clone();
                    kern.channel_assign(op, &mut y, blocks, px, &v, act)
                        .unwrap();
                    y
                });
                for (i, (&got, &x)) in y3.iter().zip(&a).enumerate() {
                    let c = (i / (px * 8)) * 8 + i % 8;
                    let mut want = f(x, v[c]);
                    if act == Activation::Relu {
                        want = want.max(0.0);
                    }
                    assert_close("channel", &[got], &[want], 1);
                }
            }
        }
    }
}

/// PRelu on every ISA: exactly `x * slope` below zero (negative slopes too), `x` from zero up,
/// NaN and infinities through, per channel.
#[test]
fn prelu_matches_definition_on_every_isa() {
    let x = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3.5,
        -1.25,
        0.0,
        -7.0e-30,
        1.0e30,
    ];
    let mut rng = Rng::new(16);
    // Two blocks of three pixels; block 1 has negative and zero slopes.
    let mut v = rng.vec(16);
    v[8..12].copy_from_slice(&[-0.75, 0.0, -2.0, 1.5]);
    let data: Vec<f32> = (0..2 * 3).flat_map(|_| x).collect();
    for isa in Isa::ALL {
        let Some(k) = Kernels::with_isa(isa) else {
            continue;
        };
        let mut y = data.clone();
        k.channel_assign(BinaryOp::PRelu, &mut y, 2, 3, &v, Activation::None)
            .unwrap();
        for (i, (&got, &x)) in y.iter().zip(&data).enumerate() {
            let slope = v[(i / 24) * 8 + i % 8];
            let want = if x < 0.0 { x * slope } else { x };
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "{isa:?} element {i}: prelu({x}, {slope}) = {got}, want {want}"
            );
        }
    }
}

/// NaN passes through every epilogue activation on every ISA, as ONNX Runtime's Relu, Clip and
/// HardSigmoid do; infinities saturate.
#[test]
fn activations_propagate_nan_on_every_isa() {
    let acts = [
        Activation::Relu,
        Activation::Clamp { lo: 0.0, hi: 6.0 },
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Activation::HardSwish,
        Activation::Sigmoid,
        Activation::Silu,
        Activation::Gelu,
    ];
    let x = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1.0,
        -1.0,
        f32::NAN,
        0.5,
        -0.5,
    ];
    let zero = [0.0f32; 8];
    for isa in Isa::ALL {
        let Some(k) = Kernels::with_isa(isa) else {
            continue;
        };
        for act in acts {
            let mut out = [0.0f32; 8];
            k.binary(BinaryOp::Add, &x, &zero, &mut out, act).unwrap();
            assert!(
                out[0].is_nan() && out[5].is_nan(),
                "{isa:?} {act:?}: {out:?}"
            );
            assert!(
                // -inf * 0 is NaN in HardSwish and SiLU, as in ONNX Runtime.
                out[1..5].iter().all(|v| !v.is_nan())
                    || matches!(act, Activation::HardSwish | Activation::Silu),
                "{isa:?} {act:?}: {out:?}"
            );
        }
    }
}
