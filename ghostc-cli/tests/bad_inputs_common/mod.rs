//! Malformed ONNX models of `shared/design/bad-inputs.md`, built with the prost types (no
//! Python). Shared by `ghostc-cli/tests/bad_inputs.rs` (library, CLI, build.rs API) and
//! `ghost-macros/tests/bad_models.rs`, which checks that the files the proc-macro's
//! compile-fail tests read (`ghost-macros/tests/bad_models/*.onnx`) are exactly
//! [`macro_models`]. Depends only on ghostc, ghostc-testkit and prost, so both crates can
//! include it.
#![allow(dead_code)] // each suite uses a subset

use ghostc::onnx::proto::tensor_proto::DataType;
use ghostc::onnx::proto::{
    attribute_proto::AttributeType, type_proto, AttributeProto, GraphProto, NodeProto, TensorProto,
    TypeProto, ValueInfoProto,
};
use ghostc_testkit::onnx;

// ---------------------------------------------------------------------------------------------
// Builders: ghostc_testkit::onnx, with this suite's node and tensor shorthands

#[allow(unused_imports)] // each suite uses a subset
pub use ghostc_testkit::onnx::{
    a_int, a_ints, a_str, a_tensor, attr, external_tensor, raw_tensor, tensor_info, untyped, Model,
};

/// A node named `name` with no attributes.
pub fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    onnx::named(onnx::node(op, inputs, outputs, vec![]), name)
}

pub fn with_attrs(mut n: NodeProto, attrs: Vec<AttributeProto>) -> NodeProto {
    n.attribute = attrs;
    n
}

/// An f32 tensor in `float_data`, filled with a deterministic ramp.
pub fn f32_tensor(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    onnx::f32_data(
        name,
        dims,
        (0..n).map(|i| ((i % 17) as f32 - 8.0) / 16.0).collect(),
    )
}

/// A 1-D i64 tensor.
pub fn i64_tensor(name: &str, values: &[i64]) -> TensorProto {
    onnx::i64_tensor(name, &[values.len() as i64], values)
}

/// A model with the default-domain opset 17 (every case here uses it).
pub fn model() -> Model {
    Model::new(17)
}

/// Appends a protobuf varint.
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Appends a length-delimited field.
pub fn len_field(field: u64, body: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

// ---------------------------------------------------------------------------------------------
// Valid models

/// `x` (1x3x4x4) -> Conv 1x1 3->5 (`conv`) -> Relu (`relu`) -> `y`: the smallest model every
/// entry point compiles. Malformed cases are variations of it.
pub fn tiny() -> Model {
    model()
        .input("x", &[1, 3, 4, 4])
        .init(f32_tensor("w", &[5, 3, 1, 1]))
        .init(f32_tensor("b", &[5]))
        .node(node("conv", "Conv", &["x", "w", "b"], &["c"]))
        .node(node("relu", "Relu", &["c"], &["y"]))
        .output("y")
}

/// [`tiny`] with its two nodes in reverse file order (legal: ONNX only requires a DAG).
pub fn tiny_out_of_order() -> Model {
    let mut m = tiny();
    m.graph_mut().node.reverse();
    m
}

/// `x` (1x4) -> `n` Relu nodes in a chain -> `y`.
pub fn relu_chain(n: usize) -> Model {
    let mut m = model().input("x", &[1, 4]);
    for i in 0..n {
        let input = if i == 0 {
            "x".to_string()
        } else {
            format!("v{i}")
        };
        let output = if i + 1 == n {
            "y".to_string()
        } else {
            format!("v{}", i + 1)
        };
        m = m.node(node(&format!("relu{i}"), "Relu", &[&input], &[&output]));
    }
    m.output("y")
}

// ---------------------------------------------------------------------------------------------
// Malformed bytes (cases 1-4)

/// The first bytes of a PNG file.
pub fn png() -> Vec<u8> {
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0\x1f\xf3\xffa".to_vec()
}

/// Deterministic noise.
pub fn random_bytes(n: usize) -> Vec<u8> {
    ghostc_testkit::Rng::new(1).bytes(n)
}

/// `levels` If nodes, each holding the next in its `then_branch` subgraph.
pub fn nested_subgraphs(levels: usize) -> Vec<u8> {
    let mut g = GraphProto::default();
    for i in 0..levels {
        let n = NodeProto {
            name: Some(format!("if{i}")),
            op_type: Some("If".into()),
            attribute: vec![AttributeProto {
                g: Some(g),
                ..attr("then_branch", AttributeType::Graph)
            }],
            ..Default::default()
        };
        g = GraphProto {
            node: vec![n],
            ..Default::default()
        };
    }
    let mut m = model();
    m.proto.graph = Some(g);
    m.bytes()
}

/// A ModelProto whose unknown field 99 holds `levels` nested protobuf groups (wire types 3/4):
/// prost skips unknown fields, so only the pre-scan sees the nesting.
pub fn nested_unknown_groups(levels: usize) -> Vec<u8> {
    let mut out = tiny().bytes();
    for _ in 0..levels {
        varint(99 << 3 | 3, &mut out);
    }
    for _ in 0..levels {
        varint(99 << 3 | 4, &mut out);
    }
    out
}

/// An input whose type is `sequence(sequence(...(tensor)))`, `levels` deep: the pre-scan does
/// not follow types, so prost's own recursion limit has to stop it.
pub fn nested_types(levels: usize) -> Vec<u8> {
    let mut t = TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor::default())),
        ..Default::default()
    };
    for _ in 0..levels {
        t = TypeProto {
            value: Some(type_proto::Value::SequenceType(Box::new(
                type_proto::Sequence {
                    elem_type: Some(Box::new(t)),
                },
            ))),
            ..Default::default()
        };
    }
    let info = ValueInfoProto {
        name: Some("x".into()),
        r#type: Some(t),
        ..Default::default()
    };
    model().input_info(info).output("x").bytes()
}

