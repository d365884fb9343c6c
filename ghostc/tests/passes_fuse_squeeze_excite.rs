//! fuse_squeeze_excite: the timm (1x1 convs) and Huawei (Linear on a flattened vector) SE forms.

mod passes_common;

use ghostc::ir::{Activation, BinaryOp, Graph, Op, ValueId};
use ghostc::passes::{FuseActivation, FuseSqueezeExcite};
use passes_common::*;

const ON: FuseSqueezeExcite = FuseSqueezeExcite { enabled: true };
const ACT: FuseActivation = FuseActivation {
    act: true,
    linear: true,
};
const HSIG: Activation = Activation::HardSigmoid {
    alpha: 1.0 / 6.0,
    beta: 0.5,
};

fn se_ops(g: &Graph) -> Vec<(Activation, Activation)> {
    g.nodes
        .node_indices()
        .filter_map(|n| match &g.node(n).op {
            Op::SqueezeExcite(s) => Some((s.act, s.gate)),
            _ => None,
        })
        .collect()
}

/// timm: mean(x, [2,3], keepdim) -> conv1x1+b -> relu -> conv1x1+b -> hard_sigmoid -> x * s.
fn timm_se(
    g: &mut Graph,
    rng: &mut Rng,
    x: ValueId,
    r: usize,
    global_pool: bool,
    gate_first: bool,
) -> ValueId {
    let c = g.value(x).ty.shape[1];
    let pooled = if global_pool {
        node(g, Op::GlobalAveragePool, &[x])
    } else {
        reduce_mean_hw(g, x, true)
    };
    let h = conv(g, rng, pooled, r, 1, 1, 1, true);
    let h = relu(g, h);
    let s = conv(g, rng, h, c, 1, 1, 1, true);
    let s = act(g, s, HSIG);
    if gate_first {
        binary(g, BinaryOp::Mul, s, x)
    } else {
        binary(g, BinaryOp::Mul, x, s)
    }
}

/// Huawei: GAP -> view(n, c) -> Linear -> ReLU -> Linear -> clamp(s + 3, 0, 6) / 6 -> view.
fn huawei_se(
    g: &mut Graph,
    rng: &mut Rng,
    x: ValueId,
    r: usize,
    gate: Option<Activation>,
) -> ValueId {
    let [n, c, _, _] = g.value(x).ty.shape[..] else {
        panic!()
    };
    let pooled = node(g, Op::GlobalAveragePool, &[x]);
    let v = reshape(g, pooled, &[n, c]);
    let h = gemm(g, rng, v, r, true, 1.0, 1.0);
    let h = relu(g, h);
    let s = gemm(g, rng, h, c, true, 1.0, 1.0);
    let s = match gate {
        Some(a) => act(g, s, a),
        None => {
            let three = scalar(g, 3.0);
            let t = binary(g, BinaryOp::Add, s, three);
            let t = act(g, t, Activation::Clamp { lo: 0.0, hi: 6.0 });
            let six = scalar(g, 6.0);
            binary(g, BinaryOp::Div, t, six)
        }
    };
    let s = reshape(g, s, &[n, c, 1, 1]);
    binary(g, BinaryOp::Mul, x, s)
}

fn block_input(g: &mut Graph, rng: &mut Rng, n: usize) -> ValueId {
    let x = input(g, "x", &[n, 5, 6, 6]);
    let y = conv(g, rng, x, 12, 3, 1, 1, true);
    relu(g, y)
}

#[test]
fn timm_form_after_activation_fusion() {
    for (n, global_pool, gate_first) in [(1, false, false), (2, true, true)] {
        let mut rng = Rng::new(1);
        let mut g = Graph::new();
        let x = block_input(&mut g, &mut rng, n);
        let y = timm_se(&mut g, &mut rng, x, 4, global_pool, gate_first);
        g.outputs.push(y);
        let (g, _) = check_pass(&g, &ACT, 2);
        let (after, changed) = check_pass(&g, &ON, 3);
        assert!(changed);
        assert_eq!(se_ops(&after), vec![(Activation::Relu, HSIG)], "\n{after}");
        assert_eq!(after.nodes.node_count(), 2, "\n{after}"); // block conv + SE
        for op in ["reduce_mean", "global_avg_pool", "mul"] {
            assert_eq!(count(&after, op), 0, "{op} left");
        }
    }
}

#[test]
fn timm_form_with_separate_activation_nodes() {
    // Activation fusion off: raw Conv + activation nodes still match.
    let mut rng = Rng::new(4);
    let mut g = Graph::new();
    let x = block_input(&mut g, &mut rng, 1);
    let y = timm_se(&mut g, &mut rng, x, 4, false, false);
    g.outputs.push(y);
    let (after, _) = check_pass(&g, &ON, 5);
    assert_eq!(se_ops(&after), vec![(Activation::Relu, HSIG)]);
    assert_eq!(after.nodes.node_count(), 3, "\n{after}"); // conv, relu, SE
}

#[test]
fn huawei_form_after_activation_fusion() {
    for (n, gate) in [
        (1, None),
        (3, None),
        (1, Some(Activation::Clamp { lo: 0.0, hi: 1.0 })),
    ] {
        let mut rng = Rng::new(6);
        let mut g = Graph::new();
        let x = block_input(&mut g, &mut rng, n);
        let y = huawei_se(&mut g, &mut rng, x, 8, gate);
        g.outputs.push(y);
        let (g, _) = check_pass(&g, &ACT, 7);
        let (after, _) = check_pass(&g, &ON, 8);
        assert_eq!(
            se_ops(&after),
            vec![(Activation::Relu, gate.unwrap_or(HSIG))],
            "\n{after}"
        );
        assert_eq!(after.nodes.node_count(), 2, "\n{after}");
    }
}

