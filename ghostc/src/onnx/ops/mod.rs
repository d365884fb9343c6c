//! The op table: ONNX op type -> importer, registered per op family (as tract's
//! `register_all_ops`). An importer reads a node's attributes and constant inputs, normalizes
//! the opset differences of its op (attributes that became inputs, changed defaults), and
//! returns a canonical [`crate::ir::Op`] over the node's data inputs, an alias, or constants.
//! It returns [`NodeError::Unsupported`] for a known op used in a way ghostc does not handle
//! (so the node is listed with the other unsupported ones), and other errors for malformed
//! nodes.
//!
//! The families carry the names `ir::infer` and `interp` use: `conv` (Conv, BatchNormalization),
//! `dense` (Gemm, MatMul), `pool` (pooling, reductions), `softmax`, `elementwise` (activations,
//! arithmetic, comparisons, Where, Cast), `resize`, `shape` (data movement, shape computation,
//! Constant, Identity, Dropout), `quant` (QuantizeLinear, DequantizeLinear, the QLinear* ops,
//! including the `com.microsoft` ones, registered in their own table). This file holds what several families share: axis resolution
//! and the sliding-window attributes (strides, dilations, `auto_pad`) of conv and pool.

mod conv;
mod dense;
mod elementwise;
mod pool;
mod quant;
mod resize;
mod shape;
mod softmax;

use std::collections::HashMap;
use std::sync::OnceLock;

use super::attr::to_usizes;
use super::error::NodeError;
use super::import::{ImportedNode, NodeCtx};

/// Converts one ONNX node.
pub(crate) type Importer = fn(&NodeCtx<'_>) -> Result<ImportedNode, NodeError>;

/// Registration table, filled by each family's `register`.
pub(crate) struct Registry(HashMap<&'static str, Importer>);

impl Registry {
    pub(crate) fn add(&mut self, op_type: &'static str, importer: Importer) {
        self.0.insert(op_type, importer);
    }
}

fn registry() -> &'static Registry {
    static TABLE: OnceLock<Registry> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut reg = Registry(HashMap::new());
        conv::register(&mut reg);
        dense::register(&mut reg);
        pool::register(&mut reg);
        softmax::register(&mut reg);
        elementwise::register(&mut reg);
        resize::register(&mut reg);
        shape::register(&mut reg);
        quant::register(&mut reg);
        reg
    })
}

/// The `com.microsoft` ops ghostc imports (ONNX Runtime's quantized contrib ops).
fn microsoft_registry() -> &'static Registry {
    static TABLE: OnceLock<Registry> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut reg = Registry(HashMap::new());
        quant::register_microsoft(&mut reg);
        reg
    })
}

/// The importer of a default-domain op type.
pub(crate) fn lookup(op_type: &str) -> Option<Importer> {
    registry().0.get(op_type).copied()
}

/// The importer of an op type in a non-default `domain` (only `com.microsoft` has any).
pub(crate) fn lookup_in(domain: &str, op_type: &str) -> Option<Importer> {
    match domain {
        "com.microsoft" => microsoft_registry().0.get(op_type).copied(),
        _ => None,
    }
}

/// Every supported default-domain op type, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    let mut ops: Vec<&'static str> = registry().0.keys().copied().collect();
    ops.sort_unstable();
    ops
}

/// Resolves a possibly negative axis against `rank`.
pub(crate) fn axis(what: &str, axis: i64, rank: usize) -> Result<usize, NodeError> {
    let r = rank as i64;
    let a = if axis < 0 {
        axis.checked_add(r)
    } else {
        Some(axis)
    };
    match a {
        Some(a) if (0..r).contains(&a) => Ok(a as usize),
        _ => Err(NodeError::Invalid(format!(
            "{what} {axis} is out of range for rank {rank} (expected {} to {})",
            -r,
            r - 1
        ))),
    }
}

/// Resolves axes against `rank`, sorted; duplicates are an error.
pub(crate) fn axes(what: &str, values: &[i64], rank: usize) -> Result<Vec<usize>, NodeError> {
    let mut out = values
        .iter()
        .map(|&a| axis(what, a, rank))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    if out.windows(2).any(|w| w[0] == w[1]) {
        return Err(NodeError::Invalid(format!(
            "{what}s {values:?} repeat an axis"
        )));
    }
    Ok(out)
}

/// The error for a parameter that is input `index` from opset `since` and attribute `attr`
/// before (Pad's `pads`, Split's `split`): names whichever the node uses.
pub(crate) fn param_error(
    ctx: &NodeCtx<'_>,
    since: i64,
    index: usize,
    attr: &str,
    detail: String,
) -> NodeError {
    if ctx.opset >= since {
        NodeError::BadInput {
            index,
            value: ctx.input_name(index),
            detail,
        }
    } else {
        NodeError::BadAttribute {
            attr: attr.into(),
            detail,
        }
    }
}

/// The node's data input `i` as a one-op lowering helper.
pub(crate) fn unary_op(ctx: &NodeCtx<'_>, op: crate::ir::Op) -> Result<ImportedNode, NodeError> {
    ctx.check_inputs(1, 1)?;
    Ok(ImportedNode::Op {
        op,
        inputs: vec![ctx.input(0)?],
    })
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
        other => Err(NodeError::unknown_value(
            "auto_pad",
            other,
            &["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"],
        )),
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
