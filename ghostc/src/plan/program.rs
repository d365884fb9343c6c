//! The lowered program: a flat list of ghost-runtime calls over one scratch arena and one
//! weight blob, with every shape, offset and length a number. Code generation prints it; nothing
//! downstream looks at the graph again.
//!
//! A [`Kernel`] holds the runtime's own argument types (`ghost_runtime::Activation`,
//! `DepthwiseShape`, `CoordMode`, ...), so a runtime change shows up here as a compile error
//! instead of a silent mismatch; only what the runtime receives as slices is plan-specific:
//! arena locations ([`Loc`], [`View`]) and weight ranges ([`WRange`]).
//!
//! [`Program`]'s `Display` is its text form: one line per step, used by the snapshot tests
//! (`ghostc/tests/out/plan/`) so a lowering change shows as a diff.
//!
//! Deliberately not done here: printing Rust (codegen does that from these values) and any
//! decision about layouts or fusions (lowering makes them).

use std::fmt;

use ghost_runtime::glue::Unary;
use ghost_runtime::{
    Activation, BinaryOp, ChannelNormShape, ConcatU8Shape, ConvShape, ConvTransposeShape,
    CoordMode, DepthwiseGeneralShape, DepthwiseShape, DfcShape, DflShape, GhostConcatU8,
    GhostShape, GroupedConvShape, PointwiseShape, PoolKind, PoolShape, PoolU8Params, ResizeMode,
    ResizeShape, SeActivations, SeShape, StemShape, U8BinaryParams, U8Requant, WinogradShape,
};

use super::blob::WeightBlob;

/// Where a step reads or writes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loc {
    /// The user's slice of model input `i` (graph order) for the current image (plain NCHW).
    Input(usize),
    /// The user's slice of model output `i` for the current image.
    Output(usize),
    /// Arena buffer, resolved to an offset by the memory plan.
    Buf(usize),
}

/// A block view: tensor location plus the first channel block the kernel touches.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub loc: Loc,
    pub block: usize,
}

impl View {
    pub fn at(loc: Loc, block: usize) -> Self {
        View { loc, block }
    }
}

/// A range of the weight blob, in f32 elements.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WRange {
    pub offset: usize,
    pub len: usize,
}

/// What a conv-like kernel does before storing: `ghost_runtime::Epilogue` with arena locations
/// in place of the slices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epilogue {
    pub activation: Activation,
    pub residual: Option<View>,
    /// Per-channel sums of the stored values (a following squeeze-excite's squeeze).
    pub channel_sums: Option<Loc>,
}

impl Epilogue {
    /// Just an activation.
    pub fn act(activation: Activation) -> Self {
        Epilogue {
            activation,
            residual: None,
            channel_sums: None,
        }
    }
}

