//! Folds inference-mode BatchNorm into the linear op that produces its input.
//!
//! With `slope = gamma / sqrt(var + eps)` and `shift = beta - mean * slope` per channel,
//! `BN(y) = y * slope + shift`, so for a producer `y[o] = W[o] . x + b[o]`:
//! `W'[o] = W[o] * slope[o]` and `b'[o] = b[o] * slope[o] + shift[o]`
//! (`= (b[o] - mean[o]) * slope[o] + beta[o]`). Rewrites, with `o` the BN channel (axis 1):
//! - `Conv` (any group: depthwise and grouped convs scale their output channels the same way)
//!   or `FusedConv` without activation or residual -> the same op with new weight and bias;
//! - `Gemm` with constant B (and C) over a rank-2 input (a BatchNorm1d head) -> Gemm with B
//!   scaled per output column, C' = slope * beta * C + shift and beta = 1;
//! - `Linear` without activation -> Linear with scaled rows;
//! - `ConvTranspose` without activation (weight `[cin, cout / group, kh, kw]`: output channel
//!   `group_of(ci) * cout / group + j` scales the `[ci, j]` kernels) -> the same op;
//! - `MatMul(x, W)` and `Add(MatMul(x, W), c)` with constant rank-2 W and c broadcast per
//!   output column -> one `Gemm(x, W', c')`.
//!
//! A `Mul` or `Add` of a conv's output by a constant with one value per channel (`[C, 1, 1]`,
//! ConvNeXt's layer scale and the bias of a Linear turned conv by `channels_first`) is the
//! same affine map (`slope = c, shift = 0` or `slope = 1, shift = c`) and folds into convs the
//! same way.
//!
//! Preconditions: the BN's four parameters and the producer's weight (and bias) are f32
//! constants with one entry per channel; the producer's output is read only by the BN and is
//! not a graph output (otherwise the unnormalized value is still needed). The folded node
//! takes the BN's place, keeping the BN output's value, name and graph-output status.
//!
//! Deliberately does not:
//! - mutate weights in place: folded weights and biases are new constants, since the old ones
//!   may be shared by other nodes;
//! - fold a BN that follows an activation, a pool or an add, or that precedes its conv
//!   (folding into the *next* conv is wrong at zero-padded borders); such a standalone BN
//!   stays a `BatchNorm` node, which the interpreter and codegen run as a per-channel affine.

use crate::ir::{BinaryOp, FusedConv, Gemm, Graph, NodeId, Op, ValueId};

use super::pattern::{
    add_f32_const, const_f32, conv_like, only_used_by, per_last_axis, producer, rewrite_root,
};
use super::{sweep, Pass, PassError};

/// See the module documentation. Does nothing when `enabled` is off.
pub struct FoldBatchNorm {
    pub enabled: bool,
}

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold_batch_norm"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        if !self.enabled {
            return Ok(false);
        }
        sweep(self, g, fold_one)
    }
}

/// Per-channel `(slope, shift)` of a BN node with constant parameters over `channels` channels.
fn affine(g: &Graph, bn: NodeId, channels: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let node = g.node(bn);
    let Op::BatchNorm(attrs) = &node.op else {
        return None;
    };
    let param = |slot: usize| -> Option<&[f32]> {
        let v = *node.inputs.get(slot)?;
        const_f32(g, v).filter(|d| d.len() == channels && g.value(v).ty.shape == [channels])
    };
    let (gamma, beta, mean, var) = (param(1)?, param(2)?, param(3)?, param(4)?);
    let eps = attrs.epsilon as f64;
    let slope: Vec<f64> = gamma
        .iter()
        .zip(var)
        .map(|(&ga, &va)| ga as f64 / (va as f64 + eps).sqrt())
        .collect();
    let shift = (0..channels)
        .map(|o| beta[o] as f64 - mean[o] as f64 * slope[o])
        .collect();
    Some((slope, shift))
}

/// Scales row `o` of a row-major `[rows, row_len]` matrix by `slope[o]`.
fn scale_rows(w: &[f32], slope: &[f64]) -> Vec<f32> {
    let row_len = w.len() / slope.len().max(1);
    w.iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 * slope[i / row_len]) as f32)
        .collect()
}

/// Scales column `o` of a row-major `[rows, cols]` matrix by `slope[o]`.
fn scale_cols(w: &[f32], slope: &[f64]) -> Vec<f32> {
    let cols = slope.len();
    w.iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 * slope[i % cols]) as f32)
        .collect()
}

fn fold_bias(b: &[f32], slope: &[f64], shift: &[f64]) -> Vec<f32> {
    b.iter()
        .zip(slope.iter().zip(shift))
        .map(|(&bo, (&s, &t))| (bo as f64 * s + t) as f32)
        .collect()
}

