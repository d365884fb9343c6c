//! Malformed ONNX models of `shared/design/bad-inputs.md`, built with the prost types (no
//! Python). Shared by `ghostc-cli/tests/bad_inputs.rs` (library, CLI, build.rs API) and
//! `ghost-macros/tests/bad_models.rs`, which checks that the files the proc-macro's
//! compile-fail tests read (`ghost-macros/tests/bad_models/*.onnx`) are exactly
//! [`macro_models`]. Depends only on ghostc and prost, so both crates can include it.
#![allow(dead_code)] // each suite uses a subset

use ghostc::onnx::proto::tensor_proto::{DataLocation, DataType};
use ghostc::onnx::proto::tensor_shape_proto::{dimension, Dimension};
use ghostc::onnx::proto::{
    attribute_proto::AttributeType, type_proto, AttributeProto, FunctionProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;

// ---------------------------------------------------------------------------------------------
// Builders

/// A node named `name`.
pub fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn with_attrs(mut n: NodeProto, attrs: Vec<AttributeProto>) -> NodeProto {
    n.attribute = attrs;
    n
}

pub fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

pub fn a_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attr(name, AttributeType::Int)
    }
}

pub fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub fn a_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(t),
        ..attr(name, AttributeType::Tensor)
    }
}

/// A tensor with `raw_data` of exactly the given bytes.
pub fn raw_tensor(name: &str, dtype: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(dtype as i32),
        dims: dims.to_vec(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// An f32 tensor in `float_data`, filled with a deterministic ramp.
pub fn f32_tensor(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        dims: dims.to_vec(),
        float_data: (0..n).map(|i| ((i % 17) as f32 - 8.0) / 16.0).collect(),
        ..Default::default()
    }
}

pub fn i64_tensor(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Int64 as i32),
        dims: vec![values.len() as i64],
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

/// A tensor whose data lives in an external file: `location` plus extra key/value entries.
pub fn external_tensor(
    name: &str,
    location: Option<&str>,
    extra: &[(&str, &str)],
    dims: &[i64],
) -> TensorProto {
    let entry = |k: &str, v: &str| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    };
    let mut entries: Vec<_> = location.map(|l| entry("location", l)).into_iter().collect();
    entries.extend(extra.iter().map(|(k, v)| entry(k, v)));
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        dims: dims.to_vec(),
        data_location: Some(DataLocation::External as i32),
        external_data: entries,
        ..Default::default()
    }
}

/// A tensor-typed value info with static dims (negative ones allowed: they are the point of
/// some cases).
pub fn value_info(name: &str, dtype: DataType, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(dtype as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An output declared by name only (no type).
pub fn untyped(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

/// A model under construction: default-domain opset 17, IR version 8.
#[derive(Clone, Debug)]
pub struct Model {
    pub proto: ModelProto,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    pub fn new() -> Self {
        Model {
            proto: ModelProto {
                ir_version: Some(8),
                opset_import: vec![OperatorSetIdProto {
                    domain: Some(String::new()),
                    version: Some(17),
                }],
                graph: Some(GraphProto {
                    name: Some("g".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    }
    fn graph(&mut self) -> &mut GraphProto {
        self.proto.graph.get_or_insert_with(GraphProto::default)
    }
    /// A float input of static shape.
    pub fn input(mut self, name: &str, dims: &[i64]) -> Self {
        self.graph()
            .input
            .push(value_info(name, DataType::Float, dims));
        self
    }
    pub fn input_info(mut self, info: ValueInfoProto) -> Self {
        self.graph().input.push(info);
        self
    }
    pub fn init(mut self, t: TensorProto) -> Self {
        self.graph().initializer.push(t);
        self
    }
    pub fn node(mut self, n: NodeProto) -> Self {
        self.graph().node.push(n);
        self
    }
    /// An output declared by name only.
    pub fn output(mut self, name: &str) -> Self {
        self.graph().output.push(untyped(name));
        self
    }
    pub fn function(mut self, f: FunctionProto) -> Self {
        self.proto.functions.push(f);
        self
    }
    pub fn opset(mut self, domain: &str, version: i64) -> Self {
        self.proto.opset_import.push(OperatorSetIdProto {
            domain: Some(domain.into()),
            version: Some(version),
        });
        self
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }
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
    Model::new()
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
    m.graph().node.reverse();
    m
}

/// `x` (1x4) -> `n` Relu nodes in a chain -> `y`.
pub fn relu_chain(n: usize) -> Model {
    let mut m = Model::new().input("x", &[1, 4]);
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
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
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
    let mut m = Model::new();
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
    Model::new().input_info(info).output("x").bytes()
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
    Model::new().init(t).output(&name)
}

/// Case 6: `W` is float [2, 5, 11] (440 bytes) with 12 bytes of raw_data.
pub fn truncated_raw_data() -> Model {
    init_only(raw_tensor("W", DataType::Float, &[2, 5, 11], vec![0; 12]))
}

// ---------------------------------------------------------------------------------------------
// Graph structure (cases 17-21)

/// Case 17: node `add0` reads `ghost`, which nothing defines.
pub fn dangling_input() -> Model {
    Model::new()
        .input("x", &[1, 4])
        .node(node("add0", "Add", &["x", "ghost"], &["y"]))
        .output("y")
}

/// Case 18: `n_a` reads `b`, which `n_b` computes from `a`.
pub fn cycle() -> Model {
    Model::new()
        .input("x", &[1, 4])
        .node(node("n_a", "Add", &["x", "b"], &["a"]))
        .node(node("n_b", "Relu", &["a"], &["b"]))
        .node(node("n_y", "Relu", &["b"], &["y"]))
        .output("y")
}

/// Case 21: three unsupported nodes (unknown op, unknown domain, an op ghostc lacks) around
/// supported ones.
pub fn unsupported_ops() -> Model {
    Model::new()
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
    ]
}
