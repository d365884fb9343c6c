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
//! Identity, Concat, Slice, Resize). This file holds the shared state, the helpers every family
//! uses and the driver [`lower`].
//!
//! Epilogue folding done here (the passes fuse graph nodes; these are runtime-level choices the
//! graph cannot express):
//! - a squeeze-excite's squeeze (the channel means) is accumulated by the epilogue of the step
//!   that writes its input, when that is the step just before (`channel_sums`), instead of a
//!   separate global-average-pool pass;
//! - a squeeze-excite whose only reader is a 1x1 conv on more than one pixel is not
//!   materialized: the conv's packed weights are scaled by the gate (`ScalePacked`) and it reads
//!   the un-gated input;
//! - a 1x1 conv on one pixel runs as a GEMV (`Fc`);
//! - a fused Sigmoid/Tanh/LeakyRelu (no epilogue form) becomes the conv plus an in-place
//!   `Unary`; a standalone activation with an epilogue form becomes a `ChannelAssign` of zeros
//!   carrying it;
//! - Sub/Div by a constant become Add/Mul of the negated/reciprocal per-channel vector, an
//!   unfused BatchNorm a per-channel scale and shift, and Gemm's alpha, beta and transposes are
//!   folded into the packed weights.
//!
//! Deliberately not done here: choosing fusions (passes do that) and deciding offsets (the arena
//! plan runs on the finished step list, see `arena`).

mod conv;
mod dense;
mod dfc;
mod elementwise;
mod pool;
mod se;
mod shape;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

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
    /// User-facing: the model uses ops (or op configurations) code generation does not cover.
    #[error("code generation does not support {}: {}", if .0.len() == 1 { "this node" } else { "these nodes" }, .0.join("; "))]
    Unsupported(Vec<String>),
    /// User-facing: models with several inputs or outputs are not compiled yet.
    #[error("code generation supports one input and one output; the model has {inputs} inputs and {outputs} outputs")]
    Io { inputs: usize, outputs: usize },
    /// A ghostc bug: the runtime refused arguments lowering computed.
    #[error("node '{node}': the runtime rejected packed weights ({detail}); this is a ghostc bug")]
    Pack { node: String, detail: String },
}

struct Lowerer<'g> {
    g: &'g Graph,
    layouts: HashMap<ValueId, ChannelLayout>,
    batch: usize,
    loc: HashMap<ValueId, Loc>,
    /// Remapped copies of values already made: (value, layout) -> buffer.
    remapped: HashMap<(ValueId, Vec<usize>), Loc>,
    buffers: Vec<usize>,
    blob: WeightBlob,
    steps: Vec<Step>,
    unsupported: Vec<String>,
    /// Values that are another value gated by an SE: stored un-gated (aliasing their input),
    /// with the gate vector their single 1x1 consumer folds into its weights.
    gated: HashMap<ValueId, Loc>,
}

/// The epilogue form of an activation (`None` means identity); `None` for the activations the
/// runtime applies only as a separate pass (see [`unary_of`]).
fn act_of(a: Option<Activation>) -> Option<rt::Activation> {
    Some(match a {
        None => rt::Activation::None,
        Some(Activation::Relu) => rt::Activation::Relu,
        Some(Activation::Clamp { lo, hi }) => rt::Activation::Clamp { lo, hi },
        Some(Activation::HardSigmoid { alpha, beta }) => {
            rt::Activation::HardSigmoid { alpha, beta }
        }
        Some(Activation::HardSwish) => rt::Activation::HardSwish,
        Some(_) => return None,
    })
}

