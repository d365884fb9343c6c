//! Matching helpers shared by the passes: use counts, constant access, new constants, and views
//! over the several spellings of a convolution and of a fully connected layer.
//!
//! Everything here only reads the graph, except the `add_*_const` helpers, which append new
//! constants (never mutating an existing, possibly shared, tensor).

use std::sync::Arc;

use crate::ir::{Activation, Conv, DType, Gemm, Graph, Node, NodeId, Op, Tensor, ValueId};

/// The node reading `v`, if `v` has exactly one use (one input slot of one node) and is not a
/// graph output: the condition for a producer to be absorbed into its consumer.
pub(crate) fn sole_use(g: &Graph, v: ValueId) -> Option<(NodeId, usize)> {
    if g.is_output(v) {
        return None;
    }
    let uses = g.consumers(v);
    (uses.len() == 1).then(|| uses[0])
}

/// `true` when `v` has exactly one use and it is `node`.
pub(crate) fn only_used_by(g: &Graph, v: ValueId, node: NodeId) -> bool {
    sole_use(g, v).is_some_and(|(n, _)| n == node)
}

/// The node producing `v` (as its output 0 of a single-output node), with the node.
pub(crate) fn producer(g: &Graph, v: ValueId) -> Option<(NodeId, &Node)> {
    let n = g.producer(v)?;
    let node = g.node(n);
    (node.outputs.len() == 1).then_some((n, node))
}

/// `v = Transpose(Reshape(x))` (each node single-output): the Reshape and its target shape,
/// the Transpose and its permutation, and `x`. The export of `x.view(..).transpose(..)`.
pub(crate) struct ReshapeTranspose<'g> {
    pub reshape: NodeId,
    pub split: &'g [usize],
    pub transpose: NodeId,
    pub perm: &'g [usize],
    pub x: ValueId,
}

pub(crate) fn reshape_transpose(g: &Graph, v: ValueId) -> Option<ReshapeTranspose<'_>> {
    let (transpose, tnode) = producer(g, v)?;
    let Op::Transpose { perm } = &tnode.op else {
        return None;
    };
    let (reshape, rnode) = producer(g, tnode.inputs[0])?;
    let Op::Reshape { shape: split } = &rnode.op else {
        return None;
    };
    Some(ReshapeTranspose {
        reshape,
        split,
        transpose,
        perm,
        x: rnode.inputs[0],
    })
}

/// The data of an f32 constant.
pub(crate) fn const_f32(g: &Graph, v: ValueId) -> Option<&[f32]> {
    let t = g.value(v).constant()?;
    if t.dtype() != DType::F32 {
        return None;
    }
    t.as_f32()
}

/// The value of a one-element f32 constant (shape `[]`, `[1]`, `[1, 1]`, ...).
pub(crate) fn scalar_f32(g: &Graph, v: ValueId) -> Option<f32> {
    let data = const_f32(g, v)?;
    (data.len() == 1).then(|| data[0])
}

/// A per-channel constant of `n` channels read off a tensor broadcastable to `[.., n]` along
/// the last axis: shapes `[]`, `[1]`, `[n]`, `[1, n]`, `[1, 1, n]`... Returns `n` values.
pub(crate) fn per_last_axis(g: &Graph, v: ValueId, n: usize) -> Option<Vec<f32>> {
    let data = const_f32(g, v)?;
    let shape = &g.value(v).ty.shape;
    let leading_ones = shape.iter().rev().skip(1).all(|&d| d == 1);
    match (shape.last(), data.len()) {
        (_, 1) => Some(vec![data[0]; n]),
        (Some(&last), len) if last == n && len == n && leading_ones => Some(data.to_vec()),
        _ => None,
    }
}

/// Appends an f32 constant.
pub(crate) fn add_f32_const(
    g: &mut Graph,
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
) -> ValueId {
    let tensor = Tensor::from_f32(shape, data).expect("caller passes data matching the shape");
    g.add_const(name, Arc::new(tensor))
}

/// Removes nodes that a rewrite of `root` has made unused, recording them in `root`'s
/// provenance ([`Graph::absorb`]). Each must no longer be read by anything.
pub(crate) fn absorb_nodes(g: &mut Graph, root: NodeId, nodes: &[NodeId]) {
    for &n in nodes {
        debug_assert!(
            g.node(n).outputs.iter().all(|&v| g.use_count(v) == 0),
            "removing node '{}' whose output is still used",
            g.node(n).name
        );
        g.absorb(root, n);
    }
}

