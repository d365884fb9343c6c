//! Recognizes ShuffleNet's channel shuffle and replaces it with one `ChannelShuffle` op.
//!
//! PyTorch writes the shuffle as `x.view(n, g, c / g, h, w).transpose(1, 2).reshape(n, c, h,
//! w)`; the export is `Reshape` to rank 5 `[N, g, C/g, H, W]` (or rank 4 `[N, g, C/g, H*W]`),
//! `Transpose` swapping axes 1 and 2, and `Reshape` back to the input's shape. As one op it is
//! a permutation of the channels, which the planner applies to the channel layout instead of
//! moving data (`plan::layout`).
//!
//! Conditions: the input is rank 4; the first Reshape keeps N, splits C into `g * (C / g)` and
//! keeps the pixels (as `[H, W]` or `[H*W]`); each intermediate has exactly one reader and is
//! not a graph output; the Transpose swaps axes 1 and 2 only; the last Reshape restores the
//! input's shape. The last node keeps its output value (name, consumers, graph-output status).
//!
//! Always on, not a `--no-fuse` switch: the three nodes have no lowering of their own (a rank-5
//! tensor and a transpose across channels), so without this pass the model does not compile.
//!
//! Deliberately not done here: other channel permutations spelled with Reshape and Transpose
//! (group counts where the pattern differs, e.g. a Transpose of the pixel axes too); they stay
//! as they are and are reported by the planner.

use crate::ir::{Graph, NodeId, Op};

use super::pattern::{absorb_nodes, reshape_transpose, rewrite_root, sole_use, ReshapeTranspose};
use super::{sweep, Pass, PassError};

/// See the module documentation.
pub struct ChannelShuffle;

impl Pass for ChannelShuffle {
    fn name(&self) -> &'static str {
        "channel_shuffle"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        sweep(self, g, |g, n| {
            let Some((groups, x, first, transpose)) = matched(g, n) else {
                return false;
            };
            let name = g.node(n).name.clone();
            rewrite_root(g, n, Op::ChannelShuffle { groups }, vec![x], name);
            absorb_nodes(g, n, &[transpose, first]);
            true
        })
    }
}

/// For the last Reshape `n` of a shuffle: the group count, the shuffled input, the first
/// Reshape and the Transpose.
fn matched(g: &Graph, n: NodeId) -> Option<(usize, crate::ir::ValueId, NodeId, NodeId)> {
    let node = g.node(n);
    let Op::Reshape { shape: back } = &node.op else {
        return None;
    };
    let ReshapeTranspose {
        reshape: r,
        split,
        transpose: t,
        perm,
        x,
    } = reshape_transpose(g, node.inputs[0])?;
    let xs = &g.value(x).ty.shape;
    if xs.len() != 4 || back != xs || !matches!(split.len(), 4 | 5) {
        return None;
    }
    let swap: Vec<usize> = [0, 2, 1].into_iter().chain(3..split.len()).collect();
    let pixels_kept = split[3..].iter().product::<usize>() == xs[2] * xs[3]
        && (split.len() == 4 || split[3..] == xs[2..]);
    let groups = split[1];
    let ok = *perm == swap
        && split[0] == xs[0]
        && groups > 1
        && groups * split[2] == xs[1]
        && pixels_kept
        && sole_use(g, g.node(r).outputs[0]) == Some((t, 0))
        && sole_use(g, g.node(t).outputs[0]) == Some((n, 0));
    ok.then_some((groups, x, r, t))
}
