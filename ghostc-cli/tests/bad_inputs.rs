//! The bad-input matrix of `shared/design/bad-inputs.md` (GitHub issue #7), one test per case,
//! in order. Each malformed model is built here with the prost types (see
//! `bad_inputs_common`), written to a temporary folder and fed to every entry point:
//! - the library: `ghostc::onnx::load_model` (the typed `ImportError` variant and its fields are
//!   checked, and the message must name the tensor / node / input and expected vs actual) and
//!   `ghostc::compile_file` (the same error, wrapped in `CompileError::Import`);
//! - the build.rs API: `ghostc::Builder::compile` returns that error and writes nothing;
//! - the CLI: `ghostc inspect --dot FILE` and `ghostc compile --out DIR` exit with code 1 and
//!   print exactly one line, `error: ...` with the same message (so no panic text), create
//!   neither FILE nor DIR, and leave an existing crate folder byte-identical.
//!
//! Case 31 (issue 17) adds models that import but that code generation cannot lower (the
//! same checks on `CompileError::Lower` through `compile_file`, the Builder and `ghostc
//! compile`), and case 32 the memory budgets (`CompileError::Budget`) of
//! `ghostc::budget::Budget::check`, `Builder::flash_budget`/`ram_budget` and `ghostc compile
//! --flash-budget`/`--ram-budget`.
//!
//! The proc-macro's compile-fail tests (`ghost-macros/tests/compile_fail.rs`) run a subset of
//! the same models. `cargo test -p ghostc-cli --release --test bad_inputs -- --nocapture
//! --test-threads=1` prints every message; `docs/bad-inputs.md` tabulates them.
//!
//! Memory: a counting allocator measures the peak live bytes of the calling thread, so cases
//! 4, 9, 10 and 24 assert that a small file declaring millions of nodes or huge tensors fails
//! (or imports) without allocating more than a small multiple of its size.

mod bad_inputs_common;
mod e2e_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bad_inputs_common::*;
use ghostc::codegen::emit::WeightsPath;
use ghostc::ir::{Op, Tensor, ValueDef};
use ghostc::onnx::proto::tensor_proto::DataType;
use ghostc::onnx::proto::{FunctionProto, NodeProto, OperatorSetIdProto, TensorProto};
use ghostc::onnx::{load_model, ImportError, ImportOptions, Limits, NodeError, TensorError};
use ghostc::{compile_file, CompileError, CompileOptions};

// ---------------------------------------------------------------------------------------------
// Peak memory of the current thread

/// Forwards to the system allocator and tracks, per thread, the live bytes and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // try_with: allocations during thread teardown are simply not counted.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping touches only const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the peak bytes it had live at once (on this thread,
/// above what was live before).
fn peak_bytes<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, (peak - base).max(0) as usize)
}

#[test]
fn the_allocation_counter_sees_allocations() {
    let (v, peak) = peak_bytes(|| vec![1u8; 3 << 20]);
    assert_eq!(v.len(), 3 << 20);
    assert!(peak >= 3 << 20, "peak {peak}");
}

// ---------------------------------------------------------------------------------------------
// Entry points

fn limits_of(settings: &[(&str, &str)]) -> Limits {
    let mut limits = Limits::default();
    for (name, value) in settings {
        limits.set(name, value).expect("valid limit setting");
    }
    limits
}

fn import_opts(settings: &[(&str, &str)]) -> ImportOptions {
    ImportOptions {
        limits: limits_of(settings),
        ..ImportOptions::default()
    }
}

fn compile_opts(settings: &[(&str, &str)]) -> CompileOptions {
    CompileOptions {
        import: import_opts(settings),
        ..CompileOptions::default()
    }
}

fn weights() -> WeightsPath {
    WeightsPath::Relative("model.weights".into())
}

/// Writes `bytes` as `dir/name` and returns the path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs the ghostc binary.
fn ghostc<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("spawn ghostc")
}

fn limit_args(settings: &[(&str, &str)]) -> Vec<String> {
    settings
        .iter()
        .flat_map(|(n, v)| ["--limit".to_string(), format!("{n}={v}")])
        .collect()
}

/// Exit code 1, nothing on stdout, and stderr exactly `expected` plus a newline: one line,
/// so no panic message or backtrace.
fn assert_cli_error(o: &Output, expected: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: exit status {}, stderr {stderr:?}",
        o.status
    );
    assert_eq!(stderr, format!("{expected}\n"), "{what}: stderr");
    assert!(
        o.stdout.is_empty(),
        "{what}: stdout {:?}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Every file under `dir` with its bytes.
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

/// Names in `dir` that a half-finished write would leave (ghostc's temporaries start with
/// `.ghostc-`, tempfile's with `.tmp`).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ghostc-") || n.starts_with(".tmp"))
        .collect()
}

/// The CLI on a model every entry point must reject with `msg`: `inspect --dot` and `compile
/// --out` into a new folder and over an existing crate.
fn cli_rejects(model: &Path, settings: &[(&str, &str)], msg: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let limits = limit_args(settings);

    let dot = tmp.path().join("graph.dot");
    let o = ghostc(
        [
            "inspect".as_ref(),
            model.as_os_str(),
            "--dot".as_ref(),
            dot.as_os_str(),
        ]
        .into_iter()
        .chain(limits.iter().map(|s| s.as_ref())),
    );
    assert_cli_error(
        &o,
        &format!("error: cannot import {}: {msg}", model.display()),
        "ghostc inspect",
    );
    assert!(!dot.exists(), "inspect wrote {}", dot.display());

    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
    cli_compile_rejects(model, &limits, msg);
}

/// `ghostc compile MODEL --out DIR FLAGS...` into a new folder and over an existing crate: exit
/// 1, `error: {msg}` alone on stderr, neither folder changed, no temporaries left.
fn cli_compile_rejects<S: AsRef<std::ffi::OsStr>>(model: &Path, flags: &[S], msg: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let args = |out: &Path| {
        let mut a: Vec<std::ffi::OsString> =
            vec!["compile".into(), model.into(), "--out".into(), out.into()];
        a.extend(flags.iter().map(|f| f.as_ref().to_owned()));
        a
    };
    let fresh = tmp.path().join("fresh");
    let o = ghostc(args(&fresh));
    assert_cli_error(&o, &format!("error: {msg}"), "ghostc compile (new folder)");
    assert!(!fresh.exists(), "compile created {}", fresh.display());

    let existing = tmp.path().join("existing");
    std::fs::create_dir_all(existing.join("src")).unwrap();
    std::fs::write(
        existing.join("Cargo.toml"),
        "[package]\nname = \"existing\"\n",
    )
    .unwrap();
    std::fs::write(existing.join("src/lib.rs"), "// the previous crate\n").unwrap();
    let before = tree(&existing);
    let o = ghostc(args(&existing));
    assert_cli_error(
        &o,
        &format!("error: {msg}"),
        "ghostc compile (existing crate)",
    );
    assert!(
        tree(&existing) == before,
        "a failed compile changed the crate"
    );
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

/// The build.rs API on a model it must reject with `msg`: Err, nothing written.
fn builder_rejects(model: &Path, settings: &[(&str, &str)], msg: &str) {
    let out = tempfile::tempdir().unwrap();
    let r = ghostc::Builder::new(model)
        .limits(limits_of(settings))
        .out_dir(out.path())
        .compile();
    match r {
        Err(CompileError::Import(e)) => assert_eq!(e.to_string(), msg, "Builder"),
        Err(other) => panic!("Builder: expected an import error, got {other}"),
        Ok(p) => panic!("Builder compiled {}", p.display()),
    }
    assert!(tree(out.path()).is_empty(), "Builder wrote files");
    assert!(leftovers(out.path()).is_empty());
}

/// Every entry point rejects `model` (with these limit settings) with the same import error,
/// whose message contains every needle. Returns the library's error for variant checks.
fn rejects(model: &Path, settings: &[(&str, &str)], needles: &[&str]) -> ImportError {
    let err = match load_model(model, &import_opts(settings)) {
        Err(e) => e,
        Ok(g) => panic!(
            "{} imported ({} nodes); expected an error containing {needles:?}",
            model.display(),
            g.nodes.node_count()
        ),
    };
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} does not contain {n:?}");
    }
    assert!(!msg.contains('\n'), "multi-line message {msg:?}");
    match compile_file(model, &compile_opts(settings), &weights()) {
        Err(CompileError::Import(e)) => assert_eq!(e.to_string(), msg, "compile_file"),
        Err(other) => panic!("compile_file: expected an import error, got {other}"),
        Ok(_) => panic!("compile_file compiled {}", model.display()),
    }
    builder_rejects(model, settings, &msg);
    cli_rejects(model, settings, &msg);
    println!("  error: {msg}");
    err
}

/// [`rejects`] for a model given as bytes, written to a fresh folder as `model.onnx`.
fn rejects_bytes(bytes: &[u8], settings: &[(&str, &str)], needles: &[&str]) -> ImportError {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "model.onnx", bytes);
    rejects(&path, settings, needles)
}

/// A model every entry point accepts: the library imports and compiles it, the Builder writes
/// `model.rs`, `ghostc inspect` exits 0 and `ghostc compile` writes a crate. Returns the
/// generated `model.rs`.
fn accepts(model: &Path, settings: &[(&str, &str)]) -> String {
    load_model(model, &import_opts(settings)).unwrap_or_else(|e| panic!("load_model: {e}"));
    let compiled = compile_file(model, &compile_opts(settings), &weights())
        .unwrap_or_else(|e| panic!("compile_file: {e}"));
    let out = tempfile::tempdir().unwrap();
    let rs = ghostc::Builder::new(model)
        .limits(limits_of(settings))
        .out_dir(out.path())
        .compile()
        .unwrap_or_else(|e| panic!("Builder: {e}"));
    assert!(rs.is_file());
    let limits = limit_args(settings);
    let o = ghostc(
        ["inspect".as_ref(), model.as_os_str()]
            .into_iter()
            .chain(limits.iter().map(|s| s.as_ref())),
    );
    assert!(
        o.status.success(),
        "ghostc inspect: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = out.path().join("crate");
    let o = ghostc(
        [
            "compile".as_ref(),
            model.as_os_str(),
            "--out".as_ref(),
            dir.as_os_str(),
        ]
        .into_iter()
        .chain(limits.iter().map(|s| s.as_ref())),
    );
    assert!(
        o.status.success(),
        "ghostc compile: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let source = std::fs::read_to_string(dir.join("src/model.rs")).unwrap();
    assert_eq!(
        source, compiled.source,
        "CLI and library generate different code"
    );
    source
}

/// `model.onnx` holding `m` in a fresh folder.
fn model_file(m: &Model) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "model.onnx", &m.bytes());
    (dir, path)
}

fn tensor_err(e: &ImportError) -> &TensorError {
    match e {
        ImportError::Tensor { error, .. } => error,
        other => panic!("expected ImportError::Tensor, got {other:?}"),
    }
}

