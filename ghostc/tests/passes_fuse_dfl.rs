//! fuse_dfl: a detection head's Reshape -> Transpose -> Softmax -> 1x1 Conv -> Reshape becomes
//! one `Dfl` op (checked through the interpreter); near misses stay.

mod passes_common;

use ghostc::ir::{Graph, Op, ValueId};
use ghostc::passes::FuseDfl;
use passes_common::*;

/// `[1, groups * bins, pixels]` -> the DFL chain, with the conv's weights `w` and `bias`.
fn dfl(
    g: &mut Graph,
    x: ValueId,
    groups: usize,
    bins: usize,
    softmax_axis: usize,
    bias: Option<f32>,
) -> ValueId {
    let pixels = g.value(x).ty.shape[2];
    let r = reshape(g, x, &[1, groups, bins, pixels]);
    let t = node(
        g,
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[r],
    );
    let s = node(g, Op::Softmax { axis: softmax_axis }, &[t]);
    let w = konst(g, &[1, bins, 1, 1], (0..bins).map(|k| k as f32).collect());
    let mut inputs = vec![s, w];
    if let Some(b) = bias {
        inputs.push(konst(g, &[1], vec![b]));
    }
    let c = node(g, Op::Conv(conv_attrs(1, 1, 1)), &inputs);
    reshape(g, c, &[1, groups, pixels])
}

#[test]
fn the_ultralytics_chain_becomes_one_op() {
    for (groups, bins, pixels, bias) in [(4, 16, 21, None), (3, 5, 7, Some(0.0))] {
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[1, groups * bins, pixels]);
        let y = dfl(&mut g, x, groups, bins, 1, bias);
        g.outputs.push(y);
        let (after, changed) = check_pass(&g, &FuseDfl, 7);
        assert!(changed);
        assert_eq!(count(&after, "dfl"), 1, "\n{after}");
        assert_eq!(after.nodes.node_count(), 1, "\n{after}");
    }
}

#[test]
fn near_misses_stay() {
    // Softmax over another axis, a conv with a bias, a second reader of the softmax.
    for (axis, bias) in [(2, None), (1, Some(0.5))] {
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[1, 12, 9]);
        let y = dfl(&mut g, x, 3, 4, axis, bias);
        g.outputs.push(y);
        assert_unchanged(&g, &FuseDfl);
    }
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 12, 9]);
    let y = dfl(&mut g, x, 3, 4, 1, None);
    let conv = g
        .producer(g.node(g.producer(y).unwrap()).inputs[0])
        .unwrap();
    let soft = g.node(conv).inputs[0];
    g.outputs.push(y);
    g.outputs.push(soft);
    assert_unchanged(&g, &FuseDfl);
}
