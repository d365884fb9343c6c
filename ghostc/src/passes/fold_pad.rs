//! Folds a zero `Pad` into the padding of the convs that read it.
//!
//! TF-style "SAME" exports (`tf_efficientnet_lite0`, and `F.pad` before a conv in PyTorch code)
//! write `Pad(x, [0, 0, t, l, 0, 0, b, r], constant 0) -> Conv(pads = 0)`; a conv already pads
//! with zeros, so the pair is the conv alone with pads `[t + pt, l + pl, b + pb, r + pr]` and no
//! padded copy of the tensor is made.
//!
//! Conditions: constant mode with value 0, a rank-4 tensor, no padding (or cropping) of batch
//! or channels, no negative pads, the Pad's output is not a graph output and every reader is a
//! `Conv`/`FusedConv` reading it as its data input (slot 0). The Pad node is removed and each
//! conv reads the Pad's input.
//!
//! Deliberately not done here: reflect/edge pads and a non-zero constant (not what a conv's
//! padding computes). An unfolded zero pad is lowered as its own step; other modes are
//! reported as unsupported.

use crate::ir::{Graph, Op};

use super::{sweep, Pass, PassError};

/// See the module documentation. Does nothing when `enabled` is off.
pub struct FoldPad {
    pub enabled: bool,
}

impl Pass for FoldPad {
    fn name(&self) -> &'static str {
        "fold_pad"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        if !self.enabled {
            return Ok(false);
        }
        sweep(self, g, |g, n| {
            let node = g.node(n);
            let Op::Pad(p) = &node.op else {
                return false;
            };
            let (x, y) = (node.inputs[0], node.outputs[0]);
            // Rank 4 is implied: `zero_hw` takes exactly eight pad amounts, and inference holds
            // a Pad to two per axis of its input (at import; the verifier re-checks after passes).
            let Some(add) = p.zero_hw() else {
                return false;
            };
            if g.is_output(y) {
                return false;
            }
            let readers = g.consumers(y);
            let all_convs = !readers.is_empty()
                && readers.iter().all(|&(c, slot)| {
                    slot == 0 && matches!(g.node(c).op, Op::Conv(_) | Op::FusedConv(_))
                });
            if !all_convs {
                return false;
            }
            for (c, _) in readers {
                let conv = match &mut g.node_mut(c).op {
                    Op::Conv(conv) => conv,
                    Op::FusedConv(f) => &mut f.conv,
                    _ => unreachable!("checked above"),
                };
                for (p, a) in conv.pads.iter_mut().zip(add) {
                    *p += a;
                }
                g.set_input(c, 0, x);
            }
            g.remove_node(n);
            true
        })
    }
}
