//! Compiles the digits GhostNet (`examples/digits/data/digits.onnx`, batch 1) into
//! `$OUT_DIR/model.rs` with `ghostc::Builder` and writes the embedded test set
//! (`../digits_testset.rs`). With `GHOST_WEB_MODEL=path.onnx` (and optionally
//! `GHOST_WEB_SHAPE=1x3x224x224` for its input `input`) it compiles that model instead, for the
//! speed comparison of `bench.html`, and embeds an empty test set.

use std::path::Path;

include!("../digits_testset.rs");

const DATA: &str = "../digits/data";

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR is set for build scripts");
    let out = Path::new(&out);
    for var in ["GHOST_WEB_MODEL", "GHOST_WEB_SHAPE"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=../digits_testset.rs");
    let result = match std::env::var("GHOST_WEB_MODEL") {
        Ok(model) => {
            let mut b = ghostc::Builder::new(model);
            if let Ok(shape) = std::env::var("GHOST_WEB_SHAPE") {
                let dims: Vec<usize> = shape
                    .split('x')
                    .map(|d| {
                        d.parse()
                            .unwrap_or_else(|_| fail(&format!("GHOST_WEB_SHAPE={shape}")))
                    })
                    .collect();
                b = b.shape("input", &dims);
            }
            b.compile().map_err(|e| e.to_string()).and_then(|_| {
                ["images.bin", "labels.bin", "torch_pred.bin"]
                    .iter()
                    .try_for_each(|f| std::fs::write(out.join(f), []).map_err(|e| e.to_string()))
            })
        }
        Err(_) => ghostc::Builder::new(format!("{DATA}/digits.onnx"))
            .shape("input", &[1, 1, 32, 32])
            .compile()
            .map_err(|e| e.to_string())
            .and_then(|_| write_digits_testset(Path::new(DATA), out, 360)),
    };
    result.unwrap_or_else(|e| fail(&e));
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
