//! Quantization: QuantizeLinear and DequantizeLinear (the QDQ form `quantize_static` writes),
//! and the QOperator form: QLinearConv, QLinearMatMul (default domain), QLinearAdd,
//! QLinearMul, QLinearGlobalAveragePool, QLinearSigmoid, QLinearConcat and QGemm
//! (`com.microsoft`).
//!
//! Scales and zero points must be constants; they become [`QuantParams`] attributes, checked
//! here with the input names: every scale positive and finite, every zero point within its
//! type, per-axis scale and zero point 1-D, of one length, equal to the axis dimension. All
//! problems of one node are reported together.
//!
//! Opset notes: `axis` exists from opset 13 (per-axis); opset 19 adds `saturate` (float8 only,
//! ignored), opset 21 `block_size` (blocked quantization: unsupported) and QuantizeLinear's
//! `output_dtype` (when there is no zero point). Types: u8 and i8 (u16/i16 from opset 21), and
//! i32 for DequantizeLinear (biases), whose zero point must be 0. float8 and int4 are
//! unsupported.
//!
//! A DequantizeLinear of a constant (a weight or a bias) is legal on its own, and so is one of
//! a graph input; one of a computed value must read what a QuantizeLinear or a quantized op
//! wrote (possibly through data movement such as Reshape or Concat): a DQ of anything else has
//! no Q partner and is rejected.

use super::conv::conv_attrs;
use super::Registry;
use crate::ir::{
    fmt_shape, Activation, BinaryOp, DType, Graph, Op, QBinary, QBinaryForm, QConv, QMatMul,
    QuantParams, ValueId,
};
use crate::onnx::error::{shown, NodeError};
use crate::onnx::import::{ImportedNode, NodeCtx};
use crate::onnx::tensor::dtype_from_onnx;

pub(super) fn register(reg: &mut Registry) {
    reg.add("QuantizeLinear", quantize);
    reg.add("DequantizeLinear", dequantize);
    reg.add("QLinearConv", qlinear_conv);
    reg.add("QLinearMatMul", qlinear_matmul);
}

/// The `com.microsoft` contrib ops ONNX Runtime's QOperator export writes.
pub(super) fn register_microsoft(reg: &mut Registry) {
    reg.add("QLinearAdd", |ctx| qlinear_binary(ctx, BinaryOp::Add));
    reg.add("QLinearMul", |ctx| qlinear_binary(ctx, BinaryOp::Mul));
    reg.add("QLinearGlobalAveragePool", qlinear_global_average_pool);
    reg.add("QLinearSigmoid", qlinear_sigmoid);
    reg.add("QLinearConcat", qlinear_concat);
    reg.add("QGemm", qgemm);
}

/// Quantized element types ghostc computes with.
fn supported_dtype(dtype: DType, allow_i32: bool) -> bool {
    matches!(dtype, DType::U8 | DType::I8 | DType::U16 | DType::I16)
        || (allow_i32 && dtype == DType::I32)
}

/// Where the parameters of one quantized tensor are: the data input (for its shape), the
/// scale and optional zero-point inputs, the per-axis `axis` (None when per-axis is not
/// allowed), and the dtype to assume when there is no zero point.
struct Spec {
    data: Option<usize>,
    scale: usize,
    zero_point: Option<usize>,
    axis: Option<i64>,
    default_dtype: DType,
    what: &'static str,
}

