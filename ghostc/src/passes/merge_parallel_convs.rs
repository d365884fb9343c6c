//! Merges parallel convolutions of the same input that are summed (structural
//! re-parameterization, as GhostNetV3 / RepVGG do by hand with `convert_to_deploy()`).
//!
//! First drops `Add(t, 0)` with an all-zero constant: timm's `x1 = 0; x1 += branch(x)` and
//! the Huawei code's `x1 = scale_out + identity_out` (absent branches are the integer 0)
//! export through TorchScript as an `Add` of the first term and a constant 0, which hid every
//! sum of a ghostnetv3_100 TorchScript export from the merge (the dynamo exporter's optimizer
//! removes it, which is why the committed dynamo fixture merged).
//!
//! Then rewrites `Add(a, b)` where `a` and `b` are each a *linear term* of the same input `x`:
//! - a `Conv(x, W, b?)`, or a `FusedConv` without activation or residual;
//! - a standalone `BatchNorm(x)` with constant parameters, i.e. `x * slope + shift` per
//!   channel, seen as a 1x1 identity conv scaled by `slope` (needs as many output channels as
//!   input channels and the other term's stride 1, which the Add's equal types guarantee);
//!
//! into one conv whose kernel is the sum of the terms' kernels, each zero-padded and shifted so
//! that every tap keeps reading the same input pixel, and whose bias is the sum of the biases.
//! Conditions: at least one term is a conv; the convs have equal strides, dilations and group;
//! along each spatial axis the difference of their leading pads is a multiple of the dilation;
//! both terms and the sum have the same type; `a` and `b` are read only by the Add and are not
//! graph outputs. The merged conv takes the Add's place. Left-nested chains
//! `Add(Add(Add(c1, c2), bn), c3)` collapse one Add at a time in topological order.
//!
//! Exactness: the merged conv computes the same sums in a different order (f32 rounding only).
//!
//! Preconditions: `fold_batch_norm` has run, so each training-form branch `BN(Conv(x))` is
//! already one conv with bias.
//!
//! Deliberately does not:
//! - merge terms reading different inputs, or convs with different groups, strides or
//!   dilations (no single conv computes their sum);
//! - merge a term that has an activation (a FusedConv with `act`), or two BatchNorms with no
//!   conv (a per-channel affine is already as cheap as it gets);
//! - merge across a `Sub` or a scaled sum.

use crate::ir::{BinaryOp, Conv, Graph, NodeId, Op, ValueId};

use super::pattern::{
    absorb_nodes, add_f32_const, const_f32, conv_like, only_used_by, producer, rewrite_root,
};
use super::{sweep, Pass, PassError};

/// See the module documentation. Does nothing when `enabled` is off.
pub struct MergeParallelConvs {
    pub enabled: bool,
}

impl Pass for MergeParallelConvs {
    fn name(&self) -> &'static str {
        "merge_parallel_convs"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        if !self.enabled {
            return Ok(false);
        }
        let dropped = sweep(self, g, |g, n| {
            g.node(n).op == Op::Binary(BinaryOp::Add) && drop_zero_term(g, n)
        })?;
        let merged = sweep(self, g, |g, n| {
            g.node(n).op == Op::Binary(BinaryOp::Add) && merge_one(g, n)
        })?;
        Ok(dropped || merged)
    }
}

/// Removes `Add(t, 0)` (either order, the zero an all-zero constant that does not broadcast
/// `t` to another type): the first term of a sum written as `x1 = 0; x1 += branch(x)` (timm's
/// GhostNetV3) or `x1 = scale_out + identity_out` with absent branches as `0` (the original
/// Huawei code), which TorchScript exports as an `Add` with a constant 0. Its readers read `t`.
/// Not done when the sum is a graph output (it would lose its name).
fn drop_zero_term(g: &mut Graph, add: NodeId) -> bool {
    let node = g.node(add);
    let (a, b, sum) = (node.inputs[0], node.inputs[1], node.outputs[0]);
    let is_zero = |v: ValueId| const_f32(g, v).is_some_and(|d| d.iter().all(|&x| x == 0.0));
    let t = match (is_zero(a), is_zero(b)) {
        (false, true) => a,
        (true, false) => b,
        _ => return false,
    };
    if g.value(t).ty != g.value(sum).ty || g.is_output(sum) {
        return false;
    }
    g.replace_all_uses(sum, t);
    g.remove_node(add);
    true
}

/// A conv term: its geometry, dense weights `[cout, cpg, kh, kw]` and bias.
struct Term {
    node: NodeId,
    x: ValueId,
    /// `None` for a BatchNorm term (geometry taken from the conv term).
    conv: Option<Conv>,
    kernel: [usize; 2],
    pads: [usize; 4],
    /// For a BatchNorm term: the per-channel slope (weights built once the geometry is known).
    w: Vec<f32>,
    b: Vec<f32>,
}

