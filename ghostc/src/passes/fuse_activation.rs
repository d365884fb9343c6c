//! Canonicalizes activations and folds them, with the bias, into the preceding conv or fully
//! connected layer.
//!
//! Rewrites, in three phases (each a sweep in topological order):
//! 1. (`act`; GELU and Mish always, since Erf and Softplus have no lowering of their own) Decomposed activations
//!    exporters emit become one `Activation` node:
//!    - hard-sigmoid: `Div(Clip[0, hi](Add(x, c)), k)` or `Mul(Clip[0, hi](Add(x, c)), s)`
//!      (either operand order) with `hi * s == 1` becomes `HardSigmoid { alpha: s, beta: c * s }`;
//!      `clamp(x + 3, 0, 6) / 6` and `relu6(x + 3) / 6` give exactly `{ alpha: 1/6, beta: 0.5 }`.
//!    - hard-swish: `Mul(x, HardSigmoid{1/6, 0.5}(x))` and `Div(Mul(x, Clip[0, 6](Add(x, 3))), 6)`
//!      (or `Mul(.., 1/6)`) become `HardSwish`.
//!    - SiLU/Swish: `Mul(x, Sigmoid(x))` (either operand order) becomes `Silu`.
//!    - Mish: `Mul(x, Tanh(Softplus(x)))` (either operand order) becomes `Mish`.
//!    - GELU: the product of `x`, `0.5` and `Add(Erf(x / sqrt 2), 1)` in any grouping and
//!      operand order of two Muls (`Div` by `sqrt 2` or `Mul` by its inverse) becomes `Gelu`.
//!    - `Clip[0, 6]` on its own (ReLU6) stays a Clip.
//! 2. (`act`) Every `Conv` becomes a `FusedConv` (a missing bias becomes a zero constant); when
//!    its output's only reader is an activation node, that activation moves into the epilogue
//!    (Sigmoid and Silu included: the runtime applies them in registers with its vector `exp`).
//!    A `ConvTranspose` without activation absorbs its sole-reader activation the same way.
//! 3. (`linear`) `Gemm` with constant B (and C), `trans_a` off, and `MatMul(x, W)` /
//!    `Add(MatMul(x, W), c)` with rank-2 `x` and constant rank-2 `W` become
//!    `Linear { x, W [m, k], b [m] }`; W is transposed and alpha/beta folded at compile time
//!    (B and C are reused as they are when already in that form). With `act` on too, a
//!    following activation moves into the Linear.
//!
//! Preconditions: the constants of phase 1 are one-element f32 tensors; every node absorbed
//! (the Add/Clip/Mul of a decomposed activation, the conv or FC under an activation) has its
//! output read only by the next node of the pattern and is not a graph output.
//!
//! Deliberately does not:
//! - fuse a second activation into a FusedConv/Linear that already has one;
//! - touch the `Reshape` (Flatten) between the global pool and the classifier: it is free;
//! - fuse activations into anything but convs and FCs (pools, adds and Ghost outputs keep their
//!   activation nodes);
//! - turn a Gemm with `trans_a`, or a batched MatMul, into Linear.

use crate::ir::{
    Activation, BinaryOp, ConvTranspose, FusedConv, Graph, NodeId, Op, UnaryOp, ValueId,
};

use super::pattern::{
    absorb_nodes, add_f32_const, bias_or_zeros, const_f32, conv_like, gemm_as_dense, only_used_by,
    per_last_axis, producer, rewrite_root, scalar_f32, sole_use, transposed,
};
use super::{sweep, Pass, PassError};

/// See the module documentation. `act` switches phases 1 and 2 (and activation absorption into
/// Linear), `linear` switches phase 3.
pub struct FuseActivation {
    pub act: bool,
    pub linear: bool,
}

