//! The activations with no epilogue form (Tanh, LeakyRelu) become `glue::unary` steps, which no
//! committed fixture produces: a synthetic model with a Tanh after a conv (conv, then the step
//! on its output) and a standalone Tanh and LeakyRelu (copy, then the step) goes through
//! `ghostc verify`: compiled, built, run, and every output compared with the reference
//! interpreter (itself held to ONNX Runtime by the fixture suites).

mod e2e_common;

use e2e_common::ghostc_verify;
use ghostc::codegen::emit::WeightsPath;
use ghostc::onnx::proto::tensor_proto::DataType;
use ghostc::{compile_file, CompileOptions};
use ghostc_testkit::onnx::{a_float, f32_data, node, tensor_info, Model};

const OUTPUTS: [&str; 3] = ["conv_tanh", "tanh", "leaky"];

/// x [1, 3, 6, 6] (verify's noise, in [-1, 1)):
/// Conv 1x1 3 -> 5 -> Tanh -> `conv_tanh`; Mul(x, 4) -> Tanh -> `tanh` (into saturation);
/// LeakyRelu(x, 0.1) -> `leaky`.
fn model() -> Vec<u8> {
    let w: Vec<f32> = (0..15).map(|i| (i as f32 - 7.0) / 4.0).collect();
    let mut m = Model::new(17)
        .input("x", &[1, 3, 6, 6])
        .init(f32_data("w", &[5, 3, 1, 1], w))
        .init(f32_data("b", &[5], vec![0.25, -0.5, 0.0, 0.5, -0.25]))
        .init(f32_data("four", &[], vec![4.0]))
        .node(node("Conv", &["x", "w", "b"], &["c"], vec![]))
        .node(node("Tanh", &["c"], &["conv_tanh"], vec![]))
        .node(node("Mul", &["x", "four"], &["x4"], vec![]))
        .node(node("Tanh", &["x4"], &["tanh"], vec![]))
        .node(node(
            "LeakyRelu",
            &["x"],
            &["leaky"],
            vec![a_float("alpha", 0.1)],
        ));
    for name in OUTPUTS {
        let shape = if name == "conv_tanh" { 5 } else { 3 };
        m = m.output_info(tensor_info(name, DataType::Float, &[1, shape, 6, 6]));
    }
    m.bytes()
}

#[test]
fn tanh_and_leaky_relu_steps_match_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unary.onnx");
    std::fs::write(&path, model()).unwrap();

    // The model does exercise the step: one call per activation, with the kernels handle.
    let source = compile_file(
        &path,
        &CompileOptions::default(),
        &WeightsPath::Relative("m.weights".into()),
    )
    .expect("compiles")
    .source;
    let code: String = source.split_whitespace().collect();
    assert_eq!(
        code.matches("glue::unary(k,").count(),
        3,
        "expected three glue::unary steps in:\n{source}"
    );

    let stdout = ghostc_verify(&path, &[]);
    for name in OUTPUTS {
        assert!(
            stdout.contains(&format!("vs interpreter [{name}]")),
            "{name}: {stdout}"
        );
    }
    assert_eq!(stdout.matches("-> ok").count(), 3, "{stdout}");
}
