//! The malformed ONNX files the compile-fail tests read (`tests/bad_models/*.onnx`) must be
//! exactly what `ghostc-cli/tests/bad_inputs_common` builds with prost, the same models
//! `ghostc-cli/tests/bad_inputs.rs` feeds to the library, the CLI and `ghostc::Builder`. The files
//! are committed because the macro reads them from disk while trybuild compiles.
//!
//! After changing a model there: `GHOSTC_BLESS=1 cargo test -p ghost-macros --test bad_models`.

#[path = "../../ghostc-cli/tests/bad_inputs_common/mod.rs"]
mod bad_inputs_common;

use std::path::PathBuf;

#[test]
fn bad_models_match_their_generators() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_models");
    let models = bad_inputs_common::macro_models();
    if std::env::var_os("GHOSTC_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &models {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut stale = Vec::new();
    for (name, bytes) in &models {
        if std::fs::read(dir.join(name)).ok().as_ref() != Some(bytes) {
            stale.push(*name);
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = models.iter().map(|(n, _)| n.to_string()).collect();
    expected.sort();
    assert!(
        stale.is_empty(),
        "{} differ from their generators: {stale:?}; regenerate with \
         `GHOSTC_BLESS=1 cargo test -p ghost-macros --test bad_models`",
        dir.display()
    );
    assert_eq!(on_disk, expected, "unexpected files in {}", dir.display());
}