/// `Mul(y, c)` or `Add(y, c)` (either order) with `y` `[N, C, H, W]` and `c` a constant of
/// shape `[C, 1, 1]` or `[1, C, 1, 1]`, `C > 1`, as `(y, slope, shift)`. One-value constants
/// stay: they are parts of decomposed activations (`x + 3` of a hard-sigmoid).
fn channel_affine(g: &Graph, n: NodeId) -> Option<(ValueId, Vec<f64>, Vec<f64>)> {
    let node = g.node(n);
    let Op::Binary(op @ (BinaryOp::Mul | BinaryOp::Add)) = node.op else {
        return None;
    };
    let out = &g.value(node.outputs[0]).ty;
    for (y, c) in [
        (node.inputs[0], node.inputs[1]),
        (node.inputs[1], node.inputs[0]),
    ] {
        let shape = &g.value(y).ty.shape;
        let cs = &g.value(c).ty.shape;
        let [_, channels, _, _] = shape[..] else {
            continue;
        };
        let per_channel = channels > 1
            && (cs[..] == [channels, 1, 1] || cs[..] == [1, channels, 1, 1])
            && g.value(y).ty == *out;
        let Some(data) = const_f32(g, c).filter(|_| per_channel) else {
            continue;
        };
        let data = data.iter().map(|&v| v as f64);
        return Some(match op {
            BinaryOp::Mul => (y, data.collect(), vec![0.0; channels]),
            _ => (y, vec![1.0; channels], data.collect()),
        });
    }
    None
}

fn fold_one(g: &mut Graph, bn: NodeId) -> bool {
    let is_bn = matches!(g.node(bn).op, Op::BatchNorm(_));
    let (y, slope, shift) = if is_bn {
        let y = g.node(bn).inputs[0];
        let Some(&channels) = g.value(y).ty.shape.get(1) else {
            return false;
        };
        let Some((slope, shift)) = affine(g, bn, channels) else {
            return false;
        };
        (y, slope, shift)
    } else {
        match channel_affine(g, bn) {
            Some(a) => a,
            None => return false,
        }
    };
    let shape = g.value(y).ty.shape.clone();
    let channels = shape[1];
    let Some((prod, prod_node)) = producer(g, y) else {
        return false;
    };
    if !only_used_by(g, y, bn) {
        return false;
    }
    let is_conv = matches!(
        prod_node.op,
        Op::Conv(_) | Op::FusedConv(_) | Op::ConvTranspose(_)
    );
    if !is_bn && !is_conv {
        // A constant Mul/Add folds into convs only (a Gemm/MatMul's channel is its last axis).
        return false;
    }
    let prod_name = prod_node.name.clone();
    match prod_node.op.clone() {
        Op::Conv(_)
        | Op::FusedConv(FusedConv {
            act: None,
            residual: false,
            ..
        }) => {
            let Some(c) = conv_like(prod_node) else {
                return false;
            };
            let w_shape = g.value(c.w).ty.shape.clone();
            let Some(w) = const_f32(g, c.w) else {
                return false;
            };
            let bias = match c.b {
                Some(b) => match per_last_axis(g, b, channels) {
                    Some(b) => b,
                    None => return false,
                },
                None => vec![0.0; channels],
            };
            if w_shape.first() != Some(&channels) {
                return false;
            }
            let new_w = scale_rows(w, &slope);
            let new_b = fold_bias(&bias, &slope, &shift);
            let (w_id, b_id) = folded_consts(g, &prod_name, (w_shape, new_w), new_b);
            let op = g.node(prod).op.clone();
            finish(g, bn, prod, op, vec![c.x, w_id, b_id], prod_name)
        }
        Op::ConvTranspose(t) if t.act.is_none() => {
            let inputs = prod_node.inputs.clone();
            let w_shape = g.value(inputs[1]).ty.shape.clone();
            let Some(w) = const_f32(g, inputs[1]) else {
                return false;
            };
            let bias = match inputs.get(2) {
                Some(&b) => match per_last_axis(g, b, channels) {
                    Some(b) => b,
                    None => return false,
                },
                None => vec![0.0; channels],
            };
            let [c_in, per_group, kh, kw] = w_shape[..] else {
                return false;
            };
            if per_group * t.conv.group != channels || c_in % t.conv.group != 0 {
                return false;
            }
            let in_per_group = c_in / t.conv.group;
            let taps = kh * kw;
            let new_w = w
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let (ci, j) = (i / (per_group * taps), i / taps % per_group);
                    (v as f64 * slope[ci / in_per_group * per_group + j]) as f32
                })
                .collect();
            let new_b = fold_bias(&bias, &slope, &shift);
            let (w_id, b_id) = folded_consts(g, &prod_name, (w_shape, new_w), new_b);
            let op = Op::ConvTranspose(t);
            finish(g, bn, prod, op, vec![inputs[0], w_id, b_id], prod_name)
        }
        Op::Gemm(gemm) if shape.len() == 2 && !gemm.trans_a => {
            let inputs = prod_node.inputs.clone();
            let b_shape = g.value(inputs[1]).ty.shape.clone();
            let Some(b) = const_f32(g, inputs[1]) else {
                return false;
            };
            let [rows, cols] = b_shape[..] else {
                return false;
            };
            if (if gemm.trans_b { rows } else { cols }) != channels {
                return false;
            }
            let new_b = if gemm.trans_b {
                scale_rows(b, &slope)
            } else {
                scale_cols(b, &slope)
            };
            let c = match inputs.get(2) {
                Some(&c) => match per_last_axis(g, c, channels) {
                    Some(c) => c.into_iter().map(|v| v * gemm.beta).collect(),
                    None => return false,
                },
                None => vec![0.0; channels],
            };
            let new_c = fold_bias(&c, &slope, &shift);
            let (b_id, c_id) = folded_consts(g, &prod_name, (b_shape, new_b), new_c);
            let op = Op::Gemm(Gemm { beta: 1.0, ..gemm });
            finish(g, bn, prod, op, vec![inputs[0], b_id, c_id], prod_name)
        }
        Op::Linear { act: None } => {
            let inputs = prod_node.inputs.clone();
            let w_shape = g.value(inputs[1]).ty.shape.clone();
            let (Some(w), Some(b)) = (
                const_f32(g, inputs[1]),
                per_last_axis(g, inputs[2], channels),
            ) else {
                return false;
            };
            if w_shape.first() != Some(&channels) || shape.len() != 2 {
                return false;
            }
            let new_w = scale_rows(w, &slope);
            let new_b = fold_bias(&b, &slope, &shift);
            let (w_id, b_id) = folded_consts(g, &prod_name, (w_shape, new_w), new_b);
            finish(
                g,
                bn,
                prod,
                Op::Linear { act: None },
                vec![inputs[0], w_id, b_id],
                prod_name,
            )
        }
        Op::MatMul if shape.len() == 2 => fold_into_matmul(g, bn, prod, None, &slope, &shift),
        Op::Binary(BinaryOp::Add) => {
            // Add(MatMul(x, W), c) or Add(c, MatMul(x, W)).
            let inputs = prod_node.inputs.clone();
            for (mm_slot, c_slot) in [(0, 1), (1, 0)] {
                let Some((mm, mm_node)) = producer(g, inputs[mm_slot]) else {
                    continue;
                };
                if mm_node.op != Op::MatMul
                    || !only_used_by(g, inputs[mm_slot], prod)
                    || shape.len() != 2
                {
                    continue;
                }
                if let Some(c) = per_last_axis(g, inputs[c_slot], channels) {
                    // The BN reads the Add; fold_into_matmul removes both the Add and the MatMul.
                    return fold_into_matmul(g, bn, prod, Some((mm, c)), &slope, &shift);
                }
            }
            false
        }
        _ => false,
    }
}

