//! Turns channels-last regions back into channels-first ops.
//!
//! PyTorch code written for NHWC (ConvNeXt's blocks, `LayerNorm2d`) exports as
//! `Transpose(0, 2, 3, 1)`, then ops on the last axis (LayerNormalization over it, `Linear`
//! as a MatMul by a `[C, M]` matrix, elementwise math), then `Transpose(0, 3, 1, 2)` back.
//! Each op of such a region has an NCHW twin: LayerNormalization over the last axis is a
//! `ChannelNorm`, the MatMul a 1x1 `Conv` (its weight transposed to `[M, C, 1, 1]`), a
//! constant broadcast along the last axis a `[C, 1, 1]` constant, and elementwise ops do not
//! care. So the region is rewritten in place, its values take their NCHW shapes and both
//! Transposes go: the planner then sees convs, norms and activations it lowers, and no data
//! moves between layouts.
//!
//! Conditions: the entry Transpose's input is rank 4; every reader of a region value is one of
//! LayerNormalization with `axis` 3 and constant scale/bias per channel, MatMul by a constant
//! rank-2 matrix (as its first operand), a Binary op whose other operand is in the region or a
//! constant that is one value or one per channel along the last axis, an Activation or Unary
//! op, or an exit `Transpose(0, 3, 1, 2)`; no region value is a graph output. Anything else
//! leaves the region as it is (reported by the planner as before). An exit whose output is a
//! graph output becomes an Identity, so the output keeps its name.
//!
//! Always on, like `channel_shuffle`: the Transposes across the channel axis have no
//! lowering, so without this pass such a model does not compile.
//!
//! Deliberately not done here: regions entered by anything but that Transpose (an NHWC graph
//! input), and channels-last ops other than those above (a Softmax over channels, a Reshape).

use std::collections::{BTreeSet, VecDeque};

use crate::ir::{Conv, Graph, NodeId, Op, ValueId};

use super::pattern::{add_f32_const, const_f32, per_last_axis, transposed};
use super::{sweep, Pass, PassError};

const TO_LAST: [usize; 4] = [0, 2, 3, 1];
const TO_FIRST: [usize; 4] = [0, 3, 1, 2];

/// See the module documentation.
pub struct ChannelsFirst;

impl Pass for ChannelsFirst {
    fn name(&self) -> &'static str {
        "channels_first"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, PassError> {
        sweep(self, g, |g, n| match region(g, n) {
            Some(r) => {
                rewrite(g, n, &r);
                true
            }
            None => false,
        })
    }
}

/// A channels-last region: its nodes (in discovery order, all but the exits) and exits.
struct Region {
    nodes: Vec<NodeId>,
    exits: Vec<NodeId>,
    values: BTreeSet<ValueId>,
}

fn is_transpose(g: &Graph, n: NodeId, perm: &[usize]) -> bool {
    matches!(&g.node(n).op, Op::Transpose { perm: p } if p[..] == *perm)
}

/// The region entered by the Transpose `entry`, if every reader qualifies.
fn region(g: &Graph, entry: NodeId) -> Option<Region> {
    let node = g.node(entry);
    if !is_transpose(g, entry, &TO_LAST) || g.value(node.inputs[0]).ty.shape.len() != 4 {
        return None;
    }
    let mut r = Region {
        nodes: Vec::new(),
        exits: Vec::new(),
        values: BTreeSet::from([node.outputs[0]]),
    };
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([node.outputs[0]]);
    while let Some(v) = queue.pop_front() {
        if g.is_output(v) || g.value(v).ty.shape.len() != 4 {
            return None;
        }
        for (reader, slot) in g.consumers(v) {
            if !seen.insert(reader) {
                continue;
            }
            let rn = g.node(reader);
            if is_transpose(g, reader, &TO_FIRST) {
                r.exits.push(reader);
                continue;
            }
            let ok = match &rn.op {
                Op::LayerNorm { axis: 3, .. } => slot == 0,
                Op::MatMul => slot == 0 && g.value(rn.inputs[1]).ty.shape.len() == 2,
                Op::Binary(_) | Op::Activation(_) | Op::Unary(_) => true,
                _ => false,
            };
            if !ok || rn.outputs.len() != 1 {
                return None;
            }
            r.nodes.push(reader);
            r.values.insert(rn.outputs[0]);
            queue.push_back(rn.outputs[0]);
        }
    }
    // Every operand from outside the region must be a constant the NCHW twin can take.
    for &n in &r.nodes {
        let node = g.node(n);
        let channels = |v: ValueId| g.value(v).ty.shape.last().copied().unwrap_or(0);
        let ok = match &node.op {
            Op::LayerNorm { .. } => {
                let c = channels(node.inputs[0]);
                node.inputs[1..]
                    .iter()
                    .all(|&p| per_last_axis(g, p, c).is_some())
            }
            Op::MatMul => const_f32(g, node.inputs[1]).is_some(),
            Op::Binary(_) => node.inputs.iter().all(|&v| {
                r.values.contains(&v)
                    || (g.value(v).ty.shape.len() <= 4
                        && per_last_axis(g, v, channels(node.outputs[0])).is_some())
            }),
            _ => node.inputs.iter().all(|v| r.values.contains(v)),
        };
        if !ok {
            return None;
        }
    }
    Some(r)
}

