//! IR verifier: checks the graph invariants after import and, in tests, after every pass.
//!
//! A failure here is a ghostc bug (a pass broke the graph) unless it comes straight from import,
//! where the importer should already have rejected the model with a better message.

use std::collections::HashSet;

use petgraph::Direction;

use crate::ir::infer::{infer, InputFact};
use crate::ir::{fmt_shape, Graph, NodeId, ValueDef, ValueId};

/// An invariant the graph breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    #[error("node '{node}' ({op}): {detail}")]
    Node {
        node: String,
        op: &'static str,
        detail: String,
    },
    #[error("graph has a cycle through node '{node}'")]
    Cycle { node: String },
    #[error("value '{value}': {detail}")]
    Value { value: String, detail: String },
}

/// Checks arity, definitions, edge/input agreement, types against shape inference, acyclicity
/// and graph inputs/outputs.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    let value_err = |v: ValueId, detail: String| VerifyError::Value {
        value: g.value(v).name.clone(),
        detail,
    };
    for &v in &g.inputs {
        if g.value(v).def != ValueDef::Input {
            return Err(value_err(
                v,
                "listed as a graph input but not defined as one".into(),
            ));
        }
    }
    for &v in &g.outputs {
        check_defined(g, v).map_err(|d| value_err(v, format!("graph output {d}")))?;
    }
    for n in g.nodes.node_indices() {
        verify_node(g, n)?;
    }
    g.topo_order().map_err(|n| VerifyError::Cycle {
        node: g.node(n).name.clone(),
    })?;
    Ok(())
}

fn check_defined(g: &Graph, v: ValueId) -> Result<(), String> {
    let Some(value) = g.values.get(v.index()) else {
        return Err(format!("refers to value #{} which does not exist", v.0));
    };
    match &value.def {
        ValueDef::Input => Ok(()),
        ValueDef::Const(t) if t.ty == value.ty => Ok(()),
        ValueDef::Const(t) => Err(format!(
            "constant data is {} but the value says {}",
            t.ty, value.ty
        )),
        ValueDef::Node(p, slot) => match g.nodes.node_weight(*p) {
            Some(node) if node.outputs.get(*slot) == Some(&v) => Ok(()),
            Some(_) => Err(format!(
                "claims to be output {slot} of a node that does not list it"
            )),
            None => Err("is produced by a removed node".into()),
        },
        ValueDef::Dead => Err("is dead (its producer was removed)".into()),
    }
}

fn verify_node(g: &Graph, n: NodeId) -> Result<(), VerifyError> {
    let node = g.node(n);
    let err = |detail: String| VerifyError::Node {
        node: node.name.clone(),
        op: node.op.name(),
        detail,
    };
    let (lo, hi) = node.op.arity();
    if node.inputs.len() < lo || node.inputs.len() > hi {
        return Err(err(format!(
            "has {} inputs, expected {lo}..={hi}",
            node.inputs.len()
        )));
    }
    for (slot, &v) in node.inputs.iter().enumerate() {
        check_defined(g, v).map_err(|d| err(format!("input {slot} '{}' {d}", g.value(v).name)))?;
    }
    for (slot, &v) in node.outputs.iter().enumerate() {
        if g.value(v).def != ValueDef::Node(n, slot) {
            return Err(err(format!(
                "output {slot} '{}' is not defined by this node",
                g.value(v).name
            )));
        }
    }
    // Edges mirror the node-produced inputs exactly (as a multiset).
    let mut from_edges: Vec<ValueId> = g
        .nodes
        .edges_directed(n, Direction::Incoming)
        .map(|e| *e.weight())
        .collect();
    let mut from_inputs: Vec<ValueId> = node
        .inputs
        .iter()
        .copied()
        .filter(|&v| g.producer(v).is_some())
        .collect();
    from_edges.sort();
    from_inputs.sort();
    if from_edges != from_inputs {
        return Err(err(format!(
            "edges {from_edges:?} do not match node-produced inputs {from_inputs:?}"
        )));
    }
    let facts: Vec<InputFact<'_>> = node
        .inputs
        .iter()
        .map(|&v| InputFact {
            ty: &g.value(v).ty,
            value: g.value(v).constant().map(|t| &**t),
        })
        .collect();
    let inferred = infer(&node.op, &facts).map_err(|e| err(e.to_string()))?;
    if inferred.len() != node.outputs.len() {
        return Err(err(format!(
            "has {} outputs, shape inference gives {}",
            node.outputs.len(),
            inferred.len()
        )));
    }
    for (slot, (ty, &v)) in inferred.iter().zip(&node.outputs).enumerate() {
        let stored = &g.value(v).ty;
        if stored != ty {
            return Err(err(format!(
                "output {slot} '{}' is stored as {} [{}] but infers to {} [{}]",
                g.value(v).name,
                stored.dtype,
                fmt_shape(&stored.shape),
                ty.dtype,
                fmt_shape(&ty.shape)
            )));
        }
    }
    let mut seen = HashSet::new();
    for &v in &node.outputs {
        if !seen.insert(v) {
            return Err(err(format!("lists output '{}' twice", g.value(v).name)));
        }
    }
    Ok(())
}
