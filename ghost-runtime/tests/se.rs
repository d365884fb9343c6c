//! Squeeze-excite gate against the naive formula, and folding a gate into the next 1x1.

mod common;
use common::*;
use ghost_runtime::*;

/// The SE gate on every ISA against the naive formula in f64, for the inner activations of
/// GhostNet (ReLU), EfficientNet (SiLU) and MobileNetV3-like blocks (HardSwish) and the usual
/// gates, on channel counts that are not multiples of 8.
#[test]
fn se_gate_and_weight_folding() {
    let mut rng = Rng::new(13);
    let hard_sigmoid = Activation::HardSigmoid {
        alpha: 1.0 / 6.0,
        beta: 0.5,
    };
    let acts = [
        (Activation::Relu, Activation::Sigmoid),
        (Activation::Relu, hard_sigmoid),
        (Activation::Silu, Activation::Sigmoid),
        (Activation::HardSwish, hard_sigmoid),
        (Activation::Silu, Activation::Clamp { lo: 0.0, hi: 1.0 }),
        (Activation::Gelu, Activation::Sigmoid),
    ];
    for ((c, r, px), (inner, gate_act)) in [(20, 6, 49), (37, 9, 5), (8, 3, 1)]
        .into_iter()
        .flat_map(|shape| acts.map(|a| (shape, a)))
    {
        let (w1, b1, p1) = random_fc(&mut rng, c, r);
        let (w2, b2, p2) = random_fc(&mut rng, r, c);
        let mut sums = rng.vec(pad8(c));
        sums[c..].iter_mut().for_each(|v| *v = 0.0);
        let se_acts = SeActivations {
            inner,
            gate: gate_act,
        };
        let g = each_isa("se", c, |kern| {
            let mut scratch = vec![0.0; pad8(c) + pad8(r)];
            let mut gate = vec![0.0; pad8(c)];
            kern.se_gate(
                &sums,
                1.0 / px as f32,
                &p1,
                &p2,
                SeShape {
                    c_blocks: pad8(c) / 8,
                    r_blocks: pad8(r) / 8,
                },
                se_acts,
                &mut scratch,
                &mut gate,
            )
            .unwrap();
            gate
        });
        let mid: Vec<f64> = (0..r)
            .map(|j| {
                let a: f64 = (0..c)
                    .map(|i| w1[j * pad8(c) + i] as f64 * sums[i] as f64 / px as f64)
                    .sum();
                apply(inner, a + b1[j] as f64)
            })
            .collect();
        for i in 0..c {
            let z: f64 = (0..r)
                .map(|j| w2[i * pad8(r) + j] as f64 * mid[j])
                .sum::<f64>()
                + b2[i] as f64;
            let what = format!("se gate {c}->{r}, {se_acts:?}");
            assert_close64(&what, &[g[i]], &[apply(gate_act, z)], c);
        }
    }
    // Folding a gate into the next 1x1 equals gating its input.
    let (k, n, px) = (20, 13, 10);
    let (_, _, packed) = random_fc(&mut rng, k, n);
    let s = rng.vec(pad8(k));
    let x = rng.vec(pad8(k) * px);
    let mut scaled = vec![0.0; packed.len()];
    scale_packed_pointwise(&packed, pad8(k), pad8(n), &s, &mut scaled).unwrap();
    let shape = PointwiseShape {
        k_blocks: pad8(k) / 8,
        n_blocks: pad8(n) / 8,
        pixels: px,
    };
    let mut gated = x.clone();
    let kern = Kernels::new();
    kern.channel_assign(
        BinaryOp::Mul,
        &mut gated,
        pad8(k) / 8,
        px,
        &s,
        Activation::None,
    )
    .unwrap();
    let (mut y1, mut y2) = (vec![0.0; pad8(n) * px], vec![0.0; pad8(n) * px]);
    kern.pointwise(
        &scaled,
        shape,
        Src::new(&x),
        Dst::new(&mut y1),
        Epilogue::act(Activation::Relu),
    )
    .unwrap();
    kern.pointwise(
        &packed,
        shape,
        Src::new(&gated),
        Dst::new(&mut y2),
        Epilogue::act(Activation::Relu),
    )
    .unwrap();
    assert_close("folded SE", &y1, &y2, k);
}
