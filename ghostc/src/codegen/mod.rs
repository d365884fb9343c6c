//! Code generation: turns a lowered program into a Rust module that calls ghost-runtime.
pub mod blob;
pub mod emit;
pub mod output;
