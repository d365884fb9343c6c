//! Building ONNX models node by node: a small graph builder that tracks every value's full
//! shape, so the generators can produce mostly valid GhostNet-style graphs. The protobuf pieces
//! (attributes, tensors, value infos) come from `ghostc_testkit::onnx`, shared with ghostc's
//! test suites; its generator is `ghostc_testkit::Rng`.

use ghostc::onnx::proto::tensor_proto::DataType;
use ghostc::onnx::proto::{
    attribute_proto::AttributeType, AttributeProto, FunctionProto, GraphProto, ModelProto,
    NodeProto, TensorProto, ValueInfoProto,
};
pub use ghostc_testkit::onnx::{a_float, a_int, a_ints, a_str, a_tensor, opset};
use ghostc_testkit::onnx::{f32_data, f32_raw, i64_tensor, typed, Dim};
use ghostc_testkit::Rng;

/// A value info of element type `elem`: no shape for `None` dims, a `None` dim is the
/// symbolic batch `N`.
pub fn value_info(name: &str, elem: i32, dims: Option<&[Option<i64>]>) -> ValueInfoProto {
    match dims {
        None => typed(name, elem),
        Some(dims) => {
            let dims: Vec<Dim> = dims
                .iter()
                .map(|d| d.map_or(Dim::Param("N"), Dim::Value))
                .collect();
            ghostc_testkit::onnx::value_info(name, elem, &dims)
        }
    }
}

/// A value of the graph under construction with its full (batched) shape.
#[derive(Clone, Debug)]
pub struct V {
    pub name: String,
    pub shape: Vec<usize>,
}

impl V {
    /// Channels of an NCHW value (1 for lower ranks).
    pub fn c(&self) -> usize {
        self.shape.get(1).copied().unwrap_or(1)
    }
    pub fn h(&self) -> usize {
        self.shape.get(2).copied().unwrap_or(1)
    }
    pub fn w(&self) -> usize {
        self.shape.get(3).copied().unwrap_or(1)
    }
    pub fn is_image(&self) -> bool {
        self.shape.len() == 4
    }
}

/// Activation spellings exporters produce.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    Relu,
    Relu6,
    Clip(f32, f32),
    HardSigmoid(f32, f32),
    HardSwish,
    /// `x * Clip(x + 3, 0, 6) / 6` (the "huawei" export).
    HardSwishDecomposed,
    /// `Clip(x + 3, 0, 6) / 6`.
    HardSigmoidDecomposed,
    Sigmoid,
    Silu,
    LeakyRelu(f32),
    Tanh,
}

/// Graph builder.
pub struct Builder {
    pub opset: i64,
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
    pub functions: Vec<FunctionProto>,
    pub value_infos: Vec<ValueInfoProto>,
    next: usize,
    rng: Rng,
    /// Weights as `raw_data` (little-endian bytes) instead of `float_data`.
    pub raw: bool,
    /// Small parameters (Slice bounds, Reshape targets, Clip bounds) as `Constant` nodes
    /// instead of initializers.
    pub const_nodes: bool,
    /// Relu activations become calls of a model-local function.
    pub relu_function: bool,
    /// Record a value_info for every node output.
    pub record_value_infos: bool,
}

impl Builder {
    pub fn new(opset: i64, seed: u64) -> Builder {
        Builder {
            opset,
            nodes: Vec::new(),
            inits: Vec::new(),
            functions: Vec::new(),
            value_infos: Vec::new(),
            next: 0,
            rng: Rng::new(seed),
            raw: false,
            const_nodes: false,
            relu_function: false,
            record_value_infos: false,
        }
    }