/// One runtime call. Field names follow the runtime's argument names.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// `nchw_to_nchw8c` of the user input.
    ToBlocked {
        channels: usize,
        pixels: usize,
        src: Loc,
        dst: Loc,
    },
    /// Gather logical channels (`phys[c]` is the lane of channel `c`) out of a blocked tensor
    /// into the user's NCHW output.
    FromBlocked {
        phys: Vec<usize>,
        pixels: usize,
        src: Loc,
        dst: Loc,
    },
    Pointwise {
        w: WRange,
        /// Use these packed weights from the arena instead of `w` (an SE gate folded in).
        w_scaled: Option<Loc>,
        shape: PointwiseShape,
        src: View,
        dst: View,
        epilogue: Epilogue,
    },
    Depthwise {
        w: WRange,
        shape: DepthwiseShape,
        src: View,
        dst: View,
        epilogue: Epilogue,
    },
    /// Depthwise conv of any kernel shape, stride and dilation (`depthwise_general`; weights
    /// from `pack_depthwise_general`).
    DepthwiseGeneral {
        w: WRange,
        shape: DepthwiseGeneralShape,
        src: View,
        dst: View,
        epilogue: Epilogue,
    },
    /// A DFC attention gate applied in place (`dfc_gate`): `gate` (quarter resolution, before
    /// its sigmoid) becomes its sigmoid, then `y *= gate` nearest-upsampled.
    DfcGate {
        shape: DfcShape,
        gate: Loc,
        y: View,
    },
    /// A fused Ghost module (`ghost_runtime::GhostEpilogue`'s fields inline).
    Ghost {
        pw: WRange,
        pw_scaled: Option<Loc>,
        dw: WRange,
        shape: GhostShape,
        src: View,
        dst: View,
        primary: Activation,
        cheap: Activation,
        residual: Option<View>,
        channel_sums: Option<Loc>,
        scratch: Loc,
        /// The DFC attention gate applied in the module's epilogues (`ghost_gated`): the
        /// gate buffer (quarter resolution), its shape, and whether it holds its sigmoid
        /// already (taken in the last gate conv's epilogue) or still needs it.
        gate: Option<(Loc, DfcShape, bool)>,
    },
    /// Dense conv (`pack_conv`): NCHW8c dense-layout input, or the user's NCHW input
    /// (`shape.layout`).
    Conv {
        w: WRange,
        shape: ConvShape,
        src: View,
        dst: View,
        epilogue: Epilogue,
    },
    /// Register-tiled grouped (or dense) conv on NCHW8c (`pack_conv_grouped`): any kernel,
    /// stride and dilation.
    ConvGrouped {
        w: WRange,
        shape: GroupedConvShape,
        src: View,
        dst: View,
        epilogue: Epilogue,
    },
    /// Dense 3x3 stride-1 conv by Winograd F(2x2, 3x3) (`pack_conv_winograd`), with its own
    /// scratch buffer (`winograd_scratch_len`).
    ConvWinograd {
        w: WRange,
        shape: WinogradShape,
        src: View,
        dst: View,
        epilogue: Epilogue,
        scratch: Loc,
    },
    Fc {
        w: WRange,
        k_blocks: usize,
        n_blocks: usize,
        src: Loc,
        dst: Loc,
        act: Activation,
    },
    GlobalAvgPool {
        blocks: usize,
        pixels: usize,
        src: View,
        dst: Loc,
    },
    /// Squeeze-and-excitation gate from channel means (`inv_pixels` 1) or sums.
    SeGate {
        reduce: WRange,
        expand: WRange,
        shape: SeShape,
        inv_pixels: f32,
        acts: SeActivations,
        sums: Loc,
        scratch: Loc,
        gate: Loc,
    },
    /// `scale_packed_pointwise`: weights `w` with input channel k scaled by `scale[k]`.
    ScalePacked {
        w: WRange,
        k_pad: usize,
        n_pad: usize,
        scale: Loc,
        dst: Loc,
    },
    /// `out = act(a op b)` over `len` floats.
    Binary {
        op: BinaryOp,
        a: Loc,
        b: Loc,
        dst: Loc,
        len: usize,
        act: Activation,
    },
    /// A detection head's distribution integral (`Kernels::dfl`): `src` in the dense layout.
    Dfl {
        shape: DflShape,
        w: WRange,
        src: Loc,
        dst: Loc,
    },
    /// Layer normalization over the channels of each pixel (`Kernels::channel_norm`): `src`
    /// and `dst` in the dense layout, `gamma` and `beta` padded to whole blocks with zeros.
    ChannelNorm {
        shape: ChannelNormShape,
        gamma: WRange,
        beta: WRange,
        src: Loc,
        dst: Loc,
    },
    /// Concat along pixels: `dst[b][offset + p] = src[b][p]` for `blocks` blocks of
    /// `src_pixels` (`dst` has `dst_pixels` per block).
    CopyPixels {
        src: Loc,
        dst: Loc,
        blocks: usize,
        src_pixels: usize,
        dst_pixels: usize,
        offset: usize,
    },
    /// `dst = x op c` (`const_first`: `c op x`) over `len` floats, `c` a constant tensor in
    /// the blob laid out as `x` is (a broadcast constant expanded at compile time).
    BinaryConst {
        op: BinaryOp,
        x: Loc,
        c: WRange,
        const_first: bool,
        dst: Loc,
        len: usize,
    },
    /// In place: `x[c][p] = act(x[c][p] op v[c])`; `v` from the blob or the arena.
    ChannelAssign {
        op: BinaryOp,
        x: Loc,
        blocks: usize,
        pixels: usize,
        v: VecSrc,
        act: Activation,
    },
    /// In place elementwise nonlinearity over `len` floats.
    Unary {
        f: Unary,
        x: Loc,
        len: usize,
    },
    /// `dst[..len] = 0` (channel sums are accumulated, so their buffer starts at zero).
    Zero {
        dst: Loc,
        len: usize,
    },
    /// `dst[..len] = src[..len]`.
    Copy {
        src: Loc,
        dst: Loc,
        len: usize,
    },
    /// Copy lanes between two blocked layouts, one (from, to) lane pair per channel; `clear`
    /// zeroes the destination first so its padding lanes hold zeros.
    Remap {
        pairs: Vec<(usize, usize)>,
        pixels: usize,
        src: Loc,
        dst: Loc,
        dst_len: usize,
        clear: bool,
    },
    /// The gather of a transposed conv (`col2im_fused`): `cols`, the taps GEMM's output,
    /// summed into `dst`, each output row then given `post(act(row + bias))` while cached.
    Col2Im {
        shape: ConvTransposeShape,
        cols: Loc,
        dst: Loc,
        /// Per-channel bias, `blocks * 8` floats (zero on padding lanes).
        bias: WRange,
        act: Activation,
        /// A unary function after the activation (Tanh, Sigmoid, LeakyRelu: no epilogue form).
        post: Option<Unary>,
    },
    /// DepthToSpace from `h x w` to `(h * b) x (w * b)`: `b * b` groups of (from, to) lane
    /// pairs, one group per offset inside a `b x b` block (`glue::depth_to_space`).
    DepthToSpace {
        pairs: Vec<(usize, usize)>,
        h: usize,
        w: usize,
        b: usize,
        src: Loc,
        dst: Loc,
        dst_len: usize,
    },
    Pool {
        kind: PoolKind,
        shape: PoolShape,
        src: View,
        dst: View,
    },
    Resize {
        mode: ResizeMode,
        coord: CoordMode,
        shape: ResizeShape,
        src: View,
        dst: View,
    },
    Softmax {
        src: Loc,
        dst: Loc,
        len: usize,
    },
    /// `quantize_u8`: f32 NCHW8c to u8 NCHW8c (`zero_point` in u8 storage, see [`QRequant`]).
    Quantize {
        blocks: usize,
        pixels: usize,
        scale: f32,
        zero_point: u8,
        src: Loc,
        dst: Loc,
    },
    /// `fake_quantize_u8`: `len` plain f32 values through quantize and dequantize.
    FakeQuantize {
        scale: f32,
        zero_point: u8,
        len: usize,
        src: Loc,
        dst: Loc,
    },
    /// `dequantize_u8`: u8 NCHW8c to f32 NCHW8c.
    Dequantize {
        blocks: usize,
        pixels: usize,
        scale: f32,
        zero_point: u8,
        src: Loc,
        dst: Loc,
    },
    /// `concat_u8`: one input of an int8 channel concatenation written (requantized when its
    /// parameters differ from the output's) into its channels of `dst`.
    ConcatU8 {
        shape: ConcatU8Shape,
        requant: U8Requant,
        src: Loc,
        dst: Loc,
    },
    /// `add_u8`: the int8 sum of two dense u8 tensors of `len` bytes.
    AddU8 {
        params: U8BinaryParams,
        len: usize,
        a: Loc,
        b: Loc,
        dst: Loc,
    },
    /// `global_avgpool_u8`: the per-channel mean of a dense u8 tensor, `blocks * 8` bytes out.
    GlobalAvgPoolU8 {
        params: PoolU8Params,
        blocks: usize,
        pixels: usize,
        src: Loc,
        dst: Loc,
    },
    /// `scale_channels_u8`: a dense u8 tensor times a per-channel u8 gate (`blocks * 8` bytes).
    ScaleChannelsU8 {
        params: U8BinaryParams,
        blocks: usize,
        pixels: usize,
        x: Loc,
        gate: Loc,
        dst: Loc,
    },
    /// `pointwise_u8` (weights from `pack_pointwise_u8`, as bytes at `w`).
    PointwiseU8 {
        w: WRange,
        shape: PointwiseShape,
        src: View,
        dst: View,
        requant: QRequant,
    },
    /// `quantize_padded_u8`: a plain NCHW f32 image of `chw` quantized into `c` u8 planes of
    /// `hp x wp` bytes, the image at `(top, left)`, the rest the zero point.
    QuantizePadded {
        scale: f32,
        zero_point: u8,
        chw: (usize, usize, usize),
        hp: usize,
        wp: usize,
        top: usize,
        left: usize,
        src: Loc,
        dst: Loc,
    },
    /// `stem_u8` (weights from `pack_stem_u8`, as bytes at `w`) over the padded planes `src`.
    StemU8 {
        w: WRange,
        shape: StemShape,
        src: Loc,
        dst: View,
        requant: QRequant,
    },
    /// `table_u8`: each of `len` bytes through the 256-byte table at `table`.
    TableU8 {
        table: WRange,
        len: usize,
        src: Loc,
        dst: Loc,
    },
    /// `depthwise_u8` (weights from `pack_depthwise_u8`, as bytes at `w`); with `concat`,
    /// `depthwise_u8_concat`: `dst` is the Ghost module's concatenation of `src` and the
    /// conv's output, which has no buffer of its own, and the conv's lines pass through
    /// `lines` (`None`: written in place).
    DepthwiseU8 {
        w: WRange,
        shape: DepthwiseShape,
        input_zero_point: u8,
        src: View,
        dst: View,
        requant: QRequant,
        concat: Option<GhostConcatU8>,
        lines: Option<Loc>,
    },
}

