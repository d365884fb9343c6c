//! Writes the calibrated graph as a standard QDQ ONNX model (opset [`OPSET`]) through the
//! vendored prost types, the form `onnxruntime.quantization.quantize_static` writes and every
//! peer reads:
//!
//! - each selected activation `X`: `X -> QuantizeLinear -> X_q -> DequantizeLinear -> X_dq`,
//!   per tensor (u8 or s8), readers take `X_dq` (for a graph output the op writes `X_f32` and
//!   the DequantizeLinear writes `X`, so output names do not change);
//! - weights of quantized Conv / Gemm / MatMul: s8 initializers `W_q` with per-channel
//!   `W_scale`, zero points 0, and a `DequantizeLinear(axis)`; biases i32 `B_q` with scales
//!   `x_scale * w_scale[o]`, zero point 0 (f32 when they do not fit i32);
//! - everything else as the plain ONNX op, with the IR's resolved attributes (static shapes,
//!   pads, slice bounds) written back as attributes or constant inputs.
//!
//! Deliberately not done here: the QOperator form (QLinearConv...; QDQ is what the ONNX
//! Runtime docs recommend and what every peer imports), external data (`ghostc quantize` on
//! the full GhostNet-1.0 wrote a 5.72 MB file, 5.23 MB of it int8/i32 weights), or ops that
//! never survive import in a GhostNet (Gather, Where, Range, ...): those are a [`WriteError`]
//! naming the node.

use std::collections::{HashMap, HashSet};

use crate::ir::{
    Activation, BinaryOp, CoordTransform, DType, Graph, NearestMode, Node, Op, PadMode, PoolKind,
    ReduceKind, ResizeMode, Tensor, UnaryOp, ValueId,
};
use crate::onnx::proto::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

use crate::onnx::tensor::{dtype_to_onnx, f32_to_bf16, f32_to_f16};

use super::weights::{self, QuantizedWeight};

/// The default-domain opset of the written model (per-channel QDQ needs 13, HardSwish 14).
pub const OPSET: i64 = 17;

/// Why the graph could not be written.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum WriteError {
    #[error("node '{node}' ({op}): {detail}")]
    Unwritable {
        node: String,
        op: &'static str,
        detail: String,
    },
}

/// Per-tensor activation quantization: scale and zero point in `dtype` (u8 or i8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActParams {
    pub scale: f32,
    pub zero_point: i64,
    pub dtype: DType,
}

impl ActParams {
    /// ONNX Runtime's rule: the range is widened to contain 0, `scale = (hi - lo) / (qmax -
    /// qmin)` (1 for an empty range), `zp = round(qmin - lo / scale)` clamped.
    pub fn from_range(lo: f32, hi: f32, dtype: DType) -> Self {
        let (qmin, qmax) = if dtype == DType::I8 {
            (-128.0f32, 127.0f32)
        } else {
            (0.0, 255.0)
        };
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let mut scale = (hi - lo) / (qmax - qmin);
        if !(scale.is_finite() && scale > 0.0) {
            scale = 1.0;
        }
        let zp = (qmin - lo / scale).round_ties_even().clamp(qmin, qmax) as i64;
        ActParams {
            scale,
            zero_point: zp,
            dtype,
        }
    }
}

/// What to quantize, per node and value, with the parameters already chosen.
pub struct Quantization<'a> {
    pub act: &'a HashMap<ValueId, ActParams>,
    pub quantized: &'a HashSet<crate::ir::NodeId>,
    /// Per-input-channel means of Conv/Gemm inputs, for bias correction (empty: none).
    pub means: &'a HashMap<ValueId, Vec<f32>>,
}

/// What the writer did, for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteSummary {
    pub qdq_activations: usize,
    pub quantized_weights: usize,
    pub int8_weight_bytes: usize,
    pub f32_weight_bytes: usize,
    /// Biases kept in f32 because they did not fit i32, by node.
    pub float_biases: Vec<String>,
    /// Biases written corrected for the weights' rounding (Conv and Gemm with calibration
    /// means; a MatMul has no bias to correct).
    pub corrected_biases: usize,
}

