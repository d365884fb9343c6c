//! Folds `DequantizeLinear -> Conv -> [activation] -> QuantizeLinear` chains (the QDQ form
//! `quantize_static` writes) into one integer [`QConv`].
//!
//! Rewrites `Q(act?(Conv(DQ(x), DQ(w), b?)))` where
//! - the Q is per tensor (u8 or i8), and the Conv (and the activation) are read only by the
//!   next node of the chain and are not graph outputs;
//! - `DQ(x)` is per tensor; `DQ(w)` dequantizes a constant integer weight per tensor or per
//!   output channel (axis 0);
//! - the bias is absent, a `DQ` of a constant i32 tensor with zero point 0 (taken as is when
//!   its scales equal `x_s * w_s[o]`, as `quantize_static` writes them, else requantized to
//!   them), or an f32 constant (quantized to i32 with scales `x_s * w_s[o]`); a requantized
//!   bias that does not fit i32 leaves the chain alone;
//! - the activation is one of Relu, Clip, HardSigmoid, HardSwish, LeakyRelu, Sigmoid, Tanh.
//!
//! Also folds `Q(Concat(DQ(x1), ..., DQ(xn)))` (per-tensor parameters of one 8-bit type) into
//! a [`QConcat`](Op::QConcat) over the integer inputs, so a Ghost module's two halves meet in
//! int8 instead of through an f32 copy, and `Q(Add(DQ(a), DQ(b)))` of same-shape tensors (a
//! residual) and `Q(Mul(DQ(x), DQ(gate)))` (an SE gate) into a [`QBinary`] computed as the QDQ
//! graph computes it, a classifier's `Q(Gemm(DQ(a), DQ(W), b))` into a [`QMatMul`], and an
//! SE block's `Q(ReduceMean(DQ(x)))` over H and W into a
//! [`QGlobalAveragePool`](Op::QGlobalAveragePool), and `Q(Reshape(DQ(x)))` with equal
//! parameters (a classifier's Flatten) into a Reshape of the integer tensor; a `Q(DQ(x))`
//! round trip with equal parameters (what `remove_identity` leaves of ONNX Runtime's QDQ
//! export around a Ghost module's `out[:, :oup]` Slice) is removed, and a lone activation
//! between a DQ and a Q (`Q(HardSigmoid(DQ(x)))`, an SE gate in ONNX Runtime's QDQ export)
//! becomes a [`QActivation`](Op::QActivation), which computes exactly that.
//!
//! The Q node becomes the QConv, keeping its output value; the Conv and the activation are
//! absorbed, and a DQ left without readers is removed. The integer weight is read directly,
//! so no float weight is ever materialized.
//!
//! Semantics: the QDQ graph computes the conv in f32 on dequantized values and rounds once at
//! the Q; the QConv accumulates exactly in integers and rounds once. The two agree except
//! where f32 rounding in the long sum moves a value across a rounding boundary: at most one
//! quantization step (`passes_fold_quantize` measures the distribution on the fixtures).
//!
//! Deliberately does not: fold a BatchNorm between the conv and its Q (quantize_static folds
//! BN before quantizing when the export kept it only after `quant_pre_process`; a model that
//! keeps `Conv -> BN` inside a QDQ pair is left as is and still interpreted correctly), fold
//! Gemm/MatMul chains, or fold per-channel activations.

use std::sync::Arc;

use crate::ir::{
    Activation, BinaryOp, DType, Data, Graph, Node, NodeId, Op, QBinary, QBinaryForm, QConv,
    QMatMul, QuantParams, ReduceKind, Tensor, ValueId,
};

use super::pattern::{absorb_nodes, only_used_by, producer, rewrite_root};
use super::{sweep, Pass, PassError};

/// See the module documentation. Does nothing when `enabled` is off.
pub struct FoldQuantize {
    pub enabled: bool,
}