/// `ghost_runtime::Requant` without a residual. Zero points and bounds are in u8 storage: an
/// ONNX int8 tensor is stored as `q + 128` (see `ghost_runtime::kernels::qpointwise`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QRequant {
    pub zero_point: u8,
    pub min: u8,
    pub max: u8,
    /// Added to the scaled sum before the clamp (a fused HardSigmoid's `beta / s_y`; else 0).
    pub offset: f32,
}

/// Where a per-channel vector comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VecSrc {
    Blob(WRange),
    Arena(Loc),
}

impl Kernel {
    /// Every distinct location the kernel touches, in a fixed order (code generation binds
    /// them in this order; liveness spans them).
    pub fn locs(&self) -> Vec<Loc> {
        let v = |x: &View| Some(x.loc);
        let ov = |x: &Option<View>| x.map(|x| x.loc);
        let all: Vec<Option<Loc>> = match self {
            Kernel::ToBlocked { src, dst, .. }
            | Kernel::FromBlocked { src, dst, .. }
            | Kernel::Fc { src, dst, .. }
            | Kernel::Softmax { src, dst, .. }
            | Kernel::Copy { src, dst, .. }
            | Kernel::CopyPixels { src, dst, .. }
            | Kernel::Dfl { src, dst, .. }
            | Kernel::ChannelNorm { src, dst, .. }
            | Kernel::Remap { src, dst, .. }
            | Kernel::DepthToSpace { src, dst, .. }
            | Kernel::Col2Im { cols: src, dst, .. }
            | Kernel::Quantize { src, dst, .. }
            | Kernel::Dequantize { src, dst, .. }
            | Kernel::ConcatU8 { src, dst, .. }
            | Kernel::GlobalAvgPoolU8 { src, dst, .. }
            | Kernel::QuantizePadded { src, dst, .. }
            | Kernel::FakeQuantize { src, dst, .. }
            | Kernel::TableU8 { src, dst, .. } => vec![Some(*src), Some(*dst)],
            Kernel::StemU8 { src, dst, .. } => vec![Some(*src), v(dst)],
            Kernel::AddU8 { a, b, dst, .. }
            | Kernel::ScaleChannelsU8 {
                x: a, gate: b, dst, ..
            } => vec![Some(*a), Some(*b), Some(*dst)],
            Kernel::PointwiseU8 { src, dst, .. } => vec![v(src), v(dst)],
            Kernel::DepthwiseU8 {
                src, dst, lines, ..
            } => vec![v(src), v(dst), *lines],
            Kernel::Pointwise {
                w_scaled,
                src,
                dst,
                epilogue,
                ..
            } => vec![
                v(src),
                v(dst),
                ov(&epilogue.residual),
                epilogue.channel_sums,
                *w_scaled,
            ],
            Kernel::Depthwise {
                src, dst, epilogue, ..
            }
            | Kernel::DepthwiseGeneral {
                src, dst, epilogue, ..
            }
            | Kernel::ConvGrouped {
                src, dst, epilogue, ..
            } => vec![
                v(src),
                v(dst),
                ov(&epilogue.residual),
                epilogue.channel_sums,
            ],
            Kernel::ConvWinograd {
                src,
                dst,
                epilogue,
                scratch,
                ..
            } => vec![
                v(src),
                v(dst),
                ov(&epilogue.residual),
                epilogue.channel_sums,
                Some(*scratch),
            ],
            Kernel::DfcGate { gate, y, .. } => vec![Some(*gate), v(y)],
            Kernel::Ghost {
                pw_scaled,
                src,
                dst,
                residual,
                channel_sums,
                scratch,
                gate,
                ..
            } => vec![
                v(src),
                v(dst),
                ov(residual),
                *channel_sums,
                *pw_scaled,
                Some(*scratch),
                gate.map(|(g, _, _)| g),
            ],
            Kernel::Conv {
                src, dst, epilogue, ..
            } => vec![v(src), v(dst), ov(&epilogue.residual)],
            Kernel::GlobalAvgPool { src, dst, .. } => vec![v(src), Some(*dst)],
            Kernel::SeGate {
                sums,
                scratch,
                gate,
                ..
            } => vec![Some(*sums), Some(*scratch), Some(*gate)],
            Kernel::ScalePacked { scale, dst, .. } => vec![Some(*scale), Some(*dst)],
            Kernel::Binary { a, b, dst, .. } => vec![Some(*a), Some(*b), Some(*dst)],
            Kernel::BinaryConst { x, dst, .. } => vec![Some(*x), Some(*dst)],
            Kernel::ChannelAssign { x, v: vs, .. } => match vs {
                VecSrc::Arena(l) => vec![Some(*x), Some(*l)],
                VecSrc::Blob(_) => vec![Some(*x)],
            },
            Kernel::Unary { x, .. } => vec![Some(*x)],
            Kernel::Zero { dst, .. } => vec![Some(*dst)],
            Kernel::Pool { src, dst, .. } | Kernel::Resize { src, dst, .. } => {
                vec![v(src), v(dst)]
            }
        };
        let mut out: Vec<Loc> = Vec::new();
        for l in all.into_iter().flatten() {
            if !out.contains(&l) {
                out.push(l);
            }
        }
        out
    }

