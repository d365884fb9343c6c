//! Convolutions: Conv and FusedConv pick one of seven runtime kernels by shape (pointwise 1x1,
//! depthwise 3x3/5x5 stride 1/2, `depthwise_general` for every other depthwise shape (1xK,
//! Kx1, any size, stride or dilation), `conv_winograd` for dense 3x3 stride-1 convs of 16+
//! channels in and 32+ out (see [`winograd_fits`]), `conv_grouped` for the other grouped and
//! dense convs reading NCHW8c (any kernel, stride, dilation), or dense `pack_conv` for the
//! stem conv reading the NCHW image in place (group 1, no dilation: `lower_input` converts the
//! image to NCHW8c for any other conv); a grouped conv writing a non-dense layout is
//! unsupported. A fused Ghost module becomes one `ghost` call writing both halves.
//!
//! Weights are permuted to the output layout's lanes (and, for 1x1, the input's), zero-padded
//! and packed with the runtime's packers; biases are scattered the same way.
//!
//! Deliberately not done here: deciding what is fused (the passes built FusedConv and Ghost)
//! and the SE gate folded into a 1x1 conv's weights (`se::scaled_weights` supplies it).

use ghost_runtime::{
    self as rt, Activation, ConvShape, DepthwiseGeneralShape, DepthwiseShape, GhostShape,
    GroupedConvShape, InputLayout, PointwiseShape, WinogradShape,
};

use super::{act_of, unary_of, ChannelLayout, LowerError, Lowerer};
use crate::ir::{self, NodeId, Op, ValueId};
use crate::plan::program::*;

/// The values a conv reads and writes.
struct ConvValues {
    x: ValueId,
    w: ValueId,
    bias: Option<ValueId>,
    residual: Option<ValueId>,
    y: ValueId,
}

/// Where a conv reads and writes when that is not its graph values' own buffers: the two
/// halves of a Ghost module lowered as two convs (see [`Lowerer::lower_ghost`]).
#[derive(Default)]
struct ConvAt {
    /// Input view, its layout, channel count and spatial size (instead of `x`'s buffer).
    src: Option<(View, ChannelLayout, usize, (usize, usize))>,
    /// Output view and layout (instead of a new buffer for `y` in `y`'s layout).
    dst: Option<(View, ChannelLayout)>,
    /// The residual added in the epilogue, as a view in the output layout.
    residual: Option<View>,
}

/// A depthwise conv for [`Lowerer::push_depthwise_general`]: its attributes, constant weights
/// and bias (logical channels), the layout of its input and output, and its input size.
pub(super) struct DwGeneral<'a> {
    pub conv: &'a ir::Conv,
    pub w: &'a [f32],
    pub b: &'a [f32],
    pub layout: &'a ChannelLayout,
    pub in_hw: (usize, usize),
}

