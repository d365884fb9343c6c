//! Quantized ops with ONNX's integer semantics, written as ONNX Runtime's CPU kernels compute
//! them so that results agree bit for bit in all but rare rounding ties:
//! - Quantize: `saturate(round_half_even(x / scale) + zero_point)`; Dequantize:
//!   `(q - zero_point) as f32 * scale`.
//! - QConv and QMatMul accumulate `(x - x_zp)(w - w_zp)` exactly (i64), add the i32 bias, and
//!   requantize with the per-channel multiplier `x_s * w_s / y_s` (f32), rounding half to even.
//!   A fused activation (from `passes::fold_quantize`) is applied to `acc * x_s * w_s` before
//!   quantizing instead.
//! - QAdd: `(a - a_zp) * a_s / y_s + (b - b_zp) * b_s / y_s`; QMul:
//!   `(a - a_zp)(b - b_zp) * a_s * b_s / y_s`; QGlobalAveragePool:
//!   `(sum - n * x_zp) * x_s / (y_s * n)`; QActivation: dequantize, activate, quantize.

use super::elementwise::{activate, broadcast_index};
use super::{InterpError, Result};
use crate::ir::{
    Activation, BinaryOp, Data, QBinary, QBinaryForm, QConv, QMatMul, QuantParams, Tensor,
    TensorType,
};

/// The i64 storage of an integer tensor.
fn ints(t: &Tensor) -> Result<&[i64]> {
    t.as_i64().ok_or_else(|| InterpError::Malformed {
        input: 0,
        detail: format!(
            "expected integer storage, {} tensor holds something else",
            t.ty
        ),
    })
}

fn int_tensor(ty: TensorType, data: Vec<i64>) -> Tensor {
    Tensor {
        ty,
        data: Data::I64(data),
    }
}

/// The index along `q.axis` of each element of a tensor of `shape`.
fn channel_of(q: &QuantParams, shape: &[usize]) -> impl Fn(usize) -> usize {
    let (inner, dim) = match q.axis {
        Some(a) => (shape[a + 1..].iter().product::<usize>(), shape[a]),
        None => (1, 1),
    };
    move |flat| (flat / inner) % dim
}

/// `v` (already divided by the scale) rounded half to even, shifted by `zp` and saturated to
/// the range of `q.dtype`. NaN gives the zero point.
pub(super) fn saturate(v: f32, zp: i64, q: &QuantParams) -> i64 {
    let (lo, hi) = QuantParams::range(q.dtype).unwrap_or((i64::MIN, i64::MAX));
    if v.is_nan() {
        return zp.clamp(lo, hi);
    }
    let r = v.round_ties_even() as f64 + zp as f64;
    r.clamp(lo as f64, hi as f64) as i64
}

/// One real value quantized with per-tensor parameters.
fn quantize_one(x: f32, q: &QuantParams) -> i64 {
    let (s, zp) = q.at(0);
    saturate(x / s, zp, q)
}

pub(super) fn quantize(q: &QuantParams, x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let xv = super::floats(x)?;
    let ch = channel_of(q, x.shape());
    let data = xv
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (s, zp) = q.at(ch(i));
            saturate(v / s, zp, q)
        })
        .collect();
    Ok(int_tensor(out.clone(), data))
}

pub(super) fn dequantize(q: &QuantParams, x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let xv = ints(x)?;
    let ch = channel_of(q, x.shape());
    let data = xv
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (s, zp) = q.at(ch(i));
            (v - zp) as f32 * s
        })
        .collect();
    Ok(super::float_tensor(out.clone(), data))
}

/// Requantizes accumulator `acc` of a product with input scale `in_scale` (`x_s * w_s`):
/// the ORT multiplier form without activation, dequantize-activate-quantize with one.
fn requantize(acc: i64, in_scale: f32, y: &QuantParams, act: Option<&Activation>) -> i64 {
    let (ys, yzp) = y.at(0);
    match act {
        None => saturate(acc as f32 * (in_scale / ys), yzp, y),
        Some(a) => saturate(activate(a, acc as f32 * in_scale) / ys, yzp, y),
    }
}

