//! remove_identity: Identity and no-op Reshape/Slice/Transpose removed; real ones stay.

mod passes_common;

use ghostc::ir::{Graph, Op};
use ghostc::passes::RemoveIdentity;
use passes_common::*;

#[test]
fn removes_identity_and_no_op_shape_ops() {
    let mut rng = Rng::new(1);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 6, 3, 1, 1, true);
    let y = node(&mut g, Op::Identity, &[y]);
    let y = reshape(&mut g, y, &[1, 6, 5, 5]);
    let y = slice(&mut g, y, 1, 0, 6);
    let y = node(
        &mut g,
        Op::Transpose {
            perm: vec![0, 1, 2, 3],
        },
        &[y],
    );
    let y = relu(&mut g, y);
    let y = reshape(&mut g, y, &[1, 150]); // a real reshape stays
    g.outputs.push(y);
    let (after, changed) = check_pass(&g, &RemoveIdentity, 2);
    assert!(changed);
    assert_eq!(after.nodes.node_count(), 3, "\n{after}");
    assert_eq!(count(&after, "reshape"), 1);
    for op in ["identity", "slice", "transpose"] {
        assert_eq!(count(&after, op), 0);
    }
}

#[test]
fn graph_output_identity_keeps_the_output_name() {
    let mut rng = Rng::new(3);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 5, 5]);
    let y = conv(&mut g, &mut rng, x, 6, 3, 1, 1, true);
    let z = node(&mut g, Op::Identity, &[y]);
    g.value_mut(z).name = "logits".into();
    g.outputs.push(z);
    let (after, _) = check_pass(&g, &RemoveIdentity, 4);
    assert_eq!(after.nodes.node_count(), 1);
    assert_eq!(after.value(after.outputs[0]).name, "logits");
}

#[test]
fn identity_from_input_to_output_or_shared_stays() {
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4]);
    let y = node(&mut g, Op::Identity, &[x]);
    g.outputs.push(y);
    assert_unchanged(&g, &RemoveIdentity);

    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4]);
    let a = relu(&mut g, x);
    let b = node(&mut g, Op::Identity, &[a]);
    g.outputs.extend([a, b]);
    assert_unchanged(&g, &RemoveIdentity);
}

#[test]
fn in_order_gather_of_a_flattened_tensor_is_the_tensor() {
    // The dynamo exporter's `as_strided`: Reshape [1, 6, 1, 1] -> [6], then Gather along axis
    // 0 by the constant indices 0..6 shaped [1, 6, 1, 1]: the input again.
    for (indices, removed) in [
        ((0..6).collect::<Vec<i64>>(), true),
        (vec![1, 0, 2, 3, 4, 5], false),
    ] {
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[1, 6, 1, 1]);
        let r = relu(&mut g, x);
        let flat = reshape(&mut g, r, &[6]);
        let idx = ghostc::ir::Tensor::from_i64(vec![1, 6, 1, 1], indices).unwrap();
        let idx = g.add_const("idx", std::sync::Arc::new(idx));
        let gathered = node(&mut g, Op::Gather { axis: 0 }, &[flat, idx]);
        let y = relu(&mut g, gathered);
        g.outputs.push(y);
        let (after, changed) = check_pass(&g, &RemoveIdentity, 3);
        assert_eq!(changed, removed);
        let left = count(&after, "gather") + count(&after, "reshape");
        assert_eq!(left == 0, removed, "\n{after}");
    }
}
