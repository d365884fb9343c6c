//! fuse_activation: decomposed hard-sigmoid / hard-swish recognized, activations folded into
//! convs and Linear, Gemm/MatMul(+Add) turned into Linear.

mod passes_common;

use ghostc::ir::{Activation, BinaryOp, FusedConv, Graph, Op, ValueId};
use ghostc::passes::FuseActivation;
use passes_common::*;

const ALL: FuseActivation = FuseActivation {
    act: true,
    linear: true,
};

fn fused_acts(g: &Graph) -> Vec<Option<Activation>> {
    g.nodes
        .node_indices()
        .filter_map(|n| match &g.node(n).op {
            Op::FusedConv(FusedConv { act, .. }) | Op::Linear { act } => Some(*act),
            _ => None,
        })
        .collect()
}

/// `clamp(x + c, 0, hi) (/ k | * s)`, operands in the given order.
fn decomposed_hsig(
    g: &mut Graph,
    x: ValueId,
    c: f32,
    hi: f32,
    k: f32,
    use_mul: bool,
    swap: bool,
) -> ValueId {
    let cst = scalar(g, c);
    let sum = if swap {
        binary(g, BinaryOp::Add, cst, x)
    } else {
        binary(g, BinaryOp::Add, x, cst)
    };
    let clipped = act(g, sum, Activation::Clamp { lo: 0.0, hi });
    if use_mul {
        let s = scalar(g, 1.0 / k);
        if swap {
            binary(g, BinaryOp::Mul, s, clipped)
        } else {
            binary(g, BinaryOp::Mul, clipped, s)
        }
    } else {
        let k = scalar(g, k);
        binary(g, BinaryOp::Div, clipped, k)
    }
}

fn conv_input(rng: &mut Rng) -> (Graph, ValueId) {
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 4, 6, 6]);
    let y = conv(&mut g, rng, x, 6, 3, 1, 1, true);
    (g, y)
}

#[test]
fn conv_relu_becomes_fused_conv() {
    let mut rng = Rng::new(1);
    let (mut g, y) = conv_input(&mut rng);
    let y = relu(&mut g, y);
    let z = conv(&mut g, &mut rng, y, 3, 1, 1, 1, false); // no bias, no activation after
    g.outputs.push(z);
    let (after, changed) = check_pass(&g, &ALL, 2);
    assert!(changed);
    assert_eq!(count(&after, "conv"), 0);
    assert_eq!(count(&after, "relu"), 0);
    assert_eq!(count(&after, "fused_conv"), 2);
    let acts = fused_acts(&after);
    assert!(acts.contains(&Some(Activation::Relu)) && acts.contains(&None));
}

#[test]
fn every_activation_kind_fuses() {
    for a in [
        Activation::Clamp { lo: 0.0, hi: 6.0 },
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Activation::HardSwish,
        Activation::Sigmoid,
    ] {
        let mut rng = Rng::new(3);
        let (mut g, y) = conv_input(&mut rng);
        let y = act(&mut g, y, a);
        g.outputs.push(y);
        let (after, _) = check_pass(&g, &ALL, 4);
        assert_eq!(fused_acts(&after), vec![Some(a)], "{a:?}");
        assert_eq!(after.nodes.node_count(), 1);
    }
}

#[test]
fn decomposed_hard_sigmoid_forms_are_recognized() {
    for (use_mul, swap) in [(false, false), (true, false), (true, true), (false, true)] {
        let mut rng = Rng::new(5);
        let (mut g, y) = conv_input(&mut rng);
        let y = decomposed_hsig(&mut g, y, 3.0, 6.0, 6.0, use_mul, swap);
        g.outputs.push(y);
        let (after, _) = check_pass(&g, &ALL, 6);
        assert_eq!(
            after.nodes.node_count(),
            1,
            "mul {use_mul} swap {swap}:\n{after}"
        );
        assert_eq!(
            fused_acts(&after),
            vec![Some(Activation::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5
            })]
        );
    }
    // A general clamp(x + 2.5, 0, 5) / 5 is HardSigmoid{0.2, 0.5}.
    let mut rng = Rng::new(5);
    let (mut g, y) = conv_input(&mut rng);
    let y = decomposed_hsig(&mut g, y, 2.5, 5.0, 5.0, false, false);
    g.outputs.push(y);
    let (after, _) = check_pass(&g, &ALL, 6);
    assert_eq!(after.nodes.node_count(), 1);
}

