//! The checked-in protobuf bindings (`ghostc/src/onnx/proto/onnx.rs`) must be exactly what
//! protox + prost-build generate from the vendored `onnx.proto`. Building ghostc never runs a
//! code generator (cargo only, no protoc); this test catches a stale or hand-edited file.
//!
//! To regenerate after changing `onnx.proto` or bumping prost-build:
//! `GHOSTC_BLESS=1 cargo test -p ghostc --test onnx_proto`.

use std::path::PathBuf;

#[test]
fn generated_bindings_are_up_to_date() {
    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/onnx/proto");
    let checked_in = proto_dir.join("onnx.rs");

    let descriptors = protox::compile([proto_dir.join("onnx.proto")], [&proto_dir])
        .expect("vendored onnx.proto compiles with protox");
    let out = tempfile::tempdir().expect("temp dir");
    prost_build::Config::new()
        .out_dir(out.path())
        .compile_fds(descriptors)
        .expect("prost-build generates the bindings");
    let generated = std::fs::read_to_string(out.path().join("onnx.rs")).expect("generated onnx.rs");

    ghostc_testkit::snapshot::assert_file(
        &checked_in,
        generated,
        "cargo test -p ghostc --test onnx_proto",
    );
}
