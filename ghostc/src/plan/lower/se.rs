//! Squeeze-and-excitation: the squeeze (channel means, taken from the producer's epilogue when
//! it can), the gate (`se_gate`: reduce, inner activation, expand, gate nonlinearity, each
//! activation in its FC's epilogue), and its application:
//! folded into the single 1x1 conv that reads the gated tensor (`ScalePacked` scales that
//! conv's packed weights) when that costs less than a per-channel multiply of the activations
//! (`gate_foldable`: `n_pad` weights against `h * w` pixels per input channel, so at 7x7 the
//! multiply wins and at 14x14 and above the fold does, in EfficientNet-B0 and GhostNet), or the
//! multiply, in place on the SE input when nothing else reads it (`in_place_dst`), else on a
//! copy.
//!
//! Deliberately not done here: recognizing the SE pattern (the `fuse_squeeze_excite` pass).

use ghost_runtime::{self as rt, BinaryOp, SeActivations, SeShape};

use super::{act_of, ChannelLayout, LowerError, Lowerer};
use crate::ir::{self, NodeId, Op, ValueId};
use crate::plan::program::*;

/// Cost per float of scaling a 1x1 conv's packed weights by the gate (`ScalePacked`), and of
/// scaling the activations in place (`ChannelAssign` Mul), in picoseconds: both steps read,
/// multiply and write each float once, the weights from the blob, the activations just
/// written. Measured with `ghostc bench --profile` (1 thread, pinned) on torchvision
/// EfficientNet-B0 at 224x224 with every SE folded, then with none: 0.21-0.25 ns per weight
/// (1152x192 weights at 7x7: 51.4 us) and 0.20 ns per activation (1152x7x7: 11.3 us,
/// 144x56x56: 90.4 us); the consumer convs changed by at most 12 us either way.
const SCALE_WEIGHT_PS: usize = 230;
const SCALE_ACTIVATION_PS: usize = 200;

/// Whether scaling the packed weights of a 1x1 conv with `n_pad` (padded) output channels
/// costs less than scaling `pixels` pixels of its input; the input channels `k_pad` multiply
/// both sides, so they cancel.
fn fold_is_cheaper(n_pad: usize, pixels: usize) -> bool {
    n_pad.saturating_mul(SCALE_WEIGHT_PS) < pixels.saturating_mul(SCALE_ACTIVATION_PS)
}

