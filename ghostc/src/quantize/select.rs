//! Which nodes run quantized and which activations get a QuantizeLinear/DequantizeLinear pair.
//!
//! A node is quantized when its op is one a QDQ model quantizes (convolutions, dense layers,
//! elementwise arithmetic, concatenation, pooling, activations and data movement) and the user
//! did not keep it in f32 with `--keep-float`, which takes layer classes or node names:
//!
//! | class | nodes |
//! |---|---|
//! | `depthwise` | Conv with `group == input channels > 1` |
//! | `pointwise` | 1x1 Conv with group 1 |
//! | `se` | squeeze-and-excitation blocks: a global pool over H, W and everything from it to the `Mul` that scales the feature map (included) |
//! | `stem` | the Conv(s) reading the graph input |
//! | `head` | the last global pool that is not in an SE block, and everything after it |
//!
//! An f32 activation gets a Q/DQ pair when its producer or one of its readers is quantized;
//! except that a Conv/Gemm/MatMul/Add output read only by a quantized activation is left alone
//! (the activation's output is quantized instead), which is the `DQ -> Conv -> act -> Q` chain
//! `passes::fold_quantize` turns into one integer op, and what ONNX Runtime fuses too.
//!
//! Deliberately not done here: choosing layers to keep in f32 automatically from their
//! measured error (the report prints per-layer errors; the user decides).

use std::collections::{BTreeSet, HashSet};

use crate::ir::{BinaryOp, DType, Graph, NodeId, Op, ReduceKind, ValueDef, ValueId};

/// Layer classes `--keep-float` accepts.
pub const CLASSES: [&str; 5] = ["depthwise", "pointwise", "se", "stem", "head"];

/// What runs quantized.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub quantized: HashSet<NodeId>,
    /// Nodes the op set would quantize but `--keep-float` kept in f32.
    pub kept_float: BTreeSet<String>,
    pub qdq: HashSet<ValueId>,
}

/// Whether the op is one a QDQ model quantizes.
pub fn quantizable(op: &Op) -> bool {
    match op {
        Op::Conv(_)
        | Op::Gemm(_)
        | Op::MatMul
        | Op::Concat { .. }
        | Op::GlobalAveragePool
        | Op::Pool(_)
        | Op::Activation(_)
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Slice(_)
        | Op::Split { .. }
        | Op::Resize(_) => true,
        Op::Binary(b) => matches!(
            b,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
        ),
        Op::Reduce(r) => r.kind == ReduceKind::Mean,
        _ => false,
    }
}

/// Nodes of `class` (one of [`CLASSES`]).
pub fn class_nodes(g: &Graph, class: &str) -> Option<HashSet<NodeId>> {
    let conv_of = |n: NodeId| match &g.node(n).op {
        Op::Conv(c) => Some(c.clone()),
        _ => None,
    };
    let all: Vec<NodeId> = g.nodes.node_indices().collect();
    let set = match class {
        "depthwise" => all
            .into_iter()
            .filter(|&n| {
                conv_of(n).is_some_and(|c| {
                    let cin = g.value(g.node(n).inputs[0]).ty.shape.get(1).copied();
                    c.group > 1 && Some(c.group) == cin
                })
            })
            .collect(),
        "pointwise" => all
            .into_iter()
            .filter(|&n| conv_of(n).is_some_and(|c| c.group == 1 && c.kernel == [1, 1]))
            .collect(),
        "stem" => all
            .into_iter()
            .filter(|&n| {
                conv_of(n).is_some()
                    && g.node(n)
                        .inputs
                        .first()
                        .is_some_and(|v| g.inputs.contains(v))
            })
            .collect(),
        "se" => se_nodes(g),
        "head" => head_nodes(g),
        _ => return None,
    };
    Some(set)
}

fn is_global_pool(g: &Graph, n: NodeId) -> bool {
    match &g.node(n).op {
        Op::GlobalAveragePool => true,
        Op::Reduce(r) => r.kind == ReduceKind::Mean && r.axes == [2, 3],
        _ => false,
    }
}