fn term(g: &Graph, v: ValueId, add: NodeId) -> Option<Term> {
    let (n, node) = producer(g, v)?;
    if !only_used_by(g, v, add) {
        return None;
    }
    let cout = *g.value(v).ty.shape.get(1)?;
    match &node.op {
        Op::Conv(_) | Op::FusedConv(_) => {
            let c = conv_like(node)?;
            if c.act.is_some() {
                return None;
            }
            let w = const_f32(g, c.w)?.to_vec();
            let b = match c.b {
                Some(b) => const_f32(g, b).filter(|d| d.len() == cout)?.to_vec(),
                None => vec![0.0; cout],
            };
            Some(Term {
                node: n,
                x: c.x,
                kernel: c.conv.kernel,
                pads: c.conv.pads,
                conv: Some(c.conv),
                w,
                b,
            })
        }
        Op::BatchNorm(bn) => {
            let param = |slot: usize| const_f32(g, node.inputs[slot]).filter(|d| d.len() == cout);
            let (gamma, beta, mean, var) = (param(1)?, param(2)?, param(3)?, param(4)?);
            let eps = bn.epsilon as f64;
            let slope: Vec<f64> = gamma
                .iter()
                .zip(var)
                .map(|(&ga, &va)| ga as f64 / (va as f64 + eps).sqrt())
                .collect();
            let shift = (0..cout)
                .map(|o| (beta[o] as f64 - mean[o] as f64 * slope[o]) as f32)
                .collect();
            Some(Term {
                node: n,
                x: node.inputs[0],
                conv: None,
                kernel: [1, 1],
                pads: [0; 4],
                w: slope.into_iter().map(|s| s as f32).collect(),
                b: shift,
            })
        }
        _ => None,
    }
}

fn merge_one(g: &mut Graph, add: NodeId) -> bool {
    let (a, b) = (g.node(add).inputs[0], g.node(add).inputs[1]);
    let sum = g.node(add).outputs[0];
    let sum_ty = g.value(sum).ty.clone();
    let empty = sum_ty.shape.contains(&0);
    if a == b
        || g.value(a).ty != sum_ty
        || g.value(b).ty != sum_ty
        || sum_ty.shape.len() != 4
        || empty
    {
        return false;
    }
    let (Some(ta), Some(tb)) = (term(g, a, add), term(g, b, add)) else {
        return false;
    };
    if ta.x != tb.x {
        return false;
    }
    let geometry = match (&ta.conv, &tb.conv) {
        (Some(ca), Some(cb)) => {
            if ca.strides != cb.strides || ca.dilations != cb.dilations || ca.group != cb.group {
                return false;
            }
            ca.clone()
        }
        (Some(c), None) | (None, Some(c)) => c.clone(),
        (None, None) => return false,
    };
    let x_shape = g.value(ta.x).ty.shape.clone();
    let (cin, cout) = (x_shape[1], sum_ty.shape[1]);
    let group = geometry.group;
    if group == 0 || cin % group != 0 || cout % group != 0 {
        return false;
    }
    let cpg = cin / group;
    let is_bn = |t: &Term| t.conv.is_none();
    if (is_bn(&ta) || is_bn(&tb)) && (cin != cout || geometry.strides != [1, 1]) {
        return false;
    }

    // Align the kernels: the merged kernel starts at the largest leading pad.
    let d = geometry.dilations;
    let lead = [ta.pads[0].max(tb.pads[0]), ta.pads[1].max(tb.pads[1])];
    let mut shift = [[0usize; 2]; 2];
    let mut kernel = [0usize; 2];
    for (i, t) in [&ta, &tb].into_iter().enumerate() {
        for axis in 0..2 {
            let gap = lead[axis] - t.pads[axis];
            if gap % d[axis] != 0 {
                return false;
            }
            shift[i][axis] = gap / d[axis];
            kernel[axis] = kernel[axis].max(t.kernel[axis] + shift[i][axis]);
        }
    }
    // Trailing pads giving the same output size.
    let out_hw = [sum_ty.shape[2], sum_ty.shape[3]];
    let mut trail = [0usize; 2];
    for axis in 0..2 {
        let need = (out_hw[axis] - 1) * geometry.strides[axis] + d[axis] * (kernel[axis] - 1) + 1;
        trail[axis] = need.saturating_sub(x_shape[2 + axis] + lead[axis]);
        let size =
            (x_shape[2 + axis] + lead[axis] + trail[axis] - d[axis] * (kernel[axis] - 1) - 1)
                / geometry.strides[axis]
                + 1;
        if size != out_hw[axis] {
            return false;
        }
    }

    let [kh, kw] = kernel;
    let mut w = vec![0.0f32; cout * cpg * kh * kw];
    let mut bias = vec![0.0f32; cout];
    for (i, t) in [&ta, &tb].into_iter().enumerate() {
        let [sh, sw] = shift[i];
        for (acc, &tb) in bias.iter_mut().zip(&t.b) {
            *acc += tb;
        }
        if t.conv.is_none() {
            // Identity tap at the kernel's (shifted) origin, scaled per channel.
            for o in 0..cout {
                w[((o * cpg + o % cpg) * kh + sh) * kw + sw] += t.w[o];
            }
            continue;
        }
        let [tkh, tkw] = t.kernel;
        if t.w.len() != cout * cpg * tkh * tkw {
            return false;
        }
        for oc in 0..cout * cpg {
            for ky in 0..tkh {
                for kx in 0..tkw {
                    w[(oc * kh + ky + sh) * kw + kx + sw] += t.w[(oc * tkh + ky) * tkw + kx];
                }
            }
        }
    }

    let name = g.node(ta.node).name.clone();
    let w_id = add_f32_const(
        g,
        format!("{name}.merged_weight"),
        vec![cout, cpg, kh, kw],
        w,
    );
    let b_id = add_f32_const(g, format!("{name}.merged_bias"), vec![cout], bias);
    let conv = Conv {
        kernel,
        pads: [lead[0], lead[1], trail[0], trail[1]],
        ..geometry
    };
    rewrite_root(g, add, Op::Conv(conv), vec![ta.x, w_id, b_id], name);
    absorb_nodes(g, add, &[ta.node, tb.node]);
    true
}
