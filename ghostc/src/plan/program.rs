//! The lowered program: a flat list of ghost-runtime calls over one scratch arena and one
//! weight blob, with every shape, offset and length a number. Code generation prints it; nothing
//! downstream looks at the graph again.

use crate::codegen::blob::WeightBlob;

/// Where a step reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// The user's input slice for the current image (plain NCHW).
    Input,
    /// The user's output slice for the current image.
    Output,
    /// Arena buffer, resolved to an offset by the memory plan.
    Buf(usize),
}

/// A block view: tensor location plus the first channel block the kernel touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WRange {
    pub offset: usize,
    pub len: usize,
}

/// Epilogue activation, mirroring `ghost_runtime::Activation`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    Relu,
    Clamp { lo: f32, hi: f32 },
    HardSigmoid { alpha: f32, beta: f32 },
    HardSwish,
}

/// SE gate nonlinearity, mirroring `ghost_runtime::Gate`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GateFn {
    Act(Act),
    Sigmoid,
}

/// Elementwise nonlinearities with no epilogue form (applied in place).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryFn {
    Sigmoid,
    Tanh,
    LeakyRelu { alpha: f32 },
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
    /// Gather logical channels out of a blocked tensor into the user's NCHW output.
    FromBlocked {
        phys: Vec<usize>,
        pixels: usize,
        blocks: usize,
        src: Loc,
        dst: Loc,
    },
    Pointwise {
        w: WRange,
        /// Use these packed weights from the arena instead of `w` (an SE gate folded in).
        w_scaled: Option<Loc>,
        k_blocks: usize,
        n_blocks: usize,
        pixels: usize,
        src: View,
        dst: View,
        act: Act,
        residual: Option<View>,
        sums: Option<Loc>,
    },
    Depthwise {
        w: WRange,
        blocks: usize,
        in_h: usize,
        in_w: usize,
        k: usize,
        stride: usize,
        pads: [usize; 4],
        src: View,
        dst: View,
        act: Act,
        residual: Option<View>,
        sums: Option<Loc>,
    },
    Ghost {
        pw: WRange,
        pw_scaled: Option<Loc>,
        dw: WRange,
        k_blocks: usize,
        half_blocks: usize,
        h: usize,
        w: usize,
        src: View,
        dst: View,
        primary: Act,
        cheap: Act,
        residual: Option<View>,
        sums: Option<Loc>,
        scratch: Loc,
    },
    /// Dense conv (`pack_conv`): NCHW8c dense-layout input, or the user's NCHW input.
    Conv {
        w: WRange,
        nchw: bool,
        cin: usize,
        in_h: usize,
        in_w: usize,
        out_blocks: usize,
        kh: usize,
        kw: usize,
        stride: [usize; 2],
        pads: [usize; 4],
        src: View,
        dst: View,
        act: Act,
        residual: Option<View>,
    },
    /// Scalar grouped/dilated conv over logical channels, dense layouts.
    ConvGeneral {
        w: WRange,
        b: WRange,
        cin: usize,
        cout: usize,
        groups: usize,
        in_h: usize,
        in_w: usize,
        kh: usize,
        kw: usize,
        stride: [usize; 2],
        dilation: [usize; 2],
        pads: [usize; 4],
        src: View,
        dst: View,
        act: Act,
        residual: Option<View>,
    },
    Fc {
        w: WRange,
        k_blocks: usize,
        n_blocks: usize,
        src: Loc,
        dst: Loc,
        act: Act,
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
        c_blocks: usize,
        r_blocks: usize,
        inv_pixels: f32,
        gate_fn: GateFn,
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
        op: BinOp,
        a: Loc,
        b: Loc,
        dst: Loc,
        len: usize,
        act: Act,
    },
    /// In place: `x[c][p] = act(x[c][p] op v[c])`; `v` from the blob or the arena.
    ChannelAssign {
        op: BinOp,
        x: Loc,
        blocks: usize,
        pixels: usize,
        v: VecSrc,
        act: Act,
    },
    /// In place elementwise nonlinearity over `len` floats.
    Unary {
        f: UnaryFn,
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
    Pool {
        max: bool,
        /// Average pooling divides by the whole window (padding counted as zeros).
        count_include_pad: bool,
        blocks: usize,
        in_h: usize,
        in_w: usize,
        kh: usize,
        kw: usize,
        stride: [usize; 2],
        pads: [usize; 4],
        src: View,
        dst: View,
    },
    Resize {
        linear: bool,
        coord: u8,
        blocks: usize,
        in_h: usize,
        in_w: usize,
        out_h: usize,
        out_w: usize,
        src: View,
        dst: View,
    },
    Softmax {
        src: Loc,
        dst: Loc,
        len: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Mul,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VecSrc {
    Blob(WRange),
    Arena(Loc),
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

/// A model input or output as the user sees it (plain NCHW or `[N, C]`), per image.
#[derive(Clone, Debug, PartialEq)]
pub struct Io {
    pub name: String,
    /// Shape with the batch dim as compiled (1 when the batch is dynamic).
    pub shape: Vec<usize>,
}

impl Io {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Arena buffer: offset and length in f32 elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub offset: usize,
    pub len: usize,
}

/// The whole lowered model.
#[derive(Clone, Debug)]
pub struct Program {
    pub input: Io,
    pub output: Io,
    pub dynamic_batch: bool,
    /// Images per call as compiled (the model's static batch; 1 when it is dynamic).
    pub batch: usize,
    /// Shapes of one image's input and output (batch dim 1).
    pub image_input: Vec<usize>,
    pub image_output: Vec<usize>,
    pub buffers: Vec<Buffer>,
    pub arena_len: usize,
    pub weights: WeightBlob,
    pub steps: Vec<Step>,
}

impl Program {
    /// Offset and length of a location in the arena (`None` for the user's slices).
    pub fn range(&self, loc: Loc) -> Option<(usize, usize)> {
        match loc {
            Loc::Buf(b) => Some((self.buffers[b].offset, self.buffers[b].len)),
            _ => None,
        }
    }
}
