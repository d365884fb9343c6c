//! Elementwise ops: activations, unary and binary arithmetic with ONNX broadcasting, Where, Cast.

use super::{floats, InterpError, Result};
use crate::ir::{Activation, BinaryOp, DType, Data, Tensor, TensorType, UnaryOp};

/// For each element of `out_shape` (row-major), the flat index of the element of an input of
/// shape `in_shape` that numpy broadcasting reads there. `in_shape` must broadcast to
/// `out_shape` (inference has checked it).
pub(super) fn broadcast_index(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let numel: usize = out_shape.iter().product();
    if in_shape == out_shape {
        return (0..numel).collect();
    }
    // Input strides aligned to the output's trailing dims; 0 where the input is broadcast.
    let offset = out_shape.len() - in_shape.len();
    let mut strides = vec![0usize; out_shape.len()];
    let mut stride = 1;
    for d in (0..in_shape.len()).rev() {
        strides[offset + d] = if in_shape[d] == 1 { 0 } else { stride };
        stride *= in_shape[d];
    }
    let mut index = Vec::with_capacity(numel);
    let mut counter = vec![0usize; out_shape.len()];
    let mut flat = 0usize;
    for _ in 0..numel {
        index.push(flat);
        for d in (0..out_shape.len()).rev() {
            counter[d] += 1;
            flat += strides[d];
            if counter[d] < out_shape[d] {
                break;
            }
            flat -= strides[d] * counter[d];
            counter[d] = 0;
        }
    }
    index
}

/// `f` applied to the broadcast pairs of `a` and `b`.
fn zip_broadcast<A: Copy, B: Copy, C>(
    (a, a_shape): (&[A], &[usize]),
    (b, b_shape): (&[B], &[usize]),
    out_shape: &[usize],
    mut f: impl FnMut(A, B) -> Result<C>,
) -> Result<Vec<C>> {
    if a_shape == out_shape && b_shape == out_shape {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    let ia = broadcast_index(a_shape, out_shape);
    let ib = broadcast_index(b_shape, out_shape);
    ia.iter().zip(&ib).map(|(&i, &j)| f(a[i], b[j])).collect()
}

/// Largest of two floats; NaN if either is NaN (`f32::max` would drop it).
pub(super) fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// Smallest of two floats; NaN if either is NaN.
pub(super) fn min_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

/// `x` clamped to `[lo, hi]`, NaN passing through.
fn clamp_nan(x: f32, lo: f32, hi: f32) -> f32 {
    min_nan(max_nan(x, lo), hi)
}

/// One activation applied to one value.
pub(super) fn activate(act: &Activation, x: f32) -> f32 {
    match *act {
        Activation::Relu => max_nan(x, 0.0),
        Activation::Clamp { lo: min, hi: max } => clamp_nan(x, min, max),
        Activation::HardSigmoid { alpha, beta } => clamp_nan(alpha * x + beta, 0.0, 1.0),
        // ONNX Runtime computes HardSwish as x * HardSigmoid(x) with alpha = 1/6, beta = 0.5.
        Activation::HardSwish => x * clamp_nan(x * (1.0 / 6.0) + 0.5, 0.0, 1.0),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        // The unfused `Mul(x, Sigmoid(x))` it replaces, rounding for rounding.
        Activation::Silu => x * (1.0 / (1.0 + (-x).exp())),
        Activation::LeakyRelu { alpha } => {
            if x < 0.0 {
                alpha * x
            } else {
                x
            }
        }
        Activation::Tanh => x.tanh(),
        // In f64 from one f32 input: within an ulp of the exact function, like ORT's
        // `Div -> Erf -> Add -> Mul -> Mul` chain it replaces up to that chain's roundings.
        Activation::Gelu => {
            let x = x as f64;
            (0.5 * x * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))) as f32
        }
        // In f64 from one f32 input (e^x overflowing to infinity gives tanh = 1).
        Activation::Mish => {
            let x = x as f64;
            (x * x.exp().ln_1p().tanh()) as f32
        }
    }
}

pub(super) fn activation(act: &Activation, x: &Tensor) -> Result<Tensor> {
    let data = floats(x)?.iter().map(|&v| activate(act, v)).collect();
    Ok(Tensor {
        ty: x.ty.clone(),
        data: Data::F32(data),
    })
}

