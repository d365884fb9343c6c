//! Replays the committed `decode_import` fuzz corpus (`fuzz/corpus/decode_import/`) through
//! the pipeline the fuzz targets run, on stable Rust (CI has no cargo-fuzz): import from bytes, every pass with the verifier
//! after each, lowering and code generation, whose output must parse with syn. Any input may be
//! rejected with an error; none may panic, and none may produce an error that ghostc labels a
//! ghostc bug. See `fuzz/README.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ghostc::codegen::emit::{emit, WeightsPath};
use ghostc::onnx::{import_bytes, ImportError, ImportOptions, NodeError};
use ghostc::passes::{optimize, PassOptions};
use ghostc::plan::lower::{lower, LowerError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    ImportError,
    LowerError,
    Emitted,
}

/// The fuzz targets' pipeline (`fuzz/src/lib.rs::run`), as a `Result` naming the bug.
fn pipeline(bytes: &[u8]) -> Result<Reached, String> {
    let mut g = match import_bytes(bytes, None, &ImportOptions::default()) {
        Ok(g) => g,
        Err(e) => {
            let msg = e.to_string();
            return match &e {
                ImportError::Bug(_) => Err(msg),
                ImportError::Node {
                    error: NodeError::Fold(m),
                    ..
                } if m.contains("ghostc bug") => Err(msg),
                _ => Ok(Reached::ImportError),
            };
        }
    };
    let _ = g.to_string();
    let _ = ghostc::report::ModelReport::new(&g).to_text();
    let opts = PassOptions {
        verify_each: true,
        ..PassOptions::default()
    };
    optimize(&mut g, &opts).map_err(|e| format!("pass pipeline: {e}: {e:?}"))?;
    let program = match lower(&g) {
        Ok(p) => p,
        Err(e @ LowerError::Pack { .. }) => return Err(e.to_string()),
        Err(_) => return Ok(Reached::LowerError),
    };
    let source = emit(
        &program,
        &WeightsPath::Relative("model.weights".into()),
        &"0".repeat(64),
    )
    .map_err(|e| format!("emit: {e}"))?;
    syn::parse_file(&source).map_err(|e| format!("generated code does not parse: {e}"))?;
    Ok(Reached::Emitted)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs every file through the pipeline in a fresh thread, so a panic is reported with the
/// file's name; returns how far each got.
fn replay(paths: &[PathBuf]) -> Vec<Reached> {
    let mut failures = Vec::new();
    let mut reached = Vec::new();
    for p in paths {
        let bytes = std::fs::read(p).unwrap();
        let result = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || pipeline(&bytes))
            .unwrap()
            .join();
        match result {
            Ok(Ok(r)) => reached.push(r),
            Ok(Err(bug)) => failures.push(format!("{}: {bug}", p.display())),
            Err(_) => failures.push(format!("{}: panicked", p.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    reached
}

#[test]
fn decode_import_corpus_never_panics() {
    let start = Instant::now();
    let paths = files(&fuzz_dir().join("corpus/decode_import"));
    assert!(
        paths.len() >= 10,
        "the committed corpus is missing ({} files)",
        paths.len()
    );
    let reached = replay(&paths);
    // The corpus keeps valid models too (the seeds), so the deep stages are replayed.
    assert!(
        reached.contains(&Reached::Emitted),
        "no corpus entry compiles: {reached:?}"
    );
    assert!(reached.contains(&Reached::ImportError));
    eprintln!(
        "{} corpus files in {:?}: {} rejected by import, {} by lowering, {} compiled",
        paths.len(),
        start.elapsed(),
        reached
            .iter()
            .filter(|&&r| r == Reached::ImportError)
            .count(),
        reached
            .iter()
            .filter(|&&r| r == Reached::LowerError)
            .count(),
        reached.iter().filter(|&&r| r == Reached::Emitted).count(),
    );
}
