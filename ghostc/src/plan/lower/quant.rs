//! Int8: QuantizeLinear / DequantizeLinear at the f32/int8 boundaries (`quantize_u8`,
//! `dequantize_u8`), integer convolutions on the int8 kernels (`pointwise_u8`,
//! `depthwise_u8`, and for a classifier's QMatMul the 1-pixel pointwise), channel
//! concatenation (a Ghost module's `Concat(x1, depthwise(x1))` written whole by its depthwise
//! conv, `depthwise_u8_concat`, which converts `x1` and its own lines into the concatenation
//! with no tensor of its own: [`Lowerer::ghost_concat`]; otherwise `concat_u8`, where an
//! input with the output's parameters at a block-aligned offset, read otherwise only by int8
//! convs, is written in place by its producer conv instead of copied:
//! [`Lowerer::in_place_concat`]), the residual add and the SE gate's
//! channel scale folded from a QDQ graph (`add_u8`, `scale_channels_u8`), the SE squeeze or a
//! QLinearGlobalAveragePool (`global_avgpool_u8`), with activations kept in `u8` buffers
//! between int8 layers; the stem, a dense QConv reading a quantized model input
//! ([`stem_conv`]), is `quantize_padded_u8` of the plain NCHW input into zero-point-padded
//! planes and `stem_u8` over them; a quantized model input in front of an f32 stem is one
//! `fake_quantize_u8` pass on the plain NCHW input, which the stem reads in place.
//!
//! Storage: an int8 tensor has the NCHW8c blocked shape of its f32 counterpart with one byte
//! per element, always a dense channel layout; ONNX `int8` tensors are stored as `q + 128`
//! with every zero point and bound shifted the same way (the runtime's convention). A `u8`
//! arena buffer takes a quarter of the floats its f32 counterpart would.
//!
//! Fallbacks ([`prepare`], before lowering): a QConv the int8 kernels do not cover (a dense
//! conv other than the stem, grouped convs, activations other than none, ReLU or a rising
//! HardSigmoid (which the requantization epilogue computes: [`requant`]), u8 or asymmetric
//! weights, a requantization scale `x_scale * w_scale / y_scale` that overflows `f32`) becomes
//! `DequantizeLinear -> f32 Conv (activation in its epilogue) -> QuantizeLinear`, the QDQ form
//! it came from, and its steps say `int8 fallback` (text form, `ghostc bench --profile`). A
//! Dequantize of a constant (Gemm weights, unfolded conv weights with `--no-fuse quant`)
//! becomes an f32 constant at compile time.
//!
//! A QActivation (an activation between a DQ and a Q, or QOperator's QLinearSigmoid) is a
//! 256-entry table over the input's bytes (`table_u8`), computed by the reference
//! interpreter ([`Lowerer::lower_qactivation`]). A dequantized model output whose blocked
//! layout is its NCHW one is dequantized straight into the output (`lower_output`).
//!
//! Deliberately not done here: the QOperator-only ops (QBinary in the ratio form of
//! QLinearAdd / QLinearMul, a QMatMul other than a classifier) are reported as unsupported;
//! other float ops between a DQ and a Q in a QDQ graph run in f32 as the graph says, with
//! separate `quantize_u8` / `dequantize_u8` steps around them; a
//! QConcat that is not a Ghost module's (other producers, at an offset inside a block, or
//! requantized) still goes through its own `concat_u8` steps. The Ghost concatenation is
//! not faster than the separate steps on the machine measured (GhostNet-1.0 int8 1.003-1.005
//! of them, Zen 5): those ran at cache speed on tensors that fit L2, and the conversion of
//! the depthwise lines costs what the copy did.

use std::collections::HashSet;
use std::sync::Arc;

use ghost_runtime::{self as rt, DepthwiseShape, PointwiseShape};

use super::{ChannelLayout, LowerError, Lowerer};
use crate::ir::{self, Activation, DType, Data, Graph, NodeId, Op, QConv, QuantParams, Tensor};
use crate::plan::program::*;

/// A Ghost module's concatenation its depthwise conv writes ([`Lowerer::ghost_concat`]).
struct GhostCat {
    cat: ir::ValueId,
    x1: ir::ValueId,
    concat: rt::GhostConcatU8,
}

/// Marks the `what` of every step of a fallback node.
pub(super) const FALLBACK: &str = "int8 fallback";

/// The u8 storage of a zero point of a u8 or i8 tensor.
pub(super) fn storage_zp(q: &QuantParams) -> Option<u8> {
    let (_, z) = q.at(0);
    let shift = if q.dtype == DType::I8 { 128 } else { 0 };
    u8::try_from(z + shift).ok()
}

fn per_tensor_8bit(q: &QuantParams) -> bool {
    q.is_per_tensor() && matches!(q.dtype, DType::U8 | DType::I8)
}

/// The u8 storage of the zero point of `q` when it is per tensor, 8-bit and of the type of
/// `like` (what the int8 kernels that mix several tensors' parameters take).
fn storage_like(q: &QuantParams, like: &QuantParams) -> Option<u8> {
    (per_tensor_8bit(q) && q.dtype == like.dtype)
        .then(|| storage_zp(q))
        .flatten()
}

/// Which int8 kernel runs a QConv with input channels `cin`, if one does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QKernel {
    Pointwise,
    Depthwise,
}

/// The requantization scale of output channel `o`, `x_scale * w_scale[o] / y_scale`, as the
/// int8 kernels apply it to the integer sum (times a fused HardSigmoid's `alpha`).
fn requant_scale(c: &QConv, o: usize) -> f32 {
    let s = (c.x.at(0).0 * c.w.at(o).0) / c.y.at(0).0;
    match c.act {
        Some(Activation::HardSigmoid { alpha, .. }) => s * alpha,
        _ => s,
    }
}

