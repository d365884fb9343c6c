//! fuse_residual: Add(y, shortcut) into the Ghost / FusedConv producing y.

mod passes_common;

use ghostc::ir::{BinaryOp, Graph, Op, ValueId};
use ghostc::passes::{FuseActivation, FuseGhostModule, FuseResidual};
use passes_common::*;

const ON: FuseResidual = FuseResidual { enabled: true };

/// x [1, c, 6, 6] -> ghost module (fused) with `out` channels.
fn ghost(g: &mut Graph, rng: &mut Rng, x: ValueId, out: usize) -> ValueId {
    let c_p = out.div_ceil(2);
    let p = conv(g, rng, x, c_p, 1, 1, 1, true);
    let q = conv(g, rng, p, c_p, 3, 1, c_p, true);
    let cat = concat(g, 1, &[p, q]);
    slice(g, cat, 1, 0, out as i64)
}

fn prepare(g: &Graph, seed: u64) -> Graph {
    let (g, _) = check_pass(
        g,
        &FuseActivation {
            act: true,
            linear: true,
        },
        seed,
    );
    check_pass(&g, &FuseGhostModule { enabled: true }, seed).0
}

fn residual_flags(g: &Graph) -> Vec<(&'static str, bool)> {
    g.nodes
        .node_indices()
        .filter_map(|n| match &g.node(n).op {
            Op::Ghost(gh) => Some(("ghost", gh.residual)),
            Op::FusedConv(f) => Some(("fused_conv", f.residual)),
            _ => None,
        })
        .collect()
}

#[test]
fn identity_shortcut_into_ghost() {
    let mut rng = Rng::new(1);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 7, 6, 6]);
    let y = ghost(&mut g, &mut rng, x, 7);
    let z = binary(&mut g, BinaryOp::Add, y, x);
    let z = relu(&mut g, z); // an activation after the add stays
    g.outputs.push(z);
    let g = prepare(&g, 2);
    let (after, changed) = check_pass(&g, &ON, 3);
    assert!(changed);
    assert_eq!(count(&after, "add"), 0);
    assert_eq!(count(&after, "relu"), 1);
    assert_eq!(residual_flags(&after), vec![("ghost", true)]);
}

#[test]
fn downsample_shortcut_prefers_the_ghost() {
    let mut rng = Rng::new(4);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 6, 6, 6]);
    let s = conv(&mut g, &mut rng, x, 6, 3, 1, 6, true);
    let s = conv(&mut g, &mut rng, s, 10, 1, 1, 1, true);
    let y = ghost(&mut g, &mut rng, x, 10);
    let z = binary(&mut g, BinaryOp::Add, s, y); // shortcut first
    g.outputs.push(z);
    let g = prepare(&g, 5);
    let (after, _) = check_pass(&g, &ON, 6);
    let mut flags = residual_flags(&after);
    flags.sort();
    assert_eq!(
        flags,
        vec![
            ("fused_conv", false),
            ("fused_conv", false),
            ("ghost", true)
        ]
    );
    assert_eq!(count(&after, "add"), 0);
}

#[test]
fn fused_conv_and_plain_conv_take_the_residual() {
    let mut rng = Rng::new(7);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let y = relu(&mut g, y);
    let z = binary(&mut g, BinaryOp::Add, x, y);
    g.outputs.push(z);
    let (fused, _) = check_pass(
        &g,
        &FuseActivation {
            act: true,
            linear: true,
        },
        8,
    );
    let (after, _) = check_pass(&fused, &ON, 9);
    assert_eq!(residual_flags(&after), vec![("fused_conv", true)]);
    assert_eq!(after.nodes.node_count(), 1);

    // A plain conv (activation fusion off) becomes a FusedConv with the residual.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 4, 3, 1, 1, false);
    let z = binary(&mut g, BinaryOp::Add, y, x);
    g.outputs.push(z);
    let (after, _) = check_pass(&g, &ON, 10);
    assert_eq!(residual_flags(&after), vec![("fused_conv", true)]);
}

#[test]
fn shared_or_broadcast_operands_are_left_alone() {
    let mut rng = Rng::new(11);
    // The ghost output is read twice.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 7, 6, 6]);
    let y = ghost(&mut g, &mut rng, x, 7);
    let z = binary(&mut g, BinaryOp::Add, y, x);
    let w = binary(&mut g, BinaryOp::Mul, z, y);
    g.outputs.push(w);
    let g = prepare(&g, 12);
    assert_unchanged(&g, &ON);

    // Broadcasting add of a per-channel constant.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let c = rand_const(&mut g, &mut rng, &[1, 4, 1, 1], -1.0, 1.0);
    let z = binary(&mut g, BinaryOp::Add, y, c);
    g.outputs.push(z);
    assert_unchanged(&g, &ON);

    // The conv output is also a graph output.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let z = binary(&mut g, BinaryOp::Add, y, x);
    g.outputs.extend([z, y]);
    assert_unchanged(&g, &ON);
}

#[test]
fn disabled_changes_nothing() {
    let mut rng = Rng::new(13);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 7, 6, 6]);
    let y = ghost(&mut g, &mut rng, x, 7);
    let z = binary(&mut g, BinaryOp::Add, y, x);
    g.outputs.push(z);
    let g = prepare(&g, 14);
    assert_unchanged(&g, &FuseResidual { enabled: false });
}
