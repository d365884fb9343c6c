//! Lowering: from the optimized graph to a [`Program`] of ghost-runtime calls.
//!
//! Every activation gets an arena buffer in its NCHW8c [`ChannelLayout`]; weights are permuted
//! to the physical lane order of their input and output, zero-padded, and packed with the
//! runtime's own packing functions into the weight blob. Per-image: the batch is a loop around
//! the program (static batch N or a dynamic batch), so every activation must carry the batch in
//! dim 0 and no op may mix images.
//!
//! One file per family of ops, each adding methods to `Lowerer`: `conv` (Conv, FusedConv,
//! Ghost), `se` (squeeze-and-excitation and its gates), `dfc` (GhostNetV2's DFC attention
//! gate), `dense` (Linear, Gemm, MatMul, Softmax), `elementwise` (activations, BatchNorm,
//! binary ops), `pool` (global and windowed pooling), `shape` (layout conversions, Reshape,
//! Identity, Concat, Slice, Resize), `transposed` (ConvTranspose). A channel shuffle is only a layout (`layout::assign`): its
//! output aliases its input. This file holds the shared state, the helpers every family
//! uses and the driver [`lower`].
//!
//! Epilogue folding done here (the passes fuse graph nodes; these are runtime-level choices the
//! graph cannot express):
//! - a squeeze-excite's squeeze (the channel means) is accumulated by the epilogue of the step
//!   that writes its input, when that is the step just before (`channel_sums`), instead of a
//!   separate global-average-pool pass;
//! - a squeeze-excite whose only reader is a 1x1 conv on more than one pixel, when scaling
//!   that conv's weights costs less than scaling the activations (measured costs in `se`:
//!   about 1.15 x its padded output channels against the pixels), is not materialized: the
//!   conv's packed weights are scaled by the gate (`ScalePacked`) and it reads the un-gated
//!   input; otherwise the gate multiplies the SE input in place when nothing else reads it;
//! - a 1x1 conv on one pixel runs as a GEMV (`Fc`);
//! - a fused Tanh/LeakyRelu (no epilogue form) becomes the conv plus an in-place
//!   `Unary`; a standalone activation with an epilogue form becomes a `ChannelAssign` of zeros
//!   carrying it;
//! - Sub/Div by a constant become Add/Mul of the negated/reciprocal per-channel vector, an
//!   unfused BatchNorm a per-channel scale and shift, and Gemm's alpha, beta and transposes are
//!   folded into the packed weights; PRelu with constant slopes is a per-channel
//!   `ChannelAssign` too;
//! - the ops computed in place (standalone activations, per-channel ops, SE gates) overwrite
//!   their input when nothing else reads it (`in_place_dst`), else a copy of it.
//!
//! Deliberately not done here: choosing fusions (passes do that) and deciding offsets (the arena
//! plan runs on the finished step list, see `arena`).

mod conv;
mod dense;
mod dfc;
mod elementwise;
mod pool;
mod quant;
mod se;
mod shape;
#[cfg(test)]
mod tests;
mod transposed;

use std::collections::{HashMap, HashSet};

use ghost_runtime as rt;
use rt::glue::Unary;

use super::arena;
use super::blob::{WeightBlob, ALIGN_F32};
use super::layout::{self, ChannelLayout};
use super::program::*;
use crate::ir::{self, Activation, Graph, NodeId, Op, ValueId};

/// Why the graph cannot be lowered to runtime calls.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LowerError {
    /// User-facing: the model uses ops (or op configurations) code generation does not cover;
    /// lists every such node, then a per-op summary when the list is long.
    #[error("{}", UnsupportedReport(.0))]
    Unsupported(Vec<Unsupported>),
    /// User-facing: a model without inputs or outputs has nothing to compile.
    #[error("code generation needs at least one model input and one output; the model has {inputs} inputs and {outputs} outputs")]
    Io { inputs: usize, outputs: usize },
    /// A ghostc bug: the runtime refused arguments lowering computed.
    #[error("node '{node}': the runtime rejected packed weights ({detail}); this is a ghostc bug")]
    Pack { node: String, detail: String },
}

