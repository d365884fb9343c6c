//! Valid small models (random channels, strides, kernels, activations, SE, residuals, Ghost
//! modules, V3 branches, heads) -> the full compile to Rust source, which must parse with
//! `syn`. ghostc may reject a model with an error (an unsupported configuration), never panic.
#![no_main]

use ghostc_fuzz::gen::{build, CodegenInput};
use ghostc_fuzz::structured::fuse_options;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|input: CodegenInput| {
    let bytes = build(&input.model).encode_to_vec();
    ghostc_fuzz::run(&bytes, fuse_options(input.fuse), true);
});
