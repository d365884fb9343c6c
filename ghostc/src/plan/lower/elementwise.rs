//! Elementwise ops on activations: standalone activations (in place on a copy), an unfused
//! BatchNorm (per-channel scale and shift), and binary ops (Add, Sub, Mul, Div): two
//! activations of one shape (`binary`), an activation and a per-channel vector
//! (`channel_assign`, the vector from the blob when constant, from the arena when it is an
//! activation such as an unfused SE gate), an activation and any other constant that
//! broadcasts to one image (expanded at compile time into the blob: `BinaryConst`).
//!
//! Deliberately not done here: broadcasting an activation to a larger shape (only a
//! per-channel `[N, C, 1, 1]` one), and constants with a batch dimension above 1.

use ghost_runtime::{self as rt, BinaryOp};

use super::{act_of, unary_of, LowerError, Lowerer};
use crate::ir::{self, Activation, NodeId, Op, ValueId};
use crate::plan::program::*;

impl Lowerer<'_> {
    pub(super) fn lower_activation(&mut self, n: NodeId, a: Activation) {
        let node = self.g.node(n);
        let x = node.inputs[0];
        let y = node.outputs[0];
        let src = self.loc[&x];
        let len = self.blocked_len(x, &self.layout(x));
        let dst = self.in_place_dst(n, x, y, src, "activation", len);
        if let Some(f) = unary_of(a) {
            self.push(
                n,
                Op::Activation(a).name().into(),
                Kernel::Unary { f, x: dst, len },
            );
        } else {
            let act = act_of(Some(a)).expect("every non-unary activation has an epilogue form");
            let (h, w) = self.hw(x);
            let blocks = self.layout(x).blocks;
            let zeros = self.push_weights(&vec![0.0; blocks * 8]);
            self.push(
                n,
                Op::Activation(a).name().into(),
                Kernel::ChannelAssign {
                    op: BinaryOp::Add,
                    x: dst,
                    blocks,
                    pixels: h * w,
                    v: VecSrc::Blob(zeros),
                    act,
                },
            );
        }
    }

    /// An unfused BatchNorm (constant parameters): `x * scale + shift` per channel.
    pub(super) fn lower_batch_norm(&mut self, n: NodeId, bn: &ir::BatchNorm) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let params: Option<Vec<&[f32]>> = node.inputs[1..5]
            .iter()
            .map(|&v| self.constant(v))
            .collect();
        let Some(p) = params else {
            self.unsupported_as(
                n,
                "scale, bias, mean or variance is computed at run time",
                "constant BatchNorm parameters",
            );
            return;
        };
        let scale: Vec<f32> = (0..p[0].len())
            .map(|c| p[0][c] / (p[3][c] + bn.epsilon).sqrt())
            .collect();
        let shift: Vec<f32> = (0..p[0].len())
            .map(|c| p[1][c] - p[2][c] * scale[c])
            .collect();
        self.lower_affine(n, x, y, &scale, &shift);
    }

    fn lower_affine(&mut self, n: NodeId, x: ValueId, y: ValueId, scale: &[f32], shift: &[f32]) {
        let ly = self.layout(y);
        let (h, w) = self.hw(x);
        let src = self.read_as(x, &ly, &self.g.node(n).name.clone());
        let len = ly.lanes() * h * w;
        let s = self.push_weights(&ly.scatter(scale, 0.0));
        let t = self.push_weights(&ly.scatter(shift, 0.0));
        let dst = self.in_place_dst(n, x, y, src, "affine", len);
        let pixels = h * w;
        self.push(
            n,
            "per-channel scale".into(),
            Kernel::ChannelAssign {
                op: BinaryOp::Mul,
                x: dst,
                blocks: ly.blocks,
                pixels,
                v: VecSrc::Blob(s),
                act: rt::Activation::None,
            },
        );
        self.push(
            n,
            "per-channel shift".into(),
            Kernel::ChannelAssign {
                op: BinaryOp::Add,
                x: dst,
                blocks: ly.blocks,
                pixels,
                v: VecSrc::Blob(t),
                act: rt::Activation::None,
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

    pub(super) fn lower_binary(&mut self, n: NodeId, op: ir::BinaryOp) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let name = node.name.clone();
        let (a, b, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let ys = self.shape(y).to_vec();
        if !matches!(ys.len(), 2..=4) {
            self.unsupported_as(
                n,
                &format!("output rank {} [{}]", ys.len(), ir::fmt_shape(&ys)),
                "[N, C], [N, C, L] or [N, C, H, W] tensors",
            );
            return Ok(());
        }
        let ly = self.layout(y);
        let (h, w) = self.hw(y);
        let len = ly.lanes() * h * w;
        let a_const = self.g.value(a).constant().is_some();
        let b_const = self.g.value(b).constant().is_some();
        let bop = match op {
            ir::BinaryOp::Add => BinaryOp::Add,
            ir::BinaryOp::Mul => BinaryOp::Mul,
            ir::BinaryOp::Sub => BinaryOp::Sub,
            ir::BinaryOp::Div => BinaryOp::Div,
            ir::BinaryOp::PRelu => BinaryOp::PRelu,
            _ => {
                self.unsupported_as(
                    n,
                    &format!("{} on f32 activations", node.op.name()),
                    "Add, Sub, Mul, Div and PRelu",
                );
                return Ok(());
            }
        };
        if a_const && b_const {
            self.unsupported_as(
                n,
                "both operands are constant (not folded)",
                "at least one operand computed from the input",
            );
            return Ok(());
        }
        // Activation (op) constant.
        if a_const != b_const {
            let (x, c) = if b_const { (a, b) } else { (b, a) };
            if self.shape(x) != &ys[..] {
                self.unsupported_as(
                    n,
                    "the constant operand broadcasts the output to a larger shape",
                    "constants that keep the activation's shape",
                );
                return Ok(());
            }
            // A scalar or per-channel constant: one vector, broadcast by `channel_assign`.
            // Sub and Div by a constant become Add and Mul of its negation and reciprocal.
            let per_channel = self.per_channel(c, ys[1], ys.len());
            let folded = match (per_channel, op, b_const) {
                (Some(v), ir::BinaryOp::Add | ir::BinaryOp::Mul, _)
                | (Some(v), ir::BinaryOp::PRelu, true) => Some((v, bop)),
                (Some(v), ir::BinaryOp::Sub, true) => {
                    Some((v.iter().map(|e| -e).collect(), BinaryOp::Add))
                }
                (Some(v), ir::BinaryOp::Div, true) => {
                    Some((v.iter().map(|e| 1.0 / e).collect(), BinaryOp::Mul))
                }
                _ => None,
            };
            let src = self.read_as(x, &ly, &name);
            if let Some((v, cop)) = folded {
                let vr = self.push_weights(&ly.scatter(&v, 0.0));
                let dst = self.in_place_dst(n, x, y, src, "op", len);
                self.push(
                    n,
                    format!("{} per-channel constant", node.op.name()),
                    Kernel::ChannelAssign {
                        op: cop,
                        x: dst,
                        blocks: ly.blocks,
                        pixels: h * w,
                        v: VecSrc::Blob(vr),
                        act: rt::Activation::None,
                    },
                );
                return Ok(());
            }
            // Any other broadcastable constant (per pixel, a whole tensor such as a detector's
            // anchor grid): expanded to one image at compile time, in the output's layout.
            let Some(full) = self.expand_const(c, &ys) else {
                self.unsupported_as(
                    n,
                    &format!(
                        "constant operand of shape [{}] against [{}]",
                        ir::fmt_shape(self.shape(c)),
                        ir::fmt_shape(&ys)
                    ),
                    "constants that broadcast to one image (batch dimension 1 or absent)",
                );
                return Ok(());
            };
            let dst = self.out_buf(y);
            let cr = self.push_weights(&ly.blocked(&full, h * w));
            self.push(
                n,
                format!(
                    "{} constant [{}]",
                    node.op.name(),
                    ir::fmt_shape(self.shape(c))
                ),
                Kernel::BinaryConst {
                    op: bop,
                    x: src,
                    c: cr,
                    const_first: a_const,
                    dst,
                    len,
                },
            );
            return Ok(());
        }
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
                    act: rt::Activation::None,
                },
            );
            return Ok(());
        }
        // One side [N, C, 1, 1]: per-channel broadcast of an activation (an unfused SE gate);
        // `channel_assign` computes `x op v`, so Sub and Div only with the vector on the right.
        let small =
            |s: &[usize]| s.len() == ys.len() && s[1] == ys[1] && s[2..].iter().all(|&d| d == 1);
        let commutes = matches!(bop, BinaryOp::Add | BinaryOp::Mul);
        let (big, vec) = if sa == ys && small(&sb) {
            (a, b)
        } else if sb == ys && small(&sa) && commutes {
            (b, a)
        } else {
            self.unsupported_as(
                n,
                &format!(
                    "{} broadcasting [{}] with [{}]",
                    node.op.name(),
                    ir::fmt_shape(&sa),
                    ir::fmt_shape(&sb)
                ),
                "equal shapes, or a per-channel [N, C, 1, 1] operand (on the right for Sub and Div)",
            );
            return Ok(());
        };
        let src = self.read_as(big, &ly, &name);
        let v = self.read_as(vec, &ly, &name);
        let dst = self.in_place_dst(n, big, y, src, "op", len);
        self.push(
            n,
            format!("{} per-channel", node.op.name()),
            Kernel::ChannelAssign {
                op: bop,
                x: dst,
                blocks: ly.blocks,
                pixels: h * w,
                v: VecSrc::Arena(v),
                act: rt::Activation::None,
            },
        );
        Ok(())
    }

    /// A constant broadcast (ONNX rules, aligned on the right) to one image of an output
    /// `[N, C, ...]`: the logical `[C][pixels]` values; `None` when it has a batch dimension
    /// other than 1 or does not broadcast.
    fn expand_const(&self, c: ValueId, ys: &[usize]) -> Option<Vec<f32>> {
        let t = self.g.value(c).constant()?;
        let data = t.as_f32()?;
        let cs = t.shape();
        if cs.len() > ys.len() {
            return None;
        }
        let mut dims = vec![1; ys.len() - cs.len()];
        dims.extend_from_slice(cs);
        if dims[0] != 1 || dims.iter().zip(ys).any(|(&d, &o)| d != 1 && d != o) {
            return None;
        }
        // Row-major strides of the constant, zero on its broadcast axes.
        let mut strides = vec![0; dims.len()];
        let mut acc = 1;
        for i in (0..dims.len()).rev() {
            strides[i] = if dims[i] == 1 { 0 } else { acc };
            acc *= dims[i];
        }
        let per_image: usize = ys[1..].iter().product();
        let mut out = Vec::with_capacity(per_image);
        for flat in 0..per_image {
            let (mut rest, mut at) = (flat, 0);
            for i in (1..ys.len()).rev() {
                at += (rest % ys[i]) * strides[i];
                rest /= ys[i];
            }
            out.push(data[at]);
        }
        Some(out)
    }
}
