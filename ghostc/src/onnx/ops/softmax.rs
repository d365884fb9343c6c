//! Softmax and LayerNormalization (ops over one or more trailing axes).
//!
//! LayerNormalization (opset 17) is imported with its first output only; its optional Mean and
//! InvStdDev outputs (training) are reported unsupported when used. `stash_type` is ignored:
//! the statistics are computed at full precision either way.
//!
//! Opset notes: Softmax before opset 13 coerces its input to 2-D at `axis`; that equals a
//! softmax over `axis` only when every later dim is 1 (or `axis` is the last one), else the node
//! is reported unsupported.

use super::{axis, Registry};
use crate::ir::Op;
use crate::onnx::error::NodeError;
use crate::onnx::import::{ImportedNode, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("Softmax", softmax);
    reg.add("LayerNormalization", layer_norm);
}

fn layer_norm(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 3)?;
    if ctx.has_output(1) || ctx.has_output(2) {
        return Err(NodeError::Unsupported(
            "LayerNormalization's Mean and InvStdDev outputs (training only)".into(),
        ));
    }
    let rank = ctx.input_ty(0)?.shape.len();
    let a = axis("axis", ctx.attrs.int_or("axis", -1)?, rank)?;
    let epsilon = ctx.attrs.float_or("epsilon", 1e-5)?;
    if !(epsilon.is_finite() && epsilon >= 0.0) {
        return Err(NodeError::Invalid(format!(
            "LayerNormalization epsilon {epsilon} must be finite and not negative"
        )));
    }
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    inputs.extend(ctx.opt_input(2));
    Ok(ImportedNode::Op {
        op: Op::LayerNorm { axis: a, epsilon },
        inputs,
    })
}

fn softmax(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    let shape = &ctx.input_ty(0)?.shape;
    let default = if ctx.opset < 13 { 1 } else { -1 };
    let a = axis("axis", ctx.attrs.int_or("axis", default)?, shape.len())?;
    if ctx.opset < 13 && shape[a + 1..].iter().any(|&d| d != 1) {
        return Err(NodeError::Unsupported(format!(
            "Softmax before opset 13 flattens the input to 2-D at axis {a}; ghostc supports it only when the dims after the axis are all 1 (input shape {shape:?})"
        )));
    }
    Ok(ImportedNode::Op {
        op: Op::Softmax { axis: a },
        inputs: vec![ctx.input(0)?],
    })
}
