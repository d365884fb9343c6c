//! Removes nodes that pass their input through unchanged.
//!
//! Rewrites: `Identity`, and these when input and output types are equal: `Reshape` (to the
//! same shape), `Slice` whose every entry starts at 0, steps by 1 and runs to the end,
//! `Transpose` with the identity permutation, `Cast` to the same dtype, `Expand` to the same
//! shape, and a one-input `Concat`. Readers of the output read the input instead.
//!
//! Two canonicalizations come first, so that such chains reach that form: a `Gather` along
//! axis 0 of a rank-1 tensor by the constant indices `0, 1, .., n - 1` (the dynamo exporter's
//! `as_strided` after a flattening Reshape) is a Reshape to the indices' shape, and a Reshape
//! of a Reshape read only by it reshapes the first one's input directly.
//!
//! Preconditions: none beyond a verified graph.
//!
//! Deliberately does not:
//! - remove a pass-through whose output is a graph output when its input is a graph input, a
//!   constant, a graph output, or read elsewhere: the graph output would lose its own producer
//!   or its name. When the input is a node output read only here, the node goes and the input
//!   value takes the output's name.
//! - remove shape-changing Reshapes (Flatten between the global pool and the classifier): they
//!   cost nothing at run time and later matchers (SE) expect them where exporters put them.
//! - remove Dropout: the importer already drops it.

use crate::ir::{Graph, NodeId, Op, ValueDef};

use super::pattern::{is_no_op, only_used_by, producer};
use super::{sweep, Pass, PassError};

/// See the module documentation.
pub struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove_identity"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        // Only the visited node is ever removed, so every later node is still there.
        sweep(self, g, |g, n| {
            let canonicalized = canonicalize(g, n);
            if !is_no_op(g, g.node(n)) {
                return canonicalized;
            }
            let (x, y) = (g.node(n).inputs[0], g.node(n).outputs[0]);
            if g.is_output(y) {
                let x_is_private_node_output = matches!(g.value(x).def, ValueDef::Node(..))
                    && !g.is_output(x)
                    && only_used_by(g, x, n);
                if !x_is_private_node_output {
                    return false;
                }
                g.value_mut(x).name = g.value(y).name.clone();
            }
            g.replace_all_uses(y, x);
            g.remove_node(n);
            true
        })
    }
}

/// The two rewrites of the module docs on node `n`; returns whether either applied.
fn canonicalize(g: &mut Graph, n: NodeId) -> bool {
    let mut changed = false;
    let node = g.node(n);
    if let (Op::Gather { axis: 0 }, [x, idx]) = (&node.op, &node.inputs[..]) {
        let len = &g.value(*x).ty.shape[..];
        let in_order = g
            .value(*idx)
            .constant()
            .and_then(|t| t.as_i64())
            .is_some_and(|v| v.iter().enumerate().all(|(i, &j)| j == i as i64));
        let shape = g.value(node.outputs[0]).ty.shape.clone();
        if let (&[len], true) = (len, in_order) {
            if shape.iter().product::<usize>() == len {
                let x = *x;
                g.set_inputs(n, vec![x]);
                g.node_mut(n).op = Op::Reshape { shape };
                changed = true;
            }
        }
    }
    let node = g.node(n);
    if let Op::Reshape { .. } = node.op {
        let x = node.inputs[0];
        if let Some((inner, Op::Reshape { .. })) = producer(g, x).map(|(p, pn)| (p, &pn.op)) {
            if only_used_by(g, x, n) {
                let src = g.node(inner).inputs[0];
                g.set_input(n, 0, src);
                g.absorb(n, inner);
                changed = true;
            }
        }
    }
    changed
}
