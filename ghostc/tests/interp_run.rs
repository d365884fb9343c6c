//! `interp::run` on small hand-built graphs: input checking, value lifetimes, constants and
//! dynamic batch.

use std::sync::Arc;

use ghostc::interp::{run, InterpError};
use ghostc::ir::{Activation, BinaryOp, Conv, DType, Graph, Op, Tensor, TensorType};

fn t(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
}

/// x -> conv 1x1 (weight 2, bias 1) -> relu -> y1; y1 + x -> y2. Outputs [y2, y1]: y1 is both
/// a graph output and read by a later node, so it must survive its last node use.
fn small_graph(dynamic_batch: bool) -> Graph {
    let mut g = Graph::new();
    g.dynamic_batch = dynamic_batch;
    let x = g.add_input("x", TensorType::f32(vec![1, 1, 1, 2]));
    let w = g.add_const("w", Arc::new(t(&[1, 1, 1, 1], &[2.0])));
    let b = g.add_const("b", Arc::new(t(&[1], &[1.0])));
    let conv = Op::Conv(Conv {
        kernel: [1, 1],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
    });
    let ty = TensorType::f32(vec![1, 1, 1, 2]);
    let (_, c) = g.add_node("conv", conv, vec![x, w, b], vec![("c".into(), ty.clone())]);
    let (_, y1) = g.add_node(
        "relu",
        Op::Activation(Activation::Relu),
        vec![c[0]],
        vec![("y1".into(), ty.clone())],
    );
    let (_, y2) = g.add_node(
        "add",
        Op::Binary(BinaryOp::Add),
        vec![y1[0], x],
        vec![("y2".into(), ty)],
    );
    g.outputs = vec![y2[0], y1[0]];
    g
}

#[test]
fn runs_a_small_graph() {
    let g = small_graph(false);
    ghostc::verify::verify(&g).unwrap();
    let out = run(&g, &[t(&[1, 1, 1, 2], &[1.0, -3.0])]).unwrap();
    // conv: [3, -5]; relu: [3, 0]; + x: [4, -3].
    assert_eq!(out[0].as_f32().unwrap(), [4.0, -3.0]);
    assert_eq!(out[1].as_f32().unwrap(), [3.0, 0.0]);
}

#[test]
fn rejects_wrong_inputs() {
    let g = small_graph(false);
    let err = run(&g, &[t(&[1, 1, 2, 1], &[1.0, 2.0])]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, InterpError::InputType { .. }), "{msg}");
    assert!(
        msg.contains("'x'") && msg.contains("1x1x1x2") && msg.contains("1x1x2x1"),
        "{msg}"
    );
    assert!(matches!(
        run(&g, &[]).unwrap_err(),
        InterpError::InputCount {
            expected: 1,
            actual: 0
        }
    ));
    let ints = Tensor::from_i64(vec![1, 1, 1, 2], vec![1, 2]).unwrap();
    assert!(matches!(
        run(&g, &[ints]).unwrap_err(),
        InterpError::InputType { .. }
    ));
    // Without dynamic batch a batch of 2 is a shape error.
    assert!(run(&g, &[t(&[2, 1, 1, 2], &[0.0; 4])]).is_err());
}

#[test]
fn dynamic_batch_runs_image_by_image() {
    let g = small_graph(true);
    let out = run(&g, &[t(&[3, 1, 1, 2], &[1.0, -3.0, 0.0, 0.0, -1.0, 2.0])]).unwrap();
    assert_eq!(out[0].shape(), [3, 1, 1, 2]);
    assert_eq!(out[0].as_f32().unwrap(), [4.0, -3.0, 1.0, 1.0, -1.0, 7.0]);
    assert_eq!(out[1].as_f32().unwrap(), [3.0, 0.0, 1.0, 1.0, 0.0, 5.0]);
    let empty = run(&g, &[t(&[0, 1, 1, 2], &[])]).unwrap();
    assert_eq!(empty[0].shape(), [0, 1, 1, 2]);
    // The per-image dims must still match.
    let err = run(&g, &[t(&[2, 1, 1, 3], &[0.0; 6])]).unwrap_err();
    assert!(err.to_string().contains("Nx1x1x2"), "{err}");
}

#[test]
fn node_errors_name_the_node() {
    // An integer-division-by-zero found at run time, reported with the node's name.
    let mut g = Graph::new();
    let a = g.add_input("a", TensorType::new(DType::I64, vec![2]));
    let zero = g.add_const("zero", Arc::new(Tensor::from_i64(vec![], vec![0]).unwrap()));
    let (_, q) = g.add_node(
        "divide",
        Op::Binary(BinaryOp::Div),
        vec![a, zero],
        vec![("q".into(), TensorType::new(DType::I64, vec![2]))],
    );
    g.outputs = q;
    let err = run(&g, &[Tensor::from_i64(vec![2], vec![4, 6]).unwrap()]).unwrap_err();
    assert!(
        matches!(&err, InterpError::Node { node, op: "div", .. } if node == "divide"),
        "{err}"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("division"), "{source}");
}

#[test]
fn graph_outputs_may_be_inputs_or_constants() {
    let mut g = Graph::new();
    let x = g.add_input("x", TensorType::f32(vec![2]));
    let k = g.add_const("k", Arc::new(t(&[1], &[5.0])));
    g.outputs = vec![x, k];
    let out = run(&g, &[t(&[2], &[1.0, 2.0])]).unwrap();
    assert_eq!(out[0].as_f32().unwrap(), [1.0, 2.0]);
    assert_eq!(out[1].as_f32().unwrap(), [5.0]);
}

#[test]
fn stored_types_are_checked() {
    // A node whose stored output type disagrees with what it computes is a ghostc bug, reported.
    let mut g = Graph::new();
    let x = g.add_input("x", TensorType::f32(vec![2]));
    let (_, y) = g.add_node(
        "relu",
        Op::Activation(Activation::Relu),
        vec![x],
        vec![("y".into(), TensorType::f32(vec![3]))],
    );
    g.outputs = y;
    let err = run(&g, &[t(&[2], &[1.0, 2.0])]).unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.contains("f32[3]") && source.contains("f32[2]"),
        "{source}"
    );
}