impl Lowerer<'_> {
    /// An unfused Conv: no activation, no residual.
    pub(super) fn lower_plain_conv(&mut self, n: NodeId, c: &ir::Conv) -> Result<(), LowerError> {
        let node = self.g.node(n);
        let io = ConvValues {
            x: node.inputs[0],
            w: node.inputs[1],
            bias: node.inputs.get(2).copied(),
            residual: None,
            y: node.outputs[0],
        };
        self.lower_conv(n, c, Activation::None, io, ConvAt::default())
    }

    /// Conv + bias + activation (+ residual after the activation).
    pub(super) fn lower_fused_conv(
        &mut self,
        n: NodeId,
        f: &ir::FusedConv,
    ) -> Result<(), LowerError> {
        let node = self.g.node(n);
        let io = ConvValues {
            x: node.inputs[0],
            w: node.inputs[1],
            bias: Some(node.inputs[2]),
            residual: f.residual.then(|| node.inputs[3]),
            y: node.outputs[0],
        };
        // Tanh/LeakyRelu have no epilogue form: conv, then the activation in place
        // (valid only without a residual, which is added after the activation).
        if let (Some(f_act), None) = (f.act.and_then(unary_of), io.residual) {
            let y = io.y;
            self.lower_conv(n, &f.conv, Activation::None, io, ConvAt::default())?;
            if let Some(&loc) = self.loc.get(&y) {
                let len = self.blocked_len(y, &self.layout(y));
                self.push(
                    n,
                    Op::Activation(f.act.expect("unary_of matched"))
                        .name()
                        .into(),
                    Kernel::Unary {
                        f: f_act,
                        x: loc,
                        len,
                    },
                );
            }
            return Ok(());
        }
        let Some(act) = act_of(f.act) else {
            self.unsupported(n, "activation has no epilogue form");
            return Ok(());
        };
        self.lower_conv(n, &f.conv, act, io, ConvAt::default())
    }

    fn lower_conv(
        &mut self,
        n: NodeId,
        conv: &ir::Conv,
        act: Activation,
        io: ConvValues,
        at: ConvAt,
    ) -> Result<(), LowerError> {
        let ConvValues {
            x,
            w,
            bias,
            residual,
            y,
        } = io;
        let name = self.g.node(n).name.clone();
        let Some(wd) = self.constant(w) else {
            self.unsupported(n, "weights are not constant");
            return Ok(());
        };
        let ws = self.shape(w).to_vec();
        let (cout, cin_g, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        let zeros = vec![0.0; cout];
        let bd: &[f32] = match bias {
            Some(b) => match self.constant(b) {
                Some(d) => d,
                None => {
                    self.unsupported(n, "bias is not constant");
                    return Ok(());
                }
            },
            None => &zeros,
        };
        let (cin, (in_h, in_w)) = match &at.src {
            Some((_, _, c, hw)) => (*c, *hw),
            None => (self.shape(x)[1], self.hw(x)),
        };
        let ly = match &at.dst {
            Some((_, l)) => l.clone(),
            None => self.layout(y),
        };
        let residual = match residual {
            Some(r) => Some(View::at(self.read_as(r, &ly, &name), 0)),
            None => at.residual,
        };
        // The input in `want` layout (a remap step when x's layout differs), or the override.
        let src_as = |me: &mut Self, want: &ChannelLayout| -> Option<View> {
            match &at.src {
                Some((v, l, _, _)) => (l == want).then_some(*v),
                None => Some(View::at(me.read_as(x, want, &name), 0)),
            }
        };
        let dst_view = |me: &mut Self| match &at.dst {
            Some((v, _)) => *v,
            None => View::at(me.out_buf(y), 0),
        };
        let epilogue = Epilogue {
            activation: act,
            residual,
            channel_sums: None,
        };
        let unit = conv.dilations == [1, 1];
        if kh == 1
            && kw == 1
            && conv.strides == [1, 1]
            && conv.pads == [0; 4]
            && conv.group == 1
            && unit
        {
            if in_h * in_w == 1
                && residual.is_none()
                && at.src.is_none()
                && at.dst.is_none()
                && !self.gated.contains_key(&x)
            {
                // One pixel: a matrix-vector product, bound by weight bandwidth; the GEMV kernel
                // streams the same packed panels with independent accumulators.
                let what = format!("pointwise {cin} -> {cout} @ 1x1 (GEMV)");
                return self.lower_fc(n, what, wd, bd, x, y, act);
            }
            let (src, lx) = match &at.src {
                Some((v, l, _, _)) => (*v, l.clone()),
                None => (View::at(self.loc[&x], 0), self.layout(x)),
            };
            let wp = Self::permute_matrix(wd, cout, cin, &ly, &lx);
            let bp = ly.scatter(bd, 0.0);
            let wr = self.pack_pointwise(&name, &wp, &bp, lx.lanes(), ly.lanes())?;
            let w_scaled = match at.src {
                Some(_) => None,
                None => self.scaled_weights(n, x, wr, lx.lanes(), ly.lanes()),
            };
            let dst = dst_view(self);
            self.push(
                n,
                format!("pointwise {cin} -> {cout} @ {in_h}x{in_w}"),
                Kernel::Pointwise {
                    w: wr,
                    w_scaled,
                    shape: PointwiseShape {
                        k_blocks: lx.blocks,
                        n_blocks: ly.blocks,
                        pixels: in_h * in_w,
                    },
                    src,
                    dst,
                    epilogue,
                },
            );
            return Ok(());
        }
        let depthwise =
            conv.group == cin && cout == cin && cin_g == 1 && kh == kw && matches!(kh, 3 | 5);
        if depthwise
            && conv.strides[0] == conv.strides[1]
            && matches!(conv.strides[0], 1 | 2)
            && unit
        {
            let k = kh;
            let wp = ly.scatter_rows(wd, k * k);
            let bp = ly.scatter(bd, 0.0);
            let lanes = ly.lanes();
            let wr = self.pack(&name, rt::depthwise_packed_len(lanes, k), |out| {
                rt::pack_depthwise(&wp, &bp, lanes, k, out)
            })?;
            let Some(src) = src_as(self, &ly) else {
                self.unsupported(n, "depthwise input in another layout than its output");
                return Ok(());
            };
            let dst = dst_view(self);
            let [pad_top, pad_left, pad_bottom, pad_right] = conv.pads;
            self.push(
                n,
                format!(
                    "depthwise {k}x{k} s{} {cin}ch @ {in_h}x{in_w}",
                    conv.strides[0]
                ),
                Kernel::Depthwise {
                    w: wr,
                    shape: DepthwiseShape {
                        blocks: ly.blocks,
                        in_h,
                        in_w,
                        k,
                        stride: conv.strides[0],
                        pad_top,
                        pad_left,
                        pad_bottom,
                        pad_right,
                    },
                    src,
                    dst,
                    epilogue,
                },
            );
            return Ok(());
        }
        if conv.group == cin && cout == cin && cin_g == 1 {
            // Every other depthwise shape (1xK, Kx1, other sizes, strides, dilations).
            let Some(src) = src_as(self, &ly) else {
                self.unsupported(n, "depthwise input in another layout than its output");
                return Ok(());
            };
            let dst = dst_view(self);
            let what = format!(
                "depthwise {kh}x{kw} s{}x{} d{}x{} {cin}ch @ {in_h}x{in_w}",
                conv.strides[0], conv.strides[1], conv.dilations[0], conv.dilations[1]
            );
            let dw = DwGeneral {
                conv,
                w: wd,
                b: bd,
                layout: &ly,
                in_hw: (in_h, in_w),
            };
            return self.push_depthwise_general(n, what, dw, src, dst, epilogue);
        }
        if let (None, true) = (&at.src, self.plain.contains(&x)) {
            // The model input read in place (or its quantize-dequantize round trip): only a
            // dense, undilated, non-1x1 conv that is its sole reader gets it (`lower_input`);
            // every other conv reads NCHW8c.
            let src = self.loc[&x];
            debug_assert!(conv.group == 1 && unit, "lower_input gave NCHW to {name}");
            let lanes = ly.lanes();
            let wp = ly.scatter_rows(wd, cin * kh * kw);
            let bp = ly.scatter(bd, 0.0);
            let wr = self.pack(&name, rt::conv_packed_len(cin, lanes, kh, kw), |out| {
                rt::pack_conv(&wp, &bp, cin, lanes, kh, kw, out)
            })?;
            let dst = dst_view(self);
            self.push(
                n,
                format!(
                    "conv {kh}x{kw} s{} {cin} -> {cout} @ {in_h}x{in_w} (reads NCHW)",
                    conv.strides[0],
                ),
                Kernel::Conv {
                    w: wr,
                    shape: ConvShape {
                        cin,
                        layout: InputLayout::Nchw,
                        in_h,
                        in_w,
                        out_blocks: ly.blocks,
                        kh,
                        kw,
                        stride_h: conv.strides[0],
                        stride_w: conv.strides[1],
                        pads: conv.pads,
                    },
                    src: View::at(src, 0),
                    dst,
                    epilogue,
                },
            );
            return Ok(());
        }
        if conv.group > 1 && !ly.is_dense() {
            self.unsupported(n, "grouped conv writing a non-dense channel layout");
            return Ok(());
        }
        // NCHW8c input: the register-tiled grouped kernel (a dense conv is one group; any
        // dilation).
        let Some(src) = src_as(self, &ChannelLayout::dense(cin)) else {
            self.unsupported(n, "conv input view in a non-dense layout");
            return Ok(());
        };
        let dst = dst_view(self);
        let dims = (cin, cout, (in_h, in_w));
        if self.opts.winograd && winograd_fits(conv, (cin, cout), self.hw(y)) {
            return self.push_conv_winograd(
                n,
                (wd, bd),
                (src, dst, &ly),
                dims,
                conv.pads,
                epilogue,
            );
        }
        self.push_conv_grouped(n, conv, (wd, bd), (src, dst, &ly), dims, epilogue)
    }

    /// A dense 3x3 stride-1 conv by Winograd F(2x2, 3x3): weights scattered to `ly`'s lanes
    /// (any order: one group), transformed and packed with `pack_conv_winograd`, one
    /// `ConvWinograd` step with its scratch buffer.
    fn push_conv_winograd(
        &mut self,
        n: NodeId,
        (wd, bd): (&[f32], &[f32]),
        (src, dst, ly): (View, View, &ChannelLayout),
        (cin, cout, (in_h, in_w)): (usize, usize, (usize, usize)),
        pads: [usize; 4],
        epilogue: Epilogue,
    ) -> Result<(), LowerError> {
        let name = self.g.node(n).name.clone();
        let wp = ly.scatter_rows(wd, cin * 9);
        let bp = ly.scatter(bd, 0.0);
        let shape = WinogradShape {
            cin,
            cout,
            out_blocks: ly.blocks,
            in_h,
            in_w,
            pads,
        };
        let wr = self.pack(&name, rt::winograd_packed_len(&shape), |out| {
            rt::pack_conv_winograd(&wp, &bp, &shape, out)
        })?;
        let scratch = self.new_buf(rt::winograd_scratch_len(&shape));
        self.push(
            n,
            format!("conv 3x3 s1 {cin} -> {cout} @ {in_h}x{in_w} (Winograd F(2x2, 3x3))"),
            Kernel::ConvWinograd {
                w: wr,
                shape,
                src,
                dst,
                epilogue,
                scratch,
            },
        );
        Ok(())
    }

    /// A grouped (or dense) conv on NCHW8c input: weights scattered to `ly`'s lanes (any
    /// lane order for one group; the caller ensures `ly` is dense for several), packed with
    /// `pack_conv_grouped`, one `ConvGrouped` step.
    fn push_conv_grouped(
        &mut self,
        n: NodeId,
        conv: &ir::Conv,
        (wd, bd): (&[f32], &[f32]),
        (src, dst, ly): (View, View, &ChannelLayout),
        (cin, cout, (in_h, in_w)): (usize, usize, (usize, usize)),
        epilogue: Epilogue,
    ) -> Result<(), LowerError> {
        let name = self.g.node(n).name.clone();
        let [kh, kw] = conv.kernel;
        let wp = ly.scatter_rows(wd, cin / conv.group * kh * kw);
        let bp = ly.scatter(bd, 0.0);
        let shape = GroupedConvShape {
            cin,
            cout,
            groups: conv.group,
            out_blocks: ly.blocks,
            in_h,
            in_w,
            kh,
            kw,
            stride: conv.strides,
            dilation: conv.dilations,
            pads: conv.pads,
        };
        let wr = self.pack(&name, rt::grouped_packed_len(&shape), |out| {
            rt::pack_conv_grouped(&wp, &bp, &shape, out)
        })?;
        let dil = if conv.dilations == [1, 1] {
            String::new()
        } else {
            format!(" d{}x{}", conv.dilations[0], conv.dilations[1])
        };
        let what = if conv.group == 1 {
            format!(
                "conv {kh}x{kw} s{}{dil} {cin} -> {cout} @ {in_h}x{in_w}",
                conv.strides[0]
            )
        } else {
            format!(
                "grouped conv {kh}x{kw} s{}{dil} g{} {cin} -> {cout} @ {in_h}x{in_w}",
                conv.strides[0], conv.group
            )
        };
        self.push(
            n,
            what,
            Kernel::ConvGrouped {
                w: wr,
                shape,
                src,
                dst,
                epilogue,
            },
        );
        Ok(())
    }

    /// Packs a depthwise conv's weights (`[c][1][kh][kw]`, logical channels) into `dw.layout`'s
    /// lanes with `pack_depthwise_general` and pushes its `DepthwiseGeneral` step.
    pub(super) fn push_depthwise_general(
        &mut self,
        n: NodeId,
        what: String,
        dw: DwGeneral<'_>,
        src: View,
        dst: View,
        epilogue: Epilogue,
    ) -> Result<(), LowerError> {
        let DwGeneral {
            conv,
            w,
            b,
            layout,
            in_hw: (in_h, in_w),
        } = dw;
        let [kh, kw] = conv.kernel;
        let taps = kh * kw;
        let lanes = layout.lanes();
        let wp = layout.scatter_rows(w, taps);
        let bp = layout.scatter(b, 0.0);
        let name = self.g.node(n).name.clone();
        let wr = self.pack(
            &name,
            rt::depthwise_general_packed_len(lanes, kh, kw),
            |out| rt::pack_depthwise_general(&wp, &bp, lanes, kh, kw, out),
        )?;
        self.push(
            n,
            what,
            Kernel::DepthwiseGeneral {
                w: wr,
                shape: DepthwiseGeneralShape {
                    blocks: layout.blocks,
                    in_h,
                    in_w,
                    kh,
                    kw,
                    stride: conv.strides,
                    dilation: conv.dilations,
                    pads: conv.pads,
                },
                src,
                dst,
                epilogue,
            },
        );
        Ok(())
    }

    /// A Ghost module of another shape (ultralytics' GhostConv: 3x3 primary, 5x5 depthwise cheap
    /// op; strided primaries): the primary conv writes the first half of the output's split
    /// layout, the depthwise cheap conv reads it there and writes the second half, each with
    /// the kernel its shape picks. The primary half goes to a scratch buffer, then a Copy (or,
    /// with a residual, an Add) writes it into the output: the cheap conv reads it while
    /// writing the output's second half (and before the residual is added), and a read and a
    /// write view of one arena buffer would be a shared and a mutable borrow of the same region
    /// in generated code.
    fn lower_ghost_as_two_convs(
        &mut self,
        n: NodeId,
        gh: &ir::Ghost,
        (pa, qa): (Activation, Activation),
    ) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let [x, wp, bp, wq, bq] = [0, 1, 2, 3, 4].map(|i| node.inputs[i]);
        let y = node.outputs[0];
        let (c1, c2) = (self.shape(wp)[0], self.shape(wq)[0]);
        let q = &gh.cheap;
        if !(q.group == c1 && c2 == c1 && gh.out_channels == c1 + c2) {
            self.unsupported_as(
                n,
                &format!(
                    "cheap op of {c2} channels in {} groups over {c1} primary channels to {} \
                     outputs",
                    q.group, gh.out_channels
                ),
                "a depthwise cheap op (ratio 2) whose outputs are all kept",
            );
            return Ok(());
        }
        let ly = self.layout(y);
        let (h, w) = self.hw(y);
        let b1 = c1.div_ceil(8);
        let half = ChannelLayout::dense(c1);
        let out = self.out_buf(y);
        let residual = gh
            .residual
            .then(|| self.read_as(node.inputs[5], &ly, &node.name));
        let first = View::at(self.new_buf(b1 * 8 * h * w), 0);
        let primary = ConvValues {
            x,
            w: wp,
            bias: Some(bp),
            residual: None,
            y,
        };
        let at = ConvAt {
            dst: Some((first, half.clone())),
            ..ConvAt::default()
        };
        self.lower_conv(n, &gh.primary, pa, primary, at)?;
        let cheap = ConvValues {
            x: y,
            w: wq,
            bias: Some(bq),
            residual: None,
            y,
        };
        let at = ConvAt {
            src: Some((first, half.clone(), c1, (h, w))),
            dst: Some((View::at(out, b1), half)),
            residual: residual.map(|r| View::at(r, b1)),
        };
        self.lower_conv(n, q, qa, cheap, at)?;
        let len = b1 * 8 * h * w;
        match residual {
            Some(r) => self.push(
                n,
                "ghost module: primary half + residual".into(),
                Kernel::Binary {
                    op: rt::BinaryOp::Add,
                    a: first.loc,
                    b: r,
                    dst: out,
                    len,
                    act: Activation::None,
                },
            ),
            None => self.push(
                n,
                "ghost module: primary half".into(),
                Kernel::Copy {
                    src: first.loc,
                    dst: out,
                    len,
                },
            ),
        }
        Ok(())
    }

    /// A Ghost module the runtime fuses: 1x1 primary conv, 3x3 depthwise cheap conv of ratio 2,
    /// both halves written into the output's split layout, residual added in the epilogue.
    pub(super) fn lower_ghost(&mut self, n: NodeId, gh: &ir::Ghost) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let name = node.name.clone();
        let (x, wp, bp, wq, bq, y) = (
            node.inputs[0],
            node.inputs[1],
            node.inputs[2],
            node.inputs[3],
            node.inputs[4],
            node.outputs[0],
        );
        let (c1, c2) = (self.shape(wp)[0], self.shape(wq)[0]);
        let p = &gh.primary;
        let q = &gh.cheap;
        let fits = p.kernel == [1, 1]
            && p.strides == [1, 1]
            && p.pads == [0; 4]
            && p.group == 1
            && p.dilations == [1, 1]
            && q.kernel == [3, 3]
            && q.strides == [1, 1]
            && q.pads == [1; 4]
            && q.group == c1
            && c2 == c1
            && q.dilations == [1, 1];
        let (Some(pa), Some(qa)) = (act_of(gh.primary_act), act_of(gh.cheap_act)) else {
            self.unsupported(n, "activation has no epilogue form");
            return Ok(());
        };
        let consts: Option<Vec<&[f32]>> =
            [wp, bp, wq, bq].iter().map(|&v| self.constant(v)).collect();
        let Some(c) = consts else {
            self.unsupported(n, "weights are not constant");
            return Ok(());
        };
        if !fits {
            return self.lower_ghost_as_two_convs(n, gh, (pa, qa));
        }
        let lx = self.layout(x);
        let ly = self.layout(y);
        let half = c1.div_ceil(8);
        let cin = self.shape(x)[1];
        let first_half = ChannelLayout::dense(c1);
        let pw = Self::permute_matrix(c[0], c1, cin, &first_half, &lx);
        let pw_r = self.pack_pointwise(
            &name,
            &pw,
            &first_half.scatter(c[1], 0.0),
            lx.lanes(),
            half * 8,
        )?;
        let pw_scaled = self.scaled_weights(n, x, pw_r, lx.lanes(), half * 8);
        let mut dw = vec![0.0; half * 8 * 9];
        dw[..c1 * 9].copy_from_slice(&c[2][..c1 * 9]);
        let dw_bias = first_half.scatter(c[3], 0.0);
        let dw_r = self.pack(&name, rt::depthwise_packed_len(half * 8, 3), |out| {
            rt::pack_depthwise(&dw, &dw_bias, half * 8, 3, out)
        })?;
        let (h, w) = self.hw(x);
        let residual = if gh.residual {
            Some(View::at(self.read_as(node.inputs[5], &ly, &name), 0))
        } else {
            None
        };
        let shape = GhostShape {
            k_blocks: lx.blocks,
            half_blocks: half,
            h,
            w,
        };
        let scratch = self.new_buf(rt::ghost_scratch_len(shape));
        let src = View::at(self.loc[&x], 0);
        let dst = View::at(self.out_buf(y), 0);
        self.push(
            n,
            format!(
                "ghost module {cin} -> {c1}+{} @ {h}x{w}{}",
                gh.out_channels - c1,
                if gh.residual { " + residual" } else { "" }
            ),
            Kernel::Ghost {
                pw: pw_r,
                pw_scaled,
                dw: dw_r,
                shape,
                src,
                dst,
                primary: pa,
                cheap: qa,
                residual,
                channel_sums: None,
                scratch,
                gate: None,
            },
        );
        Ok(())
    }
}