pub(super) fn qconv(c: &QConv, x: &[&Tensor], out: &TensorType) -> Result<Tensor> {
    let (xt, wt) = (x[0], x[1]);
    let (xs, ws, os) = (xt.shape(), wt.shape(), &out.shape);
    let (batch, c_in, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (c_out, c_per_group, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
    let (oh, ow) = (os[2], os[3]);
    let out_per_group = c_out / c.conv.group;
    let (xv, wv) = (ints(xt)?, ints(wt)?);
    let bias = x.get(2).map(|b| ints(b)).transpose()?;
    let (x_s, x_zp) = c.x.at(0);
    let [sy, sx] = c.conv.strides;
    let [dy, dx] = c.conv.dilations;
    let (pt, pl) = (c.conv.pads[0] as isize, c.conv.pads[1] as isize);
    let mut y = Vec::with_capacity(batch * c_out * oh * ow);
    for n in 0..batch {
        for oc in 0..c_out {
            let g = oc / out_per_group;
            let (w_s, w_zp) = c.w.at(oc);
            let in_scale = x_s * w_s;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc: i64 = bias.map_or(0, |b| b[oc]);
                    for icg in 0..c_per_group {
                        let ic = g * c_per_group + icg;
                        for ky in 0..kh {
                            let iy = (oy * sy + ky * dy) as isize - pt;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox * sx + kx * dx) as isize - pl;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let xq = xv[((n * c_in + ic) * h + iy as usize) * wd + ix as usize];
                                let wq = wv[((oc * c_per_group + icg) * kh + ky) * kw + kx];
                                acc += (xq - x_zp) * (wq - w_zp);
                            }
                        }
                    }
                    y.push(requantize(acc, in_scale, &c.y, c.act.as_ref()));
                }
            }
        }
    }
    Ok(int_tensor(out.clone(), y))
}

pub(super) fn qmatmul(m: &QMatMul, x: &[&Tensor], out: &TensorType) -> Result<Tensor> {
    let (a, b) = (x[0], x[1]);
    let promote = |s: &[usize], first: bool| -> Vec<usize> {
        match (s.len(), first) {
            (1, true) => vec![1, s[0]],
            (1, false) => vec![s[0], 1],
            _ => s.to_vec(),
        }
    };
    let mut b_shape = promote(b.shape(), false);
    if m.trans_b {
        b_shape.swap(0, 1);
    }
    let a_shape = promote(a.shape(), true);
    let (rows, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let n = b_shape[b_shape.len() - 1];
    let a_batch = &a_shape[..a_shape.len() - 2];
    let b_batch = &b_shape[..b_shape.len() - 2];
    let batch_shape = crate::ir::infer::broadcast_shapes(a_batch, b_batch)?;
    let (ia, ib) = (
        broadcast_index(a_batch, &batch_shape),
        broadcast_index(b_batch, &batch_shape),
    );
    let (av, bv) = (ints(a)?, ints(b)?);
    let bias = x.get(2).map(|t| ints(t)).transpose()?;
    let (a_s, a_zp) = m.a.at(0);
    // Element (p, j) of the (possibly transposed) matrix b of batch item `bi`.
    let b_at = |bi: usize, p: usize, j: usize| {
        if m.trans_b {
            bv[bi * k * n + j * k + p]
        } else {
            bv[bi * k * n + p * n + j]
        }
    };
    let mut y = Vec::with_capacity(ia.len() * rows * n);
    for (&ai, &bi) in ia.iter().zip(&ib) {
        let a_mat = &av[ai * rows * k..][..rows * k];
        for i in 0..rows {
            for j in 0..n {
                let (b_s, b_zp) = m.b.at(j);
                let acc: i64 = (0..k)
                    .map(|p| (a_mat[i * k + p] - a_zp) * (b_at(bi, p, j) - b_zp))
                    .sum::<i64>()
                    + bias.map_or(0, |b| b[j]);
                y.push(requantize(acc, a_s * b_s, &m.y, None));
            }
        }
    }
    Ok(int_tensor(out.clone(), y))
}

pub(super) fn qbinary(q: &QBinary, a: &Tensor, b: &Tensor, out: &TensorType) -> Result<Tensor> {
    let (av, bv) = (ints(a)?, ints(b)?);
    let ((a_s, a_zp), (b_s, b_zp), (y_s, y_zp)) = (q.a.at(0), q.b.at(0), q.y.at(0));
    let ia = broadcast_index(a.shape(), &out.shape);
    let ib = broadcast_index(b.shape(), &out.shape);
    let (ratio_a, ratio_b, ratio_mul) = (a_s / y_s, b_s / y_s, a_s * b_s / y_s);
    let y = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| {
            let (x, z) = (av[i] - a_zp, bv[j] - b_zp);
            let v = match (q.form, q.op) {
                (QBinaryForm::Ratio, BinaryOp::Mul) => (x * z) as f32 * ratio_mul,
                (QBinaryForm::Ratio, _) => x as f32 * ratio_a + z as f32 * ratio_b,
                (QBinaryForm::Dequantized, BinaryOp::Mul) => {
                    (x as f32 * a_s) * (z as f32 * b_s) / y_s
                }
                (QBinaryForm::Dequantized, _) => (x as f32 * a_s + z as f32 * b_s) / y_s,
            };
            saturate(v, y_zp, &q.y)
        })
        .collect();
    Ok(int_tensor(out.clone(), y))
}

