//! Recognizes the distribution integral of an ultralytics detection head (DFL) and replaces it
//! with one `Dfl` op.
//!
//! The export of `DFL.forward` is `Reshape([N, G*R, L] -> [N, G, R, L])`,
//! `Transpose([0, 2, 1, 3])`, `Softmax(axis=1)`, a 1x1 `Conv` from `R` channels to 1 without
//! bias (weights `0..R` in ultralytics), and `Reshape([N, 1, G, L] -> [N, G, L])`. As one op it
//! is a softmax over each side's `R` consecutive channels and a dot product with the weights,
//! computed per pixel by one kernel (`ghost_runtime::Kernels::dfl`); the transposed rank-4
//! tensors in between never exist.
//!
//! Conditions: each intermediate has exactly one reader and is not a graph output; the shapes
//! are as above; the conv is 1x1, stride 1, no padding, one group, a constant `[1, R, 1, 1]`
//! weight and no bias (or a zero one). The last Reshape keeps its output value.
//!
//! Always on, not a `--no-fuse` switch: the five nodes have no lowering of their own (a softmax
//! across a transposed axis), so without this pass the head does not compile.
//!
//! Deliberately not done here: other softmax-then-project spellings (a MatMul with the
//! weights, a ReduceSum of a Mul); they stay as they are and are reported by the planner.

use crate::ir::{Graph, NodeId, Op, ValueId};

use super::pattern::{
    absorb_nodes, add_f32_const, const_f32, producer, reshape_transpose, rewrite_root, sole_use,
    ReshapeTranspose,
};
use super::{sweep, Pass, PassError};

/// See the module documentation.
pub struct FuseDfl;

impl Pass for FuseDfl {
    fn name(&self) -> &'static str {
        "fuse_dfl"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        sweep(self, g, |g, n| {
            let Some(m) = matched(g, n) else {
                return false;
            };
            let name = g.node(n).name.clone();
            let w = add_f32_const(g, format!("{name}.dfl_weights"), vec![m.bins], m.weights);
            rewrite_root(g, n, Op::Dfl { bins: m.bins }, vec![m.x, w], name);
            absorb_nodes(g, n, &m.absorbed);
            true
        })
    }
}

struct Matched {
    bins: usize,
    x: ValueId,
    weights: Vec<f32>,
    /// The conv, softmax, transpose and first reshape, consumers first.
    absorbed: [NodeId; 4],
}

/// Walks back from the last Reshape `n`.
fn matched(g: &Graph, n: NodeId) -> Option<Matched> {
    let node = g.node(n);
    let Op::Reshape { shape: out } = &node.op else {
        return None;
    };
    let single = |v: ValueId, reader: NodeId| sole_use(g, v) == Some((reader, 0));
    let (c, cnode) = producer(g, node.inputs[0])?;
    let Op::Conv(conv) = &cnode.op else {
        return None;
    };
    let (s, snode) = producer(g, cnode.inputs[0])?;
    let Op::Softmax { axis: 1 } = snode.op else {
        return None;
    };
    let ReshapeTranspose {
        reshape: r,
        split,
        transpose: t,
        perm,
        x,
    } = reshape_transpose(g, snode.inputs[0])?;
    let xs = &g.value(x).ty.shape;
    let [batch, channels, pixels] = xs[..] else {
        return None;
    };
    let &[sb, groups, bins, sl] = split else {
        return None;
    };
    let weights = const_f32(g, cnode.inputs[1])?;
    let zero_bias = match cnode.inputs.get(2) {
        None => true,
        Some(&b) => const_f32(g, b).is_some_and(|b| b.iter().all(|&v| v == 0.0)),
    };
    let conv_ok = conv.kernel == [1, 1]
        && conv.strides == [1, 1]
        && conv.pads == [0; 4]
        && conv.dilations == [1, 1]
        && conv.group == 1
        && g.value(cnode.inputs[1]).ty.shape == [1, bins, 1, 1]
        && zero_bias;
    let ok = sb == batch
        && sl == pixels
        && groups * bins == channels
        && bins > 0
        && perm == [0, 2, 1, 3]
        && *out == [batch, groups, pixels]
        && conv_ok
        && single(g.node(r).outputs[0], t)
        && single(g.node(t).outputs[0], s)
        && single(snode.outputs[0], c)
        && single(cnode.outputs[0], n);
    ok.then(|| Matched {
        bins,
        x,
        weights: weights.to_vec(),
        absorbed: [c, s, t, r],
    })
}
