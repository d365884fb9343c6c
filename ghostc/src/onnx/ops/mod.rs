//! The op table: ONNX op type -> importer, registered per op family (as tract's
//! `register_all_ops`). An importer reads a node's attributes and constant inputs, normalizes
//! the opset differences of its op (attributes that became inputs, changed defaults), and
//! returns a canonical [`crate::ir::Op`] over the node's data inputs, an alias, or constants.
//! It returns [`NodeError::Unsupported`] for a known op used in a way ghostc does not handle
//! (so the node is listed with the other unsupported ones), and other errors for malformed
//! nodes.

mod activation;
mod math;
mod nn;
mod resize;
mod shape;

use std::collections::HashMap;
use std::sync::OnceLock;

use super::error::NodeError;
use super::import::{Lowered, NodeCtx};

/// Converts one ONNX node.
pub(crate) type Importer = fn(&NodeCtx<'_>) -> Result<Lowered, NodeError>;

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
        nn::register(&mut reg);
        activation::register(&mut reg);
        math::register(&mut reg);
        shape::register(&mut reg);
        resize::register(&mut reg);
        reg
    })
}

/// The importer of a default-domain op type.
pub(crate) fn lookup(op_type: &str) -> Option<Importer> {
    registry().0.get(op_type).copied()
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
            "{what} {axis} is out of range for rank {rank}"
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

/// The node's data input `i` as a one-op lowering helper.
pub(crate) fn unary_op(ctx: &NodeCtx<'_>, op: crate::ir::Op) -> Result<Lowered, NodeError> {
    ctx.check_inputs(1, 1)?;
    Ok(Lowered::Op {
        op,
        inputs: vec![ctx.input(0)?],
    })
}
