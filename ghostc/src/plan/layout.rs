//! Channel layout of every activation in the generated code.
//!
//! Activations are stored NCHW8c: channels in blocks of 8 lanes, `[blocks][H][W][8]` per image.
//! A [`ChannelLayout`] says where each *logical* (ONNX) channel sits among the *physical* lanes
//! `0 .. blocks * 8`; lanes no logical channel maps to are padding. Layouts are chosen by the
//! producer:
//! - a Ghost module writes its primary half at lanes `0 .. c1` and its cheap half from the next
//!   block boundary on, so the Concat and the Slice that follow it in ONNX cost nothing;
//! - per-channel ops (depthwise conv, SE, activations, pooling) keep their input's layout;
//! - a channel shuffle (ShuffleNet) permutes its input's layout and moves no data: its output
//!   is the same buffer, read through the permuted map; so is a channel Slice read only by
//!   Concats (ShuffleNet's pass-through half), whose layout is its lanes of the input;
//! - channel-mixing ops (conv, linear) can emit any layout for free, because ghostc permutes
//!   their weight rows at compile time; they emit a dense layout unless a residual add needs
//!   theirs to match a Ghost's split layout.
//!
//! Consumers permute and zero-pad their weight columns to the physical order, so a tensor is
//! never reordered at run time except where two layouts meet in an elementwise op.

use std::collections::HashMap;

use crate::ir::{Graph, Op, ValueId};

/// Where each logical channel of a tensor lives among `blocks * 8` physical lanes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelLayout {
    pub blocks: usize,
    /// `phys[logical]`, distinct lanes; increasing except after a channel shuffle.
    pub phys: Vec<usize>,
}

impl ChannelLayout {
    /// Channels `0..c` at lanes `0..c`, padded to a whole block.
    pub fn dense(c: usize) -> Self {
        ChannelLayout {
            blocks: c.div_ceil(8),
            phys: (0..c).collect(),
        }
    }

    /// A Ghost output: `c1` primary channels, then `c2` cheap channels from the next block on.
    pub fn split(c1: usize, c2: usize) -> Self {
        let b1 = c1.div_ceil(8);
        let phys = (0..c1).chain((0..c2).map(|j| b1 * 8 + j)).collect();
        ChannelLayout {
            blocks: b1 + c2.div_ceil(8),
            phys,
        }
    }

    /// The layout of `ChannelShuffle { groups }` applied to a tensor in this layout: output
    /// channel `i * groups + j` is input channel `j * (C / groups) + i`, at that channel's lane.
    pub fn shuffled(&self, groups: usize) -> Self {
        let c = self.channels();
        let per = c / groups;
        ChannelLayout {
            blocks: self.blocks,
            phys: (0..c)
                .map(|o| self.phys[(o % groups) * per + o / groups])
                .collect(),
        }
    }

    pub fn channels(&self) -> usize {
        self.phys.len()
    }

    pub fn lanes(&self) -> usize {
        self.blocks * 8
    }

    pub fn is_dense(&self) -> bool {
        self.phys.iter().enumerate().all(|(i, &p)| i == p)
    }

    /// Spreads per-logical-channel values (e.g. a bias) over the physical lanes; padding gets
    /// `fill`.
    pub fn scatter(&self, logical: &[f32], fill: f32) -> Vec<f32> {
        let mut out = vec![fill; self.lanes()];
        for (&p, &v) in self.phys.iter().zip(logical) {
            out[p] = v;
        }
        out
    }

    /// A `[channels][row]` matrix (logical channel order) as `[lanes][row]`: row `c` moved to
    /// lane `phys[c]`, the padding lanes' rows zero.
    pub fn scatter_rows(&self, logical: &[f32], row: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.lanes() * row];
        for (c, &p) in self.phys.iter().enumerate() {
            out[p * row..(p + 1) * row].copy_from_slice(&logical[c * row..(c + 1) * row]);
        }
        out
    }
}

impl ChannelLayout {
    /// A logical `[channels][pixels]` tensor (one image, NCHW) in this layout's blocked form
    /// `[blocks][pixels][8]`, the padding lanes zero.
    pub fn blocked(&self, logical: &[f32], pixels: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.lanes() * pixels];
        for (c, &lane) in self.phys.iter().enumerate() {
            let block = &mut out[(lane / 8) * pixels * 8..][..pixels * 8];
            for (p, &v) in logical[c * pixels..(c + 1) * pixels].iter().enumerate() {
                block[p * 8 + lane % 8] = v;
            }
        }
        out
    }
}

/// Channel count of a value when it is an activation the layout applies to (rank 2 `[N, C]` or
/// rank 4 `[N, C, H, W]`, f32, not a constant).
fn channels(g: &Graph, v: ValueId) -> Option<usize> {
    let value = g.value(v);
    let rank_ok = matches!(value.ty.shape.len(), 2..=4);
    (rank_ok && value.ty.dtype.is_float() && value.constant().is_none()).then(|| value.ty.shape[1])
}

/// Whether `v` is read only by channel Concats (and is not a model output).
pub(crate) fn concat_only(g: &Graph, v: ValueId) -> bool {
    let readers = g.consumers(v);
    !g.is_output(v)
        && !readers.is_empty()
        && readers
            .iter()
            .all(|&(n, _)| matches!(g.node(n).op, Op::Concat { axis: 1 }))
}

