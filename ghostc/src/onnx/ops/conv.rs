//! Convolution and BatchNormalization.
//!
//! Opset notes: `auto_pad` (NOTSET, VALID, SAME_UPPER, SAME_LOWER) is resolved to explicit pads
//! from the input size (by `resolve_pads` in `mod.rs`, shared with pooling).
//! BatchNormalization's training outputs (opset < 14) and `training_mode = 1` (opset 14+) are
//! not supported: outputs other than Y stay unavailable.

use super::{pair, resolve_pads, spatial_input, Registry};
use crate::ir::{BatchNorm, Conv, Op};
use crate::onnx::attr::to_usizes;
use crate::onnx::error::NodeError;
use crate::onnx::import::{ImportedNode, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("Conv", conv);
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
    let w = ctx.input_shape(w, "weight", Some(4))?;
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
    Ok(Conv {
        kernel,
        strides,
        pads,
        dilations,
        group,
    })
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
