//! Several outputs in forms ONNX allows and exporters write, compiled and run as real binaries
//! (bad-input case 30, the accepted half: `bad_inputs_common::accepted_multi_output`, whose
//! `Identity(y)` output is removed by a pass, leaving two outputs on one value).
//!
//! The expected values are computed here from the input (`x`, `relu(x)`, `x + w`), not by
//! ghostc; ONNX Runtime 1.31.1 gives exactly these outputs for the same graphs and inputs
//! (checked with onnx's Python helper and numpy).

mod bad_inputs_common;
mod e2e_common;

use std::path::Path;

const SHAPE: [usize; 4] = [1, 8, 5, 3];

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

/// The inputs and expected outputs of each of `bad_inputs_common::accepted_multi_output`'s
/// models, by name.
fn io(name: &str) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let (x, w) = (data(0.0), data(1.5));
    match name {
        "mo_passthrough" => (vec![x.clone()], vec![relu(&x), x]),
        "mo_input_only" => (vec![x.clone()], vec![x]),
        "mo_same_value" => (vec![x.clone()], vec![relu(&x), relu(&x)]),
        "mo_second_input" => {
            let sum = x.iter().zip(&w).map(|(a, b)| a + b).collect();
            (vec![x, w.clone()], vec![sum, w])
        }
        other => panic!("no expected values for {other}"),
    }
}

#[test]
fn accepted_multi_output_forms_compile_and_run() {
    let ws = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-multi-output");
    std::fs::create_dir_all(&ws).unwrap();
    let dims: Vec<i64> = SHAPE.iter().map(|&d| d as i64).collect();
    let cases = bad_inputs_common::accepted_multi_output(&dims);
    let mut members = Vec::new();
    for (name, m) in &cases {
        let model = ws.join(format!("{name}.onnx"));
        std::fs::write(&model, m.bytes()).unwrap();
        let stage = tempfile::tempdir().unwrap();
        let staged = stage.path().join(name);
        e2e_common::ghostc_compile(&model, &staged, name, &[])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        e2e_common::sync_tree(&staged, &ws.join(name));
        members.push(name.to_string());
    }
    let (_, failed) = e2e_common::build_workspace(&ws, &members);
    assert!(failed.is_none(), "{}", failed.unwrap());
    for (name, _) in &cases {
        let (inputs, expected) = io(name);
        let tmp = tempfile::tempdir().unwrap();
        let mut args = Vec::new();
        for (i, x) in inputs.iter().enumerate() {
            let p = tmp.path().join(format!("in{i}.npy"));
            ghostc::npy::write_f32(&p, &SHAPE, x).unwrap();
            args.push(p);
        }
        let outs: Vec<_> = (0..expected.len())
            .map(|i| tmp.path().join(format!("out{i}.npy")))
            .collect();
        args.extend(outs.iter().cloned());
        let args: Vec<&str> = args.iter().map(|p| p.to_str().unwrap()).collect();
        let (ok, log) = e2e_common::run_bin(&e2e_common::workspace_bin(name), &args);
        assert!(ok, "{name}: {log}");
        for (i, (p, want)) in outs.iter().zip(&expected).enumerate() {
            let got = ghostc::npy::read_f32(p).unwrap();
            assert_eq!(got.shape, SHAPE, "{name} output {i}");
            // Exact: a copy, a Relu and one f32 add have one right answer.
            assert_eq!(&got.data, want, "{name} output {i}");
        }
    }
}