/// Each input requantized to `qy` (ORT's lookup table: dequantize, then quantize), then a
/// plain concatenation.
pub(super) fn qconcat(
    axis: usize,
    qx: &[QuantParams],
    qy: &QuantParams,
    x: &[&Tensor],
    out: &TensorType,
) -> Result<Tensor> {
    let parts = x
        .iter()
        .zip(qx)
        .map(|(t, q)| {
            let (s, zp) = q.at(0);
            let data = if q == qy {
                ints(t)?.to_vec()
            } else {
                ints(t)?
                    .iter()
                    .map(|&v| quantize_one((v - zp) as f32 * s, qy))
                    .collect()
            };
            Ok(int_tensor(
                TensorType::new(qy.dtype, t.shape().to_vec()),
                data,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = parts.iter().collect();
    super::shape::concat(axis, &refs, out)
}

pub(super) fn qglobal_average_pool(
    qx: &QuantParams,
    qy: &QuantParams,
    x: &Tensor,
    out: &TensorType,
) -> Result<Tensor> {
    let xv = ints(x)?;
    let inner: usize = x.shape()[2..].iter().product();
    let ((x_s, x_zp), (y_s, y_zp)) = (qx.at(0), qy.at(0));
    let scale = x_s / (y_s * inner as f32);
    let y = xv
        .chunks(inner.max(1))
        .map(|plane| {
            let acc: i64 = plane.iter().sum::<i64>() - x_zp * inner as i64;
            saturate(acc as f32 * scale, y_zp, qy)
        })
        .collect();
    Ok(int_tensor(out.clone(), y))
}

pub(super) fn qactivation(
    act: &Activation,
    qx: &QuantParams,
    qy: &QuantParams,
    x: &Tensor,
    out: &TensorType,
) -> Result<Tensor> {
    let (x_s, x_zp) = qx.at(0);
    let y = ints(x)?
        .iter()
        .map(|&v| quantize_one(activate(act, (v - x_zp) as f32 * x_s), qy))
        .collect();
    Ok(int_tensor(out.clone(), y))
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::{eval1, t};
    use crate::ir::{
        Activation, BinaryOp, Conv, DType, Op, QBinary, QBinaryForm, QConv, QuantParams, Tensor,
    };

    fn q(dtype: DType, scale: f32, zp: i64) -> QuantParams {
        QuantParams::per_tensor(dtype, scale, zp)
    }

    fn tq(dtype: DType, shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::new(dtype, shape.to_vec(), crate::ir::Data::I64(v.to_vec())).unwrap()
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let x = t(&[7], &[0.5, 1.5, 2.5, -0.5, 1000.0, -1000.0, f32::NAN]);
        let y = eval1(Op::Quantize(q(DType::U8, 1.0, 10)), &[&x]);
        assert_eq!(y.dtype(), DType::U8);
        assert_eq!(y.as_i64().unwrap(), [10, 12, 12, 10, 255, 0, 10]);
        let y = eval1(Op::Quantize(q(DType::I8, 0.5, 0)), &[&x]);
        assert_eq!(y.as_i64().unwrap(), [1, 3, 5, -1, 127, -128, 0]);
    }

    #[test]
    fn per_axis_dequantize() {
        let p = QuantParams {
            dtype: DType::I8,
            scale: vec![1.0, 0.5],
            zero_point: vec![0, 2],
            axis: Some(1),
        };
        let x = tq(DType::I8, &[2, 2], &[4, 4, -4, -4]);
        let y = eval1(Op::Dequantize(p), &[&x]);
        assert_eq!(y.as_f32().unwrap(), [4.0, 1.0, -4.0, -3.0]);
    }

    #[test]
    fn qconv_matches_dequantized_float_conv() {
        // 1x1 conv, two output channels with their own weight scales, bias, zero points.
        let conv = Conv {
            kernel: [1, 1],
            strides: [1, 1],
            pads: [0; 4],
            dilations: [1, 1],
            group: 1,
        };
        let w_q = QuantParams {
            dtype: DType::I8,
            scale: vec![0.5, 0.25],
            zero_point: vec![0, 0],
            axis: Some(0),
        };
        let x = tq(DType::U8, &[1, 2, 1, 2], &[10, 20, 30, 40]);
        let w = tq(DType::I8, &[2, 2, 1, 1], &[1, -1, 2, 2]);
        let b = tq(DType::I32, &[2], &[4, 0]);
        let op = |act| {
            Op::QConv(QConv {
                conv: conv.clone(),
                x: q(DType::U8, 0.1, 10),
                w: w_q.clone(),
                y: q(DType::U8, 0.05, 100),
                act,
            })
        };
        // Channel 0: acc = (0 - 20)*1 + 4 = -16 and (10 - 30) + 4 = -16; real = -16 * 0.05.
        // Channel 1: acc = 2*(0 + 20) = 40, 2*(10 + 30) = 80; real = acc * 0.025.
        let y = eval1(op(None), &[&x, &w, &b]);
        assert_eq!(y.as_i64().unwrap(), [84, 84, 120, 140]);
        let y = eval1(op(Some(Activation::Relu)), &[&x, &w, &b]);
        assert_eq!(y.as_i64().unwrap(), [100, 100, 120, 140]);
    }

    #[test]
    fn qadd_qmul_qpool_qsigmoid() {
        let a = tq(DType::U8, &[1, 2, 1, 2], &[0, 10, 20, 30]);
        let b = tq(DType::U8, &[1, 2, 1, 1], &[5, 15]);
        let add = Op::QBinary(QBinary {
            op: BinaryOp::Add,
            a: q(DType::U8, 0.1, 0),
            b: q(DType::U8, 0.2, 5),
            y: q(DType::U8, 0.1, 0),
            form: QBinaryForm::Ratio,
        });
        assert_eq!(eval1(add, &[&a, &b]).as_i64().unwrap(), [0, 10, 40, 50]);
        let mul = Op::QBinary(QBinary {
            op: BinaryOp::Mul,
            a: q(DType::U8, 0.1, 0),
            b: q(DType::U8, 0.2, 5),
            y: q(DType::U8, 0.1, 0),
            form: QBinaryForm::Ratio,
        });
        assert_eq!(eval1(mul, &[&a, &b]).as_i64().unwrap(), [0, 0, 40, 60]);
        let pool = Op::QGlobalAveragePool {
            x: q(DType::U8, 0.1, 0),
            y: q(DType::U8, 0.1, 1),
        };
        assert_eq!(eval1(pool, &[&a]).as_i64().unwrap(), [6, 26]);
        let sig = Op::QActivation {
            act: Activation::Sigmoid,
            x: q(DType::U8, 0.1, 10),
            y: q(DType::U8, 1.0 / 256.0, 0),
        };
        // sigmoid(-1), sigmoid(0), sigmoid(1), sigmoid(2) in steps of 1/256.
        assert_eq!(eval1(sig, &[&a]).as_i64().unwrap(), [69, 128, 187, 225]);
    }
}
