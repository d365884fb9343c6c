//! Structure-aware: an `arbitrary` description -> a mostly valid GhostNet-style ModelProto
//! (built with ghostc's prost types) with random extra nodes, initializers, nested graphs,
//! functions and corruptions -> encoded -> the full pipeline including code generation.
#![no_main]

use ghostc_fuzz::structured::{build, StructuredInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: StructuredInput| {
    let (bytes, fuse) = build(&input);
    ghostc_fuzz::run(&bytes, fuse, true);
});
