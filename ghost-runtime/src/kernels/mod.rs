//! Kernel families. Each module holds the generic loop nest, its validated raw-argument
//! struct, and the safe `impl Kernels` entry points.

pub mod depthwise;
pub mod layout;
pub mod ghost;
pub mod pointwise;