/// One node (or model input/output) code generation cannot lower, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// ONNX node name (for a model input or output: the tensor's name).
    pub node: String,
    /// The op as the IR names it (`max_pool`, `resize`, ...), or `input`/`output`.
    pub op: String,
    /// The attribute or shape that blocks it, with its value (`ceil_mode=1`, `axis=2`).
    pub blocker: String,
    /// What is supported instead (empty when nothing close is).
    pub supported: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' ({}): {}", self.node, self.op, self.blocker)?;
        if !self.supported.is_empty() {
            write!(f, "; supported: {}", self.supported)?;
        }
        Ok(())
    }
}

/// Lists longer than this end with a count per op.
const SUMMARY_AFTER: usize = 3;

/// The message of [`LowerError::Unsupported`]: one line per node, then (for long lists) how
/// many nodes of each op.
struct UnsupportedReport<'a>(&'a [Unsupported]);

impl std::fmt::Display for UnsupportedReport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "code generation cannot lower {n} node{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for u in self.0 {
            write!(f, "\n  - {u}")?;
        }
        if n > SUMMARY_AFTER {
            let mut counts: Vec<(&str, usize)> = Vec::new();
            for u in self.0 {
                match counts.iter_mut().find(|(op, _)| *op == u.op) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((&u.op, 1)),
                }
            }
            counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let items: Vec<String> = counts.iter().map(|(op, c)| format!("{op} x{c}")).collect();
            write!(f, "\n  by op: {}", items.join(", "))?;
        }
        Ok(())
    }
}

struct Lowerer<'g> {
    g: &'g Graph,
    opts: LowerOptions,
    layouts: HashMap<ValueId, ChannelLayout>,
    batch: usize,
    loc: HashMap<ValueId, Loc>,
    /// Remapped copies of values already made: (value, layout) -> buffer.
    remapped: HashMap<(ValueId, Vec<usize>), Loc>,
    buffers: Vec<usize>,
    blob: WeightBlob,
    steps: Vec<Step>,
    unsupported: Vec<Unsupported>,
    /// Values that are another value gated by an SE: stored un-gated (aliasing their input),
    /// with the gate vector their single 1x1 consumer folds into its weights.
    gated: HashMap<ValueId, Loc>,
    /// Arena buffers holding u8 (int8) tensors.
    u8_bufs: HashSet<usize>,
    /// Int8 values stored inside another value's buffer (a QConcat input its producer writes
    /// in place): the block of that buffer they start at. Absent: block 0 of their own.
    u8_block: HashMap<ValueId, usize>,
    /// QConcat inputs a Ghost module's depthwise conv already wrote into the concatenation
    /// (`depthwise_u8_concat`): no `concat_u8` step for them.
    cat_written: HashSet<ValueId>,
    /// Values stored as plain NCHW f32 (a model input its stem reads in place, and the
    /// quantize-dequantize round trip of one), not NCHW8c.
    plain: HashSet<ValueId>,
}

/// The epilogue form of an activation (`None` means identity); `None` for the activations the
/// runtime applies only as a separate pass (see [`unary_of`]).
pub(crate) fn act_of(a: Option<Activation>) -> Option<rt::Activation> {
    Some(match a {
        None => rt::Activation::None,
        Some(Activation::Relu) => rt::Activation::Relu,
        Some(Activation::Clamp { lo, hi }) => rt::Activation::Clamp { lo, hi },
        Some(Activation::HardSigmoid { alpha, beta }) => {
            rt::Activation::HardSigmoid { alpha, beta }
        }
        Some(Activation::HardSwish) => rt::Activation::HardSwish,
        Some(Activation::Sigmoid) => rt::Activation::Sigmoid,
        Some(Activation::Silu) => rt::Activation::Silu,
        Some(Activation::Gelu) => rt::Activation::Gelu,
        Some(Activation::Mish) => rt::Activation::Mish,
        Some(_) => return None,
    })
}

/// The in-place form of the activations with no epilogue form.
fn unary_of(a: Activation) -> Option<Unary> {
    match a {
        Activation::Tanh => Some(Unary::Tanh),
        Activation::LeakyRelu { alpha } => Some(Unary::LeakyRelu { alpha }),
        _ => None,
    }
}

impl<'g> Lowerer<'g> {
    fn new_buf(&mut self, len: usize) -> Loc {
        self.buffers.push(len.max(1));
        Loc::Buf(self.buffers.len() - 1)
    }