#[test]
fn hard_swish_forms_are_recognized() {
    // x * hardsigmoid(x), with hardsigmoid itself decomposed.
    let mut rng = Rng::new(7);
    let (mut g, y) = conv_input(&mut rng);
    let h = decomposed_hsig(&mut g, y, 3.0, 6.0, 6.0, false, false);
    let z = binary(&mut g, BinaryOp::Mul, y, h);
    g.outputs.push(z);
    let (after, _) = check_pass(&g, &ALL, 8);
    assert_eq!(
        fused_acts(&after),
        vec![Some(Activation::HardSwish)],
        "\n{after}"
    );
    assert_eq!(after.nodes.node_count(), 1);

    // x * relu6(x + 3) / 6 (Div of the product).
    let (mut g, y) = conv_input(&mut rng);
    let three = scalar(&mut g, 3.0);
    let s = binary(&mut g, BinaryOp::Add, y, three);
    let c = act(&mut g, s, Activation::Clamp { lo: 0.0, hi: 6.0 });
    let p = binary(&mut g, BinaryOp::Mul, c, y);
    let six = scalar(&mut g, 6.0);
    let z = binary(&mut g, BinaryOp::Div, p, six);
    g.outputs.push(z);
    let (after, _) = check_pass(&g, &ALL, 9);
    assert_eq!(
        fused_acts(&after),
        vec![Some(Activation::HardSwish)],
        "\n{after}"
    );
}

#[test]
fn relu6_stays_clip_and_shared_intermediates_are_not_absorbed() {
    let mut rng = Rng::new(9);
    let (mut g, y) = conv_input(&mut rng);
    // The Add output is read twice: the decomposition must stay as it is.
    let three = scalar(&mut g, 3.0);
    let s = binary(&mut g, BinaryOp::Add, y, three);
    let c = act(&mut g, s, Activation::Clamp { lo: 0.0, hi: 6.0 });
    let six = scalar(&mut g, 6.0);
    let d = binary(&mut g, BinaryOp::Div, c, six);
    let z = binary(&mut g, BinaryOp::Add, d, s);
    g.outputs.push(z);
    let (after, _) = check_pass(
        &g,
        &FuseActivation {
            act: true,
            linear: false,
        },
        10,
    );
    assert_eq!(count(&after, "clip"), 1);
    assert_eq!(count(&after, "div"), 1);
    assert_eq!(count(&after, "hard_sigmoid"), 0);
}

#[test]
fn conv_output_that_is_a_graph_output_keeps_its_activation_separate() {
    let mut rng = Rng::new(11);
    let (mut g, y) = conv_input(&mut rng);
    let z = relu(&mut g, y);
    g.outputs.extend([z, y]);
    let (after, _) = check_pass(&g, &ALL, 12);
    assert_eq!(count(&after, "relu"), 1);
    assert_eq!(fused_acts(&after), vec![None]);
}

