//! Fuses a squeeze-and-excitation subgraph into one `SqueezeExcite` op.
//!
//! Rewrites `Mul(x, s)` (either operand order), x `[n, c, h, w]`, where the gate `s` is
//! `[n, c, 1, 1]` and computed from x alone as
//!
//! ```text
//! s = Reshape?(gate(FC2(Reshape?(act(FC1(Reshape?(pool(x))))))))
//! ```
//!
//! - `pool` is `GlobalAveragePool` or `ReduceMean` over axes `[2, 3]` (either keepdims);
//! - FC1 `[c -> r]` and FC2 `[r -> c]` are fully connected layers in any spelling the earlier
//!   passes leave: a 1x1 conv (plain or fused, group 1, no padding) on a 1x1 map (timm's
//!   `conv_reduce` / `conv_expand`), a `Linear`, or a `Gemm` with constant weights (the Huawei
//!   form: AdaptiveAvgPool -> view -> Linear -> ReLU -> Linear -> hard-sigmoid -> view);
//! - `act` and `gate` are each either fused into their FC or a separate activation node; both
//!   must be present and be activations the runtime's `se_gate` applies in its FC epilogues
//!   (ReLU, Clip, HardSigmoid, HardSwish, Sigmoid, SiLU). `act` is ReLU in GhostNet and
//!   MobileNetV3, SiLU in EfficientNet (recognized from `Mul(x, Sigmoid(x))` by
//!   `fuse_activation`); `gate` is typically `HardSigmoid`, possibly recognized from
//!   `clamp(x + 3, 0, 6) / 6` by `fuse_activation`, or `Clip[0, 1]` or `Sigmoid`;
//! - the Reshapes only move between `[n, k]` and `[n, k, 1, 1]`;
//! - every intermediate value is read only by the next node of the chain and is not a graph
//!   output (x itself may have any readers).
//!
//! into `SqueezeExcite { act, gate }` over `[x, w1 [r, c], b1 [r], w2 [c, r], b2 [c]]` (new
//! constants; 1x1 conv weights reshaped to 2-D), taking the Mul's place.
//!
//! Preconditions: for the Huawei form, `fuse_activation` must have run with `linear` and `act`
//! on, so that the decomposed hard-sigmoid is one activation node.
//!
//! Deliberately does not:
//! - match an SE whose FCs have no activation between them, or no gate (the op has no slot for
//!   "none");
//! - match an SE with LeakyRelu or Tanh inside or as the gate: `se_gate` (the op's only
//!   lowering) has no epilogue form of them, while op by op every piece lowers;
//! - fold the gate into the next conv's weights (step 5 of the fusion ladder is a codegen
//!   matter: it needs the gate per inference).

use crate::ir::{Activation, BinaryOp, Graph, NodeId, Op, ReduceKind, SqueezeExcite, ValueId};

use super::pattern::{
    absorb_nodes, add_f32_const, dense_like, only_used_by, producer, rewrite_root, Dense,
};
use super::{sweep, Pass, PassError};

/// See the module documentation. Does nothing when `enabled` is off.
pub struct FuseSqueezeExcite {
    pub enabled: bool,
}

impl Pass for FuseSqueezeExcite {
    fn name(&self) -> &'static str {
        "fuse_squeeze_excite"
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
            for (x, gate) in [(a, b), (b, a)] {
                if let Some(m) = match_se(g, n, x, gate) {
                    apply(g, n, x, m);
                    return true;
                }
            }
            false
        })
    }
}

struct SeMatch {
    fc1: Dense,
    fc2: Dense,
    act: Activation,
    gate: Activation,
    /// Nodes of the gate chain, from the Mul's input back to the pool.
    absorbed: Vec<NodeId>,
}

/// Walks the gate chain backwards from `reader`'s input `v`.
struct Walk<'g> {
    g: &'g Graph,
    v: ValueId,
    reader: NodeId,
    absorbed: Vec<NodeId>,
}

