//! Activations: Relu, Sigmoid, Tanh, LeakyRelu, HardSigmoid, HardSwish, Clip.
//!
//! Opset notes: Clip takes `min`/`max` as attributes before opset 11 and as optional constant
//! inputs from 11 on (absent means unbounded).

use super::{unary_op, Registry};
use crate::ir::{Activation, Op};
use crate::onnx::error::NodeError;
use crate::onnx::import::{Lowered, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("Relu", |ctx| {
        unary_op(ctx, Op::Activation(Activation::Relu))
    });
    reg.add("Sigmoid", |ctx| {
        unary_op(ctx, Op::Activation(Activation::Sigmoid))
    });
    reg.add("Tanh", |ctx| {
        unary_op(ctx, Op::Activation(Activation::Tanh))
    });
    reg.add("HardSwish", |ctx| {
        unary_op(ctx, Op::Activation(Activation::HardSwish))
    });
    reg.add("LeakyRelu", |ctx| {
        let alpha = ctx.attrs.float_or("alpha", 0.01)?;
        unary_op(ctx, Op::Activation(Activation::LeakyRelu { alpha }))
    });
    reg.add("HardSigmoid", |ctx| {
        let alpha = ctx.attrs.float_or("alpha", 0.2)?;
        let beta = ctx.attrs.float_or("beta", 0.5)?;
        unary_op(ctx, Op::Activation(Activation::HardSigmoid { alpha, beta }))
    });
    reg.add("Clip", clip);
}

fn clip(ctx: &NodeCtx<'_>) -> Result<Lowered, NodeError> {
    let (min, max) = if ctx.opset < 11 {
        ctx.check_inputs(1, 1)?;
        (
            ctx.attrs.float_or("min", f32::MIN)?,
            ctx.attrs.float_or("max", f32::MAX)?,
        )
    } else {
        ctx.check_inputs(1, 3)?;
        (
            ctx.const_scalar_f32(1, "the Clip minimum")?
                .unwrap_or(f32::NEG_INFINITY),
            ctx.const_scalar_f32(2, "the Clip maximum")?
                .unwrap_or(f32::INFINITY),
        )
    };
    if min.is_nan() || max.is_nan() {
        return Err(NodeError::Invalid(format!(
            "Clip bounds [{min}, {max}] contain NaN"
        )));
    }
    if !ctx.input_ty(0)?.dtype.is_float() {
        return Err(NodeError::Unsupported("Clip on integer tensors".into()));
    }
    Ok(Lowered::Op {
        op: Op::Activation(Activation::Clip { min, max }),
        inputs: vec![ctx.input(0)?],
    })
}