/// Reads and checks the parameters of `spec`, appending every problem found to `problems`.
/// Returns `None` when there were problems.
fn params(
    ctx: &NodeCtx<'_>,
    spec: &Spec,
    problems: &mut Vec<String>,
) -> Result<Option<QuantParams>, NodeError> {
    let scale_t = ctx
        .const_input(spec.scale, "a quantization scale")?
        .ok_or_else(|| NodeError::BadInput {
            index: spec.scale,
            value: ctx.input_name(spec.scale),
            detail: format!("the {} scale is missing", spec.what),
        })?;
    let scale_name = ctx.input_name(spec.scale);
    if !scale_t.dtype().is_float() {
        problems.push(format!(
            "{} scale '{scale_name}' has type {}, expected a float type",
            spec.what,
            scale_t.dtype()
        ));
        return Ok(None);
    }
    let zp_t = match spec.zero_point {
        Some(i) => ctx.const_input(i, "a quantization zero point")?,
        None => None,
    };
    let data_ty = spec.data.map(|i| ctx.input_ty(i)).transpose()?;
    let dtype = match (zp_t, data_ty) {
        (Some(z), _) => z.dtype(),
        (None, Some(d)) if d.dtype.is_int() => d.dtype,
        _ => spec.default_dtype,
    };
    let n_before = problems.len();
    if let (Some(z), Some(d)) = (zp_t, data_ty) {
        if d.dtype.is_int() && z.dtype() != d.dtype {
            problems.push(format!(
                "{} zero point '{}' has type {}, but the quantized tensor '{}' is {}",
                spec.what,
                ctx.input_name(spec.zero_point.unwrap_or(0)),
                z.dtype(),
                ctx.input_name(spec.data.unwrap_or(0)),
                d.dtype
            ));
        }
    }
    let scale = scale_t.to_f32_vec();
    let zero_point = match zp_t {
        Some(z) => z.to_i64_vec(),
        None => vec![0; scale.len()],
    };
    let scale_shape = scale_t.shape();
    let zp_shape = zp_t.map_or(scale_shape, |z| z.shape());
    let per_tensor = scale.len() == 1 && scale_shape.len() <= 1;
    let axis = if per_tensor {
        if zero_point.len() != 1 {
            problems.push(format!(
                "{} scale '{scale_name}' is per-tensor but zero point '{}' has shape [{}] (mixed per-tensor and per-axis parameters)",
                spec.what,
                ctx.input_name(spec.zero_point.unwrap_or(0)),
                fmt_shape(zp_shape)
            ));
        }
        None
    } else if scale_shape.len() != 1 {
        problems.push(format!(
            "{} scale '{scale_name}' has shape [{}]; per-axis scales must be 1-D",
            spec.what,
            fmt_shape(scale_shape)
        ));
        None
    } else {
        if zp_shape != scale_shape {
            problems.push(format!(
                "{} scale '{scale_name}' has shape [{}] but zero point '{}' has shape [{}] (mixed-axis parameters)",
                spec.what,
                fmt_shape(scale_shape),
                ctx.input_name(spec.zero_point.unwrap_or(0)),
                fmt_shape(zp_shape)
            ));
        }
        match (spec.axis, data_ty) {
            (Some(a), Some(d)) => {
                let rank = d.shape.len() as i64;
                let resolved = if a < 0 { a + rank } else { a };
                if !(0..rank).contains(&resolved) {
                    problems.push(format!("axis {a} is out of range for rank {rank}"));
                    None
                } else {
                    let axis = resolved as usize;
                    if d.shape[axis] != scale.len() {
                        problems.push(format!(
                            "{} scale '{scale_name}' has {} values, but axis {a} of '{}' [{}] has {}",
                            spec.what,
                            scale.len(),
                            ctx.input_name(spec.data.unwrap_or(0)),
                            fmt_shape(&d.shape),
                            d.shape[axis]
                        ));
                    }
                    Some(axis)
                }
            }
            _ => {
                problems.push(format!(
                    "{} scale '{scale_name}' has {} values; only per-tensor parameters are allowed here",
                    spec.what,
                    scale.len()
                ));
                None
            }
        }
    };
    let bad_scales: Vec<String> = scale
        .iter()
        .enumerate()
        .filter(|(_, s)| !(s.is_finite() && **s > 0.0))
        .map(|(i, s)| format!("[{i}] = {s}"))
        .collect();
    if !bad_scales.is_empty() {
        problems.push(format!(
            "{} scale '{scale_name}' must be positive and finite: {}",
            spec.what,
            list(&bad_scales)
        ));
    }
    match QuantParams::range(dtype) {
        Some((lo, hi)) if supported_dtype(dtype, true) => {
            let bad: Vec<String> = zero_point
                .iter()
                .enumerate()
                .filter(|(_, z)| !(lo..=hi).contains(*z))
                .map(|(i, z)| format!("[{i}] = {z}"))
                .collect();
            if !bad.is_empty() {
                problems.push(format!(
                    "{} zero point '{}' is out of range for {dtype} ({lo}..={hi}): {}",
                    spec.what,
                    ctx.input_name(spec.zero_point.unwrap_or(0)),
                    list(&bad)
                ));
            }
            if dtype == DType::I32 && zero_point.iter().any(|&z| z != 0) {
                problems.push(format!(
                    "{} zero point '{}' of an i32 tensor must be 0, got {:?}",
                    spec.what,
                    ctx.input_name(spec.zero_point.unwrap_or(0)),
                    &zero_point[..zero_point.len().min(8)]
                ));
            }
        }
        _ => {
            return Err(NodeError::Unsupported(format!(
                "{} quantized as {dtype} (supported: u8, i8, u16, i16; i32 for dequantized biases)",
                spec.what
            )))
        }
    }
    if problems.len() > n_before {
        return Ok(None);
    }
    Ok(Some(QuantParams {
        dtype,
        scale,
        zero_point,
        axis,
    }))
}