/// Wraps an i64 result to the range of the declared integer type, as two's complement
/// arithmetic in that type would.
pub(super) fn wrap_int(v: i64, dtype: DType) -> i64 {
    match dtype {
        DType::I32 => v as i32 as i64,
        DType::I16 => v as i16 as i64,
        DType::I8 => v as i8 as i64,
        DType::U32 => v as u32 as i64,
        DType::U16 => v as u16 as i64,
        DType::U8 => v as u8 as i64,
        _ => v,
    }
}

pub(super) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, out: &TensorType) -> Result<Tensor> {
    use BinaryOp::*;
    let shape = &out.shape[..];
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => {
            let (x, y) = ((&x[..], a.shape()), (&y[..], b.shape()));
            match op {
                Equal => Data::Bool(zip_broadcast(x, y, shape, |p, q| Ok(p == q))?),
                Less => Data::Bool(zip_broadcast(x, y, shape, |p, q| Ok(p < q))?),
                Greater => Data::Bool(zip_broadcast(x, y, shape, |p, q| Ok(p > q))?),
                _ => Data::F32(zip_broadcast(x, y, shape, |p, q| {
                    Ok(float_binary(op, p, q))
                })?),
            }
        }
        (Data::I64(x), Data::I64(y)) => {
            let (x, y) = ((&x[..], a.shape()), (&y[..], b.shape()));
            let dtype = a.dtype();
            match op {
                Equal => Data::Bool(zip_broadcast(x, y, shape, |p, q| Ok(p == q))?),
                Less => Data::Bool(zip_broadcast(x, y, shape, |p, q| Ok(p < q))?),
                Greater => Data::Bool(zip_broadcast(x, y, shape, |p, q| Ok(p > q))?),
                _ => Data::I64(zip_broadcast(x, y, shape, |p, q| {
                    int_binary(op, p, q).map(|v| wrap_int(v, dtype))
                })?),
            }
        }
        (Data::Bool(x), Data::Bool(y)) if op == Equal => Data::Bool(zip_broadcast(
            (&x[..], a.shape()),
            (&y[..], b.shape()),
            shape,
            |p, q| Ok(p == q),
        )?),
        // Pow with an exponent of another type: the exponent is converted to the base's.
        (Data::F32(x), _) if op == Pow => {
            let y = b.to_f32_vec();
            Data::F32(zip_broadcast(
                (&x[..], a.shape()),
                (&y[..], b.shape()),
                shape,
                |p, q| Ok(p.powf(q)),
            )?)
        }
        (Data::I64(x), Data::F32(y)) if op == Pow => {
            let dtype = a.dtype();
            let f = |p: i64, q: f32| Ok(wrap_int((p as f64).powf(q as f64) as i64, dtype));
            Data::I64(zip_broadcast(
                (&x[..], a.shape()),
                (&y[..], b.shape()),
                shape,
                f,
            )?)
        }
        _ => return Err(unsupported_types(op, a, b)),
    };
    Ok(Tensor {
        ty: out.clone(),
        data,
    })
}

fn unsupported_types(op: BinaryOp, a: &Tensor, b: &Tensor) -> InterpError {
    InterpError::Unsupported {
        op: crate::ir::Op::Binary(op).name(),
        detail: format!("operands {} and {}", a.dtype(), b.dtype()),
    }
}

fn float_binary(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Max => max_nan(a, b),
        BinaryOp::Min => min_nan(a, b),
        BinaryOp::PRelu => {
            if a < 0.0 {
                a * b
            } else {
                a
            }
        }
        // Comparisons are handled by the caller.
        BinaryOp::Equal | BinaryOp::Less | BinaryOp::Greater => f32::NAN,
    }
}

fn int_binary(op: BinaryOp, a: i64, b: i64) -> Result<i64> {
    let value_err = |detail: String| InterpError::Value {
        op: crate::ir::Op::Binary(op).name(),
        detail,
    };
    Ok(match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        // ONNX integer division truncates toward zero, as Rust's does.
        BinaryOp::Div => {
            if b == 0 {
                return Err(value_err(format!("integer division {a} / 0")));
            }
            a.wrapping_div(b)
        }
        BinaryOp::Pow => {
            let e = u32::try_from(b)
                .map_err(|_| value_err(format!("integer power with exponent {b}")))?;
            a.wrapping_pow(e)
        }
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::PRelu => {
            if a < 0 {
                a.wrapping_mul(b)
            } else {
                a
            }
        }
        BinaryOp::Equal | BinaryOp::Less | BinaryOp::Greater => 0,
    })
}

