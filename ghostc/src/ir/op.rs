//! The closed set of operations the IR speaks, with typed attributes.
//!
//! Ops are in canonical form: every structural parameter that ONNX may pass as an input tensor
//! (Slice bounds, Reshape's shape, Clip bounds, Resize scales, Pad amounts, axes) has been
//! resolved at import time into an attribute, so a node's inputs are only data (activations and
//! weights). Flatten, Squeeze and Unsqueeze are all `Reshape` with a static target shape.
//! ONNX spellings live in `onnx/`; this module never sees them.

use super::tensor::DType;

/// Activation functions that can sit in a kernel epilogue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    /// `min(max(x, lo), hi)` (ONNX Clip; ReLU6 is `Clamp { lo: 0, hi: 6 }`); NaN propagates.
    /// Spelled as `ghost_runtime::Activation::Clamp`, which lowering passes it to.
    Clamp {
        lo: f32,
        hi: f32,
    },
    /// `clamp(alpha * x + beta, 0, 1)`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * clamp(x / 6 + 0.5, 0, 1)`.
    HardSwish,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// SiLU (Swish), `x * sigmoid(x)`: ONNX exports it as `Mul(x, Sigmoid(x))`, which
    /// `fuse_activation` recognizes.
    Silu,
    LeakyRelu {
        alpha: f32,
    },
    Tanh,
    /// GELU, `x / 2 * (1 + erf(x / sqrt 2))` (the exact form; PyTorch's default). Exported as
    /// `Div -> Erf -> Add 1 -> Mul x -> Mul 0.5` (or opset 20's `Gelu`), which
    /// `fuse_activation` recognizes.
    Gelu,
    /// Mish, `x * tanh(softplus(x))`: ONNX `Mish` (opset 18), or `Mul(x, Tanh(Softplus(x)))`
    /// from older exports, which `fuse_activation` recognizes.
    Mish,
}

/// The input channel DepthToSpace (`c_out` output channels, block size `b`) reads for output
/// channel `c` at offset `(i, j)` of its `b x b` block: `(i * b + j) * c_out + c` in DCR mode,
/// `(c * b + i) * b + j` in CRD mode.
pub fn depth_to_space_channel(
    c_out: usize,
    b: usize,
    crd: bool,
    c: usize,
    i: usize,
    j: usize,
) -> usize {
    if crd {
        (c * b + i) * b + j
    } else {
        (i * b + j) * c_out + c
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    Equal,
    Less,
    Greater,
    /// ONNX PRelu: `a * b` where `a < 0`, else `a`; the slope `b` broadcasts to `a`'s shape
    /// (one way: the output has `a`'s shape).
    PRelu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Sqrt,
    Reciprocal,
    Exp,
    Abs,
    Floor,
    Ceil,
    Not,
    Erf,
    /// `ln(1 + e^x)`; lowered only inside a Mish (`fuse_activation`).
    Softplus,
}

/// 2-D convolution, NCHW. Inputs: x, weight `[cout, cin/group, kh, kw]`, optional bias `[cout]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`, auto_pad already resolved.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
}

/// 2-D transposed convolution (ONNX ConvTranspose), NCHW, with its epilogue:
/// `y = act(conv_transpose(x, w) + b)`. Inputs: x, weight `[cin, cout/group, kh, kw]`,
/// optional bias `[cout]`. Input pixel `(iy, ix)` and tap `(ky, kx)` add to output pixel
/// `(iy * sy + ky * dy - pad_top, ix * sx + kx * dx - pad_left)`; the output is
/// `(in - 1) * s + (k - 1) * d + 1 + output_padding - pad_begin - pad_end` per spatial dim.
/// The importer resolves `auto_pad` and `output_shape` into `conv.pads` and `output_padding`;
/// `act` is `None` until `passes::FuseActivation` absorbs a following activation.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose {
    /// Kernel, strides, dilations, group, and the pads cropped from the full output
    /// (`[top, left, bottom, right]`).
    pub conv: Conv,
    /// Extra rows and columns added at the bottom and right of the output (`[h, w]`).
    pub output_padding: [usize; 2],
    pub act: Option<Activation>,
}

