//! ConvTranspose (upsampling heads, decoders): two steps over NCHW8c.
//!
//! 1. The pointwise GEMM (the tuned 1x1-conv kernel) multiplies every input pixel by all
//!    `kh * kw` taps at once: `cols` has `kh * kw` copies of the output's channel blocks,
//!    tap-major, over the input's pixels. Its MACs are the transposed conv's own (no zero
//!    insertion, no skipped work).
//! 2. `col2im_fused` sums, per output pixel, the tap columns that land on it (each output
//!    written once, in a fixed order: the result does not depend on the thread count), and
//!    gives each output row its bias and activation while the row is in cache (the activations
//!    without an epilogue form, Tanh and LeakyRelu, as the gather's unary `post` function).
//!
//! Deliberately not done here: groups (`group > 1` is reported unsupported; no upsampling head
//! we know of uses them), and a thread split of the gather.

use ghost_runtime::{Activation, ConvTransposeShape, PointwiseShape};

use super::LowerError;
use super::{act_of, unary_of, Lowerer};
use crate::ir::{self, NodeId};
use crate::plan::program::*;

impl Lowerer<'_> {
    pub(super) fn lower_conv_transpose(
        &mut self,
        n: NodeId,
        t: &ir::ConvTranspose,
    ) -> Result<(), LowerError> {
        let node = self.g.node(n);
        let (x, w, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let bias = node.inputs.get(2).copied();
        let name = node.name.clone();
        let c = &t.conv;
        if c.group != 1 {
            self.unsupported_as(n, &format!("group={}", c.group), "group=1");
            return Ok(());
        }
        let Some(wd) = self.constant(w).map(<[f32]>::to_vec) else {
            self.unsupported(n, "weights are not constant");
            return Ok(());
        };
        let ws = self.shape(w).to_vec();
        let (cin, cout, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        let bd = match bias {
            None => vec![0.0; cout],
            Some(b) => match self.constant(b) {
                Some(d) => d.to_vec(),
                None => {
                    self.unsupported(n, "bias is not constant");
                    return Ok(());
                }
            },
        };
        let (lx, ly) = (self.layout(x), self.layout(y));
        let ((in_h, in_w), (out_h, out_w)) = (self.hw(x), self.hw(y));
        let taps = kh * kw;
        // The GEMM's [taps * ly.lanes()][lx.lanes()] matrix: row (tap, lane of o), column
        // lane of ci, from the ONNX weight [ci][o][ky][kx].
        let (rows, kl) = (taps * ly.lanes(), lx.lanes());
        let mut m = vec![0.0; rows * kl];
        for ci in 0..cin {
            for o in 0..cout {
                for tap in 0..taps {
                    m[(tap * ly.lanes() + ly.phys[o]) * kl + lx.phys[ci]] =
                        wd[(ci * cout + o) * taps + tap];
                }
            }
        }
        let wr = self.pack_pointwise(&name, &m, &vec![0.0; rows], kl, rows)?;
        let shape = ConvTransposeShape {
            blocks: ly.blocks,
            in_h,
            in_w,
            out_h,
            out_w,
            kh,
            kw,
            stride_h: c.strides[0],
            stride_w: c.strides[1],
            dilation_h: c.dilations[0],
            dilation_w: c.dilations[1],
            pad_top: c.pads[0],
            pad_left: c.pads[1],
        };
        let cols = self.new_buf(shape.cols_len());
        let src = View::at(self.loc[&x], 0);
        let what = format!(
            "conv-transpose {kh}x{kw} s{}x{} {cin} -> {cout} @ {in_h}x{in_w} -> {out_h}x{out_w}",
            c.strides[0], c.strides[1]
        );
        self.push(
            n,
            format!("{what}: taps GEMM"),
            Kernel::Pointwise {
                w: wr,
                w_scaled: None,
                shape: PointwiseShape {
                    k_blocks: lx.blocks,
                    n_blocks: taps * ly.blocks,
                    pixels: in_h * in_w,
                },
                src,
                dst: View::at(cols, 0),
                epilogue: Epilogue {
                    activation: Activation::None,
                    residual: None,
                    channel_sums: None,
                },
            },
        );
        let dst = self.out_buf(y);
        let post = t.act.and_then(unary_of);
        let act = match post {
            Some(_) => Activation::None,
            None => act_of(t.act).expect("every non-unary activation has an epilogue form"),
        };
        let bias = self.push_weights(&ly.scatter(&bd, 0.0));
        self.push(
            n,
            format!("{what}: gather, bias, activation"),
            Kernel::Col2Im {
                shape,
                cols,
                dst,
                bias,
                act,
                post,
            },
        );
        Ok(())
    }
}