fn node_err(e: &ImportError) -> (&str, &str, &NodeError) {
    match e {
        ImportError::Node {
            node,
            op_type,
            error,
        } => (node, op_type, error),
        other => panic!("expected ImportError::Node, got {other:?}"),
    }
}

fn limit_name(e: &ImportError) -> &'static str {
    match e {
        ImportError::Limit { limit, .. } => limit,
        other => panic!("expected ImportError::Limit, got {other:?}"),
    }
}

fn is_invalid_protobuf(e: &ImportError) -> bool {
    matches!(e, ImportError::InvalidProtobuf(_))
}

// ---------------------------------------------------------------------------------------------
// Limits themselves

#[test]
fn limits_are_set_by_name() {
    let mut l = Limits::default();
    for name in Limits::NAMES {
        l.set(name, "7").unwrap();
    }
    assert_eq!(
        l,
        Limits {
            max_file_bytes: 7,
            max_nodes: 7,
            max_messages: 7,
            max_nesting_depth: 7,
            max_tensor_elements: 7,
            max_fold_elements: 7,
            max_name_len: 7,
            max_external_bytes: 7,
        }
    );
    l.apply("max_nodes=1_000, max_name_len=64").unwrap();
    assert_eq!((l.max_nodes, l.max_name_len), (1000, 64));
    assert_eq!(
        l.set("max_nodez", "1").unwrap_err().to_string(),
        "unknown limit 'max_nodez' (expected one of: max_file_bytes, max_nodes, max_messages, \
         max_nesting_depth, max_tensor_elements, max_fold_elements, max_name_len, max_external_bytes)"
    );
    assert_eq!(
        l.set("max_nodes", "-1").unwrap_err().to_string(),
        "limit max_nodes: '-1' is not a non-negative integer"
    );
    assert_eq!(
        l.apply("max_nodes").unwrap_err().to_string(),
        "expected NAME=N (e.g. max_nodes=1000), found 'max_nodes'"
    );
    // Names never become identifiers, so the default name limit allows 1 MB names (case 25).
    assert!(Limits::default().max_name_len >= 1 << 20);
    // The CLI rejects a bad --limit with the same message, before reading the model.
    let o = ghostc(["inspect", "no-such.onnx", "--limit", "max_nodez=1"]);
    assert_cli_error(
        &o,
        "error: unknown limit 'max_nodez' (expected one of: max_file_bytes, max_nodes, \
         max_messages, max_nesting_depth, max_tensor_elements, max_fold_elements, max_name_len, \
         max_external_bytes)",
        "ghostc inspect --limit max_nodez=1",
    );
}

#[test]
fn every_limit_is_settable_and_named_in_its_error() {
    let (_d, tiny_path) = model_file(&tiny());
    let size = std::fs::metadata(&tiny_path).unwrap().len();
    let set = |name: &'static str, value: &'static str| [(name, value)];
    let cases: [(&str, &str, String); 6] = [
        (
            "max_file_bytes",
            "100",
            format!("model file size in bytes: {size} exceeds the limit max_file_bytes = 100"),
        ),
        (
            "max_nodes",
            "1",
            "nodes in the model (pre-scan): 2 exceeds the limit max_nodes = 1".into(),
        ),
        (
            "max_messages",
            "3",
            "protobuf messages inside graphs and functions: 4 exceeds the limit max_messages = 3"
                .into(),
        ),
        (
            "max_nesting_depth",
            "2",
            "message nesting depth: 3 exceeds the limit max_nesting_depth = 2".into(),
        ),
        (
            "max_tensor_elements",
            "10",
            "initializer 'w': 15 elements exceed the limit max_tensor_elements = 10".into(),
        ),
        (
            "max_name_len",
            "2",
            "node name 'conv': 4 exceeds the limit max_name_len = 2".into(),
        ),
    ];
    for (name, value, text) in cases {
        let hint = format!("(set with --limit {name}=N / Limits::{name})");
        let e = rejects(&tiny_path, &set(name, value), &[&text, &hint]);
        if name == "max_tensor_elements" {
            assert!(
                matches!(tensor_err(&e), TensorError::TooLarge { .. }),
                "{e:?}"
            );
        } else {
            assert_eq!(limit_name(&e), name);
        }
    }
    // max_external_bytes: 16 bytes of external data against a limit of 8.
    let dir = tempfile::tempdir().unwrap();
    weights_file(dir.path(), "w.bin");
    let path = external_model(dir.path(), Some("w.bin"), &[]);
    let e = rejects(
        &path,
        &set("max_external_bytes", "8"),
        &["initializer 'W': external data bytes read: 16 exceeds the limit max_external_bytes = 8 \
           (set with --limit max_external_bytes=N / Limits::max_external_bytes)"],
    );
    assert_eq!(limit_name(&e), "max_external_bytes");
    // max_fold_elements is a budget, not an error: over it a constant subgraph stays a node,
    // which `ghostc inspect --before --ir` shows.
    let m = model()
        .input("x", &[1, 4])
        .init(i64_tensor("s", &[1, 4]))
        .node(node("cos", "ConstantOfShape", &["s"], &["k"]))
        .node(node("add", "Add", &["x", "k"], &["y"]))
        .output("y");
    let (_d, path) = model_file(&m);
    let ir = |settings: &[(&str, &str)]| {
        let o = ghostc(
            [
                "inspect".as_ref(),
                path.as_os_str(),
                "--before".as_ref(),
                "--ir".as_ref(),
            ]
            .into_iter()
            .chain(limit_args(settings).iter().map(|s| s.as_ref()))
            .collect::<Vec<&std::ffi::OsStr>>(),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert!(!ir(&[]).contains("constant_of_shape"), "{}", ir(&[]));
    let unfolded = ir(&set("max_fold_elements", "3"));
    assert!(unfolded.contains("constant_of_shape"), "{unfolded}");
}

// ---------------------------------------------------------------------------------------------
// 1-5: decoding and the model header

#[test]
fn case_01_empty_file_has_no_graph() {
    let e = rejects_bytes(&[], &[], &["model has no graph"]);
    assert!(matches!(e, ImportError::NoGraph), "{e:?}");
    assert_eq!(e.to_string(), "model has no graph");
}

#[test]
fn case_02_truncated_random_and_png_are_not_protobuf() {
    let full = tiny().bytes();
    for cut in [full.len() / 2, full.len() - 3] {
        let e = rejects_bytes(&full[..cut], &[], &["not a valid ONNX protobuf: "]);
        assert!(is_invalid_protobuf(&e), "{e:?}");
    }
    for bytes in [random_bytes(4096), png()] {
        let e = rejects_bytes(&bytes, &[], &["not a valid ONNX protobuf: "]);
        assert!(is_invalid_protobuf(&e), "{e:?}");
        assert!(e.to_string().starts_with("not a valid ONNX protobuf: "));
    }
}

#[test]
fn case_03_deep_nesting_is_a_limit_error_not_a_stack_overflow() {
    // Subgraphs 200 deep (If -> then_branch -> If ...): the iterative pre-scan stops at the
    // nesting limit before prost recurses.
    let nested = nested_subgraphs(200);
    let e = rejects_bytes(
        &nested,
        &[],
        &["message nesting depth: 65 exceeds the limit max_nesting_depth = 64"],
    );
    assert_eq!(limit_name(&e), "max_nesting_depth");
    // With the limit raised past the nesting, prost's own recursion limit still holds.
    let e = rejects_bytes(
        &nested,
        &[("max_nesting_depth", "100000")],
        &[
            "not a valid ONNX protobuf: failed to decode Protobuf message: GraphProto.node: \
             AttributeProto.g: NodeProto.attribute: ... ",
            " more fields ...: NodeProto.attribute: GraphProto.node: ModelProto.graph: recursion limit reached",
        ],
    );
    assert!(is_invalid_protobuf(&e), "{e:?}");
    assert!(e.to_string().len() < 300, "{e}");
    // Unknown-field nesting: 1000 nested groups in an unknown field of the model.
    let e = rejects_bytes(
        &nested_unknown_groups(1000),
        &[],
        &["group nesting depth: 65 exceeds the limit max_nesting_depth = 64"],
    );
    assert_eq!(limit_name(&e), "max_nesting_depth");
    // Types nested 150 deep (not followed by the pre-scan): prost's recursion limit, on a
    // thread with only 1 MiB of stack.
    let bytes = nested_types(150);
    let e = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || ghostc::onnx::import_bytes(&bytes, None, &ImportOptions::default()))
        .unwrap()
        .join()
        .expect("no stack overflow")
        .unwrap_err();
    assert!(
        is_invalid_protobuf(&e) && e.to_string().contains("recursion limit"),
        "{e}"
    );
    rejects_bytes(
        &nested_types(150),
        &[],
        &["more fields ...: ValueInfoProto.r#type: GraphProto.input: ModelProto.graph: recursion limit reached"],
    );
}

#[test]
fn case_04_millions_of_empty_nodes_stop_at_the_node_limit() {
    let bytes = empty_nodes(2_000_000); // 4 MB on the wire, ~0.5 GB once decoded by prost
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "model.onnx", &bytes);
    let start = Instant::now();
    let (r, peak) = peak_bytes(|| load_model(&path, &ImportOptions::default()));
    let elapsed = start.elapsed();
    let e = r.unwrap_err();
    assert_eq!(limit_name(&e), "max_nodes");
    println!(
        "  {} byte file: error after {:.0} ms, peak {} bytes allocated",
        bytes.len(),
        elapsed.as_secs_f64() * 1e3,
        peak
    );
    assert!(
        peak < 2 * bytes.len() + (1 << 20),
        "peak {peak} bytes for a {} byte file",
        bytes.len()
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let e = rejects(
        &path,
        &[],
        &[
            "nodes in the model (pre-scan): 100001 exceeds the limit max_nodes = 100000 \
             (set with --limit max_nodes=N / Limits::max_nodes)",
        ],
    );
    assert_eq!(limit_name(&e), "max_nodes");
    // Raising the node limit leaves the message limit in the way.
    let e = rejects(
        &path,
        &[("max_nodes", "10000000")],
        &["protobuf messages inside graphs and functions: 250001 exceeds the limit max_messages = 250000"],
    );
    assert_eq!(limit_name(&e), "max_messages");
    // A lowered limit applies to real nodes too.
    let (_dir, chain) = model_file(&relu_chain(5));
    let e = rejects(
        &chain,
        &[("max_nodes", "4")],
        &["exceeds the limit max_nodes = 4"],
    );
    assert_eq!(limit_name(&e), "max_nodes");
}

#[test]
fn case_05_header_errors_and_file_size() {
    let mut m = tiny();
    m.proto.ir_version = Some(0);
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["ir_version 0 is invalid (expected 1 to 14)"],
    );
    assert!(matches!(e, ImportError::Model(_)), "{e:?}");
    m.proto.ir_version = None;
    rejects_bytes(
        &m.bytes(),
        &[],
        &["ir_version is missing (expected 1 to 14)"],
    );
    m.proto.ir_version = Some(99);
    rejects_bytes(
        &m.bytes(),
        &[],
        &["ir_version 99 is newer than the newest supported (14)"],
    );
    m.proto.ir_version = Some(8);
    m.proto.opset_import = vec![OperatorSetIdProto {
        domain: Some("com.example".into()),
        version: Some(1),
    }];
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["the model has no opset import for the default domain (ai.onnx); it imports: [com.example 1]"],
    );
    assert!(matches!(e, ImportError::Model(_)), "{e:?}");
    m.proto.opset_import = vec![OperatorSetIdProto {
        domain: Some("ai.onnx".into()),
        version: Some(9),
    }];
    rejects_bytes(
        &m.bytes(),
        &[],
        &["default-domain opset 9 is out of the supported range 11..=28"],
    );
    // Over the file size limit (lowered here; the default is 1 GiB).
    let bytes = tiny().bytes();
    let e = rejects_bytes(
        &bytes,
        &[("max_file_bytes", "100")],
        &[&format!(
            "model file size in bytes: {} exceeds the limit max_file_bytes = 100 \
             (set with --limit max_file_bytes=N / Limits::max_file_bytes)",
            bytes.len()
        )],
    );
    assert_eq!(limit_name(&e), "max_file_bytes");
}