#[test]
fn gemm_and_matmul_become_linear() {
    for (trans_b, alpha, beta) in [(true, 1.0, 1.0), (false, 0.5, 2.0)] {
        let mut rng = Rng::new(13);
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[3, 10]);
        let y = gemm(&mut g, &mut rng, x, 7, trans_b, alpha, beta);
        let y = relu(&mut g, y);
        g.outputs.push(y);
        let (after, _) = check_pass(&g, &ALL, 14);
        assert_eq!(fused_acts(&after), vec![Some(Activation::Relu)]);
        assert_eq!(after.nodes.node_count(), 1);
        // With `act` off the relu stays.
        let (after, _) = check_pass(
            &g,
            &FuseActivation {
                act: false,
                linear: true,
            },
            14,
        );
        assert_eq!(fused_acts(&after), vec![None]);
        assert_eq!(count(&after, "relu"), 1);
    }
    let mut rng = Rng::new(15);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 5]);
    let w = rand_const(&mut g, &mut rng, &[5, 4], -1.0, 1.0);
    let y = node(&mut g, Op::MatMul, &[x, w]);
    let b = rand_const(&mut g, &mut rng, &[1, 4], -1.0, 1.0);
    let y = binary(&mut g, BinaryOp::Add, y, b);
    let w2 = rand_const(&mut g, &mut rng, &[4, 3], -1.0, 1.0);
    let z = node(&mut g, Op::MatMul, &[y, w2]);
    g.outputs.push(z);
    let (after, _) = check_pass(&g, &ALL, 16);
    assert_eq!(count(&after, "linear"), 2, "\n{after}");
    assert_eq!(after.nodes.node_count(), 2);
}

#[test]
fn switched_off_changes_nothing() {
    let mut rng = Rng::new(17);
    let (mut g, y) = conv_input(&mut rng);
    let y = decomposed_hsig(&mut g, y, 3.0, 6.0, 6.0, false, false);
    let y = reshape(&mut g, y, &[2, 216]);
    let y = gemm(&mut g, &mut rng, y, 5, true, 1.0, 1.0);
    let y = relu(&mut g, y);
    g.outputs.push(y);
    assert_unchanged(
        &g,
        &FuseActivation {
            act: false,
            linear: false,
        },
    );
}

/// SiLU as exporters emit it, `Mul(x, Sigmoid(x))` in either operand order, after a conv: one
/// FusedConv carrying `Silu` (the conv's output had two readers before phase 1).
#[test]
fn silu_pattern_fuses_into_the_conv() {
    for swap in [false, true] {
        let mut rng = Rng::new(11);
        let (mut g, y) = conv_input(&mut rng);
        let s = act(&mut g, y, Activation::Sigmoid);
        let z = if swap {
            binary(&mut g, BinaryOp::Mul, s, y)
        } else {
            binary(&mut g, BinaryOp::Mul, y, s)
        };
        g.outputs.push(z);
        let (after, _) = check_pass(&g, &ALL, 12);
        assert_eq!(
            fused_acts(&after),
            vec![Some(Activation::Silu)],
            "swap {swap}:\n{after}"
        );
        assert_eq!(after.nodes.node_count(), 1, "swap {swap}:\n{after}");
    }
    // Not after a conv (an Add): a standalone Silu node.
    let mut rng = Rng::new(13);
    let (mut g, y) = conv_input(&mut rng);
    let y2 = binary(&mut g, BinaryOp::Add, y, y);
    let s = act(&mut g, y2, Activation::Sigmoid);
    let z = binary(&mut g, BinaryOp::Mul, s, y2);
    g.outputs.push(z);
    let (after, _) = check_pass(&g, &ALL, 14);
    assert_eq!((count(&after, "silu"), count(&after, "sigmoid")), (1, 0));
}

