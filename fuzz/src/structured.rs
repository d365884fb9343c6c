//! The `structured` target's input: a mostly valid model ([`crate::gen::ModelDesc`]) plus
//! random extra nodes (from the supported op list and a few unsupported ones) with random
//! attributes and inputs, random initializers (any dims, dtype, payload), nested graphs,
//! function tweaks, header changes, and a few corruptions of the finished `ModelProto`.

use arbitrary::Arbitrary;
use ghostc::onnx::proto::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, AttributeProto, FunctionProto,
    GraphProto, ModelProto, NodeProto, StringStringEntryProto, TensorProto,
};
use ghostc::passes::FuseOptions;
use prost::Message;

use crate::gen::{self, ModelDesc};
use crate::onnx_build::{opset, value_info};

/// Op types the extra nodes pick from: everything ghostc registers, plus ops it does not.
pub const OPS: &[&str] = &[
    "Relu",
    "Sigmoid",
    "Tanh",
    "HardSwish",
    "LeakyRelu",
    "HardSigmoid",
    "Clip",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Equal",
    "Less",
    "Greater",
    "Max",
    "Min",
    "Neg",
    "Sqrt",
    "Reciprocal",
    "Exp",
    "Abs",
    "Floor",
    "Ceil",
    "Not",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "Where",
    "Cast",
    "CastLike",
    "Conv",
    "BatchNormalization",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Gemm",
    "MatMul",
    "Softmax",
    "Resize",
    "Upsample",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "Expand",
    "Pad",
    "Shape",
    "ConstantOfShape",
    "Range",
    "Constant",
    "Identity",
    "Dropout",
    "If",
    "Loop",
    "LSTM",
    "QLinearConv",
    "ActFn",
    "",
];

const ATTR_NAMES: &[&str] = &[
    "axis",
    "axes",
    "keepdims",
    "kernel_shape",
    "strides",
    "pads",
    "group",
    "dilations",
    "auto_pad",
    "epsilon",
    "alpha",
    "beta",
    "transA",
    "transB",
    "perm",
    "mode",
    "to",
    "value",
    "split",
    "starts",
    "ends",
    "shape",
    "min",
    "max",
    "count_include_pad",
    "ceil_mode",
    "coordinate_transformation_mode",
    "nearest_mode",
    "allowzero",
    "then_branch",
    "body",
    "value_float",
    "value_ints",
    "noop_with_empty_axes",
    "select_last_index",
    "",
];