// ---------------------------------------------------------------------------------------------
// 6-12: tensors

#[test]
fn case_06_raw_data_shorter_than_the_dims() {
    let e = rejects_bytes(
        &truncated_raw_data().bytes(),
        &[],
        &["initializer 'W': raw_data 12 bytes, expected 440"],
    );
    assert_eq!(
        tensor_err(&e),
        &TensorError::RawTooShort {
            actual: 12,
            expected: 440
        }
    );
    assert_eq!(
        e.to_string(),
        "initializer 'W': raw_data 12 bytes, expected 440"
    );
}

#[test]
fn case_07_raw_data_longer_or_not_a_multiple() {
    for len in [441, 444] {
        let m = init_only(raw_tensor("W", DataType::Float, &[2, 5, 11], vec![0; len]));
        let e = rejects_bytes(
            &m.bytes(),
            &[],
            &[&format!(
                "initializer 'W': raw_data {len} bytes, expected exactly 440 bytes"
            )],
        );
        assert_eq!(
            tensor_err(&e),
            &TensorError::RawWrongLength {
                actual: len,
                expected: 440
            }
        );
    }
    let m = init_only(raw_tensor("idx", DataType::Int64, &[3], vec![0; 26]));
    rejects_bytes(
        &m.bytes(),
        &[],
        &["initializer 'idx': raw_data 26 bytes, expected exactly 24 bytes"],
    );
}

#[test]
fn case_08_negative_dims_and_zero_size_tensors_with_data() {
    let m = init_only(raw_tensor("W", DataType::Float, &[2, -3], vec![]));
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["initializer 'W': negative dim -3 at axis 1"],
    );
    assert_eq!(
        tensor_err(&e),
        &TensorError::NegativeDim { axis: 1, dim: -3 }
    );
    let m = init_only(raw_tensor("W", DataType::Float, &[0, 4], vec![0; 4]));
    rejects_bytes(
        &m.bytes(),
        &[],
        &["initializer 'W': raw_data 4 bytes, expected exactly 0 bytes"],
    );
    let m = init_only(TensorProto {
        float_data: vec![1.0],
        raw_data: None,
        ..raw_tensor("W", DataType::Float, &[0], vec![])
    });
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["initializer 'W': float_data has 1 values, expected 0"],
    );
    assert!(matches!(
        tensor_err(&e),
        TensorError::TypedCount {
            actual: 1,
            expected: 0,
            ..
        }
    ));
    // A graph input with a negative dim.
    let m = model()
        .input("x", &[1, -3])
        .node(node("r", "Relu", &["x"], &["y"]))
        .output("y");
    let e = rejects_bytes(&m.bytes(), &[], &["input 'x': dim 1 is negative (-3)"]);
    assert!(matches!(e, ImportError::Input { .. }), "{e:?}");
}

#[test]
fn case_09_dim_products_that_overflow() {
    for (dims, shown) in [
        (vec![i64::MAX, 4], "9223372036854775807, 4"),
        (vec![1 << 32, 1 << 32], "4294967296, 4294967296"),
    ] {
        let bytes = init_only(raw_tensor("W", DataType::Float, &dims, vec![0; 4])).bytes();
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "model.onnx", &bytes);
        let (r, peak) = peak_bytes(|| load_model(&path, &ImportOptions::default()));
        assert!(r.is_err());
        assert!(
            peak < 64 << 10,
            "peak {peak} bytes for a {} byte file",
            bytes.len()
        );
        let e = rejects(
            &path,
            &[],
            &[&format!("initializer 'W': shape [{shown}] overflows")],
        );
        assert!(
            matches!(tensor_err(&e), TensorError::ShapeOverflow { .. }),
            "{e:?}"
        );
    }
    // A graph input declaring an overflowing shape.
    let m = model()
        .input("x", &[1 << 32, 1 << 32])
        .node(node("r", "Relu", &["x"], &["y"]))
        .output("y");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["input 'x': shape [4294967296, 4294967296] overflows"],
    );
    assert!(matches!(e, ImportError::Input { .. }), "{e:?}");
}

#[test]
fn case_10_huge_dims_with_a_tiny_payload() {
    // 2^27 floats (512 MiB) declared, 4 bytes given: the length check comes before any
    // allocation of the tensor.
    let bytes = init_only(raw_tensor(
        "W",
        DataType::Float,
        &[1 << 14, 1 << 13],
        vec![0; 4],
    ))
    .bytes();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "model.onnx", &bytes);
    let (r, peak) = peak_bytes(|| load_model(&path, &ImportOptions::default()));
    assert!(r.is_err());
    println!(
        "  {} byte file declaring 512 MiB: peak {peak} bytes allocated",
        bytes.len()
    );
    assert!(peak < 64 << 10, "peak {peak} bytes");
    let e = rejects(
        &path,
        &[],
        &["initializer 'W': raw_data 4 bytes, expected 536870912"],
    );
    assert_eq!(
        tensor_err(&e),
        &TensorError::RawTooShort {
            actual: 4,
            expected: 536_870_912
        }
    );
    // Past max_tensor_elements the dims alone are rejected.
    let m = init_only(raw_tensor("W", DataType::Float, &[1 << 40], vec![0; 4]));
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["initializer 'W': 1099511627776 elements exceed the limit max_tensor_elements = 268435456 \
           (set with --limit max_tensor_elements=N / Limits::max_tensor_elements)"],
    );
    assert!(
        matches!(tensor_err(&e), TensorError::TooLarge { .. }),
        "{e:?}"
    );
    // The same through external data: the file's length is checked before reading.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "w.bin", &[0; 16]);
    let m = init_only(external_tensor(
        "W",
        Some("w.bin"),
        &[],
        &[1 << 14, 1 << 13],
    ));
    let path = write(dir.path(), "model.onnx", &m.bytes());
    let (r, peak) = peak_bytes(|| load_model(&path, &ImportOptions::default()));
    assert!(r.is_err());
    assert!(peak < 64 << 10, "peak {peak} bytes");
    rejects(
        &path,
        &[],
        &["initializer 'W': external data 'w.bin': offset 0 + length 536870912 is past the end of the file (16 bytes)"],
    );
}

#[test]
fn case_11_unsupported_data_types() {
    for (code, name) in [
        (DataType::Undefined as i32, "UNDEFINED"),
        (DataType::String as i32, "STRING"),
        (DataType::Complex64 as i32, "COMPLEX64"),
        (1234, "unknown"),
    ] {
        let m = init_only(TensorProto {
            data_type: Some(code),
            ..raw_tensor("W", DataType::Float, &[1], vec![0; 8])
        });
        let e = rejects_bytes(
            &m.bytes(),
            &[],
            &[&format!(
                "initializer 'W': unsupported data_type {code} ({name})"
            )],
        );
        assert!(
            matches!(tensor_err(&e), TensorError::UnsupportedDType { code: c, .. } if *c == code),
            "{e:?}"
        );
    }
    // A graph input of an unsupported type.
    let m = model()
        .input_info(tensor_info("x", DataType::String, &[1]))
        .node(node("r", "Relu", &["x"], &["y"]))
        .output("y");
    rejects_bytes(
        &m.bytes(),
        &[],
        &["input 'x': unsupported data_type 8 (STRING)"],
    );
}

#[test]
fn case_12_two_data_fields_and_wrong_value_counts() {
    let m = init_only(TensorProto {
        float_data: vec![1.0],
        ..raw_tensor("W", DataType::Float, &[1], vec![0; 4])
    });
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["initializer 'W': two data fields set: raw_data and float_data"],
    );
    assert_eq!(
        tensor_err(&e),
        &TensorError::TwoDataFields {
            first: "raw_data",
            second: "float_data"
        }
    );
    let mut t = f32_tensor("W", &[3]);
    t.float_data.pop();
    let e = rejects_bytes(
        &init_only(t).bytes(),
        &[],
        &["initializer 'W': float_data has 2 values, expected 3"],
    );
    assert_eq!(
        tensor_err(&e),
        &TensorError::TypedCount {
            field: "float_data",
            actual: 2,
            expected: 3
        }
    );
}

// ---------------------------------------------------------------------------------------------
// 13-16: external data

/// 16 bytes of f32 (0, 1, 2, 3): the right size for a [2, 2] float tensor.
fn weights_file(dir: &Path, name: &str) -> PathBuf {
    let bytes: Vec<u8> = (0..4).flat_map(|i| (i as f32).to_le_bytes()).collect();
    write(dir, name, &bytes)
}

/// `model.onnx` in `dir` whose initializer `W` [2, 2] is external data at `location`.
fn external_model(dir: &Path, location: Option<&str>, extra: &[(&str, &str)]) -> PathBuf {
    let m = init_only(external_tensor("W", location, extra, &[2, 2]));
    write(dir, "model.onnx", &m.bytes())
}

fn external_err(e: &ImportError) -> (&str, &str) {
    match e {
        ImportError::ExternalData {
            location, detail, ..
        } => (location, detail),
        other => panic!("expected ImportError::ExternalData, got {other:?}"),
    }
}