struct Writer<'g> {
    g: &'g Graph,
    used: HashSet<String>,
    node_names: HashSet<String>,
    names: Vec<String>,
    /// The name readers use for a value (its DQ output when it has a Q/DQ pair).
    read: HashMap<ValueId, String>,
    consts: HashMap<ValueId, String>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    summary: WriteSummary,
}

fn attr(name: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        r#type: Some(AttributeType::Int as i32),
        ..attr(name)
    }
}

fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        r#type: Some(AttributeType::Float as i32),
        ..attr(name)
    }
}

fn attr_ints(name: &str, v: impl IntoIterator<Item = i64>) -> AttributeProto {
    AttributeProto {
        ints: v.into_iter().collect(),
        r#type: Some(AttributeType::Ints as i32),
        ..attr(name)
    }
}

fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        r#type: Some(AttributeType::String as i32),
        ..attr(name)
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// An initializer holding `vals` as `dtype` (raw little-endian data); a float `dtype` is
/// written as I64.
fn int_tensor(name: &str, dtype: DType, shape: &[usize], vals: &[i64]) -> TensorProto {
    let dtype = if dtype.is_float() { DType::I64 } else { dtype };
    let mut raw = Vec::with_capacity(vals.len() * dtype.size());
    for &v in vals {
        match dtype {
            DType::U8 | DType::Bool => raw.push(v as u8),
            DType::I8 => raw.push(v as i8 as u8),
            DType::I16 => raw.extend_from_slice(&(v as i16).to_le_bytes()),
            DType::U16 => raw.extend_from_slice(&(v as u16).to_le_bytes()),
            DType::I32 => raw.extend_from_slice(&(v as i32).to_le_bytes()),
            DType::U32 => raw.extend_from_slice(&(v as u32).to_le_bytes()),
            DType::I64 | DType::U64 => raw.extend_from_slice(&v.to_le_bytes()),
            DType::F32 | DType::F16 | DType::BF16 | DType::F64 => {
                unreachable!("float dtypes are written as I64")
            }
        }
    }
    TensorProto {
        name: Some(name.into()),
        dims: dims(shape),
        data_type: Some(dtype_to_onnx(dtype) as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn f32_tensor(name: &str, shape: &[usize], vals: &[f32]) -> TensorProto {
    float_tensor(name, DType::F32, shape, vals)
}

/// An initializer holding `vals` (f32 storage) as the float `dtype`: f16 and bf16 rounded to
/// nearest even (exact for values the importer widened), f64 widened.
fn float_tensor(name: &str, dtype: DType, shape: &[usize], vals: &[f32]) -> TensorProto {
    let raw: Vec<u8> = match dtype {
        DType::F16 => vals
            .iter()
            .flat_map(|&v| f32_to_f16(v).to_le_bytes())
            .collect(),
        DType::BF16 => vals
            .iter()
            .flat_map(|&v| f32_to_bf16(v).to_le_bytes())
            .collect(),
        DType::F64 => vals
            .iter()
            .flat_map(|&v| f64::from(v).to_le_bytes())
            .collect(),
        _ => vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    let dtype = if dtype.is_float() { dtype } else { DType::F32 };
    TensorProto {
        name: Some(name.into()),
        dims: dims(shape),
        data_type: Some(dtype_to_onnx(dtype) as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn value_info(name: &str, dtype: DType, shape: &[usize], dynamic_batch: bool) -> ValueInfoProto {
    let dim = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| tensor_shape_proto::Dimension {
            value: Some(if i == 0 && dynamic_batch {
                tensor_shape_proto::dimension::Value::DimParam("batch".into())
            } else {
                tensor_shape_proto::dimension::Value::DimValue(d as i64)
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(dtype_to_onnx(dtype) as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `base`, or `base_N` for the first N not in `used`; recorded as used.
fn unique(used: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while !used.insert(name.clone()) {
        name = format!("{base}_{k}");
        k += 1;
    }
    name
}

fn node_proto(op_type: &str, name: &str, inputs: Vec<String>, outputs: Vec<String>) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.into()),
        name: Some(name.into()),
        input: inputs,
        output: outputs,
        ..Default::default()
    }
}

impl<'g> Writer<'g> {
    fn new(g: &'g Graph) -> Self {
        let mut w = Writer {
            g,
            used: HashSet::new(),
            node_names: HashSet::new(),
            names: Vec::with_capacity(g.values.len()),
            read: HashMap::new(),
            consts: HashMap::new(),
            nodes: Vec::new(),
            inits: Vec::new(),
            summary: WriteSummary::default(),
        };
        for (i, v) in g.values.iter().enumerate() {
            let base = if v.name.is_empty() {
                format!("v{i}")
            } else {
                v.name.clone()
            };
            let name = w.fresh(&base);
            w.names.push(name);
        }
        w
    }

    /// A value name not used yet.
    fn fresh(&mut self, base: &str) -> String {
        unique(&mut self.used, base)
    }

    /// A node name not used by another node.
    fn node_name(&mut self, base: &str) -> String {
        unique(&mut self.node_names, base)
    }

    fn name(&self, v: ValueId) -> &str {
        &self.names[v.index()]
    }

    /// The name a reader uses for `v`; constants become initializers on first use.
    fn input(&mut self, v: ValueId) -> String {
        if let Some(t) = self.g.value(v).constant() {
            if let Some(n) = self.consts.get(&v) {
                return n.clone();
            }
            let name = self.name(v).to_string();
            let init = match t.as_f32() {
                Some(f) => {
                    self.summary.f32_weight_bytes += f.len() * t.dtype().size();
                    float_tensor(&name, t.dtype(), t.shape(), f)
                }
                None => int_tensor(&name, t.dtype(), t.shape(), &t.to_i64_vec()),
            };
            self.inits.push(init);
            self.consts.insert(v, name.clone());
            return name;
        }
        self.read
            .get(&v)
            .cloned()
            .unwrap_or_else(|| self.name(v).to_string())
    }

    fn init_f32(&mut self, base: &str, shape: &[usize], vals: &[f32]) -> String {
        let name = self.fresh(base);
        self.inits.push(f32_tensor(&name, shape, vals));
        name
    }

    fn init_int(&mut self, base: &str, dtype: DType, shape: &[usize], vals: &[i64]) -> String {
        let name = self.fresh(base);
        self.inits.push(int_tensor(&name, dtype, shape, vals));
        name
    }

    /// Q/DQ pair on `src` (whose reader name becomes `dst`).
    fn qdq(&mut self, base: &str, src: &str, dst: &str, p: ActParams) {
        let scale = self.init_f32(&format!("{base}_scale"), &[], &[p.scale]);
        let zp = self.init_int(&format!("{base}_zero_point"), p.dtype, &[], &[p.zero_point]);
        let q = self.fresh(&format!("{base}_q"));
        let qn = self.node_name(&format!("{base}_QuantizeLinear"));
        let dn = self.node_name(&format!("{base}_DequantizeLinear"));
        self.nodes.push(node_proto(
            "QuantizeLinear",
            &qn,
            vec![src.into(), scale.clone(), zp.clone()],
            vec![q.clone()],
        ));
        self.nodes.push(node_proto(
            "DequantizeLinear",
            &dn,
            vec![q, scale, zp],
            vec![dst.into()],
        ));
        self.summary.qdq_activations += 1;
    }

    /// A dequantized s8 per-channel weight; returns the DQ output's name.
    fn weight(&mut self, base: &str, qw: &QuantizedWeight, shape: &[usize]) -> String {
        let c = qw.scale.len();
        let q: Vec<i64> = qw.q.iter().map(|&v| v as i64).collect();
        let qn = self.init_int(&format!("{base}_q"), DType::I8, shape, &q);
        let sn = self.init_f32(&format!("{base}_scale"), &[c], &qw.scale);
        let zn = self.init_int(&format!("{base}_zero_point"), DType::I8, &[c], &vec![0; c]);
        let out = self.fresh(&format!("{base}_dq"));
        let dn = self.node_name(&format!("{base}_DequantizeLinear"));
        let mut node = node_proto("DequantizeLinear", &dn, vec![qn, sn, zn], vec![out.clone()]);
        node.attribute.push(attr_i("axis", qw.axis as i64));
        self.nodes.push(node);
        self.summary.quantized_weights += 1;
        self.summary.int8_weight_bytes += qw.q.len();
        out
    }

    /// The bias input: i32 dequantized when it fits, else f32.
    fn bias(&mut self, node: &str, base: &str, b: &[f32], x_scale: f32, w_scale: &[f32]) -> String {
        match weights::quantize_bias(b, x_scale, w_scale) {
            Some(q) => {
                let c = b.len();
                let scales: Vec<f32> = w_scale.iter().map(|s| s * x_scale).collect();
                let q: Vec<i64> = q.into_iter().map(i64::from).collect();
                let qn = self.init_int(&format!("{base}_q"), DType::I32, &[c], &q);
                let sn = self.init_f32(&format!("{base}_scale"), &[c], &scales);
                let zn =
                    self.init_int(&format!("{base}_zero_point"), DType::I32, &[c], &vec![0; c]);
                let out = self.fresh(&format!("{base}_dq"));
                let dn = self.node_name(&format!("{base}_DequantizeLinear"));
                let mut n =
                    node_proto("DequantizeLinear", &dn, vec![qn, sn, zn], vec![out.clone()]);
                n.attribute.push(attr_i("axis", 0));
                self.nodes.push(n);
                self.summary.int8_weight_bytes += 4 * c;
                out
            }
            None => {
                self.summary.float_biases.push(node.to_string());
                self.summary.f32_weight_bytes += 4 * b.len();
                self.init_f32(base, &[b.len()], b)
            }
        }
    }
}

/// The weight slot of a quantized node whose weight is a constant f32.
struct WeightSlot<'g> {
    /// The weight value and its constant tensor (f32 storage).
    value: ValueId,
    tensor: &'g Tensor,
    data: &'g [f32],
    /// Axis of the output channels.
    axis: usize,
    /// The bias value and its data, when constant f32 and one per output channel.
    bias: Option<(ValueId, &'g [f32])>,
}

fn weight_slot<'g>(g: &'g Graph, node: &Node) -> Option<WeightSlot<'g>> {
    let w = *node.inputs.get(1)?;
    let wt = g.value(w).constant()?;
    let data = wt.as_f32()?;
    let bias = |slot: usize, n: usize| {
        let b = *node.inputs.get(slot)?;
        let t = g.value(b).constant()?;
        let f = t.as_f32()?;
        (t.shape() == [n]).then_some((b, f))
    };
    let (axis, bias) = match &node.op {
        Op::Conv(_) if wt.shape().len() == 4 => (0, bias(2, wt.shape()[0])),
        Op::Gemm(gm) if wt.shape().len() == 2 && gm.alpha == 1.0 && !gm.trans_a => {
            let (axis, n) = if gm.trans_b {
                (0, wt.shape()[0])
            } else {
                (1, wt.shape()[1])
            };
            (axis, bias(2, n).filter(|_| gm.beta == 1.0))
        }
        Op::MatMul if wt.shape().len() == 2 => (1, None),
        _ => return None,
    };
    Some(WeightSlot {
        value: w,
        tensor: wt,
        data,
        axis,
        bias,
    })
}

/// Builds the QDQ model.
pub fn write(g: &Graph, q: &Quantization<'_>) -> Result<(ModelProto, WriteSummary), WriteError> {
    let mut w = Writer::new(g);
    let order = g.topo_order().map_err(|n| WriteError::Unwritable {
        node: g.node(n).name.clone(),
        op: g.node(n).op.name(),
        detail: "graph has a cycle".into(),
    })?;
    // Graph outputs with a Q/DQ pair: the op writes NAME_f32, the DQ writes NAME.
    let mut op_out: HashMap<ValueId, String> = HashMap::new();
    for &v in &g.outputs {
        if q.act.contains_key(&v) {
            let base = w.name(v).to_string();
            let f = w.fresh(&format!("{base}_f32"));
            op_out.insert(v, f);
        }
    }
    let inputs: Vec<ValueInfoProto> = g
        .inputs
        .iter()
        .map(|&v| {
            let val = g.value(v);
            value_info(w.name(v), val.ty.dtype, &val.ty.shape, g.dynamic_batch)
        })
        .collect();
    for &v in &g.inputs {
        if let Some(&p) = q.act.get(&v) {
            let base = w.name(v).to_string();
            let dq = w.fresh(&format!("{base}_dq"));
            w.qdq(&base, &base, &dq, p);
            w.read.insert(v, dq);
        }
    }
    for n in order {
        let node = g.node(n);
        let mut ins: Vec<String> = Vec::with_capacity(node.inputs.len());
        let slot = q
            .quantized
            .contains(&n)
            .then(|| weight_slot(g, node))
            .flatten();
        let x_params = node.inputs.first().and_then(|v| q.act.get(v)).copied();
        match (slot, x_params) {
            (Some(slot), Some(xp)) => {
                let (wv, wt, wf, bias) = (slot.value, slot.tensor, slot.data, slot.bias);
                let qw = weights::quantize_per_channel(wf, wt.shape(), slot.axis);
                ins.push(w.input(node.inputs[0]));
                let wname = w.name(wv).to_string();
                ins.push(w.weight(&wname, &qw, wt.shape()));
                // Bias (corrected for the weight's rounding when calibration recorded E[x]).
                let channels = qw.scale.len();
                let mut b: Vec<f32> = match bias {
                    Some((_, bf)) => bf.to_vec(),
                    None => vec![0.0; channels],
                };
                let mut corrected = false;
                if let Some(mean) = q.means.get(&node.inputs[0]) {
                    let deq = qw.dequantized(wt.shape());
                    let shift = match &node.op {
                        Op::Conv(c) => weights::conv_shift(wf, &deq, wt.shape(), c.group, mean),
                        Op::Gemm(gm) => {
                            weights::dense_shift(wf, &deq, wt.shape(), gm.trans_b, mean)
                        }
                        _ => vec![0.0; channels],
                    };
                    for (bi, s) in b.iter_mut().zip(shift) {
                        *bi -= s;
                    }
                    corrected = true;
                }
                let has_bias_slot = matches!(node.op, Op::Conv(_) | Op::Gemm(_));
                if has_bias_slot && (bias.is_some() || corrected) {
                    if corrected {
                        w.summary.corrected_biases += 1;
                    }
                    let bname = match bias {
                        Some((bv, _)) => w.name(bv).to_string(),
                        None => format!("{}_bias", node.name),
                    };
                    ins.push(w.bias(&node.name, &bname, &b, xp.scale, &qw.scale));
                } else if let Some(&extra) = node.inputs.get(2) {
                    ins.push(w.input(extra));
                }
            }
            _ => {
                for &v in &node.inputs {
                    ins.push(w.input(v));
                }
            }
        }
        let outs: Vec<String> = node
            .outputs
            .iter()
            .map(|v| {
                op_out
                    .get(v)
                    .cloned()
                    .unwrap_or_else(|| w.name(*v).to_string())
            })
            .collect();
        write_op(&mut w, node, ins, outs.clone())?;
        for (&v, out) in node.outputs.iter().zip(&outs) {
            if let Some(&p) = q.act.get(&v) {
                let base = w.name(v).to_string();
                let dst = if g.is_output(v) {
                    base.clone()
                } else {
                    w.fresh(&format!("{base}_dq"))
                };
                w.qdq(&base, out, &dst, p);
                w.read.insert(v, dst);
            }
        }
    }
    let outputs = g
        .outputs
        .iter()
        .map(|&v| {
            let val = g.value(v);
            value_info(w.name(v), val.ty.dtype, &val.ty.shape, g.dynamic_batch)
        })
        .collect();
    let graph = GraphProto {
        name: Some("ghostc_quantized".into()),
        node: std::mem::take(&mut w.nodes),
        initializer: std::mem::take(&mut w.inits),
        input: inputs,
        output: outputs,
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        producer_name: Some("ghostc quantize".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        graph: Some(graph),
        ..Default::default()
    };
    Ok((model, w.summary))
}

fn spatial_attrs(
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    dil: [usize; 2],
) -> Vec<AttributeProto> {
    vec![
        attr_ints("kernel_shape", kernel.iter().map(|&k| k as i64)),
        attr_ints("strides", strides.iter().map(|&k| k as i64)),
        attr_ints("pads", pads.iter().map(|&k| k as i64)),
        attr_ints("dilations", dil.iter().map(|&k| k as i64)),
    ]
}

/// Emits one IR node as ONNX (constant operands the IR keeps as attributes become
/// initializers).
fn write_op(
    w: &mut Writer<'_>,
    node: &Node,
    mut ins: Vec<String>,
    outs: Vec<String>,
) -> Result<(), WriteError> {
    let unwritable = |detail: &str| WriteError::Unwritable {
        node: node.name.clone(),
        op: node.op.name(),
        detail: detail.into(),
    };
    let base = node.name.clone();
    let mut attrs = Vec::new();
    let op_type: &str = match &node.op {
        Op::Conv(c) => {
            attrs = spatial_attrs(c.kernel, c.strides, c.pads, c.dilations);
            attrs.push(attr_i("group", c.group as i64));
            "Conv"
        }
        Op::BatchNorm(b) => {
            attrs.push(attr_f("epsilon", b.epsilon));
            "BatchNormalization"
        }
        Op::Activation(a) => match a {
            Activation::Relu => "Relu",
            Activation::Clamp { lo, hi } => {
                ins.push(w.init_f32(&format!("{base}_min"), &[], &[*lo]));
                ins.push(w.init_f32(&format!("{base}_max"), &[], &[*hi]));
                "Clip"
            }
            Activation::HardSigmoid { alpha, beta } => {
                attrs.push(attr_f("alpha", *alpha));
                attrs.push(attr_f("beta", *beta));
                "HardSigmoid"
            }
            Activation::HardSwish => "HardSwish",
            Activation::Sigmoid => "Sigmoid",
            Activation::Silu => {
                return Err(unwritable(
                    "SiLU has no single-node ONNX form before opset 24 (Swish)",
                ))
            }
            Activation::LeakyRelu { alpha } => {
                attrs.push(attr_f("alpha", *alpha));
                "LeakyRelu"
            }
            Activation::Tanh => "Tanh",
            Activation::Gelu => {
                return Err(unwritable(
                    "GELU has no single-node ONNX form before opset 20",
                ))
            }
            Activation::Mish => {
                return Err(unwritable(
                    "Mish has no single-node ONNX form before opset 18",
                ))
            }
        },
        Op::Binary(b) => match b {
            BinaryOp::Add => "Add",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "Div",
            BinaryOp::Pow => "Pow",
            BinaryOp::Max => "Max",
            BinaryOp::Min => "Min",
            BinaryOp::Equal => "Equal",
            BinaryOp::Less => "Less",
            BinaryOp::Greater => "Greater",
            BinaryOp::PRelu => "PRelu",
        },
        Op::Unary(u) => match u {
            UnaryOp::Neg => "Neg",
            UnaryOp::Sqrt => "Sqrt",
            UnaryOp::Reciprocal => "Reciprocal",
            UnaryOp::Exp => "Exp",
            UnaryOp::Abs => "Abs",
            UnaryOp::Floor => "Floor",
            UnaryOp::Ceil => "Ceil",
            UnaryOp::Not => "Not",
            UnaryOp::Erf => "Erf",
            UnaryOp::Softplus => "Softplus",
        },
        Op::Concat { axis } => {
            attrs.push(attr_i("axis", *axis as i64));
            "Concat"
        }
        Op::Slice(s) => {
            let ends: Vec<i64> = s
                .ends
                .iter()
                .zip(&s.steps)
                .map(|(&e, &st)| if st < 0 && e == -1 { i64::MIN } else { e })
                .collect();
            let k = s.axes.len();
            ins.push(w.init_int(&format!("{base}_starts"), DType::I64, &[k], &s.starts));
            ins.push(w.init_int(&format!("{base}_ends"), DType::I64, &[k], &ends));
            let axes: Vec<i64> = s.axes.iter().map(|&a| a as i64).collect();
            ins.push(w.init_int(&format!("{base}_axes"), DType::I64, &[k], &axes));
            ins.push(w.init_int(&format!("{base}_steps"), DType::I64, &[k], &s.steps));
            "Slice"
        }
        Op::Split { axis, sizes } => {
            attrs.push(attr_i("axis", *axis as i64));
            let sz: Vec<i64> = sizes.iter().map(|&s| s as i64).collect();
            ins.push(w.init_int(&format!("{base}_split"), DType::I64, &[sz.len()], &sz));
            "Split"
        }
        Op::GlobalAveragePool => "GlobalAveragePool",
        Op::Pool(p) => {
            if p.kind == PoolKind::Avg && p.dilations != [1, 1] {
                return Err(unwritable("dilated AveragePool needs opset 19"));
            }
            if p.kind == PoolKind::Avg && p.ceil_mode && p.count_include_pad {
                return Err(unwritable("ceil_mode with count_include_pad"));
            }
            attrs = spatial_attrs(p.kernel, p.strides, p.pads, p.dilations);
            match p.kind {
                PoolKind::Max => "MaxPool",
                PoolKind::Avg => {
                    attrs.retain(|a| a.name.as_deref() != Some("dilations"));
                    attrs.push(attr_i("count_include_pad", p.count_include_pad as i64));
                    "AveragePool"
                }
            }
        }
        Op::Reduce(r) => {
            attrs.push(attr_i("keepdims", r.keepdims as i64));
            let axes = r.axes.iter().map(|&a| a as i64);
            match r.kind {
                ReduceKind::Sum => {
                    let a: Vec<i64> = axes.collect();
                    ins.push(w.init_int(&format!("{base}_axes"), DType::I64, &[a.len()], &a));
                    "ReduceSum"
                }
                k => {
                    attrs.push(attr_ints("axes", axes));
                    match k {
                        ReduceKind::Mean => "ReduceMean",
                        ReduceKind::Max => "ReduceMax",
                        _ => "ReduceMin",
                    }
                }
            }
        }
        Op::Gemm(gm) => {
            attrs.push(attr_f("alpha", gm.alpha));
            attrs.push(attr_f("beta", gm.beta));
            attrs.push(attr_i("transA", gm.trans_a as i64));
            attrs.push(attr_i("transB", gm.trans_b as i64));
            "Gemm"
        }
        Op::MatMul => "MatMul",
        Op::Reshape { shape } => {
            let s: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            ins.push(w.init_int(&format!("{base}_shape"), DType::I64, &[s.len()], &s));
            "Reshape"
        }
        Op::Transpose { perm } => {
            attrs.push(attr_ints("perm", perm.iter().map(|&p| p as i64)));
            "Transpose"
        }
        Op::Identity => "Identity",
        Op::Softmax { axis } => {
            attrs.push(attr_i("axis", *axis as i64));
            "Softmax"
        }
        Op::LayerNorm { axis, epsilon } => {
            attrs.push(attr_i("axis", *axis as i64));
            attrs.push(attr_f("epsilon", *epsilon));
            "LayerNormalization"
        }
        Op::Pad(p) => {
            ins.push(w.init_int(
                &format!("{base}_pads"),
                DType::I64,
                &[p.pads.len()],
                &p.pads,
            ));
            let mode = match p.mode {
                PadMode::Constant => {
                    ins.push(w.init_f32(&format!("{base}_value"), &[], &[p.value]));
                    "constant"
                }
                PadMode::Reflect => "reflect",
                PadMode::Edge => "edge",
            };
            attrs.push(attr_s("mode", mode));
            "Pad"
        }
        Op::Cast { to } => {
            attrs.push(attr_i("to", dtype_to_onnx(*to) as i32 as i64));
            "Cast"
        }
        Op::Resize(r) => {
            ins.push(String::new()); // roi
            ins.push(String::new()); // scales
            let s: Vec<i64> = r.sizes.iter().map(|&d| d as i64).collect();
            ins.push(w.init_int(&format!("{base}_sizes"), DType::I64, &[s.len()], &s));
            let in_shape = &w.g.value(node.inputs[0]).ty.shape;
            let exact = r
                .scales
                .iter()
                .zip(in_shape)
                .zip(&r.sizes)
                .all(|((&sc, &i), &o)| {
                    (sc * i as f32 - o as f32).abs() < 1e-6 && sc == o as f32 / i as f32
                });
            if !exact {
                return Err(unwritable("scales that are not output/input sizes"));
            }
            attrs.push(attr_s(
                "mode",
                match r.mode {
                    ResizeMode::Nearest => "nearest",
                    ResizeMode::Linear => "linear",
                    ResizeMode::Cubic => "cubic",
                },
            ));
            attrs.push(attr_s(
                "coordinate_transformation_mode",
                match r.coord {
                    CoordTransform::HalfPixel => "half_pixel",
                    CoordTransform::PytorchHalfPixel => "pytorch_half_pixel",
                    CoordTransform::AlignCorners => "align_corners",
                    CoordTransform::Asymmetric => "asymmetric",
                    CoordTransform::TfHalfPixelForNearest => "tf_half_pixel_for_nearest",
                },
            ));
            attrs.push(attr_s(
                "nearest_mode",
                match r.nearest {
                    NearestMode::RoundPreferFloor => "round_prefer_floor",
                    NearestMode::RoundPreferCeil => "round_prefer_ceil",
                    NearestMode::Floor => "floor",
                    NearestMode::Ceil => "ceil",
                },
            ));
            attrs.push(attr_f("cubic_coeff_a", r.cubic_coeff_a));
            attrs.push(attr_i("exclude_outside", r.exclude_outside as i64));
            "Resize"
        }
        _ => return Err(unwritable("this op is not written by ghostc quantize")),
    };
    let name = w.node_name(&node.name);
    let mut n = node_proto(op_type, &name, ins, outs);
    n.attribute = attrs;
    w.nodes.push(n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::tensor_proto::DataType;

    #[test]
    fn int_initializers_are_labelled_with_the_width_written() {
        let vals = [-2i64, 0, 1, 300];
        for d in [
            DType::I8,
            DType::U8,
            DType::I16,
            DType::U16,
            DType::I32,
            DType::U32,
            DType::I64,
            DType::U64,
            DType::Bool,
        ] {
            let t = int_tensor("t", d, &[4], &vals);
            assert_eq!(t.data_type, Some(dtype_to_onnx(d) as i32), "{d}");
            assert_eq!(t.raw_data.unwrap().len(), 4 * d.size(), "{d}");
        }
        let t = int_tensor("t", DType::I16, &[4], &vals);
        assert_eq!(t.raw_data.unwrap()[..2], (-2i16).to_le_bytes());
        let t = int_tensor("t", DType::F32, &[4], &vals);
        assert_eq!(t.data_type, Some(DataType::Int64 as i32));
        assert_eq!(t.raw_data.unwrap().len(), 32);
    }

    #[test]
    fn float_initializers_keep_their_dtype() {
        let vals = [1.0f32, -2.0, 0.5];
        for (d, code, bytes) in [
            (DType::F32, DataType::Float, 4),
            (DType::F16, DataType::Float16, 2),
            (DType::BF16, DataType::Bfloat16, 2),
            (DType::F64, DataType::Double, 8),
        ] {
            let t = float_tensor("t", d, &[3], &vals);
            assert_eq!(t.data_type, Some(code as i32), "{d}");
            assert_eq!(t.raw_data.as_ref().unwrap().len(), 3 * bytes, "{d}");
        }
        let t = float_tensor("t", DType::F16, &[3], &vals);
        assert_eq!(t.raw_data.unwrap()[..2], 0x3c00u16.to_le_bytes());
        let t = float_tensor("t", DType::F64, &[3], &vals);
        assert_eq!(t.raw_data.unwrap()[8..16], (-2.0f64).to_le_bytes());
    }
}
