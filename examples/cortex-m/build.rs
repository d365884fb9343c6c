//! Compiles the digits GhostNet (`examples/digits/data/digits.onnx`) into `$OUT_DIR/model.rs`
//! with `ghostc::Builder`, pinned to batch 1 and held to a flash/RAM budget, and writes the
//! embedded test set as raw little-endian bytes: `images.bin` (`IMAGES` x 1x32x32 f32),
//! `labels.bin` (u8) and `torch_pred.bin` (u8, the argmax of PyTorch's logits for each image,
//! the golden the firmware must match).

use std::path::Path;

/// How many of the 360 held-out test images the firmware carries (the first ones).
const IMAGES: usize = 360;
/// Bytes the weights may take (the build fails beyond, saying by how much).
const FLASH_BUDGET: usize = 256 * 1024;
/// Bytes arena + input + output may take.
const RAM_BUDGET: usize = 112 * 1024;
const DATA: &str = "../digits/data";

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR is set for build scripts");
    ghostc::Builder::new(format!("{DATA}/digits.onnx"))
        .shape("input", &[1, 1, 32, 32])
        // An STM32F4-class part (512 KiB flash, 128 KiB RAM): the weights may take half the
        // flash, arena + input + output must leave room for the stack and the program's statics.
        .flash_budget(FLASH_BUDGET)
        .ram_budget(RAM_BUDGET)
        .compile()
        .unwrap_or_else(|e| fail(&e.to_string()));

    let data = Path::new(DATA);
    let images = ghostc::npy::read_f32(&data.join("test_images.npy"))
        .unwrap_or_else(|e| fail(&e.to_string()));
    let labels = ghostc::npy::read_i64(&data.join("test_labels.npy"))
        .unwrap_or_else(|e| fail(&e.to_string()));
    let logits = ghostc::npy::read_f32(&data.join("torch_logits.npy"))
        .unwrap_or_else(|e| fail(&e.to_string()));
    let per_image = 32 * 32;
    if images.shape[1..].iter().product::<usize>() != per_image
        || images.shape[0] < IMAGES
        || labels.data.len() < IMAGES
        || logits.shape[1..] != [10]
    {
        fail(&format!(
            "test set shapes {:?} {:?} {:?} do not fit 1x32x32 -> 10 with {IMAGES} images",
            images.shape, labels.shape, logits.shape
        ));
    }
    let bytes: Vec<u8> = images.data[..IMAGES * per_image]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let labels: Vec<u8> = labels.data[..IMAGES].iter().map(|&l| l as u8).collect();
    let torch: Vec<u8> = logits.data[..IMAGES * 10]
        .chunks_exact(10)
        .map(|l| (0..10).fold(0, |b, i| if l[i] > l[b] { i } else { b }) as u8)
        .collect();
    for (name, b) in [
        ("images.bin", &bytes),
        ("labels.bin", &labels),
        ("torch_pred.bin", &torch),
    ] {
        std::fs::write(Path::new(&out).join(name), b)
            .unwrap_or_else(|e| fail(&format!("{name}: {e}")));
    }
    for f in ["test_images.npy", "test_labels.npy", "torch_logits.npy"] {
        println!("cargo:rerun-if-changed={DATA}/{f}");
    }
    // cortex-m-rt's link.x includes memory.x from the linker search path.
    println!(
        "cargo:rustc-link-search={}",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")
    );
    println!("cargo:rerun-if-changed=memory.x");
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
