//! channels_first: a ConvNeXt block written channels-last (Transpose, LayerNorm, MatMul +
//! bias, GELU, MatMul + bias, Transpose, layer scale) becomes ChannelNorm and 1x1 convs on
//! NCHW with both Transposes gone (checked through the interpreter); regions that leave the
//! supported ops stay. Also the GELU spelling (`fuse_activation`) and the per-channel Mul/Add
//! folding (`fold_batch_norm`) the ConvNeXt path needs.

mod passes_common;

use ghostc::ir::{Activation, BinaryOp, Graph, Op, UnaryOp, ValueId};
use ghostc::passes::{ChannelsFirst, FoldBatchNorm, FuseActivation};
use passes_common::*;

fn transpose(g: &mut Graph, x: ValueId, perm: &[usize]) -> ValueId {
    node(
        g,
        Op::Transpose {
            perm: perm.to_vec(),
        },
        &[x],
    )
}

/// `x * 0.5 * (1 + erf(x / sqrt 2))` as torch exports it.
fn gelu_decomposed(g: &mut Graph, x: ValueId) -> ValueId {
    let sqrt2 = scalar(g, std::f32::consts::SQRT_2);
    let d = binary(g, BinaryOp::Div, x, sqrt2);
    let e = node(g, Op::Unary(UnaryOp::Erf), &[d]);
    let one = scalar(g, 1.0);
    let a = binary(g, BinaryOp::Add, e, one);
    let m = binary(g, BinaryOp::Mul, x, a);
    let half = scalar(g, 0.5);
    binary(g, BinaryOp::Mul, m, half)
}

/// ConvNeXt's block on `[1, c, h, w]`, channels-last inside.
fn convnext_block(g: &mut Graph, rng: &mut Rng, x: ValueId, c: usize) -> ValueId {
    let t = transpose(g, x, &[0, 2, 3, 1]);
    let gamma = rand_const(g, rng, &[c], 0.5, 1.5);
    let beta = rand_const(g, rng, &[c], -0.5, 0.5);
    let ln = node(
        g,
        Op::LayerNorm {
            axis: 3,
            epsilon: 1e-6,
        },
        &[t, gamma, beta],
    );
    let w1 = rand_const(g, rng, &[c, 4 * c], -0.5, 0.5);
    let m1 = node(g, Op::MatMul, &[ln, w1]);
    let b1 = rand_const(g, rng, &[4 * c], -0.5, 0.5);
    let a1 = binary(g, BinaryOp::Add, b1, m1);
    let act = gelu_decomposed(g, a1);
    let w2 = rand_const(g, rng, &[4 * c, c], -0.5, 0.5);
    let m2 = node(g, Op::MatMul, &[act, w2]);
    let b2 = rand_const(g, rng, &[c], -0.5, 0.5);
    let a2 = binary(g, BinaryOp::Add, b2, m2);
    let back = transpose(g, a2, &[0, 3, 1, 2]);
    let scale = rand_const(g, rng, &[c, 1, 1], 0.1, 1.0);
    let scaled = binary(g, BinaryOp::Mul, scale, back);
    binary(g, BinaryOp::Add, scaled, x)
}

#[test]
fn convnext_block_becomes_channels_first() {
    for (c, h, w) in [(8, 3, 5), (12, 4, 4)] {
        let mut rng = Rng::new(7);
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[1, c, h, w]);
        let r = relu(&mut g, x);
        let y = convnext_block(&mut g, &mut rng, r, c);
        g.outputs.push(y);
        let (after, changed) = check_pass(&g, &ChannelsFirst, 3);
        assert!(changed);
        assert_eq!(count(&after, "transpose"), 0, "\n{after}");
        assert_eq!(count(&after, "layer_norm"), 0, "\n{after}");
        assert_eq!(count(&after, "matmul"), 0, "\n{after}");
        assert_eq!(count(&after, "channel_norm"), 1, "\n{after}");
        assert_eq!(count(&after, "conv"), 2, "\n{after}");
        // The bias Adds and the layer scale fold into the convs; the GELU is one activation
        // fused into the first.
        let (after, _) = check_pass(&after, &FoldBatchNorm { enabled: true }, 4);
        assert_eq!(count(&after, "mul"), 2, "GELU's two Muls only\n{after}");
        assert_eq!(
            count(&after, "add"),
            2,
            "GELU's Add and the residual\n{after}"
        );
        let (after, _) = check_pass(
            &after,
            &FuseActivation {
                act: true,
                linear: true,
            },
            5,
        );
        assert_eq!(count(&after, "erf"), 0, "\n{after}");
        assert_eq!(count(&after, "fused_conv"), 2, "\n{after}");
        assert_eq!(count(&after, "add"), 1, "the residual\n{after}");
        let gelus = after
            .nodes
            .node_indices()
            .filter(|&n| {
                matches!(
                    after.node(n).op,
                    Op::FusedConv(ref f) if f.act == Some(Activation::Gelu)
                )
            })
            .count();
        assert_eq!(gelus, 1, "\n{after}");
    }
}

