//! Several outputs in forms ONNX allows and exporters write, compiled and run as real binaries
//! (bad-input case 30, the accepted half; `bad_inputs.rs` has the rejected half):
//! - a graph input that is also a graph output (a pass-through, next to a computed output);
//! - a model whose only output is its input (no node at all);
//! - two outputs holding the same value (`y` and `Identity(y)`: the pass that removes the
//!   Identity leaves both outputs on one value);
//! - a second input that is also an output.
//!
//! The expected values are computed here from the input (`x`, `relu(x)`, `x + w`), not by
//! ghostc; ONNX Runtime 1.31.1 gives the same outputs for these graphs.

mod e2e_common;

use std::path::Path;

use ghostc::onnx::proto::NodeProto;
use ghostc_testkit::onnx::{self, Model};

fn model() -> Model {
    Model::new(17)
}

fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    onnx::named(onnx::node(op, inputs, outputs, vec![]), name)
}

const SHAPE: [usize; 4] = [1, 8, 5, 3];

fn dims() -> Vec<i64> {
    SHAPE.iter().map(|&d| d as i64).collect()
}

/// Distinct values of both signs (so a wrong Relu or a swapped output shows).
fn data(seed: f32) -> Vec<f32> {
    let n: usize = SHAPE.iter().product();
    (0..n)
        .map(|i| ((i as f32 * 0.37 + seed).sin() * 3.0).round() / 2.0 + 0.25)
        .collect()
}

fn relu(x: &[f32]) -> Vec<f32> {
    x.iter().map(|v| v.max(0.0)).collect()
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(a, b)| a + b).collect()
}

struct Case {
    name: &'static str,
    model: Model,
    inputs: Vec<Vec<f32>>,
    expected: Vec<Vec<f32>>,
}

fn cases() -> Vec<Case> {
    let (x, w) = (data(0.0), data(1.5));
    let d = dims();
    vec![
        Case {
            name: "mo_passthrough",
            model: model()
                .input("x", &d)
                .node(node("r", "Relu", &["x"], &["y"]))
                .output("y")
                .output("x"),
            inputs: vec![x.clone()],
            expected: vec![relu(&x), x.clone()],
        },
        Case {
            name: "mo_input_only",
            model: model().input("x", &d).output("x"),
            inputs: vec![x.clone()],
            expected: vec![x.clone()],
        },
        Case {
            name: "mo_same_value",
            model: model()
                .input("x", &d)
                .node(node("r", "Relu", &["x"], &["y"]))
                .node(node("i", "Identity", &["y"], &["z"]))
                .output("y")
                .output("z"),
            inputs: vec![x.clone()],
            expected: vec![relu(&x), relu(&x)],
        },
        Case {
            name: "mo_second_input",
            model: model()
                .input("x", &d)
                .input("w", &d)
                .node(node("a", "Add", &["x", "w"], &["y"]))
                .output("y")
                .output("w"),
            inputs: vec![x.clone(), w.clone()],
            expected: vec![add(&x, &w), w.clone()],
        },
    ]
}

#[test]
fn accepted_multi_output_forms_compile_and_run() {
    let ws = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-multi-output");
    std::fs::create_dir_all(&ws).unwrap();
    let cases = cases();
    let mut members = Vec::new();
    for c in &cases {
        let model = ws.join(format!("{}.onnx", c.name));
        std::fs::write(&model, c.model.bytes()).unwrap();
        let stage = tempfile::tempdir().unwrap();
        let staged = stage.path().join(c.name);
        e2e_common::ghostc_compile(&model, &staged, c.name, &[])
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        e2e_common::sync_tree(&staged, &ws.join(c.name));
        members.push(c.name.to_string());
    }
    let (_, failed) = e2e_common::build_workspace(&ws, &members);
    assert!(failed.is_none(), "{}", failed.unwrap());
    for c in &cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = Vec::new();
        for (i, x) in c.inputs.iter().enumerate() {
            let p = tmp.path().join(format!("in{i}.npy"));
            ghostc::npy::write_f32(&p, &SHAPE, x).unwrap();
            args.push(p);
        }
        let outs: Vec<_> = (0..c.expected.len())
            .map(|i| tmp.path().join(format!("out{i}.npy")))
            .collect();
        args.extend(outs.iter().cloned());
        let args: Vec<&str> = args.iter().map(|p| p.to_str().unwrap()).collect();
        let (ok, log) = e2e_common::run_bin(&e2e_common::workspace_bin(c.name), &args);
        assert!(ok, "{}: {log}", c.name);
        for (i, (p, want)) in outs.iter().zip(&c.expected).enumerate() {
            let got = ghostc::npy::read_f32(p).unwrap();
            assert_eq!(got.shape, SHAPE, "{} output {i}", c.name);
            // Exact: a copy, a Relu and one f32 add have one right answer.
            assert_eq!(&got.data, want, "{} output {i}", c.name);
        }
    }
}
