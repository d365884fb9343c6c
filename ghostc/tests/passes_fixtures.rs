//! Every fixture in `fixtures/`: import, run the full pass pipeline (verifier after each pass),
//! compare the interpreter's output on `input.npy` with `expected.npy` (ONNX Runtime), and count
//! what is left. GhostNet v1 fixtures (timm and Huawei style) must end with no BatchNorm, no
//! Concat and no Slice. Run with `--nocapture` to see the fused-op histogram per fixture.

mod fixtures_common;
mod passes_common;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use ghostc::ir::{Graph, Tensor};
use ghostc::onnx::{load_model, ImportOptions};
use ghostc::passes::{optimize, PassOptions};
use passes_common::{assert_close, histogram};

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file() && p.join("meta.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

struct Fixture {
    name: String,
    arch: String,
    graph: Graph,
    input: Tensor,
    /// ONNX Runtime's outputs: `expected.npy`, then `expected_1.npy`, ... for several outputs.
    expected: Vec<Tensor>,
}

fn load(dir: &Path) -> Fixture {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let name = meta["name"].as_str().unwrap().to_string();
    let input_name = meta["input_name"].as_str().unwrap().to_string();
    let input_shape: Vec<usize> = meta["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    // Pin the whole input shape: a static batch-N graph, so one interpreter run covers the batch.
    let opts = ImportOptions {
        shapes: BTreeMap::from([(input_name, input_shape)]),
        ..ImportOptions::default()
    };
    let graph = load_model(&dir.join("model.onnx"), &opts)
        .unwrap_or_else(|e| panic!("{name}: import: {e:#}"));
    let read = |file: &str| {
        let a = ghostc::npy::read_f32(&dir.join(file)).unwrap_or_else(|e| panic!("{name}: {e}"));
        Tensor::from_f32(a.shape, a.data).unwrap()
    };
    Fixture {
        arch: meta["arch"].as_str().unwrap_or("").to_string(),
        input: read("input.npy"),
        expected: (0..)
            .map(fixtures_common::expected_file)
            .take_while(|f| dir.join(f).is_file())
            .map(|f| read(&f))
            .collect(),
        name,
        graph,
    }
}

/// The interpreter's outputs, or why it could not produce them (an error or a panic).
fn try_run(g: &Graph, input: &Tensor) -> Result<Vec<Tensor>, String> {
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        ghostc::interp::run(g, std::slice::from_ref(input))
    }));
    match result {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(format!("interpreter error: {e}")),
        Err(panic) => Err(format!(
            "interpreter panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        )),
    }
}

#[test]
fn every_fixture_optimizes_and_matches_onnx_runtime() {
    let dirs = fixtures();
    assert!(!dirs.is_empty(), "no fixtures found");
    let (mut failures, mut skipped) = (Vec::new(), Vec::new());
    for dir in dirs {
        let f = load(&dir);
        // The oracle must work on the imported graph before it can judge the passes.
        if let Err(e) = try_run(&f.graph, &f.input) {
            println!(
                "SKIP {}: {e} (on the imported, unoptimized graph: not a passes bug)",
                f.name
            );
            skipped.push(f.name.clone());
            continue;
        }
        let before = histogram(&f.graph);
        let mut g = f.graph.clone();
        let reports =
            optimize(&mut g, &PassOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let after = histogram(&g);
        let got = match try_run(&g, &f.input) {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{}: optimized graph: {e}", f.name));
                continue;
            }
        };
        let diff = assert_close(&f.expected, &got, &f.name);
        let nodes: Vec<String> = reports
            .iter()
            .map(|r| format!("{}:{}", r.pass, r.nodes_after))
            .collect();
        println!(
            "{} ({}): {} -> {} nodes, max |y - ort| = {diff:.2e}",
            f.name,
            f.arch,
            f.graph.nodes.node_count(),
            g.nodes.node_count()
        );
        println!("  before: {before:?}");
        println!("  after:  {after:?}");
        println!("  nodes after each pass: {}", nodes.join(" "));
        let v1 = f.arch.contains("ghostnet-v1") || f.arch.contains("huawei");
        if v1 {
            for op in ["batch_norm", "concat", "slice"] {
                if let Some(n) = after.get(op) {
                    failures.push(format!("{}: {n} {op} left", f.name));
                }
            }
        }
    }
    if !skipped.is_empty() {
        println!("SKIPPED (interpreter fails on the imported graph): {skipped:?}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
