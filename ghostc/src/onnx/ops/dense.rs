//! Dense layers: Gemm and MatMul.

use super::Registry;
use crate::ir::{Gemm, Op};
use crate::onnx::error::NodeError;
use crate::onnx::import::{ImportedNode, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("Gemm", gemm);
    reg.add("MatMul", |ctx| {
        ctx.check_inputs(2, 2)?;
        Ok(ImportedNode::Op {
            op: Op::MatMul,
            inputs: vec![ctx.input(0)?, ctx.input(1)?],
        })
    });
}

fn gemm(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 3)?;
    let op = Gemm {
        alpha: ctx.attrs.float_or("alpha", 1.0)?,
        beta: ctx.attrs.float_or("beta", 1.0)?,
        trans_a: ctx.attrs.bool_or("transA", false)?,
        trans_b: ctx.attrs.bool_or("transB", false)?,
    };
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    if let Some(c) = ctx.opt_input(2) {
        inputs.push(c);
    }
    Ok(ImportedNode::Op {
        op: Op::Gemm(op),
        inputs,
    })
}