    /// Short name of the operation, with what its epilogue fuses (`ghost+se+res+pool`): the
    /// `op` column of `ghostc bench --profile` and of the text form.
    pub fn label(&self) -> String {
        let suffix = |base: &str, residual: bool, sums: bool, scaled: bool| {
            let mut s = base.to_string();
            if scaled {
                s.push_str("+se");
            }
            if residual {
                s.push_str("+res");
            }
            if sums {
                s.push_str("+pool");
            }
            s
        };
        let bin = |op: &BinaryOp| match op {
            BinaryOp::Add => "add",
            BinaryOp::Mul => "mul",
            BinaryOp::Sub => "sub",
            BinaryOp::Div => "div",
            BinaryOp::PRelu => "prelu",
        };
        match self {
            Kernel::Ghost {
                residual,
                channel_sums,
                pw_scaled,
                gate,
                ..
            } => suffix(
                if gate.is_some() { "ghost+dfc" } else { "ghost" },
                residual.is_some(),
                channel_sums.is_some(),
                pw_scaled.is_some(),
            ),
            Kernel::Pointwise {
                epilogue,
                w_scaled,
                shape,
                ..
            } => suffix(
                if shape.pixels == 1 {
                    "pointwise-1px"
                } else {
                    "pointwise"
                },
                epilogue.residual.is_some(),
                epilogue.channel_sums.is_some(),
                w_scaled.is_some(),
            ),
            Kernel::Depthwise { epilogue, .. } => suffix(
                "depthwise",
                epilogue.residual.is_some(),
                epilogue.channel_sums.is_some(),
                false,
            ),
            Kernel::DepthwiseGeneral { epilogue, .. } => suffix(
                "depthwise-general",
                epilogue.residual.is_some(),
                epilogue.channel_sums.is_some(),
                false,
            ),
            Kernel::DfcGate { .. } => "dfc-gate".into(),
            Kernel::Conv { epilogue, .. } => {
                suffix("conv", epilogue.residual.is_some(), false, false)
            }
            Kernel::ConvGrouped { epilogue, .. } => suffix(
                "conv-grouped",
                epilogue.residual.is_some(),
                epilogue.channel_sums.is_some(),
                false,
            ),
            Kernel::ConvWinograd { epilogue, .. } => suffix(
                "conv-winograd",
                epilogue.residual.is_some(),
                epilogue.channel_sums.is_some(),
                false,
            ),
            Kernel::Fc { .. } => "fc".into(),
            Kernel::GlobalAvgPool { .. } => "global-avgpool".into(),
            Kernel::SeGate { .. } => "se".into(),
            Kernel::ScalePacked { .. } => "se-scale-weights".into(),
            Kernel::Binary { op, .. } => bin(op).into(),
            Kernel::BinaryConst { op, .. } => format!("const-{}", bin(op)),
            Kernel::ChannelAssign { op, .. } => format!("channel-{}", bin(op)),
            Kernel::Unary { f, .. } => match f {
                Unary::Sigmoid => "sigmoid",
                Unary::Tanh => "tanh",
                Unary::LeakyRelu { .. } => "leakyrelu",
            }
            .into(),
            Kernel::Zero { .. } => "zero".into(),
            Kernel::Copy { .. } => "copy".into(),
            Kernel::CopyPixels { .. } => "concat-pixels".into(),
            Kernel::Dfl { .. } => "dfl".into(),
            Kernel::ChannelNorm { .. } => "channel-norm".into(),
            Kernel::Remap { .. } => "remap".into(),
            Kernel::DepthToSpace { .. } => "depth-to-space".into(),
            Kernel::Col2Im { .. } => "col2im".into(),
            Kernel::Pool { kind, .. } => match kind {
                PoolKind::Max => "maxpool",
                PoolKind::Avg { .. } => "avgpool",
            }
            .into(),
            Kernel::Resize { .. } => "resize".into(),
            Kernel::Softmax { .. } => "softmax".into(),
            Kernel::ToBlocked { .. } => "to-nchw8c".into(),
            Kernel::Quantize { .. } => "quantize".into(),
            Kernel::Dequantize { .. } => "dequantize".into(),
            Kernel::AddU8 { .. } => "add-u8".into(),
            Kernel::ScaleChannelsU8 { .. } => "scale-channels-u8".into(),
            Kernel::GlobalAvgPoolU8 { .. } => "global-avgpool-u8".into(),
            Kernel::FakeQuantize { .. } => "quantize-dequantize".into(),
            Kernel::ConcatU8 { requant, .. } => if requant.is_identity() {
                "concat-u8"
            } else {
                "concat-u8-requant"
            }
            .into(),
            Kernel::PointwiseU8 { shape, .. } => if shape.pixels == 1 {
                "pointwise-u8-1px"
            } else {
                "pointwise-u8"
            }
            .into(),
            Kernel::DepthwiseU8 { concat, .. } => if concat.is_some() {
                "depthwise-u8-concat"
            } else {
                "depthwise-u8"
            }
            .into(),
            Kernel::QuantizePadded { .. } => "quantize-padded".into(),
            Kernel::TableU8 { .. } => "table-u8".into(),
            Kernel::StemU8 { .. } => "stem-u8".into(),
            Kernel::FromBlocked { .. } => "to-nchw".into(),
        }
    }

