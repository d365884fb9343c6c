//! Softmax.
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
