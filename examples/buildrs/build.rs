//! Compiles the fixture models into `$OUT_DIR` at build time: `model.rs` (+ `model.weights`),
//! and a two-output backbone fused (`features.rs`) and unfused (`features_unfused.rs`).

fn main() {
    let fail = |e: ghostc::CompileError| -> std::path::PathBuf {
        eprintln!("error: ghostc: {e}");
        std::process::exit(1)
    };
    // Dynamic batch stays dynamic: `Model::run` accepts any number of 3x64x64 images.
    ghostc::Builder::new("../../fixtures/ts17_v1_w050_64x64_dynbatch_b3/model.onnx")
        .compile()
        .unwrap_or_else(fail);
    // A timm features_only backbone: two outputs, run through `ModelInputs`/`ModelOutputs`.
    let features = "../../fixtures/ts17_features_w050_64x64_b1/model.onnx";
    ghostc::Builder::new(features)
        .module_name("features")
        .compile()
        .unwrap_or_else(fail);
    ghostc::Builder::new(features)
        .module_name("features_unfused")
        .fuse(ghostc::passes::FuseOptions::none())
        .compile()
        .unwrap_or_else(fail);
}
