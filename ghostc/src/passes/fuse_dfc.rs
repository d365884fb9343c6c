//! Fuses GhostNetV2's DFC attention (decoupled fully connected attention) into one `DfcGate`
//! op.
//!
//! Rewrites `Mul(y, r)` (either operand order) where the gate `r` is computed from some `x` as
//!
//! ```text
//! r = Resize_nearest(gate(conv_n(... conv_1(AvgPool(x)))))
//! ```
//!
//! - `AvgPool` is an average `Pool` (GhostNetV2: 2x2, stride 2);
//! - the convs (1 to [`MAX_CONVS`]; GhostNetV2: a 1x1 conv, a depthwise 1x5 and a depthwise
//!   5x1, their BatchNorms folded) are plain or fused convs without residual or activation,
//!   with constant weights, except that the last one may carry the gate activation
//!   (`fuse_activation` folds a `Sigmoid` into it); otherwise the gate is a separate
//!   activation node, possibly reading a `Div`/`Mul` by the constant 1 (the Huawei code's
//!   `gate_fn(res / self.scale)` with `scale = 1.0`);
//! - the `Resize` is nearest-neighbour and its output has `y`'s shape (no broadcasting in the
//!   `Mul`), whatever the scale: `F.interpolate(size=out.shape[-2:])` maps 3x3 onto 7x7 on the
//!   last GhostNetV2 stage;
//! - every intermediate value is read only by the next node of the chain and is not a graph
//!   output (`x` and `y` may have any readers).
//!
//! into `DfcGate { pool, convs, gate, resize }` over `[y, x, w_1, b_1, ..]` (a conv without bias
//! gets a zero bias), taking the Mul's place. Every exporter form reaches this pass in the same
//! spelling: the importer resolves TorchScript's Shape/Gather/Concat size computation into the
//! Resize's sizes, local functions are inlined at import, and BatchNorms are folded by then.
//!
//! Runs after `fuse_ghost_module`, so `y` is typically a whole `Ghost` op (the module the gate
//! multiplies) and the planner can apply the gate in that module's epilogue.
//!
//! Deliberately does not:
//! - match a gate with activations between its convs, or a non-average pool (not DFC: no
//!   fused kernel would run it);
//! - match what the planner could not run as a DFC gate: a gate other than Sigmoid (the
//!   runtime's `dfc_gate` applies a sigmoid), convs other than 1x1 and depthwise, or a pool
//!   with dilation or ceil mode;
//! - fold anything into the Ghost op itself: the gate is its own op, so that the interpreter
//!   checks it and the planner chooses how to apply it.

use crate::ir::{
    Activation, BinaryOp, Conv, DfcGate, Graph, NodeId, Op, PoolKind, ResizeMode, ValueId,
};

use super::pattern::{
    absorb_nodes, bias_or_zeros, const_f32, conv_like, only_used_by, producer, rewrite_root,
    scalar_f32, ConvLike,
};
use super::{sweep, Pass, PassError};

/// Longest conv chain matched (GhostNetV2 has 3).
pub const MAX_CONVS: usize = 4;

/// See the module documentation. Does nothing when `enabled` is off.
pub struct FuseDfc {
    pub enabled: bool,
}

impl Pass for FuseDfc {
    fn name(&self) -> &'static str {
        "fuse_dfc"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        if !self.enabled {
            return Ok(false);
        }
        sweep(self, g, |g, n| {
            if g.node(n).op != Op::Binary(BinaryOp::Mul) {
                return false;
            }
            let (a, b) = (g.node(n).inputs[0], g.node(n).inputs[1]);
            for (y, r) in [(a, b), (b, a)] {
                if let Some(m) = match_dfc(g, n, y, r) {
                    apply(g, n, y, m);
                    return true;
                }
            }
            false
        })
    }
}

struct DfcMatch {
    pool: crate::ir::Pool,
    x: ValueId,
    /// In data order (the one reading the pooled tensor first).
    convs: Vec<ConvLike>,
    gate: Activation,
    resize: crate::ir::Resize,
    /// Every node of the chain but the Mul.
    nodes: Vec<NodeId>,
}

