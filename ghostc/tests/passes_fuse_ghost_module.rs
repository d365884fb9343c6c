//! fuse_ghost_module: Slice?(Concat(p, dw(p))) into one Ghost op, and every side condition.

mod passes_common;

use ghostc::ir::{Activation, BinaryOp, Graph, Op, Slice, ValueId};
use ghostc::passes::{FuseActivation, FuseGhostModule};
use passes_common::*;

const ON: FuseGhostModule = FuseGhostModule { enabled: true };
const ACT: FuseActivation = FuseActivation {
    act: true,
    linear: true,
};

struct Module {
    g: Graph,
    x: ValueId,
    p: ValueId,
    q: ValueId,
    cat: ValueId,
}

/// x [n, 8, 6, 6] -> p = relu?(conv1x1(x)) [c_p] -> q = relu?(dw3x3(p)) [c_p * mult] -> concat.
fn module(c_p: usize, mult: usize, relu_act: bool, seed: u64) -> Module {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 8, 6, 6]);
    let mut p = conv(&mut g, &mut rng, x, c_p, 1, 1, 1, true);
    if relu_act {
        p = relu(&mut g, p);
    }
    let mut q = conv(&mut g, &mut rng, p, c_p * mult, 3, 1, c_p, true);
    if relu_act {
        q = relu(&mut g, q);
    }
    let cat = concat(&mut g, 1, &[p, q]);
    Module { g, x, p, q, cat }
}

/// Runs fuse_activation (checked) then the Ghost pass (checked); returns the final graph.
fn fuse(g: &Graph, seed: u64) -> (Graph, bool) {
    let (g, _) = check_pass(g, &ACT, seed);
    check_pass(&g, &ON, seed + 1)
}