    fn shape(&self, v: ValueId) -> &[usize] {
        &self.g.value(v).ty.shape
    }

    /// Spatial size per image: (h, w) for rank 4, (l, 1) for rank 3 (`[N, C, L]` is stored
    /// as `L` pixels), (1, 1) for rank 2; higher ranks fold into w.
    fn hw(&self, v: ValueId) -> (usize, usize) {
        let s = self.shape(v);
        match s.len() {
            0..=2 => (1, 1),
            3 => (s[2], 1),
            _ => (s[2], s[3..].iter().product()),
        }
    }

    fn layout(&self, v: ValueId) -> ChannelLayout {
        self.layouts
            .get(&v)
            .cloned()
            .unwrap_or_else(|| ChannelLayout::dense(self.shape(v).get(1).copied().unwrap_or(1)))
    }

    fn blocked_len(&self, v: ValueId, layout: &ChannelLayout) -> usize {
        let (h, w) = self.hw(v);
        layout.lanes() * h * w
    }

    fn constant(&self, v: ValueId) -> Option<&'g [f32]> {
        self.g.value(v).constant().and_then(|t| t.as_f32())
    }

    fn out_buf(&mut self, v: ValueId) -> Loc {
        let layout = self.layout(v);
        let len = self.blocked_len(v, &layout);
        let loc = self.new_buf(len);
        self.loc.insert(v, loc);
        loc
    }

    /// Appends a step for node `n`; the node's MACs go to its first compute step only.
    fn push(&mut self, n: NodeId, what: String, kernel: Kernel) {
        let node = self.g.node(n);
        let auxiliary = matches!(
            kernel,
            Kernel::ScalePacked { .. } | Kernel::Zero { .. } | Kernel::Copy { .. }
        );
        let counted = self
            .steps
            .iter()
            .rev()
            .take_while(|s| s.node == Some(n))
            .any(|s| s.macs > 0);
        let macs = if counted || auxiliary {
            0
        } else {
            ir::cost::macs(self.g, n) / self.batch as u64
        };
        self.steps.push(Step {
            nodes: self.g.graph_order(&node.covers),
            out_shape: node
                .outputs
                .first()
                .map(|&v| self.g.value(v).ty.shape.clone())
                .unwrap_or_default(),
            node: Some(n),
            what,
            macs,
            kernel,
        });
    }

    /// Copies `len` floats of `src` into `dst`, the output buffer that in-place ops (named by
    /// `why`) then modify.
    /// Where node `n` computes `y` in place from `x`, whose `len` floats are at `src`: `src`
    /// itself when [`Self::overwritable`] (then `y` aliases it), else a buffer of its own that
    /// starts as a copy of `src`.
    fn in_place_dst(
        &mut self,
        n: NodeId,
        x: ValueId,
        y: ValueId,
        src: Loc,
        why: &str,
        len: usize,
    ) -> Loc {
        if self.loc.get(&x) == Some(&src) && self.overwritable(n, x, y) {
            self.loc.insert(y, src);
            return src;
        }
        let dst = self.out_buf(y);
        self.push_copy(n, why, src, dst, len);
        dst
    }

    /// Whether node `n` may overwrite its input `x` with its output `y`: `x`'s buffer is an
    /// arena buffer, `y` keeps `x`'s layout, and every value held in that buffer (`x`, and what
    /// aliases it: a Reshape or Identity, a DFC gate's output) is no model output and has no
    /// reader besides `n` that is still to be lowered.
    fn overwritable(&self, n: NodeId, x: ValueId, y: ValueId) -> bool {
        let loc = self.loc[&x];
        let lowered = |m: NodeId| {
            m == n
                || self
                    .g
                    .node(m)
                    .outputs
                    .iter()
                    .all(|o| self.loc.contains_key(o))
        };
        matches!(loc, Loc::Buf(_))
            && self.layout(y) == self.layout(x)
            && self.loc.iter().filter(|&(_, &l)| l == loc).all(|(&v, _)| {
                !self.g.is_output(v) && self.g.consumers(v).iter().all(|&(m, _)| lowered(m))
            })
    }

    fn push_copy(&mut self, n: NodeId, why: &str, src: Loc, dst: Loc, len: usize) {
        self.push(
            n,
            format!("copy for in-place {why}"),
            Kernel::Copy { src, dst, len },
        );
    }

    /// Records node `n` as not lowerable because of `why` (the blocking attribute or shape).
    fn unsupported(&mut self, n: NodeId, why: &str) {
        self.unsupported_as(n, why, "");
    }

    /// [`Self::unsupported`] saying what is supported instead.
    fn unsupported_as(&mut self, n: NodeId, blocker: &str, supported: &str) {
        let node = self.g.node(n);
        self.unsupported.push(Unsupported {
            node: node.name.clone(),
            op: node.op.name().into(),
            blocker: blocker.into(),
            supported: supported.into(),
        });
    }

    fn push_weights(&mut self, values: &[f32]) -> WRange {
        WRange {
            offset: self.blob.push(values),
            len: values.len(),
        }
    }

    /// Runs one of the runtime's packers into `len` fresh floats and appends them to the blob.
    /// A packer error means lowering computed arguments the runtime rejects: a ghostc bug,
    /// reported as [`LowerError::Pack`] naming the node.
    fn pack(
        &mut self,
        node: &str,
        len: usize,
        packer: impl FnOnce(&mut [f32]) -> Result<(), rt::Error>,
    ) -> Result<WRange, LowerError> {
        let mut packed = vec![0.0; len];
        packer(&mut packed).map_err(|e| LowerError::Pack {
            node: node.into(),
            detail: e.to_string(),
        })?;
        Ok(self.push_weights(&packed))
    }

    /// [`Self::pack`] with `pack_pointwise`: `w` is `[n_pad][k_pad]`, `bias` `[n_pad]`.
    fn pack_pointwise(
        &mut self,
        node: &str,
        w: &[f32],
        bias: &[f32],
        k_pad: usize,
        n_pad: usize,
    ) -> Result<WRange, LowerError> {
        self.pack(node, rt::pointwise_packed_len(k_pad, n_pad), |out| {
            rt::pack_pointwise(w, bias, k_pad, n_pad, out)
        })
    }

    /// `[n_out.lanes][k_in.lanes]` matrix from a logical `[n][k]` one.
    fn permute_matrix(
        w: &[f32],
        n: usize,
        k: usize,
        rows: &ChannelLayout,
        cols: &ChannelLayout,
    ) -> Vec<f32> {
        let (nl, kl) = (rows.lanes(), cols.lanes());
        let mut out = vec![0.0; nl * kl];
        for o in 0..n {
            for i in 0..k {
                out[rows.phys[o] * kl + cols.phys[i]] = w[o * k + i];
            }
        }
        out
    }

    /// Lowers one node by its op's family; an op (or configuration) no family covers is
    /// recorded as unsupported and lowering goes on, so every such node is reported at once.
    fn lower_node(&mut self, n: NodeId) -> Result<(), LowerError> {
        if let Some((blocker, supported)) = blocker(self.g, n) {
            self.unsupported_as(n, &blocker, supported);
            return Ok(());
        }
        let node = self.g.node(n).clone();
        match &node.op {
            Op::Conv(c) => self.lower_plain_conv(n, c),
            Op::ConvTranspose(t) => self.lower_conv_transpose(n, t),
            Op::FusedConv(f) => self.lower_fused_conv(n, f),
            Op::Ghost(gh) => self.lower_ghost(n, gh),
            Op::SqueezeExcite(se) => self.lower_se(n, se),
            Op::DfcGate(d) => self.lower_dfc(n, d),
            Op::Linear { act } => self.lower_linear(n, *act),
            Op::Gemm(_) | Op::MatMul => self.lower_matmul(n),
            Op::GlobalAveragePool | Op::Reduce(_) => {
                self.lower_global_pool(n);
                Ok(())
            }
            Op::Reshape { shape } => {
                self.lower_reshape(n, shape);
                Ok(())
            }
            // A channel permutation: the output layout reads the same lanes in the shuffled
            // order (`ChannelLayout::shuffled`), so no data moves.
            Op::DepthToSpace { blocksize, crd } => {
                self.lower_depth_to_space(n, *blocksize, *crd);
                Ok(())
            }
            Op::Identity | Op::ChannelShuffle { .. } => {
                let loc = self.loc[&node.inputs[0]];
                self.loc.insert(node.outputs[0], loc);
                Ok(())
            }
            Op::Activation(a) => {
                self.lower_activation(n, *a);
                Ok(())
            }
            Op::BatchNorm(bn) => {
                self.lower_batch_norm(n, bn);
                Ok(())
            }
            Op::Binary(op) => self.lower_binary(n, *op),
            Op::Concat { axis: 2 } => {
                self.lower_concat_pixels(n);
                Ok(())
            }
            Op::Concat { .. } => {
                self.lower_concat(n);
                Ok(())
            }
            Op::Slice(s) => {
                self.lower_slice(n, s);
                Ok(())
            }
            Op::Split { .. } => {
                self.lower_split(n);
                Ok(())
            }
            Op::Pool(p) => {
                self.lower_pool(n, p);
                Ok(())
            }
            Op::Resize(r) => {
                self.lower_resize(n, r);
                Ok(())
            }
            Op::Pad(p) => {
                let pads = p.zero_hw().expect("blocker() checked the pads");
                self.lower_zero_pad(n, pads)
            }
            Op::Softmax { .. } => {
                self.lower_softmax(n);
                Ok(())
            }
            Op::Dfl { bins } => {
                self.lower_dfl(n, *bins);
                Ok(())
            }
            Op::ChannelNorm { epsilon } => {
                self.lower_channel_norm(n, *epsilon);
                Ok(())
            }
            Op::Quantize(q) => {
                self.lower_quantize(n, q);
                Ok(())
            }
            Op::Dequantize(q) => {
                self.lower_dequantize(n, q);
                Ok(())
            }
            Op::QConv(c) => self.lower_qconv(n, c),
            Op::QConcat { axis, x, y } => {
                self.lower_qconcat(n, *axis, x, y);
                Ok(())
            }
            Op::QBinary(b) => {
                self.lower_qbinary(n, b);
                Ok(())
            }
            Op::QMatMul(m) => self.lower_qmatmul(n, m),
            Op::QGlobalAveragePool { x, y } => {
                self.lower_qpool(n, x, y);
                Ok(())
            }
            Op::QActivation { act, x, y } => self.lower_qactivation(n, act, x, y),
            op => {
                self.unsupported_as(
                    n,
                    &format!("no kernel for op {}", op.name()),
                    "see ARCHITECTURE.md for the lowered ops",
                );
                Ok(())
            }
        }
    }
}