impl Walk<'_> {
    /// Steps to the producer of the current value if it is read only by the current reader and
    /// `accept` likes it; returns the producer.
    fn step(&mut self, accept: impl Fn(&Op) -> bool) -> Option<NodeId> {
        let (n, node) = producer(self.g, self.v)?;
        if !accept(&node.op) || !only_used_by(self.g, self.v, self.reader) {
            return None;
        }
        self.absorbed.push(n);
        self.reader = n;
        self.v = node.inputs[0];
        Some(n)
    }

    /// Skips one Reshape between `[n, k]` and `[n, k, 1, 1]`, if there is one.
    fn skip_reshape(&mut self, n: usize, k: usize) -> Option<()> {
        let Some((_, node)) = producer(self.g, self.v) else {
            return Some(());
        };
        if !matches!(node.op, Op::Reshape { .. }) {
            return Some(());
        }
        let out = &self.g.value(self.v).ty.shape;
        let inp = &self.g.value(node.inputs[0]).ty.shape;
        if !is_vector_form(out, n, k) || !is_vector_form(inp, n, k) {
            return None;
        }
        self.step(|op| matches!(op, Op::Reshape { .. })).map(|_| ())
    }

    /// An activation node (absorbed) if the current value is one's output.
    fn activation(&mut self) -> Option<Activation> {
        let (_, node) = producer(self.g, self.v)?;
        let Op::Activation(a) = node.op else {
            return None;
        };
        self.step(|op| matches!(op, Op::Activation(_))).map(|_| a)
    }

    /// A fully connected layer producing the current value (absorbed), with its fused act.
    fn dense(&mut self) -> Option<Dense> {
        let (_, node) = producer(self.g, self.v)?;
        let dense = dense_like(self.g, node)?;
        self.step(|_| true)?;
        Some(dense)
    }
}

/// `[n, k]` or `[n, k, 1, 1]`.
fn is_vector_form(shape: &[usize], n: usize, k: usize) -> bool {
    shape == [n, k] || shape == [n, k, 1, 1]
}

/// An activation either fused into the FC or as a separate node, never both.
fn one_act(separate: Option<Activation>, fused: Option<Activation>) -> Option<Activation> {
    match (separate, fused) {
        (Some(a), None) | (None, Some(a)) => Some(a),
        _ => None,
    }
}

/// Whether the runtime's `se_gate` can apply `a`: it has an epilogue form, by the mapping
/// lowering uses (see the module docs).
fn in_se_gate(a: Activation) -> bool {
    crate::plan::lower::act_of(Some(a)).is_some()
}

fn match_se(g: &Graph, mul: NodeId, x: ValueId, gate_v: ValueId) -> Option<SeMatch> {
    let x_shape = &g.value(x).ty.shape;
    let [n, c, _, _] = x_shape[..] else {
        return None;
    };
    let mul_out = g.node(mul).outputs[0];
    if g.value(mul_out).ty.shape != *x_shape
        || g.value(gate_v).ty.shape != [n, c, 1, 1]
        || x == gate_v
    {
        return None;
    }
    let mut walk = Walk {
        g,
        v: gate_v,
        reader: mul,
        absorbed: vec![],
    };

    walk.skip_reshape(n, c)?;
    let gate_node = walk.activation();
    walk.skip_reshape(n, c)?;
    let fc2 = walk.dense()?;
    let gate = one_act(gate_node, fc2.act)?;
    let r = fc2.k;
    if fc2.m != c || !is_vector_form(&g.value(walk.v).ty.shape, n, r) {
        return None;
    }

    walk.skip_reshape(n, r)?;
    let act_node = walk.activation();
    walk.skip_reshape(n, r)?;
    let fc1 = walk.dense()?;
    let act = one_act(act_node, fc1.act)?;
    if !in_se_gate(act) || !in_se_gate(gate) {
        return None;
    }
    if fc1.m != r || fc1.k != c || !is_vector_form(&g.value(walk.v).ty.shape, n, c) {
        return None;
    }

    walk.skip_reshape(n, c)?;
    walk.step(|op| match op {
        Op::GlobalAveragePool => true,
        Op::Reduce(red) => red.kind == ReduceKind::Mean && red.axes == [2, 3],
        _ => false,
    })?;
    if walk.v != x {
        return None;
    }
    Some(SeMatch {
        fc1,
        fc2,
        act,
        gate,
        absorbed: walk.absorbed,
    })
}

fn apply(g: &mut Graph, mul: NodeId, x: ValueId, m: SeMatch) {
    let name = g.node(mul).name.clone();
    let (r, c) = (m.fc1.m, m.fc1.k);
    let w1 = add_f32_const(g, format!("{name}.se_w1"), vec![r, c], m.fc1.w);
    let b1 = add_f32_const(g, format!("{name}.se_b1"), vec![r], m.fc1.b);
    let w2 = add_f32_const(g, format!("{name}.se_w2"), vec![c, r], m.fc2.w);
    let b2 = add_f32_const(g, format!("{name}.se_b2"), vec![c], m.fc2.b);
    let op = Op::SqueezeExcite(SqueezeExcite {
        act: m.act,
        gate: m.gate,
    });
    rewrite_root(g, mul, op, vec![x, w1, b1, w2, b2], name);
    absorb_nodes(g, mul, &m.absorbed);
}