/// A gate (`Mul(x, Sigmoid(w))`, `w != x`, as in SE and DFC) is not SiLU, nor is a Sigmoid
/// whose output is read elsewhere too; with `act` off nothing is recognized.
#[test]
fn silu_needs_the_same_operand_and_a_private_sigmoid() {
    let mut rng = Rng::new(15);
    let (mut g, y) = conv_input(&mut rng);
    let w = relu(&mut g, y);
    let s = act(&mut g, w, Activation::Sigmoid);
    let z = binary(&mut g, BinaryOp::Mul, y, s);
    g.outputs.push(z);
    let (after, _) = check_pass(&g, &ALL, 16);
    assert_eq!((count(&after, "silu"), count(&after, "sigmoid")), (0, 1));

    let (mut g, y) = conv_input(&mut rng);
    let s = act(&mut g, y, Activation::Sigmoid);
    let z = binary(&mut g, BinaryOp::Mul, y, s);
    g.outputs.push(z);
    g.outputs.push(s);
    let (after, _) = check_pass(&g, &ALL, 17);
    assert_eq!((count(&after, "silu"), count(&after, "mul")), (0, 1));
    assert!(!fused_acts(&after).contains(&Some(Activation::Silu)));

    let (mut g, y) = conv_input(&mut rng);
    let s = act(&mut g, y, Activation::Sigmoid);
    let z = binary(&mut g, BinaryOp::Mul, s, y);
    g.outputs.push(z);
    let off = FuseActivation {
        act: false,
        linear: true,
    };
    let (after, _) = check_pass(&g, &off, 18);
    assert_eq!((count(&after, "silu"), count(&after, "mul")), (0, 1));
}

/// Mish as exporters before opset 18 emit it, `Mul(x, Tanh(Softplus(x)))` in either operand
/// order, after a conv: one FusedConv carrying `Mish`. With `act` off it is still recognized
/// (Softplus has no lowering of its own) but stays a node of its own; a Softplus read
/// elsewhere too, or a Tanh of another value, is not Mish.
#[test]
fn mish_pattern_fuses_into_the_conv_and_is_recognized_with_act_off() {
    use ghostc::ir::UnaryOp;
    let mish = |g: &mut Graph, x: ValueId, swap: bool| {
        let sp = node(g, Op::Unary(UnaryOp::Softplus), &[x]);
        let t = act(g, sp, Activation::Tanh);
        if swap {
            binary(g, BinaryOp::Mul, t, x)
        } else {
            binary(g, BinaryOp::Mul, x, t)
        }
    };
    for swap in [false, true] {
        let mut rng = Rng::new(21);
        let (mut g, y) = conv_input(&mut rng);
        let z = mish(&mut g, y, swap);
        g.outputs.push(z);
        let (after, _) = check_pass(&g, &ALL, 22);
        assert_eq!(
            fused_acts(&after),
            vec![Some(Activation::Mish)],
            "swap {swap}:\n{after}"
        );
        assert_eq!(after.nodes.node_count(), 1, "swap {swap}:\n{after}");
        let off = FuseActivation {
            act: false,
            linear: false,
        };
        let (after, _) = check_pass(&g, &off, 23);
        assert_eq!(
            (
                count(&after, "mish"),
                count(&after, "softplus"),
                count(&after, "conv")
            ),
            (1, 0, 1),
            "swap {swap}:\n{after}"
        );
    }
    let mut rng = Rng::new(24);
    let (mut g, y) = conv_input(&mut rng);
    let sp = node(&mut g, Op::Unary(UnaryOp::Softplus), &[y]);
    let t = act(&mut g, sp, Activation::Tanh);
    let z = binary(&mut g, BinaryOp::Mul, y, t);
    g.outputs.push(z);
    g.outputs.push(sp);
    let (after, _) = check_pass(&g, &ALL, 25);
    assert_eq!((count(&after, "mish"), count(&after, "softplus")), (0, 1));
    let (mut g, y) = conv_input(&mut rng);
    let w = relu(&mut g, y);
    let sp = node(&mut g, Op::Unary(UnaryOp::Softplus), &[w]);
    let t = act(&mut g, sp, Activation::Tanh);
    let z = binary(&mut g, BinaryOp::Mul, y, t);
    g.outputs.push(z);
    let (after, _) = check_pass(&g, &ALL, 26);
    assert_eq!(count(&after, "mish"), 0);
}
