//! Lowering: from the optimized graph to a [`Program`] of ghost-runtime calls.
//!
//! Every activation gets an arena buffer in its NCHW8c [`ChannelLayout`]; weights are permuted
//! to the physical lane order of their input and output, zero-padded, and packed with the
//! runtime's own packing functions into the weight blob. Per-image: the batch is a loop around
//! the program (static batch N or a dynamic batch), so every activation must carry the batch in
//! dim 0 and no op may mix images.
//!
//! Deliberately not done here: choosing fusions (passes do that) and deciding offsets (the arena
//! plan runs on the finished step list).

use std::collections::HashMap;

use ghost_runtime as rt;

use super::arena::{self, Interval};
use super::layout::{self, ChannelLayout};
use super::program::*;
use crate::codegen::blob::WeightBlob;
use crate::ir::{self, Activation, BinaryOp, Graph, NodeId, Op, ValueId};

/// Why the graph cannot be lowered to runtime calls.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LowerError {
    /// User-facing: the model uses ops (or op configurations) code generation does not cover.
    #[error("code generation does not support {}: {}", if .0.len() == 1 { "this node" } else { "these nodes" }, .0.join("; "))]
    Unsupported(Vec<String>),
    /// User-facing: models with several inputs or outputs are not compiled yet.
    #[error("code generation supports one input and one output; the model has {inputs} inputs and {outputs} outputs")]
    Io { inputs: usize, outputs: usize },
    /// A ghostc bug: the runtime refused arguments lowering computed.
    #[error("node '{node}': the runtime rejected packed weights ({detail}); this is a ghostc bug")]
    Pack { node: String, detail: String },
}

struct Lowerer<'g> {
    g: &'g Graph,
    layouts: HashMap<ValueId, ChannelLayout>,
    batch: usize,
    loc: HashMap<ValueId, Loc>,
    /// Remapped copies of values already made: (value, layout) -> buffer.
    remapped: HashMap<(ValueId, Vec<usize>), Loc>,
    buffers: Vec<usize>,
    blob: WeightBlob,
    steps: Vec<Step>,
    unsupported: Vec<String>,
    /// Values that are another value gated by an SE: stored un-gated (aliasing their input),
    /// with the gate vector their single 1x1 consumer folds into its weights.
    gated: HashMap<ValueId, Loc>,
}

fn act_of(a: Option<Activation>) -> Option<Act> {
    Some(match a {
        None => Act::None,
        Some(Activation::Relu) => Act::Relu,
        Some(Activation::Clip { min, max }) => Act::Clamp { lo: min, hi: max },
        Some(Activation::HardSigmoid { alpha, beta }) => Act::HardSigmoid { alpha, beta },
        Some(Activation::HardSwish) => Act::HardSwish,
        Some(_) => return None,
    })
}

fn unary_of(a: Activation) -> Option<UnaryFn> {
    match a {
        Activation::Sigmoid => Some(UnaryFn::Sigmoid),
        Activation::Tanh => Some(UnaryFn::Tanh),
        Activation::LeakyRelu { alpha } => Some(UnaryFn::LeakyRelu { alpha }),
        _ => None,
    }
}

impl<'g> Lowerer<'g> {
    fn new_buf(&mut self, len: usize) -> Loc {
        self.buffers.push(len.max(1));
        Loc::Buf(self.buffers.len() - 1)
    }

    fn shape(&self, v: ValueId) -> &[usize] {
        &self.g.value(v).ty.shape
    }

    /// Spatial size per image: (h, w) for rank 4, (1, 1) for rank 2.
    fn hw(&self, v: ValueId) -> (usize, usize) {
        let s = self.shape(v);
        if s.len() == 4 {
            (s[2], s[3])
        } else {
            (1, 1)
        }
    }

    fn layout(&self, v: ValueId) -> ChannelLayout {
        self.layouts
            .get(&v)
            .cloned()
            .unwrap_or_else(|| ChannelLayout::dense(self.shape(v).get(1).copied().unwrap_or(1)))
    }

    fn blocked_len(&self, v: ValueId, layout: &ChannelLayout) -> usize {
        let (h, w) = self.hw(v);
        layout.lanes() * h * w
    }