/// The in-place form of the activations with no epilogue form.
fn unary_of(a: Activation) -> Option<Unary> {
    match a {
        Activation::Sigmoid => Some(Unary::Sigmoid),
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

    /// Spatial size per image: (h, w) for rank 4, (1, 1) for rank 2.
    fn hw(&self, v: ValueId) -> (usize, usize) {
        let s = self.shape(v);
        if s.len() == 4 {
            (s[2], s[3])
        } else {
            (1, 1)
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
    fn push_copy(&mut self, n: NodeId, why: &str, src: Loc, dst: Loc, len: usize) {
        self.push(
            n,
            format!("copy for in-place {why}"),
            Kernel::Copy { src, dst, len },
        );
    }

    fn unsupported(&mut self, n: NodeId, why: &str) {
        let node = self.g.node(n);
        self.unsupported
            .push(format!("'{}' ({}): {}", node.name, node.op.name(), why));
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
        let node = self.g.node(n).clone();
        let rank_in = node.inputs.first().map_or(0, |&x| self.shape(x).len());
        match &node.op {
            Op::Conv(c) => self.lower_plain_conv(n, c),
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
            Op::Identity => {
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
            Op::Concat { axis: 1 } if matches!(self.shape(node.outputs[0]).len(), 2 | 4) => {
                self.lower_concat(n);
                Ok(())
            }
            Op::Slice(s) if s.axes == [1] && s.steps == [1] && rank_in == 4 => {
                self.lower_slice(n, s);
                Ok(())
            }
            Op::Pool(p) if rank_in == 4 && p.dilations == [1, 1] && !p.ceil_mode => {
                self.lower_pool(n, p);
                Ok(())
            }
            Op::Resize(r) if rank_in == 4 && r.sizes[..2] == self.shape(node.inputs[0])[..2] => {
                self.lower_resize(n, r);
                Ok(())
            }
            Op::Softmax { axis } if rank_in == 2 && *axis == 1 => {
                self.lower_softmax(n);
                Ok(())
            }
            _ => {
                self.unsupported(n, "no kernel for this op or configuration");
                Ok(())
            }
        }
    }
}

/// Lowers an optimized graph (see `passes::optimize`) to runtime calls and a memory plan.
pub fn lower(g: &Graph) -> Result<Program, LowerError> {
    if g.inputs.len() != 1 || g.outputs.len() != 1 {
        return Err(LowerError::Io {
            inputs: g.inputs.len(),
            outputs: g.outputs.len(),
        });
    }
    // No runtime kernel takes integers yet (issue 14): name every quantized node at once.
    let quantized: Vec<String> = g
        .topo_order()
        .unwrap_or_else(|_| g.nodes.node_indices().collect())
        .into_iter()
        .filter(|&n| g.node(n).op.is_quantized())
        .map(|n| {
            let node = g.node(n);
            format!(
                "'{}' ({}): quantized ops are not lowered yet",
                node.name,
                node.op.name()
            )
        })
        .collect();
    if !quantized.is_empty() {
        return Err(LowerError::Unsupported(quantized));
    }
    let (input, output) = (g.inputs[0], g.outputs[0]);
    let batch = g.value(input).ty.shape.first().copied().unwrap_or(1).max(1);
    let mut l = Lowerer {
        g,
        layouts: layout::assign(g),
        batch,
        loc: HashMap::new(),
        remapped: HashMap::new(),
        buffers: Vec::new(),
        blob: WeightBlob::new(),
        steps: Vec::new(),
        unsupported: Vec::new(),
        gated: HashMap::new(),
    };
    let in_shape = g.value(input).ty.shape.clone();
    let out_shape = g.value(output).ty.shape.clone();
    if !matches!(in_shape.len(), 2 | 4)
        || !matches!(out_shape.len(), 2 | 4)
        || out_shape.first() != Some(&batch)
    {
        return Err(LowerError::Unsupported(vec![format!(
            "model input [{}] / output [{}]: expected [N, C, H, W] or [N, C] with the same N",
            ir::fmt_shape(&in_shape),
            ir::fmt_shape(&out_shape)
        )]));
    }
    l.lower_input(input);
    let order = g.topo_order().map_err(|n| {
        LowerError::Unsupported(vec![format!("cycle through '{}'", g.node(n).name)])
    })?;
    for n in order {
        // Below an unsupported node there is no buffer to read: that node is already reported,
        // so skip its dependents instead of indexing their missing input (which panicked).
        let starved = |v: &ValueId| g.value(*v).constant().is_none() && !l.loc.contains_key(v);
        if !l.unsupported.is_empty() && g.node(n).inputs.iter().any(starved) {
            continue;
        }
        l.lower_node(n)?;
    }
    if !l.unsupported.is_empty() {
        return Err(LowerError::Unsupported(l.unsupported));
    }
    l.lower_output(output);
    let intervals = arena::liveness(&l.steps, &l.buffers);
    let placement = arena::place(&intervals, ALIGN_F32);
    let buffers = placement
        .offsets
        .iter()
        .zip(&l.buffers)
        .map(|(&offset, &len)| Buffer { offset, len })
        .collect();
    let per_image = |s: &[usize]| {
        let mut s = s.to_vec();
        s[0] = 1;
        s
    };
    Ok(Program {
        input: Io {
            name: g.value(input).name.clone(),
            shape: in_shape.clone(),
        },
        output: Io {
            name: g.value(output).name.clone(),
            shape: out_shape.clone(),
        },
        dynamic_batch: g.dynamic_batch,
        batch,
        image_input: per_image(&in_shape),
        image_output: per_image(&out_shape),
        buffers,
        arena_len: placement.len,
        weights: l.blob,
        steps: l.steps,
    })
}
