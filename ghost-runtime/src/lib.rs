//! ghost-runtime: the kernels ghostc-generated GhostNet code calls. (Full docs below.)
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod arch;
mod error;
pub mod glue;
mod isa;
pub mod kernels;

pub use error::Error;
pub use isa::{Isa, Kernels};
pub use kernels::pointwise::{
    pack_pointwise, pointwise_packed_len, scale_packed_pointwise, PointwiseShape, PANEL_BLOCKS,
};

/// Activation applied in a kernel's epilogue, after the bias and before any residual add.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// Identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, lo), hi)` (ReLU6 is `Clamp { lo: 0.0, hi: 6.0 }`).
    Clamp {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// ONNX HardSigmoid: `min(max(alpha * x + beta, 0), 1)`.
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// ONNX HardSwish: `x * min(max(x / 6 + 1/2, 0), 1)`.
    HardSwish,
}

/// Read-only view of an NCHW8c tensor (one image): the kernel reads its blocks starting at
/// `block_offset`. The pixel count comes from the kernel's shape.
#[derive(Clone, Copy, Debug)]
pub struct Src<'a> {
    /// The whole tensor, `[blocks][H][W][8]`.
    pub data: &'a [f32],
    /// First block the kernel reads.
    pub block_offset: usize,
}

impl<'a> Src<'a> {
    /// View starting at block 0.
    pub fn new(data: &'a [f32]) -> Self {
        Src {
            data,
            block_offset: 0,
        }
    }
    /// View starting at block `block_offset`.
    pub fn at(data: &'a [f32], block_offset: usize) -> Self {
        Src { data, block_offset }
    }
}

/// Writable view of an NCHW8c tensor (one image): the kernel writes its blocks starting at
/// `block_offset`, so a concat along channels costs nothing.
#[derive(Debug)]
pub struct Dst<'a> {
    /// The whole tensor, `[blocks][H][W][8]`.
    pub data: &'a mut [f32],
    /// First block the kernel writes.
    pub block_offset: usize,
}

impl<'a> Dst<'a> {
    /// View starting at block 0.
    pub fn new(data: &'a mut [f32]) -> Self {
        Dst {
            data,
            block_offset: 0,
        }
    }
    /// View starting at block `block_offset`.
    pub fn at(data: &'a mut [f32], block_offset: usize) -> Self {
        Dst { data, block_offset }
    }
}

/// What a kernel does to its accumulators before storing them:
/// `out = activation(acc + bias) + residual`, then, if `channel_sums` is given,
/// `channel_sums[c] += sum over pixels of out[c]` (the caller zeroes it; dividing by `H*W`
/// gives the global average pool a following squeeze-and-excitation needs).
#[derive(Debug)]
pub struct Epilogue<'a> {
    /// Activation after the bias.
    pub activation: Activation,
    /// Tensor added after the activation, same pixel count as the output, read at its own
    /// block offset.
    pub residual: Option<Src<'a>>,
    /// Per-channel sums of the stored values, `n_blocks * 8` floats, accumulated.
    pub channel_sums: Option<&'a mut [f32]>,
}

impl Epilogue<'_> {
    /// Just an activation.
    pub fn act(activation: Activation) -> Self {
        Epilogue {
            activation,
            residual: None,
            channel_sums: None,
        }
    }
}

pub use kernels::conv::{conv_packed_len, pack_conv, ConvShape, GeneralConvShape, InputLayout};
pub use kernels::depthwise::{depthwise_packed_len, pack_depthwise, DepthwiseShape};
pub use kernels::eltwise::BinaryOp;
pub use kernels::ghost::{ghost_scratch_len, GhostEpilogue, GhostShape};
pub use kernels::layout::{nchw8c_len, nchw8c_to_nchw, nchw_to_nchw8c};
pub use kernels::pool::{PoolKind, PoolShape};
pub use kernels::resize::{CoordMode, NearestMode, ResizeMode, ResizeShape};
pub use kernels::se::{Gate, SeShape};
pub use kernels::softmax::expf;