/// For the ops lowered only in some configurations (Concat, Slice, Split, Pool, Resize, Pad,
/// Softmax): the attribute or shape that blocks node `n` and what is supported instead; `None`
/// when [`Lowerer::lower_node`] can lower it (and for every other op).
fn blocker(g: &Graph, n: NodeId) -> Option<(String, &'static str)> {
    let node = g.node(n);
    let shape = |v: Option<&ValueId>| v.map(|&v| g.value(v).ty.shape.clone()).unwrap_or_default();
    let x = shape(node.inputs.first());
    let y = shape(node.outputs.first());
    let rank = |what: &str, s: &[usize]| format!("{what} rank {} [{}]", s.len(), ir::fmt_shape(s));
    Some(match &node.op {
        Op::Concat { axis } if !matches!((*axis, y.len()), (1, _) | (2, 3 | 4)) => (
            format!("axis={axis} of rank {} [{}]", y.len(), ir::fmt_shape(&y)),
            "axis=1 (channels) of rank-2, 3 or 4 tensors, axis=2 (pixels, rows) of rank 3 or 4",
        ),
        Op::Concat { .. } if !matches!(y.len(), 2..=4) => (rank("output", &y), "rank 2, 3 or 4"),
        Op::Concat { .. } if node.outputs.first().is_some_and(|&v| !g.value(v).ty.dtype.is_float()) => (
            format!("{} tensors", g.value(node.outputs[0]).ty.dtype),
            "f32 tensors (int8 ones as QLinearConcat or DequantizeLinear -> Concat -> QuantizeLinear)",
        ),
        Op::Slice(s) if s.axes != [1] => (
            format!("axes={:?}", s.axes),
            "axes=[1] (channels) of a rank-2, 3 or 4 tensor",
        ),
        Op::Slice(s) if s.steps != [1] => (format!("steps={:?}", s.steps), "steps=[1]"),
        Op::Slice(_) if !matches!(x.len(), 2..=4) => (rank("input", &x), "rank 2, 3 or 4"),
        Op::Split { axis, .. } if *axis != 1 => (
            format!("axis={axis}"),
            "axis=1 (channels) of a rank-2, 3 or 4 tensor",
        ),
        Op::Split { .. } if !matches!(x.len(), 2..=4) => (rank("input", &x), "rank 2, 3 or 4"),
        // ceil_mode is already extra bottom/right padding, which the kernel skips (max) or
        // leaves out of the count (average without count_include_pad).
        Op::Pool(p) if p.ceil_mode && p.kind == ir::PoolKind::Avg && p.count_include_pad => (
            "ceil_mode=1 with count_include_pad=1".into(),
            "ceil_mode=1 with count_include_pad=0 (or any MaxPool), or ceil_mode=0",
        ),
        Op::Pool(p) if p.dilations != [1, 1] => {
            (format!("dilations={:?}", p.dilations), "dilations=[1, 1]")
        }
        Op::Pool(_) if x.len() != 4 => (rank("input", &x), "rank 4 (2-D pooling)"),
        Op::Resize(_) if x.len() != 4 => (rank("input", &x), "rank 4"),
        Op::Resize(r) if r.sizes.get(..2) != x.get(..2) => (
            format!(
                "output size [{}] from input [{}] changes N or C",
                ir::fmt_shape(&r.sizes),
                ir::fmt_shape(&x)
            ),
            "resizing H and W only",
        ),
        Op::Pad(p) if p.mode != ir::PadMode::Constant || p.value != 0.0 => (
            format!("mode={:?} value={}", p.mode, p.value),
            "constant zero padding of H and W",
        ),
        Op::Pad(_) if x.len() != 4 => (rank("input", &x), "rank 4"),
        Op::Pad(p) if p.zero_hw().is_none() => (
            format!("pads={:?}", p.pads),
            "non-negative padding of H and W only",
        ),
        Op::Softmax { axis } if x.len() != 2 => (
            format!("axis={axis} over {}", rank("input", &x)),
            "axis=1 of a rank-2 [N, C] tensor",
        ),
        Op::Softmax { axis } if *axis != 1 => (format!("axis={axis}"), "axis=1"),
        _ => return None,
    })
}

