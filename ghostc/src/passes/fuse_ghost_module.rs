//! Fuses a Ghost module (`primary conv -> cheap depthwise conv -> concat -> slice`) into one
//! `Ghost` op, so the generated kernel writes both halves straight into the output.
//!
//! Rewrites `Slice?(Concat[axis 1](p, q))` where
//! - `p = act_p(conv_p(x) + b_p)` is a conv-like node (`Conv` or `FusedConv`, no residual;
//!   usually a 1x1 primary conv, any kernel/stride/group accepted);
//! - `q = act_q(conv_q(p) + b_q)` is a conv-like node reading `p`, with `group == channels(p)`
//!   (depthwise, or depthwise with a channel multiplier: `channels(q)` a multiple of
//!   `channels(p)`), stride 1, symmetric padding and the same spatial size as `p` ("same");
//! - the Concat has exactly the inputs `[p, q]` in that order;
//! - `p` is read exactly twice (by the cheap conv and by the Concat) and `q` once (by the
//!   Concat), neither being a graph output;
//! - the Slice, if the Concat's only reader is one, keeps channels `[0, out_channels)` of axis 1
//!   with step 1, `channels(p) < out_channels <= channels(p) + channels(q)`, and any other
//!   axis it lists whole; with no Slice, `out_channels = channels(p) + channels(q)`.
//!
//! into `Ghost { primary, primary_act, cheap, cheap_act, out_channels }` over
//! `[x, w_p, b_p, w_q, b_q]` (missing biases become zero constants). The Ghost takes the place
//! of the Slice (or Concat), keeping its output value.
//!
//! Preconditions: activations already absorbed into the convs (`fuse_activation`); otherwise
//! `p` is an activation node and nothing matches.
//!
//! Deliberately does not:
//! - fuse when the Concat's only reader is a Slice that fails the conditions above (e.g. it
//!   cuts another axis): the whole module is left as it was;
//! - absorb what follows the module. GhostNetV2's DFC attention multiplies the (sliced) output
//!   by `Resize(Sigmoid(..))`; the Ghost op is fused and the gate `Mul` stays a separate node.
//!   GhostNetV3 training-form modules (primary = ReLU(sum of parallel conv branches)) do not
//!   match and stay unfused; their deploy form matches.

use crate::ir::{Ghost, Graph, NodeId, Op, Slice};

use super::pattern::{
    absorb_nodes, bias_or_zeros, conv_like, only_used_by, producer, rewrite_root, sole_use,
};
use super::{sweep, Pass, PassError};

/// See the module documentation. Does nothing when `enabled` is off.
pub struct FuseGhostModule {
    pub enabled: bool,
}

impl Pass for FuseGhostModule {
    fn name(&self) -> &'static str {
        "fuse_ghost_module"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        if !self.enabled {
            return Ok(false);
        }
        sweep(self, g, |g, n| {
            matches!(g.node(n).op, Op::Concat { axis: 1 }) && fuse_one(g, n)
        })
    }
}

/// `out_channels` kept by `slice` over a concat output of `shape`, if the slice only cuts axis
/// 1 to a prefix.
fn slice_prefix(slice: &Slice, shape: &[usize]) -> Option<usize> {
    let mut kept = shape[1];
    let mut seen_axis_1 = false;
    for (i, &axis) in slice.axes.iter().enumerate() {
        let (start, end, step) = (
            *slice.starts.get(i)?,
            *slice.ends.get(i)?,
            *slice.steps.get(i)?,
        );
        let dim = *shape.get(axis)? as i64;
        if start != 0 || step != 1 {
            return None;
        }
        if axis == 1 {
            if seen_axis_1 || end <= 0 {
                return None;
            }
            seen_axis_1 = true;
            kept = end.min(dim) as usize;
        } else if end < dim {
            return None;
        }
    }
    Some(kept)
}