/// Rewrites `root` in place into `op` over `inputs`, keeping its output value (so its name, its
/// graph-output status and every consumer stay), and renames the node to `name`.
pub(crate) fn rewrite_root(
    g: &mut Graph,
    root: NodeId,
    op: Op,
    inputs: Vec<ValueId>,
    name: String,
) {
    g.set_inputs(root, inputs);
    let node = g.node_mut(root);
    node.op = op;
    node.name = name;
}

/// A convolution with its optional bias and fused activation: a plain `Conv`, or a `FusedConv`
/// without residual.
#[derive(Clone, Debug)]
pub(crate) struct ConvLike {
    pub conv: Conv,
    pub act: Option<Activation>,
    pub x: ValueId,
    pub w: ValueId,
    pub b: Option<ValueId>,
}

pub(crate) fn conv_like(node: &Node) -> Option<ConvLike> {
    let (conv, act) = match &node.op {
        Op::Conv(c) => (c.clone(), None),
        Op::FusedConv(f) if !f.residual => (f.conv.clone(), f.act),
        _ => return None,
    };
    let x = *node.inputs.first()?;
    let w = *node.inputs.get(1)?;
    Some(ConvLike {
        conv,
        act,
        x,
        w,
        b: node.inputs.get(2).copied(),
    })
}

/// The bias of a conv-like node, or a new all-zero constant of `out_channels` entries when it
/// has none (a FusedConv always carries one).
pub(crate) fn bias_or_zeros(g: &mut Graph, conv: &ConvLike, name: &str) -> ValueId {
    match conv.b {
        Some(b) => b,
        None => {
            let out_channels = g.value(conv.w).ty.shape.first().copied().unwrap_or(0);
            add_f32_const(
                g,
                format!("{name}.zero_bias"),
                vec![out_channels],
                vec![0.0; out_channels],
            )
        }
    }
}

/// A fully connected layer `y = act(x @ W^T + b)` (x being the node's input 0) with `W` `[m, k]` and `b` `[m]` read out of
/// constants, whatever op spells it: `Linear`, a `Gemm` with constant B (and C), or a 1x1 conv
/// (plain or fused, no residual) applied to a 1x1 map.
#[derive(Clone, Debug)]
pub(crate) struct Dense {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub m: usize,
    pub k: usize,
    pub act: Option<Activation>,
}

pub(crate) fn dense_like(g: &Graph, node: &Node) -> Option<Dense> {
    match &node.op {
        Op::Linear { act } => {
            let (w, b) = (*node.inputs.get(1)?, *node.inputs.get(2)?);
            let [m, k] = g.value(w).ty.shape[..] else {
                return None;
            };
            let w_data = const_f32(g, w)?;
            let b_data = per_last_axis(g, b, m)?;
            Some(Dense {
                w: w_data.to_vec(),
                b: b_data,
                m,
                k,
                act: *act,
            })
        }
        Op::Gemm(gemm) => {
            let (w, b, m, k) = gemm_as_dense(g, node, gemm)?;
            Some(Dense {
                w,
                b,
                m,
                k,
                act: None,
            })
        }
        Op::Conv(_) | Op::FusedConv(_) => {
            let c = conv_like(node)?;
            let x_shape = &g.value(c.x).ty.shape;
            let w_shape = &g.value(c.w).ty.shape;
            let one_by_one = c.conv.kernel == [1, 1] && c.conv.pads == [0; 4] && c.conv.group == 1;
            if !one_by_one
                || x_shape.len() != 4
                || x_shape[2..] != [1, 1]
                || w_shape.len() != 4
                || w_shape[2..] != [1, 1]
            {
                return None;
            }
            let (m, k) = (w_shape[0], w_shape[1]);
            let w = const_f32(g, c.w)?.to_vec();
            let b = match c.b {
                Some(b) => per_last_axis(g, b, m)?,
                None => vec![0.0; m],
            };
            Some(Dense {
                w,
                b,
                m,
                k,
                act: c.act,
            })
        }
        _ => None,
    }
}