impl Pass for FoldQuantize {
    fn name(&self) -> &'static str {
        "fold_quantize"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        if !self.enabled {
            return Ok(false);
        }
        let changed = sweep(self, g, |g, n| {
            matches!(g.node(n).op, Op::Quantize(_))
                && (fold_one(g, n)
                    || fold_concat(g, n)
                    || fold_binary(g, n)
                    || fold_gemm(g, n)
                    || fold_pool(g, n)
                    || fold_reshape(g, n)
                    || fold_round_trip(g, n)
                    || fold_activation(g, n))
        })?;
        if changed {
            remove_unread_dequantize(g);
        }
        Ok(changed)
    }
}

/// The node producing `v` if it is a Dequantize: its parameters and input.
fn dequantized(g: &Graph, v: ValueId) -> Option<(QuantParams, ValueId)> {
    let (_, node) = producer(g, v)?;
    match &node.op {
        Op::Dequantize(q) => Some((q.clone(), node.inputs[0])),
        _ => None,
    }
}

fn fold_one(g: &mut Graph, q_node: NodeId) -> bool {
    let Op::Quantize(qy) = g.node(q_node).op.clone() else {
        return false;
    };
    if !qy.is_per_tensor() || !matches!(qy.dtype, DType::U8 | DType::I8) {
        return false;
    }
    let mut v = g.node(q_node).inputs[0];
    let mut reader = q_node;
    let mut absorbed = Vec::new();
    let mut act: Option<Activation> = None;
    let Some((mut n, mut node)) = producer(g, v) else {
        return false;
    };
    if let Op::Activation(a) = node.op {
        if !only_used_by(g, v, reader) {
            return false;
        }
        act = Some(a);
        absorbed.push(n);
        reader = n;
        v = node.inputs[0];
        let Some(next) = producer(g, v) else {
            return false;
        };
        (n, node) = next;
    }
    let Op::Conv(conv) = node.op.clone() else {
        return false;
    };
    if !only_used_by(g, v, reader) {
        return false;
    }
    absorbed.push(n);
    let conv_inputs = node.inputs.clone();
    let Some((qx, x)) = dequantized(g, conv_inputs[0]) else {
        return false;
    };
    let Some((qw, w)) = dequantized(g, conv_inputs[1]) else {
        return false;
    };
    if !qx.is_per_tensor()
        || !matches!(qw.axis, None | Some(0))
        || g.value(w).constant().is_none()
        || !matches!(qw.dtype, DType::I8 | DType::U8)
    {
        return false;
    }
    let c_out = g.value(w).ty.shape[0];
    let bias_scale: Vec<f32> = (0..c_out).map(|o| qx.at(0).0 * qw.at(o).0).collect();
    let Some(bias) = bias_const(g, conv_inputs.get(2).copied(), &bias_scale) else {
        return false;
    };
    let mut inputs = vec![x, w];
    inputs.extend(bias);
    let name = g.node(q_node).name.clone();
    rewrite_root(
        g,
        q_node,
        Op::QConv(QConv {
            conv,
            x: qx,
            w: qw,
            y: qy,
            act,
        }),
        inputs,
        name,
    );
    absorb_nodes(g, q_node, &absorbed);
    true
}

/// For Quantize node `q_node` with per-tensor 8-bit parameters: those parameters and the node
/// producing its input (a copy), when that input is read only by the Q and is not a graph
/// output.
fn read_only_by_q(g: &Graph, q_node: NodeId) -> Option<(QuantParams, NodeId, Node)> {
    let Op::Quantize(qy) = g.node(q_node).op.clone() else {
        return None;
    };
    if !qy.is_per_tensor() || !matches!(qy.dtype, DType::U8 | DType::I8) {
        return None;
    }
    let v = g.node(q_node).inputs[0];
    let (n, node) = producer(g, v)?;
    let node = node.clone();
    only_used_by(g, v, q_node).then_some((qy, n, node))
}