#[test]
fn case_13_external_data_cannot_escape_the_model_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("model");
    std::fs::create_dir(&model_dir).unwrap();
    std::fs::create_dir(model_dir.join("a")).unwrap();
    // A real file of the right size outside the folder: reading it would succeed, so these
    // must be refused by looking at the text alone.
    let secret = weights_file(tmp.path(), "secret.bin");
    let absolute = secret.display().to_string();
    for (location, why) in [
        ("../../etc/passwd", "'..' component"),
        ("/etc/passwd", "absolute path"),
        (absolute.as_str(), "absolute path"),
        ("../secret.bin", "'..' component"),
        ("a/../../secret.bin", "'..' component"),
        ("a/../../b", "'..' component"),
        ("", "empty or NUL in location"),
        (".", "'.' component"),
        ("./a/..", "'.' component"),
    ] {
        let path = external_model(&model_dir, Some(location), &[]);
        let e = rejects(
            &path,
            &[],
            &[&format!(
                "initializer 'W': external data '{location}': escapes the model directory ({why})"
            )],
        );
        assert_eq!(external_err(&e).0, location);
    }
    // Control: the same file inside the folder is read.
    weights_file(&model_dir, "inside.bin");
    let path = external_model(&model_dir, Some("inside.bin"), &[]);
    accepts_import(&path);
}

/// The library imports the model (for controls that cannot be compiled: no input).
fn accepts_import(path: &Path) {
    load_model(path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"));
}

#[cfg(unix)]
#[test]
fn case_14_external_symlinks_and_hard_links_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = weights_file(outside.path(), "w.bin");
    std::os::unix::fs::symlink(&target, dir.path().join("link.bin")).unwrap();
    let path = external_model(dir.path(), Some("link.bin"), &[]);
    let link = dir.path().join("link.bin").display().to_string();
    let e = rejects(
        &path,
        &[],
        &[&format!(
            "initializer 'W': external data 'link.bin': {link} is a symlink; external data must be a regular file inside the model directory"
        )],
    );
    external_err(&e);
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linkdir")).unwrap();
    let path = external_model(dir.path(), Some("linkdir/w.bin"), &[]);
    rejects(
        &path,
        &[],
        &[&format!(
            "external data 'linkdir/w.bin': {} is a symlink",
            dir.path().join("linkdir").display()
        )],
    );
    std::fs::hard_link(&target, dir.path().join("hard.bin")).unwrap();
    let path = external_model(dir.path(), Some("hard.bin"), &[]);
    rejects(
        &path,
        &[],
        &[&format!(
            "external data 'hard.bin': {} has 2 hard links; external data must have exactly one",
            dir.path().join("hard.bin").display()
        )],
    );
}

#[test]
fn case_15_external_offset_and_length_errors() {
    let dir = tempfile::tempdir().unwrap();
    weights_file(dir.path(), "w.bin"); // 16 bytes; W needs 16
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("offset", "-5")],
            "offset '-5' is not a non-negative integer",
        ),
        (
            &[("offset", "abc")],
            "offset 'abc' is not a non-negative integer",
        ),
        (
            &[("length", "x1")],
            "length 'x1' is not a non-negative integer",
        ),
        (
            &[("offset", "99999999999999999999999")],
            "offset '99999999999999999999999' is not a non-negative integer",
        ),
        (
            &[("offset", "4")],
            "offset 4 + length 16 is past the end of the file (16 bytes)",
        ),
        (
            &[("offset", "18446744073709551615")],
            "offset 18446744073709551615 + length 16 overflows",
        ),
        (
            &[("length", "8")],
            "length 8 does not match the tensor's 16 bytes",
        ),
        (
            &[("offset", "0"), ("offset", "4")],
            "key 'offset' is given twice",
        ),
    ];
    for (extra, needle) in cases {
        let path = external_model(dir.path(), Some("w.bin"), extra);
        let e = rejects(
            &path,
            &[],
            &[&format!("initializer 'W': external data 'w.bin': {needle}")],
        );
        external_err(&e);
    }
    // Control: offset 0 and the exact length work.
    let path = external_model(
        dir.path(),
        Some("w.bin"),
        &[("offset", "0"), ("length", "16")],
    );
    accepts_import(&path);
}

#[test]
fn case_16_missing_external_file_or_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = external_model(dir.path(), Some("nope.bin"), &[]);
    let resolved = dir.path().join("nope.bin");
    let e = rejects(
        &path,
        &[],
        &[&format!(
            "initializer 'W': external data 'nope.bin': file not found: {}",
            resolved.display()
        )],
    );
    assert_eq!(external_err(&e).0, "nope.bin");
    let path = external_model(dir.path(), None, &[]);
    rejects(
        &path,
        &[],
        &["initializer 'W': external data '': data_location is EXTERNAL but no 'location' is given"],
    );
}

// ---------------------------------------------------------------------------------------------
// 17-21: graph structure

#[test]
fn case_17_values_produced_nowhere() {
    let e = rejects_bytes(
        &dangling_input().bytes(),
        &[],
        &["node 'add0' (Add): input 'ghost' is produced by no node, initializer or graph input"],
    );
    match &e {
        ImportError::UndefinedValue {
            node,
            op_type,
            value,
        } => assert_eq!((&**node, &**op_type, &**value), ("add0", "Add", "ghost")),
        other => panic!("{other:?}"),
    }
    let m = model()
        .input("x", &[1, 4])
        .node(node("r", "Relu", &["x"], &["y"]))
        .output("z");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["graph output 'z': is produced by no node, initializer or input"],
    );
    assert!(
        matches!(&e, ImportError::Output { output, .. } if output == "z"),
        "{e:?}"
    );
}

#[test]
fn case_18_cycles_are_errors_and_out_of_order_graphs_work() {
    let e = rejects_bytes(
        &cycle().bytes(),
        &[],
        &["graph has a cycle through node 'n_a' (Add)"],
    );
    assert!(
        matches!(&e, ImportError::Cycle { node, .. } if node == "n_a"),
        "{e:?}"
    );
    // A 100000-node cycle on a thread with 256 KiB of stack: the algorithms are iterative.
    let n = 100_000;
    let mut m = model().input("x", &[1, 4]);
    for i in 0..n {
        let from = format!("v{}", (i + n - 1) % n);
        m = m.node(node(
            &format!("r{i}"),
            "Relu",
            &[&from],
            &[&format!("v{i}")],
        ));
    }
    let bytes = m.output("v0").bytes();
    let e = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || ghostc::onnx::import_bytes(&bytes, None, &ImportOptions::default()))
        .unwrap()
        .join()
        .expect("no stack overflow")
        .unwrap_err();
    assert!(matches!(e, ImportError::Cycle { .. }), "{e}");
    // Nodes out of file order but acyclic: legal, and the same code as in order.
    let (_d1, in_order) = model_file(&tiny());
    let (_d2, reversed) = model_file(&tiny_out_of_order());
    let a = accepts(&in_order, &[]);
    let b = accepts(&reversed, &[]);
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n"); // drop the sha256 header
    assert_eq!(body(&a), body(&b));
}

#[test]
fn case_19_values_defined_twice() {
    let m = model()
        .input("x", &[1, 4])
        .node(node("relu", "Relu", &["x"], &["y"]))
        .node(node("sig", "Sigmoid", &["x"], &["y"]))
        .output("y");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["value 'y' is defined twice: output of node 'relu' and output of node 'sig'"],
    );
    assert!(
        matches!(&e, ImportError::DuplicateValue { value, .. } if value == "y"),
        "{e:?}"
    );
    let m = model()
        .input("x", &[1, 4])
        .init(f32_tensor("w", &[1, 4]))
        .node(node("r", "Relu", &["x"], &["w"]))
        .output("w");
    rejects_bytes(
        &m.bytes(),
        &[],
        &["value 'w' is defined twice: an initializer or graph input and output of node 'r'"],
    );
    let m = model()
        .input("x", &[1, 4])
        .init(f32_tensor("w", &[1, 4]))
        .init(f32_tensor("w", &[1, 4]))
        .node(node("a", "Add", &["x", "w"], &["y"]))
        .output("y");
    rejects_bytes(
        &m.bytes(),
        &[],
        &["value 'w' is defined twice: an initializer and another initializer"],
    );
}

#[test]
fn case_20_arity_and_attribute_errors_name_node_and_op() {
    let one_node = |n| model().input("x", &[2, 4]).node(n).output("y");
    let e = rejects_bytes(
        &one_node(node("a", "Add", &["x"], &["y"])).bytes(),
        &[],
        &["node 'a' (Add): expected 2 inputs, got 1"],
    );
    assert!(
        matches!(
            node_err(&e),
            ("a", "Add", NodeError::InputCount { actual: 1, .. })
        ),
        "{e:?}"
    );
    rejects_bytes(
        &one_node(node("r", "Relu", &["x", "x"], &["y"])).bytes(),
        &[],
        &["node 'r' (Relu): expected 1 inputs, got 2"],
    );
    let e = rejects_bytes(
        &one_node(node("c", "Concat", &["x", "x"], &["y"])).bytes(),
        &[],
        &["node 'c' (Concat): required attribute 'axis' is missing"],
    );
    assert!(
        matches!(node_err(&e).2, NodeError::MissingAttribute { attr } if attr == "axis"),
        "{e:?}"
    );
    let e = rejects_bytes(
        &one_node(with_attrs(
            node("l", "LeakyRelu", &["x"], &["y"]),
            vec![a_int("alpha", 1)],
        ))
        .bytes(),
        &[],
        &["node 'l' (LeakyRelu): attribute 'alpha' has type INT, expected FLOAT"],
    );
    assert!(
        matches!(node_err(&e).2, NodeError::AttributeType { .. }),
        "{e:?}"
    );
}

#[test]
fn case_21_every_unsupported_op_in_one_error() {
    let e = rejects_bytes(
        &unsupported_ops().bytes(),
        &[],
        &["3 unsupported ONNX nodes: 'first' (Frobnicate, domain ai.onnx opset 17), \
           'second' (Custom, domain com.example opset 1), 'third' (Einsum, domain ai.onnx opset 17)"],
    );
    match &e {
        ImportError::Unsupported(nodes) => {
            let names: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
            assert_eq!(names, ["first", "second", "third"]);
        }
        other => panic!("{other:?}"),
    }
    // A domain imported at an opset ghostc does not know is listed the same way.
    let m = model()
        .opset("ai.onnx.ml", 99)
        .input("x", &[1, 4])
        .node(NodeProto {
            domain: Some("ai.onnx.ml".into()),
            ..node("scaler", "Scaler", &["x"], &["y"])
        })
        .output("y");
    rejects_bytes(
        &m.bytes(),
        &[],
        &["1 unsupported ONNX node: 'scaler' (Scaler, domain ai.onnx.ml opset 99)"],
    );
}

// ---------------------------------------------------------------------------------------------
// 22-24: functions, semantic errors, constant folding

fn function(name: &str, nodes: Vec<NodeProto>) -> FunctionProto {
    FunctionProto {
        name: Some(name.into()),
        domain: Some("local".into()),
        input: vec!["x".into()],
        output: vec!["y".into()],
        node: nodes,
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        ..Default::default()
    }
}