/// `MatMul(x, W) [+ c] -> BN` into `Gemm(x, W * slope, c * slope + shift)`. `prod` is the node
/// the BN reads: the MatMul itself, or the Add when `with_add` gives `(matmul, c)`.
fn fold_into_matmul(
    g: &mut Graph,
    bn: NodeId,
    prod: NodeId,
    with_add: Option<(NodeId, Vec<f32>)>,
    slope: &[f64],
    shift: &[f64],
) -> bool {
    let channels = slope.len();
    let (mm, c) = match with_add {
        Some((mm, c)) => (mm, c),
        None => (prod, vec![0.0; channels]),
    };
    let (x, w) = (g.node(mm).inputs[0], g.node(mm).inputs[1]);
    let w_shape = g.value(w).ty.shape.clone();
    if g.value(x).ty.shape.len() != 2 || w_shape.len() != 2 || w_shape[1] != channels {
        return false;
    }
    let Some(w_data) = const_f32(g, w) else {
        return false;
    };
    let new_w = scale_cols(w_data, slope);
    let new_c = fold_bias(&c, slope, shift);
    let mm_name = g.node(mm).name.clone();
    let w_id = add_f32_const(g, format!("{mm_name}.bn_folded_weight"), w_shape, new_w);
    let c_id = add_f32_const(
        g,
        format!("{mm_name}.bn_folded_bias"),
        vec![channels],
        new_c,
    );
    let gemm = Op::Gemm(Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: false,
    });
    rewrite_root(g, bn, gemm, vec![x, w_id, c_id], mm_name);
    g.absorb(bn, prod);
    if mm != prod {
        g.absorb(bn, mm);
    }
    true
}

/// Makes the BN node `bn` the folded `op` (keeping the BN's output value) and removes the
/// producer it absorbed.
/// The folded weight (`shape`, `values`) and bias of `prod_name` as new constants.
fn folded_consts(
    g: &mut Graph,
    prod_name: &str,
    (shape, values): (Vec<usize>, Vec<f32>),
    bias: Vec<f32>,
) -> (ValueId, ValueId) {
    let w = add_f32_const(g, format!("{prod_name}.bn_folded_weight"), shape, values);
    let b = add_f32_const(
        g,
        format!("{prod_name}.bn_folded_bias"),
        vec![bias.len()],
        bias,
    );
    (w, b)
}

fn finish(
    g: &mut Graph,
    bn: NodeId,
    prod: NodeId,
    op: Op,
    inputs: Vec<ValueId>,
    name: String,
) -> bool {
    rewrite_root(g, bn, op, inputs, name);
    g.absorb(bn, prod);
    true
}
