//! Dense layers and the classifier head: Linear, Gemm and MatMul with a constant matrix become
//! one `fc` (GEMV) call with alpha, beta and the transposes folded into the packed weights;
//! Softmax over `[N, C]` runs on a dense copy of its input; a detection head's DFL (softmax
//! over groups of channels, then a weighted sum) is one `dfl` call.
//!
//! Deliberately not done here: matrix products of two activations, or of activations with more
//! than two dims (no kernel; reported as unsupported).

use ghost_runtime::Activation;

use super::{act_of, ChannelLayout, LowerError, Lowerer};
use crate::ir::{self, NodeId, Op, ValueId};
use crate::plan::program::*;

impl Lowerer<'_> {
    /// A fused Linear `act(x W^T + b)` (constant W and b).
    pub(super) fn lower_linear(
        &mut self,
        n: NodeId,
        act: Option<ir::Activation>,
    ) -> Result<(), LowerError> {
        let Some(act) = act_of(act) else {
            self.unsupported_as(
                n,
                "fused activation has no epilogue form",
                "ReLU, Clip, HardSigmoid, HardSwish, Sigmoid, SiLU or none",
            );
            return Ok(());
        };
        let node = self.g.node(n);
        let (x, w, b, y) = (
            node.inputs[0],
            node.inputs[1],
            node.inputs[2],
            node.outputs[0],
        );
        let (Some(wd), Some(bd)) = (self.constant(w), self.constant(b)) else {
            self.unsupported_as(
                n,
                "weights or bias computed at run time",
                "constant weights and bias",
            );
            return Ok(());
        };
        let (m, k) = (self.shape(w)[0], self.shape(w)[1]);
        self.lower_fc(n, format!("linear {k} -> {m}"), wd, bd, x, y, act)
    }

    /// Gemm / MatMul with a constant right operand on a `[N, K]` activation: a fully connected
    /// layer with `alpha`, `beta` and the transposes folded into the packed weights.
    pub(super) fn lower_matmul(&mut self, n: NodeId) -> Result<(), LowerError> {
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
            self.unsupported_as(
                n,
                "operands are not an [N, K] activation and a constant 2-D matrix",
                "[N, K] activations times a constant [K, M] (or transposed) matrix",
            );
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
                self.unsupported_as(n, "bias computed at run time", "a constant bias");
                return Ok(());
            };
            match cd.len() {
                1 => bias.iter_mut().for_each(|v| *v = beta * cd[0]),
                len if len == m => bias.iter_mut().zip(cd).for_each(|(v, &c)| *v = beta * c),
                _ => {
                    self.unsupported_as(
                        n,
                        &format!("bias of {} values for {m} output features", cd.len()),
                        "a scalar or per-output-feature bias",
                    );
                    return Ok(());
                }
            }
        }
        let what = format!("{} {k} -> {m}", node.op.name());
        self.lower_fc(n, what, &w, &bias, x, y, Activation::None)
    }

    /// A fully connected layer `y = act(W x + b)` over `[N, K]` (or one-pixel) activations,
    /// with `w` logical `[M][K]`: rows and columns permuted to the output and input lane order,
    /// packed, and run by the GEMV kernel.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lower_fc(
        &mut self,
        n: NodeId,
        what: String,
        w: &[f32],
        bias: &[f32],
        x: ValueId,
        y: ValueId,
        act: Activation,
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

    /// Softmax over the channels of `[N, C]`, on a dense copy of the input.
    pub(super) fn lower_softmax(&mut self, n: NodeId) {
        let node = self.g.node(n);
        let name = node.name.clone();
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
    }

    /// A detection head's distribution integral: the input in the dense layout (channel `c`
    /// at lane `c`, so each side's bins are consecutive lanes), the constant weights in the
    /// blob, the output in its own (dense) layout.
    pub(super) fn lower_dfl(&mut self, n: NodeId, bins: usize) {
        let node = self.g.node(n);
        let name = node.name.clone();
        let (x, wv, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let Some(w) = self.constant(wv).map(<[f32]>::to_vec) else {
            self.unsupported_as(n, "weights computed at run time", "constant weights");
            return;
        };
        let channels = self.shape(x)[1];
        let src = self.read_as(x, &ChannelLayout::dense(channels), &name);
        let ly = self.layout(y);
        if !ly.is_dense() {
            self.unsupported_as(n, "output in a non-dense channel layout", "a dense layout");
            return;
        }
        let (h, w_px) = self.hw(x);
        let pixels = h * w_px;
        let wr = self.push_weights(&w);
        let dst = self.out_buf(y);
        let groups = channels / bins;
        self.push(
            n,
            format!("dfl: softmax over {groups} x {bins} bins, expectation"),
            Kernel::Dfl {
                shape: ghost_runtime::DflShape {
                    groups,
                    bins,
                    pixels,
                },
                w: wr,
                src,
                dst,
            },
        );
    }

    /// A layer normalization over the channels of each pixel: input and output in the dense
    /// layout, gamma and beta padded to whole blocks in the blob.
    pub(super) fn lower_channel_norm(&mut self, n: NodeId, eps: f32) {
        let node = self.g.node(n);
        let name = node.name.clone();
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let (Some(gamma), Some(beta)) = (
            self.constant(node.inputs[1]).map(<[f32]>::to_vec),
            self.constant(node.inputs[2]).map(<[f32]>::to_vec),
        ) else {
            self.unsupported_as(n, "gamma or beta computed at run time", "constants");
            return;
        };
        let channels = self.shape(x)[1];
        let dense = ChannelLayout::dense(channels);
        let src = self.read_as(x, &dense, &name);
        if !self.layout(y).is_dense() {
            self.unsupported_as(n, "output in a non-dense channel layout", "a dense layout");
            return;
        }
        let (h, w) = self.hw(x);
        let gamma = self.push_weights(&dense.scatter(&gamma, 0.0));
        let beta = self.push_weights(&dense.scatter(&beta, 0.0));
        let dst = self.out_buf(y);
        self.push(
            n,
            format!("channel norm over {channels} channels"),
            Kernel::ChannelNorm {
                shape: ghost_runtime::ChannelNormShape {
                    channels,
                    pixels: h * w,
                    eps,
                },
                gamma,
                beta,
                src,
                dst,
            },
        );
    }
}