fn ghost_attrs(g: &Graph) -> Vec<ghostc::ir::Ghost> {
    g.nodes
        .node_indices()
        .filter_map(|n| match &g.node(n).op {
            Op::Ghost(gh) => Some(gh.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn timm_and_huawei_form_with_channel_cutting_slice() {
    // Huawei: odd out_channels, the slice really drops a channel.
    let mut m = module(6, 1, true, 1);
    let y = slice(&mut m.g, m.cat, 1, 0, 11);
    m.g.outputs.push(y);
    let (after, changed) = fuse(&m.g, 2);
    assert!(changed);
    assert_eq!(after.nodes.node_count(), 1, "\n{after}");
    let gh = ghost_attrs(&after);
    assert_eq!(gh.len(), 1);
    assert_eq!(gh[0].out_channels, 11);
    assert_eq!(gh[0].primary_act, Some(Activation::Relu));
    assert_eq!(gh[0].cheap_act, Some(Activation::Relu));
    assert!(!gh[0].residual);
    for op in ["concat", "slice", "fused_conv", "relu"] {
        assert_eq!(count(&after, op), 0, "{op} left");
    }
}

#[test]
fn no_slice_noop_slice_and_channel_multiplier() {
    // V3 form: Concat only.
    let mut m = module(4, 1, false, 3);
    m.g.outputs.push(m.cat);
    let (after, _) = fuse(&m.g, 4);
    assert_eq!(ghost_attrs(&after)[0].out_channels, 8);
    assert_eq!(after.nodes.node_count(), 1);

    // A slice running past the end keeps everything.
    let mut m = module(4, 1, true, 5);
    let y = slice(&mut m.g, m.cat, 1, 0, 8);
    m.g.outputs.push(y);
    let (after, _) = fuse(&m.g, 6);
    assert_eq!(ghost_attrs(&after)[0].out_channels, 8);
    assert_eq!(after.nodes.node_count(), 1);

    // ratio 3: the cheap conv has a channel multiplier of 2.
    let mut m = module(3, 2, true, 7);
    let y = slice(&mut m.g, m.cat, 1, 0, 8);
    m.g.outputs.push(y);
    let (after, _) = fuse(&m.g, 8);
    assert_eq!(ghost_attrs(&after)[0].out_channels, 8);
    assert_eq!(after.nodes.node_count(), 1);
}

#[test]
fn plain_convs_without_activation_pass_also_match() {
    let mut m = module(5, 1, false, 9);
    let y = slice(&mut m.g, m.cat, 1, 0, 9);
    m.g.outputs.push(y);
    let (after, _) = check_pass(&m.g, &ON, 10);
    assert_eq!(after.nodes.node_count(), 1, "\n{after}");
    assert_eq!(ghost_attrs(&after)[0].primary_act, None);
}

#[test]
fn v2_gate_multiply_stays_separate() {
    let mut m = module(6, 1, true, 11);
    let y = slice(&mut m.g, m.cat, 1, 0, 12);
    let mut rng = Rng::new(12);
    let gate = conv(&mut m.g, &mut rng, m.x, 12, 1, 1, 1, true);
    let gate = act(&mut m.g, gate, Activation::Sigmoid);
    let z = binary(&mut m.g, BinaryOp::Mul, y, gate);
    m.g.outputs.push(z);
    let (after, _) = fuse(&m.g, 13);
    assert_eq!(ghost_attrs(&after).len(), 1);
    assert_eq!(count(&after, "mul"), 1);
    assert_eq!(count(&after, "concat") + count(&after, "slice"), 0);
}

#[test]
fn primary_with_a_third_consumer_is_left_alone() {
    let mut m = module(6, 1, false, 14);
    let y = slice(&mut m.g, m.cat, 1, 0, 12);
    let extra = relu(&mut m.g, m.p);
    m.g.outputs.extend([y, extra]);
    assert_unchanged(&m.g, &ON);

    // p as a graph output is a third use too.
    let mut m = module(6, 1, false, 15);
    m.g.outputs.extend([m.cat, m.p]);
    assert_unchanged(&m.g, &ON);

    // q read elsewhere.
    let mut m = module(6, 1, false, 16);
    m.g.outputs.extend([m.cat, m.q]);
    assert_unchanged(&m.g, &ON);
}

#[test]
fn slice_on_another_axis_or_not_a_prefix_is_left_alone() {
    let mut m = module(6, 1, false, 17);
    let y = slice(&mut m.g, m.cat, 2, 0, 4);
    m.g.outputs.push(y);
    assert_unchanged(&m.g, &ON);

    let mut m = module(6, 1, false, 18);
    let y = slice(&mut m.g, m.cat, 1, 1, 12);
    m.g.outputs.push(y);
    assert_unchanged(&m.g, &ON);

    // Step 2 on axis 1.
    let mut m = module(6, 1, false, 19);
    let y = node(
        &mut m.g,
        Op::Slice(Slice {
            axes: vec![1],
            starts: vec![0],
            ends: vec![12],
            steps: vec![2],
        }),
        &[m.cat],
    );
    m.g.outputs.push(y);
    assert_unchanged(&m.g, &ON);

    // A slice keeping only p's channels.
    let mut m = module(6, 1, false, 20);
    let y = slice(&mut m.g, m.cat, 1, 0, 6);
    m.g.outputs.push(y);
    assert_unchanged(&m.g, &ON);
}

#[test]
fn wrong_cheap_conv_or_order_is_left_alone() {
    // Cheap conv not depthwise (group 1).
    let mut rng = Rng::new(21);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 8, 6, 6]);
    let p = conv(&mut g, &mut rng, x, 6, 1, 1, 1, true);
    let q = conv(&mut g, &mut rng, p, 6, 3, 1, 1, true);
    let cat = concat(&mut g, 1, &[p, q]);
    g.outputs.push(cat);
    assert_unchanged(&g, &ON);

    // Concat order [q, p].
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 8, 6, 6]);
    let p = conv(&mut g, &mut rng, x, 6, 1, 1, 1, true);
    let q = conv(&mut g, &mut rng, p, 6, 3, 1, 6, true);
    let cat = concat(&mut g, 1, &[q, p]);
    g.outputs.push(cat);
    assert_unchanged(&g, &ON);

    // The "cheap" conv reads x, not p.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 6, 6, 6]);
    let p = conv(&mut g, &mut rng, x, 6, 1, 1, 1, true);
    let q = conv(&mut g, &mut rng, x, 6, 3, 1, 6, true);
    let cat = concat(&mut g, 1, &[p, q]);
    g.outputs.push(cat);
    assert_unchanged(&g, &ON);
}

#[test]
fn disabled_changes_nothing() {
    let mut m = module(6, 1, false, 22);
    let y = slice(&mut m.g, m.cat, 1, 0, 11);
    m.g.outputs.push(y);
    assert_unchanged(&m.g, &FuseGhostModule { enabled: false });
}
