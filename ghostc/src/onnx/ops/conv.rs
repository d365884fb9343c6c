//! Convolution, transposed convolution and BatchNormalization.
//!
//! Opset notes: `auto_pad` (NOTSET, VALID, SAME_UPPER, SAME_LOWER) is resolved to explicit pads
//! from the input size (by `resolve_pads` in `mod.rs`, shared with pooling). ConvTranspose's
//! `output_shape` and `auto_pad` are resolved into pads and `output_padding` as the ONNX spec
//! computes them (`transposed_pads`).
//! BatchNormalization's training outputs (opset < 14) and `training_mode = 1` (opset 14+) are
//! not supported: outputs other than Y stay unavailable.

use super::{pair, resolve_pads, spatial_input, Registry};
use crate::ir::{BatchNorm, Conv, ConvTranspose, Op};
use crate::onnx::attr::to_usizes;
use crate::onnx::error::NodeError;
use crate::onnx::import::{ImportedNode, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("Conv", conv);
    reg.add("ConvTranspose", conv_transpose);
    reg.add("BatchNormalization", batch_norm);
}

fn conv(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 3)?;
    let op = conv_attrs(ctx, 1)?;
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    if let Some(b) = ctx.opt_input(2) {
        inputs.push(b);
    }
    Ok(ImportedNode::Op {
        op: Op::Conv(op),
        inputs,
    })
}

/// The convolution attributes of a Conv-like node (Conv, QLinearConv) whose data input is
/// input 0 and weight input `w`.
pub(super) fn conv_attrs(ctx: &NodeCtx<'_>, w: usize) -> Result<Conv, NodeError> {
    let hw = spatial_input(ctx, "convolution")?;
    let mut conv = window_attrs(ctx, w)?;
    conv.pads = resolve_pads(ctx, hw, conv.kernel, conv.strides, conv.dilations)?;
    Ok(conv)
}

/// Kernel (from the weight `w`, checked against `kernel_shape`), strides, dilations and group
/// of a Conv-like node; pads left at zero for the caller.
fn window_attrs(ctx: &NodeCtx<'_>, w: usize) -> Result<Conv, NodeError> {
    let w = ctx.input_shape(w, "weight", Some(4))?;
    let from_weight = [w[2], w[3]];
    if let Some(k) = ctx.attrs.ints("kernel_shape")? {
        let k = to_usizes("kernel_shape", k)?;
        if k[..] != from_weight[..] {
            return Err(NodeError::BadAttribute {
                attr: "kernel_shape".into(),
                detail: format!("{k:?} disagrees with the weight's spatial dims {from_weight:?}"),
            });
        }
    }
    let group = ctx.attrs.int_or("group", 1)?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0)
        .ok_or(NodeError::BadAttribute {
            attr: "group".into(),
            detail: format!("{group} is not positive"),
        })?;
    Ok(Conv {
        kernel: from_weight,
        strides: pair(ctx, "strides")?,
        pads: [0; 4],
        dilations: pair(ctx, "dilations")?,
        group,
    })
}

fn conv_transpose(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 3)?;
    let hw = spatial_input(ctx, "transposed convolution")?;
    let mut conv = window_attrs(ctx, 1)?;
    let output_padding = match ctx.attrs.ints("output_padding")? {
        None => [0, 0],
        Some(p) => match to_usizes("output_padding", p)?[..] {
            [h, w] => [h, w],
            ref other => {
                return Err(NodeError::BadAttribute {
                    attr: "output_padding".into(),
                    detail: format!("{} values, expected 2", other.len()),
                })
            }
        },
    };
    for d in 0..2 {
        // The spec requires output_padding < max(stride, dilation): larger values would add
        // rows no input reaches.
        if output_padding[d] >= conv.strides[d].max(conv.dilations[d]) {
            return Err(NodeError::BadAttribute {
                attr: "output_padding".into(),
                detail: format!(
                    "{output_padding:?} is not below max(stride, dilation) = {:?}",
                    [0, 1].map(|i| conv.strides[i].max(conv.dilations[i]))
                ),
            });
        }
    }
    conv.pads = transposed_pads(ctx, hw, &conv, output_padding)?;
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    if let Some(b) = ctx.opt_input(2) {
        inputs.push(b);
    }
    Ok(ImportedNode::Op {
        op: Op::ConvTranspose(ConvTranspose {
            conv,
            output_padding,
            act: None,
        }),
        inputs,
    })
}

/// ConvTranspose's `[top, left, bottom, right]` crop: `pads` as given, or derived from
/// `output_shape` (or `auto_pad` SAME_*, whose output is `input * stride`) by the spec's
/// `total = stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - out`, split with the
/// odd row at the end for SAME_UPPER and at the start otherwise.
fn transposed_pads(
    ctx: &NodeCtx<'_>,
    input: [usize; 2],
    conv: &Conv,
    output_padding: [usize; 2],
) -> Result<[usize; 4], NodeError> {
    let auto_pad = ctx.attrs.string_or("auto_pad", "NOTSET")?;
    let output_shape = match ctx.attrs.ints("output_shape")? {
        Some(s) => {
            let s = to_usizes("output_shape", s)?;
            match s[..] {
                [h, w] | [_, _, h, w] => Some([h, w]),
                _ => {
                    return Err(NodeError::BadAttribute {
                        attr: "output_shape".into(),
                        detail: format!("{s:?}: expected the 2 spatial sizes"),
                    })
                }
            }
        }
        None => match auto_pad.as_str() {
            "NOTSET" | "VALID" => None,
            "SAME_UPPER" | "SAME_LOWER" => Some([0, 1].map(|d| input[d] * conv.strides[d])),
            other => {
                return Err(NodeError::unknown_value(
                    "auto_pad",
                    other,
                    &["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"],
                ))
            }
        },
    };
    let Some(out) = output_shape else {
        if auto_pad == "VALID" {
            return Ok([0; 4]);
        }
        return match ctx.attrs.ints("pads")? {
            None => Ok([0; 4]),
            Some(p) => match to_usizes("pads", p)?[..] {
                [t, l, b, r] => Ok([t, l, b, r]),
                ref other => Err(NodeError::BadAttribute {
                    attr: "pads".into(),
                    detail: format!("{} values, expected 4", other.len()),
                }),
            },
        };
    };
    let mut pads = [0; 4];
    for d in 0..2 {
        let full = (input[d].max(1) - 1) * conv.strides[d]
            + output_padding[d]
            + (conv.kernel[d].max(1) - 1) * conv.dilations[d]
            + 1;
        let Some(total) = full.checked_sub(out[d]) else {
            return Err(NodeError::BadAttribute {
                attr: "output_shape".into(),
                detail: format!(
                    "{out:?} is larger than the full transposed output {full} in dim {d} \
                     (output_padding extends the output; output_shape only crops)"
                ),
            });
        };
        let small = total / 2;
        (pads[d], pads[d + 2]) = if auto_pad == "SAME_UPPER" {
            (small, total - small)
        } else {
            (total - small, small)
        };
    }
    Ok(pads)
}

fn batch_norm(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
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
    Ok(ImportedNode::Op {
        op: Op::BatchNorm(BatchNorm { epsilon }),
        inputs,
    })
}
