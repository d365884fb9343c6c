//! Folds a residual `Add` into the epilogue of the op producing one of its operands.
//!
//! Rewrites `Add(y, shortcut)` (either operand order) where `y` is produced by a `Ghost`, a
//! `FusedConv` or a plain `Conv` without residual, `y` is read only by this Add and is not a
//! graph output, and `y`, `shortcut` and the sum all have the same type (no broadcasting). The
//! producer's op gets `residual = true` and `shortcut` as its last input, and takes the Add's
//! place (keeping the sum's value, name and graph-output status); a plain Conv becomes a
//! `FusedConv` without activation. The shortcut can be anything: the block input, or a
//! downsample branch (which may itself be a FusedConv).
//!
//! When both operands qualify, a `Ghost` is preferred over a conv (the residual belongs in
//! ghost2's epilogue, fusion ladder step 4), then the first operand.
//!
//! Preconditions: `fuse_ghost_module` has run, otherwise the Add reads a Slice/Concat and
//! nothing matches for Ghost modules.
//!
//! Deliberately does not:
//! - absorb an activation after the Add: the ops define `y = act(conv) + residual`, so a ReLU
//!   after the sum stays its own node;
//! - fuse a broadcasting Add (bias-like constants, per-channel scales);
//! - fuse into a Linear, SqueezeExcite or anything else without a residual slot.

use crate::ir::{FusedConv, Graph, NodeId, Op, ValueId};

use super::pattern::{
    absorb_nodes, bias_or_zeros, conv_like, only_used_by, producer, rewrite_root,
};
use super::{sweep, Pass, PassError};

/// See the module documentation. Does nothing when `enabled` is off.
pub struct FuseResidual {
    pub enabled: bool,
}

impl Pass for FuseResidual {
    fn name(&self) -> &'static str {
        "fuse_residual"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        if !self.enabled {
            return Ok(false);
        }
        sweep(self, g, |g, n| {
            g.node(n).op == Op::Binary(crate::ir::BinaryOp::Add) && fuse_one(g, n)
        })
    }
}

/// How much a producer of an Add operand wants the residual: higher is better, 0 is never.
fn rank(g: &Graph, add: NodeId, y: ValueId) -> u8 {
    let Some((_, node)) = producer(g, y) else {
        return 0;
    };
    if !only_used_by(g, y, add) {
        return 0;
    }
    match &node.op {
        Op::Ghost(gh) if !gh.residual => 2,
        Op::FusedConv(f) if !f.residual => 1,
        Op::Conv(_) => 1,
        _ => 0,
    }
}

fn fuse_one(g: &mut Graph, add: NodeId) -> bool {
    let (a, b) = (g.node(add).inputs[0], g.node(add).inputs[1]);
    let sum_ty = &g.value(g.node(add).outputs[0]).ty;
    if a == b || g.value(a).ty != *sum_ty || g.value(b).ty != *sum_ty {
        return false;
    }
    let (rank_a, rank_b) = (rank(g, add, a), rank(g, add, b));
    let (y, shortcut) = if rank_a >= rank_b { (a, b) } else { (b, a) };
    if rank_a.max(rank_b) == 0 {
        return false;
    }
    let (prod, prod_node) = producer(g, y).expect("ranked above");
    let name = prod_node.name.clone();
    let mut inputs = prod_node.inputs.clone();
    let op = match prod_node.op.clone() {
        Op::Ghost(gh) => Op::Ghost(crate::ir::Ghost {
            residual: true,
            ..gh
        }),
        Op::FusedConv(f) => Op::FusedConv(FusedConv {
            residual: true,
            ..f
        }),
        Op::Conv(conv) => {
            let c = conv_like(prod_node).expect("a Conv is conv-like");
            let b = bias_or_zeros(g, &c, &name);
            inputs = vec![c.x, c.w, b];
            Op::FusedConv(FusedConv {
                conv,
                act: None,
                residual: true,
            })
        }
        _ => return false,
    };
    inputs.push(shortcut);
    rewrite_root(g, add, op, inputs, name);
    absorb_nodes(g, add, &[prod]);
    true
}
