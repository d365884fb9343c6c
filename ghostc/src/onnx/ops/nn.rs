//! Convolution, normalization, pooling, dense layers and Softmax.
//!
//! Opset notes: `auto_pad` (NOTSET, VALID, SAME_UPPER, SAME_LOWER) is resolved here to explicit
//! pads from the input size; pooling's `ceil_mode` is resolved into extra bottom/right padding
//! (windows that would start in the end padding are dropped, as ONNX and PyTorch do), so
//! `Pool::pads` already gives the output size with floor arithmetic. MaxPool's dilations exist
//! from opset 10 and AveragePool's from 19. BatchNormalization's training outputs (opset < 14)
//! and `training_mode = 1` (opset 14+) are not supported: outputs other than Y stay
//! unavailable. Softmax before opset 13 coerces its input to 2-D at `axis`; that equals a
//! softmax over `axis` only when every later dim is 1 (or `axis` is the last one), else the node
//! is reported unsupported.

use super::{axis, unary_op, Registry};
use crate::ir::{BatchNorm, Conv, Gemm, Op, Pool, PoolKind, Reduce, ReduceKind};
use crate::onnx::attr::to_usizes;
use crate::onnx::error::NodeError;
use crate::onnx::import::{Lowered, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("Conv", conv);
    reg.add("BatchNormalization", batch_norm);
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
    reg.add("Gemm", gemm);
    reg.add("MatMul", |ctx| {
        ctx.check_inputs(2, 2)?;
        Ok(Lowered::Op {
            op: Op::MatMul,
            inputs: vec![ctx.input(0)?, ctx.input(1)?],
        })
    });
    reg.add("Softmax", softmax);
}

/// A 2-element spatial attribute (strides, dilations) with a default of 1.
fn pair(ctx: &NodeCtx<'_>, name: &str) -> Result<[usize; 2], NodeError> {
    match ctx.attrs.ints(name)? {
        None => Ok([1, 1]),
        Some(v) => {
            let v = to_usizes(name, v)?;
            match v[..] {
                [a, b] if a > 0 && b > 0 => Ok([a, b]),
                _ => Err(NodeError::BadAttribute {
                    attr: name.into(),
                    detail: format!("{v:?} is not two positive values"),
                }),
            }
        }
    }
}

/// Explicit `[top, left, bottom, right]` pads from `pads` / `auto_pad`.
fn resolve_pads(
    ctx: &NodeCtx<'_>,
    input: [usize; 2],
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
) -> Result<[usize; 4], NodeError> {
    let auto_pad = ctx.attrs.string_or("auto_pad", "NOTSET")?;
    match auto_pad.as_str() {
        "NOTSET" => match ctx.attrs.ints("pads")? {
            None => Ok([0; 4]),
            Some(p) => {
                let p = to_usizes("pads", p)?;
                match p[..] {
                    [t, l, b, r] => Ok([t, l, b, r]),
                    _ => Err(NodeError::BadAttribute {
                        attr: "pads".into(),
                        detail: format!("{} values, expected 4", p.len()),
                    }),
                }
            }
        },
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut pads = [0; 4];
            for d in 0..2 {
                let overflow = || NodeError::Invalid("auto_pad arithmetic overflows".into());
                let out = input[d].div_ceil(strides[d]);
                let span = kernel[d]
                    .checked_sub(1)
                    .and_then(|k| k.checked_mul(dilations[d]))
                    .and_then(|k| k.checked_add(1))
                    .ok_or_else(overflow)?;
                let needed = out
                    .saturating_sub(1)
                    .checked_mul(strides[d])
                    .and_then(|v| v.checked_add(span))
                    .ok_or_else(overflow)?;
                let total = needed.saturating_sub(input[d]);
                let small = total / 2;
                let (begin, end) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[d] = begin;
                pads[d + 2] = end;
            }
            Ok(pads)
        }
        other => Err(NodeError::BadAttribute {
            attr: "auto_pad".into(),
            detail: format!("unknown value '{other}'"),
        }),
    }
}

fn spatial_input(ctx: &NodeCtx<'_>, what: &str) -> Result<[usize; 2], NodeError> {
    let x = &ctx.input_ty(0)?.shape;
    match x[..] {
        [_, _, h, w] => Ok([h, w]),
        _ => Err(NodeError::Unsupported(format!(
            "only 2-D {what} (rank-4 NCHW input) is supported, input has rank {}",
            x.len()
        ))),
    }
}

fn conv(ctx: &NodeCtx<'_>) -> Result<Lowered, NodeError> {
    ctx.check_inputs(2, 3)?;
    let hw = spatial_input(ctx, "convolution")?;
    let w = ctx.input_shape(1, "weight", Some(4))?;
    let from_weight = [w[2], w[3]];
    let kernel = match ctx.attrs.ints("kernel_shape")? {
        None => from_weight,
        Some(k) => {
            let k = to_usizes("kernel_shape", k)?;
            if k[..] != from_weight[..] {
                return Err(NodeError::BadAttribute {
                    attr: "kernel_shape".into(),
                    detail: format!(
                        "{k:?} disagrees with the weight's spatial dims {from_weight:?}"
                    ),
                });
            }
            from_weight
        }
    };
    let strides = pair(ctx, "strides")?;
    let dilations = pair(ctx, "dilations")?;
    let group = ctx.attrs.int_or("group", 1)?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0)
        .ok_or(NodeError::BadAttribute {
            attr: "group".into(),
            detail: format!("{group} is not positive"),
        })?;
    let pads = resolve_pads(ctx, hw, kernel, strides, dilations)?;
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    if let Some(b) = ctx.opt_input(2) {
        inputs.push(b);
    }
    Ok(Lowered::Op {
        op: Op::Conv(Conv {
            kernel,
            strides,
            pads,
            dilations,
            group,
        }),
        inputs,
    })
}

fn batch_norm(ctx: &NodeCtx<'_>) -> Result<Lowered, NodeError> {
    ctx.check_inputs(5, 5)?;
    if ctx.attrs.int_or("training_mode", 0)? != 0 {
        return Err(NodeError::Unsupported(
            "BatchNormalization with training_mode = 1".into(),
        ));
    }
    let epsilon = ctx.attrs.float_or("epsilon", 1e-5)?;
    let inputs = (0..5)
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Lowered::Op {
        op: Op::BatchNorm(BatchNorm { epsilon }),
        inputs,
    })
}

fn pool(ctx: &NodeCtx<'_>, kind: PoolKind) -> Result<Lowered, NodeError> {
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
    Ok(Lowered::Op {
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

fn gemm(ctx: &NodeCtx<'_>) -> Result<Lowered, NodeError> {
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
    Ok(Lowered::Op {
        op: Op::Gemm(op),
        inputs,
    })
}

fn softmax(ctx: &NodeCtx<'_>) -> Result<Lowered, NodeError> {
    ctx.check_inputs(1, 1)?;
    let shape = &ctx.input_ty(0)?.shape;
    let default = if ctx.opset < 13 { 1 } else { -1 };
    let a = axis("axis", ctx.attrs.int_or("axis", default)?, shape.len())?;
    if ctx.opset < 13 && shape[a + 1..].iter().any(|&d| d != 1) {
        return Err(NodeError::Unsupported(format!(
            "Softmax before opset 13 flattens the input to 2-D at axis {a}; ghostc supports it only when the dims after the axis are all 1 (input shape {shape:?})"
        )));
    }
    Ok(Lowered::Op {
        op: Op::Softmax { axis: a },
        inputs: vec![ctx.input(0)?],
    })
}