fn fuse_one(g: &mut Graph, concat: NodeId) -> bool {
    let concat_node = g.node(concat);
    let [p, q] = concat_node.inputs[..] else {
        return false;
    };
    let concat_out = concat_node.outputs[0];
    let out_shape = g.value(concat_out).ty.shape.clone();
    let (p_shape, q_shape) = (g.value(p).ty.shape.clone(), g.value(q).ty.shape.clone());
    if out_shape.len() != 4 || p_shape.len() != 4 || q_shape.len() != 4 {
        return false;
    }
    let (Some((p_node, p_n)), Some((q_node, q_n))) = (producer(g, p), producer(g, q)) else {
        return false;
    };
    let (Some(primary), Some(cheap)) = (conv_like(p_n), conv_like(q_n)) else {
        return false;
    };
    let (c_p, c_q) = (p_shape[1], q_shape[1]);

    // The cheap conv: depthwise over p, stride 1, "same" symmetric padding.
    let [top, left, bottom, right] = cheap.conv.pads;
    let cheap_ok = cheap.x == p
        && cheap.conv.group == c_p
        && c_q % c_p == 0
        && cheap.conv.strides == [1, 1]
        && top == bottom
        && left == right
        && p_shape[2..] == q_shape[2..];
    if !cheap_ok {
        return false;
    }

    // p feeds exactly the cheap conv and the concat; q only the concat.
    let mut p_uses = g.consumers(p);
    p_uses.sort();
    let mut expected = vec![(q_node, 0), (concat, 0)];
    expected.sort();
    if g.is_output(p) || p_uses != expected || !only_used_by(g, q, concat) {
        return false;
    }

    // An optional Slice keeping a channel prefix.
    let (root, out_channels) = match sole_use(g, concat_out) {
        Some((s, 0)) if matches!(g.node(s).op, Op::Slice(_)) => {
            let Op::Slice(slice) = &g.node(s).op else {
                unreachable!("matched above")
            };
            match slice_prefix(slice, &out_shape) {
                Some(kept) => (s, kept),
                None => return false,
            }
        }
        _ => (concat, c_p + c_q),
    };
    if out_channels <= c_p || out_channels > c_p + c_q {
        return false;
    }

    let name = g.node(root).name.clone();
    let b_p = bias_or_zeros(g, &primary, &g.node(p_node).name.clone());
    let b_q = bias_or_zeros(g, &cheap, &g.node(q_node).name.clone());
    let op = Op::Ghost(Ghost {
        primary: primary.conv,
        primary_act: primary.act,
        cheap: cheap.conv,
        cheap_act: cheap.act,
        out_channels,
        residual: false,
    });
    rewrite_root(
        g,
        root,
        op,
        vec![primary.x, primary.w, b_p, cheap.w, b_q],
        name,
    );
    let mut absorbed = vec![];
    if root != concat {
        absorbed.push(concat);
    }
    absorbed.extend([q_node, p_node]);
    absorb_nodes(g, root, &absorbed);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(axes: &[usize], starts: &[i64], ends: &[i64], steps: &[i64]) -> Slice {
        Slice {
            axes: axes.to_vec(),
            starts: starts.to_vec(),
            ends: ends.to_vec(),
            steps: steps.to_vec(),
        }
    }

    #[test]
    fn slice_prefix_accepts_only_channel_prefixes() {
        let shape = [1, 24, 8, 8];
        assert_eq!(
            slice_prefix(&slice(&[1], &[0], &[23], &[1]), &shape),
            Some(23)
        );
        assert_eq!(
            slice_prefix(&slice(&[1], &[0], &[99], &[1]), &shape),
            Some(24)
        );
        assert_eq!(slice_prefix(&slice(&[], &[], &[], &[]), &shape), Some(24));
        // Whole other axes are fine, cut ones are not.
        assert_eq!(
            slice_prefix(&slice(&[2, 1], &[0, 0], &[8, 20], &[1, 1]), &shape),
            Some(20)
        );
        assert_eq!(slice_prefix(&slice(&[2], &[0], &[4], &[1]), &shape), None);
        // Not a prefix, a stride, or axis 1 twice.
        assert_eq!(slice_prefix(&slice(&[1], &[1], &[24], &[1]), &shape), None);
        assert_eq!(slice_prefix(&slice(&[1], &[0], &[24], &[2]), &shape), None);
        assert_eq!(
            slice_prefix(&slice(&[1, 1], &[0, 0], &[20, 20], &[1, 1]), &shape),
            None
        );
        assert_eq!(slice_prefix(&slice(&[1], &[0], &[0], &[1]), &shape), None);
    }
}
