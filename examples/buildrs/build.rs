//! Compiles the fixture model into `$OUT_DIR/model.rs` (+ `model.weights`) at build time.

fn main() {
    // Dynamic batch stays dynamic: `Model::run` accepts any number of 3x64x64 images.
    ghostc::Builder::new("../../fixtures/ts17_v1_w050_64x64_dynbatch_b3/model.onnx")
        .compile()
        .unwrap_or_else(|e| {
            eprintln!("error: ghostc: {e}");
            std::process::exit(1)
        });
}
