//! GhostNetV2's DFC attention (`DfcGate`): the gate is computed at the pooled resolution —
//! average pool of `x`, the 1x1 conv (`pointwise`), the depthwise 1x5 and 5x1 convs
//! (`depthwise_general`) — and applied by one `dfc_gate` call that takes the sigmoid of the
//! quarter-resolution gate in place and multiplies `y` by it through the nearest-upsample index
//! mapping. No full-resolution gate tensor and no separate Sigmoid, Resize or Mul steps.
//!
//! `y` is multiplied in place when the gate is its only reader (the usual case: `y` is the
//! Ghost module's output); otherwise it is copied first.
//!
//! When `y` is the output of the Ghost module lowered just before (its only reader being the
//! gate), that module's step moves after the gate's steps and becomes `ghost_gated`: the gate
//! is applied in the module's store epilogues, and there is no `dfc_gate` step at all; the
//! last gate conv then takes the sigmoid in its own epilogue. The module reads only `x` and
//! its weights, which the gate's steps do not write.
//!
//! Deliberately not done here: gates `fuse_dfc` does not produce (other gate functions, convs
//! other than 1x1 and depthwise), which are reported as unsupported.

use ghost_runtime::{
    self as rt, CoordMode, DfcShape, NearestMode, PointwiseShape, PoolKind, PoolShape,
};

use super::conv::DwGeneral;
use super::{ChannelLayout, LowerError, Lowerer};
use crate::ir::{self, Activation, NodeId};
use crate::plan::program::*;

/// The runtime's nearest-upsample mapping of a `Resize`.
fn nearest_of(r: &ir::Resize) -> Option<(CoordMode, NearestMode)> {
    let coord = match r.coord {
        ir::CoordTransform::HalfPixel => CoordMode::HalfPixel,
        ir::CoordTransform::PytorchHalfPixel => CoordMode::PytorchHalfPixel,
        ir::CoordTransform::AlignCorners => CoordMode::AlignCorners,
        ir::CoordTransform::Asymmetric => CoordMode::Asymmetric,
        ir::CoordTransform::TfHalfPixelForNearest => return None,
    };
    let nearest = match r.nearest {
        ir::NearestMode::RoundPreferFloor => NearestMode::RoundPreferFloor,
        ir::NearestMode::RoundPreferCeil => NearestMode::RoundPreferCeil,
        ir::NearestMode::Floor => NearestMode::Floor,
        ir::NearestMode::Ceil => NearestMode::Ceil,
    };
    (r.mode == ir::ResizeMode::Nearest).then_some((coord, nearest))
}