impl Pass for FuseActivation {
    fn name(&self) -> &'static str {
        "fuse_activation"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        let mut changed = false;
        if !self.act {
            // GELU's and Mish's spellings even so: Erf and Softplus have no lowering of their
            // own.
            changed |= sweep(self, g, |g, n| recognize_gelu(g, n) || recognize_mish(g, n))?;
        }
        if self.act {
            changed |= sweep(self, g, recognize_decomposed)?;
            changed |= sweep(self, g, fuse_conv)?;
            changed |= sweep(self, g, fuse_conv_transpose)?;
        }
        if self.linear {
            let act = self.act;
            changed |= sweep(self, g, |g, n| to_linear(g, n, act))?;
        }
        Ok(changed)
    }
}

const SIXTH: f32 = 1.0 / 6.0;

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// `Div(a, k)` as `(a, 1/k)`, `Mul(a, s)` / `Mul(s, a)` as `(a, s)`, for a one-element constant.
fn scaled(g: &Graph, n: NodeId) -> Option<(ValueId, f32)> {
    let node = g.node(n);
    let (a, b) = (*node.inputs.first()?, *node.inputs.get(1)?);
    match node.op {
        Op::Binary(BinaryOp::Div) => scalar_f32(g, b).filter(|&k| k != 0.0).map(|k| (a, 1.0 / k)),
        Op::Binary(BinaryOp::Mul) => match (scalar_f32(g, a), scalar_f32(g, b)) {
            (None, Some(s)) => Some((a, s)),
            (Some(s), None) => Some((b, s)),
            _ => None,
        },
        _ => None,
    }
}

/// `v = Clip[lo, hi](Add(x, c))` where `v` is read only by `reader` and the Add only by the Clip.
struct ClipOfAdd {
    x: ValueId,
    c: f32,
    lo: f32,
    hi: f32,
    clip: NodeId,
    add: NodeId,
}

fn clip_of_add(g: &Graph, v: ValueId, reader: NodeId) -> Option<ClipOfAdd> {
    let (clip, clip_node) = producer(g, v)?;
    let Op::Activation(Activation::Clamp { lo, hi }) = clip_node.op else {
        return None;
    };
    if !only_used_by(g, v, reader) {
        return None;
    }
    let sum = clip_node.inputs[0];
    let (add, add_node) = producer(g, sum)?;
    if add_node.op != Op::Binary(BinaryOp::Add) || !only_used_by(g, sum, clip) {
        return None;
    }
    let (a, b) = (add_node.inputs[0], add_node.inputs[1]);
    let (x, c) = match (scalar_f32(g, a), scalar_f32(g, b)) {
        (None, Some(c)) => (a, c),
        (Some(c), None) => (b, c),
        _ => return None,
    };
    // The Add must not broadcast x up (a scalar c never does, but x could be a scalar too).
    if g.value(x).ty != g.value(sum).ty {
        return None;
    }
    Some(ClipOfAdd {
        x,
        c,
        lo,
        hi,
        clip,
        add,
    })
}

fn replace_with_activation(
    g: &mut Graph,
    root: NodeId,
    act: Activation,
    x: ValueId,
    absorbed: &[NodeId],
) {
    let name = g.node(root).name.clone();
    rewrite_root(g, root, Op::Activation(act), vec![x], name);
    absorb_nodes(g, root, absorbed);
}

/// The leaves of a product of at most two Muls rooted at `n` (an inner Mul counts when it is
/// read only by the outer one), with the inner Mul if there is one.
fn product_leaves(g: &Graph, n: NodeId) -> Option<(Vec<ValueId>, Option<NodeId>)> {
    let node = g.node(n);
    if node.op != Op::Binary(BinaryOp::Mul) {
        return None;
    }
    let mut leaves = Vec::new();
    let mut inner = None;
    for &v in &node.inputs {
        match producer(g, v) {
            Some((m, mn))
                if inner.is_none()
                    && mn.op == Op::Binary(BinaryOp::Mul)
                    && only_used_by(g, v, n) =>
            {
                leaves.extend(&mn.inputs);
                inner = Some(m);
            }
            _ => leaves.push(v),
        }
    }
    Some((leaves, inner))
}