pub(super) fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let data = match (&x.data, op) {
        (Data::Bool(v), UnaryOp::Not) => Data::Bool(v.iter().map(|b| !b).collect()),
        (Data::I64(v), UnaryOp::Neg) => Data::I64(
            v.iter()
                .map(|&i| wrap_int(i.wrapping_neg(), x.dtype()))
                .collect(),
        ),
        (Data::I64(v), UnaryOp::Abs) => Data::I64(
            v.iter()
                .map(|&i| wrap_int(i.wrapping_abs(), x.dtype()))
                .collect(),
        ),
        (Data::F32(v), _) => {
            let f = |a: f32| match op {
                UnaryOp::Neg => -a,
                UnaryOp::Sqrt => a.sqrt(),
                UnaryOp::Reciprocal => 1.0 / a,
                UnaryOp::Exp => a.exp(),
                UnaryOp::Abs => a.abs(),
                UnaryOp::Floor => a.floor(),
                UnaryOp::Ceil => a.ceil(),
                UnaryOp::Not => f32::NAN,
                UnaryOp::Erf => libm::erf(a as f64) as f32,
                // ONNX Runtime's form: no overflow of e^x for large x.
                UnaryOp::Softplus => {
                    if a > 0.0 {
                        a + (-a).exp().ln_1p()
                    } else {
                        a.exp().ln_1p()
                    }
                }
            };
            Data::F32(v.iter().map(|&a| f(a)).collect())
        }
        _ => {
            return Err(InterpError::Unsupported {
                op: crate::ir::Op::Unary(op).name(),
                detail: format!("operand {}", x.dtype()),
            })
        }
    };
    Ok(Tensor {
        ty: x.ty.clone(),
        data,
    })
}

/// `Where(cond, x, y)` with three-way broadcasting.
pub(super) fn where_(cond: &Tensor, x: &Tensor, y: &Tensor, out: &TensorType) -> Result<Tensor> {
    let Data::Bool(c) = &cond.data else {
        return Err(InterpError::Malformed {
            input: 0,
            detail: "condition is not bool".into(),
        });
    };
    let ic = broadcast_index(cond.shape(), &out.shape);
    let ix = broadcast_index(x.shape(), &out.shape);
    let iy = broadcast_index(y.shape(), &out.shape);
    fn pick<T: Clone>(
        c: &[bool],
        x: &[T],
        y: &[T],
        ic: &[usize],
        ix: &[usize],
        iy: &[usize],
    ) -> Vec<T> {
        (0..ic.len())
            .map(|k| {
                if c[ic[k]] {
                    x[ix[k]].clone()
                } else {
                    y[iy[k]].clone()
                }
            })
            .collect()
    }
    let data = match (&x.data, &y.data) {
        (Data::F32(a), Data::F32(b)) => Data::F32(pick(c, a, b, &ic, &ix, &iy)),
        (Data::I64(a), Data::I64(b)) => Data::I64(pick(c, a, b, &ic, &ix, &iy)),
        (Data::Bool(a), Data::Bool(b)) => Data::Bool(pick(c, a, b, &ic, &ix, &iy)),
        _ => {
            return Err(InterpError::Malformed {
                input: 2,
                detail: "x and y storage differ".into(),
            })
        }
    };
    Ok(Tensor {
        ty: out.clone(),
        data,
    })
}

