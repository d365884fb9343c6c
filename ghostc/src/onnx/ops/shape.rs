//! Data movement and shape ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
//! Split, Slice, Gather, Expand, Pad, Shape, ConstantOfShape, Range, Constant, Identity,
//! Dropout.
//!
//! Opset notes: Squeeze/Unsqueeze `axes` and Split `split` are attributes before opset 13 and
//! constant inputs from 13; Split gains `num_outputs` in 18 (uneven last chunk). Slice bounds
//! are inputs from opset 10 (attributes before). Pad's amounts and value are inputs from 11,
//! with an `axes` input from 18. Reshape's `allowzero` (14) makes a 0 literal. Shape has
//! `start`/`end` from 15. Flatten, Squeeze and Unsqueeze all become `Op::Reshape` with a static
//! target. Identity and inference-mode Dropout are aliases and add no node.

use super::{axes, axis, param_error, Registry};
use crate::ir::infer::broadcast_shapes;
use crate::ir::{DType, Data, Op, Pad, PadMode, Slice, Tensor};
use crate::onnx::attr::to_usizes;
use crate::onnx::error::NodeError;
use crate::onnx::import::{ImportedNode, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("Reshape", reshape);
    reg.add("Flatten", flatten);
    reg.add("Squeeze", squeeze);
    reg.add("Unsqueeze", unsqueeze);
    reg.add("Transpose", transpose);
    reg.add("DepthToSpace", depth_to_space);
    reg.add("Concat", concat);
    reg.add("Split", split);
    reg.add("Slice", slice);
    reg.add("Gather", |ctx| {
        ctx.check_inputs(2, 2)?;
        let rank = ctx.input_ty(0)?.shape.len();
        let a = axis("axis", ctx.attrs.int_or("axis", 0)?, rank)?;
        Ok(ImportedNode::Op {
            op: Op::Gather { axis: a },
            inputs: vec![ctx.input(0)?, ctx.input(1)?],
        })
    });
    reg.add("Expand", expand);
    reg.add("Pad", pad);
    reg.add("Shape", shape_op);
    reg.add("ConstantOfShape", constant_of_shape);
    reg.add("Range", |ctx| {
        ctx.check_inputs(3, 3)?;
        Ok(ImportedNode::Op {
            op: Op::Range,
            inputs: vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?],
        })
    });
    reg.add("Constant", constant);
    reg.add("Identity", |ctx| {
        ctx.check_inputs(1, 1)?;
        Ok(ImportedNode::Alias(ctx.input(0)?))
    });
    reg.add("Dropout", dropout);
}

fn checked_product(dims: &[usize]) -> Result<usize, NodeError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| NodeError::Invalid(format!("shape {dims:?} overflows")))
}

fn reshape_op(ctx: &NodeCtx<'_>, shape: Vec<usize>) -> Result<ImportedNode, NodeError> {
    Ok(ImportedNode::Op {
        op: Op::Reshape { shape },
        inputs: vec![ctx.input(0)?],
    })
}

/// Resolves ONNX Reshape's target: 0 copies the input dim (unless `allowzero`), one -1 is
/// inferred from the element count.
pub(crate) fn reshape_target(
    input: &[usize],
    spec: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, NodeError> {
    let bad =
        |msg: String| NodeError::Invalid(format!("Reshape to {spec:?} from {input:?}: {msg}"));
    let mut out = Vec::with_capacity(spec.len());
    let mut inferred = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 => {
                if inferred.replace(i).is_some() {
                    return Err(bad("more than one -1".into()));
                }
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| {
                bad(format!(
                    "0 at position {i} copies a dim the input does not have"
                ))
            })?),
            d if d < 0 => return Err(bad(format!("negative dim {d}"))),
            d => out.push(usize::try_from(d).map_err(|_| bad(format!("dim {d} does not fit")))?),
        }
    }
    if let Some(i) = inferred {
        if allowzero && spec.contains(&0) {
            return Err(bad("allowzero with both 0 and -1".into()));
        }
        let known = checked_product(&out)?;
        let total = checked_product(input)?;
        if known == 0 || total % known != 0 {
            return Err(bad(format!(
                "cannot infer -1: {total} elements do not divide by {known}"
            )));
        }
        out[i] = total / known;
    }
    Ok(out)
}