/// Whether a conv reading NCHW8c runs by Winograd F(2x2, 3x3): dense, 3x3, stride 1, no
/// dilation, padding at most 2, 16+ channels in and 32+ out, an output of 4x4 or more.
/// ghost-bench (AVX2, one pass, `taskset`): 1.4-1.8x the direct kernel on ResNet-18's layers
/// (64 @56 ... 512 @7), 1.55x on SqueezeNet's 32 -> 128 @27 and 48 -> 192 @13, 1.2x at
/// 32 -> 32 @56 and 16 -> 64 @55, 1.1x at 16 -> 32 @56 (the transforms, linear in channels,
/// weigh more against the GEMMs as channels shrink; smaller layers were not measured). On a
/// 2x2 or 3x3 output (padding 1) the one or four tiles cover mostly padding: per channel pair
/// 16 products against the direct kernel's 16 (it skips the taps outside the image), or 64
/// against 49, with 16/9 of its weight bytes.
pub(super) fn winograd_fits(
    conv: &ir::Conv,
    (cin, cout): (usize, usize),
    out: (usize, usize),
) -> bool {
    conv.group == 1
        && conv.kernel == [3, 3]
        && conv.strides == [1, 1]
        && conv.dilations == [1, 1]
        && conv.pads.iter().all(|&p| p <= 2)
        && cin >= 16
        && cout >= 32
        && out.0 >= 4
        && out.1 >= 4
}