/// From a global pool, the nodes on 1x1 (or rank-2) values up to a `Mul` whose output is
/// bigger than 1x1: that Mul and everything on the way, or `None` when no such Mul is reached.
fn se_block(g: &Graph, pool: NodeId) -> Option<HashSet<NodeId>> {
    let mut seen = HashSet::from([pool]);
    let mut stack = vec![pool];
    let mut found = false;
    while let Some(n) = stack.pop() {
        for &out in &g.node(n).outputs {
            for (c, _) in g.consumers(out) {
                let node = g.node(c);
                let shape = &g.value(node.outputs[0]).ty.shape;
                let spatial: usize = shape.get(2..).map(|s| s.iter().product()).unwrap_or(1);
                if matches!(node.op, Op::Binary(BinaryOp::Mul)) && spatial > 1 {
                    seen.insert(c);
                    found = true;
                } else if spatial == 1 && seen.len() < 16 && seen.insert(c) {
                    stack.push(c);
                }
            }
        }
    }
    found.then_some(seen)
}

fn se_nodes(g: &Graph) -> HashSet<NodeId> {
    g.nodes
        .node_indices()
        .filter(|&n| is_global_pool(g, n))
        .filter_map(|n| se_block(g, n))
        .flatten()
        .collect()
}

fn head_nodes(g: &Graph) -> HashSet<NodeId> {
    let Ok(order) = g.topo_order() else {
        return HashSet::new();
    };
    let Some(&pool) = order
        .iter()
        .rev()
        .find(|&&n| is_global_pool(g, n) && se_block(g, n).is_none())
    else {
        return HashSet::new();
    };
    let mut seen = HashSet::from([pool]);
    let mut stack = vec![pool];
    while let Some(n) = stack.pop() {
        for &out in &g.node(n).outputs {
            for (c, _) in g.consumers(out) {
                if seen.insert(c) {
                    stack.push(c);
                }
            }
        }
    }
    seen
}

/// Parses `--keep-float` items (classes or node names) into node sets; the error lists the
/// items that are neither.
pub fn keep_float_nodes(g: &Graph, items: &[String]) -> Result<HashSet<NodeId>, Vec<String>> {
    let mut keep = HashSet::new();
    let mut unknown = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if let Some(set) = class_nodes(g, item) {
            keep.extend(set);
            continue;
        }
        let named: Vec<NodeId> = g
            .nodes
            .node_indices()
            .filter(|&n| g.node(n).name == item)
            .collect();
        if named.is_empty() {
            unknown.push(item.to_string());
        }
        keep.extend(named);
    }
    if unknown.is_empty() {
        Ok(keep)
    } else {
        Err(unknown)
    }
}

/// Decides which nodes are quantized and which values get Q/DQ.
pub fn select(g: &Graph, keep: &HashSet<NodeId>) -> Selection {
    let mut sel = Selection::default();
    for n in g.nodes.node_indices() {
        let node = g.node(n);
        let float_data = node
            .outputs
            .iter()
            .all(|&v| g.value(v).ty.dtype == DType::F32);
        if quantizable(&node.op) && float_data {
            if keep.contains(&n) {
                sel.kept_float.insert(node.name.clone());
            } else {
                sel.quantized.insert(n);
            }
        }
    }
    for (i, value) in g.values.iter().enumerate() {
        let v = ValueId(i as u32);
        if value.ty.dtype != DType::F32 {
            continue;
        }
        let producer = match value.def {
            ValueDef::Input => None,
            ValueDef::Node(p, _) => Some(p),
            ValueDef::Const(_) | ValueDef::Dead => continue,
        };
        let readers: Vec<NodeId> = g.consumers(v).into_iter().map(|(c, _)| c).collect();
        let producer_q = producer.is_some_and(|p| sel.quantized.contains(&p));
        let reader_q = readers.iter().any(|c| sel.quantized.contains(c));
        if !(producer_q || reader_q) {
            continue;
        }
        let into_activation = producer_q
            && !g.is_output(v)
            && matches!(
                g.node(producer.expect("producer_q")).op,
                Op::Conv(_) | Op::Gemm(_) | Op::MatMul | Op::Binary(BinaryOp::Add)
            )
            && readers.len() == 1
            && matches!(g.node(readers[0]).op, Op::Activation(_))
            && sel.quantized.contains(&readers[0]);
        if !into_activation {
            sel.qdq.insert(v);
        }
    }
    sel
}