/// Kernel choices made when lowering (the `--no-fuse` switches that are not graph passes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowerOptions {
    /// Dense 3x3 stride-1 convs of 16+ channels in, 32+ out, by Winograd F(2x2, 3x3)
    /// (`conv_winograd`).
    pub winograd: bool,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions { winograd: true }
    }
}

/// The lowering choices among the `--no-fuse` switches.
impl From<crate::passes::FuseOptions> for LowerOptions {
    fn from(f: crate::passes::FuseOptions) -> Self {
        LowerOptions {
            winograd: f.winograd,
        }
    }
}

/// [`lower_with`] the default options.
pub fn lower(g: &Graph) -> Result<Program, LowerError> {
    lower_with(g, LowerOptions::default())
}

/// Lowers an optimized graph (see `passes::optimize`) to runtime calls and a memory plan.
///
/// Every model input and output must carry the batch in dim 0 (the same `N` for all) and have
/// rank 2, 3 or 4; outputs are converted from the internal NCHW8c layout to plain NCHW. Every
/// node that cannot be lowered is reported at once ([`LowerError::Unsupported`]): lowering
/// goes on past such a node with a placeholder buffer for its outputs.
pub fn lower_with(g: &Graph, opts: LowerOptions) -> Result<Program, LowerError> {
    if g.inputs.is_empty() || g.outputs.is_empty() {
        return Err(LowerError::Io {
            inputs: g.inputs.len(),
            outputs: g.outputs.len(),
        });
    }
    // Int8 ops the kernels do not cover run in f32 (see `quant`): on a rewritten copy.
    if g.nodes.node_weights().any(|node| node.op.is_quantized()) {
        let mut owned = g.clone();
        let fallback = quant::prepare(&mut owned);
        let mut p = lower_graph(&owned, opts)?;
        for step in &mut p.steps {
            if step.node.is_some_and(|n| fallback.contains(&n)) {
                step.what = format!("{}: {}", quant::FALLBACK, step.what);
            }
        }
        return Ok(p);
    }
    lower_graph(g, opts)
}