/// A model whose graph holds `n` empty NodeProtos: 2 bytes each on the wire, a few hundred
/// each once prost has decoded them.
pub fn empty_nodes(n: usize) -> Vec<u8> {
    let mut graph = Vec::with_capacity(2 * n);
    for _ in 0..n {
        graph.extend_from_slice(&[0x0a, 0x00]); // GraphProto.node (field 1), empty
    }
    let mut out = Vec::with_capacity(graph.len() + 16);
    len_field(7, &graph, &mut out); // ModelProto.graph
    out
}

// ---------------------------------------------------------------------------------------------
// Tensors (cases 6-12)

/// A model whose only initializer (and output) is `t`.
pub fn init_only(t: TensorProto) -> Model {
    let name = t.name.clone().unwrap_or_default();
    model().init(t).output(&name)
}

/// Case 6: `W` is float [2, 5, 11] (440 bytes) with 12 bytes of raw_data.
pub fn truncated_raw_data() -> Model {
    init_only(raw_tensor("W", DataType::Float, &[2, 5, 11], vec![0; 12]))
}

// ---------------------------------------------------------------------------------------------
// Graph structure (cases 17-21)

/// Case 17: node `add0` reads `ghost`, which nothing defines.
pub fn dangling_input() -> Model {
    model()
        .input("x", &[1, 4])
        .node(node("add0", "Add", &["x", "ghost"], &["y"]))
        .output("y")
}

/// Case 18: `n_a` reads `b`, which `n_b` computes from `a`.
pub fn cycle() -> Model {
    model()
        .input("x", &[1, 4])
        .node(node("n_a", "Add", &["x", "b"], &["a"]))
        .node(node("n_b", "Relu", &["a"], &["b"]))
        .node(node("n_y", "Relu", &["b"], &["y"]))
        .output("y")
}

/// Case 21: three unsupported nodes (unknown op, unknown domain, an op ghostc lacks) around
/// supported ones.
pub fn unsupported_ops() -> Model {
    model()
        .opset("com.example", 1)
        .input("x", &[1, 4])
        .node(node("first", "Frobnicate", &["x"], &["a"]))
        .node(node("fine", "Relu", &["a"], &["b"]))
        .node(NodeProto {
            domain: Some("com.example".into()),
            ..node("second", "Custom", &["b"], &["c"])
        })
        .node(node("ok", "Tanh", &["x"], &["d"]))
        .node(node("third", "Einsum", &["c", "d"], &["y"]))
        .output("y")
}

// ---------------------------------------------------------------------------------------------
// The files of ghost-macros/tests/bad_models/

/// The malformed models the proc-macro's compile-fail tests read, by file name.
/// The several-output forms ONNX Runtime runs and ghostc accepts (case 30), with inputs of
/// shape `dims`: an input that is also an output, a model whose only output is its input, two
/// outputs on one value (`y` and `Identity(y)`), a second input as an output.
/// `bad_inputs.rs` compiles them through every entry point, `e2e_multi_output.rs` runs them.
pub fn accepted_multi_output(dims: &[i64]) -> Vec<(&'static str, Model)> {
    vec![
        (
            "mo_passthrough",
            model()
                .input("x", dims)
                .node(node("r", "Relu", &["x"], &["y"]))
                .output("y")
                .output("x"),
        ),
        ("mo_input_only", model().input("x", dims).output("x")),
        (
            "mo_same_value",
            model()
                .input("x", dims)
                .node(node("r", "Relu", &["x"], &["y"]))
                .node(node("i", "Identity", &["y"], &["z"]))
                .output("y")
                .output("z"),
        ),
        (
            "mo_second_input",
            model()
                .input("x", dims)
                .input("w", dims)
                .node(node("a", "Add", &["x", "w"], &["y"]))
                .output("y")
                .output("w"),
        ),
    ]
}

/// `x` -> Relu -> `y`, with `y` listed twice among the graph outputs (case 30).
pub fn duplicate_output() -> Model {
    model()
        .input("x", &[1, 4])
        .node(node("r", "Relu", &["x"], &["y"]))
        .output("y")
        .output("y")
}

/// Case 31: `x` (1x2x4x4) -> MaxPool `p` (2x2) with `ceil_mode = 2` (only 0 and 1 are
/// accepted) -> `y`.
pub fn pool_ceil_mode() -> Model {
    model()
        .input("x", &[1, 2, 4, 4])
        .node(with_attrs(
            node("p", "MaxPool", &["x"], &["y"]),
            vec![a_ints("kernel_shape", &[2, 2]), a_int("ceil_mode", 2)],
        ))
        .output("y")
}

pub fn macro_models() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty.onnx", Vec::new()),
        ("not_protobuf.onnx", png()),
        ("truncated_raw_data.onnx", truncated_raw_data().bytes()),
        (
            "external_escape.onnx",
            init_only(external_tensor("W", Some("../../etc/passwd"), &[], &[2, 2])).bytes(),
        ),
        ("dangling_input.onnx", dangling_input().bytes()),
        ("cycle.onnx", cycle().bytes()),
        ("unsupported_ops.onnx", unsupported_ops().bytes()),
        ("relu_chain.onnx", relu_chain(4).bytes()),
        ("nested_subgraphs.onnx", nested_subgraphs(40)),
        ("duplicate_output.onnx", duplicate_output().bytes()),
        ("pool_ceil_mode.onnx", pool_ceil_mode().bytes()),
    ]
}