/// Rewrites `Q(Concat(DQ(x1), ..., DQ(xn)))` into one [`Op::QConcat`] over `x1 .. xn` when
/// every DQ and the Q are per tensor of the same 8-bit type and the Concat is read only by the
/// Q. Same values by definition: QConcat dequantizes each input and quantizes the result with
/// the same operations (an input already at the output's parameters is copied, which is what
/// its dequantize-quantize round trip gives).
fn fold_concat(g: &mut Graph, q_node: NodeId) -> bool {
    let Some((qy, concat, node)) = read_only_by_q(g, q_node) else {
        return false;
    };
    let Op::Concat { axis } = node.op else {
        return false;
    };
    let mut xs = Vec::new();
    let mut qs = Vec::new();
    for &i in &node.inputs {
        let Some((q, x)) = dequantized(g, i) else {
            return false;
        };
        if !q.is_per_tensor() || q.dtype != qy.dtype {
            return false;
        }
        qs.push(q);
        xs.push(x);
    }
    let name = g.node(q_node).name.clone();
    rewrite_root(g, q_node, Op::QConcat { axis, x: qs, y: qy }, xs, name);
    absorb_nodes(g, q_node, &[concat]);
    true
}

/// Rewrites `Q(Add(DQ(a), DQ(b)))` of same-shape tensors (a residual) and `Q(Mul(DQ(x),
/// DQ(g)))` with `g` of shape `[N, C, 1, 1]` (an SE gate scaling the channels of `x`, either
/// operand order) into one [`QBinary`] in the [`QBinaryForm::Dequantized`] form (the same `f32`
/// operations, so the same values; the full tensor first, which changes nothing as the f32
/// product commutes) when the DQs and the Q are per tensor of one 8-bit type and the Add or
/// Mul is read only by the Q.
fn fold_binary(g: &mut Graph, q_node: NodeId) -> bool {
    let Some((qy, bin, node)) = read_only_by_q(g, q_node) else {
        return false;
    };
    let Op::Binary(op @ (BinaryOp::Add | BinaryOp::Mul)) = node.op else {
        return false;
    };
    let (Some((qa, a)), Some((qb, b))) = (
        dequantized(g, node.inputs[0]),
        dequantized(g, node.inputs[1]),
    ) else {
        return false;
    };
    let same = |q: &QuantParams| q.is_per_tensor() && q.dtype == qy.dtype;
    if !same(&qa) || !same(&qb) {
        return false;
    }
    let (sa, sb) = (&g.value(a).ty.shape, &g.value(b).ty.shape);
    let gate_of = |x: &[usize], s: &[usize]| {
        x.len() == 4 && s.len() == 4 && s[..2] == x[..2] && s[2..] == [1, 1]
    };
    let ((qa, a), (qb, b)) = match op {
        BinaryOp::Add if sa == sb => ((qa, a), (qb, b)),
        BinaryOp::Mul if gate_of(sa, sb) => ((qa, a), (qb, b)),
        BinaryOp::Mul if gate_of(sb, sa) => ((qb, b), (qa, a)),
        _ => return false,
    };
    let name = g.node(q_node).name.clone();
    let op = Op::QBinary(QBinary {
        op,
        a: qa,
        b: qb,
        y: qy,
        form: QBinaryForm::Dequantized,
    });
    rewrite_root(g, q_node, op, vec![a, b], name);
    absorb_nodes(g, q_node, &[bin]);
    true
}

/// Rewrites `Q(GlobalAveragePool(DQ(x)))` and `Q(ReduceMean[axes 2, 3, keepdims](DQ(x)))` of
/// an NCHW tensor (the SE block's squeeze) into one [`Op::QGlobalAveragePool`] when the DQ and
/// the Q are per tensor of one 8-bit type and the pool is read only by the Q. The QDQ graph
/// sums dequantized values in `f32`; the QGlobalAveragePool sums the integers exactly and
/// scales once: within one quantization step (the pass tests measure it).
fn fold_pool(g: &mut Graph, q_node: NodeId) -> bool {
    let Some((qy, pool, node)) = read_only_by_q(g, q_node) else {
        return false;
    };
    let is_pool = match &node.op {
        Op::GlobalAveragePool => true,
        Op::Reduce(r) => r.kind == ReduceKind::Mean && r.axes == [2, 3] && r.keepdims,
        _ => false,
    };
    if !is_pool {
        return false;
    }
    let Some((qx, x)) = dequantized(g, node.inputs[0]) else {
        return false;
    };
    if !qx.is_per_tensor() || qx.dtype != qy.dtype || g.value(x).ty.shape.len() != 4 {
        return false;
    }
    let name = g.node(q_node).name.clone();
    rewrite_root(
        g,
        q_node,
        Op::QGlobalAveragePool { x: qx, y: qy },
        vec![x],
        name,
    );
    absorb_nodes(g, q_node, &[pool]);
    true
}