/// Whether the int8 kernels' epilogue computes activation `act` into output scale `y_scale`:
/// none, ReLU (a bound), or a HardSigmoid with a positive slope (its `alpha` scales, its
/// `beta / y_scale` is the offset, which must be finite, its `[0, 1]` bounds the result; see
/// [`requant`]).
fn requant_act(act: Option<Activation>, y_scale: f32) -> bool {
    match act {
        None | Some(Activation::Relu) => true,
        Some(Activation::HardSigmoid { alpha, beta }) => {
            alpha > 0.0 && alpha.is_finite() && (beta / y_scale).is_finite()
        }
        _ => false,
    }
}

/// What every int8 conv kernel needs of a QConv with weights of shape `w_shape`: per-tensor
/// 8-bit activations, symmetric s8 weights, an activation the requantization computes, no
/// dilation, 4-D weights and finite requantization scales.
fn int8_conv_params(c: &QConv, w_shape: &[usize]) -> bool {
    let params_ok = per_tensor_8bit(&c.x)
        && per_tensor_8bit(&c.y)
        && c.w.dtype == DType::I8
        && c.w.zero_point.iter().all(|&z| z == 0)
        && requant_act(c.act, c.y.at(0).0)
        && c.conv.dilations == [1, 1];
    // Every scale is positive and finite (import checks it), but their quotient can still
    // overflow `f32` (a subnormal output scale): the packers refuse such a scale, so the
    // conv runs as the f32 fallback, which follows the QDQ graph exactly (it saturates).
    params_ok && w_shape.len() == 4 && (0..w_shape[0]).all(|o| requant_scale(c, o).is_finite())
}

fn qkernel(c: &QConv, w_shape: &[usize], cin: usize) -> Option<QKernel> {
    let conv = &c.conv;
    if !int8_conv_params(c, w_shape) {
        return None;
    }
    let (cout, cin_g, kh, kw) = (w_shape[0], w_shape[1], w_shape[2], w_shape[3]);
    if kh == 1 && kw == 1 && conv.strides == [1, 1] && conv.pads == [0; 4] && conv.group == 1 {
        return Some(QKernel::Pointwise);
    }
    let depthwise = conv.group == cin && cout == cin && cin_g == 1 && kh == kw;
    (depthwise
        && matches!(kh, 3 | 5)
        && conv.strides[0] == conv.strides[1]
        && matches!(conv.strides[0], 1 | 2))
    .then_some(QKernel::Depthwise)
}

/// Whether QConv `n` is an int8 stem (`stem_u8`): a dense conv (square kernel up to 8, equal
/// strides, no dilation, at most 16 input channels, int8 weights and parameters the
/// requantization takes) whose input is a QuantizeLinear of a rank-4 model input, each the
/// other's only reader, so that the quantization can write the padded planes the kernel reads.
pub(super) fn stem_conv(g: &Graph, n: NodeId) -> bool {
    let node = g.node(n);
    let Op::QConv(c) = &node.op else {
        return false;
    };
    let conv = &c.conv;
    let ws = &g.value(node.inputs[1]).ty.shape;
    let shape_ok = int8_conv_params(c, ws)
        && ws[2] == ws[3]
        && (1..=8).contains(&ws[2])
        && ws[1] <= 16
        && conv.group == 1
        && conv.strides[0] == conv.strides[1]
        && conv.strides[0] > 0;
    if !shape_ok {
        return false;
    }
    let x = node.inputs[0];
    let Some(q) = g.producer(x) else {
        return false;
    };
    let Op::Quantize(qp) = &g.node(q).op else {
        return false;
    };
    let input = g.node(q).inputs[0];
    let sole = |v: ir::ValueId| g.consumers(v).len() == 1 && !g.is_output(v);
    *qp == c.x
        && sole(x)
        && sole(input)
        && g.inputs.contains(&input)
        && g.value(input).ty.shape.len() == 4
}

/// The padded planes a stem reads: `(hp, wp)` for its input of `h x w` and output of
/// `oh x ow` (see `ghost_runtime::StemShape::padded_width`).
fn stem_planes(c: &QConv, k: usize, (h, w): (usize, usize), ow: usize) -> (usize, usize) {
    let [pt, pl, pb, pr] = c.conv.pads;
    (
        h + pt + pb,
        rt::StemShape::padded_width(w, pl, pr, k, c.conv.strides[0], ow),
    )
}

/// Rewrites what the int8 kernels do not cover into f32 (see the module docs). Returns the
/// nodes that run as a fallback (the ones each rewritten QConv became).
pub(super) fn prepare(g: &mut Graph) -> HashSet<NodeId> {
    let mut fallback = HashSet::new();
    let order = g
        .topo_order()
        .unwrap_or_else(|_| g.nodes.node_indices().collect());
    for n in order {
        let node = g.node(n).clone();
        match &node.op {
            Op::Dequantize(q) => {
                let Some(t) = g.value(node.inputs[0]).constant().cloned() else {
                    continue;
                };
                let Ok(mut out) = crate::interp::eval_op(&Op::Dequantize(q.clone()), &[&t]) else {
                    continue;
                };
                let v = g.add_const(
                    g.value(node.outputs[0]).name.clone(),
                    Arc::new(out.remove(0)),
                );
                g.replace_all_uses(node.outputs[0], v);
                g.remove_node(n);
            }
            Op::QConv(c) => {
                let x = node.inputs[0];
                let cin = g.value(x).ty.shape.get(1).copied().unwrap_or(0);
                let w_shape = g.value(node.inputs[1]).ty.shape.clone();
                if qkernel(c, &w_shape, cin).is_some() || stem_conv(g, n) {
                    continue;
                }
                if let Some(added) = dequantize_qconv(g, n, c) {
                    fallback.extend(added);
                }
            }
            _ => {}
        }
    }
    fallback
}