/// Inference-mode batch normalization over axis 1. Inputs: x, scale, bias, mean, var.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    pub epsilon: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Avg,
    Max,
}

/// Average or max pooling over the two spatial dims of an NCHW tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`, auto_pad and ceil_mode already resolved (ceil_mode adds
    /// to bottom/right as needed, and `count_include_pad` only counts the original pads).
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    Mean,
    Sum,
    Max,
    Min,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reduce {
    pub kind: ReduceKind,
    /// Normalized (non-negative), sorted, unique.
    pub axes: Vec<usize>,
    pub keepdims: bool,
}

/// `alpha * op(A) @ op(B) + beta * C`. Inputs: a, b, optional c (unidirectionally broadcast).
#[derive(Clone, Debug, PartialEq)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// Per-axis slice with bounds already normalized against the input shape:
/// `0 <= start`, clamped `end`, `step != 0` (a negative step walks backwards, `end` may then be -1
/// meaning "through index 0").
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub axes: Vec<usize>,
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub steps: Vec<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordTransform {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNearest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// Resize of a tensor to `sizes`. `scales` holds the per-axis scale the model gave (or
/// out/in when it gave sizes), as ONNX uses it for coordinate transforms.
#[derive(Clone, Debug, PartialEq)]
pub struct Resize {
    pub sizes: Vec<usize>,
    pub mode: ResizeMode,
    pub coord: CoordTransform,
    pub nearest: NearestMode,
    pub scales: Vec<f32>,
    pub cubic_coeff_a: f32,
    pub exclude_outside: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pad {
    /// `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]` over all axes, as ONNX orders them.
    /// Negative values crop.
    pub pads: Vec<i64>,
    pub mode: PadMode,
    pub value: f32,
}

impl Pad {
    /// `[top, left, bottom, right]` when this is a constant zero pad of a rank-4 tensor's H and
    /// W only (none of N or C, nothing cropped): what a conv's own padding computes.
    pub fn zero_hw(&self) -> Option<[usize; 4]> {
        let [0, 0, t, l, 0, 0, b, r] = self.pads[..] else {
            return None;
        };
        let ok = self.mode == PadMode::Constant
            && self.value == 0.0
            && [t, l, b, r].iter().all(|&v| v >= 0);
        ok.then(|| [t, l, b, r].map(|v| v as usize))
    }
}

/// Conv (BatchNorm already folded into its weights and bias) with its epilogue:
/// `y = act(conv(x, w) + b) + residual`. Inputs: x, w, b, then the residual when `residual`.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedConv {
    pub conv: Conv,
    pub act: Option<Activation>,
    pub residual: bool,
}

/// A whole Ghost module as one op:
/// `p = act_p(conv_p(x) + b_p)`, `q = act_q(dwconv_q(p) + b_q)`,
/// `y = concat(p, q)[:, :out_channels] + residual`.
/// Inputs: x, w_p, b_p, w_q, b_q, then the residual when `residual`. The cheap conv is
/// depthwise-like (`group == channels of p`) with stride 1 and "same" padding, so p and q share
/// the spatial size.
#[derive(Clone, Debug, PartialEq)]
pub struct Ghost {
    pub primary: Conv,
    pub primary_act: Option<Activation>,
    pub cheap: Conv,
    pub cheap_act: Option<Activation>,
    pub out_channels: usize,
    pub residual: bool,
}

/// Squeeze-and-excitation: `s = gate(W2 act(W1 mean_hw(x) + b1) + b2)`, `y = x * s` per
/// channel. Inputs: x, w1 `[r, c]`, b1 `[r]`, w2 `[c, r]`, b2 `[c]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SqueezeExcite {
    pub act: Activation,
    pub gate: Activation,
}

/// GhostNetV2's DFC attention applied to `y`: the gate `a = gate(conv_n(..conv_1(pool(x))))`
/// (each conv with its bias, no activation between them; in GhostNetV2 a 1x1 conv, then a
/// depthwise 1x5 and a depthwise 5x1 at the pooled resolution), then
/// `y * resize(a)`, the nearest resize mapping the gate onto `y`'s spatial size.
/// Inputs: y, x, then `w_i`, `b_i` for each conv.
#[derive(Clone, Debug, PartialEq)]
pub struct DfcGate {
    pub pool: Pool,
    pub convs: Vec<Conv>,
    pub gate: Activation,
    pub resize: Resize,
}