fn call(name: &str, function: &str, input: &str, output: &str) -> NodeProto {
    NodeProto {
        domain: Some("local".into()),
        ..node(name, function, &[input], &[output])
    }
}

#[test]
fn case_22_recursive_and_deep_functions() {
    let m = model()
        .opset("local", 1)
        .input("x", &[1, 4])
        .node(call("top", "A", "x", "y"))
        .function(function("A", vec![call("a", "B", "x", "y")]))
        .function(function("B", vec![call("b", "A", "x", "y")]))
        .output("y");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["function 'A': recursive call chain A -> B -> A"],
    );
    assert!(
        matches!(&e, ImportError::Function { function, .. } if function == "A"),
        "{e:?}"
    );
    // A finite chain F0 -> F1 -> ... -> F100 -> Relu passes the nesting limit.
    let mut m = model()
        .opset("local", 1)
        .input("x", &[1, 4])
        .node(call("top", "F0", "x", "y"))
        .output("y");
    for i in 0..100 {
        m = m.function(function(
            &format!("F{i}"),
            vec![call("c", &format!("F{}", i + 1), "x", "y")],
        ));
    }
    m = m.function(function("F100", vec![node("r", "Relu", &["x"], &["y"])]));
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["function call depth at 'F64': 65 exceeds the limit max_nesting_depth = 64"],
    );
    assert_eq!(limit_name(&e), "max_nesting_depth");
    // Non-recursive functions are inlined and compile: tiny() with its Relu in a function.
    let mut m = tiny().opset("local", 1);
    let g = m.proto.graph.as_mut().unwrap();
    g.node[1] = call("relu", "Act", "c", "y");
    let m = m.function(function("Act", vec![node("inner", "Relu", &["x"], &["y"])]));
    let (_d, path) = model_file(&m);
    let (_d2, plain) = model_file(&tiny());
    let a = accepts(&path, &[]);
    let b = accepts(&plain, &[]);
    let code = |s: &str| {
        s.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        code(&a),
        code(&b),
        "inlined function compiles to the same code"
    );
}

#[test]
fn case_23_semantic_errors_name_the_node() {
    // Reshape to a shape whose element count overflows.
    let m = model()
        .input("x", &[1, 4])
        .init(i64_tensor("shape", &[i64::MAX, 2]))
        .node(node("reshape", "Reshape", &["x", "shape"], &["y"]))
        .output("y");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["node 'reshape' (Reshape): shape: [9223372036854775807x2] is too large"],
    );
    assert!(matches!(node_err(&e).2, NodeError::Infer(_)), "{e:?}");
    // Conv weight of rank 3.
    let m = model()
        .input("x", &[1, 2, 8, 8])
        .init(f32_tensor("w", &[4, 2, 3]))
        .node(node("conv", "Conv", &["x", "w"], &["y"]))
        .output("y");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["node 'conv' (Conv): weight 'w' has rank 3, expected 4"],
    );
    assert!(
        matches!(node_err(&e).2, NodeError::Rank { actual: 3, .. }),
        "{e:?}"
    );
    // int64 fed to a float op.
    let m = model()
        .input_info(tensor_info("x", DataType::Int64, &[4]))
        .node(node("r", "Relu", &["x"], &["y"]))
        .output("y");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["node 'r' (Relu): input 0 ('x'): expected dtype a float type, got i64"],
    );
    assert!(
        matches!(node_err(&e).2, NodeError::BadInput { value, .. } if value == "x"),
        "{e:?}"
    );
}

#[test]
fn case_24_constant_folding_is_budgeted() {
    // ConstantOfShape / Expand to 2^30 elements: refused from the shape alone.
    let m = model()
        .init(i64_tensor("s", &[1 << 15, 1 << 15]))
        .node(node("cos", "ConstantOfShape", &["s"], &["big"]))
        .output("big");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["node 'cos' (ConstantOfShape): output 'big' has 1073741824 elements, over the limit \
           max_tensor_elements = 268435456 (set with --limit max_tensor_elements=N / Limits::max_tensor_elements)"],
    );
    assert!(
        matches!(node_err(&e).2, NodeError::OutputTooLarge { .. }),
        "{e:?}"
    );
    let m = model()
        .input("x", &[1, 4])
        .init(i64_tensor("s", &[1 << 16, 1 << 16, 4]))
        .node(node("expand", "Expand", &["x", "s"], &["y"]))
        .output("y");
    rejects_bytes(
        &m.bytes(),
        &[],
        &["node 'expand' (Expand): output 'y' has 17179869184 elements, over the limit max_tensor_elements"],
    );
    // Tile is not an op ghostc imports: it is reported, not evaluated.
    let m = model()
        .input("x", &[1, 4])
        .init(i64_tensor("r", &[1 << 20, 1 << 20]))
        .node(node("tile", "Tile", &["x", "r"], &["y"]))
        .output("y");
    rejects_bytes(
        &m.bytes(),
        &[],
        &["1 unsupported ONNX node: 'tile' (Tile, domain ai.onnx opset 17)"],
    );
    // Under the tensor limit but over the fold budget (2^27 > 2^20 elements): left unfolded,
    // so importing a 100-byte file allocates nothing like the 512 MiB the value would take.
    let m = model()
        .init(i64_tensor("s", &[1 << 14, 1 << 13]))
        .node(node("cos", "ConstantOfShape", &["s"], &["big"]))
        .output("big");
    let (_d, path) = model_file(&m);
    let (g, peak) = peak_bytes(|| load_model(&path, &ImportOptions::default()));
    let g = g.unwrap();
    println!("  unfolded 2^27-element ConstantOfShape: import peak {peak} bytes");
    assert!(peak < 256 << 10, "peak {peak} bytes");
    let out = g.value(g.outputs[0]);
    assert!(
        !matches!(out.def, ValueDef::Const(_)),
        "a 2^27-element constant was folded"
    );
    let ops: Vec<&Op> = g.nodes.node_indices().map(|n| &g.node(n).op).collect();
    assert!(matches!(ops[..], [Op::ConstantOfShape { .. }]), "{ops:?}");
    // And a budget lowered with --limit max_fold_elements applies: [64, 64] is left as a node,
    // which code generation (one input, one output) then refuses by name.
    let small = model()
        .init(i64_tensor("s", &[64, 64]))
        .node(node("cos", "ConstantOfShape", &["s"], &["y"]))
        .output("y");
    let (_d, path) = model_file(&small);
    let g = load_model(&path, &import_opts(&[("max_fold_elements", "100")])).unwrap();
    assert_eq!(g.nodes.node_count(), 1);
    let g = load_model(&path, &ImportOptions::default()).unwrap();
    assert_eq!(g.nodes.node_count(), 0, "folded under the default budget");
}

// ---------------------------------------------------------------------------------------------
// 25-28: names, determinism, inference-time inputs

/// Control characters or bidi controls, raw, in `source`.
fn raw_controls(source: &str) -> Vec<char> {
    source
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect()
}

