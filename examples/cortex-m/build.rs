//! Compiles the digits GhostNet (`examples/digits/data/digits.onnx`) into `$OUT_DIR/model.rs`
//! with `ghostc::Builder`, pinned to batch 1 and held to a flash/RAM budget, and writes the
//! embedded test set (`../digits_testset.rs`).

use std::path::Path;

include!("../digits_testset.rs");

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
    write_digits_testset(Path::new(DATA), Path::new(&out), IMAGES).unwrap_or_else(|e| fail(&e));
    println!("cargo:rerun-if-changed=../digits_testset.rs");
    // cortex-m-rt's link.x includes memory.x from the linker search path.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    println!("cargo:rustc-link-search={dir}");
    println!("cargo:rerun-if-changed=memory.x");
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