/// Affine quantization of one tensor: `real = scale * (q - zero_point)`, ONNX's
/// QuantizeLinear / DequantizeLinear convention. Validated on import (see
/// [`QuantParams::check`]): scales positive and finite, zero points within `dtype`, and a
/// per-axis pair as long as the tensor's `axis` dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantParams {
    /// The integer type of the quantized tensor: u8 or i8 (activations, weights), i32 (biases).
    pub dtype: DType,
    /// One value (per tensor), or one per index of `axis`.
    pub scale: Vec<f32>,
    /// As long as `scale`.
    pub zero_point: Vec<i64>,
    /// The per-channel axis; `None` for per-tensor parameters.
    pub axis: Option<usize>,
}

impl QuantParams {
    /// Per-tensor parameters.
    pub fn per_tensor(dtype: DType, scale: f32, zero_point: i64) -> Self {
        QuantParams {
            dtype,
            scale: vec![scale],
            zero_point: vec![zero_point],
            axis: None,
        }
    }

    /// The inclusive range of `dtype`, for the integer types a quantized tensor may have.
    pub fn range(dtype: DType) -> Option<(i64, i64)> {
        match dtype {
            DType::U8 => Some((0, 255)),
            DType::I8 => Some((-128, 127)),
            DType::U16 => Some((0, 65535)),
            DType::I16 => Some((-32768, 32767)),
            DType::I32 => Some((i32::MIN as i64, i32::MAX as i64)),
            _ => None,
        }
    }

    /// The (scale, zero point) applying to index `i` along the axis (ignored per tensor).
    pub fn at(&self, i: usize) -> (f32, i64) {
        match self.axis {
            None => (self.scale[0], self.zero_point[0]),
            Some(_) => (self.scale[i], self.zero_point[i]),
        }
    }

    pub fn is_per_tensor(&self) -> bool {
        self.axis.is_none()
    }

    /// Checks the parameters against a tensor of `shape`; the message names the offending value.
    pub fn check(&self, shape: &[usize]) -> Result<(), String> {
        let Some((lo, hi)) = Self::range(self.dtype) else {
            return Err(format!(
                "quantized type {} is not an integer type",
                self.dtype
            ));
        };
        if self.scale.is_empty() || self.scale.len() != self.zero_point.len() {
            return Err(format!(
                "{} scales and {} zero points",
                self.scale.len(),
                self.zero_point.len()
            ));
        }
        if let Some((i, s)) = self
            .scale
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(format!("scale[{i}] = {s} is not a positive finite number"));
        }
        if let Some((i, z)) = self
            .zero_point
            .iter()
            .enumerate()
            .find(|(_, z)| !(lo..=hi).contains(*z))
        {
            return Err(format!(
                "zero_point[{i}] = {z} is out of range for {} ({lo}..={hi})",
                self.dtype
            ));
        }
        match self.axis {
            None if self.scale.len() != 1 => Err(format!(
                "per-tensor parameters with {} scales",
                self.scale.len()
            )),
            Some(a) if a >= shape.len() => {
                Err(format!("axis {a} is out of range for rank {}", shape.len()))
            }
            Some(a) if shape[a] != self.scale.len() => Err(format!(
                "{} scales along axis {a}, but that dimension of [{}] is {}",
                self.scale.len(),
                super::fmt_shape(shape),
                shape[a]
            )),
            _ => Ok(()),
        }
    }
}

/// Quantized 2-D convolution over integer tensors (ONNX QLinearConv, or a `DQ -> Conv -> Q`
/// chain folded by `passes::fold_quantize`): `y = Q_y(act(x_s * w_s[o] * acc))` with
/// `acc = sum (x - x_zp)(w - w_zp[o]) + bias[o]` exact in integers. Inputs: x (`x.dtype`),
/// w (`w.dtype`, `[cout, cin/group, kh, kw]`, per-tensor or per-output-channel along axis 0),
/// optional bias (i32 `[cout]`, scale `x_s * w_s[o]`, zero point 0).
#[derive(Clone, Debug, PartialEq)]
pub struct QConv {
    pub conv: Conv,
    pub x: QuantParams,
    pub w: QuantParams,
    pub y: QuantParams,
    pub act: Option<Activation>,
}