/// At most 8 items, then how many more.
fn list(items: &[String]) -> String {
    let mut s = items.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 8 {
        s.push_str(&format!(" and {} more", items.len() - 8));
    }
    s
}

/// All the node's problems as one error.
fn finish(problems: Vec<String>) -> Result<(), NodeError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(NodeError::Invalid(problems.join("; ")))
    }
}

fn no_blocks(ctx: &NodeCtx<'_>) -> Result<(), NodeError> {
    match ctx.attrs.int_or("block_size", 0)? {
        0 => Ok(()),
        b => Err(NodeError::Unsupported(format!(
            "blocked quantization (block_size = {b})"
        ))),
    }
}

fn quantize(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 3)?;
    no_blocks(ctx)?;
    let default_dtype = match ctx.attrs.int("output_dtype")? {
        None | Some(0) => DType::U8,
        Some(code) => {
            let code = i32::try_from(code).map_err(|_| NodeError::BadAttribute {
                attr: "output_dtype".into(),
                detail: format!("{code} is not a data type"),
            })?;
            dtype_from_onnx(code)
                .map_err(|e| NodeError::Unsupported(format!("QuantizeLinear to {e}")))?
        }
    };
    if !ctx.input_ty(0)?.dtype.is_float() {
        return Err(NodeError::BadInput {
            index: 0,
            value: ctx.input_name(0),
            detail: format!("must be a float tensor, got {}", ctx.input_ty(0)?.dtype),
        });
    }
    let spec = Spec {
        data: Some(0),
        scale: 1,
        zero_point: ctx.opt_input(2).map(|_| 2),
        axis: Some(ctx.attrs.int_or("axis", 1)?),
        default_dtype,
        what: "output",
    };
    let mut problems = Vec::new();
    let q = params(ctx, &spec, &mut problems)?;
    if let (Some(q), true) = (
        &q,
        ctx.attrs.has("output_dtype") && spec.zero_point.is_some(),
    ) {
        if q.dtype != default_dtype && ctx.attrs.int("output_dtype")? != Some(0) {
            problems.push(format!(
                "output_dtype {default_dtype} disagrees with the zero point's type {}",
                q.dtype
            ));
        }
    }
    if let Some(q) = &q {
        if q.dtype == DType::I32 {
            return Err(NodeError::Unsupported("QuantizeLinear to i32".into()));
        }
    }
    finish(problems)?;
    Ok(ImportedNode::Op {
        op: Op::Quantize(q.expect("no problems means parameters")),
        inputs: vec![ctx.input(0)?],
    })
}

fn dequantize(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 3)?;
    no_blocks(ctx)?;
    let x_ty = ctx.input_ty(0)?;
    if !supported_dtype(x_ty.dtype, true) {
        return Err(NodeError::Unsupported(format!(
            "DequantizeLinear of a {} tensor",
            x_ty.dtype
        )));
    }
    let spec = Spec {
        data: Some(0),
        scale: 1,
        zero_point: ctx.opt_input(2).map(|_| 2),
        axis: Some(ctx.attrs.int_or("axis", 1)?),
        default_dtype: x_ty.dtype,
        what: "input",
    };
    let mut problems = Vec::new();
    let q = params(ctx, &spec, &mut problems)?;
    let x = ctx.input(0)?;
    if let Some(detail) = missing_q_partner(ctx.graph, x) {
        problems.push(format!("input '{}' {detail}", ctx.input_name(0)));
    }
    finish(problems)?;
    Ok(ImportedNode::Op {
        op: Op::Dequantize(q.expect("no problems means parameters")),
        inputs: vec![x],
    })
}