/// `Cast` to `to`. Float to integer truncates toward zero (saturating at the i64 range, NaN
/// becoming 0), then wraps to the target width; anything to bool is `!= 0`. Narrower float
/// targets (f16, bf16) keep f32 values: ghostc computes in f32 only.
pub(super) fn cast(x: &Tensor, to: DType) -> Result<Tensor> {
    let data = if to == DType::Bool {
        Data::Bool(match &x.data {
            Data::F32(v) => v.iter().map(|&a| a != 0.0).collect(),
            Data::I64(v) => v.iter().map(|&a| a != 0).collect(),
            Data::Bool(v) => v.clone(),
        })
    } else if to.is_float() {
        Data::F32(x.to_f32_vec())
    } else {
        Data::I64(
            x.to_i64_vec()
                .into_iter()
                .map(|v| wrap_int(v, to))
                .collect(),
        )
    };
    Ok(Tensor {
        ty: TensorType::new(to, x.shape().to_vec()),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::eval_op;
    use crate::interp::test_util::{eval1, t, ti};
    use crate::ir::Op;

    #[test]
    fn broadcast_index_cases() {
        assert_eq!(broadcast_index(&[3], &[2, 3]), [0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), [0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[], &[2, 2]), [0, 0, 0, 0]);
        assert_eq!(
            broadcast_index(&[1, 2, 1], &[2, 2, 2]),
            [0, 0, 1, 1, 0, 0, 1, 1]
        );
    }

    #[test]
    fn broadcast_binary() {
        // [2,1] + [3] -> [2,3]
        let a = t(&[2, 1], &[10.0, 20.0]);
        let b = t(&[3], &[1.0, 2.0, 3.0]);
        let y = eval1(Op::Binary(BinaryOp::Add), &[&a, &b]);
        assert_eq!(y.shape(), [2, 3]);
        assert_eq!(y.as_f32().unwrap(), [11.0, 12.0, 13.0, 21.0, 22.0, 23.0]);
        // Per-channel scale on NCHW.
        let x = t(&[1, 2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
        let s = t(&[1, 2, 1, 1], &[10.0, 100.0]);
        let y = eval1(Op::Binary(BinaryOp::Mul), &[&x, &s]);
        assert_eq!(y.as_f32().unwrap(), [10.0, 20.0, 300.0, 400.0]);
        // Scalar on the left.
        let y = eval1(Op::Binary(BinaryOp::Sub), &[&Tensor::scalar_f32(1.0), &b]);
        assert_eq!(y.as_f32().unwrap(), [0.0, -1.0, -2.0]);
    }

    #[test]
    fn integer_arithmetic() {
        let a = ti(&[4], &[7, -7, 7, -7]);
        let b = ti(&[4], &[2, 2, -2, -2]);
        // ONNX integer Div truncates toward zero.
        assert_eq!(
            eval1(Op::Binary(BinaryOp::Div), &[&a, &b])
                .as_i64()
                .unwrap(),
            [3, -3, -3, 3]
        );
        assert_eq!(
            eval1(Op::Binary(BinaryOp::Mul), &[&a, &b])
                .as_i64()
                .unwrap(),
            [14, -14, -14, 14]
        );
        let lt = eval1(Op::Binary(BinaryOp::Less), &[&a, &b]);
        assert_eq!(lt.data, Data::Bool(vec![false, true, false, true]));
        let zero = ti(&[], &[0]);
        assert!(matches!(
            eval_op(&Op::Binary(BinaryOp::Div), &[&a, &zero]),
            Err(InterpError::Value { .. })
        ));
        // i32 arithmetic wraps at 32 bits.
        let big = Tensor::new(DType::I32, vec![1], Data::I64(vec![i32::MAX as i64])).unwrap();
        let one = Tensor::new(DType::I32, vec![1], Data::I64(vec![1])).unwrap();
        assert_eq!(
            eval1(Op::Binary(BinaryOp::Add), &[&big, &one])
                .as_i64()
                .unwrap(),
            [i32::MIN as i64]
        );
    }

    #[test]
    fn nan_propagates_through_relu_clip_max() {
        let x = t(&[4], &[f32::NAN, -1.0, 0.5, 9.0]);
        let relu = eval1(Op::Activation(Activation::Relu), &[&x]);
        let r = relu.as_f32().unwrap();
        assert!(r[0].is_nan());
        assert_eq!(&r[1..], [0.0, 0.5, 9.0]);
        let clip = eval1(
            Op::Activation(Activation::Clamp { lo: 0.0, hi: 6.0 }),
            &[&x],
        );
        let c = clip.as_f32().unwrap();
        assert!(c[0].is_nan());
        assert_eq!(&c[1..], [0.0, 0.5, 6.0]);
        let y = t(&[4], &[0.0, f32::NAN, 1.0, 1.0]);
        let max = eval1(Op::Binary(BinaryOp::Max), &[&x, &y]);
        let m = max.as_f32().unwrap();
        assert!(m[0].is_nan() && m[1].is_nan());
        assert_eq!(&m[2..], [1.0, 9.0]);
        let min = eval1(Op::Binary(BinaryOp::Min), &[&y, &x]);
        assert!(min.as_f32().unwrap()[0].is_nan() && min.as_f32().unwrap()[1].is_nan());
        let hs = eval1(
            Op::Activation(Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            }),
            &[&x],
        );
        assert!(hs.as_f32().unwrap()[0].is_nan());
    }

    #[test]
    fn activations_by_hand() {
        let x = t(&[5], &[-4.0, -1.0, 0.0, 1.0, 4.0]);
        let act = |a: Activation| eval1(Op::Activation(a), &[&x]).as_f32().unwrap().to_vec();
        // clamp(0.2x + 0.5, 0, 1)
        assert_eq!(
            act(Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5
            }),
            [0.0, 0.3, 0.5, 0.7, 1.0]
        );
        // x * clamp(x/6 + 0.5, 0, 1): -1 * 1/3, 1 * 2/3, 4 * 1.
        let hs = act(Activation::HardSwish);
        let expected = [0.0, -1.0 / 3.0, 0.0, 2.0 / 3.0, 4.0];
        assert!(
            hs.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6),
            "{hs:?}"
        );
        assert_eq!(
            act(Activation::LeakyRelu { alpha: 0.1 }),
            [-0.4, -0.1, 0.0, 1.0, 4.0]
        );
        let sig = act(Activation::Sigmoid);
        assert!((sig[2] - 0.5).abs() < 1e-7 && (sig[3] - 0.731_058_6).abs() < 1e-6);
        let big = t(&[2], &[-200.0, 200.0]);
        assert_eq!(
            eval1(Op::Activation(Activation::Sigmoid), &[&big])
                .as_f32()
                .unwrap(),
            [0.0, 1.0]
        );
    }

    #[test]
    fn cast_and_where() {
        let x = t(&[4], &[1.9, -1.9, 0.0, f32::NAN]);
        let i = eval1(Op::Cast { to: DType::I64 }, &[&x]);
        assert_eq!(i.as_i64().unwrap(), [1, -1, 0, 0]);
        let b = eval1(Op::Cast { to: DType::Bool }, &[&x]);
        assert_eq!(b.data, Data::Bool(vec![true, true, false, true]));
        let back = eval1(Op::Cast { to: DType::F32 }, &[&ti(&[2], &[3, -4])]);
        assert_eq!(back.as_f32().unwrap(), [3.0, -4.0]);
        let u8 = eval1(Op::Cast { to: DType::U8 }, &[&ti(&[2], &[256, -1])]);
        assert_eq!(u8.as_i64().unwrap(), [0, 255]);
        let cond = Tensor::new(DType::Bool, vec![2, 1], Data::Bool(vec![true, false])).unwrap();
        let w = eval1(
            Op::Where,
            &[&cond, &t(&[2], &[1.0, 2.0]), &Tensor::scalar_f32(-1.0)],
        );
        assert_eq!(w.shape(), [2, 2]);
        assert_eq!(w.as_f32().unwrap(), [1.0, 2.0, -1.0, -1.0]);
    }

    #[test]
    fn unary_ops() {
        let x = t(&[3], &[-1.5, 0.25, 4.0]);
        let u = |op| eval1(Op::Unary(op), &[&x]).as_f32().unwrap().to_vec();
        assert_eq!(u(UnaryOp::Neg), [1.5, -0.25, -4.0]);
        assert_eq!(u(UnaryOp::Floor), [-2.0, 0.0, 4.0]);
        assert_eq!(u(UnaryOp::Ceil), [-1.0, 1.0, 4.0]);
        assert_eq!(u(UnaryOp::Reciprocal), [-1.0 / 1.5, 4.0, 0.25]);
        assert_eq!(u(UnaryOp::Sqrt)[2], 2.0);
        assert!(eval_op(&Op::Unary(UnaryOp::Sqrt), &[&ti(&[1], &[4])]).is_err());
        let neg = eval1(Op::Unary(UnaryOp::Neg), &[&ti(&[2], &[3, -4])]);
        assert_eq!(neg.as_i64().unwrap(), [-3, 4]);
    }
}