/// Replaces QConv `n` by `DQ(x) -> FusedConv(f32 w, f32 bias, act) -> Q` and returns those nodes;
/// `None` (graph unchanged) when its weights or bias are not constant.
fn dequantize_qconv(g: &mut Graph, n: NodeId, c: &QConv) -> Option<Vec<NodeId>> {
    let node = g.node(n).clone();
    let constant = |i: usize| node.inputs.get(i).map(|&v| g.value(v).constant().cloned());
    let Some(Some(w)) = constant(1) else {
        return None;
    };
    let bias = match constant(2) {
        None => None,
        Some(Some(b)) => Some(b),
        Some(None) => return None,
    };
    let Ok(mut wf) = crate::interp::eval_op(&Op::Dequantize(c.w.clone()), &[&w]) else {
        return None;
    };
    let cout = w.shape()[0];
    let xs = c.x.at(0).0;
    let bf: Vec<f32> = match &bias {
        Some(b) => b
            .to_i64_vec()
            .iter()
            .enumerate()
            .map(|(o, &v)| v as f32 * (xs * c.w.at(o).0))
            .collect(),
        None => vec![0.0; cout],
    };
    let bf = Tensor::from_f32(vec![cout], bf)?;
    let name = node.name.clone();
    let x = node.inputs[0];
    let y = node.outputs[0];
    let f32_ty = |v| ir::TensorType::f32(g.value(v).ty.shape.clone());
    let (xf_ty, yf_ty) = (f32_ty(x), f32_ty(y));
    let wv = g.add_const(format!("{name}/weight_f32"), Arc::new(wf.remove(0)));
    let bv = g.add_const(format!("{name}/bias_f32"), Arc::new(bf));
    let (dq, xf) = g.add_node(
        format!("{name}/dequantize"),
        Op::Dequantize(c.x.clone()),
        vec![x],
        vec![(format!("{name}/x_f32"), xf_ty)],
    );
    // The activation in the conv's epilogue, as `fuse_activation` would have put it (these
    // nodes appear after the passes).
    let (conv, yf) = g.add_node(
        name.clone(),
        Op::FusedConv(ir::FusedConv {
            conv: c.conv.clone(),
            act: c.act,
            residual: false,
        }),
        vec![xf[0], wv, bv],
        vec![(format!("{name}/conv_f32"), yf_ty)],
    );
    let mut added = vec![dq, conv];
    let (q, yq) = g.add_node(
        format!("{name}/quantize"),
        Op::Quantize(c.y.clone()),
        vec![yf[0]],
        vec![(g.value(y).name.clone(), g.value(y).ty.clone())],
    );
    added.push(q);
    g.replace_all_uses(y, yq[0]);
    g.remove_node(n);
    Some(added)
}

/// Bounds and offset of the requantization to output scale `y_scale`: the whole range, or
/// from the zero point up with a ReLU. A HardSigmoid `clamp(alpha * v + beta, 0, 1)` (its
/// `alpha` already in the scales) adds `beta / y_scale` and clamps to `[0, 1 / y_scale]`
/// before rounding; rounding is monotonic, so clamping to the rounded bounds after it gives
/// the same integers: `[zero_point, zero_point + round(1 / y_scale)]`, within the u8 range.
fn requant(zero_point: u8, act: Option<Activation>, y_scale: f32) -> QRequant {
    let plain = QRequant {
        zero_point,
        min: 0,
        max: 255,
        offset: 0.0,
    };
    match act {
        Some(Activation::Relu) => QRequant {
            min: zero_point,
            ..plain
        },
        Some(Activation::HardSigmoid { beta, .. }) => {
            let top = (1.0 / y_scale).round_ties_even() as f64 + f64::from(zero_point);
            QRequant {
                min: zero_point,
                max: top.min(255.0) as u8,
                offset: beta / y_scale,
                ..plain
            }
        }
        _ => plain,
    }
}

/// How a step's description names the fused activation.
fn act_label(act: Option<Activation>) -> &'static str {
    match act {
        Some(Activation::Relu) => " + relu",
        Some(Activation::HardSigmoid { .. }) => " + hard sigmoid",
        _ => "",
    }
}