    /// Whether the kernel's multiply-adds are `u8 * s8` ones (the int8 convolutions), which
    /// profiles compare with the int8 peak instead of the `f32` one.
    pub fn int8_macs(&self) -> bool {
        matches!(
            self,
            Kernel::PointwiseU8 { .. } | Kernel::DepthwiseU8 { .. } | Kernel::StemU8 { .. }
        )
    }

    /// The channel-sums slot of a kernel whose epilogue can accumulate them, with the view it
    /// stores (a following squeeze-excite takes its squeeze from there).
    pub fn channel_sums_mut(&mut self) -> Option<(View, &mut Option<Loc>)> {
        match self {
            // A gated module's epilogue would sum the values before the gate.
            Kernel::Ghost {
                dst,
                channel_sums,
                gate: None,
                ..
            } => Some((*dst, channel_sums)),
            Kernel::Depthwise { dst, epilogue, .. }
            | Kernel::DepthwiseGeneral { dst, epilogue, .. }
            | Kernel::ConvGrouped { dst, epilogue, .. }
            | Kernel::ConvWinograd { dst, epilogue, .. }
            | Kernel::Pointwise { dst, epilogue, .. } => Some((*dst, &mut epilogue.channel_sums)),
            _ => None,
        }
    }
}

/// One call with its provenance comment.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// ONNX node names covered, output shape and MACs (names escaped by the emitter).
    pub nodes: Vec<String>,
    /// The graph node this step computes (part of), if any.
    pub node: Option<crate::ir::NodeId>,
    pub what: String,
    /// Shape of the node output this step produces (empty for glue steps).
    pub out_shape: Vec<usize>,
    pub macs: u64,
    pub kernel: Kernel,
}

