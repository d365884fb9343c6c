//! Data movement: the user's NCHW input and output converted to and from NCHW8c, copies
//! between two channel layouts (`Remap`), and the ops that only move data: Reshape and Identity
//! (no step: the output aliases the input), Concat, Slice and Split on channels, Resize, a zero Pad
//! that no conv absorbed (`passes::FoldPad` folds the others).
//!
//! Deliberately not done here: avoiding the copies. Layouts are chosen so that a Ghost module's
//! Concat/Slice disappear before lowering sees them (`plan::layout`); what reaches this file
//! really moves.

use ghost_runtime::{CoordMode, NearestMode, ResizeMode, ResizeShape};

use super::conv::DwGeneral;
use super::quant;
use super::{ChannelLayout, LowerError, Lowerer};
use crate::ir::{self, NodeId, Op, ValueId};
use crate::plan::program::*;

impl Lowerer<'_> {
    /// A zero Pad of H and W (`[top, left, bottom, right]`) as a 1x1 depthwise identity with
    /// that padding: `depthwise_general` copies each pixel and writes zeros around it, in the
    /// input's layout.
    pub(super) fn lower_zero_pad(&mut self, n: NodeId, pads: [usize; 4]) -> Result<(), LowerError> {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let c = self.shape(x)[1];
        let conv = ir::Conv {
            kernel: [1, 1],
            strides: [1, 1],
            pads,
            dilations: [1, 1],
            group: c,
        };
        let layout = self.layout(y);
        let src = View::at(self.read_as(x, &layout, &node.name.clone()), 0);
        let dst = View::at(self.out_buf(y), 0);
        let (ones, zeros) = (vec![1.0; c], vec![0.0; c]);
        let dw = DwGeneral {
            conv: &conv,
            w: &ones,
            b: &zeros,
            layout: &layout,
            in_hw: self.hw(x),
        };
        let what = format!("zero pad {pads:?} {c}ch");
        self.push_depthwise_general(
            n,
            what,
            dw,
            src,
            dst,
            Epilogue::act(ghost_runtime::Activation::None),
        )
    }

    /// Model input `index`: read in place by a stem conv that is its only reader, otherwise
    /// converted to NCHW8c first.
    pub(super) fn lower_input(&mut self, index: usize, input: ValueId) {
        let g = self.g;
        // A dense conv (the stem) that is the input's only reader reads NCHW directly; anything
        // else gets the input converted to the blocked layout first.
        // So does one behind a QDQ model's quantized input (`Q -> DQ -> conv`, each the sole
        // reader of the one before: `lower_quantize` runs the pair as one round trip), and an
        // int8 stem's (`Q -> QConv`: `lower_quantize` writes the padded planes it reads).
        let sole = |v: ValueId| {
            let readers = g.consumers(v);
            (readers.len() == 1 && !g.is_output(v)).then(|| readers[0])
        };
        let stem = |(n, slot): (NodeId, usize)| match &g.node(n).op {
            Op::Conv(c) | Op::FusedConv(ir::FusedConv { conv: c, .. }) => {
                c.group == 1 && c.dilations == [1, 1] && c.kernel != [1, 1] && slot == 0
            }
            _ => false,
        };
        let rank4 = g.value(input).ty.shape.len() == 4;
        let direct = sole(input).is_some_and(stem);
        let quantized = || -> Option<bool> {
            let (q, _) = sole(input)?;
            let Op::Quantize(qp) = &g.node(q).op else {
                return Some(false);
            };
            let (dq, _) = sole(g.node(q).outputs[0])?;
            if quant::stem_conv(g, dq) {
                return Some(true); // an int8 stem reads the quantized planes
            }
            let Op::Dequantize(dp) = &g.node(dq).op else {
                return Some(false);
            };
            let round_trip = dp == qp && qp.is_per_tensor() && quant::storage_zp(qp).is_some();
            Some(round_trip && sole(g.node(dq).outputs[0]).is_some_and(stem))
        };
        if rank4 && (direct || quantized() == Some(true)) {
            self.loc.insert(input, Loc::Input(index));
            self.plain.insert(input);
            return;
        }
        let lin = self.layout(input);
        let (h, w) = self.hw(input);
        let dst = self.out_buf(input);
        self.steps.push(Step {
            nodes: vec![],
            out_shape: vec![],
            node: None,
            what: format!(
                "{:?} NCHW -> NCHW8c, {} channels @ {h}x{w}",
                Loc::Input(index),
                lin.channels()
            ),
            macs: 0,
            kernel: Kernel::ToBlocked {
                channels: lin.channels(),
                pixels: h * w,
                src: Loc::Input(index),
                dst,
            },
        });
    }

    /// Model output `index` gathered from its blocked layout into the user's NCHW slice, or
    /// written there by its producer: a dequantization (an int8 model's last step) of a
    /// tensor whose blocked layout is its NCHW one (one pixel, a dense layout of whole
    /// blocks), read by no later step and by no other output.
    pub(super) fn lower_output(&mut self, index: usize, output: ValueId) {
        let lout = self.layout(output);
        let (h, w) = self.hw(output);
        let src = self.loc[&output];
        let plain = h * w == 1 && lout.is_dense() && lout.channels().is_multiple_of(8);
        let once = self.g.outputs.iter().filter(|&&o| o == output).count() == 1;
        if let (true, true, Loc::Buf(b)) = (plain, once, src) {
            let last = self
                .steps
                .iter_mut()
                .rev()
                .find(|s| s.kernel.locs().contains(&src));
            if let Some(Step {
                kernel: Kernel::Dequantize { dst, .. },
                ..
            }) = last
            {
                if *dst == src {
                    *dst = Loc::Output(index);
                    // The buffer is no longer used by any step.
                    self.buffers[b] = 0;
                    return;
                }
            }
        }
        self.steps.push(Step {
            nodes: vec![],
            out_shape: vec![],
            node: None,
            what: format!(
                "{:?} NCHW8c -> NCHW, {} channels",
                Loc::Output(index),
                lout.channels()
            ),
            macs: 0,
            kernel: Kernel::FromBlocked {
                phys: lout.phys.clone(),
                pixels: h * w,
                src,
                dst: Loc::Output(index),
            },
        });
    }

    /// The buffer holding `v` in layout `want`, remapping (one copy) if it is stored otherwise.
    pub(super) fn read_as(&mut self, v: ValueId, want: &ChannelLayout, node: &str) -> Loc {
        let have = self.layout(v);
        let loc = self.loc[&v];
        if &have == want {
            return loc;
        }
        let key = (v, want.phys.clone());
        if let Some(&l) = self.remapped.get(&key) {
            return l;
        }
        let (h, w) = self.hw(v);
        let dst_len = want.lanes() * h * w;
        let dst = self.new_buf(dst_len);
        let pairs = have
            .phys
            .iter()
            .zip(&want.phys)
            .map(|(&a, &b)| (a, b))
            .collect();
        self.steps.push(Step {
            nodes: vec![node.to_string()],
            out_shape: vec![],
            node: None,
            what: format!("remap {} channels between layouts", want.channels()),
            macs: 0,
            kernel: Kernel::Remap {
                pairs,
                pixels: h * w,
                src: loc,
                dst,
                dst_len,
                clear: true,
            },
        });
        self.remapped.insert(key, dst);
        dst
    }

    /// A reshape that keeps N and C and the number of pixels (`[N, C, 1, 1] <-> [N, C]`,
    /// `[N, C, H, W] -> [N, C, H * W]`): the same blocked memory, so the same buffer.
    pub(super) fn lower_reshape(&mut self, n: NodeId, shape: &[usize]) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let xs = self.shape(x);
        let pixels = |s: &[usize]| s.iter().skip(2).product::<usize>();
        let keeps = |s: &[usize]| matches!(s.len(), 2..=4);
        if keeps(xs) && keeps(shape) && xs[..2] == shape[..2] && pixels(xs) == pixels(shape) {
            let loc = self.loc[&x];
            self.loc.insert(y, loc);
        } else {
            self.unsupported_as(
                n,
                &format!(
                    "[{}] -> [{}] moves data across channels",
                    ir::fmt_shape(xs),
                    ir::fmt_shape(shape)
                ),
                "reshapes that keep N, C and the pixel count ([N, C, 1, 1] <-> [N, C], [N, C, H, W] -> [N, C, H*W])",
            );
        }
    }

    /// DepthToSpace: every output lane read from its input lane at the block's source pixel.
    pub(super) fn lower_depth_to_space(&mut self, n: NodeId, b: usize, crd: bool) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let (lx, ly) = (self.layout(x), self.layout(y));
        let ((h, w), (oh, ow)) = (self.hw(x), self.hw(y));
        let c_out = self.shape(y)[1];
        let pairs = (0..b * b)
            .flat_map(|g| {
                let (lx, ly) = (&lx, &ly);
                (0..c_out).map(move |c| {
                    let from = ir::depth_to_space_channel(c_out, b, crd, c, g / b, g % b);
                    (lx.phys[from], ly.phys[c])
                })
            })
            .collect();
        let src = self.loc[&x];
        let dst = self.out_buf(y);
        self.push(
            n,
            format!(
                "depth to space, blocksize {b} {}",
                if crd { "CRD" } else { "DCR" }
            ),
            Kernel::DepthToSpace {
                pairs,
                h,
                w,
                b,
                src,
                dst,
                dst_len: ly.lanes() * oh * ow,
            },
        );
    }

    /// Concat along the pixels (axis 2 of a rank-3 `[N, C, L]` tensor, or whole rows of a
    /// rank-4 one): each input, in the output's channel layout, copied block by block at its
    /// pixel offset.
    pub(super) fn lower_concat_pixels(&mut self, n: NodeId) {
        let node = self.g.node(n).clone();
        let y = node.outputs[0];
        let ly = self.layout(y);
        let (h, w) = self.hw(y);
        let dst = self.out_buf(y);
        let mut offset = 0;
        for &x in &node.inputs {
            let (xh, xw) = self.hw(x);
            let src = self.read_as(x, &ly, &node.name);
            self.push(
                n,
                format!("concat: pixels {offset}..{}", offset + xh * xw),
                Kernel::CopyPixels {
                    src,
                    dst,
                    blocks: ly.blocks,
                    src_pixels: xh * xw,
                    dst_pixels: h * w,
                    offset,
                },
            );
            offset += xh * xw;
        }
    }

    /// Concat on channels: each input's lanes are scattered into the output's layout; the
    /// first copy clears the destination so padding lanes are never stale.
    pub(super) fn lower_concat(&mut self, n: NodeId) {
        let node = self.g.node(n).clone();
        let y = node.outputs[0];
        let ly = self.layout(y);
        let (h, w) = self.hw(y);
        let dst = self.out_buf(y);
        let mut channel = 0;
        for (i, &x) in node.inputs.iter().enumerate() {
            let lx = self.layout(x);
            let cx = self.shape(x)[1];
            let pairs = (0..cx)
                .map(|c| (lx.phys[c], ly.phys[channel + c]))
                .collect();
            let src = self.loc[&x];
            self.push(
                n,
                format!("concat: channels {channel}..{}", channel + cx),
                Kernel::Remap {
                    pairs,
                    pixels: h * w,
                    src,
                    dst,
                    dst_len: ly.lanes() * h * w,
                    clear: i == 0,
                },
            );
            channel += cx;
        }
    }

    /// Slice of channels `start..end` (step 1) of a rank-2, 3 or 4 tensor.
    /// When `plan::layout` made the output a view of the input's lanes, no step: the output
    /// aliases the input.
    pub(super) fn lower_slice(&mut self, n: NodeId, s: &ir::Slice) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let start = s.starts[0] as usize;
        let (lx, ly) = (self.layout(x), self.layout(y));
        let view = ly.blocks == lx.blocks
            && lx.phys.get(start..start + ly.channels()) == Some(&ly.phys[..])
            && crate::plan::layout::concat_only(self.g, y);
        if view {
            let loc = self.loc[&x];
            self.loc.insert(y, loc);
            return;
        }
        self.push_channel_range(n, x, y, start);
    }

    /// Split on channels: each output is the channel range after the ones before it.
    pub(super) fn lower_split(&mut self, n: NodeId) {
        let node = self.g.node(n).clone();
        let mut start = 0;
        for &y in &node.outputs {
            self.push_channel_range(n, node.inputs[0], y, start);
            start += self.shape(y)[1];
        }
    }

    /// Copies channels `start..start + C(y)` of `x` into `y`'s buffer, in `y`'s layout.
    fn push_channel_range(&mut self, n: NodeId, x: ValueId, y: ValueId, start: usize) {
        let end = start + self.shape(y)[1];
        let lx = self.layout(x);
        let ly = self.layout(y);
        let (h, w) = self.hw(x);
        let dst = self.out_buf(y);
        let src = self.loc[&x];
        let pairs: Vec<(usize, usize)> = (start..end)
            .map(|c| (lx.phys[c], ly.phys[c - start]))
            .collect();
        self.push(
            n,
            format!("slice channels {start}..{end}"),
            Kernel::Remap {
                pairs,
                pixels: h * w,
                src,
                dst,
                dst_len: ly.lanes() * h * w,
                clear: true,
            },
        );
    }

    /// Spatial resize of a rank-4 tensor (batch and channels unchanged): nearest (any rounding),
    /// bilinear or bicubic, with any coordinate mode but `tf_half_pixel_for_nearest`, when the scales
    /// are the output size over the input size (what the runtime computes them as).
    pub(super) fn lower_resize(&mut self, n: NodeId, r: &ir::Resize) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let coord = match r.coord {
            ir::CoordTransform::HalfPixel => Some(CoordMode::HalfPixel),
            ir::CoordTransform::PytorchHalfPixel => Some(CoordMode::PytorchHalfPixel),
            ir::CoordTransform::AlignCorners => Some(CoordMode::AlignCorners),
            ir::CoordTransform::Asymmetric => Some(CoordMode::Asymmetric),
            ir::CoordTransform::TfHalfPixelForNearest => None,
        };
        let mode = match r.mode {
            ir::ResizeMode::Nearest => Some(ResizeMode::Nearest(match r.nearest {
                ir::NearestMode::RoundPreferFloor => NearestMode::RoundPreferFloor,
                ir::NearestMode::RoundPreferCeil => NearestMode::RoundPreferCeil,
                ir::NearestMode::Floor => NearestMode::Floor,
                ir::NearestMode::Ceil => NearestMode::Ceil,
            })),
            ir::ResizeMode::Linear => Some(ResizeMode::Linear),
            ir::ResizeMode::Cubic => Some(ResizeMode::Cubic {
                a: r.cubic_coeff_a,
                exclude_outside: r.exclude_outside,
            }),
        };
        let (Some(mode), Some(coord)) = (mode, coord) else {
            let mode = match r.mode {
                ir::ResizeMode::Nearest => format!("nearest ({:?})", r.nearest),
                ir::ResizeMode::Linear => "linear".into(),
                ir::ResizeMode::Cubic => "cubic".into(),
            };
            let coord = match r.coord {
                ir::CoordTransform::HalfPixel => "half_pixel",
                ir::CoordTransform::PytorchHalfPixel => "pytorch_half_pixel",
                ir::CoordTransform::AlignCorners => "align_corners",
                ir::CoordTransform::Asymmetric => "asymmetric",
                ir::CoordTransform::TfHalfPixelForNearest => "tf_half_pixel_for_nearest",
            };
            self.unsupported_as(
                n,
                &format!("{mode} with coordinate_transformation_mode {coord}"),
                "nearest (any nearest_mode), linear or cubic, with half_pixel, \
                 pytorch_half_pixel, align_corners or asymmetric",
            );
            return;
        };
        let (ih, iw) = self.hw(x);
        let (oh, ow) = self.hw(y);
        let implied = [oh as f32 / ih as f32, ow as f32 / iw as f32];
        if r.scales.len() == 4 && r.scales[2..] != implied {
            self.unsupported_as(
                n,
                &format!("scales {:?} for {ih}x{iw} -> {oh}x{ow}", &r.scales[2..]),
                "scales equal to the output size over the input size (e.g. given as `sizes`)",
            );
            return;
        }
        let (in_h, in_w) = self.hw(x);
        let (out_h, out_w) = self.hw(y);
        let blocks = self.layout(x).blocks;
        let src = View::at(self.loc[&x], 0);
        let dst = View::at(self.out_buf(y), 0);
        self.push(
            n,
            format!("resize {in_h}x{in_w} -> {out_h}x{out_w}"),
            Kernel::Resize {
                mode,
                coord,
                shape: ResizeShape {
                    blocks,
                    in_h,
                    in_w,
                    out_h,
                    out_w,
                },
                src,
                dst,
            },
        );
    }
}
