//! Compiles data/digits.onnx (dynamic batch) twice into `$OUT_DIR`:
//! - `model.rs` + `model.weights`: the f32 model as exported;
//! - `model_int8.rs` + `model_int8.weights`: the same model quantized here, at build time, with
//!   `ghostc::quantize` (min-max calibration on 64 training images, `data/calibration/`; s8
//!   per-channel weights, u8 activations, bias correction), written as a standard QDQ ONNX file
//!   (`$OUT_DIR/digits_int8.onnx`) and compiled like any other model. A user with only the f32
//!   export does the same.

use std::path::Path;

use ghostc::quantize::{self, InputSource, QuantizeOptions};

fn main() {
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let model = Path::new("data/digits.onnx");
    ghostc::Builder::new(model)
        .compile()
        .unwrap_or_else(|e| fail(&e));
    let int8 = Path::new(&out).join("digits_int8.onnx");
    quantize_to(model, Path::new("data/calibration"), &int8).unwrap_or_else(|e| fail(&*e));
    ghostc::Builder::new(&int8)
        .module_name("model_int8")
        .compile()
        .unwrap_or_else(|e| fail(&e));
    for f in [
        "test_images.npy",
        "test_labels.npy",
        "torch_logits.npy",
        "calibration",
    ] {
        println!("cargo:rerun-if-changed=data/{f}");
    }
}

/// Calibrates `model` on the `.npy` files of `calib` and writes the QDQ model to `out`.
fn quantize_to(model: &Path, calib: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let g = ghostc::onnx::load_model(model, &Default::default())?;
    let inputs: InputSource = quantize::inputs::list_dir(calib, &quantize::image_shape(&g))?;
    let (_, q) = quantize::quantize(g, &inputs, &QuantizeOptions::default(), |_| {})?;
    // Rewritten only when it changes: the file's time would otherwise make every build rerun
    // this script (Builder::compile asks cargo to watch the model it compiles).
    let bytes = q.to_bytes();
    if std::fs::read(out).ok().as_deref() != Some(&bytes[..]) {
        std::fs::write(out, bytes)?;
    }
    Ok(())
}

fn fail(e: &dyn std::error::Error) -> ! {
    eprintln!("error: ghostc: {e}");
    let mut src = e.source();
    while let Some(s) = src {
        eprintln!("  caused by: {s}");
        src = s.source();
    }
    std::process::exit(1)
}