fn lower_graph(g: &Graph, opts: LowerOptions) -> Result<Program, LowerError> {
    let batch = g
        .value(g.inputs[0])
        .ty
        .shape
        .first()
        .copied()
        .unwrap_or(1)
        .max(1);
    let mut l = Lowerer {
        g,
        opts,
        layouts: layout::assign(g),
        batch,
        loc: HashMap::new(),
        remapped: HashMap::new(),
        buffers: Vec::new(),
        blob: WeightBlob::new(),
        steps: Vec::new(),
        unsupported: Vec::new(),
        gated: HashMap::new(),
        u8_bufs: HashSet::new(),
        plain: HashSet::new(),
        u8_block: HashMap::new(),
        cat_written: HashSet::new(),
    };
    let io = |word: &str, v: ValueId| {
        let value = g.value(v);
        let s = &value.ty.shape;
        let blocker = if !matches!(s.len(), 2..=4) {
            Some(format!("rank {} [{}]", s.len(), ir::fmt_shape(s)))
        } else if s[0] != batch {
            Some(format!(
                "batch {} [{}] differs from the first input's {batch}",
                s[0],
                ir::fmt_shape(s)
            ))
        } else if !value.ty.dtype.is_float() {
            Some(format!("data type {:?}", value.ty.dtype))
        } else {
            None
        };
        blocker.map(|blocker| Unsupported {
            node: value.name.clone(),
            op: word.into(),
            blocker,
            supported:
                "f32 [N, C], [N, C, L] or [N, C, H, W], the same N for every input and output"
                    .into(),
        })
    };
    for &v in &g.inputs {
        l.unsupported.extend(io("input", v));
    }
    for &v in &g.outputs {
        l.unsupported.extend(io("output", v));
        if g.value(v).constant().is_some() {
            l.unsupported.push(Unsupported {
                node: g.value(v).name.clone(),
                op: "output".into(),
                blocker: "a constant (computed from no input)".into(),
                supported: "outputs computed from the inputs".into(),
            });
        }
    }
    if !l.unsupported.is_empty() {
        return Err(LowerError::Unsupported(l.unsupported));
    }
    for (i, &v) in g.inputs.iter().enumerate() {
        l.lower_input(i, v);
    }
    let order = g.topo_order().map_err(|n| {
        LowerError::Unsupported(vec![Unsupported {
            node: g.node(n).name.clone(),
            op: g.node(n).op.name().into(),
            blocker: "part of a cycle".into(),
            supported: "acyclic graphs".into(),
        }])
    })?;
    for n in order {
        let node = g.node(n);
        // Below a node already reported there is no buffer to read: give its outputs
        // placeholders so the nodes after it are still checked (and reported) too.
        if !l.unsupported.is_empty() {
            for &v in &node.inputs {
                if g.value(v).constant().is_none() && !l.loc.contains_key(&v) {
                    l.out_buf(v);
                }
            }
        }
        l.lower_node(n)?;
    }
    if !l.unsupported.is_empty() {
        return Err(LowerError::Unsupported(l.unsupported));
    }
    for (i, &v) in g.outputs.iter().enumerate() {
        l.lower_output(i, v);
    }
    let intervals = arena::liveness(&l.steps, &l.buffers);
    let placement = arena::place(&intervals, ALIGN_F32);
    let buffers = placement
        .offsets
        .iter()
        .zip(&l.buffers)
        .enumerate()
        .map(|(i, (&offset, &len))| Buffer {
            offset,
            len,
            u8: l.u8_bufs.contains(&i),
        })
        .collect();
    let ios = |vs: &[ValueId]| -> Vec<Io> {
        vs.iter()
            .map(|&v| Io {
                name: g.value(v).name.clone(),
                shape: g.value(v).ty.shape.clone(),
            })
            .collect()
    };
    Ok(Program {
        inputs: ios(&g.inputs),
        outputs: ios(&g.outputs),
        dynamic_batch: g.dynamic_batch,
        batch,
        buffers,
        arena_len: placement.len,
        weights: l.blob,
        steps: l.steps,
    })
}
