//! Compiles data/digits.onnx (dynamic batch) into `$OUT_DIR/model.rs` + `model.weights`.

fn main() {
    ghostc::Builder::new("data/digits.onnx")
        .compile()
        .unwrap_or_else(|e| {
            eprintln!("error: ghostc: {e}");
            std::process::exit(1)
        });
    for f in ["test_images.npy", "test_labels.npy", "torch_logits.npy"] {
        println!("cargo:rerun-if-changed=data/{f}");
    }
}
