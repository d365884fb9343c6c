//! Memory planning and lowering: where every tensor lives and which kernel computes it.
pub mod arena;
pub mod layout;
pub mod lower;
pub mod program;