/// `[N, H, W, C]` as `[N, C, H, W]`.
fn to_first(shape: &[usize]) -> Vec<usize> {
    TO_FIRST.iter().map(|&a| shape[a]).collect()
}

fn rewrite(g: &mut Graph, entry: NodeId, r: &Region) {
    let (x, entry_out) = (g.node(entry).inputs[0], g.node(entry).outputs[0]);
    for &v in &r.values {
        if v != entry_out {
            let shape = to_first(&g.value(v).ty.shape);
            g.value_mut(v).ty.shape = shape;
        }
    }
    g.replace_all_uses(entry_out, x);
    g.remove_node(entry);
    for &n in &r.nodes {
        let node = g.node(n).clone();
        let channels = g.value(node.outputs[0]).ty.shape[1];
        let name = node.name.clone();
        match node.op {
            Op::LayerNorm { epsilon, .. } => {
                let param = |g: &Graph, slot: usize, default: f32| match node.inputs.get(slot) {
                    Some(&p) => per_last_axis(g, p, channels).expect("region() checked it"),
                    None => vec![default; channels],
                };
                let (gamma, beta) = (param(g, 1, 1.0), param(g, 2, 0.0));
                let gamma = add_f32_const(g, format!("{name}.gamma"), vec![channels], gamma);
                let beta = add_f32_const(g, format!("{name}.beta"), vec![channels], beta);
                let input = node.inputs[0];
                g.set_inputs(n, vec![input, gamma, beta]);
                g.node_mut(n).op = Op::ChannelNorm { epsilon };
            }
            Op::MatMul => {
                let w = node.inputs[1];
                let [k, m] = g.value(w).ty.shape[..] else {
                    unreachable!("region() checked the rank")
                };
                let wt = transposed(const_f32(g, w).expect("region() checked it"), k, m);
                let w = add_f32_const(g, format!("{name}.conv_weight"), vec![m, k, 1, 1], wt);
                let input = node.inputs[0];
                g.set_inputs(n, vec![input, w]);
                g.node_mut(n).op = Op::Conv(Conv {
                    kernel: [1, 1],
                    strides: [1, 1],
                    pads: [0; 4],
                    dilations: [1, 1],
                    group: 1,
                });
            }
            Op::Binary(_) => {
                for (slot, &v) in node.inputs.iter().enumerate() {
                    if r.values.contains(&v) || v == x {
                        continue;
                    }
                    if const_f32(g, v).is_some_and(|d| d.len() == 1) {
                        // One value broadcasts the same way in both layouts.
                        continue;
                    }
                    let data = per_last_axis(g, v, channels).expect("region() checked it");
                    let shape = vec![channels, 1, 1];
                    let c = add_f32_const(g, format!("{name}.channels_first_{slot}"), shape, data);
                    g.set_input(n, slot, c);
                }
            }
            _ => {}
        }
    }
    for &e in &r.exits {
        let (input, out) = (g.node(e).inputs[0], g.node(e).outputs[0]);
        if g.is_output(out) {
            g.node_mut(e).op = Op::Identity;
        } else {
            g.replace_all_uses(out, input);
            g.remove_node(e);
        }
    }
}
