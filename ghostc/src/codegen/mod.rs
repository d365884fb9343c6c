//! Code generation: turns a lowered program into a Rust module that calls ghost-runtime.
//!
//! `emit` prints the module and one call per step, `tokens` turns the runtime values a step
//! holds into tokens, `output` formats and writes files. Reads only `plan::program`.
pub mod emit;
pub mod output;
pub mod tokens;
