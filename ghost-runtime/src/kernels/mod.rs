//! Kernel families. Each module holds the generic loop nest, its validated raw-argument
//! struct, and the safe `impl Kernels` entry points.

pub mod channel_norm;
pub mod col2im;
pub mod conv;
pub mod depthwise;
pub mod depthwise_general;
pub mod dfc;
pub mod dfl;
pub mod elementwise;
pub mod fc;
pub mod ghost;
pub mod grouped;
pub mod layout;
pub mod pointwise;
pub mod pool;
pub mod pwdw;
pub mod qbinary;
pub mod qconcat;
pub mod qdepthwise;
#[cfg(all(target_arch = "x86_64", not(miri)))]
mod qdepthwise_dot;
#[cfg(all(target_arch = "x86_64", not(miri)))]
mod qelementwise_zmm;
pub mod qpointwise;
pub mod qpool;
pub mod qstem;
pub mod qtable;
pub mod quantize;
pub mod resize;
pub mod se;
pub mod softmax;
mod tiles;
pub mod vmath;
pub mod winograd;