/// Quantized matrix product (ONNX QLinearMatMul, com.microsoft QGemm): numpy `matmul` shapes
/// (`b` transposed first when `trans_b`, then 2-D), `a` per tensor, `b` per tensor or per
/// output column (axis 1, or 0 when `trans_b`). Inputs: a, b, optional bias (i32 `[n]`, scale
/// `a_s * b_s[j]`). Requantized like [`QConv`].
#[derive(Clone, Debug, PartialEq)]
pub struct QMatMul {
    pub a: QuantParams,
    pub b: QuantParams,
    pub y: QuantParams,
    pub trans_b: bool,
}

/// Quantized elementwise binary op (ONNX com.microsoft QLinearAdd, QLinearMul, or a
/// `Q(op(DQ(a), DQ(b)))` chain folded by `passes::fold_quantize`): inputs dequantized, combined
/// in float, the result quantized, rounded as `form` says. Inputs: a, b (numpy broadcasting).
#[derive(Clone, Debug, PartialEq)]
pub struct QBinary {
    pub op: BinaryOp,
    pub a: QuantParams,
    pub b: QuantParams,
    pub y: QuantParams,
    pub form: QBinaryForm,
}

/// The `f32` expression a [`QBinary`] rounds (the two can differ by one step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QBinaryForm {
    /// ONNX Runtime's QLinearAdd / QLinearMul: `(a - za) * (sa / sy) + (b - zb) * (sb / sy)`,
    /// or `(a - za)(b - zb) * (sa * sb / sy)`.
    Ratio,
    /// The QDQ graph's: `((a - za) * sa + (b - zb) * sb) / sy`, or
    /// `((a - za) * sa) * ((b - zb) * sb) / sy`.
    Dequantized,
}

