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
use ghostc::onnx::proto::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, tensor_shape_proto::Dimension,
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use ghostc::{compile_file, write_crate, CompileOptions, RuntimeDep};
use prost::Message;

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(format!("{op}_{output}")),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

/// Deterministic pseudo-random weights in [-0.5, 0.5).
fn init(name: &str, dims: &[i64], seed: u32) -> TensorProto {
    let n: i64 = dims.iter().product();
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    let float_data = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect();
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data,
        ..Default::default()
    }
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

/// Conv 3->8 3x3 pad 1 + Relu, GlobalAveragePool, Flatten, Gemm 8->4 on a 1x3x8x8 input.
fn tiny_model() -> Vec<u8> {
    let graph = GraphProto {
        name: Some("tiny".into()),
        node: vec![
            node(
                "Conv",
                &["x", "w", "b"],
                "c",
                vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])],
            ),
            node("Relu", &["c"], "r", vec![]),
            node("GlobalAveragePool", &["r"], "p", vec![]),
            node("Flatten", &["p"], "f", vec![int("axis", 1)]),
            node("Gemm", &["f", "fw", "fb"], "y", vec![int("transB", 1)]),
        ],
        initializer: vec![
            init("w", &[8, 3, 3, 3], 1),
            init("b", &[8], 2),
            init("fw", &[4, 8], 3),
            init("fb", &[4], 4),
        ],
        input: vec![io("x", &[1, 3, 8, 8])],
        output: vec![io("y", &[1, 4])],
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
    if std::env::var_os("GHOSTC_BLESS").is_some() {
        std::fs::write(&snap, &compiled.source).unwrap();
        eprintln!("blessed {}", snap.display());
        return;
    }
    let want = std::fs::read_to_string(&snap)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with GHOSTC_BLESS=1)", snap.display()));
    if compiled.source != want {
        let first = compiled
            .source
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b);
        panic!(
            "generated model.rs differs from {} (first differing line {:?}); if intended, rerun with GHOSTC_BLESS=1 and review the diff\n--- generated ---\n{}",
            snap.display(),
            first.map(|i| i + 1),
            compiled.source
        );
    }
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