const STRINGS: &[&str] = &[
    "",
    "NOTSET",
    "SAME_UPPER",
    "SAME_LOWER",
    "VALID",
    "nearest",
    "linear",
    "cubic",
    "half_pixel",
    "asymmetric",
    "align_corners",
    "pytorch_half_pixel",
    "round_prefer_floor",
    "floor",
    "ceil",
    "constant",
    "reflect",
    "edge",
    "\u{202e}x\"\n*/",
    "fz",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum AttrVal {
    Int(i64),
    SmallInt(i8),
    Ints(Vec<i8>),
    BigInts(Vec<i64>),
    Float(f32),
    Floats(Vec<f32>),
    Str(u8),
    Tensor(RawTensor),
    /// A nested graph of this depth around these nodes (depth up to 80: past the limit).
    Graph(u8, Vec<RawNode>),
    /// Wrong type tag for the payload.
    Mistyped(u8, i8),
    RefAttr(u8),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct RawAttr {
    pub name: u8,
    pub val: AttrVal,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum InputRef {
    /// An existing value, by index into the values defined so far.
    Value(u8),
    /// The empty name (an omitted optional input).
    Empty,
    /// A name nothing defines.
    Undefined,
    /// The node's own output (a self-loop).
    SelfLoop,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct RawNode {
    pub op: u8,
    pub inputs: Vec<InputRef>,
    pub attrs: Vec<RawAttr>,
    pub outputs: u8,
    pub domain: Option<u8>,
    /// Where in the node list it goes (modulo its length).
    pub at: u16,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Payload {
    /// Exactly the right number of elements for dims and dtype, in the natural field.
    Exact,
    /// Exactly the right byte count in raw_data.
    ExactRaw,
    Raw(Vec<u8>),
    Floats(Vec<f32>),
    Int64(Vec<i64>),
    Int32(Vec<i32>),
    Doubles(Vec<f64>),
    /// raw_data and float_data both set.
    Both,
    External(u8, Option<i64>, Option<i64>),
    Segment(i64, i64),
    None,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct RawTensor {
    pub dims: Vec<i8>,
    pub big_dim: Option<(u8, i64)>,
    pub dtype: u8,
    pub payload: Payload,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct RawInit {
    /// Replace (by name) an existing initializer instead of adding a new one.
    pub replace: Option<u8>,
    pub tensor: RawTensor,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Corruption {
    DropNode(u16),
    DuplicateNode(u16),
    SetInput(u16, u8, InputRef),
    DropLastInput(u16),
    RenameOutput(u16),
    SetAttr(u16, RawAttr),
    DropAttrs(u16),
    ChangeOp(u16, u8),
    DropInitializer(u16),
    InitDims(u16, Vec<i8>),
    InitDtype(u16, u8),
    TruncateInit(u16, u8),
    InputDim(u8, i64),
    InputSymbolic(u8),
    InputElemType(i32),
    DropGraphInput,
    DropGraphOutput,
    ExtraGraphOutput(u8),
    InitializerAsInput(u16),
    DuplicateInitializer(u16),
    DeclareOutputShape(Vec<i8>),
    /// Byte-level: xor a byte of the encoded model.
    FlipByte(u32, u8),
    /// Byte-level: cut the encoded model.
    Truncate(u32),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Header {
    pub ir_version: Option<i8>,
    pub opset: Option<i8>,
    pub extra_imports: Vec<(u8, i8)>,
    pub function_opset: Option<i8>,
    /// A function that calls itself, or a chain of functions this deep.
    pub recursive_function: bool,
    pub function_chain: u8,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct StructuredInput {
    pub model: ModelDesc,
    pub header: Header,
    pub extra_nodes: Vec<RawNode>,
    pub inits: Vec<RawInit>,
    pub corruptions: Vec<Corruption>,
    pub fuse: u8,
    /// How much to break: 0..=3 a valid model (half the inputs), 4 header changes only, 5
    /// random initializers only, 6 extra nodes only, 7 everything.
    pub chaos: u8,
}

fn dtype_size(dt: i32) -> usize {
    match dt {
        1 | 6 | 12 => 4,
        2 | 3 | 9 => 1,
        4 | 5 | 10 | 16 => 2,
        7 | 11 | 13 | 14 => 8,
        15 => 16,
        _ => 1,
    }
}

fn make_tensor(t: &RawTensor, name: &str) -> TensorProto {
    let mut dims: Vec<i64> = t.dims.iter().take(6).map(|&d| d as i64 % 8).collect();
    if let Some((axis, d)) = t.big_dim {
        if !dims.is_empty() {
            let a = axis as usize % dims.len();
            dims[a] = d;
        }
    }
    let dtype = (t.dtype % 24) as i32;
    let mut out = TensorProto {
        name: Some(name.into()),
        dims: dims.clone(),
        data_type: Some(dtype),
        ..Default::default()
    };
    let count = dims
        .iter()
        .try_fold(1i64, |a, &d| a.checked_mul(d))
        .filter(|&n| (0..=4096).contains(&n))
        .unwrap_or(0) as usize;
    match &t.payload {
        Payload::Exact => match dtype {
            1 => out.float_data = (0..count).map(|i| i as f32 * 0.25 - 1.0).collect(),
            7 => out.int64_data = (0..count as i64).collect(),
            11 => out.double_data = (0..count).map(|i| i as f64).collect(),
            13 | 12 => out.uint64_data = (0..count as u64).collect(),
            _ => out.int32_data = (0..count as i32).collect(),
        },
        Payload::ExactRaw => {
            out.raw_data = Some(
                (0..count * dtype_size(dtype))
                    .map(|i| (i * 37) as u8)
                    .collect(),
            )
        }
        Payload::Raw(b) => out.raw_data = Some(b.clone()),
        Payload::Floats(f) => out.float_data = f.clone(),
        Payload::Int64(v) => out.int64_data = v.clone(),
        Payload::Int32(v) => out.int32_data = v.clone(),
        Payload::Doubles(v) => out.double_data = v.clone(),
        Payload::Both => {
            out.raw_data = Some(vec![0; count * 4]);
            out.float_data = vec![0.0; count];
        }
        Payload::External(loc, off, len) => {
            out.data_location = Some(1);
            let loc = ["", ".", "../x", "/etc/passwd", "w.bin", "a/../../b"][*loc as usize % 6];
            out.external_data.push(kv("location", loc));
            if let Some(o) = off {
                out.external_data.push(kv("offset", &o.to_string()));
            }
            if let Some(l) = len {
                out.external_data.push(kv("length", &l.to_string()));
            }
        }
        Payload::Segment(b, e) => {
            out.segment = Some(ghostc::onnx::proto::tensor_proto::Segment {
                begin: Some(*b),
                end: Some(*e),
            })
        }
        Payload::None => {}
    }
    out
}

fn kv(k: &str, v: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    }
}

struct Ctx<'a> {
    values: &'a [String],
    counter: usize,
}

impl Ctx<'_> {
    fn input_name(&self, r: &InputRef, own_output: &str) -> String {
        match r {
            InputRef::Value(i) if !self.values.is_empty() => {
                self.values[*i as usize % self.values.len()].clone()
            }
            InputRef::Value(_) | InputRef::Empty => String::new(),
            InputRef::Undefined => "nowhere".into(),
            InputRef::SelfLoop => own_output.into(),
        }
    }

    fn attr(&mut self, a: &RawAttr, depth: usize) -> AttributeProto {
        let name = ATTR_NAMES[a.name as usize % ATTR_NAMES.len()].to_string();
        let mut p = AttributeProto {
            name: Some(name.clone()),
            ..Default::default()
        };
        let ty = |t: AttributeType| Some(t as i32);
        match &a.val {
            AttrVal::Int(v) => {
                p.r#type = ty(AttributeType::Int);
                p.i = Some(*v);
            }
            AttrVal::SmallInt(v) => {
                p.r#type = ty(AttributeType::Int);
                p.i = Some(*v as i64);
            }
            AttrVal::Ints(v) => {
                p.r#type = ty(AttributeType::Ints);
                p.ints = v.iter().take(16).map(|&x| x as i64).collect();
            }
            AttrVal::BigInts(v) => {
                p.r#type = ty(AttributeType::Ints);
                p.ints = v.iter().take(16).copied().collect();
            }
            AttrVal::Float(v) => {
                p.r#type = ty(AttributeType::Float);
                p.f = Some(*v);
            }
            AttrVal::Floats(v) => {
                p.r#type = ty(AttributeType::Floats);
                p.floats = v.iter().take(16).copied().collect();
            }
            AttrVal::Str(i) => {
                p.r#type = ty(AttributeType::String);
                p.s = Some(STRINGS[*i as usize % STRINGS.len()].as_bytes().to_vec());
            }
            AttrVal::Tensor(t) => {
                p.r#type = ty(AttributeType::Tensor);
                p.t = Some(make_tensor(t, ""));
            }
            AttrVal::Graph(d, nodes) => {
                p.r#type = ty(AttributeType::Graph);
                let levels = (*d as usize % 80).max(1);
                if depth < 2 {
                    let mut inner = GraphProto {
                        name: Some("inner".into()),
                        node: nodes
                            .iter()
                            .take(4)
                            .map(|n| self.node(n, depth + 1))
                            .collect(),
                        ..Default::default()
                    };
                    for _ in 1..levels {
                        inner = GraphProto {
                            name: Some("nest".into()),
                            node: vec![NodeProto {
                                op_type: Some("If".into()),
                                input: vec!["c".into()],
                                output: vec!["o".into()],
                                attribute: vec![AttributeProto {
                                    name: Some("then_branch".into()),
                                    r#type: ty(AttributeType::Graph),
                                    g: Some(inner),
                                    ..Default::default()
                                }],
                                ..Default::default()
                            }],
                            ..Default::default()
                        };
                    }
                    p.g = Some(inner);
                }
            }
            AttrVal::Mistyped(t, v) => {
                p.r#type = Some((*t % 16) as i32);
                p.i = Some(*v as i64);
                p.f = Some(*v as f32);
            }
            AttrVal::RefAttr(i) => {
                p.ref_attr_name = Some(ATTR_NAMES[*i as usize % ATTR_NAMES.len()].into());
                p.r#type = ty(AttributeType::Float);
            }
        }
        p
    }

    fn node(&mut self, n: &RawNode, depth: usize) -> NodeProto {
        self.counter += 1;
        let op = OPS[n.op as usize % OPS.len()];
        let outs: Vec<String> = (0..(n.outputs % 4).max(1))
            .map(|i| format!("x{}_{i}", self.counter))
            .collect();
        NodeProto {
            op_type: Some(op.into()),
            name: Some(format!("extra{}", self.counter)),
            domain: n
                .domain
                .map(|d| ["", "ai.onnx", "fz", "com.microsoft"][d as usize % 4].into()),
            input: n
                .inputs
                .iter()
                .take(6)
                .map(|r| self.input_name(r, &outs[0]))
                .collect(),
            output: outs,
            attribute: n
                .attrs
                .iter()
                .take(6)
                .map(|a| self.attr(a, depth))
                .collect(),
            ..Default::default()
        }
    }
}

fn idx(i: u16, len: usize) -> Option<usize> {
    (len > 0).then(|| i as usize % len)
}

/// Builds the model; returns the encoded bytes (with byte-level corruptions applied) and the
/// fusion switches to compile with.
pub fn build(input: &StructuredInput) -> (Vec<u8>, FuseOptions) {
    let mut m = gen::build(&input.model);
    let chaos = input.chaos % 8;
    let (header, inits, nodes, corruptions) = match chaos {
        0..=3 => (false, 0, 0, 0),
        4 => (true, 0, 0, 0),
        5 => (false, 8, 0, 0),
        6 => (false, 0, 8, 0),
        _ => (true, 8, 8, 4),
    };
    if header {
        apply_header(&mut m, &input.header);
    }
    let graph = m.graph.get_or_insert_with(Default::default);
    // Every value name defined so far, for the extra nodes' inputs.
    let mut values: Vec<String> = graph
        .input
        .iter()
        .filter_map(|v| v.name.clone())
        .chain(graph.initializer.iter().filter_map(|t| t.name.clone()))
        .chain(graph.node.iter().flat_map(|n| n.output.clone()))
        .collect();
    for init in input.inits.iter().take(inits) {
        let name = match init.replace {
            Some(i) if !graph.initializer.is_empty() => {
                let at = i as usize % graph.initializer.len();
                let name = graph.initializer[at].name.clone().unwrap_or_default();
                graph.initializer.remove(at);
                name
            }
            _ => format!("rand{}", values.len()),
        };
        graph.initializer.push(make_tensor(&init.tensor, &name));
        values.push(name);
    }
    let mut ctx = Ctx {
        values: &values,
        counter: 0,
    };
    for n in input.extra_nodes.iter().take(nodes) {
        let node = ctx.node(n, 0);
        let at = n.at as usize % (graph.node.len() + 1);
        graph.node.insert(at, node);
    }
    let mut byte_ops = Vec::new();
    for c in input.corruptions.iter().take(corruptions) {
        corrupt(graph, c, &values, &mut byte_ops);
    }
    let mut bytes = m.encode_to_vec();
    for op in byte_ops {
        match op {
            Corruption::FlipByte(pos, x) if !bytes.is_empty() => {
                let p = pos as usize % bytes.len();
                bytes[p] ^= x;
            }
            Corruption::Truncate(len) if !bytes.is_empty() => {
                let l = len as usize % bytes.len();
                bytes.truncate(l);
            }
            _ => {}
        }
    }
    (bytes, fuse_options(input.fuse))
}

/// Fusion switches from a byte: bit i turns fusion i off (mostly all on).
pub fn fuse_options(bits: u8) -> FuseOptions {
    let mut f = FuseOptions::all();
    if bits & 0x80 != 0 {
        f.bn = bits & 1 == 0;
        f.act = bits & 2 == 0;
        f.ghost = bits & 4 == 0;
        f.residual = bits & 8 == 0;
        f.se = bits & 16 == 0;
        f.linear = bits & 32 == 0;
        f.branches = bits & 64 == 0;
    }
    f
}

fn apply_header(m: &mut ModelProto, h: &Header) {
    if let Some(v) = h.ir_version {
        m.ir_version = Some(v as i64);
    }
    if let Some(v) = h.opset {
        if let Some(imp) = m.opset_import.first_mut() {
            imp.version = Some(v as i64);
        }
    }
    for (d, v) in h.extra_imports.iter().take(3) {
        let domain = ["", "ai.onnx", "fz", "com.microsoft", "ai.onnx.ml"][*d as usize % 5];
        m.opset_import.push(opset(domain, *v as i64));
    }
    if let Some(v) = h.function_opset {
        for f in &mut m.functions {
            f.opset_import = vec![opset("", v as i64)];
        }
    }
    if h.recursive_function || h.function_chain > 0 {
        // Functions F0 -> F1 -> ... -> Fn (-> F0 when recursive), called from the graph.
        let n = (h.function_chain % 80) as usize + 1;
        for i in 0..n {
            let callee = if i + 1 < n {
                format!("F{}", i + 1)
            } else if h.recursive_function {
                "F0".into()
            } else {
                String::new()
            };
            let node = if callee.is_empty() {
                NodeProto {
                    op_type: Some("Identity".into()),
                    input: vec!["X".into()],
                    output: vec!["Y".into()],
                    ..Default::default()
                }
            } else {
                NodeProto {
                    op_type: Some(callee),
                    domain: Some("fz".into()),
                    input: vec!["X".into()],
                    output: vec!["Y".into()],
                    ..Default::default()
                }
            };
            m.functions.push(FunctionProto {
                name: Some(format!("F{i}")),
                domain: Some("fz".into()),
                input: vec!["X".into()],
                output: vec!["Y".into()],
                node: vec![node],
                ..Default::default()
            });
        }
        if !m
            .opset_import
            .iter()
            .any(|o| o.domain.as_deref() == Some("fz"))
        {
            m.opset_import.push(opset("fz", 1));
        }
        if let Some(g) = m.graph.as_mut() {
            if let Some(out) = g.output.first_mut() {
                let old = out.name.clone().unwrap_or_default();
                let new = format!("{old}_f");
                g.node.push(NodeProto {
                    op_type: Some("F0".into()),
                    domain: Some("fz".into()),
                    input: vec![old],
                    output: vec![new.clone()],
                    ..Default::default()
                });
                out.name = Some(new);
            }
        }
    }
}

fn corrupt(g: &mut GraphProto, c: &Corruption, values: &[String], bytes: &mut Vec<Corruption>) {
    let nn = g.node.len();
    let ni = g.initializer.len();
    match c {
        Corruption::DropNode(i) => {
            if let Some(i) = idx(*i, nn) {
                g.node.remove(i);
            }
        }
        Corruption::DuplicateNode(i) => {
            if let Some(i) = idx(*i, nn) {
                let n = g.node[i].clone();
                g.node.push(n);
            }
        }
        Corruption::SetInput(i, k, r) => {
            if let Some(i) = idx(*i, nn) {
                let own = g.node[i].output.first().cloned().unwrap_or_default();
                let ctx = Ctx { values, counter: 0 };
                let name = ctx.input_name(r, &own);
                let node = &mut g.node[i];
                let k = *k as usize % (node.input.len() + 1);
                if k == node.input.len() {
                    node.input.push(name);
                } else {
                    node.input[k] = name;
                }
            }
        }
        Corruption::DropLastInput(i) => {
            if let Some(i) = idx(*i, nn) {
                g.node[i].input.pop();
            }
        }
        Corruption::RenameOutput(i) => {
            if let Some(i) = idx(*i, nn) {
                if let Some(o) = g.node[i].output.first_mut() {
                    o.push('_');
                }
            }
        }
        Corruption::SetAttr(i, a) => {
            if let Some(i) = idx(*i, nn) {
                let mut ctx = Ctx { values, counter: 0 };
                let a = ctx.attr(a, 0);
                let node = &mut g.node[i];
                node.attribute.retain(|x| x.name != a.name);
                node.attribute.push(a);
            }
        }
        Corruption::DropAttrs(i) => {
            if let Some(i) = idx(*i, nn) {
                g.node[i].attribute.clear();
            }
        }
        Corruption::ChangeOp(i, op) => {
            if let Some(i) = idx(*i, nn) {
                g.node[i].op_type = Some(OPS[*op as usize % OPS.len()].into());
            }
        }
        Corruption::DropInitializer(i) => {
            if let Some(i) = idx(*i, ni) {
                g.initializer.remove(i);
            }
        }
        Corruption::InitDims(i, dims) => {
            if let Some(i) = idx(*i, ni) {
                g.initializer[i].dims = dims.iter().take(6).map(|&d| d as i64).collect();
            }
        }
        Corruption::InitDtype(i, dt) => {
            if let Some(i) = idx(*i, ni) {
                g.initializer[i].data_type = Some((*dt % 24) as i32);
            }
        }
        Corruption::TruncateInit(i, n) => {
            if let Some(i) = idx(*i, ni) {
                let t = &mut g.initializer[i];
                let n = *n as usize;
                if let Some(raw) = t.raw_data.as_mut() {
                    raw.truncate(raw.len().saturating_sub(n % 9));
                }
                t.float_data
                    .truncate(t.float_data.len().saturating_sub(n % 3));
                t.int64_data
                    .truncate(t.int64_data.len().saturating_sub(n % 3));
            }
        }
        Corruption::InputDim(axis, d) => {
            if let Some(dims) = input_dims(g) {
                if !dims.is_empty() {
                    let a = *axis as usize % dims.len();
                    dims[a].value = Some(dimension::Value::DimValue(*d));
                }
            }
        }
        Corruption::InputSymbolic(axis) => {
            if let Some(dims) = input_dims(g) {
                if !dims.is_empty() {
                    let a = *axis as usize % dims.len();
                    dims[a].value = Some(dimension::Value::DimParam("S".into()));
                }
            }
        }
        Corruption::InputElemType(t) => {
            if let Some(v) = g.input.first_mut() {
                let name = v.name.clone().unwrap_or_default();
                *v = value_info(&name, *t % 32, Some(&[Some(1), Some(3), Some(8), Some(8)]));
            }
        }
        Corruption::DropGraphInput => {
            g.input.pop();
        }
        Corruption::DropGraphOutput => {
            g.output.pop();
        }
        Corruption::ExtraGraphOutput(v) => {
            if !values.is_empty() {
                let name = &values[*v as usize % values.len()];
                g.output.push(value_info(name, 1, None));
            }
        }
        Corruption::InitializerAsInput(i) => {
            if let Some(i) = idx(*i, ni) {
                let name = g.initializer[i].name.clone().unwrap_or_default();
                g.input.push(value_info(&name, 1, None));
            }
        }
        Corruption::DuplicateInitializer(i) => {
            if let Some(i) = idx(*i, ni) {
                let t = g.initializer[i].clone();
                g.initializer.push(t);
            }
        }
        Corruption::DeclareOutputShape(dims) => {
            if let Some(o) = g.output.first_mut() {
                let name = o.name.clone().unwrap_or_default();
                let d: Vec<Option<i64>> = dims.iter().take(6).map(|&d| Some(d as i64)).collect();
                *o = value_info(&name, 1, Some(&d));
            }
        }
        Corruption::FlipByte(..) | Corruption::Truncate(..) => bytes.push(c.clone()),
    }
}

fn input_dims(
    g: &mut GraphProto,
) -> Option<&mut Vec<ghostc::onnx::proto::tensor_shape_proto::Dimension>> {
    use ghostc::onnx::proto::type_proto;
    let v = g.input.first_mut()?;
    match v.r#type.as_mut()?.value.as_mut()? {
        type_proto::Value::TensorType(t) => Some(&mut t.shape.as_mut()?.dim),
        _ => None,
    }
}
