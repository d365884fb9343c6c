//! Quantized ops: Quantize, Dequantize and the integer ops of ONNX's QOperator form (QConv,
//! QMatMul, QAdd/QMul, QGlobalAveragePool, QActivation). Every quantized input must have the
//! integer type its parameters name, and every parameter set must fit its tensor (see
//! [`QuantParams::check`]); the output has the output parameters' type.

use super::conv::conv_output;
use super::{
    broadcast_shapes, dtype_err, expect_float, invalid, matmul_shape, one, rank_err, InferError,
    InputFact, Outputs,
};
use crate::ir::{
    fmt_shape, Activation, BinaryOp, DType, QBinary, QConv, QMatMul, QuantParams, TensorType,
};

/// Input `i` is quantized with `q`: its dtype is `q.dtype` and the parameters fit its shape.
fn expect_quantized(
    inputs: &[InputFact<'_>],
    i: usize,
    q: &QuantParams,
    what: &'static str,
) -> Result<(), InferError> {
    let ty = inputs[i].ty;
    if ty.dtype != q.dtype {
        return Err(dtype_err(i, q.dtype.name(), ty.dtype));
    }
    q.check(&ty.shape)
        .map_err(|e| invalid(what, format!("input {i}: {e}")))
}

/// Output parameters: per tensor, u8 or i8.
fn expect_output(q: &QuantParams, what: &'static str) -> Result<(), InferError> {
    if !matches!(q.dtype, DType::U8 | DType::I8) || !q.is_per_tensor() {
        return Err(invalid(
            what,
            format!(
                "output quantization must be per-tensor u8 or i8, got {} with {} scales",
                q.dtype,
                q.scale.len()
            ),
        ));
    }
    q.check(&[])
        .map_err(|e| invalid(what, format!("output: {e}")))
}

pub(super) fn quantize(q: &QuantParams, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0])?;
    if !matches!(q.dtype, DType::U8 | DType::I8 | DType::U16 | DType::I16) {
        return Err(invalid(
            "quantize",
            format!("cannot quantize to {}", q.dtype),
        ));
    }
    let x = &inputs[0].ty.shape;
    q.check(x).map_err(|e| invalid("quantize", e))?;
    one(q.dtype, x.clone())
}

