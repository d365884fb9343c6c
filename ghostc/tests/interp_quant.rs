//! The interpreter on the quantized fixtures (`fixtures/quant/manifest.json`, made by
//! `tools/make_fixtures.py --quant` with ONNX Runtime's `quantize_static`): QDQ (u8 and s8
//! activations, per-channel and per-tensor weights, opsets 13, 17 and 21) and QOperator. Each
//! output must be within one quantization step of the output scale of ONNX Runtime's on every
//! element; the distribution of step differences is printed (`--nocapture`).
//!
//! Also run after the default pass pipeline, whose quantization fold turns DQ -> Conv -> Q
//! chains into QConv ops.

mod fixtures_common;

use std::path::Path;

use fixtures_common::{quant_fixtures, QuantFixture};
use ghostc::interp;
use ghostc::ir::{Graph, Op, QBinary, QBinaryForm, Tensor};
use ghostc::onnx::{load_model, ImportOptions};
use ghostc::passes::{optimize, FuseOptions, PassOptions};

fn read(dir: &Path, name: &str) -> Tensor {
    let a = ghostc::npy::read_f32(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    Tensor::from_f32(a.shape, a.data).expect("npy shape matches data")
}

fn import(f: &QuantFixture) -> Graph {
    load_model(&f.dir.join("model.onnx"), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{}: import: {e:#}", f.name))
}

/// Histogram of |actual - expected| in output steps: counts of 0, 1, 2, 3+ steps.
fn step_histogram(actual: &Tensor, expected: &Tensor, scale: f32) -> [usize; 4] {
    assert_eq!(actual.shape(), expected.shape());
    fixtures_common::steps(actual.as_f32().unwrap(), expected.as_f32().unwrap(), scale).hist
}

fn check(fuse: Option<FuseOptions>) {
    let fixtures = quant_fixtures();
    assert!(fixtures.len() >= 4, "quantized fixtures missing");
    let mut failures = Vec::new();
    for f in &fixtures {
        let mut g = import(f);
        if let Some(fuse) = fuse {
            optimize(&mut g, &PassOptions::with_fuse(fuse))
                .unwrap_or_else(|e| panic!("{}: optimize: {e:#}", f.name));
        }
        let input = read(&f.dir, "input.npy");
        let expected = read(&f.dir, "expected.npy");
        let out = interp::run(&g, &[input])
            .unwrap_or_else(|e| panic!("{}: run: {e:#}", f.name))
            .remove(0);
        let h = step_histogram(&out, &expected, f.output_scale);
        let nodes = g.nodes.node_count();
        println!(
            "{:44} {nodes:4} nodes  steps off ORT: 0: {}, 1: {}, 2: {}, 3+: {}",
            f.name, h[0], h[1], h[2], h[3]
        );
        if h[2] + h[3] > 0 {
            failures.push(format!("{}: {h:?}", f.name));
        }
        // The comparison discriminates: the f32 model (PyTorch) is many steps away.
        let f32_model = step_histogram(&read(&f.dir, "torch.npy"), &expected, f.output_scale);
        assert!(
            f32_model[3] > 0,
            "{}: PyTorch's f32 output is within 2 steps of the quantized model's",
            f.name
        );
    }
    assert!(failures.is_empty(), "more than one step off: {failures:?}");
}

#[test]
fn imported_graphs_match_onnx_runtime_within_one_step() {
    check(None);
}

#[test]
fn optimized_graphs_match_onnx_runtime_within_one_step() {
    check(Some(FuseOptions::all()));
}

#[test]
fn unfused_pipeline_matches_too() {
    check(Some(FuseOptions::none()));
}

/// The QDQ fixtures plan (int8 kernels, f32 fallbacks); the QOperator fixture is an error
/// naming every node of the QOperator-only ops that have no kernel yet (QConcat and
/// QGlobalAveragePool have one; so have a residual Add and a classifier Gemm folded from QDQ),
/// not a panic.
#[test]
fn qdq_fixtures_plan_and_qoperator_ops_are_listed() {
    use ghostc::compile::{CompileError, CompileOptions, Planned};
    use ghostc::plan::lower::LowerError;
    for f in quant_fixtures() {
        let g = {
            let mut g = import(&f);
            optimize(&mut g, &PassOptions::default()).unwrap();
            g
        };
        // QActivation (QLinearSigmoid, or an activation folded from between a DQ and a Q)
        // runs as a table; the ratio-form QBinary has no kernel.
        let qop_only = |op: &Op| {
            matches!(
                op,
                Op::QBinary(QBinary {
                    form: QBinaryForm::Ratio,
                    ..
                })
            )
        };
        let expected = g
            .nodes
            .node_indices()
            .filter(|&n| qop_only(&g.node(n).op))
            .count();
        match Planned::read(&f.model(), &CompileOptions::default()) {
            Err(CompileError::Lower(LowerError::Unsupported(nodes))) => {
                assert!(expected > 0, "{}: {}", f.name, nodes[0]);
                assert_eq!(nodes.len(), expected, "{}", f.name);
                assert!(nodes
                    .iter()
                    .all(|n| n.blocker.starts_with("no kernel for op q")));
                println!(
                    "{}: {} QOperator nodes, e.g. {}",
                    f.name,
                    nodes.len(),
                    nodes[0]
                );
            }
            Err(e) => panic!("{}: unexpected error {e}", f.name),
            Ok(_) => assert_eq!(expected, 0, "{}: compiled with QOperator ops", f.name),
        }
    }
}