/// Rewrites `Q(Reshape(DQ(x)))` whose Q has the DQ's parameters (per tensor, one 8-bit type)
/// into `Reshape(x)` on the integer tensor. Same values: with one scale `s` and zero point
/// `z`, `round((v - z) * s / s) + z = v` for every integer `v` of the type (the product and
/// the quotient are each within half an ulp, far from the next half-integer), and no clamp
/// applies; a Flatten is imported as a Reshape.
fn fold_reshape(g: &mut Graph, q_node: NodeId) -> bool {
    let Some((qy, reshape, node)) = read_only_by_q(g, q_node) else {
        return false;
    };
    let Op::Reshape { shape } = &node.op else {
        return false;
    };
    let Some((qx, x)) = dequantized(g, node.inputs[0]) else {
        return false;
    };
    if qx != qy {
        return false;
    }
    let name = g.node(q_node).name.clone();
    let op = Op::Reshape {
        shape: shape.clone(),
    };
    rewrite_root(g, q_node, op, vec![x], name);
    absorb_nodes(g, q_node, &[reshape]);
    true
}

/// Rewrites `Q(act(DQ(x)))` (per tensor, one 8-bit type, the activation read only by the Q)
/// into `QActivation { act }`, whose definition is that chain: dequantize, activate,
/// quantize (the interpreter computes both with the same operations).
fn fold_activation(g: &mut Graph, q_node: NodeId) -> bool {
    let Some((qy, act_node, node)) = read_only_by_q(g, q_node) else {
        return false;
    };
    let Op::Activation(act) = node.op else {
        return false;
    };
    let Some((qx, x)) = dequantized(g, node.inputs[0]) else {
        return false;
    };
    if !qx.is_per_tensor() || qx.dtype != qy.dtype {
        return false;
    }
    let name = g.node(q_node).name.clone();
    let op = Op::QActivation { act, x: qx, y: qy };
    rewrite_root(g, q_node, op, vec![x], name);
    absorb_nodes(g, q_node, &[act_node]);
    true
}

/// Removes `Q(DQ(x))` whose parameters are equal (8-bit, the Q's output not a graph output):
/// its readers read `x`, the same integers (see [`fold_reshape`]).
fn fold_round_trip(g: &mut Graph, q_node: NodeId) -> bool {
    let Op::Quantize(qy) = &g.node(q_node).op else {
        return false;
    };
    let (v, y) = (g.node(q_node).inputs[0], g.node(q_node).outputs[0]);
    let Some((qx, x)) = dequantized(g, v) else {
        return false;
    };
    if qx != *qy || !matches!(qy.dtype, DType::U8 | DType::I8) || g.is_output(y) {
        return false;
    }
    g.replace_all_uses(y, x);
    g.remove_node(q_node);
    true
}