impl Lowerer<'_> {
    pub(super) fn lower_se(&mut self, n: NodeId, se: &ir::SqueezeExcite) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let name = node.name.clone();
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let consts: Option<Vec<&[f32]>> = node.inputs[1..5]
            .iter()
            .map(|&v| self.constant(v))
            .collect();
        let (Some(inner), Some(gate_act), Some(c)) =
            (act_of(Some(se.act)), act_of(Some(se.gate)), consts)
        else {
            self.unsupported_as(
                n,
                &format!(
                    "inner activation {:?} or gate {:?} without an epilogue form, or weights computed at run time",
                    se.act, se.gate
                ),
                "epilogue activations (ReLU, SiLU, HardSwish, Sigmoid, HardSigmoid, Clip, ...) and constant weights",
            );
            return Ok(());
        };
        let lx = self.layout(x);
        let (r, ch) = (self.shape(node.inputs[1])[0], self.shape(node.inputs[1])[1]);
        let lr = ChannelLayout::dense(r);
        let reduce = Self::permute_matrix(c[0], r, ch, &lr, &lx);
        let reduce = self.pack_pointwise(
            &name,
            &reduce,
            &lr.scatter(c[1], 0.0),
            lx.lanes(),
            lr.lanes(),
        )?;
        let expand = Self::permute_matrix(c[2], ch, r, &lx, &lr);
        let expand = self.pack_pointwise(
            &name,
            &expand,
            &lx.scatter(c[3], 0.0),
            lr.lanes(),
            lx.lanes(),
        )?;
        let (h, w) = self.hw(x);
        let src = self.loc[&x];
        let means = self.new_buf(lx.lanes());
        // Squeeze: the producer's epilogue can sum channels as it stores x (it must be the step
        // just before, writing exactly x); otherwise a separate pooling pass.
        let slot = self
            .steps
            .last_mut()
            .and_then(|s| s.kernel.channel_sums_mut())
            .filter(|(dst, sums)| dst.loc == src && dst.block == 0 && sums.is_none());
        let inv_pixels = if let Some((_, sums)) = slot {
            *sums = Some(means);
            let at = self.steps.len() - 1;
            let zero = Step {
                nodes: vec![name.clone()],
                out_shape: vec![],
                node: Some(n),
                what: "squeeze: clear channel sums".into(),
                macs: 0,
                kernel: Kernel::Zero {
                    dst: means,
                    len: lx.lanes(),
                },
            };
            self.steps.insert(at, zero);
            1.0 / (h * w) as f32
        } else {
            let pool = Kernel::GlobalAvgPool {
                blocks: lx.blocks,
                pixels: h * w,
                src: View::at(src, 0),
                dst: means,
            };
            self.push(n, "squeeze: global average pool".into(), pool);
            1.0
        };
        let scratch = self.new_buf(lx.lanes() + lr.lanes());
        let gate = self.new_buf(lx.lanes());
        self.push(
            n,
            format!("excite: gate {ch} -> {r} -> {ch}"),
            Kernel::SeGate {
                reduce,
                expand,
                shape: SeShape {
                    c_blocks: lx.blocks,
                    r_blocks: lr.blocks,
                },
                inv_pixels,
                acts: SeActivations {
                    inner,
                    gate: gate_act,
                },
                sums: means,
                scratch,
                gate,
            },
        );
        if self.gate_foldable(y) {
            // The single 1x1 consumer scales its weights by the gate (W * diag(s)) instead.
            self.loc.insert(y, src);
            self.gated.insert(y, gate);
            return Ok(());
        }
        let dst = self.in_place_dst(n, x, y, src, "gating", lx.lanes() * h * w);
        self.push(
            n,
            "scale channels by the gate".into(),
            Kernel::ChannelAssign {
                op: BinaryOp::Mul,
                x: dst,
                blocks: lx.blocks,
                pixels: h * w,
                v: VecSrc::Arena(gate),
                act: rt::Activation::None,
            },
        );
        Ok(())
    }

    /// Whether an SE output `y` is better left un-materialized: its only reader is a 1x1 conv
    /// on more than one pixel (a Ghost primary or a pointwise conv) taking it as the data
    /// input, and scaling that conv's packed weights (`k_pad x n_pad` floats read and written
    /// per image) costs less than scaling the activations (`k_pad x h x w`, see
    /// [`SCALE_WEIGHT_PS`]).
    fn gate_foldable(&self, y: ValueId) -> bool {
        let readers = self.g.consumers(y);
        if readers.len() != 1 || self.g.is_output(y) || readers[0].1 != 0 {
            return false;
        }
        let (h, w) = self.hw(y);
        let pointwise = |c: &ir::Conv| {
            c.kernel == [1, 1]
                && c.strides == [1, 1]
                && c.pads == [0; 4]
                && c.group == 1
                && c.dilations == [1, 1]
        };
        let reader = self.g.node(readers[0].0);
        let is_pointwise = match &reader.op {
            Op::Ghost(gh) => pointwise(&gh.primary),
            Op::FusedConv(f) => pointwise(&f.conv),
            Op::Conv(c) => pointwise(c),
            _ => false,
        };
        // The weight's output channels (for a Ghost module, its primary conv's), padded to
        // whole blocks as the packed weight is.
        let Some(&cout) = reader.inputs.get(1).and_then(|&wv| self.shape(wv).first()) else {
            return false;
        };
        h * w > 1 && is_pointwise && fold_is_cheaper(cout.div_ceil(8) * 8, h * w)
    }

    /// For a 1x1 conv reading an SE-gated value: a step scaling its packed weights by the gate
    /// into a scratch buffer, which the conv then uses.
    pub(super) fn scaled_weights(
        &mut self,
        n: NodeId,
        x: ValueId,
        w: WRange,
        k_pad: usize,
        n_pad: usize,
    ) -> Option<Loc> {
        let gate = *self.gated.get(&x)?;
        let dst = self.new_buf(w.len);
        self.push(
            n,
            "fold the SE gate into the 1x1 weights".into(),
            Kernel::ScalePacked {
                w,
                k_pad,
                n_pad,
                scale: gate,
                dst,
            },
        );
        Some(dst)
    }
}
