//! Fused ops, evaluated by composing the plain ops exactly as their definitions read.

use super::{eval_op, Result};
use crate::ir::{Activation, BinaryOp, Gemm, Op, Slice, Tensor};

fn single(op: Op, inputs: &[&Tensor]) -> Result<Tensor> {
    let mut outputs = eval_op(&op, inputs)?;
    Ok(outputs.remove(0))
}

fn maybe_activate(act: Option<&Activation>, x: Tensor) -> Result<Tensor> {
    match act {
        Some(a) => single(Op::Activation(*a), &[&x]),
        None => Ok(x),
    }
}

/// `act(conv(x, w) + b) (+ residual)`. Inputs: x, w, b[, residual].
pub(super) fn fused_conv(f: &crate::ir::FusedConv, x: &[&Tensor]) -> Result<Tensor> {
    let conv = single(Op::Conv(f.conv.clone()), &x[..3])?;
    let y = maybe_activate(f.act.as_ref(), conv)?;
    if f.residual {
        return single(Op::Binary(BinaryOp::Add), &[&y, x[3]]);
    }
    Ok(y)
}

/// `p = act_p(conv_p(x) + b_p)`, `q = act_q(conv_q(p) + b_q)`,
/// `y = concat(p, q)[:, :out_channels] (+ residual)`. Inputs: x, w_p, b_p, w_q, b_q[, residual].
pub(super) fn ghost(g: &crate::ir::Ghost, x: &[&Tensor]) -> Result<Tensor> {
    let p = maybe_activate(
        g.primary_act.as_ref(),
        single(Op::Conv(g.primary.clone()), &[x[0], x[1], x[2]])?,
    )?;
    let q = maybe_activate(
        g.cheap_act.as_ref(),
        single(Op::Conv(g.cheap.clone()), &[&p, x[3], x[4]])?,
    )?;
    let both = single(Op::Concat { axis: 1 }, &[&p, &q])?;
    let keep = Slice {
        axes: vec![1],
        starts: vec![0],
        ends: vec![g.out_channels as i64],
        steps: vec![1],
    };
    let y = single(Op::Slice(keep), &[&both])?;
    if g.residual {
        return single(Op::Binary(BinaryOp::Add), &[&y, x[5]]);
    }
    Ok(y)
}

/// `s = gate(W2 act(W1 mean_hw(x) + b1) + b2)`, `y = x * s` per channel.
/// Inputs: x, w1 `[r, c]`, b1 `[r]`, w2 `[c, r]`, b2 `[c]`.
pub(super) fn squeeze_excite(se: &crate::ir::SqueezeExcite, x: &[&Tensor]) -> Result<Tensor> {
    let shape = x[0].shape();
    let (n, c) = (shape[0], shape[1]);
    let pooled = single(Op::GlobalAveragePool, &[x[0]])?;
    let flat = single(Op::Reshape { shape: vec![n, c] }, &[&pooled])?;
    let hidden = linear(Some(&se.act), &[&flat, x[1], x[2]])?;
    let gate = linear(Some(&se.gate), &[&hidden, x[3], x[4]])?;
    let mut gate_shape = vec![1; shape.len()];
    gate_shape[..2].copy_from_slice(&[n, c]);
    let gate = single(Op::Reshape { shape: gate_shape }, &[&gate])?;
    single(Op::Binary(BinaryOp::Mul), &[x[0], &gate])
}

/// `a = gate(conv_n(..conv_1(pool(x))))`, `y * resize(a)`. Inputs: y, x, then w_i, b_i.
pub(super) fn dfc_gate(d: &crate::ir::DfcGate, x: &[&Tensor]) -> Result<Tensor> {
    let mut a = single(Op::Pool(d.pool.clone()), &[x[1]])?;
    for (i, conv) in d.convs.iter().enumerate() {
        a = single(Op::Conv(conv.clone()), &[&a, x[2 + 2 * i], x[3 + 2 * i]])?;
    }
    let a = single(Op::Activation(d.gate), &[&a])?;
    let a = single(Op::Resize(d.resize.clone()), &[&a])?;
    single(Op::Binary(BinaryOp::Mul), &[x[0], &a])
}

/// `act(x @ W^T + b)`. Inputs: x `[n, k]`, w `[m, k]`, b `[m]`.
pub(super) fn linear(act: Option<&Activation>, x: &[&Tensor]) -> Result<Tensor> {
    let gemm = Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: true,
    };
    maybe_activate(act, single(Op::Gemm(gemm), &x[..3])?)
}

/// `reshape(transpose(reshape(x, [N, groups, C / groups, H, W]), [0, 2, 1, 3, 4]), [N, C, H,
/// W])`, the three nodes the op replaces.
pub(super) fn channel_shuffle(groups: usize, x: &Tensor) -> Result<Tensor> {
    let s = x.shape().to_vec();
    let split = single(
        Op::Reshape {
            shape: vec![s[0], groups, s[1] / groups, s[2], s[3]],
        },
        &[x],
    )?;
    let t = single(
        Op::Transpose {
            perm: vec![0, 2, 1, 3, 4],
        },
        &[&split],
    )?;
    single(Op::Reshape { shape: s }, &[&t])
}