pub(super) fn dequantize(q: &QuantParams, inputs: &[InputFact<'_>]) -> Outputs {
    expect_quantized(inputs, 0, q, "dequantize")?;
    one(DType::F32, inputs[0].ty.shape.clone())
}

/// The shape rules of Conv over stand-in f32 types (x and w may differ in dtype here).
fn as_f32(ty: &TensorType) -> TensorType {
    TensorType::f32(ty.shape.clone())
}

pub(super) fn qconv(c: &QConv, inputs: &[InputFact<'_>]) -> Outputs {
    expect_quantized(inputs, 0, &c.x, "qconv")?;
    expect_quantized(inputs, 1, &c.w, "qconv")?;
    if !c.x.is_per_tensor() {
        return Err(invalid("qconv", "input quantization must be per-tensor"));
    }
    if !matches!(c.w.axis, None | Some(0)) {
        return Err(invalid(
            "qconv",
            format!(
                "weight scales along axis {:?}; per-channel weights must be along axis 0 (output channels)",
                c.w.axis
            ),
        ));
    }
    expect_output(&c.y, "qconv")?;
    if let Some(b) = inputs.get(2) {
        if b.ty.dtype != DType::I32 {
            return Err(dtype_err(2, "i32", b.ty.dtype));
        }
    }
    if let Some(act) = &c.act {
        super::elementwise::check_activation(act)?;
    }
    let stand_in: Vec<TensorType> = inputs.iter().map(|f| as_f32(f.ty)).collect();
    let facts: Vec<InputFact<'_>> = stand_in
        .iter()
        .map(|ty| InputFact { ty, value: None })
        .collect();
    let bias = (facts.len() == 3).then_some(2);
    let out = conv_output(&c.conv, &facts, 0, 1, bias)?;
    one(c.y.dtype, out)
}

pub(super) fn qmatmul(m: &QMatMul, inputs: &[InputFact<'_>]) -> Outputs {
    expect_quantized(inputs, 0, &m.a, "qmatmul")?;
    expect_quantized(inputs, 1, &m.b, "qmatmul")?;
    expect_output(&m.y, "qmatmul")?;
    if !m.a.is_per_tensor() {
        return Err(invalid("qmatmul", "input a must be quantized per tensor"));
    }
    let sa = &inputs[0].ty.shape;
    let mut sb = inputs[1].ty.shape.clone();
    if m.trans_b || m.b.axis.is_some() {
        if sb.len() != 2 {
            return Err(rank_err(1, "2 (transposed or per-column b)", &sb));
        }
        let column_axis = if m.trans_b { 0 } else { 1 };
        if m.b.axis.is_some_and(|a| a != column_axis) {
            return Err(invalid(
                "qmatmul",
                format!(
                    "b scales along axis {:?}, expected the output columns (axis {column_axis})",
                    m.b.axis
                ),
            ));
        }
        if m.trans_b {
            sb.swap(0, 1);
        }
    }
    let out = matmul_shape(sa, &sb)?;
    if let Some(bias) = inputs.get(2) {
        if bias.ty.dtype != DType::I32 {
            return Err(dtype_err(2, "i32", bias.ty.dtype));
        }
        let n = sb[sb.len() - 1];
        if bias.ty.shape != [n] {
            return Err(invalid(
                "qmatmul",
                format!(
                    "bias has shape [{}], expected [{n}]",
                    fmt_shape(&bias.ty.shape)
                ),
            ));
        }
    }
    one(m.y.dtype, out)
}

pub(super) fn qbinary(q: &QBinary, inputs: &[InputFact<'_>]) -> Outputs {
    if !matches!(q.op, BinaryOp::Add | BinaryOp::Mul) {
        return Err(invalid(
            "qbinary",
            format!("{:?} has no quantized form", q.op),
        ));
    }
    for (i, p) in [&q.a, &q.b].into_iter().enumerate() {
        expect_quantized(inputs, i, p, "qbinary")?;
        if !p.is_per_tensor() {
            return Err(invalid(
                "qbinary",
                format!("input {i} must be quantized per tensor"),
            ));
        }
    }
    expect_output(&q.y, "qbinary")?;
    one(
        q.y.dtype,
        broadcast_shapes(&inputs[0].ty.shape, &inputs[1].ty.shape)?,
    )
}

pub(super) fn qconcat(
    axis: usize,
    x: &[QuantParams],
    y: &QuantParams,
    inputs: &[InputFact<'_>],
) -> Outputs {
    for (i, q) in x.iter().enumerate() {
        expect_quantized(inputs, i, q, "qconcat")?;
        if !q.is_per_tensor() {
            return Err(invalid(
                "qconcat",
                format!("input {i} must be quantized per tensor"),
            ));
        }
    }
    expect_output(y, "qconcat")?;
    let mut out = super::shape::concat(axis, inputs)?;
    out[0].dtype = y.dtype;
    Ok(out)
}

pub(super) fn qglobal_average_pool(
    x: &QuantParams,
    y: &QuantParams,
    inputs: &[InputFact<'_>],
) -> Outputs {
    expect_quantized(inputs, 0, x, "qglobal_avg_pool")?;
    expect_output(y, "qglobal_avg_pool")?;
    if !x.is_per_tensor() {
        return Err(invalid(
            "qglobal_avg_pool",
            "input must be quantized per tensor",
        ));
    }
    let s = &inputs[0].ty.shape;
    if s.len() < 3 {
        return Err(rank_err(0, ">= 3", s));
    }
    let mut out = s.clone();
    out[2..].iter_mut().for_each(|d| *d = 1);
    one(y.dtype, out)
}

pub(super) fn qactivation(
    act: &Activation,
    x: &QuantParams,
    y: &QuantParams,
    inputs: &[InputFact<'_>],
) -> Outputs {
    expect_quantized(inputs, 0, x, "qactivation")?;
    expect_output(y, "qactivation")?;
    if !x.is_per_tensor() {
        return Err(invalid("qactivation", "input must be quantized per tensor"));
    }
    super::elementwise::check_activation(act)?;
    one(y.dtype, inputs[0].ty.shape.clone())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{conv, f32t, run, shape_of};
    use super::*;
    use crate::ir::Op;

    fn u8p(scale: f32, zp: i64) -> QuantParams {
        QuantParams::per_tensor(DType::U8, scale, zp)
    }

    #[test]
    fn quantize_dequantize_types() {
        let x = f32t(&[1, 4, 2, 2]);
        let q = run(&Op::Quantize(u8p(0.1, 128)), std::slice::from_ref(&x)).unwrap();
        assert_eq!(q[0], TensorType::new(DType::U8, vec![1, 4, 2, 2]));
        let d = run(&Op::Dequantize(u8p(0.1, 128)), &q).unwrap();
        assert_eq!(d[0], x);
        // The quantized input must have the parameters' dtype.
        assert!(run(&Op::Dequantize(u8p(0.1, 128)), std::slice::from_ref(&x)).is_err());
        // Per-axis lengths must match the axis dimension.
        let per_axis = QuantParams {
            dtype: DType::I8,
            scale: vec![0.5; 3],
            zero_point: vec![0; 3],
            axis: Some(1),
        };
        let e = run(&Op::Quantize(per_axis), &[x]).unwrap_err().to_string();
        assert!(e.contains("3 scales along axis 1"), "{e}");
    }

    #[test]
    fn bad_parameters_are_named() {
        let x = f32t(&[2]);
        for (p, want) in [
            (u8p(0.0, 0), "scale[0] = 0"),
            (u8p(f32::NAN, 0), "scale[0] = NaN"),
            (u8p(-1.0, 0), "scale[0] = -1"),
            (u8p(1.0, 256), "zero_point[0] = 256"),
        ] {
            let e = run(&Op::Quantize(p), std::slice::from_ref(&x))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn qconv_shapes() {
        let op = Op::QConv(QConv {
            conv: conv(3, 2, 1, 1, 1),
            x: u8p(0.1, 3),
            w: QuantParams {
                dtype: DType::I8,
                scale: vec![0.5; 8],
                zero_point: vec![0; 8],
                axis: Some(0),
            },
            y: u8p(0.2, 0),
            act: None,
        });
        let x = TensorType::new(DType::U8, vec![1, 4, 8, 8]);
        let w = TensorType::new(DType::I8, vec![8, 4, 3, 3]);
        let b = TensorType::new(DType::I32, vec![8]);
        assert_eq!(shape_of(&op, &[x.clone(), w.clone(), b]), [1, 8, 4, 4]);
        let b_f32 = f32t(&[8]);
        assert!(run(&op, &[x, w, b_f32]).is_err());
    }
}