fn match_dfc(g: &Graph, mul: NodeId, y: ValueId, r: ValueId) -> Option<DfcMatch> {
    if y == r || !only_used_by(g, r, mul) {
        return None;
    }
    let out = g.node(mul).outputs[0];
    if g.value(y).ty != g.value(out).ty || g.value(r).ty.shape != g.value(out).ty.shape {
        return None;
    }
    let (resize_n, resize_node) = producer(g, r)?;
    let Op::Resize(resize) = &resize_node.op else {
        return None;
    };
    if resize.mode != ResizeMode::Nearest || resize_node.inputs.len() != 1 {
        return None;
    }
    let mut nodes = vec![resize_n];
    let mut v = resize_node.inputs[0];
    if !only_used_by(g, v, resize_n) {
        return None;
    }
    // The gate: a separate activation node, or fused into the last conv.
    let mut gate = None;
    if let Some((n, node)) = producer(g, v) {
        if let Op::Activation(a) = &node.op {
            gate = Some(*a);
            nodes.push(n);
            v = node.inputs[0];
            if !only_used_by(g, v, n) {
                return None;
            }
            // The Huawei code's `gate_fn(res / self.scale)` with scale 1.0.
            if let Some((n, node)) = producer(g, v) {
                if matches!(node.op, Op::Binary(BinaryOp::Div | BinaryOp::Mul))
                    && scalar_f32(g, node.inputs[1]) == Some(1.0)
                    && g.value(node.inputs[0]).ty == g.value(v).ty
                {
                    nodes.push(n);
                    v = node.inputs[0];
                    if !only_used_by(g, v, n) {
                        return None;
                    }
                }
            }
        }
    }
    let mut convs = Vec::new();
    loop {
        let (n, node) = producer(g, v)?;
        if let Op::Pool(pool) = &node.op {
            if pool.kind != PoolKind::Avg
                || pool.dilations != [1, 1]
                || pool.ceil_mode
                || convs.is_empty()
            {
                return None;
            }
            nodes.push(n);
            convs.reverse();
            return Some(DfcMatch {
                pool: pool.clone(),
                x: node.inputs[0],
                convs,
                gate: gate.filter(|a| *a == Activation::Sigmoid)?,
                resize: resize.clone(),
                nodes,
            });
        }
        let c = conv_like(node)?;
        if !pointwise_or_depthwise(g, &c) {
            return None;
        }
        if let Some(a) = c.act {
            // Only the last conv may carry the gate, and only when there is no gate node.
            if !convs.is_empty() || gate.is_some() {
                return None;
            }
            gate = Some(a);
        }
        const_f32(g, c.w)?;
        if let Some(b) = c.b {
            const_f32(g, b)?;
        }
        if convs.len() == MAX_CONVS {
            return None;
        }
        nodes.push(n);
        v = c.x;
        convs.push(c);
        if !only_used_by(g, v, n) {
            return None;
        }
    }
}

/// A 1x1 conv (stride 1, no padding, no groups) or a depthwise conv (one input channel per
/// output channel, any kernel, stride, padding and dilation): the convs the planner runs at
/// the pooled resolution.
fn pointwise_or_depthwise(g: &Graph, c: &ConvLike) -> bool {
    let ws = &g.value(c.w).ty.shape;
    let cin = g.value(c.x).ty.shape.get(1).copied();
    let k = &c.conv;
    let pointwise = k.kernel == [1, 1]
        && k.strides == [1, 1]
        && k.pads == [0; 4]
        && k.dilations == [1, 1]
        && k.group == 1;
    let depthwise = ws.len() == 4 && ws[1] == 1 && Some(k.group) == cin && ws[0] == k.group;
    pointwise || depthwise
}

fn apply(g: &mut Graph, mul: NodeId, y: ValueId, m: DfcMatch) {
    let name = g.node(mul).name.clone();
    let mut inputs = vec![y, m.x];
    let mut convs: Vec<Conv> = Vec::new();
    for (i, c) in m.convs.iter().enumerate() {
        let b = bias_or_zeros(g, c, &format!("{name}.dfc{i}"));
        inputs.extend([c.w, b]);
        convs.push(c.conv.clone());
    }
    let op = Op::DfcGate(DfcGate {
        pool: m.pool,
        convs,
        gate: m.gate,
        resize: m.resize,
    });
    rewrite_root(g, mul, op, inputs, name);
    absorb_nodes(g, mul, &m.nodes);
}
