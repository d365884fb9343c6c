//! Memory planning and lowering: where every tensor lives and which kernel computes it.
//!
//! `layout` chooses channel layouts, `lower` turns the optimized graph into a [`program::Program`]
//! of runtime calls (packing weights into a [`blob::WeightBlob`]), `arena` places the buffers.
//! Nothing here imports `codegen`: the program is complete before any Rust is printed.
pub mod arena;
pub mod blob;
pub mod layout;
pub mod lower;
pub mod program;
