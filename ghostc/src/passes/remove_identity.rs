//! Removes nodes that pass their input through unchanged.
//!
//! Rewrites: `Identity`, and these when input and output types are equal: `Reshape` (to the
//! same shape), `Slice` whose every entry starts at 0, steps by 1 and runs to the end,
//! `Transpose` with the identity permutation, `Cast` to the same dtype, `Expand` to the same
//! shape, and a one-input `Concat`. Readers of the output read the input instead.
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

use crate::ir::{Graph, ValueDef};

use super::pattern::{is_no_op, only_used_by};
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
            if !is_no_op(g, g.node(n)) {
                return false;
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