/// `reshape(conv(softmax(transpose(reshape(x, [N, G, bins, L]), [0, 2, 1, 3]), axis 1),
/// w as [1, bins, 1, 1]), [N, G, L])`, the five nodes the op replaces.
pub(super) fn dfl(bins: usize, x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let s = x.shape().to_vec();
    let (n, groups, l) = (s[0], s[1] / bins, s[2]);
    let split = single(
        Op::Reshape {
            shape: vec![n, groups, bins, l],
        },
        &[x],
    )?;
    let t = single(
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[&split],
    )?;
    let p = single(Op::Softmax { axis: 1 }, &[&t])?;
    let w4 = single(
        Op::Reshape {
            shape: vec![1, bins, 1, 1],
        },
        &[w],
    )?;
    let conv = crate::ir::Conv {
        kernel: [1, 1],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
    };
    let y = single(Op::Conv(conv), &[&p, &w4])?;
    single(
        Op::Reshape {
            shape: vec![n, groups, l],
        },
        &[&y],
    )
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::{eval1, t};
    use crate::ir::{Activation, Conv, FusedConv, Ghost, Op, SqueezeExcite};

    fn conv(k: usize, p: usize, g: usize) -> Conv {
        Conv {
            kernel: [k, k],
            strides: [1, 1],
            pads: [p; 4],
            dilations: [1, 1],
            group: g,
        }
    }

    #[test]
    fn fused_conv_by_hand() {
        // 1x1 conv of [1, -2] with weight 3, bias 1: [4, -5]; relu: [4, 0]; + residual [1, 1].
        let x = t(&[1, 1, 1, 2], &[1.0, -2.0]);
        let (w, b, res) = (
            t(&[1, 1, 1, 1], &[3.0]),
            t(&[1], &[1.0]),
            t(&[1, 1, 1, 2], &[1.0, 1.0]),
        );
        let op = Op::FusedConv(FusedConv {
            conv: conv(1, 0, 1),
            act: Some(Activation::Relu),
            residual: true,
        });
        assert_eq!(eval1(op, &[&x, &w, &b, &res]).as_f32().unwrap(), [5.0, 1.0]);
        let op = Op::FusedConv(FusedConv {
            conv: conv(1, 0, 1),
            act: None,
            residual: false,
        });
        assert_eq!(eval1(op, &[&x, &w, &b]).as_f32().unwrap(), [4.0, -5.0]);
    }

    #[test]
    fn ghost_by_hand() {
        // x: 1 channel [1, -1]. Primary 1x1 to 2 channels: weights [2, -1], bias 0, relu:
        // p0 = [2, 0], p1 = [0, 1]. Cheap depthwise 1x1: weights [10, 100], bias [1, 1], no act:
        // q0 = [21, 1], q1 = [1, 101]. concat -> 4 channels, keep 3.
        let x = t(&[1, 1, 1, 2], &[1.0, -1.0]);
        let (wp, bp) = (t(&[2, 1, 1, 1], &[2.0, -1.0]), t(&[2], &[0.0, 0.0]));
        let (wq, bq) = (t(&[2, 1, 1, 1], &[10.0, 100.0]), t(&[2], &[1.0, 1.0]));
        let op = |residual| {
            Op::Ghost(Ghost {
                primary: conv(1, 0, 1),
                primary_act: Some(Activation::Relu),
                cheap: conv(1, 0, 2),
                cheap_act: None,
                out_channels: 3,
                residual,
            })
        };
        let y = eval1(op(false), &[&x, &wp, &bp, &wq, &bq]);
        assert_eq!(y.shape(), [1, 3, 1, 2]);
        assert_eq!(y.as_f32().unwrap(), [2.0, 0.0, 0.0, 1.0, 21.0, 1.0]);
        let res = t(&[1, 3, 1, 2], &[1.0; 6]);
        let y = eval1(op(true), &[&x, &wp, &bp, &wq, &bq, &res]);
        assert_eq!(y.as_f32().unwrap(), [3.0, 1.0, 1.0, 2.0, 22.0, 2.0]);
    }

    #[test]
    fn squeeze_excite_by_hand() {
        // Two channels with means 2 and -1. W1 = [[1, 1]] (r = 1), b1 = 0, relu: h = 1.
        // W2 = [[1], [-1]], b2 = [0.5, 0]: gate input [1.5, -1]; hard_sigmoid(0.2x + 0.5):
        // [0.8, 0.3].
        let x = t(&[1, 2, 1, 2], &[1.0, 3.0, -2.0, 0.0]);
        let (w1, b1) = (t(&[1, 2], &[1.0, 1.0]), t(&[1], &[0.0]));
        let (w2, b2) = (t(&[2, 1], &[1.0, -1.0]), t(&[2], &[0.5, 0.0]));
        let op = Op::SqueezeExcite(SqueezeExcite {
            act: Activation::Relu,
            gate: Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
        });
        let y = eval1(op, &[&x, &w1, &b1, &w2, &b2]);
        let expected = [0.8, 2.4, -0.6, 0.0];
        assert!(
            y.as_f32()
                .unwrap()
                .iter()
                .zip(expected)
                .all(|(a, e)| (a - e).abs() < 1e-6),
            "{y:?}"
        );
    }

    #[test]
    fn linear_by_hand() {
        let x = t(&[1, 2], &[1.0, 2.0]);
        let w = t(&[3, 2], &[1.0, 0.0, 0.0, 1.0, -1.0, -1.0]);
        let b = t(&[3], &[0.0, 0.5, 0.0]);
        assert_eq!(
            eval1(Op::Linear { act: None }, &[&x, &w, &b])
                .as_f32()
                .unwrap(),
            [1.0, 2.5, -3.0]
        );
        let y = eval1(
            Op::Linear {
                act: Some(Activation::Relu),
            },
            &[&x, &w, &b],
        );
        assert_eq!(y.as_f32().unwrap(), [1.0, 2.5, 0.0]);
    }
}