impl Lowerer<'_> {
    /// An arena buffer of `bytes` bytes holding a u8 tensor.
    fn new_u8_buf(&mut self, bytes: usize) -> Loc {
        let loc = self.new_buf(bytes.div_ceil(4));
        if let Loc::Buf(i) = loc {
            self.u8_bufs.insert(i);
        }
        loc
    }

    /// The u8 output buffer of value `v` (dense layout).
    fn out_u8_buf(&mut self, v: ir::ValueId) -> Loc {
        let layout = self.layout(v);
        let bytes = self.blocked_len(v, &layout);
        let loc = self.new_u8_buf(bytes);
        self.loc.insert(v, loc);
        loc
    }

    /// The buffer of `v` if a step already allocated it (a producer writing a QConcat input
    /// in place, or a Ghost module's depthwise conv), else a new one.
    fn u8_buf_of(&mut self, v: ir::ValueId) -> Loc {
        match self.loc.get(&v) {
            Some(&loc) => loc,
            None => self.out_u8_buf(v),
        }
    }

    /// The block of its buffer an int8 value starts at (non-zero for a QConcat input its
    /// producer writes in place).
    fn u8_block(&self, v: ir::ValueId) -> usize {
        self.u8_block.get(&v).copied().unwrap_or(0)
    }

    /// Where an int8 pointwise or depthwise conv writes `y`: straight into the QConcat that
    /// copies it unchanged ([`Self::in_place_concat`]), else into a buffer of its own.
    fn out_u8_view(&mut self, y: ir::ValueId) -> View {
        let Some((cat, block)) = self.in_place_concat(y) else {
            return View::at(self.out_u8_buf(y), 0);
        };
        let loc = self.u8_buf_of(cat);
        self.loc.insert(y, loc);
        self.u8_block.insert(y, block);
        View::at(loc, block)
    }

    /// The QConcat `y` can be written into in place, and the block where `y` starts there:
    /// the concatenation reads `y` once, with `y`'s own quantization parameters (its
    /// `concat_u8` step would be a copy), at a channel offset on a block boundary; every
    /// other reader of `y` is an int8 pointwise or depthwise conv (kernels that read a view
    /// at a block offset); neither `y` nor the concatenation is a model output. A `y` whose
    /// channels end inside a block also writes the block's remaining lanes: the next input's
    /// `concat_u8` step, which runs after every producer, writes its own lanes over them.
    fn in_place_concat(&self, y: ir::ValueId) -> Option<(ir::ValueId, usize)> {
        if self.g.is_output(y) {
            return None;
        }
        // A Ghost module's depthwise conv that writes the concatenation reads `y` from a
        // buffer of its own.
        let ghost = self.g.consumers(y).into_iter().any(|(c, slot)| {
            let out = self.g.node(c).outputs.first();
            slot == 0
                && out
                    .and_then(|&o| self.ghost_concat(o))
                    .is_some_and(|gc| gc.x1 == y)
        });
        if ghost {
            return None;
        }
        let mut found = None;
        for (c, slot) in self.g.consumers(y) {
            let node = self.g.node(c);
            match &node.op {
                Op::QConcat { axis: 1, x, y: qy } if found.is_none() => {
                    let q = x.get(slot)?;
                    let same = per_tensor_8bit(q)
                        && per_tensor_8bit(qy)
                        && q.dtype == qy.dtype
                        && q.at(0) == qy.at(0);
                    let offset: usize = node.inputs[..slot].iter().map(|&v| self.shape(v)[1]).sum();
                    let once = node.inputs.iter().filter(|&&v| v == y).count() == 1;
                    let out = node.outputs[0];
                    if !same || !offset.is_multiple_of(8) || !once || self.g.is_output(out) {
                        return None;
                    }
                    found = Some((out, offset / 8));
                }
                Op::QConv(q) if slot == 0 => {
                    let ws = self.shape(node.inputs[1]);
                    qkernel(q, ws, self.shape(y)[1])?;
                }
                _ => return None,
            }
        }
        found
    }

    /// The Ghost module concatenation `Concat(x1, x2)` the int8 depthwise conv producing `x2`
    /// from `x1` can write itself (`depthwise_u8_concat`): stride 1 with the size kept; `x1`
    /// read only by the conv and the
    /// concatenation, `x2` only by the concatenation, which reads them in this order and
    /// nothing else; none of them a model output; per-tensor 8-bit parameters of the output's
    /// type (as `lower_qconcat` needs).
    fn ghost_concat(&self, x2: ir::ValueId) -> Option<GhostCat> {
        let n = self.g.producer(x2)?;
        let node = self.g.node(n);
        let Op::QConv(c) = &node.op else {
            return None;
        };
        let x1 = node.inputs[0];
        let ws = self.shape(node.inputs[1]);
        let depthwise = qkernel(c, ws, self.shape(x1)[1]) == Some(QKernel::Depthwise);
        let same_size =
            c.conv.strides == [1, 1] && self.shape(x1).len() == 4 && self.hw(x1) == self.hw(x2);
        if !depthwise || !same_size || self.g.is_output(x1) || self.g.is_output(x2) {
            return None;
        }
        let [(cn, 1)] = self.g.consumers(x2)[..] else {
            return None;
        };
        let cat = self.g.node(cn);
        let Op::QConcat {
            axis: 1,
            x: qx,
            y: qy,
        } = &cat.op
        else {
            return None;
        };
        let mut readers = self.g.consumers(x1);
        readers.sort();
        let mut want = vec![(n, 0), (cn, 0)];
        want.sort();
        if cat.inputs != [x1, x2] || readers != want || self.g.is_output(cat.outputs[0]) {
            return None;
        }
        let storage = |q: &QuantParams| storage_like(q, qy);
        let out_zero_point = storage(qy)?;
        let requant = |q: &QuantParams| {
            Some(rt::U8Requant {
                in_scale: q.at(0).0,
                in_zero_point: storage(q)?,
                out_scale: qy.at(0).0,
                out_zero_point,
            })
        };
        Some(GhostCat {
            cat: cat.outputs[0],
            x1,
            concat: rt::GhostConcatU8 {
                channels: self.shape(x1)[1],
                primary: requant(qx.first()?)?,
                cheap: requant(qx.get(1)?)?,
            },
        })
    }

    /// `(blocks, pixels)` of an activation in its dense layout.
    fn blocks_pixels(&self, v: ir::ValueId) -> (usize, usize) {
        let c = self.shape(v).get(1).copied().unwrap_or(1);
        let (h, w) = self.hw(v);
        (c.div_ceil(8), h * w)
    }

    /// Appends packed int8 weights to the blob.
    fn pack_u8(
        &mut self,
        node: &str,
        len: usize,
        packer: impl FnOnce(&mut [u8]) -> Result<(), rt::Error>,
    ) -> Result<WRange, LowerError> {
        let mut packed = vec![0u8; len];
        packer(&mut packed).map_err(|e| LowerError::Pack {
            node: node.into(),
            detail: e.to_string(),
        })?;
        let offset = self.blob.push_bytes(&packed);
        Ok(WRange {
            offset,
            len: len.div_ceil(4),
        })
    }

    pub(super) fn lower_quantize(&mut self, n: NodeId, q: &QuantParams) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let name = node.name.clone();
        let (Some(zero_point), true) = (storage_zp(q), per_tensor_8bit(q)) else {
            self.unsupported_as(
                n,
                &format!("{} {} parameters", q.dtype, per(q)),
                "per-tensor u8 or i8",
            );
            return;
        };
        if !matches!(self.shape(x).len(), 2..=4) {
            self.unsupported_as(n, "rank", "rank 2, 3 or 4");
            return;
        }
        let c = self.shape(x)[1];
        if self.plain.contains(&x) {
            let reader = self.g.consumers(y)[0].0;
            if stem_conv(self.g, reader) {
                self.lower_quantize_padded(n, reader, q, zero_point);
            } else {
                self.lower_fake_quantize(n, q, zero_point);
            }
            return;
        }
        let src = self.read_as(x, &ChannelLayout::dense(c), &name);
        let (blocks, pixels) = self.blocks_pixels(x);
        let dst = self.out_u8_buf(y);
        let scale = q.at(0).0;
        self.push(
            n,
            format!("quantize {c} channels to {}", q.dtype),
            Kernel::Quantize {
                blocks,
                pixels,
                scale,
                zero_point,
                src,
                dst,
            },
        );
    }

    /// A model input kept in plain NCHW (`lower_input` checked that this Quantize's only reader
    /// is a Dequantize with the same parameters, read only by a stem conv): both as one
    /// `fake_quantize_u8` pass into a plain f32 buffer the conv reads in place.
    fn lower_fake_quantize(&mut self, n: NodeId, q: &QuantParams, zero_point: u8) {
        let node = self.g.node(n);
        let x = node.inputs[0];
        let dq = self.g.consumers(node.outputs[0])[0].0;
        let y = self.g.node(dq).outputs[0];
        let len: usize = self.shape(x)[1..].iter().product();
        let dst = self.new_buf(len);
        self.loc.insert(y, dst);
        self.plain.insert(y);
        let c = self.shape(x)[1];
        self.push(
            n,
            format!("quantize-dequantize {c} channels ({}), NCHW", q.dtype),
            Kernel::FakeQuantize {
                scale: q.at(0).0,
                zero_point,
                len,
                src: self.loc[&x],
                dst,
            },
        );
    }

    /// A model input kept in plain NCHW read by an int8 stem (`lower_input` and
    /// [`stem_conv`] checked the chain): quantized into zero-point-padded planes.
    fn lower_quantize_padded(&mut self, n: NodeId, stem: NodeId, q: &QuantParams, zero_point: u8) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let Op::QConv(c) = &self.g.node(stem).op else {
            unreachable!("stem_conv checked the reader");
        };
        let k = self.shape(self.g.node(stem).inputs[1])[2];
        let ow = self.shape(self.g.node(stem).outputs[0])[3];
        let (ch, (h, w)) = (self.shape(x)[1], self.hw(x));
        let (hp, wp) = stem_planes(c, k, (h, w), ow);
        let [top, left, ..] = c.conv.pads;
        let dst = self.new_u8_buf(ch * hp * wp);
        self.loc.insert(y, dst);
        self.push(
            n,
            format!("quantize {ch} channels to {} padded planes, NCHW", q.dtype),
            Kernel::QuantizePadded {
                scale: q.at(0).0,
                zero_point,
                chw: (ch, h, w),
                hp,
                wp,
                top,
                left,
                src: self.loc[&x],
                dst,
            },
        );
    }

    /// An int8 stem ([`stem_conv`]) over the padded planes of its quantized input.
    fn lower_stem(
        &mut self,
        n: NodeId,
        c: &QConv,
        wd: &[i64],
        bias: &[i64],
        xz: u8,
        yz: u8,
    ) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let (x, wv, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let ws = self.shape(wv).to_vec();
        let (cout, cin, k) = (ws[0], ws[1], ws[2]);
        let (h, w) = self.hw(x);
        let (oh, ow) = self.hw(y);
        let (hp, wp) = stem_planes(c, k, (h, w), ow);
        let stride = c.conv.strides[0];
        let w8: Vec<i8> = wd.iter().map(|&v| v as i8).collect();
        let b32: Vec<i32> = bias.iter().map(|&v| v as i32).collect();
        let sc: Vec<f32> = (0..cout).map(|o| requant_scale(c, o)).collect();
        let packed = self.pack_u8(&node.name, rt::stem_u8_packed_len(cin, k, cout), |p| {
            rt::pack_stem_u8(&w8, &b32, &sc, cin, k, cout, xz, p)
        })?;
        let dst = self.out_u8_view(y);
        self.push(
            n,
            format!(
                "int8 stem conv {k}x{k} s{stride} {cin} -> {cout} @ {h}x{w}{}",
                act_label(c.act)
            ),
            Kernel::StemU8 {
                w: packed,
                shape: rt::StemShape {
                    c_in: cin,
                    hp,
                    wp,
                    k,
                    stride,
                    c_out: cout,
                    oh,
                    ow,
                },
                src: self.loc[&x],
                dst,
                requant: requant(yz, c.act, c.y.at(0).0),
            },
        );
        Ok(())
    }

    pub(super) fn lower_dequantize(&mut self, n: NodeId, q: &QuantParams) {
        let node = self.g.node(n);
        let (x, y) = (node.inputs[0], node.outputs[0]);
        if self.plain.contains(&y) {
            return; // lowered with its Quantize (`lower_fake_quantize`)
        }
        let (Some(zero_point), true) = (storage_zp(q), per_tensor_8bit(q)) else {
            self.unsupported_as(
                n,
                &format!("{} {} parameters", q.dtype, per(q)),
                "per-tensor u8 or i8 (per-channel only on constants)",
            );
            return;
        };
        if !matches!(self.shape(x).len(), 2..=4) || self.layout(y) != self.layout(x) {
            self.unsupported_as(n, "rank or layout", "rank 2, 3 or 4, dense layout");
            return;
        }
        let c = self.shape(x)[1];
        let src = self.loc[&x];
        let (blocks, pixels) = self.blocks_pixels(x);
        let dst = self.out_buf(y);
        let scale = q.at(0).0;
        self.push(
            n,
            format!("dequantize {c} channels from {}", q.dtype),
            Kernel::Dequantize {
                blocks,
                pixels,
                scale,
                zero_point,
                src,
                dst,
            },
        );
    }

    /// Int8 concatenation on channels: one `concat_u8` step per input, each requantized to
    /// the output's parameters unless it already has them, into the dense u8 output.
    pub(super) fn lower_qconcat(
        &mut self,
        n: NodeId,
        axis: usize,
        qx: &[QuantParams],
        qy: &QuantParams,
    ) {
        let node = self.g.node(n).clone();
        let y = node.outputs[0];
        let rank = self.shape(y).len();
        if axis != 1 || !matches!(rank, 2..=4) {
            self.unsupported_as(
                n,
                &format!("axis {axis} of a rank-{rank} tensor"),
                "axis 1 (channels) of a rank 2, 3 or 4 tensor",
            );
            return;
        }
        let storage = |q: &QuantParams| storage_like(q, qy);
        let Some(out_zero_point) = storage(qy) else {
            self.unsupported_as(
                n,
                &format!("output {} {} parameters", qy.dtype, per(qy)),
                "per-tensor u8 or i8",
            );
            return;
        };
        let mut parts = Vec::new();
        for (i, q) in qx.iter().enumerate() {
            match storage(q) {
                Some(zp) => parts.push((q.at(0).0, zp)),
                None => {
                    self.unsupported_as(
                        n,
                        &format!("input {i}: {} {} parameters", q.dtype, per(q)),
                        &format!("per-tensor {} like the output", qy.dtype),
                    );
                    return;
                }
            }
        }
        let out_channels = self.shape(y)[1];
        let (_, pixels) = self.blocks_pixels(y);
        // Already allocated if an input's producer wrote into it (`out_u8_view`).
        let dst = self.u8_buf_of(y);
        let mut offset = 0;
        for (&x, (in_scale, in_zero_point)) in node.inputs.iter().zip(parts) {
            let channels = self.shape(x)[1];
            if self.loc.get(&x) == Some(&dst) || self.cat_written.contains(&x) {
                // Written in place by its producer, or by a Ghost module's depthwise conv.
                offset += channels;
                continue;
            }
            let requant = rt::U8Requant {
                in_scale,
                in_zero_point,
                out_scale: qy.at(0).0,
                out_zero_point,
            };
            let how = if requant.is_identity() {
                ""
            } else {
                ", requantized"
            };
            self.push(
                n,
                format!("int8 concat: channels {offset}..{}{how}", offset + channels),
                Kernel::ConcatU8 {
                    shape: rt::ConcatU8Shape {
                        pixels,
                        channels,
                        channel_offset: offset,
                        out_channels,
                    },
                    requant,
                    src: self.loc[&x],
                    dst,
                },
            );
            offset += channels;
        }
    }

    /// Int8 activation (`QActivation`: dequantize, activate, quantize) as a 256-entry table
    /// over the input's bytes (`table_u8`), computed here by the reference interpreter on
    /// every input value, so the bytes are the interpreter's by construction.
    pub(super) fn lower_qactivation(
        &mut self,
        n: NodeId,
        act: &Activation,
        qx: &QuantParams,
        qy: &QuantParams,
    ) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let storage = |q: &QuantParams| storage_like(q, qy);
        if storage(qx).is_none() || storage(qy).is_none() || self.u8_block(x) != 0 {
            self.unsupported_as(
                n,
                "quantization parameters",
                "per-tensor u8 or i8, one type, the input in a buffer of its own",
            );
            return Ok(());
        }
        // Every storage byte's integer (an i8 tensor is stored as q + 128), through the
        // interpreter's QActivation, back to storage.
        let shift = if qx.dtype == DType::I8 { 128 } else { 0 };
        let ints: Vec<i64> = (0..256).map(|b| b - shift).collect();
        let op = Op::QActivation {
            act: *act,
            x: qx.clone(),
            y: qy.clone(),
        };
        let input = Tensor::new(qx.dtype, vec![256], Data::I64(ints)).expect("256 values");
        let out = crate::interp::eval_op(&op, &[&input]).map_err(|e| LowerError::Pack {
            node: node.name.clone(),
            detail: e.to_string(),
        })?;
        let Data::I64(vals) = &out[0].data else {
            unreachable!("QActivation yields integers");
        };
        let table: Vec<u8> = vals.iter().map(|&v| (v + shift) as u8).collect();
        let w = self.pack_u8(&node.name, 256, |p| {
            p.copy_from_slice(&table);
            Ok(())
        })?;
        let (blocks, pixels) = self.blocks_pixels(y);
        let src = self.loc[&x];
        let dst = self.out_u8_buf(y);
        let c = self.shape(y)[1];
        self.push(
            n,
            format!(
                "int8 {} through a table, {c} channels",
                Op::Activation(*act).name()
            ),
            Kernel::TableU8 {
                table: w,
                len: blocks * pixels * 8,
                src,
                dst,
            },
        );
        Ok(())
    }

    /// Int8 binary op folded from a QDQ graph (`QBinary` in the dequantized form): a residual
    /// Add of two inputs of one shape (`add_u8`), or a Mul of a tensor by a per-channel gate
    /// `[N, C, 1, 1]` (`scale_channels_u8`), over dense u8 tensors. The ratio form
    /// (QOperator `QLinearAdd` / `QLinearMul`) has no kernel.
    pub(super) fn lower_qbinary(&mut self, n: NodeId, q: &ir::QBinary) {
        let node = self.g.node(n).clone();
        let (a, b, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        if q.form != ir::QBinaryForm::Dequantized {
            self.unsupported_as(
                n,
                &format!(
                    "no kernel for op {} in the {:?} form",
                    Op::QBinary(q.clone()).name(),
                    q.form
                ),
                "Add or Mul folded from a QDQ graph (Q(op(DQ(a), DQ(b))))",
            );
            return;
        }
        let (sa, sb, sy) = (self.shape(a), self.shape(b), self.shape(y));
        let rank = sy.len();
        let shapes_ok = match q.op {
            ir::BinaryOp::Add => sa == sb && matches!(rank, 2..=4),
            ir::BinaryOp::Mul => {
                rank == 4 && sa == sy && sb.len() == 4 && sb[..2] == sa[..2] && sb[2..] == [1, 1]
            }
            _ => false,
        };
        if !shapes_ok {
            self.unsupported_as(
                n,
                &format!(
                    "{:?} of [{}] and [{}]",
                    q.op,
                    ir::fmt_shape(sa),
                    ir::fmt_shape(sb)
                ),
                "Add of two inputs of one shape (rank 2, 3 or 4), Mul of [N, C, H, W] by [N, C, 1, 1]",
            );
            return;
        }
        let zps = [&q.a, &q.b, &q.y].map(|p| storage_like(p, &q.y));
        let [Some(za), Some(zb), Some(zy)] = zps else {
            self.unsupported_as(
                n,
                "quantization parameters",
                "per-tensor u8 or i8, one type",
            );
            return;
        };
        let (blocks, pixels) = self.blocks_pixels(y);
        let params = rt::U8BinaryParams {
            a: (q.a.at(0).0, za),
            b: (q.b.at(0).0, zb),
            y: (q.y.at(0).0, zy),
        };
        let (la, lb) = (self.loc[&a], self.loc[&b]);
        let dst = self.out_u8_buf(y);
        let c = self.shape(y)[1];
        let (what, kernel) = match q.op {
            ir::BinaryOp::Add => (
                format!("int8 add {c} channels"),
                Kernel::AddU8 {
                    params,
                    len: blocks * pixels * 8,
                    a: la,
                    b: lb,
                    dst,
                },
            ),
            _ => (
                format!("int8 channel scale {c} channels"),
                Kernel::ScaleChannelsU8 {
                    params,
                    blocks,
                    pixels,
                    x: la,
                    gate: lb,
                    dst,
                },
            ),
        };
        self.push(n, what, kernel);
    }

    /// An int8 global average pool (NCHW, per-tensor parameters of one 8-bit type):
    /// `global_avgpool_u8` with the interpreter's scale `x_s / (y_s * pixels)`.
    pub(super) fn lower_qpool(&mut self, n: NodeId, qx: &QuantParams, qy: &QuantParams) {
        let node = self.g.node(n).clone();
        let (x, y) = (node.inputs[0], node.outputs[0]);
        let ok = self.shape(x).len() == 4 && per_tensor_8bit(qx) && qx.dtype == qy.dtype;
        let zps = (storage_zp(qx), storage_zp(qy));
        let (true, (Some(zx), Some(zy))) = (ok, zps) else {
            self.unsupported_as(
                n,
                "input or quantization parameters",
                "an NCHW tensor, per-tensor u8 or i8 parameters of one type",
            );
            return;
        };
        let (blocks, pixels) = self.blocks_pixels(x);
        let scale = qx.at(0).0 / (qy.at(0).0 * pixels as f32);
        if !(scale.is_finite() && scale > 0.0) {
            self.unsupported_as(
                n,
                &format!("scale x_s / (y_s * {pixels}) = {scale}"),
                "a finite positive scale",
            );
            return;
        }
        let params = rt::PoolU8Params {
            scale,
            in_zero_point: zx,
            out_zero_point: zy,
        };
        let src = self.loc[&x];
        let dst = self.out_u8_buf(y);
        let c = self.shape(x)[1];
        self.push(
            n,
            format!("int8 global average pool {c} channels"),
            Kernel::GlobalAvgPoolU8 {
                params,
                blocks,
                pixels,
                src,
                dst,
            },
        );
    }

    /// The i32 bias of integer conv or matmul `n` (input 2; zeros when absent), or `None` after
    /// reporting a bias that is not a constant integer tensor.
    fn int_bias(&mut self, n: NodeId, cout: usize) -> Option<Vec<i64>> {
        let Some(&b) = self.g.node(n).inputs.get(2) else {
            return Some(vec![0; cout]);
        };
        match self.g.value(b).constant().map(|t| &t.data) {
            Some(Data::I64(d)) => Some(d.clone()),
            _ => {
                self.unsupported(n, "bias is not a constant integer tensor");
                None
            }
        }
    }

    /// A classifier's `QMatMul` (`a [1, k]` per image, constant s8 `b [n, k]` with `trans_b`,
    /// zero points 0, the bias i32): the 1x1 int8 kernel on one pixel, `k` input channels and
    /// `n` output channels. Other forms have no kernel.
    pub(super) fn lower_qmatmul(&mut self, n: NodeId, m: &ir::QMatMul) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let (a, wv, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let ws = self.shape(wv).to_vec();
        let consts = |v: ir::ValueId| match self.g.value(v).constant().map(|t| &t.data) {
            Some(Data::I64(d)) => Some(d.clone()),
            _ => None,
        };
        let zps = (storage_zp(&m.a), storage_zp(&m.y));
        let form_ok = m.trans_b
            && self.shape(a).len() == 2
            && ws.len() == 2
            && per_tensor_8bit(&m.a)
            && per_tensor_8bit(&m.y)
            && m.b.dtype == DType::I8
            && m.b.zero_point.iter().all(|&z| z == 0);
        let (true, Some(wd), (Some(az), Some(yz))) = (form_ok, consts(wv), zps) else {
            self.unsupported(
                n,
                "int8 matmul other than a classifier (a [N, k] per tensor, constant s8 b [n, k] \
                 transposed, zero points 0)",
            );
            return Ok(());
        };
        let (cout, cin) = (ws[0], ws[1]);
        let Some(bias) = self.int_bias(n, cout) else {
            return Ok(());
        };
        let (kp, np) = (cin.div_ceil(8) * 8, cout.div_ceil(8) * 8);
        let mut bp = vec![0i32; np];
        let mut sp = vec![0f32; np];
        let mut wp = vec![0i8; np * kp];
        for o in 0..cout {
            bp[o] = bias[o] as i32;
            sp[o] = (m.a.at(0).0 * m.b.at(o).0) / m.y.at(0).0;
            for i in 0..cin {
                wp[o * kp + i] = wd[o * cin + i] as i8;
            }
        }
        let name = node.name.clone();
        let w = self.pack_u8(&name, rt::pointwise_u8_packed_len(kp, np), |p| {
            rt::pack_pointwise_u8(&wp, &bp, &sp, az, kp, np, p)
        })?;
        let src = View::at(self.loc[&a], self.u8_block(a));
        let dst = View::at(self.out_u8_buf(y), 0);
        self.push(
            n,
            format!("int8 fully connected {cin} -> {cout}"),
            Kernel::PointwiseU8 {
                w,
                shape: PointwiseShape {
                    k_blocks: kp / 8,
                    n_blocks: np / 8,
                    pixels: 1,
                },
                src,
                dst,
                requant: requant(yz, None, m.y.at(0).0),
            },
        );
        Ok(())
    }

    pub(super) fn lower_qconv(&mut self, n: NodeId, c: &QConv) -> Result<(), LowerError> {
        let node = self.g.node(n).clone();
        let (x, wv, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
        let cin = self.shape(x)[1];
        let ws = self.shape(wv).to_vec();
        let kind = qkernel(c, &ws, cin);
        if kind.is_none() && !stem_conv(self.g, n) {
            self.unsupported(n, "no int8 kernel and weights or bias not constant");
            return Ok(());
        }
        let consts = |v: ir::ValueId| match self.g.value(v).constant().map(|t| &t.data) {
            Some(Data::I64(d)) => Some(d.clone()),
            _ => None,
        };
        let Some(wd) = consts(wv) else {
            self.unsupported(n, "weights are not a constant integer tensor");
            return Ok(());
        };
        let cout = ws[0];
        let Some(bias) = self.int_bias(n, cout) else {
            return Ok(());
        };
        let (Some(xz), Some(yz)) = (storage_zp(&c.x), storage_zp(&c.y)) else {
            self.unsupported(n, "zero point out of range");
            return Ok(());
        };
        let Some(kind) = kind else {
            return self.lower_stem(n, c, &wd, &bias, xz, yz);
        };
        let (lx, ly) = (ChannelLayout::dense(cin), ChannelLayout::dense(cout));
        let (kp, np) = (lx.lanes(), ly.lanes());
        let mut bp = vec![0i32; np];
        let mut sp = vec![0f32; np];
        for o in 0..cout {
            bp[o] = bias[o] as i32;
            sp[o] = requant_scale(c, o);
        }
        let (in_h, in_w) = self.hw(x);
        let name = node.name.clone();
        let src = View::at(self.loc[&x], self.u8_block(x));
        let requant = requant(yz, c.act, c.y.at(0).0);
        let act = act_label(c.act);
        match kind {
            QKernel::Pointwise => {
                let mut wp = vec![0i8; np * kp];
                for o in 0..cout {
                    for i in 0..cin {
                        wp[o * kp + i] = wd[o * cin + i] as i8;
                    }
                }
                let w = self.pack_u8(&name, rt::pointwise_u8_packed_len(kp, np), |p| {
                    rt::pack_pointwise_u8(&wp, &bp, &sp, xz, kp, np, p)
                })?;
                let dst = self.out_u8_view(y);
                self.push(
                    n,
                    format!("int8 pointwise {cin} -> {cout} @ {in_h}x{in_w}{act}"),
                    Kernel::PointwiseU8 {
                        w,
                        shape: PointwiseShape {
                            k_blocks: lx.blocks,
                            n_blocks: ly.blocks,
                            pixels: in_h * in_w,
                        },
                        src,
                        dst,
                        requant,
                    },
                );
            }
            QKernel::Depthwise => {
                let k = ws[2];
                let mut wp = vec![0i8; np * k * k];
                for (dst, &v) in wp.iter_mut().zip(&wd) {
                    *dst = v as i8;
                }
                let w = self.pack_u8(&name, rt::depthwise_u8_packed_len(np, k), |p| {
                    rt::pack_depthwise_u8(&wp, &bp, &sp, np, k, p)
                })?;
                let ghost = self.ghost_concat(y);
                let dst = match &ghost {
                    // The concatenation's buffer, unless a step already allocated it.
                    Some(gc) => {
                        let loc = self.u8_buf_of(gc.cat);
                        self.cat_written.extend([gc.x1, y]);
                        View::at(loc, 0)
                    }
                    None => self.out_u8_view(y),
                };
                let into = match &ghost {
                    Some(gc) => format!(", into concat 0..{}", 2 * gc.concat.channels),
                    None => String::new(),
                };
                let [pad_top, pad_left, pad_bottom, pad_right] = c.conv.pads;
                let stride = c.conv.strides[0];
                let shape = DepthwiseShape {
                    blocks: ly.blocks,
                    in_h,
                    in_w,
                    k,
                    stride,
                    pad_top,
                    pad_left,
                    pad_bottom,
                    pad_right,
                };
                // The conv's lines on their way into the concatenation (a scratch buffer
                // of this step alone).
                let lines = ghost.as_ref().and_then(|gc| {
                    let len = rt::depthwise_u8_concat_buffer_len(&shape, &gc.concat);
                    (len > 0).then(|| self.new_u8_buf(len))
                });
                self.push(
                    n,
                    format!("int8 depthwise {k}x{k} s{stride} {cin} @ {in_h}x{in_w}{act}{into}"),
                    Kernel::DepthwiseU8 {
                        w,
                        shape,
                        input_zero_point: xz,
                        src,
                        dst,
                        requant,
                        concat: ghost.map(|gc| gc.concat),
                        lines,
                    },
                );
            }
        }
        Ok(())
    }
}

fn per(q: &QuantParams) -> &'static str {
    if q.is_per_tensor() {
        "per-tensor"
    } else {
        "per-channel"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A HardSigmoid `clamp(v / 6 + 0.5, 0, 1)` into scale 1/200 (zero point 10): offset
    /// `0.5 * 200`, bounds `[10, 10 + 200]`; into 1/255 at zero point 10 the top saturates at
    /// 255. A falling HardSigmoid (alpha < 0), one whose offset overflows f32 and other
    /// activations are not the epilogue's.
    #[test]
    fn hard_sigmoid_requantization_bounds_and_offset() {
        let hs = Some(Activation::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        });
        let r = requant(10, hs, 1.0 / 200.0);
        assert_eq!((r.zero_point, r.min, r.max), (10, 10, 210));
        assert!((r.offset - 100.0).abs() < 1e-3, "{}", r.offset);
        assert_eq!(requant(10, hs, 1.0 / 255.0).max, 255);
        assert_eq!(requant(10, Some(Activation::Relu), 0.1).min, 10);
        let ok = |act| requant_act(act, 0.01);
        assert!(ok(hs) && ok(None) && ok(Some(Activation::Relu)));
        let falling = Some(Activation::HardSigmoid {
            alpha: -0.2,
            beta: 0.5,
        });
        assert!(!ok(falling) && !ok(Some(Activation::HardSwish)));
        // beta / y_scale overflows f32: the offset would not be finite.
        assert!(!requant_act(hs, 1e-39));
    }
}