/// `x * 0.5 * (1 + erf(x / sqrt 2))` rooted at the Mul `n` (see the module docs): `x` and
/// the nodes absorbed.
fn gelu(g: &Graph, n: NodeId) -> Option<(ValueId, Vec<NodeId>)> {
    let (leaves, inner) = product_leaves(g, n)?;
    if leaves.len() != 3 {
        return None;
    }
    let half = leaves
        .iter()
        .position(|&v| scalar_f32(g, v).is_some_and(|h| close(h, 0.5)))?;
    let rest: Vec<ValueId> = (0..3).filter(|&i| i != half).map(|i| leaves[i]).collect();
    for (x, e) in [(rest[0], rest[1]), (rest[1], rest[0])] {
        let Some((add, add_node)) = producer(g, e) else {
            continue;
        };
        // `e` is a leaf of the outer Mul or of the inner one.
        let read_once = only_used_by(g, e, n) || inner.is_some_and(|m| only_used_by(g, e, m));
        if add_node.op != Op::Binary(BinaryOp::Add) || !read_once {
            continue;
        }
        let (a, b) = (add_node.inputs[0], add_node.inputs[1]);
        let erf_out = match (scalar_f32(g, a), scalar_f32(g, b)) {
            (Some(one), None) if close(one, 1.0) => b,
            (None, Some(one)) if close(one, 1.0) => a,
            _ => continue,
        };
        let Some((erf, erf_node)) = producer(g, erf_out) else {
            continue;
        };
        if erf_node.op != Op::Unary(crate::ir::UnaryOp::Erf) || !only_used_by(g, erf_out, add) {
            continue;
        }
        let arg = erf_node.inputs[0];
        let Some((div, _)) = producer(g, arg) else {
            continue;
        };
        let Some((u, s)) = scaled(g, div) else {
            continue;
        };
        if u == x && close(s, std::f32::consts::FRAC_1_SQRT_2) && only_used_by(g, arg, erf) {
            // Readers before producers: each goes once nothing reads it.
            let absorbed = inner.into_iter().chain([add, erf, div]).collect();
            return Some((x, absorbed));
        }
    }
    None
}

/// The GELU rewrite of phase 1 alone.
fn recognize_gelu(g: &mut Graph, n: NodeId) -> bool {
    let Some((x, absorbed)) = gelu(g, n) else {
        return false;
    };
    if g.value(x).ty != g.value(g.node(n).outputs[0]).ty {
        return false;
    }
    replace_with_activation(g, n, Activation::Gelu, x, &absorbed);
    true
}

/// `Mul(x, Tanh(Softplus(x)))` (either operand order, the Softplus and Tanh read by nothing
/// else) -> `Mish`.
fn recognize_mish(g: &mut Graph, n: NodeId) -> bool {
    let node = g.node(n);
    if node.op != Op::Binary(BinaryOp::Mul) {
        return false;
    }
    let (a, b) = (node.inputs[0], node.inputs[1]);
    let y = node.outputs[0];
    for (x, gate) in [(a, b), (b, a)] {
        let Some((tn, t_node)) = producer(g, gate) else {
            continue;
        };
        if t_node.op != Op::Activation(Activation::Tanh) {
            continue;
        }
        let sp = t_node.inputs[0];
        let Some((sn, sp_node)) = producer(g, sp) else {
            continue;
        };
        if sp_node.op == Op::Unary(UnaryOp::Softplus)
            && sp_node.inputs[0] == x
            && only_used_by(g, sp, tn)
            && only_used_by(g, gate, n)
            && g.value(x).ty == g.value(y).ty
        {
            replace_with_activation(g, n, Activation::Mish, x, &[tn, sn]);
            return true;
        }
    }
    false
}

