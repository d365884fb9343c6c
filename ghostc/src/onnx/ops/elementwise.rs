//! Elementwise ops: the activations (Relu, Sigmoid, Tanh, LeakyRelu, HardSigmoid, HardSwish,
//! Clip, Gelu), arithmetic, comparisons, unary math, Where, Cast and CastLike (opset 15: a Cast to the
//! dtype of its second input).
//!
//! Opset notes: Clip takes `min`/`max` as attributes before opset 11 and as optional constant
//! inputs from 11 on (absent means unbounded). Max and Min are variadic in ONNX; one input is an
//! alias, two a binary op.

use super::{unary_op, Registry};
use crate::ir::{Activation, BinaryOp, Op, UnaryOp};
use crate::onnx::error::NodeError;
use crate::onnx::import::{ImportedNode, NodeCtx};
use crate::onnx::tensor::dtype_from_onnx;

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
    reg.add("Gelu", |ctx| {
        match ctx.attrs.string_or("approximate", "none")?.as_str() {
            "none" => unary_op(ctx, Op::Activation(Activation::Gelu)),
            other => Err(NodeError::Unsupported(format!(
                "Gelu with approximate=\"{other}\" (only the exact form, \"none\")"
            ))),
        }
    });
    reg.add("Clip", clip);
    reg.add("Add", |ctx| binary(ctx, BinaryOp::Add));
    reg.add("Sub", |ctx| binary(ctx, BinaryOp::Sub));
    reg.add("Mul", |ctx| binary(ctx, BinaryOp::Mul));
    reg.add("Div", |ctx| binary(ctx, BinaryOp::Div));
    reg.add("Pow", |ctx| binary(ctx, BinaryOp::Pow));
    reg.add("Equal", |ctx| binary(ctx, BinaryOp::Equal));
    reg.add("Less", |ctx| binary(ctx, BinaryOp::Less));
    reg.add("Greater", |ctx| binary(ctx, BinaryOp::Greater));
    reg.add("PRelu", |ctx| binary(ctx, BinaryOp::PRelu));
    reg.add("Max", |ctx| variadic(ctx, BinaryOp::Max));
    reg.add("Min", |ctx| variadic(ctx, BinaryOp::Min));
    reg.add("Neg", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Neg)));
    reg.add("Sqrt", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Sqrt)));
    reg.add("Reciprocal", |ctx| {
        unary_op(ctx, Op::Unary(UnaryOp::Reciprocal))
    });
    reg.add("Exp", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Exp)));
    reg.add("Erf", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Erf)));
    reg.add("Softplus", |ctx| {
        unary_op(ctx, Op::Unary(UnaryOp::Softplus))
    });
    reg.add("Mish", |ctx| {
        unary_op(ctx, Op::Activation(Activation::Mish))
    });
    reg.add("Abs", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Abs)));
    reg.add("Floor", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Floor)));
    reg.add("Ceil", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Ceil)));
    reg.add("Not", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Not)));
    reg.add("Where", |ctx| {
        ctx.check_inputs(3, 3)?;
        Ok(ImportedNode::Op {
            op: Op::Where,
            inputs: vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?],
        })
    });
    reg.add("Cast", cast);
    reg.add("CastLike", |ctx| {
        ctx.check_inputs(2, 2)?;
        let to = ctx.input_ty(1)?.dtype;
        Ok(ImportedNode::Op {
            op: Op::Cast { to },
            inputs: vec![ctx.input(0)?],
        })
    });
}

fn clip(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
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
    Ok(ImportedNode::Op {
        op: Op::Activation(Activation::Clamp { lo: min, hi: max }),
        inputs: vec![ctx.input(0)?],
    })
}

fn binary(ctx: &NodeCtx<'_>, op: BinaryOp) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 2)?;
    Ok(ImportedNode::Op {
        op: Op::Binary(op),
        inputs: vec![ctx.input(0)?, ctx.input(1)?],
    })
}

fn variadic(ctx: &NodeCtx<'_>, op: BinaryOp) -> Result<ImportedNode, NodeError> {
    match ctx.n_inputs() {
        1 => Ok(ImportedNode::Alias(ctx.input(0)?)),
        2 => binary(ctx, op),
        0 => Err(NodeError::InputCount {
            expected: "1 or 2".into(),
            actual: 0,
        }),
        n => Err(NodeError::Unsupported(format!(
            "{} with {n} inputs (at most 2 are supported)",
            ctx.op_type
        ))),
    }
}

fn cast(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    let to = ctx
        .attrs
        .int("to")?
        .ok_or(NodeError::MissingAttribute { attr: "to".into() })?;
    let code = i32::try_from(to).map_err(|_| NodeError::BadAttribute {
        attr: "to".into(),
        detail: format!("{to} is not a data type"),
    })?;
    let to = dtype_from_onnx(code).map_err(|e| NodeError::Unsupported(format!("Cast to {e}")))?;
    Ok(ImportedNode::Op {
        op: Op::Cast { to },
        inputs: vec![ctx.input(0)?],
    })
}