fn reshape(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 2)?;
    let input = &ctx.input_ty(0)?.shape;
    let spec = ctx
        .const_ints(1, "the target shape")?
        .ok_or_else(|| NodeError::BadInput {
            index: 1,
            value: ctx.input_name(1),
            detail: "the target shape is missing".into(),
        })?;
    let allowzero = ctx.opset >= 14 && ctx.attrs.bool_or("allowzero", false)?;
    let target = reshape_target(input, &spec, allowzero)?;
    reshape_op(ctx, target)
}

fn flatten(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    let shape = &ctx.input_ty(0)?.shape;
    let given = ctx.attrs.int_or("axis", 1)?;
    // Flatten's axis lies in [-rank, rank]; rank puts everything in the first dim.
    let rank = shape.len() as i64;
    let a = if given < 0 {
        given.saturating_add(rank)
    } else {
        given
    };
    if !(0..=rank).contains(&a) {
        return Err(NodeError::Invalid(format!(
            "axis {given} is out of range for Flatten of rank {rank}"
        )));
    }
    let a = a as usize;
    let outer = checked_product(&shape[..a])?;
    let inner = checked_product(&shape[a..])?;
    reshape_op(ctx, vec![outer, inner])
}

/// `axes` from the attribute (before `input_since`) or from constant input 1.
fn axes_param(ctx: &NodeCtx<'_>, input_since: i64) -> Result<Option<Vec<i64>>, NodeError> {
    if ctx.opset >= input_since {
        ctx.check_inputs(1, 2)?;
        ctx.const_ints(1, "the axes")
    } else {
        ctx.check_inputs(1, 1)?;
        Ok(ctx.attrs.ints("axes")?.map(<[i64]>::to_vec))
    }
}

fn squeeze(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    let shape = &ctx.input_ty(0)?.shape;
    let given = axes_param(ctx, 13)?;
    let target: Vec<usize> = match given {
        None => shape.iter().copied().filter(|&d| d != 1).collect(),
        Some(a) => {
            let a = axes("axis", &a, shape.len())?;
            if let Some(&bad) = a.iter().find(|&&i| shape[i] != 1) {
                return Err(NodeError::Invalid(format!(
                    "cannot squeeze axis {bad} of size {} (shape {shape:?})",
                    shape[bad]
                )));
            }
            shape
                .iter()
                .enumerate()
                .filter(|(i, _)| !a.contains(i))
                .map(|(_, &d)| d)
                .collect()
        }
    };
    reshape_op(ctx, target)
}

fn unsqueeze(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    let shape = &ctx.input_ty(0)?.shape;
    let given = axes_param(ctx, 13)?.ok_or(NodeError::MissingAttribute {
        attr: "axes".into(),
    })?;
    let out_rank = shape.len() + given.len();
    let a = axes("axis", &given, out_rank)?;
    let mut dims = shape.iter().copied();
    let target = (0..out_rank)
        .map(|i| {
            if a.contains(&i) {
                1
            } else {
                dims.next().unwrap_or(1)
            }
        })
        .collect();
    reshape_op(ctx, target)
}

fn transpose(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    let rank = ctx.input_ty(0)?.shape.len();
    let perm = match ctx.attrs.ints("perm")? {
        Some(p) => to_usizes("perm", p)?,
        None => (0..rank).rev().collect(),
    };
    Ok(ImportedNode::Op {
        op: Op::Transpose { perm },
        inputs: vec![ctx.input(0)?],
    })
}

fn depth_to_space(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    let b = ctx
        .attrs
        .int("blocksize")?
        .ok_or(NodeError::MissingAttribute {
            attr: "blocksize".into(),
        })?;
    let blocksize =
        usize::try_from(b)
            .ok()
            .filter(|&b| b > 0)
            .ok_or_else(|| NodeError::BadAttribute {
                attr: "blocksize".into(),
                detail: format!("{b} is not positive"),
            })?;
    let crd = match ctx.attrs.string_or("mode", "DCR")?.as_str() {
        "DCR" => false,
        "CRD" => true,
        other => return Err(NodeError::unknown_value("mode", other, &["DCR", "CRD"])),
    };
    Ok(ImportedNode::Op {
        op: Op::DepthToSpace { blocksize, crd },
        inputs: vec![ctx.input(0)?],
    })
}