/// A model input or output as the user sees it (plain NCHW, `[N, C, L]` or `[N, C]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Io {
    pub name: String,
    /// Shape with the batch dim as compiled (1 when the batch is dynamic).
    pub shape: Vec<usize>,
}

impl Io {
    /// Floats at the compiled batch.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Floats of one image.
    pub fn image_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
}

/// Arena buffer: offset and length in f32 elements. A `u8` buffer (an int8 tensor) takes
/// `len` floats of the arena and is used as their `4 * len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub offset: usize,
    pub len: usize,
    pub u8: bool,
}

/// The whole lowered model.
#[derive(Clone, Debug)]
pub struct Program {
    /// The model inputs in graph order (at least one); `Loc::Input(i)` is `inputs[i]`.
    pub inputs: Vec<Io>,
    /// The model outputs in graph order (at least one); `Loc::Output(i)` is `outputs[i]`.
    pub outputs: Vec<Io>,
    pub dynamic_batch: bool,
    /// Images per call as compiled (the model's static batch; 1 when it is dynamic).
    pub batch: usize,
    pub buffers: Vec<Buffer>,
    pub arena_len: usize,
    pub weights: WeightBlob,
    pub steps: Vec<Step>,
}

// Compact forms, so a kernel's derived `Debug` reads as one short line in the text form; step
// descriptions name model inputs and outputs the same way (`input`, `output1`, ...).
impl fmt::Debug for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Input(0) => f.write_str("input"),
            Loc::Input(i) => write!(f, "input{i}"),
            Loc::Output(0) => f.write_str("output"),
            Loc::Output(i) => write!(f, "output{i}"),
            Loc::Buf(b) => write!(f, "buf{b}"),
        }
    }
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.block == 0 {
            write!(f, "{:?}", self.loc)
        } else {
            write!(f, "{:?}@block{}", self.loc, self.block)
        }
    }
}