/// Rewrites `Q(Gemm(DQ(a), DQ(W), b?))` (a classifier: `alpha = beta = 1`, `a` not
/// transposed, `W` a constant `[n, k]` s8 matrix with `trans_b`, per tensor or per output row,
/// zero points 0, `a` and the Q per tensor of one 8-bit type) into a [`QMatMul`] with an i32
/// bias at scales `a_s * w_s[j]`, requantized like a QConv (within one step of the f32 Gemm).
/// Other Gemms stay, so they keep their f32 kernel.
fn fold_gemm(g: &mut Graph, q_node: NodeId) -> bool {
    let Some((qy, gemm, node)) = read_only_by_q(g, q_node) else {
        return false;
    };
    let Op::Gemm(gm) = &node.op else {
        return false;
    };
    if gm.alpha != 1.0 || gm.beta != 1.0 || gm.trans_a || !gm.trans_b {
        return false;
    }
    let (Some((qa, a)), Some((qw, w))) = (
        dequantized(g, node.inputs[0]),
        dequantized(g, node.inputs[1]),
    ) else {
        return false;
    };
    let w_shape = g.value(w).ty.shape.clone();
    if !qa.is_per_tensor()
        || qa.dtype != qy.dtype
        || g.value(a).ty.shape.len() != 2
        || w_shape.len() != 2
        || g.value(w).constant().is_none()
        || qw.dtype != DType::I8
        || !matches!(qw.axis, None | Some(0))
        || qw.zero_point.iter().any(|&z| z != 0)
    {
        return false;
    }
    let n = w_shape[0];
    let bias_scale: Vec<f32> = (0..n).map(|j| qa.at(0).0 * qw.at(j).0).collect();
    if bias_scale.iter().any(|s| !(s / qy.at(0).0).is_finite()) {
        return false;
    }
    let Some(bias) = bias_const(g, node.inputs.get(2).copied(), &bias_scale) else {
        return false;
    };
    let mut inputs = vec![a, w];
    inputs.extend(bias);
    let name = g.node(q_node).name.clone();
    let op = Op::QMatMul(QMatMul {
        a: qa,
        b: qw,
        y: qy,
        trans_b: true,
    });
    rewrite_root(g, q_node, op, inputs, name);
    absorb_nodes(g, q_node, &[gemm]);
    true
}

/// The optional bias `b` as a new i32 constant at `scale[o]` per output (`Some(None)`: no
/// bias); `None` when it cannot be converted, and the chain stays.
fn bias_const(g: &mut Graph, b: Option<ValueId>, scale: &[f32]) -> Option<Option<ValueId>> {
    let Some(b) = b else {
        return Some(None);
    };
    let values = bias_i32(g, b, scale)?;
    let t = Tensor::new(DType::I32, vec![scale.len()], Data::I64(values))
        .expect("one value per output");
    let name = format!("{}_i32", g.value(b).name);
    Some(Some(g.add_const(name, Arc::new(t))))
}

/// The bias `b` as i32 values at `scale[o]` per output channel: a DQ'd i32 constant (as is
/// when its scales match) or an f32 constant. `None` when it is neither or does not fit.
fn bias_i32(g: &Graph, b: ValueId, scale: &[f32]) -> Option<Vec<i64>> {
    let real: Vec<f64> = match dequantized(g, b) {
        Some((qb, bi)) => {
            let t = g.value(bi).constant()?;
            let values = t.as_i64()?;
            if qb.dtype != DType::I32
                || values.len() != scale.len()
                || qb.zero_point.iter().any(|&z| z != 0)
            {
                return None;
            }
            let same = (0..scale.len()).all(|o| qb.at(o).0 == scale[o]);
            if same {
                return Some(values.to_vec());
            }
            (0..scale.len())
                .map(|o| values[o] as f64 * qb.at(o).0 as f64)
                .collect()
        }
        None => {
            let t = g.value(b).constant()?;
            if t.dtype() != DType::F32 || t.numel() != scale.len() {
                return None;
            }
            t.as_f32()?.iter().map(|&v| v as f64).collect()
        }
    };
    real.iter()
        .zip(scale)
        .map(|(&r, &s)| {
            let q = (r / s as f64).round_ties_even();
            (q.is_finite() && q.abs() <= i32::MAX as f64).then_some(q as i64)
        })
        .collect()
}

/// Removes Dequantize nodes the rewrites left without readers.
fn remove_unread_dequantize(g: &mut Graph) {
    let dead: Vec<NodeId> = g
        .nodes
        .node_indices()
        .filter(|&n| {
            let node = g.node(n);
            matches!(node.op, Op::Dequantize(_))
                && node
                    .outputs
                    .iter()
                    .all(|&v| g.use_count(v) == 0 && !g.is_output(v))
        })
        .collect();
    for n in dead {
        g.remove_node(n);
    }
}
