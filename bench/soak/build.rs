//! Compiles the full-size dynamic-batch GhostNet-1.0 (or `GHOST_SOAK_MODEL`) into `$OUT_DIR`.

fn main() {
    let model = std::env::var("GHOST_SOAK_MODEL").unwrap_or_else(|_| {
        "../../fixtures/full/ghostnet_100_224_op17_dynbatch/model.onnx".to_string()
    });
    println!("cargo:rerun-if-env-changed=GHOST_SOAK_MODEL");
    if !std::path::Path::new(&model).exists() {
        eprintln!(
            "error: {model} does not exist; make it with \
             `python tools/make_fixtures.py --full` or set GHOST_SOAK_MODEL"
        );
        std::process::exit(1);
    }
    if let Err(e) = ghostc::Builder::new(&model).compile() {
        eprintln!("error: ghostc: {e}");
        std::process::exit(1);
    }
}
