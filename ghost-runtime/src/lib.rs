//! ghost-runtime: the kernels that ghostc-generated GhostNet code calls.
//!
//! The crate has no dependencies and is `#![no_std]`; the default `std` feature only adds
//! runtime CPU detection and `Team`, the thread pool a [`Par`] splits layers over (see
//! [`Fork`]). Kernels never allocate: callers pass every
//! output and scratch slice, sized with the `*_len` functions.
//!
//! # Layout: NCHW8c
//! One image of `C` channels and `H x W` pixels is stored as `[ceil(C/8)][H][W][8]` `f32`:
//! channel `c` of pixel `p` lives at `(c/8)*H*W*8 + p*8 + c%8`. Padded lanes exist; the layout
//! converters ([`nchw_to_nchw8c`], [`nchw8c_to_nchw`]) zero them, kernels keep them finite
//! (they hold `act(0) + residual`), and consumers' packed weights are zero there, so they never
//! leak into real channels. A kernel reads and writes whole blocks at a *block offset*
//! ([`Src::at`], [`Dst::at`]), so a concat along channels is just an offset, and the two halves
//! of a Ghost module are padded separately (x1 in blocks `[0, nb)`, x2 in `[nb, 2nb)`).
//!
//! # ISA selection
//! Every kernel has one generic `#[inline(always)]` body written against an 8-lane vector
//! trait, instantiated per ISA inside a `#[target_feature]` wrapper, so the whole loop nest of
//! a layer is compiled for that ISA: scalar (the reference), AVX2+FMA and AVX-512VL on x86_64
//! (both on 256-bit ymm registers: Zen 4 has no more FMA throughput with zmm, and AVX-512VL
//! gives 32 registers, hence larger register tiles), NEON on aarch64, SIMD128 on wasm32 built
//! with `-C target-feature=+simd128` (two `v128` per block, no FMA). [`Kernels`] is the
//! handle every kernel hangs off; it is built for the ISA picked once by [`Isa::selected`]
//! (`is_x86_feature_detected!` with `std`, `cfg(target_feature)` without,
//! `GHOST_FORCE_ISA=scalar|avx2|avx512|neon` override with `std`, always scalar under Miri),
//! or for a given ISA with [`Kernels::with_isa`], which fails if the CPU lacks it. FMA is
//! explicit on SIMD paths; the scalar path uses unfused `a*b+c`. Results therefore differ
//! across ISAs by rounding only; tests bound the difference by
//! `1e-5 * sqrt(terms) * max(1, |ref|)`.
//!
//! # Packed weights (ISA-independent)
//! ghostc packs at compile time with the same functions the tests use and embeds the bytes;
//! every ISA, scalar included, reads the same format.
//! * Pointwise 1x1 and FC ([`pack_pointwise`]): output channels in panels of up to
//!   [`PANEL_BLOCKS`] = 4 blocks (32 channels); panel `t` starts at `t*32*(K+1)` floats and
//!   holds `pw*8` biases, then `K` rows of `pw*8` weights (`pw` = blocks in the panel).
//!   Length `n_pad * (k_pad + 1)`.
//! * Depthwise ([`pack_depthwise`]): per block `[bias 8][k*k taps x 8]`.
//! * Dense conv ([`pack_conv`]): per output block `[bias 8][cin][kh][kw][8]`.
//! * Grouped conv ([`pack_conv_grouped`]): per output block
//!   `[bias 8][span in-blocks][kh][kw][8 in][8 out]`.
//! * Winograd 3x3 conv ([`pack_conv_winograd`]): 16 pointwise-packed matrices, one per
//!   position of the transformed 4x4 tile, the bias in position 5's.
//!
//! # Epilogues
//! Every conv-like kernel ends with, in registers: `out = act(acc + bias) + residual`, then
//! optionally `channel_sums[c] += out` over the pixels (a free global average pool for a
//! following squeeze-and-excitation). See [`Epilogue`], [`Activation`], [`GhostEpilogue`].
//! The SE gate is folded into the next 1x1's weights per inference with
//! [`scale_packed_pointwise`], so the gated tensor is never written.
//!
//! # Kernels
//! [`Kernels::pointwise`] (register-blocked GEMM: AVX-512VL 6 pixels x 32 channels, AVX2 and
//! NEON 6 x 16), [`Kernels::depthwise`] (3x3/5x5, stride 1/2, any padding, 2 rows x 8 columns
//! register blocks, peeled borders), [`Kernels::ghost`] (fused primary 1x1 + cheap depthwise,
//! row-band streaming, residual with a ring of pre-add rows; [`Kernels::ghost_gated`] adds
//! GhostNetV2's DFC gate in its store epilogues, [`Kernels::dfc_gate`] is the stand-alone gate),
//! [`Kernels::conv`] (the stem, NCHW or NCHW8c input), [`Kernels::conv_grouped`] (grouped or
//! dense, NCHW8c input, any kernel, stride and dilation, register-tiled),
//! [`Kernels::conv_winograd`] (dense 3x3 stride 1 by Winograd F(2x2, 3x3) on the pointwise
//! GEMM) and
//! [`Kernels::conv_general`] (scalar fallback),
//! [`Kernels::fc`] (GEMV), [`Kernels::se_gate`], [`Kernels::global_avg_pool`],
//! [`Kernels::pool`], [`Kernels::binary`]/[`Kernels::channel_assign`] (elementwise with
//! per-channel broadcast), [`Kernels::resize`], [`Kernels::upsample2x_nearest`],
//! [`Kernels::softmax`], [`Kernels::channel_norm`] (LayerNorm over each pixel's channels,
//! ConvNeXt's).
//!
//! # Int8 kernels
//! Quantized tensors use the same NCHW8c blocking with one `u8` per element (ONNX `int8`
//! tensors are stored offset by 128), `s8` weights with per-output-channel scales, `i32`
//! biases and `i32` accumulators; epilogues requantize exactly as ONNX `QLinearConv` (`f32`
//! scale multiply, round half to even, zero point, saturation to `[min, max]`, optional
//! quantized residual): [`Kernels::pointwise_u8`] (AVX-512 VNNI `vpdpbusd`, exact AVX2
//! `vpmaddubsw` split), [`Kernels::depthwise_u8`] (exact integer sums in `f32` FMAs; with
//! [`Kernels::depthwise_u8_concat`] it writes a Ghost module's concatenation),
//! [`Kernels::quantize_u8`] / [`Kernels::dequantize_u8`] at the boundaries,
//! [`Kernels::concat_u8`] (channel concatenation, requantizing), [`Kernels::add_u8`] (residual
//! sum), [`Kernels::scale_channels_u8`] (SE gate), [`Kernels::fake_quantize_u8`] (a quantized
//! input's round trip), [`Kernels::global_avgpool_u8`] (SE squeeze), [`Kernels::table_u8`] (an
//! activation as a 256-entry table); [`Par`] splits the first four families, the others run
//! on the calling thread. Every path (VNNI, AVX2, plain NEON, SIMD128) is bit-identical to the
//! scalar reference ([`Kernels::int8_path`] names the one in use). Layout, format and semantics:
//! [`kernels::qpointwise`], [`kernels::qdepthwise`], [`kernels::quantize`].
//!
//! # Safety model
//! The public API is safe. Each entry point checks every slice length and shape parameter
//! once, returning [`Error`] (naming the argument, expected and actual length) before touching
//! memory; then it builds a struct of raw pointers and calls the ISA body. Inside, every
//! `unsafe` block carries a `// SAFETY:` comment tying it to those checks, and every unsafe
//! function documents its contract under `# Safety`. Outputs are `&mut` borrows, so they
//! cannot alias inputs. The scalar path and the safe API run under Miri (see README.md).
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod arch;
mod error;
pub mod glue;
mod isa;
pub mod kernels;
mod model;
mod par;
#[cfg(feature = "std")]
pub mod peak;
mod prefault;
#[cfg(feature = "std")]
mod team;