fn recognize_decomposed(g: &mut Graph, n: NodeId) -> bool {
    let out_ty = match g.node(n).outputs.first() {
        Some(&y) => g.value(y).ty.clone(),
        None => return false,
    };
    if recognize_gelu(g, n) || recognize_mish(g, n) {
        return true;
    }
    // Div(Clip(Add(x, c)), k) / Mul(Clip(Add(x, c)), s) -> HardSigmoid.
    if let Some((inner, s)) = scaled(g, n) {
        if let Some(p) = clip_of_add(g, inner, n) {
            if p.lo == 0.0 && s > 0.0 && close(p.hi * s, 1.0) && g.value(p.x).ty == out_ty {
                let (alpha, beta) = if close(s, SIXTH) && close(p.c, 3.0) {
                    (SIXTH, 0.5)
                } else {
                    (s, p.c * s)
                };
                replace_with_activation(
                    g,
                    n,
                    Activation::HardSigmoid { alpha, beta },
                    p.x,
                    &[p.clip, p.add],
                );
                return true;
            }
        }
        // Div(Mul(x, Clip[0,6](Add(x, 3))), 6) -> HardSwish.
        if let Some((mul, mul_node)) = producer(g, inner) {
            if mul_node.op == Op::Binary(BinaryOp::Mul)
                && only_used_by(g, inner, n)
                && close(s, SIXTH)
            {
                let (a, b) = (mul_node.inputs[0], mul_node.inputs[1]);
                for (x, gate) in [(a, b), (b, a)] {
                    let Some(p) = clip_of_add(g, gate, mul) else {
                        continue;
                    };
                    if p.x == x
                        && p.lo == 0.0
                        && close(p.hi, 6.0)
                        && close(p.c, 3.0)
                        && g.value(x).ty == out_ty
                    {
                        replace_with_activation(
                            g,
                            n,
                            Activation::HardSwish,
                            x,
                            &[mul, p.clip, p.add],
                        );
                        return true;
                    }
                }
            }
        }
        return false;
    }
    // Mul(x, HardSigmoid{1/6, 1/2}(x)) -> HardSwish, Mul(x, Sigmoid(x)) -> Silu.
    let node = g.node(n);
    if node.op == Op::Binary(BinaryOp::Mul) {
        let (a, b) = (node.inputs[0], node.inputs[1]);
        for (x, gate) in [(a, b), (b, a)] {
            let Some((gn, gate_node)) = producer(g, gate) else {
                continue;
            };
            let fused = match gate_node.op {
                Op::Activation(Activation::HardSigmoid { alpha, beta })
                    if close(alpha, SIXTH) && close(beta, 0.5) =>
                {
                    Activation::HardSwish
                }
                Op::Activation(Activation::Sigmoid) => Activation::Silu,
                _ => continue,
            };
            if gate_node.inputs[0] == x && only_used_by(g, gate, n) && g.value(x).ty == out_ty {
                replace_with_activation(g, n, fused, x, &[gn]);
                return true;
            }
        }
    }
    false
}

/// If the only reader of `n`'s output is an activation node, the activation node becomes `op`
/// with that activation (built by `with_act`) over `inputs`, and `n` goes. Returns whether it
/// did.
fn absorb_activation(
    g: &mut Graph,
    n: NodeId,
    inputs: &[ValueId],
    with_act: impl FnOnce(Activation) -> Op,
) -> bool {
    let y = g.node(n).outputs[0];
    let Some((reader, 0)) = sole_use(g, y) else {
        return false;
    };
    let Op::Activation(act) = g.node(reader).op else {
        return false;
    };
    let name = g.node(n).name.clone();
    rewrite_root(g, reader, with_act(act), inputs.to_vec(), name);
    absorb_nodes(g, reader, &[n]);
    true
}