    pub fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        self.rng.f()
    }

    pub fn float_tensor(&self, name: &str, dims: &[usize], data: Vec<f32>) -> TensorProto {
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        if self.raw {
            f32_raw(name, &dims, &data)
        } else {
            f32_data(name, &dims, data)
        }
    }

    /// A random float initializer in `[lo, lo + span)`.
    pub fn weights(&mut self, dims: &[usize], lo: f32, span: f32) -> String {
        let n: usize = dims.iter().product();
        let data = (0..n).map(|_| lo + (self.f() + 1.0) * 0.5 * span).collect();
        let name = self.fresh("w");
        let t = self.float_tensor(&name, dims, data);
        self.inits.push(t);
        name
    }

    /// A constant parameter: an initializer or a `Constant` node.
    pub fn param(&mut self, t: TensorProto) -> String {
        let name = t.name.clone().unwrap_or_default();
        if self.const_nodes {
            let mut t = t;
            t.name = None;
            self.nodes.push(NodeProto {
                op_type: Some("Constant".into()),
                name: Some(format!("const_{name}")),
                output: vec![name.clone()],
                attribute: vec![a_tensor("value", t)],
                ..Default::default()
            });
        } else {
            self.inits.push(t);
        }
        name
    }

    pub fn ints(&mut self, v: &[i64]) -> String {
        let name = self.fresh("i");
        self.param(i64_tensor(&name, &[v.len() as i64], v))
    }

    pub fn scalar(&mut self, v: f32) -> String {
        let name = self.fresh("s");
        let t = self.float_tensor(&name, &[], vec![v]);
        self.param(t)
    }

    /// Appends a node with one f32 output of the given shape.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        shape: Vec<usize>,
    ) -> V {
        self.node_ty(op, inputs, attrs, shape, DataType::Float)
    }

    /// Appends a node with one output of element type `elem` and the given shape.
    pub fn node_ty(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        shape: Vec<usize>,
        elem: DataType,
    ) -> V {
        let out = self.fresh("v");
        let name = self.fresh(&format!("{op}_"));
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(name),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            attribute: attrs,
            ..Default::default()
        });
        if self.record_value_infos {
            let dims: Vec<Option<i64>> = shape.iter().map(|&d| Some(d as i64)).collect();
            self.value_infos
                .push(value_info(&out, elem as i32, Some(&dims)));
        }
        V { name: out, shape }
    }

    /// A dilated conv with random f32 weights (and bias).
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        x: &V,
        cout: usize,
        k: usize,
        stride: usize,
        group: usize,
        pad: [usize; 4],
        dilation: usize,
        bias: bool,
    ) -> V {
        let cin = x.c();
        let w = self.weights(&[cout, cin / group.max(1), k, k], -0.5, 1.0);
        let b = bias.then(|| self.weights(&[cout], -0.2, 0.4));
        self.conv_with(x, &w, b.as_deref(), cout, k, stride, group, pad, dilation)
    }

    /// A conv reading weights `w` (and bias `b`): values of the graph, e.g. the outputs of
    /// `DequantizeLinear` nodes.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_with(
        &mut self,
        x: &V,
        w: &str,
        b: Option<&str>,
        cout: usize,
        k: usize,
        stride: usize,
        group: usize,
        pad: [usize; 4],
        dilation: usize,
    ) -> V {
        let mut inputs = vec![x.name.as_str(), w];
        inputs.extend(b);
        let ext = dilation * (k - 1) + 1;
        let oh = (x.h() + pad[0] + pad[2]).saturating_sub(ext) / stride + 1;
        let ow = (x.w() + pad[1] + pad[3]).saturating_sub(ext) / stride + 1;
        let mut attrs = vec![
            a_ints("kernel_shape", &[k as i64, k as i64]),
            a_ints("strides", &[stride as i64, stride as i64]),
            a_ints(
                "pads",
                &[pad[0] as i64, pad[1] as i64, pad[2] as i64, pad[3] as i64],
            ),
        ];
        if group != 1 {
            attrs.push(a_int("group", group as i64));
        }
        if dilation != 1 {
            attrs.push(a_ints("dilations", &[dilation as i64, dilation as i64]));
        }
        self.node("Conv", &inputs, attrs, vec![x.shape[0], cout, oh, ow])
    }

    pub fn bn(&mut self, x: &V) -> V {
        let c = x.c();
        let scale = self.weights(&[c], 0.5, 1.0);
        let b = self.weights(&[c], -0.2, 0.4);
        let mean = self.weights(&[c], -0.2, 0.4);
        let var = self.weights(&[c], 0.5, 1.0);
        self.node(
            "BatchNormalization",
            &[&x.name, &scale, &b, &mean, &var],
            vec![a_float("epsilon", 1e-5)],
            x.shape.clone(),
        )
    }

    pub fn unary(&mut self, op: &str, x: &V, attrs: Vec<AttributeProto>) -> V {
        self.node(op, &[&x.name], attrs, x.shape.clone())
    }

    pub fn binary(&mut self, op: &str, a: &V, b: &str) -> V {
        self.node(op, &[&a.name, b], vec![], a.shape.clone())
    }

    pub fn clip(&mut self, x: &V, lo: f32, hi: f32) -> V {
        let lo = self.scalar(lo);
        let hi = self.scalar(hi);
        self.node("Clip", &[&x.name, &lo, &hi], vec![], x.shape.clone())
    }

    pub fn relu(&mut self, x: &V) -> V {
        if !self.relu_function {
            return self.unary("Relu", x, vec![]);
        }
        if self.functions.is_empty() {
            // fz.ActFn(X) = LeakyRelu(X, alpha = @alpha) with alpha 0 by default: a Relu.
            self.functions.push(FunctionProto {
                name: Some("ActFn".into()),
                domain: Some("fz".into()),
                input: vec!["X".into()],
                output: vec!["Y".into()],
                attribute_proto: vec![a_float("alpha", 0.0)],
                node: vec![NodeProto {
                    op_type: Some("LeakyRelu".into()),
                    input: vec!["X".into()],
                    output: vec!["Y".into()],
                    attribute: vec![AttributeProto {
                        name: Some("alpha".into()),
                        ref_attr_name: Some("alpha".into()),
                        r#type: Some(AttributeType::Float as i32),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                opset_import: vec![opset("", self.opset)],
                ..Default::default()
            });
        }
        let out = self.fresh("v");
        let name = self.fresh("call_");
        self.nodes.push(NodeProto {
            op_type: Some("ActFn".into()),
            domain: Some("fz".into()),
            name: Some(name),
            input: vec![x.name.clone()],
            output: vec![out.clone()],
            ..Default::default()
        });
        V {
            name: out,
            shape: x.shape.clone(),
        }
    }

    pub fn act(&mut self, x: &V, act: Act) -> V {
        match act {
            Act::None => x.clone(),
            Act::Relu => self.relu(x),
            Act::Relu6 => self.clip(x, 0.0, 6.0),
            Act::Clip(lo, hi) => self.clip(x, lo, hi),
            Act::HardSigmoid(a, b) => self.unary(
                "HardSigmoid",
                x,
                vec![a_float("alpha", a), a_float("beta", b)],
            ),
            Act::HardSwish if self.opset >= 14 => self.unary("HardSwish", x, vec![]),
            Act::HardSwish | Act::HardSwishDecomposed => {
                let g = self.act(x, Act::HardSigmoidDecomposed);
                self.binary("Mul", x, &g.name)
            }
            Act::HardSigmoidDecomposed => {
                let three = self.scalar(3.0);
                let s = self.binary("Add", x, &three);
                let c = self.clip(&s, 0.0, 6.0);
                let six = self.scalar(6.0);
                self.binary("Div", &c, &six)
            }
            Act::Sigmoid => self.unary("Sigmoid", x, vec![]),
            Act::Silu => {
                let s = self.unary("Sigmoid", x, vec![]);
                self.binary("Mul", x, &s.name)
            }
            Act::LeakyRelu(a) => self.unary("LeakyRelu", x, vec![a_float("alpha", a)]),
            Act::Tanh => self.unary("Tanh", x, vec![]),
        }
    }

    pub fn concat(&mut self, parts: &[&V], axis: usize) -> V {
        let mut shape = parts[0].shape.clone();
        shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        self.node("Concat", &names, vec![a_int("axis", axis as i64)], shape)
    }

    /// `x[:, start..end]` along `axis`.
    pub fn slice(&mut self, x: &V, axis: usize, start: usize, end: usize) -> V {
        let starts = self.ints(&[start as i64]);
        let ends = self.ints(&[end as i64]);
        let axes = self.ints(&[axis as i64]);
        let mut shape = x.shape.clone();
        shape[axis] = end.min(shape[axis]).saturating_sub(start);
        self.node("Slice", &[&x.name, &starts, &ends, &axes], vec![], shape)
    }

    /// Mean over H and W keeping dims (ReduceMean, axes by attribute or input per opset).
    pub fn reduce_mean_hw(&mut self, x: &V) -> V {
        let shape = vec![x.shape[0], x.c(), 1, 1];
        if self.opset >= 18 {
            let axes = self.ints(&[2, 3]);
            self.node(
                "ReduceMean",
                &[&x.name, &axes],
                vec![a_int("keepdims", 1)],
                shape,
            )
        } else {
            self.node(
                "ReduceMean",
                &[&x.name],
                vec![a_ints("axes", &[2, 3]), a_int("keepdims", 1)],
                shape,
            )
        }
    }

    pub fn gap(&mut self, x: &V) -> V {
        self.node(
            "GlobalAveragePool",
            &[&x.name],
            vec![],
            vec![x.shape[0], x.c(), 1, 1],
        )
    }

    /// The exporters' flatten-to-[N, C*H*W].
    pub fn flatten(&mut self, x: &V, reshape: bool) -> V {
        let n = x.shape[0];
        let rest: usize = x.shape[1..].iter().product();
        if reshape {
            let target = self.ints(&[n as i64, -1]);
            self.node("Reshape", &[&x.name, &target], vec![], vec![n, rest])
        } else {
            self.node("Flatten", &[&x.name], vec![a_int("axis", 1)], vec![n, rest])
        }
    }

    /// `Shape -> Gather(0) -> Unsqueeze -> Concat([n, -1]) -> Reshape`: the TorchScript
    /// spelling of a flatten, which import must constant-fold.
    pub fn flatten_via_shape(&mut self, x: &V) -> V {
        let n = x.shape[0];
        let rest: usize = x.shape[1..].iter().product();
        let shape = self.node("Shape", &[&x.name], vec![], vec![x.shape.len()]);
        let idx = self.fresh("i");
        let idx = self.param(i64_tensor(&idx, &[], &[0]));
        let dim0 = self.node(
            "Gather",
            &[&shape.name, &idx],
            vec![a_int("axis", 0)],
            vec![],
        );
        let un = if self.opset >= 13 {
            let axes = self.ints(&[0]);
            self.node("Unsqueeze", &[&dim0.name, &axes], vec![], vec![1])
        } else {
            self.node(
                "Unsqueeze",
                &[&dim0.name],
                vec![a_ints("axes", &[0])],
                vec![1],
            )
        };
        let minus1 = self.ints(&[-1]);
        let target = self.node(
            "Concat",
            &[&un.name, &minus1],
            vec![a_int("axis", 0)],
            vec![2],
        );
        self.node("Reshape", &[&x.name, &target.name], vec![], vec![n, rest])
    }

    /// Fully connected `[N, K] -> [N, out]`: Gemm (transB) or MatMul + Add.
    pub fn fc(&mut self, x: &V, out: usize, gemm: bool) -> V {
        let k = x.shape[1];
        let n = x.shape[0];
        if gemm {
            let w = self.weights(&[out, k], -0.5, 1.0);
            let b = self.weights(&[out], -0.2, 0.4);
            self.node(
                "Gemm",
                &[&x.name, &w, &b],
                vec![a_int("transB", 1)],
                vec![n, out],
            )
        } else {
            let w = self.weights(&[k, out], -0.5, 1.0);
            let m = self.node("MatMul", &[&x.name, &w], vec![], vec![n, out]);
            let b = self.weights(&[out], -0.2, 0.4);
            self.binary("Add", &m, &b)
        }
    }

    /// The finished model with `input` as the graph input and `output` as the graph output.
    pub fn finish(
        self,
        input: &V,
        output: &V,
        dynamic_batch: bool,
        declare_output: bool,
    ) -> ModelProto {
        self.finish_multi(input, &[output], dynamic_batch, declare_output)
    }

    /// The finished model with `input` as the graph input and `outputs` as the graph outputs,
    /// in this order (any values of the graph, the input included).
    pub fn finish_multi(
        self,
        input: &V,
        outputs: &[&V],
        dynamic_batch: bool,
        declare_output: bool,
    ) -> ModelProto {
        let dims = |v: &V| -> Vec<Option<i64>> {
            v.shape
                .iter()
                .enumerate()
                .map(|(i, &d)| (!(i == 0 && dynamic_batch)).then_some(d as i64))
                .collect()
        };
        let f = DataType::Float as i32;
        let mut imports = vec![opset("", self.opset)];
        if !self.functions.is_empty() {
            imports.push(opset("fz", 1));
        }
        ModelProto {
            ir_version: Some(if self.opset >= 21 { 10 } else { 8 }),
            opset_import: imports,
            producer_name: Some("ghostc-fuzz".into()),
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: self.nodes,
                initializer: self.inits,
                input: vec![value_info(&input.name, f, Some(&dims(input)))],
                output: outputs
                    .iter()
                    .map(|o| value_info(&o.name, f, declare_output.then_some(&dims(o)[..])))
                    .collect(),
                value_info: self.value_infos,
                ..Default::default()
            }),
            functions: self.functions,
            ..Default::default()
        }
    }
}