impl fmt::Debug for WRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w[{}..{}]", self.offset, self.offset + self.len)
    }
}

/// The text form: a header (input, output, batch, arena, weights), one line per arena buffer,
/// then one line per step: index, label, the kernel with all its arguments, and what it
/// computes. ONNX names are left out (they are in the generated comments); everything else
/// lowering decided is in.
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = |s: &[usize]| crate::ir::fmt_shape(s);
        let list = |word: &str, ios: &[Io]| {
            let items: Vec<String> = ios
                .iter()
                .map(|io| format!("{:?} [{}]", io.name, shape(&io.shape)))
                .collect();
            let plural = if ios.len() == 1 { "" } else { "s" };
            format!("{word}{plural} {}", items.join(", "))
        };
        writeln!(
            f,
            "{} -> {}, batch {}{}",
            list("input", &self.inputs),
            list("output", &self.outputs),
            self.batch,
            if self.dynamic_batch { " (dynamic)" } else { "" }
        )?;
        writeln!(
            f,
            "arena {} floats, weights {} floats, {} steps, {} MACs",
            self.arena_len,
            self.weights.len(),
            self.steps.len(),
            self.steps.iter().map(|s| s.macs).sum::<u64>()
        )?;
        for (i, b) in self.buffers.iter().enumerate() {
            let bytes = if b.u8 { " as u8" } else { "" };
            writeln!(
                f,
                "buf{i} = arena[{}..{}]{bytes}",
                b.offset,
                b.offset + b.len
            )?;
        }
        for (i, s) in self.steps.iter().enumerate() {
            write!(
                f,
                "{i:>3} {:<18} {:?} // {}",
                s.kernel.label(),
                s.kernel,
                s.what
            )?;
            if !s.out_shape.is_empty() {
                write!(f, " -> [{}]", shape(&s.out_shape))?;
            }
            if s.macs > 0 {
                write!(f, ", {} MACs", s.macs)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