fn concat(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    if ctx.n_inputs() == 0 {
        return Err(NodeError::InputCount {
            expected: "at least 1".into(),
            actual: 0,
        });
    }
    let rank = ctx.input_ty(0)?.shape.len();
    let a = ctx.attrs.int("axis")?.ok_or(NodeError::MissingAttribute {
        attr: "axis".into(),
    })?;
    let a = axis("axis", a, rank)?;
    let inputs = (0..ctx.n_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>, _>>()?;
    if inputs.len() == 1 {
        return Ok(ImportedNode::Alias(inputs[0]));
    }
    Ok(ImportedNode::Op {
        op: Op::Concat { axis: a },
        inputs,
    })
}

fn split(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    let shape = &ctx.input_ty(0)?.shape;
    let a = axis("axis", ctx.attrs.int_or("axis", 0)?, shape.len())?;
    let dim = shape[a];
    let given = if ctx.opset >= 13 {
        ctx.check_inputs(1, 2)?;
        ctx.const_ints(1, "the split sizes")?
    } else {
        ctx.check_inputs(1, 1)?;
        ctx.attrs.ints("split")?.map(<[i64]>::to_vec)
    };
    let n_outputs = ctx.n_outputs();
    let sizes: Vec<usize> = match given {
        Some(s) if !s.is_empty() => {
            let total = s.iter().try_fold(0i64, |acc, &v| acc.checked_add(v));
            if s.iter().any(|&v| v < 0) || total != i64::try_from(dim).ok() {
                let shown = if s.len() <= 16 {
                    format!("{s:?}")
                } else {
                    format!("({} values)", s.len())
                };
                // The split sizes are input 1 from opset 13, attribute 'split' before.
                return Err(param_error(ctx, 13, 1, "split", format!(
                    "split sizes {shown} must be non-negative and sum to {dim}, the size of axis {a}"
                )));
            }
            to_usizes("split", &s)?
        }
        _ => {
            let num =
                match ctx.attrs.int("num_outputs")? {
                    Some(n) if ctx.opset >= 18 => usize::try_from(n)
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or(NodeError::BadAttribute {
                            attr: "num_outputs".into(),
                            detail: format!("{n} is not positive"),
                        })?,
                    _ => n_outputs,
                };
            if num != n_outputs {
                return Err(NodeError::BadAttribute {
                    attr: "num_outputs".into(),
                    detail: format!("{num}, but the node has {n_outputs} outputs (must be equal)"),
                });
            }
            if num == 0 {
                return Err(NodeError::OutputCount {
                    expected: "at least 1".into(),
                    actual: 0,
                });
            }
            let chunk = if ctx.attrs.has("num_outputs") {
                dim.div_ceil(num)
            } else {
                dim / num
            };
            if !ctx.attrs.has("num_outputs") && dim % num != 0 {
                return Err(NodeError::Invalid(format!(
                    "axis {a} of size {dim} does not split evenly into {num} outputs"
                )));
            }
            let mut sizes = vec![chunk; num];
            let used = chunk.saturating_mul(num - 1);
            if used > dim {
                return Err(NodeError::Invalid(format!(
                    "axis {a} of size {dim} cannot be split into {num} chunks of {chunk}"
                )));
            }
            if let Some(last) = sizes.last_mut() {
                *last = dim - used;
            }
            sizes
        }
    };
    if sizes.len() != n_outputs {
        return Err(NodeError::OutputCount {
            expected: sizes.len().to_string(),
            actual: n_outputs,
        });
    }
    Ok(ImportedNode::Op {
        op: Op::Split { axis: a, sizes },
        inputs: vec![ctx.input(0)?],
    })
}

/// Normalizes one ONNX slice range against a dim (negative indices wrap, then clamp).
pub(crate) fn normalize_slice(dim: usize, start: i64, end: i64, step: i64) -> (i64, i64) {
    let d = i64::try_from(dim).unwrap_or(i64::MAX);
    let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (start, end) = (wrap(start), wrap(end));
    if step > 0 {
        (start.max(0).min(d), end.max(0).min(d))
    } else {
        (start.max(0).min(d - 1), end.max(-1).min(d - 1))
    }
}

fn slice(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    let shape = &ctx.input_ty(0)?.shape;
    let (starts, ends, axes_given, steps) = if ctx.opset >= 10 {
        ctx.check_inputs(3, 5)?;
        let req = |i, what| {
            ctx.const_ints(i, what)?.ok_or_else(|| NodeError::BadInput {
                index: i,
                value: ctx.input_name(i),
                detail: format!("{what} are missing"),
            })
        };
        (
            req(1, "the slice starts")?,
            req(2, "the slice ends")?,
            ctx.const_ints(3, "the slice axes")?,
            ctx.const_ints(4, "the slice steps")?,
        )
    } else {
        ctx.check_inputs(1, 1)?;
        let get = |n: &str| -> Result<Option<Vec<i64>>, NodeError> {
            Ok(ctx.attrs.ints(n)?.map(<[i64]>::to_vec))
        };
        let starts = get("starts")?.ok_or(NodeError::MissingAttribute {
            attr: "starts".into(),
        })?;
        let ends = get("ends")?.ok_or(NodeError::MissingAttribute {
            attr: "ends".into(),
        })?;
        (starts, ends, get("axes")?, None)
    };
    let n = starts.len();
    let axes_raw = axes_given.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes_raw.len() != n || steps.len() != n {
        return Err(NodeError::Invalid(format!(
            "starts, ends, axes and steps have lengths {}, {}, {}, {}",
            n,
            ends.len(),
            axes_raw.len(),
            steps.len()
        )));
    }
    let mut slice = Slice {
        axes: Vec::with_capacity(n),
        starts: Vec::with_capacity(n),
        ends: Vec::with_capacity(n),
        steps,
    };
    for k in 0..n {
        let a = axis("axis", axes_raw[k], shape.len())?;
        if slice.steps[k] == 0 {
            return Err(NodeError::Invalid(format!("slice step on axis {a} is 0")));
        }
        let (s, e) = normalize_slice(shape[a], starts[k], ends[k], slice.steps[k]);
        slice.axes.push(a);
        slice.starts.push(s);
        slice.ends.push(e);
    }
    Ok(ImportedNode::Op {
        op: Op::Slice(slice),
        inputs: vec![ctx.input(0)?],
    })
}

fn expand(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(2, 2)?;
    let input = &ctx.input_ty(0)?.shape;
    let spec = ctx.const_ints(1, "the expanded shape")?.unwrap_or_default();
    let spec = to_usizes("shape", &spec).map_err(|e| NodeError::BadInput {
        index: 1,
        value: ctx.input_name(1),
        detail: e.to_string(),
    })?;
    let shape = broadcast_shapes(input, &spec)?;
    Ok(ImportedNode::Op {
        op: Op::Expand { shape },
        inputs: vec![ctx.input(0)?],
    })
}

fn pad(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    let rank = ctx.input_ty(0)?.shape.len();
    let mode = match ctx.attrs.string_or("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        // ONNX's (opset 19) mode ghostc lacks: listed with the unsupported nodes.
        "wrap" => return Err(NodeError::Unsupported("Pad mode 'wrap'".into())),
        other => {
            return Err(NodeError::unknown_value(
                "mode",
                other,
                &["constant", "reflect", "edge"],
            ))
        }
    };
    let (pads, value, axes_given) = if ctx.opset >= 11 {
        ctx.check_inputs(2, 4)?;
        let pads = ctx
            .const_ints(1, "the pad amounts")?
            .ok_or_else(|| NodeError::BadInput {
                index: 1,
                value: ctx.input_name(1),
                detail: "the pad amounts are missing".into(),
            })?;
        let value = ctx.const_scalar_f32(2, "the pad value")?.unwrap_or(0.0);
        (pads, value, ctx.const_ints(3, "the pad axes")?)
    } else {
        ctx.check_inputs(1, 1)?;
        let pads = ctx
            .attrs
            .ints("pads")?
            .ok_or(NodeError::MissingAttribute {
                attr: "pads".into(),
            })?
            .to_vec();
        (pads, ctx.attrs.float_or("value", 0.0)?, None)
    };
    let ax = axes_given.map(|a| axes("axis", &a, rank)).transpose()?;
    let n_axes = ax.as_ref().map_or(rank, Vec::len);
    if pads.len() != 2 * n_axes {
        let detail = format!(
            "{} pad amounts, expected {} (a begin and an end for each of {n_axes} axes)",
            pads.len(),
            2 * n_axes
        );
        return Err(param_error(ctx, 11, 1, "pads", detail));
    }
    let pads = match ax {
        None => pads,
        Some(ax) => {
            let mut full = vec![0i64; 2 * rank];
            for (k, &a) in ax.iter().enumerate() {
                full[a] = pads[k];
                full[a + rank] = pads[k + ax.len()];
            }
            full
        }
    };
    Ok(ImportedNode::Op {
        op: Op::Pad(Pad { pads, mode, value }),
        inputs: vec![ctx.input(0)?],
    })
}

fn shape_op(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    let shape = &ctx.input_ty(0)?.shape;
    let rank = shape.len() as i64;
    let clamp = |v: i64| -> usize {
        (if v < 0 { v.saturating_add(rank) } else { v }).clamp(0, rank) as usize
    };
    let start = clamp(ctx.attrs.int_or("start", 0)?);
    let end = clamp(ctx.attrs.int_or("end", rank)?);
    let dims: Vec<i64> = shape
        .get(start..end.max(start))
        .unwrap_or_default()
        .iter()
        .map(|&d| d as i64)
        .collect();
    let n = dims.len();
    let t =
        Tensor::from_i64(vec![n], dims).ok_or_else(|| NodeError::Invalid("shape tensor".into()))?;
    Ok(ImportedNode::Const(vec![t]))
}

fn constant_of_shape(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    let spec = ctx.const_ints(0, "the output shape")?.unwrap_or_default();
    let shape = to_usizes("shape", &spec).map_err(|e| NodeError::BadInput {
        index: 0,
        value: ctx.input_name(0),
        detail: e.to_string(),
    })?;
    let (dtype, value) = match ctx.attr_tensor("value")? {
        None => (DType::F32, 0.0),
        Some(t) => {
            let v = match &t.data {
                Data::F32(v) if v.len() == 1 => f64::from(v[0]),
                Data::I64(v) if v.len() == 1 => v[0] as f64,
                Data::Bool(v) if v.len() == 1 => f64::from(u8::from(v[0])),
                _ => {
                    return Err(NodeError::BadAttribute {
                        attr: "value".into(),
                        detail: format!("must hold one element, has type {}", t.ty),
                    })
                }
            };
            (t.dtype(), v)
        }
    };
    Ok(ImportedNode::Op {
        op: Op::ConstantOfShape {
            shape,
            dtype,
            value,
        },
        inputs: vec![],
    })
}

fn constant(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(0, 0)?;
    let names: Vec<&str> = ctx.attrs.names().collect();
    let [name] = names[..] else {
        return Err(NodeError::Invalid(format!(
            "Constant needs exactly one value attribute, has {names:?}"
        )));
    };
    let bad = || NodeError::Invalid("constant value".into());
    let t = match name {
        "value" => ctx.attr_tensor("value")?.ok_or_else(bad)?,
        "value_float" => Tensor::scalar_f32(ctx.attrs.float("value_float")?.ok_or_else(bad)?),
        "value_floats" => {
            let v = ctx.attrs.floats("value_floats")?.ok_or_else(bad)?.to_vec();
            Tensor::from_f32(vec![v.len()], v).ok_or_else(bad)?
        }
        "value_int" => Tensor::from_i64(vec![], vec![ctx.attrs.int("value_int")?.ok_or_else(bad)?])
            .ok_or_else(bad)?,
        "value_ints" => {
            let v = ctx.attrs.ints("value_ints")?.ok_or_else(bad)?.to_vec();
            Tensor::from_i64(vec![v.len()], v).ok_or_else(bad)?
        }
        other => {
            return Err(NodeError::Unsupported(format!(
                "Constant with attribute '{other}'"
            )))
        }
    };
    Ok(ImportedNode::Const(vec![t]))
}

fn dropout(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 3)?;
    if ctx.opset >= 12 {
        if let Some(t) = ctx.const_input(2, "Dropout's training_mode")? {
            if t.to_f32_vec().iter().any(|&v| v != 0.0) {
                return Err(NodeError::Unsupported(
                    "Dropout with training_mode = true".into(),
                ));
            }
        }
    }
    Ok(ImportedNode::Alias(ctx.input(0)?))
}
