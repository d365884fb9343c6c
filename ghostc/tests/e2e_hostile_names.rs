//! Hostile ONNX names (bad-inputs case 25) cannot reach generated identifiers or break out of
//! comments: the same model compiled once with plain names and once with names full of quotes,
//! newlines, `*/`, NUL, bidi overrides (U+202E), Rust keywords, leading digits and names that
//! collide once sanitized yields code that parses, holds no raw control or bidi characters, and
//! is byte-identical to the plain one apart from comments and the escaped name literals.

use ghostc::codegen::emit::WeightsPath;
use ghostc::onnx::proto::tensor_proto::DataType;
use ghostc::{compile_file, CompileOptions};
use ghostc_testkit::onnx::{f32_data, named, node, tensor_info, Model};

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

/// 1x3x4x4 -> Conv 1x1 (3 -> 5) -> Relu.
fn model(n: &Names) -> Vec<u8> {
    let w: Vec<f32> = (0..15).map(|i| (i as f32 - 7.0) / 8.0).collect();
    let mut m = Model::new(17)
        .node(named(
            node(
                "Conv",
                &[&n.input, &n.weight, &n.bias],
                &[&n.conv_out],
                vec![],
            ),
            &n.conv_node,
        ))
        .node(named(
            node("Relu", &[&n.conv_out], &[&n.output], vec![]),
            &n.relu_node,
        ))
        .init(f32_data(&n.weight, &[5, 3, 1, 1], w))
        .init(f32_data(&n.bias, &[5], vec![0.1; 5]))
        .input(&n.input, &[1, 3, 4, 4])
        .output_info(tensor_info(&n.output, DataType::Float, &[1, 5, 4, 4]));
    m.graph_mut().name = Some("hostile".into());
    m.bytes()
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

/// The source without comments, the provenance header and the name constants (`INPUT_NAME`,
/// `INPUT0_NAME`, `INPUT_NAMES`, and the same for outputs).
fn code_only(source: &str) -> String {
    let mut out = Vec::new();
    let mut skip_const = false;
    for line in source.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.contains("_NAME: &'static str") || t.contains("_NAMES: [&'static str") {
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