#[test]
fn layer_norm_head_on_a_pooled_map() {
    // The classifier's LayerNorm2d after the global pool: [1, C, 1, 1].
    let mut rng = Rng::new(9);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 16, 1, 1]);
    let t = transpose(&mut g, x, &[0, 2, 3, 1]);
    let gamma = rand_const(&mut g, &mut rng, &[16], 0.5, 1.5);
    let ln = node(
        &mut g,
        Op::LayerNorm {
            axis: 3,
            epsilon: 1e-6,
        },
        &[t, gamma],
    );
    let y = transpose(&mut g, ln, &[0, 3, 1, 2]);
    g.outputs.push(y);
    let (after, changed) = check_pass(&g, &ChannelsFirst, 1);
    assert!(changed);
    // The exit Transpose's output is the graph output: it stays as an Identity.
    assert_eq!(count(&after, "transpose"), 0, "\n{after}");
    assert_eq!(count(&after, "identity"), 1, "\n{after}");
}

#[test]
fn regions_with_unsupported_readers_stay() {
    let mut rng = Rng::new(11);
    // A channels-last value that is a graph output.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 8, 2, 3]);
    let t = transpose(&mut g, x, &[0, 2, 3, 1]);
    let y = relu(&mut g, t);
    g.outputs.push(y);
    assert_unchanged(&g, &ChannelsFirst);
    // LayerNorm over the last two axes (not the channels alone).
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 8, 2, 3]);
    let t = transpose(&mut g, x, &[0, 2, 3, 1]);
    let gamma = rand_const(&mut g, &mut rng, &[3, 8], 0.5, 1.5);
    let ln = node(
        &mut g,
        Op::LayerNorm {
            axis: 2,
            epsilon: 1e-6,
        },
        &[t, gamma],
    );
    let y = transpose(&mut g, ln, &[0, 3, 1, 2]);
    g.outputs.push(y);
    assert_unchanged(&g, &ChannelsFirst);
    // A Mul by a constant that varies along W, not along the channels.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 8, 2, 3]);
    let t = transpose(&mut g, x, &[0, 2, 3, 1]);
    let k = rand_const(&mut g, &mut rng, &[3, 1], 0.5, 1.5);
    let m = binary(&mut g, BinaryOp::Mul, t, k);
    let y = transpose(&mut g, m, &[0, 3, 1, 2]);
    g.outputs.push(y);
    assert_unchanged(&g, &ChannelsFirst);
}

#[test]
fn gelu_spellings_fuse_and_near_misses_stay() {
    let inv = std::f32::consts::FRAC_1_SQRT_2;
    // 0.5 * x first, then times (1 + erf(x * 1/sqrt 2)) with the operands swapped.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 8, 2, 3]);
    let r = relu(&mut g, x);
    let k = scalar(&mut g, inv);
    let d = binary(&mut g, BinaryOp::Mul, k, r);
    let e = node(&mut g, Op::Unary(UnaryOp::Erf), &[d]);
    let one = scalar(&mut g, 1.0);
    let a = binary(&mut g, BinaryOp::Add, one, e);
    let half = scalar(&mut g, 0.5);
    let h = binary(&mut g, BinaryOp::Mul, half, r);
    let y = binary(&mut g, BinaryOp::Mul, a, h);
    g.outputs.push(y);
    let fuse = FuseActivation {
        act: true,
        linear: false,
    };
    let (after, changed) = check_pass(&g, &fuse, 2);
    assert!(changed);
    assert_eq!(count(&after, "gelu"), 1, "\n{after}");
    assert_eq!(count(&after, "erf") + count(&after, "mul"), 0, "\n{after}");
    // The wrong scale inside the erf is not a GELU.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 8, 2, 3]);
    let k = scalar(&mut g, 0.5);
    let d = binary(&mut g, BinaryOp::Mul, x, k);
    let e = node(&mut g, Op::Unary(UnaryOp::Erf), &[d]);
    let one = scalar(&mut g, 1.0);
    let a = binary(&mut g, BinaryOp::Add, e, one);
    let m = binary(&mut g, BinaryOp::Mul, x, a);
    let half = scalar(&mut g, 0.5);
    let y = binary(&mut g, BinaryOp::Mul, m, half);
    g.outputs.push(y);
    let (after, _) = check_pass(&g, &fuse, 2);
    assert_eq!(count(&after, "gelu"), 0, "\n{after}");
    assert_eq!(count(&after, "erf"), 1, "\n{after}");
}

#[test]
fn per_channel_mul_and_add_fold_into_convs_but_scalars_stay() {
    let mut rng = Rng::new(13);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 8, 4, 4]);
    let c = conv(&mut g, &mut rng, x, 16, 3, 1, 1, false);
    let s = rand_const(&mut g, &mut rng, &[1, 16, 1, 1], 0.1, 1.0);
    let m = binary(&mut g, BinaryOp::Mul, c, s);
    let b = rand_const(&mut g, &mut rng, &[16, 1, 1], -1.0, 1.0);
    let a = binary(&mut g, BinaryOp::Add, b, m);
    // A scalar `+ 3` (a hard-sigmoid's) after a conv stays for fuse_activation.
    let c2 = conv(&mut g, &mut rng, a, 16, 1, 1, 1, true);
    let three = scalar(&mut g, 3.0);
    let y = binary(&mut g, BinaryOp::Add, c2, three);
    g.outputs.push(y);
    let (after, changed) = check_pass(&g, &FoldBatchNorm { enabled: true }, 6);
    assert!(changed);
    assert_eq!(count(&after, "mul"), 0, "\n{after}");
    assert_eq!(count(&after, "add"), 1, "\n{after}");
    assert_eq!(count(&after, "conv"), 2, "\n{after}");
}
