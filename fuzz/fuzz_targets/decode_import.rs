//! Raw bytes -> pre-scan, protobuf decode, import (shape inference, constant folding), the
//! pass pipeline (verified after every pass) and lowering. No code generation: that is the
//! `codegen` target's job. Seeds: the fixtures without external data.
#![no_main]

use ghostc::passes::FuseOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ghostc_fuzz::run(data, FuseOptions::all(), false);
});