fn fuse_conv(g: &mut Graph, n: NodeId) -> bool {
    let node = g.node(n);
    let is_plain_conv = matches!(node.op, Op::Conv(_));
    let open_epilogue = matches!(
        node.op,
        Op::FusedConv(FusedConv {
            act: None,
            residual: false,
            ..
        })
    );
    if !is_plain_conv && !open_epilogue {
        return false;
    }
    let Some(c) = conv_like(node) else {
        return false;
    };
    let name = node.name.clone();
    let b = bias_or_zeros(g, &c, &name);
    let inputs = vec![c.x, c.w, b];
    let conv = c.conv.clone();
    if absorb_activation(g, n, &inputs, |act| {
        Op::FusedConv(FusedConv {
            conv,
            act: Some(act),
            residual: false,
        })
    }) {
        return true;
    }
    if is_plain_conv {
        rewrite_root(
            g,
            n,
            Op::FusedConv(FusedConv {
                conv: c.conv,
                act: None,
                residual: false,
            }),
            inputs,
            name,
        );
        return true;
    }
    false
}

fn fuse_conv_transpose(g: &mut Graph, n: NodeId) -> bool {
    let node = g.node(n);
    let Op::ConvTranspose(t) = &node.op else {
        return false;
    };
    if t.act.is_some() {
        return false;
    }
    let (t, inputs) = (t.clone(), node.inputs.clone());
    absorb_activation(g, n, &inputs, |act| {
        Op::ConvTranspose(ConvTranspose {
            act: Some(act),
            ..t
        })
    })
}

fn to_linear(g: &mut Graph, n: NodeId, act: bool) -> bool {
    let node = g.node(n).clone();
    let (root, inputs, absorbed): (NodeId, Vec<ValueId>, Vec<NodeId>) = match &node.op {
        Op::Linear { act: None } => {
            return act && absorb_activation(g, n, &node.inputs, |a| Op::Linear { act: Some(a) });
        }
        Op::Gemm(gemm) => {
            let Some((w, b, m, k)) = gemm_as_dense(g, &node, gemm) else {
                return false;
            };
            // Reuse B and C when they already are W [m, k] and b [m].
            let w_id = if gemm.trans_b && gemm.alpha == 1.0 {
                node.inputs[1]
            } else {
                add_f32_const(g, format!("{}.linear_weight", node.name), vec![m, k], w)
            };
            let b_id = match node.inputs.get(2) {
                Some(&c) if gemm.beta == 1.0 && g.value(c).ty.shape == [m] => c,
                _ => add_f32_const(g, format!("{}.linear_bias", node.name), vec![m], b),
            };
            (n, vec![node.inputs[0], w_id, b_id], vec![])
        }
        Op::MatMul => {
            let (x, w) = (node.inputs[0], node.inputs[1]);
            let w_shape = g.value(w).ty.shape.clone();
            let [k, m] = w_shape[..] else { return false };
            if g.value(x).ty.shape.len() != 2 {
                return false;
            }
            let Some(w_data) = const_f32(g, w) else {
                return false;
            };
            let w_t = transposed(w_data, k, m);
            // A following Add of a per-column constant is the bias.
            let y = node.outputs[0];
            let bias_add = sole_use(g, y).and_then(|(add, slot)| {
                let add_node = g.node(add);
                if add_node.op != Op::Binary(BinaryOp::Add) {
                    return None;
                }
                let c = add_node.inputs[1 - slot];
                let same_type = g.value(add_node.outputs[0]).ty == g.value(y).ty;
                per_last_axis(g, c, m)
                    .filter(|_| same_type)
                    .map(|b| (add, b))
            });
            let w_id = add_f32_const(g, format!("{}.linear_weight", node.name), vec![m, k], w_t);
            match bias_add {
                Some((add, b)) => {
                    let b_id = add_f32_const(g, format!("{}.linear_bias", node.name), vec![m], b);
                    (add, vec![x, w_id, b_id], vec![n])
                }
                None => {
                    let b_id =
                        add_f32_const(g, format!("{}.zero_bias", node.name), vec![m], vec![0.0; m]);
                    (n, vec![x, w_id, b_id], vec![])
                }
            }
        }
        _ => return false,
    };
    rewrite_root(
        g,
        root,
        Op::Linear { act: None },
        inputs.clone(),
        node.name.clone(),
    );
    absorb_nodes(g, root, &absorbed);
    if act {
        absorb_activation(g, root, &inputs, |a| Op::Linear { act: Some(a) });
    }
    true
}
