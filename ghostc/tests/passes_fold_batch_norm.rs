//! fold_batch_norm: BatchNorm folded into Conv (plain, depthwise, grouped), Gemm, Linear and
//! MatMul(+Add); side conditions leave the graph alone.

mod passes_common;

use ghostc::ir::{Activation, BinaryOp, Graph, Op};
use ghostc::passes::{FoldBatchNorm, FuseActivation};
use passes_common::*;

const ON: FoldBatchNorm = FoldBatchNorm { enabled: true };

fn conv_bn_graph(group_of: impl Fn(usize) -> usize, bias: bool) -> Graph {
    let mut rng = Rng::new(7);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 6, 7, 7]);
    let y = conv(&mut g, &mut rng, x, 12, 3, 1, group_of(6), bias);
    let y = batch_norm(&mut g, &mut rng, y);
    let y = relu(&mut g, y);
    g.outputs.push(y);
    g
}

#[test]
fn folds_into_plain_conv_without_bias() {
    let g = conv_bn_graph(|_| 1, false);
    let (after, changed) = check_pass(&g, &ON, 1);
    assert!(changed);
    assert_eq!(count(&after, "batch_norm"), 0);
    assert_eq!(count(&after, "conv"), 1);
    // The folded conv now carries a bias.
    let conv = after
        .nodes
        .node_indices()
        .find(|&n| matches!(after.node(n).op, Op::Conv(_)))
        .unwrap();
    assert_eq!(after.node(conv).inputs.len(), 3);
}

#[test]
fn folds_into_depthwise_and_grouped_conv_with_bias() {
    for group in [6, 2, 3] {
        let g = conv_bn_graph(|_| group, true);
        let (after, changed) = check_pass(&g, &ON, group as u64);
        assert!(changed, "group {group}");
        assert_eq!(count(&after, "batch_norm"), 0, "group {group}");
    }
}

#[test]
fn folds_bn1d_into_gemm_both_layouts() {
    for (trans_b, alpha, beta) in [(true, 1.0, 1.0), (false, 0.5, 2.0)] {
        let mut rng = Rng::new(3);
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[3, 10]);
        let y = gemm(&mut g, &mut rng, x, 8, trans_b, alpha, beta);
        let y = batch_norm(&mut g, &mut rng, y);
        let y = relu(&mut g, y);
        g.outputs.push(y);
        let (after, changed) = check_pass(&g, &ON, 4);
        assert!(changed);
        assert_eq!(count(&after, "batch_norm"), 0);
        assert_eq!(count(&after, "gemm"), 1);
    }
}

#[test]
fn folds_into_matmul_plus_add_and_bare_matmul_and_linear() {
    let mut rng = Rng::new(5);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 10]);
    let w = rand_const(&mut g, &mut rng, &[10, 6], -0.5, 0.5);
    let y = binary_matmul(&mut g, x, w);
    let c = rand_const(&mut g, &mut rng, &[6], -0.5, 0.5);
    let y = binary(&mut g, BinaryOp::Add, c, y);
    let y = batch_norm(&mut g, &mut rng, y);
    let w2 = rand_const(&mut g, &mut rng, &[6, 4], -0.5, 0.5);
    let z = binary_matmul(&mut g, y, w2);
    let z = batch_norm(&mut g, &mut rng, z);
    g.outputs.push(z);
    let (after, changed) = check_pass(&g, &ON, 6);
    assert!(changed);
    assert_eq!(count(&after, "batch_norm"), 0);
    assert_eq!(count(&after, "matmul"), 0);
    assert_eq!(count(&after, "add"), 0);
    assert_eq!(count(&after, "gemm"), 2);

    // Linear (from fuse_activation with only `linear` on) followed by a BN.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 10]);
    let y = gemm(&mut g, &mut rng, x, 6, true, 1.0, 1.0);
    let y = batch_norm(&mut g, &mut rng, y);
    g.outputs.push(y);
    let (g, _) = check_pass(
        &g,
        &FuseActivation {
            act: false,
            linear: true,
        },
        7,
    );
    assert_eq!(count(&g, "linear"), 1);
    let (after, changed) = check_pass(&g, &ON, 8);
    assert!(changed);
    assert_eq!(count(&after, "batch_norm"), 0);
    assert_eq!(count(&after, "linear"), 1);
}

