//! Shared code of the ghostc fuzz targets (see README.md): the pipeline every model-level
//! target runs, and the model generators.
//!
//! The pipeline is what `ghostc compile` does, from bytes: import (pre-scan, decode, header,
//! functions, tensors, shape inference, constant folding), the pass pipeline with the
//! verifier after every pass, lowering, and (optionally) code generation, whose output must
//! parse with `syn`. User errors are fine; a panic, or an error that ghostc itself labels a
//! ghostc bug (verifier failure, pass error, rejected packing, internal error, unparsable
//! output), is a finding.

pub mod gen;
pub mod onnx_build;
pub mod structured;

use ghostc::codegen::emit::{emit_with, EmitOptions, WeightsPath};
use ghostc::onnx::{import_bytes, ImportError, ImportOptions, NodeError};
use ghostc::passes::{optimize, FuseOptions, PassOptions};
use ghostc::plan::lower::{lower, LowerError};

/// How far the pipeline got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// Import rejected the model (a user error).
    ImportError,
    /// Lowering rejected the optimized graph (unsupported op configuration).
    LowerError,
    /// A program was planned (no code generated).
    Lowered,
    /// Code was generated and parses.
    Emitted,
}

/// Panics if `e` is one that ghostc labels a bug.
pub fn check_import_error(e: &ImportError) {
    match e {
        ImportError::Bug(m) => panic!("ghostc bug during import: {m}"),
        ImportError::Node {
            error: NodeError::Fold(m),
            ..
        } if m.contains("ghostc bug") => panic!("ghostc bug during folding: {e}"),
        _ => {}
    }
    // Formatting must not panic either (the CLI prints every error).
    let _ = e.to_string();
}

/// Runs the pipeline on `bytes`; with `emit`, also generates the Rust source and checks that
/// it parses. Panics on any ghostc bug.
pub fn run(bytes: &[u8], fuse: FuseOptions, emit: bool) -> Reached {
    let opts = ImportOptions::default();
    let mut g = match import_bytes(bytes, None, &opts) {
        Ok(g) => g,
        Err(e) => {
            check_import_error(&e);
            return Reached::ImportError;
        }
    };
    // What `ghostc inspect` prints.
    let _ = g.to_string();
    let _ = ghostc::report::ModelReport::new(&g).to_text();
    let popts = PassOptions {
        fuse,
        verify_each: true,
        stop_after: None,
    };
    if let Err(e) = optimize(&mut g, &popts) {
        panic!("pass pipeline failed (a ghostc bug): {e}: {e:?}");
    }
    let program = match lower(&g) {
        Ok(p) => p,
        Err(e @ LowerError::Pack { .. }) => panic!("lowering failed (a ghostc bug): {e}"),
        Err(e) => {
            let _ = e.to_string();
            return Reached::LowerError;
        }
    };
    if !emit {
        return Reached::Lowered;
    }
    let sha = "0".repeat(64);
    let source = emit_with(
        &program,
        &WeightsPath::Relative("model.weights".into()),
        &sha,
        EmitOptions::default(),
    )
    .unwrap_or_else(|e| panic!("code generation failed (a ghostc bug): {e}"));
    if let Err(e) = syn::parse_file(&source) {
        panic!("generated code does not parse: {e}\n{source}");
    }
    let weights = program.weights.to_le_bytes();
    assert_eq!(weights.len(), program.weights.len() * 4);
    Reached::Emitted
}
