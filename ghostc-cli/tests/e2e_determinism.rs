//! Reproducible output and safe writes:
//! - compiling the same model twice (`compile_file`) gives identical source and weights, and
//!   `write_crate` into two folders gives byte-identical crates (every file);
//! - the generated `model.rs` of a tiny hand-built ONNX model (Conv 3->8 3x3 + Relu,
//!   GlobalAveragePool, Flatten, Gemm 8->4; built with the prost types, no fixture needed) is
//!   compared with the snapshot `ghostc-cli/tests/snapshots/tiny_model.rs`. After an intended
//!   emitter change, regenerate it with
//!   `GHOSTC_BLESS=1 cargo test --release -p ghostc-cli --test e2e_determinism` and review the diff;
//! - a failed compile (corrupt or missing model) into an existing crate folder, through the
//!   library and through the CLI, leaves the previous crate byte-identical and no `.ghostc-*`
//!   temporary folder behind.

mod e2e_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ghostc::codegen::emit::WeightsPath;
use ghostc::onnx::proto::tensor_proto::DataType;
use ghostc::onnx::proto::TensorProto;
use ghostc::{compile_file, write_crate, CompileOptions, RuntimeDep};
use ghostc_testkit::onnx::{a_int, a_ints, f32_data, node, tensor_info, Model};
use ghostc_testkit::snapshot::assert_file;
use ghostc_testkit::Rng;

/// Deterministic pseudo-random weights in [-0.5, 0.5).
fn init(name: &str, dims: &[i64], seed: u64) -> TensorProto {
    let n = dims.iter().product::<i64>() as usize;
    f32_data(name, dims, Rng::new(seed).vec(n, -0.5, 0.5))
}

/// Conv 3->8 3x3 pad 1 + Relu, GlobalAveragePool, Flatten, Gemm 8->4 on a 1x3x8x8 input.
fn tiny_model() -> Vec<u8> {
    let conv_attrs = vec![
        a_ints("kernel_shape", &[3, 3]),
        a_ints("pads", &[1, 1, 1, 1]),
    ];
    let mut m = Model::new(17)
        .node(node("Conv", &["x", "w", "b"], &["c"], conv_attrs))
        .node(node("Relu", &["c"], &["r"], vec![]))
        .node(node("GlobalAveragePool", &["r"], &["p"], vec![]))
        .node(node("Flatten", &["p"], &["f"], vec![a_int("axis", 1)]))
        .node(node(
            "Gemm",
            &["f", "fw", "fb"],
            &["y"],
            vec![a_int("transB", 1)],
        ))
        .init(init("w", &[8, 3, 3, 3], 1))
        .init(init("b", &[8], 2))
        .init(init("fw", &[4, 8], 3))
        .init(init("fb", &[4], 4))
        .input("x", &[1, 3, 8, 8])
        .output_info(tensor_info("y", DataType::Float, &[1, 4]));
    m.graph_mut().name = Some("tiny".into());
    m.bytes()
}

fn tiny_file(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.onnx");
    std::fs::write(&p, tiny_model()).unwrap();
    p
}

/// Every file under `dir` (relative path -> bytes).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_no_temp_dirs(parent: &Path) {
    let leftovers: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ghostc-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary folders left behind: {leftovers:?}"
    );
}

#[test]
fn compiling_twice_is_byte_identical() {
    let fx = e2e_common::fixture(e2e_common::SMALL);
    let opts = CompileOptions::default();
    let w = WeightsPath::Relative("model.weights".into());
    let a = compile_file(&fx.model(), &opts, &w).unwrap();
    let b = compile_file(&fx.model(), &opts, &w).unwrap();
    assert!(
        a.source == b.source,
        "model.rs differs between two compiles"
    );
    assert!(
        a.weights == b.weights,
        "model.weights differs between two compiles"
    );

    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("one"), tmp.path().join("deeper/two"));
    write_crate(&fx.model(), &d1, "same", &opts, &RuntimeDep::default()).unwrap();
    write_crate(&fx.model(), &d2, "same", &opts, &RuntimeDep::default()).unwrap();
    let (t1, t2) = (tree(&d1), tree(&d2));
    assert_eq!(t1.keys().collect::<Vec<_>>(), t2.keys().collect::<Vec<_>>());
    for (k, v) in &t1 {
        assert!(
            v == &t2[k],
            "{} differs between two write_crate runs",
            k.display()
        );
    }
    assert_eq!(t1[Path::new("src/model.rs")], a.source.as_bytes());
    assert_eq!(t1[Path::new("src/model.weights")], a.weights);
}

#[test]
fn tiny_model_matches_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_file(tmp.path());
    let compiled = compile_file(
        &model,
        &CompileOptions::default(),
        &WeightsPath::Relative("model.weights".into()),
    )
    .unwrap();
    let snap = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/tiny_model.rs");
    assert_file(
        &snap,
        &compiled.source,
        "cargo test --release -p ghostc-cli --test e2e_determinism",
    );
}

#[test]
fn failed_compile_keeps_previous_crate_and_no_temp_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_file(tmp.path());
    let parent = tmp.path().join("out");
    let dest = parent.join("tiny");
    write_crate(
        &model,
        &dest,
        "tiny",
        &CompileOptions::default(),
        &RuntimeDep::default(),
    )
    .unwrap();
    let before = tree(&dest);
    assert!(before.contains_key(Path::new("src/model.rs")));

    // A truncated and a garbage model, through the library.
    let bytes = tiny_model();
    let truncated = tmp.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = tmp.path().join("garbage.onnx");
    std::fs::write(&garbage, b"\xff\xff\xff\xff not a protobuf \x00\x01").unwrap();
    let missing = tmp.path().join("missing.onnx");
    for bad in [&truncated, &garbage, &missing] {
        let r = write_crate(
            bad,
            &dest,
            "tiny",
            &CompileOptions::default(),
            &RuntimeDep::default(),
        );
        assert!(r.is_err(), "{} compiled", bad.display());
        assert!(
            tree(&dest) == before,
            "a failed compile of {} changed the crate",
            bad.display()
        );
        assert_no_temp_dirs(&parent);
    }
    // And through the CLI: exit 1, message on stderr, crate untouched.
    for bad in [&truncated, &garbage] {
        let err = e2e_common::ghostc_compile(bad, &dest, "tiny", &[])
            .expect_err("corrupt model compiled");
        assert!(
            err.contains("exited with exit status: 1") && err.contains("error:"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            tree(&dest) == before,
            "a failed CLI compile changed the crate"
        );
        assert_no_temp_dirs(&parent);
    }
    // A successful recompile replaces it cleanly.
    e2e_common::ghostc_compile(&model, &dest, "tiny", &[]).unwrap();
    assert!(tree(&dest) == before);
    assert_no_temp_dirs(&parent);
}