/// An operation. Inputs and outputs are listed on the node; this holds only attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Conv(Conv),
    ConvTranspose(ConvTranspose),
    BatchNorm(BatchNorm),
    Activation(Activation),
    Binary(BinaryOp),
    Unary(UnaryOp),
    /// Inputs: any number, same rank, equal except on `axis`.
    Concat {
        axis: usize,
    },
    Slice(Slice),
    /// One output per entry of `sizes`.
    Split {
        axis: usize,
        sizes: Vec<usize>,
    },
    GlobalAveragePool,
    Pool(Pool),
    Reduce(Reduce),
    Gemm(Gemm),
    MatMul,
    /// Row-major reinterpretation to `shape` (Flatten, Squeeze, Unsqueeze too).
    Reshape {
        shape: Vec<usize>,
    },
    Transpose {
        perm: Vec<usize>,
    },
    Identity,
    Resize(Resize),
    Softmax {
        axis: usize,
    },
    /// ONNX LayerNormalization: normalizes over the dims `axis..` (mean and biased variance
    /// of those elements), then `* scale + bias` (both broadcast to the normalized dims).
    /// Inputs: x, scale, optional bias.
    LayerNorm {
        axis: usize,
        epsilon: f32,
    },
    Pad(Pad),
    /// Inputs: data, indices (any integer tensor, negative indices allowed).
    Gather {
        axis: usize,
    },
    Cast {
        to: DType,
    },
    /// Broadcast to `shape` (already combined with the input's shape as ONNX Expand does).
    Expand {
        shape: Vec<usize>,
    },
    /// Inputs: condition, x, y (broadcast).
    Where,
    /// Shape of the input as a 1-D i64 tensor, dims `[start, end)`. Always folds.
    Shape {
        start: usize,
        end: usize,
    },
    /// A tensor of `shape` filled with `value`.
    ConstantOfShape {
        shape: Vec<usize>,
        dtype: DType,
        value: f64,
    },
    /// Inputs: start, limit, delta scalars. Always folds.
    Range,

    /// `q = saturate(round_half_even(x / scale) + zero_point)`; float in, `q.dtype` out.
    Quantize(QuantParams),
    /// `x = (q - zero_point) * scale`; `q.dtype` in, f32 out.
    Dequantize(QuantParams),
    QConv(QConv),
    QMatMul(QMatMul),
    QBinary(QBinary),
    /// Concatenation of quantized tensors (com.microsoft QLinearConcat): each input whose
    /// parameters differ from `y` is requantized (dequantize, quantize) first. One entry of
    /// `x` per input.
    QConcat {
        axis: usize,
        x: Vec<QuantParams>,
        y: QuantParams,
    },
    /// Quantized mean over H and W of an NCHW tensor (com.microsoft QLinearGlobalAveragePool).
    QGlobalAveragePool {
        x: QuantParams,
        y: QuantParams,
    },
    /// Quantized activation (com.microsoft QLinearSigmoid...): dequantize, activate, quantize.
    QActivation {
        act: Activation,
        x: QuantParams,
        y: QuantParams,
    },

    // Fused ops, produced by passes; never by the importer.
    FusedConv(FusedConv),
    Ghost(Ghost),
    SqueezeExcite(SqueezeExcite),
    DfcGate(DfcGate),
    /// ShuffleNet's channel shuffle of a rank-4 `[N, C, H, W]` tensor: the channels viewed as
    /// `[groups, C / groups]` and transposed, so output channel `i * groups + j` is input
    /// channel `j * (C / groups) + i`. From `Reshape -> Transpose -> Reshape`
    /// (`passes::ChannelShuffle`).
    ChannelShuffle {
        groups: usize,
    },
    /// ONNX DepthToSpace of a rank-4 `[N, C, H, W]` tensor with block size `b`:
    /// `[N, C / b^2, H * b, W * b]`, output channel `c` at offset `(i, j)` inside each `b x b`
    /// block read from input channel [`depth_to_space_channel`] (DCR, ONNX's default, or CRD,
    /// PyTorch's PixelShuffle).
    DepthToSpace {
        blocksize: usize,
        crd: bool,
    },
    /// A detector head's distribution integral (ultralytics' DFL): x `[N, G * bins, L]`, w
    /// `[bins]`; `y[n, g, l] = sum_k w[k] softmax_k(x[n, g * bins + k, l])`, `[N, G, L]`. From
    /// `Reshape -> Transpose -> Softmax -> Conv 1x1 -> Reshape` (`passes::FuseDfl`).
    Dfl {
        bins: usize,
    },
    /// Fully connected `y = act(x @ W^T + b)`, x `[n, k]`, W `[m, k]`. Inputs: x, w, b.
    Linear {
        act: Option<Activation>,
    },
    /// Layer normalization over the channels (axis 1) of `[N, C, ..]`, at every pixel:
    /// `y = (x - mean) / sqrt(var + epsilon) * gamma[c] + beta[c]`, the biased variance.
    /// Inputs: x, gamma `[C]`, beta `[C]`. ConvNeXt's LayerNorm2d, from a channels-last
    /// `LayerNormalization` between Transposes (`passes::ChannelsFirst`).
    ChannelNorm {
        epsilon: f32,
    },
}

impl Op {
    /// Whether the op reads or writes quantized integers (the ops the planner does not lower
    /// yet).
    pub fn is_quantized(&self) -> bool {
        matches!(
            self,
            Op::Quantize(_)
                | Op::Dequantize(_)
                | Op::QConv(_)
                | Op::QMatMul(_)
                | Op::QBinary(_)
                | Op::QConcat { .. }
                | Op::QGlobalAveragePool { .. }
                | Op::QActivation { .. }
        )
    }