/// Why `v` (read by a DequantizeLinear) has no QuantizeLinear partner, or `None` when it has
/// one, is a constant or a graph input.
fn missing_q_partner(g: &Graph, v: ValueId) -> Option<String> {
    let mut stack = vec![v];
    let mut seen = std::collections::HashSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        let Some(n) = g.producer(v) else {
            continue; // a constant or a graph input
        };
        let node = g.node(n);
        match &node.op {
            op if op.is_quantized() && !matches!(op, Op::Dequantize(_)) => {}
            Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Identity
            | Op::Slice(_)
            | Op::Split { .. }
            | Op::Concat { .. }
            | Op::Pad(_)
            | Op::Expand { .. }
            | Op::Gather { .. } => stack.extend(node.inputs.iter().take(1).copied().chain(
                matches!(node.op, Op::Concat { .. })
                    .then(|| node.inputs.iter().skip(1).copied())
                    .into_iter()
                    .flatten(),
            )),
            op => {
                return Some(format!(
                    "is computed by node '{}' ({}), not by a QuantizeLinear or a quantized op: a DequantizeLinear of a computed value needs a QuantizeLinear partner (only constants and graph inputs may be dequantized alone)",
                    shown(&node.name),
                    op.name()
                ))
            }
        }
    }
    None
}

/// Per-tensor parameters of the tensor at `data` from inputs `scale`, `zero_point`.
fn tensor_spec(
    data: Option<usize>,
    scale: usize,
    zp: usize,
    default_dtype: DType,
    what: &'static str,
) -> Spec {
    Spec {
        data,
        scale,
        zero_point: Some(zp),
        axis: None,
        default_dtype,
        what,
    }
}

fn qlinear_conv(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(8, 9)?;
    let conv = conv_attrs(ctx, 3)?;
    let x_dtype = ctx.input_ty(0)?.dtype;
    let mut problems = Vec::new();
    let x = params(
        ctx,
        &tensor_spec(Some(0), 1, 2, x_dtype, "x"),
        &mut problems,
    )?;
    let w_spec = Spec {
        axis: Some(0),
        ..tensor_spec(Some(3), 4, 5, ctx.input_ty(3)?.dtype, "w")
    };
    let w = params(ctx, &w_spec, &mut problems)?;
    let y = params(ctx, &tensor_spec(None, 6, 7, DType::U8, "y"), &mut problems)?;
    finish(problems)?;
    let mut inputs = vec![ctx.input(0)?, ctx.input(3)?];
    if let Some(b) = ctx.opt_input(8) {
        inputs.push(b);
    }
    Ok(ImportedNode::Op {
        op: Op::QConv(QConv {
            conv,
            x: x.expect("checked"),
            w: w.expect("checked"),
            y: y.expect("checked"),
            act: None,
        }),
        inputs,
    })
}

fn qlinear_matmul(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(8, 8)?;
    qmatmul(ctx, false, 6, None)
}

/// com.microsoft QGemm(A, a_scale, a_zp, B, b_scale, b_zp, C?, y_scale?, y_zp?) with alpha 1,
/// no transA, and a quantized output (a float output is unsupported).
fn qgemm(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(6, 9)?;
    if ctx.attrs.int_or("transA", 0)? != 0 || ctx.attrs.float_or("alpha", 1.0)? != 1.0 {
        return Err(NodeError::Unsupported(
            "QGemm with transA or alpha != 1".into(),
        ));
    }
    if ctx.opt_input(7).is_none() {
        return Err(NodeError::Unsupported("QGemm with a float output".into()));
    }
    let trans_b = ctx.attrs.bool_or("transB", false)?;
    qmatmul(ctx, trans_b, 7, ctx.opt_input(6))
}

/// A QLinearMatMul-like node: a (0, 1, 2), b (3, 4, 5), y scale/zp at `y`, `y + 1`.
fn qmatmul(
    ctx: &NodeCtx<'_>,
    trans_b: bool,
    y: usize,
    bias: Option<ValueId>,
) -> Result<ImportedNode, NodeError> {
    let mut problems = Vec::new();
    let a_dtype = ctx.input_ty(0)?.dtype;
    let a = params(
        ctx,
        &tensor_spec(Some(0), 1, 2, a_dtype, "a"),
        &mut problems,
    )?;
    let b_rank = ctx.input_ty(3)?.shape.len() as i64;
    let b_spec = Spec {
        axis: Some(if trans_b { 0 } else { b_rank - 1 }),
        ..tensor_spec(Some(3), 4, 5, ctx.input_ty(3)?.dtype, "b")
    };
    let b = params(ctx, &b_spec, &mut problems)?;
    let y_spec = Spec {
        zero_point: ctx.opt_input(y + 1).map(|_| y + 1),
        ..tensor_spec(None, y, y + 1, a_dtype, "y")
    };
    let y = params(ctx, &y_spec, &mut problems)?;
    finish(problems)?;
    let mut inputs = vec![ctx.input(0)?, ctx.input(3)?];
    inputs.extend(bias);
    Ok(ImportedNode::Op {
        op: Op::QMatMul(QMatMul {
            a: a.expect("checked"),
            b: b.expect("checked"),
            y: y.expect("checked"),
            trans_b,
        }),
        inputs,
    })
}