pub use error::Error;
pub use isa::{Isa, Kernels};
pub use kernels::pointwise::{
    pack_pointwise, pointwise_packed_len, scale_packed_pointwise, PointwiseShape, PANEL_BLOCKS,
};
pub use model::CompiledModel;
#[cfg(feature = "std")]
pub use model::{AlignedScratch, WithScratch};
pub use par::{
    par_images, par_images_io, part_range, Fork, ImageFn, ImageIoFn, Par, Serial, MIN_SPLIT_MACS,
};
pub use prefault::prefault_weights;
#[cfg(feature = "std")]
pub use team::Team;

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
    /// `1 / (1 + e^-x)`, by the vector `exp` (within 2 ulp; 0 below `x = -88.72`).
    Sigmoid,
    /// SiLU (Swish), `x * sigmoid(x)` (ONNX exports it as `Mul(x, Sigmoid(x))`), computed as
    /// `x / (1 + e^-x)` within 2 ulp.
    Silu,
    /// GELU, exact (erf) form: `x * (1 + erf(x / sqrt(2))) / 2` (ONNX `Gelu`, or the
    /// `Div`/`Erf`/`Add`/`Mul` chain PyTorch exports), computed as `max(x, 0) - |x| Phi(-|x|)`
    /// with the normal tail `Phi(-m)` from one `exp`, a division and a degree-9 polynomial.
    /// Within `2e-7 * max(1, |x|)` absolute over the whole range (measured: see
    /// `arch::math`), and to a few ulp relative on the negative tail down to `x = -13` (where
    /// results reach `1e-37`; below, they flush to `-0`); NaN propagates, `gelu(inf) = inf`,
    /// `gelu(-inf) = 0`.
    Gelu,
    /// Mish, `x * tanh(softplus(x))` (ONNX `Mish`, or the `Softplus`/`Tanh`/`Mul` chain
    /// PyTorch exports before opset 18), from one `exp` as `x t / (t + 2)` with
    /// `t = e^x (e^x + 2)` (see `arch::math`).
    Mish,
}