impl Lowerer<'_> {
    pub(super) fn lower_dfc(&mut self, n: NodeId, d: &ir::DfcGate) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let (y, x, out) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let p = &d.pool;
        let consts: Option<Vec<&[f32]>> =
            node.inputs[2..].iter().map(|&v| self.constant(v)).collect();
        let (Activation::Sigmoid, Some(mapping), Some(c), true) = (
            d.gate,
            nearest_of(&d.resize),
            consts,
            p.kind == ir::PoolKind::Avg && p.dilations == [1, 1] && !p.ceil_mode,
        ) else {
            self.unsupported(
                n,
                "DFC gate needs an average pool, a sigmoid gate, a nearest resize and constant \
                 weights",
            );
            return Ok(());
        };
        // The Ghost module writing `y` just before, read by nothing else: its step moves after
        // the gate's and applies the gate in its band loop.
        let fused_ghost = self.take_gated_ghost(y);
        let ly = self.layout(y);
        let lx = self.layout(x);
        let nb = self.shape(y)[0];
        let (in_h, in_w) = self.hw(x);
        let (kh, kw) = (p.kernel[0], p.kernel[1]);
        let pooled = PoolShape {
            blocks: lx.blocks,
            in_h,
            in_w,
            kh,
            kw,
            stride: p.strides,
            pads: p.pads,
        };
        let mut hw = (pooled.out_h(), pooled.out_w());
        let mut a = self.new_buf(lx.lanes() * hw.0 * hw.1);
        let mut la = lx;
        self.push(
            n,
            format!("DFC gate: avg_pool {kh}x{kw} @ {in_h}x{in_w}"),
            Kernel::Pool {
                kind: PoolKind::Avg {
                    count_include_pad: p.count_include_pad,
                },
                shape: pooled,
                src: View::at(self.loc[&x], 0),
                dst: View::at(a, 0),
            },
        );
        self.set_last(0, vec![nb, la.channels(), hw.0, hw.1]);
        let is_dw: Vec<bool> = d
            .convs
            .iter()
            .enumerate()
            .map(|(i, conv)| {
                let ws = self.shape(node.inputs[2 + 2 * i]);
                ws[1] == 1 && conv.group == ws[0]
            })
            .collect();
        let mut activated = false;
        for (i, conv) in d.convs.iter().enumerate() {
            let (w, b) = (c[2 * i], c[2 * i + 1]);
            let ws = self.shape(node.inputs[2 + 2 * i]).to_vec();
            let cout = ws[0];
            let cin = la.channels();
            let pixels = hw.0 * hw.1;
            // Depthwise convs keep their input's layout; a channel-mixing conv followed only by
            // depthwise ones writes y's layout (so the gate needs no remap), else a dense one.
            let depthwise = is_dw[i] && cout == cin;
            let lo = if depthwise {
                la.clone()
            } else if is_dw[i + 1..].iter().all(|&d| d) && cout == ly.channels() {
                ly.clone()
            } else {
                ChannelLayout::dense(cout)
            };
            let out_hw = conv_out_hw(conv, hw);
            // The sigmoid goes into the last conv's epilogue when the Ghost module applies the
            // gate and no remap follows: its divisions overlap the conv's multiply-adds, where
            // as a pass of its own the divider bounded it (13 % of a gated 56x56 module).
            // Same function, same bits, as the kernel's own sigmoid pass.
            activated = fused_ghost.is_some() && i + 1 == d.convs.len() && lo == ly;
            let act = if activated {
                ghost_runtime::Activation::Sigmoid
            } else {
                ghost_runtime::Activation::None
            };
            let dst = self.new_buf(lo.lanes() * out_hw.0 * out_hw.1);
            let macs = (out_hw.0 * out_hw.1 * cout * ws[1..].iter().product::<usize>()) as u64;
            if depthwise {
                let what = format!(
                    "DFC gate: depthwise {}x{} {cout}ch @ {}x{}{}",
                    conv.kernel[0],
                    conv.kernel[1],
                    hw.0,
                    hw.1,
                    if activated { " + sigmoid" } else { "" }
                );
                let dw = DwGeneral {
                    conv,
                    w,
                    b,
                    layout: &la,
                    in_hw: hw,
                };
                let ep = Epilogue::act(act);
                self.push_depthwise_general(n, what, dw, View::at(a, 0), View::at(dst, 0), ep)?;
            } else if conv.kernel == [1, 1]
                && conv.strides == [1, 1]
                && conv.pads == [0; 4]
                && conv.dilations == [1, 1]
                && conv.group == 1
            {
                let wp = Self::permute_matrix(w, cout, cin, &lo, &la);
                let bp = lo.scatter(b, 0.0);
                let wr = self.pack_pointwise(&node.name, &wp, &bp, la.lanes(), lo.lanes())?;
                self.push(
                    n,
                    format!(
                        "DFC gate: pointwise {cin} -> {cout} @ {}x{}{}",
                        hw.0,
                        hw.1,
                        if activated { " + sigmoid" } else { "" }
                    ),
                    Kernel::Pointwise {
                        w: wr,
                        w_scaled: None,
                        shape: PointwiseShape {
                            k_blocks: la.blocks,
                            n_blocks: lo.blocks,
                            pixels,
                        },
                        src: View::at(a, 0),
                        dst: View::at(dst, 0),
                        epilogue: Epilogue::act(act),
                    },
                );
            } else {
                self.unsupported(n, "DFC gate conv other than 1x1 or depthwise");
                return Ok(());
            }
            self.set_last(macs, vec![nb, cout, out_hw.0, out_hw.1]);
            (a, la, hw) = (dst, lo, out_hw);
        }
        if la != ly {
            // Only depthwise convs after the pool: x's layout is not y's.
            let dst = self.new_buf(ly.lanes() * hw.0 * hw.1);
            let pairs = la
                .phys
                .iter()
                .zip(&ly.phys)
                .map(|(&f, &t)| (f, t))
                .collect();
            self.push(
                n,
                "DFC gate: remap to the gated tensor's layout".into(),
                Kernel::Remap {
                    pairs,
                    pixels: hw.0 * hw.1,
                    src: a,
                    dst,
                    dst_len: ly.lanes() * hw.0 * hw.1,
                    clear: true,
                },
            );
            a = dst;
        }
        let (h, w) = self.hw(y);
        let (coord, nearest) = mapping;
        let shape = DfcShape {
            blocks: ly.blocks,
            gate_h: hw.0,
            gate_w: hw.1,
            h,
            w,
            coord,
            nearest,
        };
        if let Some(mut step) = fused_ghost {
            let Kernel::Ghost {
                gate,
                scratch,
                shape: gs,
                ..
            } = &mut step.kernel
            else {
                unreachable!("take_gated_ghost returns Ghost steps")
            };
            *gate = Some((a, shape, activated));
            // The gated module also keeps its pre-gate x1 rows and a gate offset per pixel.
            let Loc::Buf(b) = *scratch else {
                unreachable!("a Ghost step's scratch is its own buffer")
            };
            self.buffers[b] = rt::ghost_gated_scratch_len(*gs).max(1);
            step.what.push_str(", DFC gate applied in its epilogue");
            self.loc.insert(out, self.loc[&y]);
            self.steps.push(step);
            return Ok(());
        }
        let readers = self.g.consumers(y);
        let dst = if readers.len() == 1 && !self.g.is_output(y) {
            let loc = self.loc[&y];
            self.loc.insert(out, loc);
            loc
        } else {
            let dst = self.out_buf(out);
            let len = self.blocked_len(y, &ly);
            self.push_copy(n, "DFC gate", self.loc[&y], dst, len);
            dst
        };
        self.push(
            n,
            format!(
                "DFC gate: sigmoid, nearest {}x{} -> {h}x{w}, multiply",
                hw.0, hw.1
            ),
            Kernel::DfcGate {
                shape,
                gate: a,
                y: View::at(dst, 0),
            },
        );
        self.steps.last_mut().expect("just pushed").macs = 0;
        Ok(())
    }

    /// Removes and returns the last step if it is the Ghost module that writes `y` (whole, no
    /// channel sums, no gate yet) and `y` has no reader but the gate and is no model output:
    /// that module can apply the gate itself. Its inputs stay unchanged while the gate's
    /// steps run (they write only new buffers), so it may run after them.
    fn take_gated_ghost(&mut self, y: ir::ValueId) -> Option<Step> {
        let loc = *self.loc.get(&y)?;
        let producer = self.g.producer(y)?;
        if self.g.consumers(y).len() != 1 || self.g.is_output(y) {
            return None;
        }
        let blocks = self.layout(y).blocks;
        let last = self.steps.last()?;
        let fusable = last.node == Some(producer)
            && matches!(
                &last.kernel,
                Kernel::Ghost { dst, channel_sums: None, gate: None, shape, .. }
                    if *dst == View::at(loc, 0) && 2 * shape.half_blocks == blocks
            );
        if fusable {
            self.steps.pop()
        } else {
            None
        }
    }

    /// The MACs and output shape of the step just pushed: one stage of the gate, not the
    /// whole node `push` credits.
    fn set_last(&mut self, macs: u64, out_shape: Vec<usize>) {
        let step = self.steps.last_mut().expect("just pushed");
        step.macs = macs;
        step.out_shape = out_shape;
    }
}

/// Output size of a conv on an `(h, w)` input (inference checked that it is positive).
fn conv_out_hw(c: &ir::Conv, (h, w): (usize, usize)) -> (usize, usize) {
    let out = |n: usize, k: usize, s: usize, d: usize, p0: usize, p1: usize| {
        (n + p0 + p1 - (d * (k - 1) + 1)) / s + 1
    };
    (
        out(
            h,
            c.kernel[0],
            c.strides[0],
            c.dilations[0],
            c.pads[0],
            c.pads[2],
        ),
        out(
            w,
            c.kernel[1],
            c.strides[1],
            c.dilations[1],
            c.pads[1],
            c.pads[3],
        ),
    )
}