fn binary_matmul(
    g: &mut Graph,
    a: ghostc::ir::ValueId,
    b: ghostc::ir::ValueId,
) -> ghostc::ir::ValueId {
    node(g, Op::MatMul, &[a, b])
}

#[test]
fn shared_weights_are_not_mutated() {
    let mut rng = Rng::new(9);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let w = rand_const(&mut g, &mut rng, &[4, 4, 1, 1], -1.0, 1.0);
    let before = g.value(w).constant().unwrap().clone();
    let a = node(&mut g, Op::Conv(conv_attrs(1, 1, 1)), &[x, w]);
    let a = batch_norm(&mut g, &mut rng, a);
    let b = node(&mut g, Op::Conv(conv_attrs(1, 1, 1)), &[x, w]);
    let y = binary(&mut g, BinaryOp::Add, a, b);
    g.outputs.push(y);
    let (after, changed) = check_pass(&g, &ON, 10);
    assert!(changed);
    assert_eq!(**after.value(w).constant().unwrap(), *before);
    assert_eq!(count(&after, "batch_norm"), 0);
}

#[test]
fn leaves_bn_alone_when_conv_output_is_needed_elsewhere() {
    // Conv output also a graph output.
    let mut rng = Rng::new(11);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let z = batch_norm(&mut g, &mut rng, y);
    g.outputs.extend([z, y]);
    assert_unchanged(&g, &ON);

    // Conv output read by a second node.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let z = batch_norm(&mut g, &mut rng, y);
    let r = relu(&mut g, y);
    let s = binary(&mut g, BinaryOp::Add, z, r);
    g.outputs.push(s);
    assert_unchanged(&g, &ON);

    // BN after an activation, and BN on a graph input: standalone, stays.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let y = act(&mut g, y, Activation::Relu);
    let y = batch_norm(&mut g, &mut rng, y);
    let z = batch_norm(&mut g, &mut rng, x);
    let s = binary(&mut g, BinaryOp::Add, y, z);
    g.outputs.push(s);
    assert_unchanged(&g, &ON);
}

#[test]
fn disabled_changes_nothing() {
    let g = conv_bn_graph(|_| 1, true);
    assert_unchanged(&g, &FoldBatchNorm { enabled: false });
}

#[test]
fn folds_into_conv_transpose_of_any_group_then_the_relu_fuses_into_it() {
    use ghostc::ir::{Conv, ConvTranspose};
    // Dense, two groups, depthwise (6 groups of one channel).
    for (group, per_group, bias) in [(1, 8, false), (2, 4, true), (6, 1, true)] {
        let mut rng = Rng::new(11 + group as u64);
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[2, 6, 5, 4]);
        let w = rand_const(&mut g, &mut rng, &[6, per_group, 3, 2], -0.5, 0.5);
        let t = ConvTranspose {
            conv: Conv {
                kernel: [3, 2],
                strides: [2, 3],
                pads: [1, 0, 0, 1],
                dilations: [1, 2],
                group,
            },
            output_padding: [1, 0],
            act: None,
        };
        let mut inputs = vec![x, w];
        if bias {
            inputs.push(rand_const(
                &mut g,
                &mut rng,
                &[group * per_group],
                -0.5,
                0.5,
            ));
        }
        let y = node(&mut g, Op::ConvTranspose(t), &inputs);
        let y = batch_norm(&mut g, &mut rng, y);
        let y = relu(&mut g, y);
        g.outputs.push(y);
        let (after, changed) = check_pass(&g, &ON, group as u64);
        assert!(changed, "group {group}");
        assert_eq!(count(&after, "batch_norm"), 0, "group {group}");
        let fuse = FuseActivation {
            act: true,
            linear: false,
        };
        let (fused, changed) = check_pass(&after, &fuse, 3);
        assert!(changed, "group {group}");
        assert_eq!(count(&fused, "relu"), 0, "group {group}\n{fused}");
        assert!(fused.nodes.node_weights().any(|n| matches!(
            &n.op,
            Op::ConvTranspose(ConvTranspose {
                act: Some(Activation::Relu),
                ..
            })
        )));
    }
}