    fn constant(&self, v: ValueId) -> Option<&'g [f32]> {
        self.g.value(v).constant().and_then(|t| t.as_f32())
    }

    /// The buffer holding `v` in layout `want`, remapping (one copy) if it is stored otherwise.
    fn read_as(&mut self, v: ValueId, want: &ChannelLayout, node: &str) -> Loc {
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

    fn out_buf(&mut self, v: ValueId) -> Loc {
        let layout = self.layout(v);
        let len = self.blocked_len(v, &layout);
        let loc = self.new_buf(len);
        self.loc.insert(v, loc);
        loc
    }

    /// Appends a step for node `n`; the node's MACs go to its first compute step only.
    fn push(&mut self, n: NodeId, what: String, kernel: Kernel) {
        let node = self.g.node(n);
        let auxiliary = matches!(
            kernel,
            Kernel::ScalePacked { .. } | Kernel::Zero { .. } | Kernel::Copy { .. }
        );
        let counted = self
            .steps
            .iter()
            .rev()
            .take_while(|s| s.node == Some(n))
            .any(|s| s.macs > 0);
        let macs = if counted || auxiliary {
            0
        } else {
            ir::cost::macs(self.g, n) / self.batch as u64
        };
        self.steps.push(Step {
            nodes: node.covers.clone(),
            out_shape: node
                .outputs
                .first()
                .map(|&v| self.g.value(v).ty.shape.clone())
                .unwrap_or_default(),
            node: Some(n),
            what,
            macs,
            kernel,
        });
    }

    /// Copies `len` floats of `src` into `dst`, the output buffer that in-place ops (named by
    /// `why`) then modify.
    fn push_copy(&mut self, n: NodeId, why: &str, src: Loc, dst: Loc, len: usize) {
        self.push(
            n,
            format!("copy for in-place {why}"),
            Kernel::Copy { src, dst, len },
        );
    }

    fn unsupported(&mut self, n: NodeId, why: &str) {
        let node = self.g.node(n);
        self.unsupported
            .push(format!("'{}' ({}): {}", node.name, node.op.name(), why));
    }

    fn pack_pointwise(
        &mut self,
        node: &str,
        w: &[f32],
        bias: &[f32],
        k_pad: usize,
        n_pad: usize,
    ) -> Result<WRange, LowerError> {
        let mut packed = vec![0.0; rt::pointwise_packed_len(k_pad, n_pad)];
        rt::pack_pointwise(w, bias, k_pad, n_pad, &mut packed).map_err(|e| LowerError::Pack {
            node: node.into(),
            detail: e.to_string(),
        })?;
        Ok(self.push_weights(&packed))
    }

    fn push_weights(&mut self, values: &[f32]) -> WRange {
        WRange {
            offset: self.blob.push(values),
            len: values.len(),
        }
    }

    /// `[n_out.lanes][k_in.lanes]` matrix from a logical `[n][k]` one.
    fn permute_matrix(
        w: &[f32],
        n: usize,
        k: usize,
        rows: &ChannelLayout,
        cols: &ChannelLayout,
    ) -> Vec<f32> {
        let (nl, kl) = (rows.lanes(), cols.lanes());
        let mut out = vec![0.0; nl * kl];
        for o in 0..n {
            for i in 0..k {
                out[rows.phys[o] * kl + cols.phys[i]] = w[o * k + i];
            }
        }
        out
    }

    fn lower_node(&mut self, n: NodeId) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let name = node.name.clone();
        match &node.op {
            Op::Conv(c) => {
                let (x, w) = (node.inputs[0], node.inputs[1]);
                let bias = node.inputs.get(2).copied();
                self.lower_conv(n, c, None, x, w, bias, None, node.outputs[0])
            }
            Op::FusedConv(f) => {
                let residual = f.residual.then(|| node.inputs[3]);
                // Sigmoid/Tanh/LeakyRelu have no epilogue form: conv, then the activation in
                // place (valid only without a residual, which is added after the activation).
                if let (Some(f_act), None) = (f.act.and_then(unary_of), residual) {
                    let (x, y) = (node.inputs[0], node.outputs[0]);
                    self.lower_conv(
                        n,
                        &f.conv,
                        Some(Act::None),
                        x,
                        node.inputs[1],
                        Some(node.inputs[2]),
                        None,
                        y,
                    )?;
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
                self.lower_conv(
                    n,
                    &f.conv,
                    Some(act),
                    node.inputs[0],
                    node.inputs[1],
                    Some(node.inputs[2]),
                    residual,
                    node.outputs[0],
                )
            }
            Op::Ghost(gh) => self.lower_ghost(n, gh),
            Op::SqueezeExcite(se) => self.lower_se(n, se),
            Op::Linear { act } => {
                let Some(act) = act_of(*act) else {
                    self.unsupported(n, "activation has no epilogue form");
                    return Ok(());
                };
                let (x, w, b, y) = (
                    node.inputs[0],
                    node.inputs[1],
                    node.inputs[2],
                    node.outputs[0],
                );
                let (Some(wd), Some(bd)) = (self.constant(w), self.constant(b)) else {
                    self.unsupported(n, "weights are not constant");
                    return Ok(());
                };
                let (m, k) = (self.shape(w)[0], self.shape(w)[1]);
                self.lower_fc(n, format!("linear {k} -> {m}"), wd, bd, x, y, act)
            }
            Op::Gemm(_) | Op::MatMul => self.lower_matmul(n),
            Op::GlobalAveragePool | Op::Reduce(_) => {
                if let Op::Reduce(r) = &node.op {
                    if r.kind != ir::ReduceKind::Mean
                        || r.axes != [2, 3]
                        || self.shape(node.inputs[0]).len() != 4
                    {
                        self.unsupported(n, "only a mean over H and W is supported");
                        return Ok(());
                    }
                }
                let x = node.inputs[0];
                let (h, w) = self.hw(x);
                let blocks = self.layout(x).blocks;
                let src = View::at(self.loc[&x], 0);
                let dst = self.out_buf(node.outputs[0]);
                self.push(
                    n,
                    "global average pool".into(),
                    Kernel::GlobalAvgPool {
                        blocks,
                        pixels: h * w,
                        src,
                        dst,
                    },
                );
                Ok(())
            }
            Op::Reshape { shape } => {
                let (x, y) = (node.inputs[0], node.outputs[0]);
                let xs = self.shape(x);
                // [N, C, 1, 1] <-> [N, C]: the same lanes, so the same buffer.
                let channels_only = |s: &[usize]| s.len() >= 2 && s[2..].iter().all(|&d| d == 1);
                if channels_only(xs) && channels_only(shape) && xs[1] == shape[1] {
                    let loc = self.loc[&x];
                    self.loc.insert(y, loc);
                    Ok(())
                } else {
                    self.unsupported(
                        n,
                        "only reshapes between [N, C, 1, 1] and [N, C] are supported",
                    );
                    Ok(())
                }
            }
            Op::Identity => {
                let loc = self.loc[&node.inputs[0]];
                self.loc.insert(node.outputs[0], loc);
                Ok(())
            }
            Op::Activation(a) => {
                let x = node.inputs[0];
                let y = node.outputs[0];
                let src = self.loc[&x];
                let len = self.blocked_len(x, &self.layout(x));
                let dst = self.out_buf(y);
                self.push_copy(n, "activation", src, dst, len);
                if let Some(f) = unary_of(*a) {
                    self.push(
                        n,
                        Op::Activation(*a).name().into(),
                        Kernel::Unary { f, x: dst, len },
                    );
                } else {
                    let act =
                        act_of(Some(*a)).expect("every non-unary activation has an epilogue form");
                    let (h, w) = self.hw(x);
                    let blocks = self.layout(x).blocks;
                    let zeros = self.push_weights(&vec![0.0; blocks * 8]);
                    self.push(
                        n,
                        Op::Activation(*a).name().into(),
                        Kernel::ChannelAssign {
                            op: BinOp::Add,
                            x: dst,
                            blocks,
                            pixels: h * w,
                            v: VecSrc::Blob(zeros),
                            act,
                        },
                    );
                }
                Ok(())
            }
            Op::BatchNorm(bn) => {
                let x = node.inputs[0];
                let params: Option<Vec<&[f32]>> = node.inputs[1..5]
                    .iter()
                    .map(|&v| self.constant(v))
                    .collect();
                let Some(p) = params else {
                    self.unsupported(n, "parameters are not constant");
                    return Ok(());
                };
                let scale: Vec<f32> = (0..p[0].len())
                    .map(|c| p[0][c] / (p[3][c] + bn.epsilon).sqrt())
                    .collect();
                let shift: Vec<f32> = (0..p[0].len())
                    .map(|c| p[1][c] - p[2][c] * scale[c])
                    .collect();
                self.lower_affine(n, x, node.outputs[0], &scale, &shift);
                Ok(())
            }
            Op::Binary(op) => self.lower_binary(n, *op),
            Op::Concat { axis: 1 } if matches!(self.shape(node.outputs[0]).len(), 2 | 4) => {
                // Each input's lanes are scattered into the output's layout; the first copy
                // clears the destination so padding lanes are never stale.
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
                Ok(())
            }
            Op::Slice(s)
                if s.axes == [1] && s.steps == [1] && self.shape(node.inputs[0]).len() == 4 =>
            {
                let (x, y) = (node.inputs[0], node.outputs[0]);
                let (start, end) = (s.starts[0] as usize, s.ends[0] as usize);
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
                Ok(())
            }
            Op::Pool(p)
                if self.shape(node.inputs[0]).len() == 4
                    && p.dilations == [1, 1]
                    && !p.ceil_mode =>
            {
                let (x, y) = (node.inputs[0], node.outputs[0]);
                let (in_h, in_w) = self.hw(x);
                let blocks = self.layout(x).blocks;
                let src = View::at(self.loc[&x], 0);
                let dst = View::at(self.out_buf(y), 0);
                self.push(
                    n,
                    format!("{} {}x{}", node.op.name(), p.kernel[0], p.kernel[1]),
                    Kernel::Pool {
                        max: p.kind == ir::PoolKind::Max,
                        count_include_pad: p.count_include_pad,
                        blocks,
                        in_h,
                        in_w,
                        kh: p.kernel[0],
                        kw: p.kernel[1],
                        stride: p.strides,
                        pads: p.pads,
                        src,
                        dst,
                    },
                );
                Ok(())
            }
            Op::Resize(r)
                if self.shape(node.inputs[0]).len() == 4
                    && r.sizes[..2] == self.shape(node.inputs[0])[..2] =>
            {
                let (x, y) = (node.inputs[0], node.outputs[0]);
                let coord = match (r.mode, r.coord) {
                    (ir::ResizeMode::Nearest, ir::CoordTransform::Asymmetric)
                        if r.nearest == ir::NearestMode::Floor =>
                    {
                        0
                    }
                    (ir::ResizeMode::Linear, ir::CoordTransform::HalfPixel) => 1,
                    (ir::ResizeMode::Linear, ir::CoordTransform::PytorchHalfPixel) => 2,
                    (ir::ResizeMode::Linear, ir::CoordTransform::AlignCorners) => 3,
                    (ir::ResizeMode::Linear, ir::CoordTransform::Asymmetric) => 4,
                    _ => {
                        self.unsupported(n, "resize mode/coordinate transform combination");
                        return Ok(());
                    }
                };
                let (in_h, in_w) = self.hw(x);
                let (out_h, out_w) = self.hw(y);
                let blocks = self.layout(x).blocks;
                let src = View::at(self.loc[&x], 0);
                let dst = View::at(self.out_buf(y), 0);
                self.push(
                    n,
                    format!("resize {in_h}x{in_w} -> {out_h}x{out_w}"),
                    Kernel::Resize {
                        linear: r.mode == ir::ResizeMode::Linear,
                        coord,
                        blocks,
                        in_h,
                        in_w,
                        out_h,
                        out_w,
                        src,
                        dst,
                    },
                );
                Ok(())
            }
            Op::Softmax { axis } if self.shape(node.inputs[0]).len() == 2 && *axis == 1 => {
                let (x, y) = (node.inputs[0], node.outputs[0]);
                let lx = self.layout(x);
                let dense = ChannelLayout::dense(lx.channels());
                let src = self.read_as(x, &dense, &name);
                let dst = self.out_buf(y);
                self.push(
                    n,
                    "softmax".into(),
                    Kernel::Softmax {
                        src,
                        dst,
                        len: dense.channels(),
                    },
                );
                Ok(())
            }
            _ => {
                self.unsupported(n, "no kernel for this op or configuration");
                Ok(())
            }
        }
    }
}

