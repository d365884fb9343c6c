//! Memory planning: where every intermediate tensor lives in the scratch arena.
pub mod arena;
pub mod layout;