#[test]
fn shared_intermediates_or_foreign_pool_are_left_alone() {
    // The pooled vector is read elsewhere.
    let mut rng = Rng::new(9);
    let mut g = Graph::new();
    let x = block_input(&mut g, &mut rng, 1);
    let y = timm_se(&mut g, &mut rng, x, 4, false, false);
    g.outputs.push(y);
    let pooled = g
        .nodes
        .node_indices()
        .find(|&n| matches!(g.node(n).op, Op::Reduce(_)))
        .map(|n| g.node(n).outputs[0])
        .unwrap();
    g.outputs.push(pooled);
    let (g, _) = check_pass(&g, &ACT, 10);
    assert_unchanged(&g, &ON);

    // The pool reads another tensor than the one the gate multiplies.
    let mut g = Graph::new();
    let x = block_input(&mut g, &mut rng, 1);
    let other = relu(&mut g, x);
    let c = 12;
    let pooled = reduce_mean_hw(&mut g, other, true);
    let h = conv(&mut g, &mut rng, pooled, 4, 1, 1, 1, true);
    let h = relu(&mut g, h);
    let s = conv(&mut g, &mut rng, h, c, 1, 1, 1, true);
    let s = act(&mut g, s, HSIG);
    let y = binary(&mut g, BinaryOp::Mul, x, s);
    g.outputs.push(y);
    let (g, _) = check_pass(&g, &ACT, 11);
    assert_unchanged(&g, &ON);

    // No activation between the two FCs.
    let mut g = Graph::new();
    let x = block_input(&mut g, &mut rng, 1);
    let pooled = reduce_mean_hw(&mut g, x, true);
    let h = conv(&mut g, &mut rng, pooled, 4, 1, 1, 1, true);
    let s = conv(&mut g, &mut rng, h, 12, 1, 1, 1, true);
    let s = act(&mut g, s, Activation::Sigmoid);
    let y = binary(&mut g, BinaryOp::Mul, x, s);
    g.outputs.push(y);
    let (g, _) = check_pass(&g, &ACT, 12);
    assert_unchanged(&g, &ON);
}

#[test]
fn disabled_changes_nothing() {
    let mut rng = Rng::new(13);
    let mut g = Graph::new();
    let x = block_input(&mut g, &mut rng, 1);
    let y = timm_se(&mut g, &mut rng, x, 4, false, false);
    g.outputs.push(y);
    let (g, _) = check_pass(&g, &ACT, 14);
    assert_unchanged(&g, &FuseSqueezeExcite { enabled: false });
}

/// An SE with `inner` between its 1x1 convs and a sigmoid gate. `inner` `None`: SiLU as
/// PyTorch exports it, `Mul(h, Sigmoid(h))` (EfficientNet).
fn se_with_inner(g: &mut Graph, rng: &mut Rng, x: ValueId, inner: Option<Activation>) -> ValueId {
    let pooled = node(g, Op::GlobalAveragePool, &[x]);
    let h = conv(g, rng, pooled, 4, 1, 1, 1, true);
    let h = match inner {
        Some(a) => act(g, h, a),
        None => {
            let sig = act(g, h, Activation::Sigmoid);
            binary(g, BinaryOp::Mul, h, sig)
        }
    };
    let s = conv(g, rng, h, 12, 1, 1, 1, true);
    let s = act(g, s, Activation::Sigmoid);
    binary(g, BinaryOp::Mul, x, s)
}

/// EfficientNet's SE (SiLU between the FCs, sigmoid gate) fuses once `fuse_activation` has
/// folded the SiLU into the reduce conv, as does one with HardSwish there; the interpreter
/// gives the same output before and after (`check_pass`).
#[test]
fn se_with_silu_or_hardswish_between_the_fcs_fuses() {
    for (seed, inner, want) in [
        (9, None, Activation::Silu),
        (10, Some(Activation::Silu), Activation::Silu),
        (11, Some(Activation::HardSwish), Activation::HardSwish),
    ] {
        let mut rng = Rng::new(seed);
        let mut g = Graph::new();
        let x = block_input(&mut g, &mut rng, 1);
        let y = se_with_inner(&mut g, &mut rng, x, inner);
        g.outputs.push(y);
        let (g, _) = check_pass(&g, &ACT, seed + 100);
        let (after, changed) = check_pass(&g, &ON, seed + 200);
        assert!(changed, "\n{after}");
        assert_eq!(
            se_ops(&after),
            vec![(want, Activation::Sigmoid)],
            "\n{after}"
        );
        assert_eq!(after.nodes.node_count(), 2, "\n{after}"); // block conv + SE
    }
}

/// Tanh or LeakyRelu between the FCs has no form in the runtime's SE gate (no epilogue
/// activation), so such an SE stays op by op, where every piece lowers.
#[test]
fn se_with_tanh_or_leaky_relu_between_the_fcs_is_left_alone() {
    for inner in [Activation::Tanh, Activation::LeakyRelu { alpha: 0.1 }] {
        let mut rng = Rng::new(12);
        let mut g = Graph::new();
        let x = block_input(&mut g, &mut rng, 1);
        let y = se_with_inner(&mut g, &mut rng, x, Some(inner));
        g.outputs.push(y);
        let (g, _) = check_pass(&g, &ACT, 13);
        assert_unchanged(&g, &ON);
    }
}
