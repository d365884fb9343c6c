//! Reference interpreter (the oracle): a deliberately simple f32 implementation of every op.