    /// Short name for printing, e.g. `conv`, `relu`, `add`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "conv",
            Op::ConvTranspose(_) => "conv_transpose",
            Op::BatchNorm(_) => "batch_norm",
            Op::Activation(a) => match a {
                Activation::Relu => "relu",
                Activation::Clamp { .. } => "clip",
                Activation::HardSigmoid { .. } => "hard_sigmoid",
                Activation::HardSwish => "hard_swish",
                Activation::Sigmoid => "sigmoid",
                Activation::Silu => "silu",
                Activation::LeakyRelu { .. } => "leaky_relu",
                Activation::Tanh => "tanh",
                Activation::Gelu => "gelu",
                Activation::Mish => "mish",
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
                BinaryOp::Pow => "pow",
                BinaryOp::Max => "max",
                BinaryOp::Min => "min",
                BinaryOp::Equal => "equal",
                BinaryOp::Less => "less",
                BinaryOp::Greater => "greater",
                BinaryOp::PRelu => "prelu",
            },
            Op::Unary(u) => match u {
                UnaryOp::Neg => "neg",
                UnaryOp::Sqrt => "sqrt",
                UnaryOp::Reciprocal => "reciprocal",
                UnaryOp::Exp => "exp",
                UnaryOp::Abs => "abs",
                UnaryOp::Floor => "floor",
                UnaryOp::Ceil => "ceil",
                UnaryOp::Not => "not",
                UnaryOp::Erf => "erf",
                UnaryOp::Softplus => "softplus",
            },
            Op::Concat { .. } => "concat",
            Op::Slice(_) => "slice",
            Op::Split { .. } => "split",
            Op::GlobalAveragePool => "global_avg_pool",
            Op::Pool(p) => match p.kind {
                PoolKind::Avg => "avg_pool",
                PoolKind::Max => "max_pool",
            },
            Op::Reduce(r) => match r.kind {
                ReduceKind::Mean => "reduce_mean",
                ReduceKind::Sum => "reduce_sum",
                ReduceKind::Max => "reduce_max",
                ReduceKind::Min => "reduce_min",
            },
            Op::Gemm(_) => "gemm",
            Op::MatMul => "matmul",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Identity => "identity",
            Op::Resize(_) => "resize",
            Op::Softmax { .. } => "softmax",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Pad(_) => "pad",
            Op::Gather { .. } => "gather",
            Op::Cast { .. } => "cast",
            Op::Expand { .. } => "expand",
            Op::Where => "where",
            Op::Shape { .. } => "shape",
            Op::ConstantOfShape { .. } => "constant_of_shape",
            Op::Range => "range",
            Op::Quantize(_) => "quantize",
            Op::Dequantize(_) => "dequantize",
            Op::QConv(_) => "qconv",
            Op::QMatMul(_) => "qmatmul",
            Op::QBinary(b) => match b.op {
                BinaryOp::Mul => "qmul",
                _ => "qadd",
            },
            Op::QConcat { .. } => "qconcat",
            Op::QGlobalAveragePool { .. } => "qglobal_avg_pool",
            Op::QActivation { .. } => "qactivation",
            Op::FusedConv(_) => "fused_conv",
            Op::Ghost(_) => "ghost",
            Op::SqueezeExcite(_) => "squeeze_excite",
            Op::DfcGate(_) => "dfc_gate",
            Op::ChannelShuffle { .. } => "channel_shuffle",
            Op::DepthToSpace { .. } => "depth_to_space",
            Op::Dfl { .. } => "dfl",
            Op::Linear { .. } => "linear",
            Op::ChannelNorm { .. } => "channel_norm",
        }
    }

    /// Allowed number of inputs (inclusive range).
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Conv(_) | Op::ConvTranspose(_) => (2, 3),
            Op::BatchNorm(_) => (5, 5),
            Op::Binary(_) => (2, 2),
            Op::Concat { .. } => (1, usize::MAX),
            Op::QConcat { x, .. } => (x.len().max(1), x.len().max(1)),
            Op::Gemm(_) => (2, 3),
            Op::MatMul | Op::Gather { .. } | Op::QBinary(_) | Op::Dfl { .. } => (2, 2),
            Op::QConv(_) | Op::QMatMul(_) => (2, 3),
            Op::Where | Op::Range => (3, 3),
            Op::ConstantOfShape { .. } => (0, 0),
            Op::FusedConv(f) => (3 + f.residual as usize, 3 + f.residual as usize),
            Op::Ghost(g) => (5 + g.residual as usize, 5 + g.residual as usize),
            Op::SqueezeExcite(_) => (5, 5),
            Op::DfcGate(d) => {
                let n = 2 + 2 * d.convs.len();
                (n, n)
            }
            Op::Linear { .. } | Op::ChannelNorm { .. } => (3, 3),
            Op::LayerNorm { .. } => (2, 3),
            _ => (1, 1),
        }
    }
}
