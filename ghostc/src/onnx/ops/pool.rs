//! Pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool (a ReduceMax
//! over the spatial axes) and ReduceMean/Sum/Max/Min.
//!
//! Opset notes: pooling's `ceil_mode` is resolved into extra bottom/right padding (windows that
//! would start in the end padding are dropped, as ONNX and PyTorch do), so `Pool::pads` already
//! gives the output size with floor arithmetic. MaxPool's dilations exist from opset 10 and
//! AveragePool's from 19. ReduceSum takes `axes` as an input from opset 13, ReduceMean/Max/Min
//! from 18 (an attribute before); the input form adds `noop_with_empty_axes`.

use super::{axes, pair, resolve_pads, spatial_input, unary_op, Registry};
use crate::ir::{Op, Pool, PoolKind, Reduce, ReduceKind};
use crate::onnx::attr::to_usizes;
use crate::onnx::error::NodeError;
use crate::onnx::import::{ImportedNode, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("MaxPool", |ctx| pool(ctx, PoolKind::Max));
    reg.add("AveragePool", |ctx| pool(ctx, PoolKind::Avg));
    reg.add("GlobalAveragePool", |ctx| {
        unary_op(ctx, Op::GlobalAveragePool)
    });
    reg.add("GlobalMaxPool", |ctx| {
        let rank = ctx.input_ty(0)?.shape.len();
        if rank < 3 {
            return Err(NodeError::Rank {
                what: "input",
                value: ctx.input_name(0),
                actual: rank,
                expected: ">= 3".into(),
            });
        }
        unary_op(
            ctx,
            Op::Reduce(Reduce {
                kind: ReduceKind::Max,
                axes: (2..rank).collect(),
                keepdims: true,
            }),
        )
    });
    reg.add("ReduceMean", |ctx| reduce(ctx, ReduceKind::Mean, 18));
    reg.add("ReduceSum", |ctx| reduce(ctx, ReduceKind::Sum, 13));
    reg.add("ReduceMax", |ctx| reduce(ctx, ReduceKind::Max, 18));
    reg.add("ReduceMin", |ctx| reduce(ctx, ReduceKind::Min, 18));
}

fn pool(ctx: &NodeCtx<'_>, kind: PoolKind) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    if kind == PoolKind::Max && ctx.has_output(1) {
        return Err(NodeError::Unsupported("MaxPool's Indices output".into()));
    }
    let hw = spatial_input(ctx, "pooling")?;
    let kernel = match ctx.attrs.ints("kernel_shape")? {
        None => {
            return Err(NodeError::MissingAttribute {
                attr: "kernel_shape".into(),
            })
        }
        Some(k) => match to_usizes("kernel_shape", k)?[..] {
            [a, b] if a > 0 && b > 0 => [a, b],
            _ => {
                return Err(NodeError::BadAttribute {
                    attr: "kernel_shape".into(),
                    detail: format!("{k:?} is not two positive values"),
                })
            }
        },
    };
    let strides = pair(ctx, "strides")?;
    let dilations = pair(ctx, "dilations")?;
    let ceil_mode = ctx.attrs.bool_or("ceil_mode", false)?;
    let count_include_pad = ctx.attrs.bool_or("count_include_pad", false)?;
    let mut pads = resolve_pads(ctx, hw, kernel, strides, dilations)?;
    if ceil_mode {
        for d in 0..2 {
            let overflow = || NodeError::Invalid("pooling arithmetic overflows".into());
            let span = (kernel[d] - 1)
                .checked_mul(dilations[d])
                .and_then(|v| v.checked_add(1))
                .ok_or_else(overflow)?;
            let padded = hw[d]
                .checked_add(pads[d])
                .and_then(|v| v.checked_add(pads[d + 2]))
                .ok_or_else(overflow)?;
            if padded < span {
                return Err(NodeError::Invalid(format!(
                    "pooling window {span} exceeds padded input {padded}"
                )));
            }
            let mut out = (padded - span).div_ceil(strides[d]) + 1;
            // The last window must start inside the input or the begin padding.
            if out > 1 && (out - 1) * strides[d] >= hw[d] + pads[d] {
                out -= 1;
            }
            let needed = (out - 1) * strides[d] + span;
            pads[d + 2] += needed.saturating_sub(padded);
        }
    }
    Ok(ImportedNode::Op {
        op: Op::Pool(Pool {
            kind,
            kernel,
            strides,
            pads,
            dilations,
            ceil_mode,
            count_include_pad,
        }),
        inputs: vec![ctx.input(0)?],
    })
}

fn reduce(
    ctx: &NodeCtx<'_>,
    kind: ReduceKind,
    axes_input_since: i64,
) -> Result<ImportedNode, NodeError> {
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
        _ if noop => return Ok(ImportedNode::Alias(ctx.input(0)?)),
        _ => (0..rank).collect(),
    };
    Ok(ImportedNode::Op {
        op: Op::Reduce(Reduce {
            kind,
            axes,
            keepdims,
        }),
        inputs: vec![ctx.input(0)?],
    })
}