impl Lowerer<'_> {
    #[allow(clippy::too_many_arguments)]
    fn lower_conv(
        &mut self,
        n: NodeId,
        conv: &ir::Conv,
        act: Option<Act>,
        x: ValueId,
        w: ValueId,
        bias: Option<ValueId>,
        residual: Option<ValueId>,
        y: ValueId,
    ) -> Result<(), LowerError> {
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
        let cin = self.shape(x)[1];
        let ly = self.layout(y);
        let (in_h, in_w) = self.hw(x);
        let act = act.unwrap_or(Act::None);
        let residual = residual.map(|r| View::at(self.read_as(r, &ly, &name), 0));
        let unit = conv.dilations == [1, 1];
        if kh == 1
            && kw == 1
            && conv.strides == [1, 1]
            && conv.pads == [0; 4]
            && conv.group == 1
            && unit
        {
            if in_h * in_w == 1 && residual.is_none() && !self.gated.contains_key(&x) {
                // One pixel: a matrix-vector product, bound by weight bandwidth; the GEMV kernel
                // streams the same packed panels with independent accumulators.
                let what = format!("pointwise {cin} -> {cout} @ 1x1 (GEMV)");
                return self.lower_fc(n, what, wd, bd, x, y, act);
            }
            let lx = self.layout(x);
            let wp = Self::permute_matrix(wd, cout, cin, &ly, &lx);
            let bp = ly.scatter(bd, 0.0);
            let wr = self.pack_pointwise(&name, &wp, &bp, lx.lanes(), ly.lanes())?;
            let w_scaled = self.scaled_weights(n, x, wr, lx.lanes(), ly.lanes());
            let src = View::at(self.loc[&x], 0);
            let dst = View::at(self.out_buf(y), 0);
            self.push(
                n,
                format!("pointwise {cin} -> {cout} @ {in_h}x{in_w}"),
                Kernel::Pointwise {
                    w: wr,
                    w_scaled,
                    k_blocks: lx.blocks,
                    n_blocks: ly.blocks,
                    pixels: in_h * in_w,
                    src,
                    dst,
                    act,
                    residual,
                    sums: None,
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
            let mut wp = vec![0.0; ly.lanes() * k * k];
            for c in 0..cin {
                let p = ly.phys[c];
                wp[p * k * k..(p + 1) * k * k].copy_from_slice(&wd[c * k * k..(c + 1) * k * k]);
            }
            let bp = ly.scatter(bd, 0.0);
            let mut packed = vec![0.0; rt::depthwise_packed_len(ly.lanes(), k)];
            rt::pack_depthwise(&wp, &bp, ly.lanes(), k, &mut packed).map_err(|e| {
                LowerError::Pack {
                    node: name.clone(),
                    detail: e.to_string(),
                }
            })?;
            let wr = self.push_weights(&packed);
            let src = View::at(self.read_as(x, &ly, &name), 0);
            let dst = View::at(self.out_buf(y), 0);
            self.push(
                n,
                format!(
                    "depthwise {k}x{k} s{} {cin}ch @ {in_h}x{in_w}",
                    conv.strides[0]
                ),
                Kernel::Depthwise {
                    w: wr,
                    blocks: ly.blocks,
                    in_h,
                    in_w,
                    k,
                    stride: conv.strides[0],
                    pads: conv.pads,
                    src,
                    dst,
                    act,
                    residual,
                    sums: None,
                },
            );
            return Ok(());
        }
        let dense_in = ChannelLayout::dense(cin);
        if conv.group == 1 && unit {
            let lanes = ly.lanes();
            let per_out = cin * kh * kw;
            let mut wp = vec![0.0; lanes * per_out];
            for o in 0..cout {
                let p = ly.phys[o];
                wp[p * per_out..(p + 1) * per_out]
                    .copy_from_slice(&wd[o * per_out..(o + 1) * per_out]);
            }
            let bp = ly.scatter(bd, 0.0);
            let mut packed = vec![0.0; rt::conv_packed_len(cin, lanes, kh, kw)];
            rt::pack_conv(&wp, &bp, cin, lanes, kh, kw, &mut packed).map_err(|e| {
                LowerError::Pack {
                    node: name.clone(),
                    detail: e.to_string(),
                }
            })?;
            let wr = self.push_weights(&packed);
            let nchw = self.loc.get(&x) == Some(&Loc::Input);
            let src = if nchw {
                View::at(Loc::Input, 0)
            } else {
                View::at(self.read_as(x, &dense_in, &name), 0)
            };
            let dst = View::at(self.out_buf(y), 0);
            self.push(
                n,
                format!(
                    "conv {kh}x{kw} s{} {cin} -> {cout} @ {in_h}x{in_w}{}",
                    conv.strides[0],
                    if nchw { " (reads NCHW)" } else { "" }
                ),
                Kernel::Conv {
                    w: wr,
                    nchw,
                    cin,
                    in_h,
                    in_w,
                    out_blocks: ly.blocks,
                    kh,
                    kw,
                    stride: conv.strides,
                    pads: conv.pads,
                    src,
                    dst,
                    act,
                    residual,
                },
            );
            return Ok(());
        }
        if !ly.is_dense() {
            self.unsupported(n, "grouped conv writing a non-dense channel layout");
            return Ok(());
        }
        let wr = self.push_weights(wd);
        let br = self.push_weights(bd);
        let src = View::at(self.read_as(x, &dense_in, &name), 0);
        let dst = View::at(self.out_buf(y), 0);
        self.push(
            n,
            format!(
                "grouped conv {kh}x{kw} g{} {cin} -> {cout} @ {in_h}x{in_w}",
                conv.group
            ),
            Kernel::ConvGeneral {
                w: wr,
                b: br,
                cin,
                cout,
                groups: conv.group,
                in_h,
                in_w,
                kh,
                kw,
                stride: conv.strides,
                dilation: conv.dilations,
                pads: conv.pads,
                src,
                dst,
                act,
                residual,
            },
        );
        Ok(())
    }

    fn lower_ghost(&mut self, n: NodeId, gh: &ir::Ghost) -> Result<(), LowerError> {
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
        let (true, Some(c)) = (fits, consts) else {
            self.unsupported(
                n,
                "ghost module other than 1x1 primary + 3x3 depthwise cheap op of ratio 2",
            );
            return Ok(());
        };
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
        let mut packed = vec![0.0; rt::depthwise_packed_len(half * 8, 3)];
        rt::pack_depthwise(
            &dw,
            &first_half.scatter(c[3], 0.0),
            half * 8,
            3,
            &mut packed,
        )
        .map_err(|e| LowerError::Pack {
            node: name.clone(),
            detail: e.to_string(),
        })?;
        let dw_r = self.push_weights(&packed);
        let (h, w) = self.hw(x);
        let residual = if gh.residual {
            Some(View::at(self.read_as(node.inputs[5], &ly, &name), 0))
        } else {
            None
        };
        let shape = rt::GhostShape {
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
                k_blocks: lx.blocks,
                half_blocks: half,
                h,
                w,
                src,
                dst,
                primary: pa,
                cheap: qa,
                residual,
                sums: None,
                scratch,
            },
        );
        Ok(())
    }

    fn lower_se(&mut self, n: NodeId, se: &ir::SqueezeExcite) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let name = node.name.clone();
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let gate_fn = match se.gate {
            Activation::Sigmoid => Some(GateFn::Sigmoid),
            a => act_of(Some(a)).map(GateFn::Act),
        };
        let consts: Option<Vec<&[f32]>> = node.inputs[1..5]
            .iter()
            .map(|&v| self.constant(v))
            .collect();
        let (Activation::Relu, Some(gate_fn), Some(c)) = (se.act, gate_fn, consts) else {
            self.unsupported(
                n,
                "squeeze-excite needs ReLU inside and a sigmoid-like gate",
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
        let inv_pixels = match self.steps.last_mut().map(|s| &mut s.kernel) {
            Some(Kernel::Ghost {
                dst,
                sums: sums @ None,
                ..
            })
            | Some(Kernel::Depthwise {
                dst,
                sums: sums @ None,
                ..
            })
            | Some(Kernel::Pointwise {
                dst,
                sums: sums @ None,
                ..
            }) if dst.loc == src && dst.block == 0 => {
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
            }
            _ => {
                let pool = Kernel::GlobalAvgPool {
                    blocks: lx.blocks,
                    pixels: h * w,
                    src: View::at(src, 0),
                    dst: means,
                };
                self.push(n, "squeeze: global average pool".into(), pool);
                1.0
            }
        };
        let scratch = self.new_buf(lx.lanes() + lr.lanes());
        let gate = self.new_buf(lx.lanes());
        self.push(
            n,
            format!("excite: gate {ch} -> {r} -> {ch}"),
            Kernel::SeGate {
                reduce,
                expand,
                c_blocks: lx.blocks,
                r_blocks: lr.blocks,
                inv_pixels,
                gate_fn,
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
        let len = lx.lanes() * h * w;
        let dst = self.out_buf(y);
        self.push_copy(n, "gating", src, dst, len);
        self.push(
            n,
            "scale channels by the gate".into(),
            Kernel::ChannelAssign {
                op: BinOp::Mul,
                x: dst,
                blocks: lx.blocks,
                pixels: h * w,
                v: VecSrc::Arena(gate),
                act: Act::None,
            },
        );
        Ok(())
    }

    /// Gemm / MatMul with a constant right operand on a `[N, K]` activation: a fully connected
    /// layer with `alpha`, `beta` and the transposes folded into the packed weights.
    fn lower_matmul(&mut self, n: NodeId) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let (x, b, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let (alpha, beta, trans_a, trans_b) = match &node.op {
            Op::Gemm(gm) => (gm.alpha, gm.beta, gm.trans_a, gm.trans_b),
            _ => (1.0, 1.0, false, false),
        };
        let (Some(bd), 2, 2, false) = (
            self.constant(b),
            self.shape(x).len(),
            self.shape(b).len(),
            trans_a,
        ) else {
            self.unsupported(n, "only [N, K] activations times a constant 2-D matrix");
            return Ok(());
        };
        let bs = self.shape(b).to_vec();
        let (k, m) = if trans_b {
            (bs[1], bs[0])
        } else {
            (bs[0], bs[1])
        };
        // W[o][i] in the [out][in] orientation the packer wants.
        let mut w = vec![0.0; m * k];
        for o in 0..m {
            for i in 0..k {
                let v = if trans_b {
                    bd[o * k + i]
                } else {
                    bd[i * m + o]
                };
                w[o * k + i] = alpha * v;
            }
        }
        let mut bias = vec![0.0; m];
        if let Some(&c) = node.inputs.get(2) {
            let Some(cd) = self.constant(c) else {
                self.unsupported(n, "bias is not constant");
                return Ok(());
            };
            match cd.len() {
                1 => bias.iter_mut().for_each(|v| *v = beta * cd[0]),
                len if len == m => bias.iter_mut().zip(cd).for_each(|(v, &c)| *v = beta * c),
                _ => {
                    self.unsupported(n, "bias broadcast other than per output feature");
                    return Ok(());
                }
            }
        }
        let what = format!("{} {k} -> {m}", node.op.name());
        self.lower_fc(n, what, &w, &bias, x, y, Act::None)
    }

    /// A fully connected layer `y = act(W x + b)` over `[N, K]` (or one-pixel) activations,
    /// with `w` logical `[M][K]`: rows and columns permuted to the output and input lane order,
    /// packed, and run by the GEMV kernel.
    #[allow(clippy::too_many_arguments)]
    fn lower_fc(
        &mut self,
        n: NodeId,
        what: String,
        w: &[f32],
        bias: &[f32],
        x: ValueId,
        y: ValueId,
        act: Act,
    ) -> Result<(), LowerError> {
        let name = self.g.node(n).name.clone();
        let (lx, ly) = (self.layout(x), self.layout(y));
        let wp = Self::permute_matrix(w, ly.channels(), lx.channels(), &ly, &lx);
        let wr = self.pack_pointwise(&name, &wp, &ly.scatter(bias, 0.0), lx.lanes(), ly.lanes())?;
        let src = self.loc[&x];
        let dst = self.out_buf(y);
        let kernel = Kernel::Fc {
            w: wr,
            k_blocks: lx.blocks,
            n_blocks: ly.blocks,
            src,
            dst,
            act,
        };
        self.push(n, what, kernel);
        Ok(())
    }

    /// Whether an SE output `y` can stay un-materialized: its only reader is a 1x1 conv on more
    /// than one pixel (a Ghost primary or a pointwise conv) taking it as the data input.
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
        h * w > 1
            && match &self.g.node(readers[0].0).op {
                Op::Ghost(gh) => pointwise(&gh.primary),
                Op::FusedConv(f) => pointwise(&f.conv),
                Op::Conv(c) => pointwise(c),
                _ => false,
            }
    }

    /// For a 1x1 conv reading an SE-gated value: a step scaling its packed weights by the gate
    /// into a scratch buffer, which the conv then uses.
    fn scaled_weights(
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

    fn lower_affine(&mut self, n: NodeId, x: ValueId, y: ValueId, scale: &[f32], shift: &[f32]) {
        let ly = self.layout(y);
        let (h, w) = self.hw(x);
        let src = self.read_as(x, &ly, &self.g.node(n).name.clone());
        let dst = self.out_buf(y);
        let len = ly.lanes() * h * w;
        let s = self.push_weights(&ly.scatter(scale, 0.0));
        let t = self.push_weights(&ly.scatter(shift, 0.0));
        self.push_copy(n, "affine", src, dst, len);
        let pixels = h * w;
        self.push(
            n,
            "per-channel scale".into(),
            Kernel::ChannelAssign {
                op: BinOp::Mul,
                x: dst,
                blocks: ly.blocks,
                pixels,
                v: VecSrc::Blob(s),
                act: Act::None,
            },
        );
        self.push(
            n,
            "per-channel shift".into(),
            Kernel::ChannelAssign {
                op: BinOp::Add,
                x: dst,
                blocks: ly.blocks,
                pixels,
                v: VecSrc::Blob(t),
                act: Act::None,
            },
        );
    }

    /// Per-channel values of a constant broadcast against `[N, C, ...]`: a scalar, or one value
    /// per channel (`[C]` after squeezing ones, laid out on axis 1).
    fn per_channel(&self, c: ValueId, channels: usize, out_rank: usize) -> Option<Vec<f32>> {
        let t = self.g.value(c).constant()?;
        let data = t.as_f32()?;
        if data.len() == 1 {
            return Some(vec![data[0]; channels]);
        }
        let s = t.shape();
        // Right-aligned broadcasting: the channel axis is at position `rank - (out_rank - 1)`.
        let axis = s.len().checked_sub(out_rank - 1)?;
        let only_channels = s.iter().enumerate().all(|(i, &d)| d == 1 || i == axis);
        (only_channels && s.get(axis) == Some(&channels)).then(|| data.to_vec())
    }

    fn lower_binary(&mut self, n: NodeId, op: BinaryOp) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let name = node.name.clone();
        let (a, b, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let ys = self.shape(y).to_vec();
        if !matches!(ys.len(), 2 | 4) {
            self.unsupported(
                n,
                "elementwise op on a tensor that is not [N, C] or [N, C, H, W]",
            );
            return Ok(());
        }
        let ly = self.layout(y);
        let (h, w) = self.hw(y);
        let len = ly.lanes() * h * w;
        let a_const = self.g.value(a).constant().is_some();
        let b_const = self.g.value(b).constant().is_some();
        // Activation (op) constant: the constant folds into a per-channel vector.
        if a_const != b_const {
            let (x, c) = if b_const { (a, b) } else { (b, a) };
            let Some(mut v) = self.per_channel(c, ys[1], ys.len()) else {
                self.unsupported(n, "constant operand is neither a scalar nor per-channel");
                return Ok(());
            };
            let op = match (op, b_const) {
                (BinaryOp::Add, _) | (BinaryOp::Mul, _) => op,
                (BinaryOp::Sub, true) => {
                    v.iter_mut().for_each(|e| *e = -*e);
                    BinaryOp::Add
                }
                (BinaryOp::Div, true) => {
                    v.iter_mut().for_each(|e| *e = 1.0 / *e);
                    BinaryOp::Mul
                }
                _ => {
                    self.unsupported(
                        n,
                        "constant on the left of a subtraction or division, or an unsupported op",
                    );
                    return Ok(());
                }
            };
            if self.shape(x) != &ys[..] {
                self.unsupported(n, "constant operand changes the output shape");
                return Ok(());
            }
            let src = self.read_as(x, &ly, &name);
            let dst = self.out_buf(y);
            let vr = self.push_weights(&ly.scatter(&v, 0.0));
            let bop = if op == BinaryOp::Add {
                BinOp::Add
            } else {
                BinOp::Mul
            };
            self.push_copy(n, "op", src, dst, len);
            self.push(
                n,
                format!("{} per-channel constant", node.op.name()),
                Kernel::ChannelAssign {
                    op: bop,
                    x: dst,
                    blocks: ly.blocks,
                    pixels: h * w,
                    v: VecSrc::Blob(vr),
                    act: Act::None,
                },
            );
            return Ok(());
        }
        if a_const && b_const {
            self.unsupported(n, "both operands constant (should have been folded)");
            return Ok(());
        }
        let bop = match op {
            BinaryOp::Add => BinOp::Add,
            BinaryOp::Mul => BinOp::Mul,
            _ => {
                self.unsupported(n, "only Add and Mul between two activations");
                return Ok(());
            }
        };
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        if sa == ys && sb == ys {
            let la = self.read_as(a, &ly, &name);
            let lb = self.read_as(b, &ly, &name);
            let dst = self.out_buf(y);
            self.push(
                n,
                node.op.name().into(),
                Kernel::Binary {
                    op: bop,
                    a: la,
                    b: lb,
                    dst,
                    len,
                    act: Act::None,
                },
            );
            return Ok(());
        }
        // One side [N, C, 1, 1]: per-channel broadcast of an activation (an unfused SE gate).
        let small =
            |s: &[usize]| s.len() == ys.len() && s[1] == ys[1] && s[2..].iter().all(|&d| d == 1);
        let (big, vec) = if sa == ys && small(&sb) {
            (a, b)
        } else if sb == ys && small(&sa) {
            (b, a)
        } else {
            self.unsupported(n, "broadcast other than per-channel");
            return Ok(());
        };
        let src = self.read_as(big, &ly, &name);
        let v = self.read_as(vec, &ly, &name);
        let dst = self.out_buf(y);
        self.push_copy(n, "op", src, dst, len);
        self.push(
            n,
            format!("{} per-channel", node.op.name()),
            Kernel::ChannelAssign {
                op: bop,
                x: dst,
                blocks: ly.blocks,
                pixels: h * w,
                v: VecSrc::Arena(v),
                act: Act::None,
            },
        );
        Ok(())
    }
}

/// Every arena-or-user location a kernel touches.
fn locs(k: &Kernel) -> Vec<Loc> {
    let v = |x: &View| x.loc;
    let ov = |x: &Option<View>| x.map(|x| x.loc);
    let mut out: Vec<Loc> = match k {
        Kernel::ToBlocked { src, dst, .. } | Kernel::FromBlocked { src, dst, .. } => {
            vec![*src, *dst]
        }
        Kernel::Pointwise {
            w_scaled,
            src,
            dst,
            residual,
            sums,
            ..
        } => [Some(v(src)), Some(v(dst)), ov(residual), *sums, *w_scaled]
            .into_iter()
            .flatten()
            .collect(),
        Kernel::Depthwise {
            src,
            dst,
            residual,
            sums,
            ..
        } => [Some(v(src)), Some(v(dst)), ov(residual), *sums]
            .into_iter()
            .flatten()
            .collect(),
        Kernel::Ghost {
            pw_scaled,
            src,
            dst,
            residual,
            sums,
            scratch,
            ..
        } => [
            Some(v(src)),
            Some(v(dst)),
            ov(residual),
            *sums,
            *pw_scaled,
            Some(*scratch),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Kernel::Conv {
            src, dst, residual, ..
        }
        | Kernel::ConvGeneral {
            src, dst, residual, ..
        } => [Some(v(src)), Some(v(dst)), ov(residual)]
            .into_iter()
            .flatten()
            .collect(),
        Kernel::Fc { src, dst, .. } | Kernel::Softmax { src, dst, .. } => vec![*src, *dst],
        Kernel::GlobalAvgPool { src, dst, .. } => vec![v(src), *dst],
        Kernel::SeGate {
            sums,
            scratch,
            gate,
            ..
        } => vec![*sums, *scratch, *gate],
        Kernel::ScalePacked { scale, dst, .. } => vec![*scale, *dst],
        Kernel::Binary { a, b, dst, .. } => vec![*a, *b, *dst],
        Kernel::ChannelAssign { x, v: vs, .. } => match vs {
            VecSrc::Arena(l) => vec![*x, *l],
            VecSrc::Blob(_) => vec![*x],
        },
        Kernel::Unary { x, .. } => vec![*x],
        Kernel::Zero { dst, .. } => vec![*dst],
        Kernel::Copy { src, dst, .. } | Kernel::Remap { src, dst, .. } => vec![*src, *dst],
        Kernel::Pool { src, dst, .. } | Kernel::Resize { src, dst, .. } => vec![v(src), v(dst)],
    };
    out.dedup();
    out
}

/// Every distinct location a kernel touches (public for the emitter's borrow splitting).
pub fn kernel_locs(k: &Kernel) -> Vec<Loc> {
    let mut l = locs(k);
    let mut seen = Vec::new();
    l.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
    l
}

/// Lowers an optimized graph (see `passes::optimize`) to runtime calls and a memory plan.
pub fn lower(g: &Graph) -> Result<Program, LowerError> {
    if g.inputs.len() != 1 || g.outputs.len() != 1 {
        return Err(LowerError::Io {
            inputs: g.inputs.len(),
            outputs: g.outputs.len(),
        });
    }
    let (input, output) = (g.inputs[0], g.outputs[0]);
    let batch = g.value(input).ty.shape.first().copied().unwrap_or(1).max(1);
    let mut l = Lowerer {
        g,
        layouts: layout::assign(g),
        batch,
        loc: HashMap::new(),
        remapped: HashMap::new(),
        buffers: Vec::new(),
        blob: WeightBlob::new(),
        steps: Vec::new(),
        unsupported: Vec::new(),
        gated: HashMap::new(),
    };
    let in_shape = g.value(input).ty.shape.clone();
    let out_shape = g.value(output).ty.shape.clone();
    if !matches!(in_shape.len(), 2 | 4)
        || !matches!(out_shape.len(), 2 | 4)
        || out_shape.first() != Some(&batch)
    {
        return Err(LowerError::Unsupported(vec![format!(
            "model input [{}] / output [{}]: expected [N, C, H, W] or [N, C] with the same N",
            ir::fmt_shape(&in_shape),
            ir::fmt_shape(&out_shape)
        )]));
    }
    // A dense conv (the stem) that is the input's only reader reads NCHW directly; anything
    // else gets the input converted to the blocked layout first.
    let readers = g.consumers(input);
    let stem_reads_nchw = readers.len() == 1
        && !g.is_output(input)
        && g.value(input).ty.shape.len() == 4
        && match &g.node(readers[0].0).op {
            Op::Conv(c) | Op::FusedConv(ir::FusedConv { conv: c, .. }) => {
                c.group == 1 && c.dilations == [1, 1] && c.kernel != [1, 1] && readers[0].1 == 0
            }
            _ => false,
        };
    if stem_reads_nchw {
        l.loc.insert(input, Loc::Input);
    } else {
        let lin = l.layout(input);
        let (h, w) = l.hw(input);
        let dst = l.out_buf(input);
        l.steps.push(Step {
            nodes: vec![],
            out_shape: vec![],
            node: None,
            what: format!(
                "input NCHW -> NCHW8c, {} channels @ {h}x{w}",
                lin.channels()
            ),
            macs: 0,
            kernel: Kernel::ToBlocked {
                channels: lin.channels(),
                pixels: h * w,
                src: Loc::Input,
                dst,
            },
        });
    }
    let order = g.topo_order().map_err(|n| {
        LowerError::Unsupported(vec![format!("cycle through '{}'", g.node(n).name)])
    })?;
    for n in order {
        // Below an unsupported node there is no buffer to read: that node is already reported,
        // so skip its dependents instead of indexing their missing input (which panicked).
        let starved = |v: &ValueId| g.value(*v).constant().is_none() && !l.loc.contains_key(v);
        if !l.unsupported.is_empty() && g.node(n).inputs.iter().any(starved) {
            continue;
        }
        l.lower_node(n)?;
    }
    if !l.unsupported.is_empty() {
        return Err(LowerError::Unsupported(l.unsupported));
    }
    let lout = l.layout(output);
    let (h, w) = l.hw(output);
    let src = l.loc[&output];
    l.steps.push(Step {
        nodes: vec![],
        out_shape: vec![],
        node: None,
        what: format!("output NCHW8c -> NCHW, {} channels", lout.channels()),
        macs: 0,
        kernel: Kernel::FromBlocked {
            phys: lout.phys.clone(),
            pixels: h * w,
            blocks: lout.blocks,
            src,
            dst: Loc::Output,
        },
    });
    // Liveness: a buffer lives from the first step that touches it to the last.
    let mut span: Vec<Option<(usize, usize)>> = vec![None; l.buffers.len()];
    for (i, step) in l.steps.iter().enumerate() {
        for loc in locs(&step.kernel) {
            if let Loc::Buf(b) = loc {
                let s = span[b].get_or_insert((i, i));
                s.1 = i;
            }
        }
    }
    let intervals: Vec<Interval> = l
        .buffers
        .iter()
        .zip(&span)
        .map(|(&size, s)| {
            let (first, last) = s.unwrap_or((0, 0));
            Interval { size, first, last }
        })
        .collect();
    let placement = arena::place(&intervals, crate::codegen::blob::ALIGN_F32);
    let buffers = placement
        .offsets
        .iter()
        .zip(&l.buffers)
        .map(|(&offset, &len)| Buffer { offset, len })
        .collect();
    let per_image = |s: &[usize]| {
        let mut s = s.to_vec();
        s[0] = 1;
        s
    };
    Ok(Program {
        input: Io {
            name: g.value(input).name.clone(),
            shape: in_shape.clone(),
        },
        output: Io {
            name: g.value(output).name.clone(),
            shape: out_shape.clone(),
        },
        dynamic_batch: g.dynamic_batch,
        batch,
        image_input: per_image(&in_shape),
        image_output: per_image(&out_shape),
        buffers,
        arena_len: placement.len,
        weights: l.blob,
        steps: l.steps,
    })
}