/// The row-major `[rows, cols]` matrix `data` transposed to `[cols, rows]` (a MatMul's
/// `[K, M]` weight as the `[M, K]` rows a conv or Linear wants).
pub(crate) fn transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    for i in 0..rows {
        for o in 0..cols {
            t[o * rows + i] = data[i * cols + o];
        }
    }
    t
}

/// A Gemm `alpha * A @ op(B) + beta * C` with constant B (and C) seen as `A @ W^T + b`: returns
/// `(W [m, k] with alpha folded in, b [m] with beta folded in, m, k)`. Requires `trans_a` off,
/// a rank-2 A, and C (if any) broadcastable per output column (`[]`, `[1]`, `[m]`, `[1, m]`).
pub(crate) fn gemm_as_dense(
    g: &Graph,
    node: &Node,
    gemm: &Gemm,
) -> Option<(Vec<f32>, Vec<f32>, usize, usize)> {
    if gemm.trans_a || g.value(*node.inputs.first()?).ty.shape.len() != 2 {
        return None;
    }
    let b_id = *node.inputs.get(1)?;
    let [r, c] = g.value(b_id).ty.shape[..] else {
        return None;
    };
    let b_data = const_f32(g, b_id)?;
    let (m, k) = if gemm.trans_b { (r, c) } else { (c, r) };
    let mut w = if gemm.trans_b {
        b_data.to_vec()
    } else {
        transposed(b_data, k, m)
    };
    w.iter_mut().for_each(|v| *v *= gemm.alpha);
    let bias = match node.inputs.get(2) {
        Some(&c_id) => per_last_axis(g, c_id, m)?
            .into_iter()
            .map(|v| gemm.beta * v)
            .collect(),
        None => vec![0.0; m],
    };
    Some((w, bias, m, k))
}

/// Ops that pass their input through unchanged when their attributes say so; see
/// [`crate::passes::RemoveIdentity`].
pub(crate) fn is_no_op(g: &Graph, node: &Node) -> bool {
    let Some(&x) = node.inputs.first() else {
        return false;
    };
    let Some(&y) = node.outputs.first() else {
        return false;
    };
    let (in_ty, out_ty) = (&g.value(x).ty, &g.value(y).ty);
    if in_ty != out_ty || node.inputs.len() != 1 || node.outputs.len() != 1 {
        return false;
    }
    match &node.op {
        Op::Identity | Op::Reshape { .. } | Op::Expand { .. } => true,
        Op::Concat { .. } => true,
        Op::Cast { to } => *to == in_ty.dtype,
        Op::Transpose { perm } => perm.iter().enumerate().all(|(i, &p)| i == p),
        Op::Slice(s) => s.axes.iter().enumerate().all(|(i, &axis)| {
            let dim = in_ty.shape.get(axis).copied().unwrap_or(0) as i64;
            s.starts.get(i) == Some(&0)
                && s.steps.get(i) == Some(&1)
                && s.ends.get(i).is_some_and(|&e| e >= dim)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::TensorType;

    #[test]
    fn per_last_axis_broadcasts_scalars_and_rejects_other_layouts() {
        let mut g = Graph::new();
        let mut c = |shape: Vec<usize>, data: Vec<f32>| {
            add_f32_const(&mut g, "c".into(), shape, data);
        };
        c(vec![], vec![2.0]);
        c(vec![3], vec![1.0, 2.0, 3.0]);
        c(vec![1, 3], vec![1.0, 2.0, 3.0]);
        c(vec![3, 1], vec![1.0, 2.0, 3.0]);
        let x = g.add_input("x", TensorType::f32(vec![3]));
        assert_eq!(per_last_axis(&g, ValueId(0), 3), Some(vec![2.0; 3]));
        assert_eq!(per_last_axis(&g, ValueId(1), 3), Some(vec![1.0, 2.0, 3.0]));
        assert_eq!(per_last_axis(&g, ValueId(2), 3), Some(vec![1.0, 2.0, 3.0]));
        assert_eq!(per_last_axis(&g, ValueId(3), 3), None);
        assert_eq!(per_last_axis(&g, ValueId(1), 4), None);
        assert_eq!(per_last_axis(&g, x, 3), None);
    }
}
