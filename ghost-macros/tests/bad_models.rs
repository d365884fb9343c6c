//! The malformed ONNX files the compile-fail tests read (`tests/bad_models/*.onnx`) must be
//! exactly what `ghostc-cli/tests/bad_inputs_common` builds with prost, the same models
//! `ghostc-cli/tests/bad_inputs.rs` feeds to the library, the CLI and `ghostc::Builder`. The files
//! are committed because the macro reads them from disk while trybuild compiles.
//!
//! After changing a model there: `GHOSTC_BLESS=1 cargo test -p ghost-macros --test bad_models`.

#[path = "../../ghostc-cli/tests/bad_inputs_common/mod.rs"]
mod bad_inputs_common;

use std::path::PathBuf;

use ghostc_testkit::snapshot::Snapshots;

#[test]
fn bad_models_match_their_generators() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_models");
    let mut snapshots = Snapshots::new(dir);
    for (name, bytes) in bad_inputs_common::macro_models() {
        snapshots.check(name, bytes);
    }
    snapshots.finish("cargo test -p ghost-macros --test bad_models");
}
