//! Hostile ONNX names (bad-inputs case 25) cannot reach generated identifiers or break out of
//! comments: the same model compiled once with plain names and once with names full of quotes,
//! newlines, `*/`, NUL, bidi overrides (U+202E), Rust keywords, leading digits and names that
//! collide once sanitized yields code that parses, holds no raw control or bidi characters, and
//! is byte-identical to the plain one apart from comments and the escaped name literals.

use ghostc::codegen::emit::WeightsPath;
use ghostc::onnx::proto::tensor_proto::DataType;
use ghostc::onnx::proto::{
    tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use ghostc::{compile_file, CompileOptions};
use prost::Message;

/// Value and node names used in the model, in one place so both variants share the structure.
struct Names {
    input: String,
    weight: String,
    bias: String,
    conv_out: String,
    output: String,
    conv_node: String,
    relu_node: String,
}

fn io(name: &str, dims: &[i64]) -> ValueInfoProto {
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
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: data,
        ..Default::default()
    }
}

/// 1x3x4x4 -> Conv 1x1 (3 -> 5) -> Relu.
fn model(n: &Names) -> Vec<u8> {
    let w: Vec<f32> = (0..15).map(|i| (i as f32 - 7.0) / 8.0).collect();
    let graph = GraphProto {
        name: Some("hostile".into()),
        node: vec![
            NodeProto {
                op_type: Some("Conv".into()),
                name: Some(n.conv_node.clone()),
                input: vec![n.input.clone(), n.weight.clone(), n.bias.clone()],
                output: vec![n.conv_out.clone()],
                ..Default::default()
            },
            NodeProto {
                op_type: Some("Relu".into()),
                name: Some(n.relu_node.clone()),
                input: vec![n.conv_out.clone()],
                output: vec![n.output.clone()],
                ..Default::default()
            },
        ],
        initializer: vec![
            tensor(&n.weight, &[5, 3, 1, 1], w),
            tensor(&n.bias, &[5], vec![0.1; 5]),
        ],
        input: vec![io(&n.input, &[1, 3, 4, 4])],
        output: vec![io(&n.output, &[1, 5, 4, 4])],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

fn compile(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, bytes).unwrap();
    let compiled = compile_file(
        &path,
        &CompileOptions::default(),
        &WeightsPath::Relative("m.weights".into()),
    )
    .expect("hostile names must compile");
    compiled.source
}

/// The source without comments, the provenance header and the two name constants.
fn code_only(source: &str) -> String {
    let mut out = Vec::new();
    let mut skip_const = false;
    for line in source.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.contains("INPUT_NAME: &'static str") || t.contains("OUTPUT_NAME: &'static str") {
            skip_const = !t.ends_with(';');
            continue;
        }
        if skip_const {
            skip_const = !t.ends_with(';');
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

#[test]
fn hostile_names_change_nothing_but_escaped_text() {
    let plain = Names {
        input: "x".into(),
        weight: "w".into(),
        bias: "b".into(),
        conv_out: "c".into(),
        output: "y".into(),
        conv_node: "conv".into(),
        relu_node: "relu".into(),
    };
    let hostile = Names {
        input: "in\"put\n*/ panic!(); /*".into(),
        weight: "fn".into(),
        bias: "0bias\u{0}".into(),
        conv_out: "r#type\r\n// injected".into(),
        output: "\u{202e}tuptuo".into(),
        conv_node: "*/\n} fn evil() { /*\u{202e}\u{0}".into(),
        relu_node: "self\u{2066}".into(),
    };
    let plain_src = compile(&model(&plain));
    let hostile_src = compile(&model(&hostile));

    syn::parse_file(&hostile_src).expect("generated code with hostile names parses");
    for (i, line) in hostile_src.lines().enumerate() {
        for c in line.chars() {
            let bidi =
                ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c);
            assert!(
                !c.is_control() && !bidi,
                "line {} holds a raw {:?}: {line}",
                i + 1,
                c
            );
        }
    }
    // The names are present, escaped, so users can still see them.
    assert!(
        hostile_src.contains("in\\\"put\\n*/ panic!(); /*"),
        "input name literal missing"
    );
    assert!(
        hostile_src.contains("\\u{202e}tuptuo"),
        "bidi override not escaped"
    );
    // Identifiers are positional: apart from comments and name literals nothing changed.
    assert_eq!(code_only(&plain_src), code_only(&hostile_src));
}
