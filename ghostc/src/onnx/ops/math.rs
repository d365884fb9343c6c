//! Elementwise arithmetic, comparisons, unary math, reductions, Where, Cast and CastLike
//! (opset 15: a Cast to the dtype of its second input).
//!
//! Opset notes: ReduceSum takes `axes` as an input from opset 13, ReduceMean/Max/Min from 18
//! (an attribute before); the input form adds `noop_with_empty_axes`. Max and Min are variadic
//! in ONNX; one input is an alias, two a binary op.

use super::{axes, unary_op, Registry};
use crate::ir::{BinaryOp, Op, Reduce, ReduceKind, UnaryOp};
use crate::onnx::error::NodeError;
use crate::onnx::import::{Lowered, NodeCtx};
use crate::onnx::tensor::dtype_from_onnx;

pub(super) fn register(reg: &mut Registry) {
    reg.add("Add", |ctx| binary(ctx, BinaryOp::Add));
    reg.add("Sub", |ctx| binary(ctx, BinaryOp::Sub));
    reg.add("Mul", |ctx| binary(ctx, BinaryOp::Mul));
    reg.add("Div", |ctx| binary(ctx, BinaryOp::Div));
    reg.add("Pow", |ctx| binary(ctx, BinaryOp::Pow));
    reg.add("Equal", |ctx| binary(ctx, BinaryOp::Equal));
    reg.add("Less", |ctx| binary(ctx, BinaryOp::Less));
    reg.add("Greater", |ctx| binary(ctx, BinaryOp::Greater));
    reg.add("Max", |ctx| variadic(ctx, BinaryOp::Max));
    reg.add("Min", |ctx| variadic(ctx, BinaryOp::Min));
    reg.add("Neg", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Neg)));
    reg.add("Sqrt", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Sqrt)));
    reg.add("Reciprocal", |ctx| {
        unary_op(ctx, Op::Unary(UnaryOp::Reciprocal))
    });
    reg.add("Exp", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Exp)));
    reg.add("Abs", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Abs)));
    reg.add("Floor", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Floor)));
    reg.add("Ceil", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Ceil)));
    reg.add("Not", |ctx| unary_op(ctx, Op::Unary(UnaryOp::Not)));
    reg.add("ReduceMean", |ctx| reduce(ctx, ReduceKind::Mean, 18));
    reg.add("ReduceSum", |ctx| reduce(ctx, ReduceKind::Sum, 13));
    reg.add("ReduceMax", |ctx| reduce(ctx, ReduceKind::Max, 18));
    reg.add("ReduceMin", |ctx| reduce(ctx, ReduceKind::Min, 18));
    reg.add("Where", |ctx| {
        ctx.check_inputs(3, 3)?;
        Ok(Lowered::Op {
            op: Op::Where,
            inputs: vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?],
        })
    });
    reg.add("Cast", cast);
    reg.add("CastLike", |ctx| {
        ctx.check_inputs(2, 2)?;
        let to = ctx.input_ty(1)?.dtype;
        Ok(Lowered::Op {
            op: Op::Cast { to },
            inputs: vec![ctx.input(0)?],
        })
    });
}

fn binary(ctx: &NodeCtx<'_>, op: BinaryOp) -> Result<Lowered, NodeError> {
    ctx.check_inputs(2, 2)?;
    Ok(Lowered::Op {
        op: Op::Binary(op),
        inputs: vec![ctx.input(0)?, ctx.input(1)?],
    })
}

fn variadic(ctx: &NodeCtx<'_>, op: BinaryOp) -> Result<Lowered, NodeError> {
    match ctx.n_inputs() {
        1 => Ok(Lowered::Alias(ctx.input(0)?)),
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

fn reduce(
    ctx: &NodeCtx<'_>,
    kind: ReduceKind,
    axes_input_since: i64,
) -> Result<Lowered, NodeError> {
    let rank = ctx.input_ty(0)?.shape.len();
    let keepdims = ctx.attrs.bool_or("keepdims", true)?;
    let given: Option<Vec<i64>> = if ctx.opset >= axes_input_since {
        ctx.check_inputs(1, 2)?;
        if ctx.attrs.has("axes") {
            return Err(NodeError::Invalid(format!(
                "attribute 'axes' is not allowed in opset {}, axes are an input",
                ctx.opset
            )));
        }
        ctx.const_ints(1, "the reduction axes")?
    } else {
        ctx.check_inputs(1, 1)?;
        ctx.attrs.ints("axes")?.map(<[i64]>::to_vec)
    };
    let noop = ctx.opset >= axes_input_since && ctx.attrs.bool_or("noop_with_empty_axes", false)?;
    let axes = match given {
        Some(a) if !a.is_empty() => axes("axis", &a, rank)?,
        _ if noop => return Ok(Lowered::Alias(ctx.input(0)?)),
        _ => (0..rank).collect(),
    };
    Ok(Lowered::Op {
        op: Op::Reduce(Reduce {
            kind,
            axes,
            keepdims,
        }),
        inputs: vec![ctx.input(0)?],
    })
}

fn cast(ctx: &NodeCtx<'_>) -> Result<Lowered, NodeError> {
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
    Ok(Lowered::Op {
        op: Op::Cast { to },
        inputs: vec![ctx.input(0)?],
    })
}
