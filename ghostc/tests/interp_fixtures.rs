//! The interpreter against ONNX Runtime goldens: every fixture in `fixtures/manifest.json` is
//! imported, run through `interp::run`, and compared with its `expected.npy` (ORT's output);
//! then again after the full pass pipeline, which exercises the fused ops.
//!
//! The fixtures listed in `fixtures/full/manifest.json` (GhostNet-1.0 at 224x224, generated on
//! demand by `tools/make_fixtures.py --full` and not checked in) are included when present.

use std::path::{Path, PathBuf};

use ghostc::interp;
use ghostc::ir::{Graph, Tensor};
use ghostc::onnx::{load_model, ImportOptions};
use ghostc::passes::{optimize, PassOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifest_dirs(manifest: &Path) -> Vec<PathBuf> {
    let text =
        std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    manifest["fixtures"]
        .as_array()
        .expect("fixtures list")
        .iter()
        .map(|f| root().join(f["path"].as_str().expect("fixture path")))
        .collect()
}

fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs = manifest_dirs(&root().join("fixtures/manifest.json"));
    let full = root().join("fixtures/full/manifest.json");
    if full.exists() {
        dirs.extend(manifest_dirs(&full));
    }
    dirs
}

/// The imported graph (or the import error, which is the importer's business, not ours), input
/// and expected output.
fn load(dir: &Path) -> (Result<Graph, String>, Tensor, Tensor) {
    let graph = load_model(&dir.join("model.onnx"), &ImportOptions::default()).map_err(|e| {
        let msg = format!("{e:#}");
        msg.chars().take(200).collect::<String>()
    });
    let read = |name: &str| {
        let a = ghostc::npy::read_f32(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
        Tensor::from_f32(a.shape, a.data).expect("npy shape matches data")
    };
    (graph, read("input.npy"), read("expected.npy"))
}

/// Largest |actual - expected| relative to max(1, |expected|); fails on shape mismatch.
fn max_error(actual: &Tensor, expected: &Tensor) -> f32 {
    assert_eq!(actual.shape(), expected.shape());
    let (a, e) = (actual.as_f32().unwrap(), expected.as_f32().unwrap());
    a.iter()
        .zip(e)
        .map(|(a, e)| (a - e).abs() / e.abs().max(1.0))
        .fold(0.0, |m, d| if d.is_nan() { f32::NAN } else { m.max(d) })
}

const TOLERANCE: f32 = 1e-4;

/// Runs every fixture; fails on any interpreter error or mismatch. Fixtures the importer (or
/// the pass pipeline) cannot handle yet are reported and skipped, but most must run.
fn check_all(optimized: bool) {
    let (mut failures, mut skipped, mut ran) = (Vec::new(), Vec::new(), 0);
    for dir in fixture_dirs() {
        let (graph, input, expected) = load(&dir);
        let mut graph = match graph {
            Ok(g) => g,
            Err(e) => {
                skipped.push(format!("{}: import failed: {e}", dir.display()));
                continue;
            }
        };
        if optimized {
            if let Err(e) = optimize(&mut graph, &PassOptions::default()) {
                skipped.push(format!("{}: passes failed: {e}", dir.display()));
                continue;
            }
        }
        ran += 1;
        let start = std::time::Instant::now();
        match interp::run(&graph, std::slice::from_ref(&input)) {
            Ok(outputs) => {
                let err = max_error(&outputs[0], &expected);
                eprintln!(
                    "{}: max error {err:.2e} in {:.2?}",
                    dir.display(),
                    start.elapsed()
                );
                if err.is_nan() || err > TOLERANCE {
                    failures.push(format!("{}: max error {err}", dir.display()));
                }
            }
            Err(e) => failures.push(format!(
                "{}: {e} ({:?})",
                dir.display(),
                std::error::Error::source(&e).map(|s| s.to_string())
            )),
        }
    }
    for s in &skipped {
        eprintln!("SKIPPED {s}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 8, "only {ran} fixtures ran:\n{}", skipped.join("\n"));
}

#[test]
fn imported_graphs_match_onnx_runtime() {
    check_all(false);
}

#[test]
fn optimized_graphs_match_onnx_runtime() {
    check_all(true);
}