fn qlinear_binary(ctx: &NodeCtx<'_>, op: BinaryOp) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(7, 8)?;
    let mut problems = Vec::new();
    let a_dtype = ctx.input_ty(0)?.dtype;
    let a = params(
        ctx,
        &tensor_spec(Some(0), 1, 2, a_dtype, "A"),
        &mut problems,
    )?;
    let b = params(
        ctx,
        &tensor_spec(Some(3), 4, 5, a_dtype, "B"),
        &mut problems,
    )?;
    let y_spec = Spec {
        zero_point: ctx.opt_input(7).map(|_| 7),
        ..tensor_spec(None, 6, 7, a_dtype, "C")
    };
    let y = params(ctx, &y_spec, &mut problems)?;
    finish(problems)?;
    Ok(ImportedNode::Op {
        op: Op::QBinary(QBinary {
            op,
            a: a.expect("checked"),
            b: b.expect("checked"),
            y: y.expect("checked"),
            form: QBinaryForm::Ratio,
        }),
        inputs: vec![ctx.input(0)?, ctx.input(3)?],
    })
}

fn qlinear_global_average_pool(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(5, 5)?;
    if ctx.attrs.int_or("channels_last", 0)? != 0 {
        return Err(NodeError::Unsupported("channels_last = 1".into()));
    }
    let mut problems = Vec::new();
    let dtype = ctx.input_ty(0)?.dtype;
    let x = params(ctx, &tensor_spec(Some(0), 1, 2, dtype, "x"), &mut problems)?;
    let y = params(ctx, &tensor_spec(None, 3, 4, dtype, "y"), &mut problems)?;
    finish(problems)?;
    Ok(ImportedNode::Op {
        op: Op::QGlobalAveragePool {
            x: x.expect("checked"),
            y: y.expect("checked"),
        },
        inputs: vec![ctx.input(0)?],
    })
}

fn qlinear_sigmoid(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(4, 5)?;
    let mut problems = Vec::new();
    let dtype = ctx.input_ty(0)?.dtype;
    let x_spec = Spec {
        zero_point: ctx.opt_input(2).map(|_| 2),
        ..tensor_spec(Some(0), 1, 2, dtype, "X")
    };
    let x = params(ctx, &x_spec, &mut problems)?;
    let y_spec = Spec {
        zero_point: ctx.opt_input(4).map(|_| 4),
        ..tensor_spec(None, 3, 4, dtype, "Y")
    };
    let y = params(ctx, &y_spec, &mut problems)?;
    finish(problems)?;
    Ok(ImportedNode::Op {
        op: Op::QActivation {
            act: Activation::Sigmoid,
            x: x.expect("checked"),
            y: y.expect("checked"),
        },
        inputs: vec![ctx.input(0)?],
    })
}

/// QLinearConcat(Y_scale, Y_zp, X0, X0_scale, X0_zp, ...): a QConcat (an input that already
/// has the output's parameters is copied). Not a plain Concat even when every input has them:
/// code generation concatenates int8 tensors only as a QConcat, which knows the zero point the
/// padding lanes take.
fn qlinear_concat(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    let n = ctx.n_inputs();
    if n < 5 || !(n - 2).is_multiple_of(3) {
        return Err(NodeError::InputCount {
            expected: "2 + 3 per input".into(),
            actual: n,
        });
    }
    let rank = ctx.input_ty(2)?.shape.len();
    let axis = ctx.attrs.int("axis")?.ok_or(NodeError::MissingAttribute {
        attr: "axis".into(),
    })?;
    let axis = super::axis("axis", axis, rank)?;
    let mut problems = Vec::new();
    let dtype = ctx.input_ty(2)?.dtype;
    let y = params(ctx, &tensor_spec(None, 0, 1, dtype, "Y"), &mut problems)?;
    let mut inputs = Vec::new();
    let mut x = Vec::new();
    for k in 0..(n - 2) / 3 {
        let i = 2 + 3 * k;
        x.push(params(
            ctx,
            &tensor_spec(Some(i), i + 1, i + 2, dtype, "X"),
            &mut problems,
        )?);
        inputs.push(ctx.input(i)?);
    }
    finish(problems)?;
    let y = y.expect("checked");
    let x: Vec<QuantParams> = x.into_iter().map(|q| q.expect("checked")).collect();
    Ok(ImportedNode::Op {
        op: Op::QConcat { axis, x, y },
        inputs,
    })
}
