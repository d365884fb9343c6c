//! ghostc compiles ONNX exports of GhostNet-family CNNs into specialized Rust.
//!
//! Pipeline: `onnx` decodes the protobuf and imports it into the typed graph IR (`ir`), pinning
//! every shape and folding shape subgraphs; `passes` rewrite the graph (BatchNorm folding,
//! activation and Ghost-module fusion); `plan` assigns arena offsets; `codegen` emits Rust that
//! calls `ghost-runtime`. `interp` runs the IR directly and is the oracle every stage is
//! checked against. See ARCHITECTURE.md for the picture.

pub mod codegen;
pub mod compare;
pub mod compile;
pub mod interp;
pub mod ir;
pub mod npy;
pub mod onnx;
pub mod passes;
pub mod plan;
pub mod report;
pub mod verify;

pub use compile::{
    build_crate, compile_file, write_crate, BuildError, Builder, CompileError, CompileOptions,
    Compiled, RuntimeDep,
};