#[test]
fn case_25_hostile_and_huge_names_compile() {
    // e2e_hostile_names.rs proves hostile names change nothing but escaped text; here they go
    // through the CLI and the Builder, with a 1 MiB input name, an empty node name and names
    // that collide once sanitized.
    let long = format!("\"*/\n\u{202e}{}", "a".repeat(1 << 20));
    let mut m = model()
        .input(&long, &[1, 3, 4, 4])
        .init(f32_tensor("r#type", &[5, 3, 1, 1]))
        .init(f32_tensor("r_type", &[5]))
        .node(node("", "Conv", &[&long, "r#type", "r_type"], &["0c\u{0}"]))
        .node(node("fn", "Relu", &["0c\u{0}"], &["self"]));
    m = m.output("self");
    let (_d, path) = model_file(&m);
    assert!(std::fs::metadata(&path).unwrap().len() > 2 << 20);
    let source = accepts(&path, &[]);
    syn::parse_file(&source).expect("generated code parses");
    assert_eq!(raw_controls(&source), Vec::<char>::new());
    let escaped = format!("\\\"*/\\n\\u{{202e}}{}", "a".repeat(1 << 20));
    assert!(
        source.contains(&escaped),
        "the 1 MiB name is not in the code, escaped"
    );
    // Identifiers are positional: apart from comments and name literals, the same code as
    // with plain names.
    let (_d2, plain) = model_file(&tiny());
    let plain_src = accepts(&plain, &[]);
    let code = |s: &str| {
        s.lines()
            .filter(|l| {
                let t = l.trim_start();
                // Name constants (a long literal wraps onto its own lines).
                !t.starts_with("//")
                    && !t.contains("_NAME: &'static str")
                    && !t.contains("_NAMES: [&'static str")
                    && !t.starts_with('"')
                    && !t.starts_with("pub const INPUT_NAME")
                    && !t.starts_with("pub const INPUT0_NAME")
                    && t != "];"
                    && !t.is_empty()
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (a, b) = (code(&source), code(&plain_src));
    let extra: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    assert_eq!(
        a.len(),
        b.len(),
        "lines only with the long names: {extra:.200?}"
    );
    // The name limit still exists, is named, and shows the name truncated and escaped.
    let e = rejects(
        &path,
        &[("max_name_len", "4096")],
        &[
            "value name '\\\"*/\\n\\u{202e}aaa",
            "...': 1048583 exceeds the limit max_name_len = 4096",
        ],
    );
    assert_eq!(limit_name(&e), "max_name_len");
}

#[test]
fn case_26_same_model_same_bytes_and_failures_keep_the_previous_crate() {
    // e2e_determinism.rs covers two write_crate runs and the snapshot; here the CLI.
    let tmp = tempfile::tempdir().unwrap();
    let model = write(tmp.path(), "tiny.onnx", &tiny().bytes());
    let (one, two) = (tmp.path().join("one/same"), tmp.path().join("two/same"));
    for dir in [&one, &two] {
        let o = ghostc([
            "compile".as_ref(),
            model.as_os_str(),
            "--out".as_ref(),
            dir.as_os_str(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let first = tree(&one);
    assert!(first.contains_key(Path::new("src/model.rs")));
    assert!(first == tree(&two), "two compiles of the same model differ");
    // A failing compile into the same folder leaves it byte-identical.
    let bytes = tiny().bytes();
    let bad = write(tmp.path(), "bad.onnx", &bytes[..bytes.len() / 2]);
    let o = ghostc([
        "compile".as_ref(),
        bad.as_os_str(),
        "--out".as_ref(),
        one.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with("error: not a valid ONNX protobuf: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
    println!(
        "  error: {}",
        stderr.trim_end().trim_start_matches("error: ")
    );
    assert!(tree(&one) == first, "a failed compile changed the crate");
    assert!(leftovers(&tmp.path().join("one")).is_empty());
    // ghostc itself compiles on one thread. The generated runner's thread count does not
    // change a bit of the output (the e2e harness binary, `--threads 1` vs `--threads 2`).
    let h = e2e_common::harness();
    let input = e2e_common::fixture(e2e_common::SMALL).dir.join("input.npy");
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let y = tmp.path().join(format!("y{threads}.npy"));
        let (ok, out) = e2e_common::run_bin(
            &h.runner,
            &[
                "--threads",
                threads,
                input.to_str().unwrap(),
                y.to_str().unwrap(),
            ],
        );
        assert!(ok, "runner --threads {threads}: {out}");
        outputs.push(std::fs::read(&y).unwrap());
    }
    assert!(
        outputs[0] == outputs[1],
        "--threads 1 and --threads 2 outputs differ"
    );
}

#[test]
fn case_27_wrong_input_length_at_inference() {
    // The generated model in a real release binary: wrong input / output / scratch lengths
    // are Err(Length) naming the argument, never a panic (the harness of e2e_errors.rs).
    let h = e2e_common::harness();
    let (ok, out) = e2e_common::run_bin(&h.harness, &["errors"]);
    println!("{out}");
    assert!(ok && !out.contains("FAIL"), "{out}");
    for (arg, variant, rule) in [
        ("input", "ExactLength", "exactly"),
        ("output", "ExactLength", "exactly"),
        ("scratch", "Length", "at least"),
    ] {
        for needle in [
            format!("Err({variant} {{ arg: \"{arg}\", expected: "),
            format!("argument `{arg}` has 0 elements, expected {rule} "),
        ] {
            assert!(out.contains(&needle), "{needle:?} not in\n{out}");
        }
    }
    // The reference interpreter through the CLI: an input of the wrong shape is an error
    // naming the input and both dims.
    let tmp = tempfile::tempdir().unwrap();
    let model = write(tmp.path(), "tiny.onnx", &tiny().bytes());
    let x = tmp.path().join("x.npy");
    ghostc::npy::write_f32(&x, &[1, 4, 4, 4], &[0.5; 64]).unwrap();
    let y = tmp.path().join("y.npy");
    let o = ghostc([
        "run".as_ref(),
        model.as_os_str(),
        "--input".as_ref(),
        x.as_os_str(),
        "--output".as_ref(),
        y.as_os_str(),
    ]);
    assert_cli_error(
        &o,
        &format!(
            "error: cannot import {}: input 'x': dim 1 is 3 in the model but pinned to 4",
            model.display()
        ),
        "ghostc run",
    );
    assert!(!y.exists());
    // And the interpreter API itself.
    let g = load_model(&model, &ImportOptions::default()).unwrap();
    let e = ghostc::interp::run(
        &g,
        &[Tensor::from_f32(vec![1, 4, 4, 4], vec![0.5; 64]).unwrap()],
    )
    .unwrap_err();
    println!("  interpreter: {e}");
    let text = e.to_string();
    assert!(
        text.contains("[1, 3, 4, 4]") || text.contains("1x3x4x4"),
        "{text}"
    );
}

#[test]
fn case_28_nan_and_inf_propagate() {
    // The interpreter: a NaN in pixel 0 reaches every channel of pixel 0 through the 1x1 Conv
    // and Relu (f32::max(NaN, 0) would have dropped it).
    let tmp = tempfile::tempdir().unwrap();
    let model = write(tmp.path(), "tiny.onnx", &tiny().bytes());
    let g = load_model(&model, &ImportOptions::default()).unwrap();
    let mut x = vec![0.25f32; 48];
    x[0] = f32::NAN;
    x[17] = f32::INFINITY;
    let y = ghostc::interp::run(&g, &[Tensor::from_f32(vec![1, 3, 4, 4], x).unwrap()])
        .expect("no panic")[0]
        .to_f32_vec();
    for c in 0..5 {
        assert!(y[c * 16].is_nan(), "channel {c} pixel 0: {}", y[c * 16]);
    }
    // The generated code in a release binary agrees with the interpreter (e2e_errors.rs runs
    // more placements).
    let h = e2e_common::harness();
    let fx = e2e_common::fixture(e2e_common::SMALL);
    let base = ghostc::npy::read_f32(&fx.dir.join("input.npy")).unwrap();
    let graph = load_model(&fx.model(), &ImportOptions::default()).unwrap();
    let mut data = base.data.clone();
    let n = data.len();
    data[n / 2] = f32::NAN;
    data[n / 3] = f32::INFINITY;
    data[n - 1] = f32::NEG_INFINITY;
    let (xin, yout) = (tmp.path().join("x.npy"), tmp.path().join("y.npy"));
    ghostc::npy::write_f32(&xin, &base.shape, &data).unwrap();
    let (ok, out) =
        e2e_common::run_bin(&h.runner, &[xin.to_str().unwrap(), yout.to_str().unwrap()]);
    assert!(ok, "the generated runner failed:\n{out}");
    let got = ghostc::npy::read_f32(&yout).unwrap().data;
    let want = ghostc::interp::run(
        &graph,
        &[Tensor::from_f32(base.shape.clone(), data).unwrap()],
    )
    .unwrap()[0]
        .to_f32_vec();
    let d = ghostc::compare::compare(&got, &want);
    println!("  generated vs interpreter with NaN/+Inf/-Inf inputs: {d}");
    assert!(d.ok(), "{d}");
    assert!(
        got.iter().any(|v| v.is_nan()),
        "NaN did not propagate: {got:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 29: quantization parameters (issue 14)

fn u8_tensor(name: &str, dims: &[i64], values: &[u8]) -> TensorProto {
    raw_tensor(name, DataType::Uint8, dims, values.to_vec())
}

fn i8_tensor(name: &str, dims: &[i64], values: &[i8]) -> TensorProto {
    raw_tensor(
        name,
        DataType::Int8,
        dims,
        values.iter().map(|&v| v as u8).collect(),
    )
}

fn f32_values(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    ghostc_testkit::onnx::f32_data(name, dims, values.to_vec())
}

/// `x [1, 2, 4, 4]` -> QuantizeLinear(s, zp) -> DequantizeLinear(s, zp) -> y.
fn qdq(scale: f32, zp: u8) -> Model {
    model()
        .input("x", &[1, 2, 4, 4])
        .init(f32_values("s", &[], &[scale]))
        .init(u8_tensor("zp", &[], &[zp]))
        .node(node("q", "QuantizeLinear", &["x", "s", "zp"], &["xq"]))
        .node(node("dq", "DequantizeLinear", &["xq", "s", "zp"], &["y"]))
        .output("y")
}

/// A per-channel weight `w [4, 2, 1, 1]` dequantized along `axis` with these scales and zero
/// points, feeding a Conv.
fn dq_weight(axis: i64, scales: &[f32], zps: Option<(&[i64], &[i8])>) -> Model {
    let mut inputs = vec!["w", "ws"];
    let mut m = model()
        .input("x", &[1, 2, 4, 4])
        .init(i8_tensor("w", &[4, 2, 1, 1], &[1, -2, 3, -4, 5, -6, 7, -8]))
        .init(f32_values("ws", &[scales.len() as i64], scales));
    if let Some((dims, values)) = zps {
        m = m.init(i8_tensor("wzp", dims, values));
        inputs.push("wzp");
    }
    m.node(with_attrs(
        node("dq_w", "DequantizeLinear", &inputs, &["wf"]),
        vec![a_int("axis", axis)],
    ))
    .node(node("conv", "Conv", &["x", "wf"], &["y"]))
    .output("y")
}

fn invalid_node(e: &ImportError) -> (&str, &str) {
    let (node, op, err) = node_err(e);
    assert!(matches!(err, NodeError::Invalid(_)), "{e:?}");
    (node, op)
}

#[test]
fn case_29_quantization_parameters_name_node_and_value() {
    // Scale 0, NaN, negative (several problems in one message).
    let e = rejects_bytes(
        &qdq(0.0, 128).bytes(),
        &[],
        &["node 'q' (QuantizeLinear): output scale 's' must be positive and finite: [0] = 0"],
    );
    assert_eq!(invalid_node(&e), ("q", "QuantizeLinear"));
    rejects_bytes(
        &qdq(f32::NAN, 128).bytes(),
        &[],
        &["node 'q' (QuantizeLinear): output scale 's' must be positive and finite: [0] = NaN"],
    );
    let e = rejects_bytes(
        &dq_weight(0, &[0.1, f32::NAN, -0.5, 0.0], None).bytes(),
        &[],
        &[
            "node 'dq_w' (DequantizeLinear): input scale 'ws' must be positive and finite: \
           [1] = NaN, [2] = -0.5, [3] = 0",
        ],
    );
    assert_eq!(invalid_node(&e), ("dq_w", "DequantizeLinear"));
    // Zero points out of range: a u8 zero point of 300 (int32_data) fails at the tensor; an
    // i32 (bias) zero point must be 0; a zero point of another type than the data.
    let zp300 = TensorProto {
        name: Some("zp".into()),
        data_type: Some(DataType::Uint8 as i32),
        int32_data: vec![300],
        ..Default::default()
    };
    let mut m = qdq(0.1, 0);
    m.graph_mut().initializer[1] = zp300;
    rejects_bytes(&m.bytes(), &[], &["initializer 'zp'", "300", "u8"]);
    let bias = model()
        .input("x", &[1, 4])
        .init(raw_tensor(
            "b",
            DataType::Int32,
            &[4],
            [1i32, 2, 3, 4]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ))
        .init(f32_values("bs", &[], &[0.01]))
        .init(raw_tensor(
            "bzp",
            DataType::Int32,
            &[],
            7i32.to_le_bytes().to_vec(),
        ))
        .node(node(
            "dq_b",
            "DequantizeLinear",
            &["b", "bs", "bzp"],
            &["bf"],
        ))
        .node(node("add", "Add", &["x", "bf"], &["y"]))
        .output("y");
    rejects_bytes(
        &bias.bytes(),
        &[],
        &["node 'dq_b' (DequantizeLinear): input zero point 'bzp' of an i32 tensor must be 0, got [7]"],
    );
    let mismatched = model()
        .input("x", &[1, 2, 4, 4])
        .init(i8_tensor("w", &[2], &[1, 2]))
        .init(f32_values("ws", &[], &[0.1]))
        .init(u8_tensor("wzp", &[], &[128]))
        .node(node(
            "dq_w",
            "DequantizeLinear",
            &["w", "ws", "wzp"],
            &["wf"],
        ))
        .node(node("add", "Add", &["x", "wf"], &["y"]))
        .output("y");
    rejects_bytes(
        &mismatched.bytes(),
        &[],
        &["node 'dq_w' (DequantizeLinear): input zero point 'wzp' has type u8, but the quantized tensor 'w' is i8"],
    );
    // A DQ of a computed value that no QuantizeLinear (or quantized op) wrote.
    let lone = model()
        .input("x", &[1, 2, 4, 4])
        .init(f32_values("s", &[], &[0.1]))
        .node(with_attrs(
            node("cast", "Cast", &["x"], &["xu8"]),
            vec![a_int("to", DataType::Uint8 as i64)],
        ))
        .node(node("dq", "DequantizeLinear", &["xu8", "s"], &["y"]))
        .output("y");
    let e = rejects_bytes(
        &lone.bytes(),
        &[],
        &["node 'dq' (DequantizeLinear): input 'xu8' is computed by node 'cast' (cast), not by a QuantizeLinear or a quantized op"],
    );
    assert_eq!(invalid_node(&e), ("dq", "DequantizeLinear"));
    // ... while a lone DQ of a constant weight is legal: it imports, and code generation
    // dequantizes the weight at compile time.
    let weight = dq_weight(0, &[0.1, 0.2, 0.3, 0.4], Some((&[4], &[0, 1, 0, -1])));
    let (_dir, path) = model_file(&weight);
    let g = load_model(&path, &ImportOptions::default()).expect("a lone DQ of a weight imports");
    assert!(g
        .nodes
        .node_indices()
        .any(|n| matches!(g.node(n).op, Op::Dequantize(_))));
    compile_file(&path, &CompileOptions::default(), &weights())
        .expect("a lone DQ of a weight compiles");
    // Mixed per-axis and per-tensor parameters; a scale that is not 1-D.
    rejects_bytes(
        &dq_weight(0, &[0.1; 4], Some((&[], &[0]))).bytes(),
        &[],
        &["node 'dq_w' (DequantizeLinear): input scale 'ws' has shape [4] but zero point 'wzp' has shape [] (mixed-axis parameters)"],
    );
    let mut m = dq_weight(0, &[0.1; 4], None);
    m.graph_mut().initializer[1] = f32_values("ws", &[4, 1], &[0.1; 4]);
    rejects_bytes(
        &m.bytes(),
        &[],
        &["node 'dq_w' (DequantizeLinear): input scale 'ws' has shape [4x1]; per-axis scales must be 1-D"],
    );
    // Scale length not matching the axis dimension (axis 1 has 2 channels).
    rejects_bytes(
        &dq_weight(1, &[0.1; 4], None).bytes(),
        &[],
        &["node 'dq_w' (DequantizeLinear): input scale 'ws' has 4 values, but axis 1 of 'w' [4x2x1x1] has 2"],
    );
}

// ---------------------------------------------------------------------------------------------
// 30: several outputs

#[test]
fn case_30_multi_output_models() {
    // One name listed twice: ONNX Runtime returns the tensor twice, but ghostc's generated Model
    // and runner address outputs by name.
    let m = model()
        .input("x", &[1, 4])
        .node(node("r", "Relu", &["x"], &["y"]))
        .node(node("s", "Sigmoid", &["x"], &["z"]))
        .output("y")
        .output("z")
        .output("y");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &["graph output 'y': is listed twice among the graph outputs (positions 0 and 2); give each output its own name"],
    );
    assert!(
        matches!(&e, ImportError::Output { output, .. } if output == "y"),
        "{e:?}"
    );
    // The second of two outputs is produced by nothing.
    let m = model()
        .input("x", &[1, 4])
        .node(node("r", "Relu", &["x"], &["y"]))
        .output("y")
        .output("ghost");
    rejects_bytes(
        &m.bytes(),
        &[],
        &["graph output 'ghost': is produced by no node, initializer or input"],
    );
    // Accepted by every entry point (e2e_multi_output.rs runs them and checks the values).
    for (name, m) in accepted_multi_output(&[1, 4]) {
        let (_dir, path) = model_file(&m);
        println!("  {name}: compiles");
        accepts(&path, &[]);
    }
}

// ---------------------------------------------------------------------------------------------
// 31: attribute errors of the pooling, Pad, Resize and Split importers

/// `x` (1x2x4x4) -> one node `n` (named by the caller) -> `y`, with the initializers given.
fn one_op(opset: i64, n: NodeProto, inits: Vec<TensorProto>) -> Model {
    let mut m = Model::new(opset).input("x", &[1, 2, 4, 4]);
    for t in inits {
        m = m.init(t);
    }
    let outputs = n.output.clone();
    m = m.node(n);
    for o in &outputs {
        m = m.output(o);
    }
    m
}

fn pool_node(op: &str, attrs: Vec<ghostc::onnx::proto::AttributeProto>) -> Model {
    let mut all = vec![a_ints("kernel_shape", &[2, 2])];
    all.retain(|a| !attrs.iter().any(|b| b.name == a.name));
    all.extend(attrs);
    one_op(17, with_attrs(node("p", op, &["x"], &["y"]), all), vec![])
}

/// Pad (opset 17, pads as input `pads`).
fn pad_node(pads: &[i64], attrs: Vec<ghostc::onnx::proto::AttributeProto>) -> Model {
    one_op(
        17,
        with_attrs(node("pad", "Pad", &["x", "pads"], &["y"]), attrs),
        vec![i64_tensor("pads", pads)],
    )
}

/// Resize (opset 17) doubling H and W by scales.
fn resize_node(attrs: Vec<ghostc::onnx::proto::AttributeProto>) -> Model {
    one_op(
        17,
        with_attrs(node("rs", "Resize", &["x", "", "sc"], &["y"]), attrs),
        vec![f32_values("sc", &[4], &[1.0, 1.0, 2.0, 2.0])],
    )
}

/// Split of `x` on `axis` into `y` and `z`, with split sizes as input `s` when given.
fn split_node(
    opset: i64,
    axis: i64,
    sizes: Option<&[i64]>,
    extra: Vec<ghostc::onnx::proto::AttributeProto>,
) -> Model {
    let (inputs, inits): (&[&str], _) = match sizes {
        Some(s) => (&["x", "s"], vec![i64_tensor("s", s)]),
        None => (&["x"], vec![]),
    };
    let mut attrs = vec![a_int("axis", axis)];
    attrs.extend(extra);
    one_op(
        opset,
        with_attrs(node("sp", "Split", inputs, &["y", "z"]), attrs),
        inits,
    )
}

/// `node`'s error is a [`NodeError::BadAttribute`] on `attr`.
fn bad_attribute(e: &ImportError, node: &str, op: &str, attr: &str) {
    match node_err(e) {
        (n, o, NodeError::BadAttribute { attr: a, .. }) if n == node && o == op && a == attr => {}
        _ => panic!("expected a BadAttribute on {node} ({op}) '{attr}', got {e:?}"),
    }
}

/// A model that imports but that code generation cannot lower: `compile_file` and the Builder
/// fail with `CompileError::Lower` and the text `msg` (several lines: one per node), `ghostc
/// compile` exits 1 with `error: {msg}` and writes nothing.
fn lowering_rejects(m: &Model, msg: &str) {
    let (_d, path) = model_file(m);
    load_model(&path, &ImportOptions::default()).expect("imports");
    match compile_file(&path, &CompileOptions::default(), &weights()) {
        Err(CompileError::Lower(e)) => assert_eq!(e.to_string(), msg, "compile_file"),
        Err(other) => panic!("compile_file: expected a lowering error, got {other}"),
        Ok(_) => panic!("compile_file compiled {}", path.display()),
    }
    let out = tempfile::tempdir().unwrap();
    match ghostc::Builder::new(&path).out_dir(out.path()).compile() {
        Err(CompileError::Lower(e)) => assert_eq!(e.to_string(), msg, "Builder"),
        other => panic!("Builder: expected a lowering error, got {other:?}"),
    }
    assert!(tree(out.path()).is_empty(), "Builder wrote files");
    cli_compile_rejects(&path, &[] as &[&str], msg);
    println!("  error: {}", msg.replace('\n', " "));
}

#[test]
fn case_31_attribute_errors_of_pool_pad_resize_split() {
    // Pooling: flags that are not 0/1, dilations of the wrong length, a zero kernel dim, an
    // unknown auto_pad.
    let cases: [(Model, &str, &str, &str); 6] = [
        (
            pool_ceil_mode(),
            "MaxPool",
            "ceil_mode",
            "node 'p' (MaxPool): attribute 'ceil_mode': 2 is not 0 or 1",
        ),
        (
            pool_node("AveragePool", vec![a_int("count_include_pad", -1)]),
            "AveragePool",
            "count_include_pad",
            "node 'p' (AveragePool): attribute 'count_include_pad': -1 is not 0 or 1",
        ),
        (
            pool_node("MaxPool", vec![a_ints("dilations", &[1, 1, 1])]),
            "MaxPool",
            "dilations",
            "node 'p' (MaxPool): attribute 'dilations': [1, 1, 1] is not two positive values",
        ),
        (
            pool_node("MaxPool", vec![a_ints("kernel_shape", &[2, 0])]),
            "MaxPool",
            "kernel_shape",
            "node 'p' (MaxPool): attribute 'kernel_shape': [2, 0] is not two positive values",
        ),
        (
            pool_node("AveragePool", vec![a_ints("strides", &[0, 1])]),
            "AveragePool",
            "strides",
            "node 'p' (AveragePool): attribute 'strides': [0, 1] is not two positive values",
        ),
        (
            pool_node("MaxPool", vec![a_str("auto_pad", "SAME")]),
            "MaxPool",
            "auto_pad",
            "node 'p' (MaxPool): attribute 'auto_pad': unknown value 'SAME' (expected one of: \
             NOTSET, VALID, SAME_UPPER, SAME_LOWER)",
        ),
    ];
    for (m, op, attr, text) in cases {
        let e = rejects_bytes(&m.bytes(), &[], &[text]);
        bad_attribute(&e, "p", op, attr);
    }
    // Two bad attributes on one node: the importer stops at the node's first error (node
    // errors are not collected; unsupported nodes are, below).
    let m = pool_node(
        "MaxPool",
        vec![a_int("ceil_mode", 2), a_ints("dilations", &[0, 1])],
    );
    rejects_bytes(
        &m.bytes(),
        &[],
        &["node 'p' (MaxPool): attribute 'dilations': [0, 1] is not two positive values"],
    );

    // Pad: an unknown mode; pads of the wrong length; negative pads cropping past the input.
    let e = rejects_bytes(
        &pad_node(&[0, 0, 1, 1, 0, 0, 1, 1], vec![a_str("mode", "mirror")]).bytes(),
        &[],
        &[
            "node 'pad' (Pad): attribute 'mode': unknown value 'mirror' (expected one of: \
           constant, reflect, edge)",
        ],
    );
    bad_attribute(&e, "pad", "Pad", "mode");
    rejects_bytes(
        &pad_node(&[0, 0, 1, 0, 0, 1], vec![]).bytes(),
        &[],
        &["node 'pad' (Pad): input 1 ('pads'): 6 pad amounts, expected 8 (a begin and an end for \
           each of 4 axes)"],
    );
    rejects_bytes(
        &pad_node(&[0, 0, -3, 0, 0, 0, -3, 0], vec![]).bytes(),
        &[],
        &["node 'pad' (Pad): pad: axis 2 of size 4 cropped by -3,-3"],
    );
    // Negative pads that leave something (ONNX Runtime crops) import, but code generation
    // has no cropping kernel: a lowering error naming the node and what is supported.
    lowering_rejects(
        &pad_node(&[0, 0, -1, 0, 0, 0, 1, 1], vec![]),
        "code generation cannot lower 1 node:\n  - 'pad' (pad): pads=[0, 0, -1, 0, 0, 0, 1, 1]; \
         supported: non-negative padding of H and W only",
    );

    // Resize: unknown mode, coordinate_transformation_mode and nearest_mode; a flag not 0/1.
    let cases: [(Model, &str, &str); 4] = [
        (
            resize_node(vec![a_str("mode", "area")]),
            "mode",
            "node 'rs' (Resize): attribute 'mode': unknown value 'area' (expected one of: \
             nearest, linear, cubic)",
        ),
        (
            resize_node(vec![a_str("coordinate_transformation_mode", "centre")]),
            "coordinate_transformation_mode",
            "node 'rs' (Resize): attribute 'coordinate_transformation_mode': unknown value \
             'centre' (expected one of: half_pixel, pytorch_half_pixel, align_corners, \
             asymmetric, tf_half_pixel_for_nearest)",
        ),
        (
            resize_node(vec![a_str("nearest_mode", "nearest")]),
            "nearest_mode",
            "node 'rs' (Resize): attribute 'nearest_mode': unknown value 'nearest' (expected \
             one of: round_prefer_floor, round_prefer_ceil, floor, ceil)",
        ),
        (
            resize_node(vec![a_int("exclude_outside", 2)]),
            "exclude_outside",
            "node 'rs' (Resize): attribute 'exclude_outside': 2 is not 0 or 1",
        ),
    ];
    for (m, attr, text) in cases {
        let e = rejects_bytes(&m.bytes(), &[], &[text]);
        bad_attribute(&e, "rs", "Resize", attr);
    }

    // tf_half_pixel_for_nearest imports, but has no kernel.
    lowering_rejects(
        &resize_node(vec![a_str(
            "coordinate_transformation_mode",
            "tf_half_pixel_for_nearest",
        )]),
        "code generation cannot lower 1 node:\n  - 'rs' (resize): nearest (RoundPreferFloor) \
         with coordinate_transformation_mode tf_half_pixel_for_nearest; supported: nearest (any \
         nearest_mode), linear or cubic, with half_pixel, pytorch_half_pixel, align_corners or \
         asymmetric",
    );

    // ONNX values ghostc lacks are not errors of the model: every such node is listed in one
    // error (Pad's opset-19 'wrap', Resize's tf_crop_and_resize), the way several problems in
    // one model are reported.
    let m = model()
        .input("x", &[1, 2, 4, 4])
        .init(i64_tensor("pads", &[0, 0, 1, 1, 0, 0, 1, 1]))
        .init(f32_values("sc", &[4], &[1.0, 1.0, 2.0, 2.0]))
        .node(with_attrs(
            node("pad", "Pad", &["x", "pads"], &["a"]),
            vec![a_str("mode", "wrap")],
        ))
        .node(with_attrs(
            node("rs", "Resize", &["x", "", "sc"], &["y"]),
            vec![a_str(
                "coordinate_transformation_mode",
                "tf_crop_and_resize",
            )],
        ))
        .output("a")
        .output("y");
    let e = rejects_bytes(
        &m.bytes(),
        &[],
        &[
            "2 unsupported ONNX nodes: 'pad' (Pad, domain ai.onnx opset 17): Pad mode 'wrap', \
           'rs' (Resize, domain ai.onnx opset 17): Resize with coordinate_transformation_mode = \
           'tf_crop_and_resize'",
        ],
    );
    assert!(
        matches!(&e, ImportError::Unsupported(n) if n.len() == 2),
        "{e:?}"
    );

    // Split: sizes not summing to the axis; an axis out of range; a negative size; opset 18's
    // num_outputs disagreeing with the outputs.
    rejects_bytes(
        &split_node(17, 1, Some(&[1, 2]), vec![]).bytes(),
        &[],
        &[
            "node 'sp' (Split): input 1 ('s'): split sizes [1, 2] must be non-negative and sum \
           to 2, the size of axis 1",
        ],
    );
    rejects_bytes(
        &split_node(17, 4, Some(&[1, 1]), vec![]).bytes(),
        &[],
        &["node 'sp' (Split): axis 4 is out of range for rank 4 (expected -4 to 3)"],
    );
    rejects_bytes(
        &split_node(17, 1, Some(&[3, -1]), vec![]).bytes(),
        &[],
        &[
            "node 'sp' (Split): input 1 ('s'): split sizes [3, -1] must be non-negative and sum \
           to 2, the size of axis 1",
        ],
    );
    rejects_bytes(
        &split_node(18, 1, None, vec![a_int("num_outputs", 3)]).bytes(),
        &[],
        &["node 'sp' (Split): attribute 'num_outputs': 3, but the node has 2 outputs (must be equal)"],
    );

    // DepthToSpace: an unknown mode; a blocksize of 0; none; channels (2) not a multiple of
    // blocksize^2.
    let d2s = |attrs| {
        one_op(
            17,
            with_attrs(node("d", "DepthToSpace", &["x"], &["y"]), attrs),
            vec![],
        )
    };
    let e = rejects_bytes(
        &d2s(vec![a_int("blocksize", 1), a_str("mode", "DRC")]).bytes(),
        &[],
        &["node 'd' (DepthToSpace): attribute 'mode': unknown value 'DRC' (expected one of: DCR, CRD)"],
    );
    bad_attribute(&e, "d", "DepthToSpace", "mode");
    let e = rejects_bytes(
        &d2s(vec![a_int("blocksize", 0)]).bytes(),
        &[],
        &["node 'd' (DepthToSpace): attribute 'blocksize': 0 is not positive"],
    );
    bad_attribute(&e, "d", "DepthToSpace", "blocksize");
    rejects_bytes(
        &d2s(vec![]).bytes(),
        &[],
        &["node 'd' (DepthToSpace): required attribute 'blocksize' is missing"],
    );
    rejects_bytes(
        &d2s(vec![a_int("blocksize", 2)]).bytes(),
        &[],
        &[
            "node 'd' (DepthToSpace): depth_to_space: 2 channels of input [1x2x4x4] are not a \
           multiple of blocksize^2 = 4",
        ],
    );

    // PRelu: a slope that does not broadcast to the input (ONNX broadcasts it one way only).
    rejects_bytes(
        &one_op(
            17,
            node("pr", "PRelu", &["x", "s"], &["y"]),
            vec![f32_values("s", &[2, 2, 4, 4], &[0.25; 64])],
        )
        .bytes(),
        &[],
        &[
            "node 'pr' (PRelu): slope: shape [2x2x4x4] does not broadcast to the input's \
           [1x2x4x4] (PRelu broadcasts one way)",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 32: memory budgets for embedded targets

#[test]
fn case_32_flash_and_ram_budgets() {
    let (_d, path) = model_file(&tiny());
    let compiled = compile_file(&path, &CompileOptions::default(), &weights()).unwrap();
    let need = ghostc::budget::Budget::of(&compiled.program);
    let (flash, ram) = (need.flash_bytes(), need.ram_bytes());
    let library = |f: Option<usize>, r: Option<usize>| need.check(f, r).map_err(|e| e.to_string());
    let builder = |f: Option<usize>, r: Option<usize>| {
        let out = tempfile::tempdir().unwrap();
        let mut b = ghostc::Builder::new(&path).out_dir(out.path());
        if let Some(f) = f {
            b = b.flash_budget(f);
        }
        if let Some(r) = r {
            b = b.ram_budget(r);
        }
        let r = b.compile();
        if r.is_err() {
            assert!(tree(out.path()).is_empty(), "Builder wrote files");
        }
        r.map(|_| ()).map_err(|e| match e {
            CompileError::Budget(b) => b.to_string(),
            other => panic!("Builder: expected a budget error, got {other}"),
        })
    };
    let cli = |flags: &[String]| {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("crate");
        let mut args: Vec<std::ffi::OsString> = vec![
            "compile".into(),
            path.as_os_str().into(),
            "--out".into(),
            out.as_os_str().into(),
        ];
        args.extend(flags.iter().map(Into::into));
        let o = ghostc(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.join("src/model.rs").is_file());
    };
    // An exact fit passes everywhere.
    assert_eq!(library(Some(flash), Some(ram)), Ok(()));
    assert_eq!(builder(Some(flash), Some(ram)), Ok(()));
    cli(&[
        "--flash-budget".into(),
        flash.to_string(),
        "--ram-budget".into(),
        ram.to_string(),
    ]);
    // `_` separators, as the proc-macro takes them.
    let grouped = |n: usize| {
        let d = n.to_string();
        let mut g = String::new();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && (d.len() - i).is_multiple_of(3) {
                g.push('_');
            }
            g.push(c);
        }
        g
    };
    cli(&[
        "--flash-budget".into(),
        grouped(flash),
        "--ram-budget".into(),
        grouped(ram),
    ]);
    // Not a number: clap names the flag and the value.
    {
        let o = ghostc(&[
            "compile".into(),
            path.as_os_str().into(),
            "--out".into(),
            tempfile::tempdir()
                .unwrap()
                .path()
                .join("c")
                .into_os_string(),
            "--ram-budget".into(),
            "12kb".into(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains("--ram-budget") && err.contains("'12kb' is not a number of bytes"),
            "{err}"
        );
    }
    // One byte short of flash, of RAM; both short (flash is checked, and reported, first).
    let flash_text = format!(
        "model needs {flash} bytes of flash (weights {}), 1 bytes over the budget of {}",
        need.weight_bytes,
        flash - 1
    );
    let ram_text = format!(
        "model needs {ram} bytes of RAM (arena {} + input {} + output {}), 1 bytes over the \
         budget of {}",
        need.arena_bytes,
        need.input_bytes,
        need.output_bytes,
        ram - 1
    );
    for (f, r, text) in [
        (Some(flash - 1), None, &flash_text),
        (None, Some(ram - 1), &ram_text),
        (Some(flash - 1), Some(ram - 1), &flash_text),
    ] {
        assert_eq!(library(f, r).as_ref(), Err(text));
        assert_eq!(builder(f, r).as_ref(), Err(text));
        let mut flags = Vec::new();
        if let Some(f) = f {
            flags.extend(["--flash-budget".to_string(), f.to_string()]);
        }
        if let Some(r) = r {
            flags.extend(["--ram-budget".to_string(), r.to_string()]);
        }
        cli_compile_rejects(&path, &flags, text);
        println!("  error: {text}");
    }
}