/// Read-only view of an NCHW8c tensor (one image): the kernel reads its blocks starting at
/// `block_offset`. The pixel count comes from the kernel's shape. Element type `f32`, or `u8`
/// for the int8 kernels ([`kernels::qpointwise`]).
#[derive(Clone, Copy, Debug)]
pub struct Src<'a, T = f32> {
    /// The whole tensor, `[blocks][H][W][8]`.
    pub data: &'a [T],
    /// First block the kernel reads.
    pub block_offset: usize,
}

impl<'a, T> Src<'a, T> {
    /// View starting at block 0.
    pub fn new(data: &'a [T]) -> Self {
        Src {
            data,
            block_offset: 0,
        }
    }
    /// View starting at block `block_offset`.
    pub fn at(data: &'a [T], block_offset: usize) -> Self {
        Src { data, block_offset }
    }
}

/// Writable view of an NCHW8c tensor (one image): the kernel writes its blocks starting at
/// `block_offset`, so a concat along channels costs nothing.
#[derive(Debug)]
pub struct Dst<'a, T = f32> {
    /// The whole tensor, `[blocks][H][W][8]`.
    pub data: &'a mut [T],
    /// First block the kernel writes.
    pub block_offset: usize,
}

impl<'a, T> Dst<'a, T> {
    /// View starting at block 0.
    pub fn new(data: &'a mut [T]) -> Self {
        Dst {
            data,
            block_offset: 0,
        }
    }
    /// View starting at block `block_offset`.
    pub fn at(data: &'a mut [T], block_offset: usize) -> Self {
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

pub use kernels::channel_norm::ChannelNormShape;
pub use kernels::col2im::{col2im, col2im_fused, ConvTransposeShape};
pub use kernels::conv::{conv_packed_len, pack_conv, ConvShape, GeneralConvShape, InputLayout};
pub use kernels::depthwise::{depthwise_packed_len, pack_depthwise, DepthwiseShape};
pub use kernels::depthwise_general::{
    depthwise_general_packed_len, pack_depthwise_general, DepthwiseGeneralShape,
};
pub use kernels::dfc::DfcShape;
pub use kernels::dfl::DflShape;
pub use kernels::elementwise::BinaryOp;
pub use kernels::ghost::{
    ghost_gated_scratch_len, ghost_scratch_len, GhostEpilogue, GhostGate, GhostShape,
};
pub use kernels::grouped::{grouped_packed_len, pack_conv_grouped, GroupedConvShape};
pub use kernels::layout::{nchw8c_len, nchw8c_to_nchw, nchw_to_nchw8c};
pub use kernels::pool::{PoolKind, PoolShape};
pub use kernels::pwdw::{pwdw_scratch_len, PwDwShape};
pub use kernels::qbinary::U8BinaryParams;
pub use kernels::qconcat::{ConcatU8Shape, U8Requant};
pub use kernels::qdepthwise::{
    depthwise_u8_concat_buffer_len, depthwise_u8_packed_len, pack_depthwise_u8, GhostConcatU8,
};
pub use kernels::qpointwise::{pack_pointwise_u8, pointwise_u8_packed_len, QResidual, Requant};
pub use kernels::qpool::PoolU8Params;
pub use kernels::qstem::{pack_stem_u8, stem_u8_packed_len, StemShape};
pub use kernels::resize::{CoordMode, NearestMode, ResizeMode, ResizeShape};
pub use kernels::se::{SeActivations, SeShape};
pub use kernels::softmax::expf;
pub use kernels::vmath::Transcendental;
pub use kernels::winograd::{
    pack_conv_winograd, winograd_packed_len, winograd_scratch_len, WinogradShape,
};