/// The first channel of a Slice of `c` channels along axis 1 with step 1, if it is one.
pub fn view_range(s: &crate::ir::Slice, c: usize) -> Option<usize> {
    let start = usize::try_from(*s.starts.first()?).ok()?;
    (s.axes == [1] && s.steps == [1] && usize::try_from(s.ends[0]).ok()? == start + c)
        .then_some(start)
}

fn is_depthwise(op: &Op, g: &Graph, input: ValueId) -> bool {
    let conv = match op {
        Op::FusedConv(f) => &f.conv,
        Op::Conv(c) => c,
        _ => return false,
    };
    channels(g, input).is_some_and(|c| conv.group == c && c > 1)
}

/// Chooses a layout for every activation value (ranks 2 and 4). Values absent from the map are
/// not activations (constants, shape tensors) or have another rank, and are stored plainly.
pub fn assign(g: &Graph) -> HashMap<ValueId, ChannelLayout> {
    let order = g
        .topo_order()
        .unwrap_or_else(|_| g.nodes.node_indices().collect());
    // Residual inputs of Ghost modules: their producer should adopt the Ghost's split layout.
    let mut wanted: HashMap<ValueId, ChannelLayout> = HashMap::new();
    for &n in &order {
        let node = g.node(n);
        if let Op::Ghost(gh) = &node.op {
            if gh.residual {
                let c1 = g.value(node.inputs[1]).ty.shape[0];
                let layout = ChannelLayout::split(c1, gh.out_channels - c1);
                wanted.insert(node.inputs[5], layout);
            }
        }
    }
    let mut layouts: HashMap<ValueId, ChannelLayout> = HashMap::new();
    for &v in &g.inputs {
        if let Some(c) = channels(g, v) {
            layouts.insert(v, ChannelLayout::dense(c));
        }
    }
    for &n in &order {
        let node = g.node(n);
        let first_in = node.inputs.first().and_then(|v| layouts.get(v)).cloned();
        for (slot, &out) in node.outputs.iter().enumerate() {
            let Some(c) = channels(g, out) else { continue };
            let layout = match &node.op {
                Op::Ghost(gh) => {
                    let c1 = g.value(node.inputs[1]).ty.shape[0];
                    ChannelLayout::split(c1, gh.out_channels - c1)
                }
                Op::FusedConv(f) if f.residual => layouts
                    .get(node.inputs.last().expect("residual input"))
                    .cloned()
                    .unwrap_or(ChannelLayout::dense(c)),
                // A channel multiplier > 1 (group == cin, cout = m * cin) changes the channel
                // count: such a conv gets a dense layout like any other.
                op if is_depthwise(op, g, node.inputs[0])
                    && first_in.as_ref().is_none_or(|l| l.channels() == c) =>
                {
                    first_in.clone().unwrap_or(ChannelLayout::dense(c))
                }
                Op::Slice(sl) if slot == 0 && concat_only(g, out) => {
                    match (&first_in, view_range(sl, c)) {
                        // Read only by Concats (which copy lane by lane anyway): a view of the
                        // input's lanes, no copy of its own.
                        (Some(lx), Some(start)) => ChannelLayout {
                            blocks: lx.blocks,
                            phys: lx.phys[start..start + c].to_vec(),
                        },
                        _ => ChannelLayout::dense(c),
                    }
                }
                Op::ChannelShuffle { groups } if first_in.is_some() => first_in
                    .as_ref()
                    .expect("checked by the guard")
                    .shuffled(*groups),
                Op::FusedConv(_) | Op::Conv(_) | Op::Linear { .. } | Op::Gemm(_) | Op::MatMul => {
                    wanted.get(&out).cloned().unwrap_or(ChannelLayout::dense(c))
                }
                // Per-channel ops keep the layout of their (first) input when channels agree.
                Op::SqueezeExcite(_)
                | Op::DfcGate(_)
                | Op::Activation(_)
                | Op::BatchNorm(_)
                | Op::GlobalAveragePool
                | Op::Reduce(_)
                | Op::Pool(_)
                | Op::Resize(_)
                | Op::Pad(_)
                | Op::Binary(_)
                | Op::Unary(_)
                | Op::Reshape { .. }
                    if slot == 0 && first_in.as_ref().is_some_and(|l| l.channels() == c) =>
                {
                    first_in.clone().expect("checked above")
                }
                _ => ChannelLayout::dense(c),
            };
            layouts.insert(out, layout);
        }
    }
    layouts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_layout_starts_cheap_half_on_a_block_boundary() {
        let l = ChannelLayout::split(12, 12);
        assert_eq!(l.blocks, 4);
        assert_eq!(l.phys[11], 11);
        assert_eq!(l.phys[12], 16);
        assert_eq!(l.phys[23], 27);
        assert!(!l.is_dense());
        assert!(ChannelLayout::split(8, 8).is_dense());
        // ShuffleNet's two groups over a Ghost-style split: output channels alternate halves.
        let s = l.shuffled(2);
        assert_eq!(s.blocks, 4);
        assert_eq!(&s.phys[..4], &[0, 16, 1, 17]);
        assert_eq!(s.phys[23], 27);
        assert_eq!(
            l.scatter(&[1.0; 24], 0.0)
                .iter()
                .filter(|&&x| x == 1.0)
                .count(),
            24
        );
    }
}
