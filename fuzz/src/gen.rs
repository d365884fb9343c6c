//! An `arbitrary` description of a small GhostNet-family model and its translation to a valid
//! `ModelProto`: stem conv, a sequence of blocks (conv+BN+activation, Ghost modules, Ghost
//! bottlenecks with squeeze-and-excitation and residuals, GhostNetV3 parallel branches,
//! pooling, resize, QDQ-quantized convs (`gen/quant.rs`)), and a classifier head, in the
//! spellings the TorchScript, dynamo and onnxruntime-quantization exporters use, with one to
//! three graph outputs ([`Outputs`]). Every size is small so one model imports and compiles
//! in milliseconds.

use arbitrary::Arbitrary;
use ghostc::onnx::proto::ModelProto;

use crate::onnx_build::{Act, Builder, V};

mod quant;
pub use quant::{BadScale, Hostile, QConvDesc};

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ActDesc {
    None,
    Relu,
    Relu6,
    Clip(i8, i8),
    HardSigmoid,
    HardSigmoidCustom(u8, i8),
    HardSwish,
    HardSwishDecomposed,
    HardSigmoidDecomposed,
    Sigmoid,
    Silu,
    LeakyRelu(u8),
    Tanh,
}

impl ActDesc {
    pub fn act(self) -> Act {
        match self {
            ActDesc::None => Act::None,
            ActDesc::Relu => Act::Relu,
            ActDesc::Relu6 => Act::Relu6,
            ActDesc::Clip(a, b) => {
                let (a, b) = (a as f32 / 16.0, b as f32 / 16.0);
                Act::Clip(a.min(b), a.max(b))
            }
            ActDesc::HardSigmoid => Act::HardSigmoid(0.2, 0.5),
            ActDesc::HardSigmoidCustom(a, b) => {
                Act::HardSigmoid(a as f32 / 255.0 + 0.01, b as f32 / 128.0)
            }
            ActDesc::HardSwish => Act::HardSwish,
            ActDesc::HardSwishDecomposed => Act::HardSwishDecomposed,
            ActDesc::HardSigmoidDecomposed => Act::HardSigmoidDecomposed,
            ActDesc::Sigmoid => Act::Sigmoid,
            ActDesc::Silu => Act::Silu,
            ActDesc::LeakyRelu(a) => Act::LeakyRelu(a as f32 / 255.0),
            ActDesc::Tanh => Act::Tanh,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Gate {
    HardSigmoid,
    HardSigmoidDecomposed,
    Sigmoid,
    Relu6Div6,
}

/// The activation between an SE block's two FCs.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SeInner {
    /// GhostNet, MobileNetV3.
    Relu,
    /// EfficientNet (exported as `Mul(x, Sigmoid(x))`).
    Silu,
    HardSwish,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Block {
    /// Conv (+BN or bias) + activation. `kind` picks 1x1, kxk dense, depthwise or grouped.
    ConvBnAct {
        cout: u8,
        k: u8,
        stride2: bool,
        kind: u8,
        bn: bool,
        act: ActDesc,
        pad: u8,
        dilation2: bool,
    },
    /// timm Ghost module: primary 1x1 (+BN+ReLU), cheap depthwise (+BN+ReLU), Concat, Slice.
    Ghost {
        out: u8,
        relu: bool,
        dw_k: u8,
        always_slice: bool,
        bn: bool,
    },
    /// Ghost bottleneck: ghost -> [dw stride 2] -> [SE] -> ghost (+ shortcut).
    Bottleneck {
        mid: u8,
        out: u8,
        stride2: bool,
        se: Option<(u8, Gate, bool)>,
        dw_k: u8,
    },
    /// Squeeze-and-excitation on the current value: pool, reduce, inner activation, expand,
    /// gate, Mul.
    Se {
        reduce: u8,
        inner: SeInner,
        gate: Gate,
        gap: bool,
    },
    /// `x + f(x)` with a conv+BN of the same shape.
    Residual {
        k: u8,
        act: ActDesc,
    },
    /// GhostNetV3 training form: sum of several conv+BN branches (+ a BN-only identity).
    Branches {
        n: u8,
        k: u8,
        depthwise: bool,
        identity: bool,
        act: ActDesc,
    },
    Act(ActDesc),
    Pool {
        max: bool,
        k: u8,
        stride2: bool,
        pad: bool,
    },
    /// Nearest 2x upsample then a 3x3 stride-2 conv back down (V2-style attention path).
    Resize {
        linear: bool,
        sizes: bool,
    },
    /// A no-op the importer/passes must see through.
    Noop(u8),
    /// A QDQ-quantized conv (`gen/quant.rs`); consecutive ones share their QDQ pair.
    QConv(QConvDesc),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Head {
    /// GAP, conv_head 1x1 + act, Flatten, Gemm.
    Timm {
        hidden: u8,
        act: ActDesc,
        classes: u8,
    },
    /// ReduceMean (keepdims), Reshape via Shape/Gather/Concat, MatMul + Add.
    Dynamo { classes: u8, gemm: bool },
    /// GAP, Reshape, Gemm, Softmax.
    Softmax { classes: u8 },
    /// No head: the image itself is the output.
    None,
}

/// The graph outputs besides the head's (several-output models).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Outputs {
    /// The head's output only.
    One,
    /// Also the value after block `.0` (the stem's for an index past the blocks): an
    /// intermediate feature map that later nodes read too.
    Feature(u8),
    /// Also two intermediate values (stem and block `.0`), three outputs in all.
    Features(u8),
    /// Also the graph input itself, listed first or last.
    Input(bool),
    /// The head's value twice, through two `Identity` nodes.
    IdentityPair,
}

/// The `codegen` target's input: a model and the fusion switches.
#[derive(Arbitrary, Debug, Clone)]
pub struct CodegenInput {
    pub model: ModelDesc,
    pub fuse: u8,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ModelDesc {
    pub opset: u8,
    pub seed: u16,
    pub cin: u8,
    pub h: u8,
    pub w: u8,
    pub batch2: bool,
    pub dynamic_batch: bool,
    pub stem_c: u8,
    pub stem_k: u8,
    pub stem_stride2: bool,
    pub stem_act: ActDesc,
    pub blocks: Vec<Block>,
    pub head: Head,
    pub raw: bool,
    pub const_nodes: bool,
    pub relu_function: bool,
    pub value_infos: bool,
    pub declare_output: bool,
    /// Reverse the node list (legal: nodes may be in any acyclic order).
    pub reverse_nodes: bool,
    pub outputs: Outputs,
}

fn ch(c: u8) -> usize {
    (c % 24) as usize + 1
}

fn odd_k(k: u8) -> usize {
    [1, 3, 5, 3][(k % 4) as usize]
}

fn gate_act(g: Gate) -> Act {
    match g {
        Gate::HardSigmoid => Act::HardSigmoid(1.0 / 6.0, 0.5),
        Gate::HardSigmoidDecomposed => Act::HardSigmoidDecomposed,
        Gate::Sigmoid => Act::Sigmoid,
        Gate::Relu6Div6 => Act::Clip(0.0, 1.0),
    }
}

/// Maximum number of blocks taken from a description.
pub const MAX_BLOCKS: usize = 8;

struct Gen<'a> {
    b: Builder,
    desc: &'a ModelDesc,
    /// The quantized tensor the last quantized conv wrote (the next one reads it directly).
    qtail: Option<quant::QAct>,
}

impl Gen<'_> {
    fn conv_bn_act(
        &mut self,
        x: &V,
        cout: usize,
        k: usize,
        stride: usize,
        group: usize,
        bn: bool,
        act: Act,
    ) -> V {
        let p = k / 2;
        let y = self.b.conv(x, cout, k, stride, group, [p; 4], 1, !bn);
        let y = if bn { self.b.bn(&y) } else { y };
        self.b.act(&y, act)
    }

    fn ghost(
        &mut self,
        x: &V,
        out: usize,
        relu: bool,
        dw_k: usize,
        always_slice: bool,
        bn: bool,
    ) -> V {
        let init = out.div_ceil(2);
        let act = if relu { Act::Relu } else { Act::None };
        let x1 = self.conv_bn_act(x, init, 1, 1, 1, bn, act);
        let x2 = self.conv_bn_act(&x1, init, dw_k, 1, init, bn, act);
        let cat = self.b.concat(&[&x1, &x2], 1);
        if always_slice || 2 * init != out {
            self.b.slice(&cat, 1, 0, out)
        } else {
            cat
        }
    }

    fn se(&mut self, x: &V, reduce: u8, inner: SeInner, gate: Gate, gap: bool) -> V {
        let c = x.c();
        let r = ((c / 4).max(1) + (reduce % 4) as usize).min(32);
        let pooled = if gap {
            self.b.gap(x)
        } else {
            self.b.reduce_mean_hw(x)
        };
        let red = self.b.conv(&pooled, r, 1, 1, 1, [0; 4], 1, true);
        let inner = match inner {
            SeInner::Relu => Act::Relu,
            SeInner::Silu => Act::Silu,
            SeInner::HardSwish => Act::HardSwish,
        };
        let red = self.b.act(&red, inner);
        let exp = self.b.conv(&red, c, 1, 1, 1, [0; 4], 1, true);
        let g = self.b.act(&exp, gate_act(gate));
        self.b.binary("Mul", x, &g.name)
    }

    fn block(&mut self, x: V, blk: Block) -> V {
        if !x.is_image() {
            return x;
        }
        match blk {
            Block::ConvBnAct {
                cout,
                k,
                stride2,
                kind,
                bn,
                act,
                pad,
                dilation2,
            } => {
                let k = odd_k(k);
                let stride = if stride2 && x.h() >= 2 && x.w() >= 2 {
                    2
                } else {
                    1
                };
                let cin = x.c();
                let (cout, group) = match kind % 4 {
                    0 | 1 => (ch(cout), 1),
                    2 => (cin, cin),
                    _ => {
                        let g = if cin.is_multiple_of(2) { 2 } else { 1 };
                        (g * ch(cout / 2), g)
                    }
                };
                let p = match pad % 3 {
                    0 => [k / 2; 4],
                    1 => [0, 0, k / 2, k / 2],
                    _ => [k / 2, 0, k / 2, 0],
                };
                let dil = if dilation2 && k == 3 { 2 } else { 1 };
                let ext = dil * (k - 1) + 1;
                if x.h() + p[0] + p[2] < ext || x.w() + p[1] + p[3] < ext {
                    return x;
                }
                let y = self.b.conv(&x, cout, k, stride, group, p, dil, !bn);
                let y = if bn { self.b.bn(&y) } else { y };
                self.b.act(&y, act.act())
            }
            Block::Ghost {
                out,
                relu,
                dw_k,
                always_slice,
                bn,
            } => {
                let dw_k = if dw_k % 2 == 0 { 3 } else { 5 };
                self.ghost(&x, ch(out), relu, dw_k, always_slice, bn)
            }
            Block::Bottleneck {
                mid,
                out,
                stride2,
                se,
                dw_k,
            } => {
                let dw_k = if dw_k % 2 == 0 { 3 } else { 5 };
                let (mid, out) = (ch(mid), ch(out));
                let stride = if stride2 && x.h() >= 2 && x.w() >= 2 {
                    2
                } else {
                    1
                };
                let mut y = self.ghost(&x, mid, true, 3, true, true);
                if stride == 2 {
                    y = self.conv_bn_act(&y, mid, dw_k, 2, mid, true, Act::None);
                }
                if let Some((reduce, gate, gap)) = se {
                    y = self.se(&y, reduce, SeInner::Relu, gate, gap);
                }
                let y = self.ghost(&y, out, false, 3, true, true);
                let short = if stride == 1 && x.c() == out {
                    x.clone()
                } else {
                    let s = self.conv_bn_act(&x, x.c(), dw_k, stride, x.c(), true, Act::None);
                    self.conv_bn_act(&s, out, 1, 1, 1, true, Act::None)
                };
                if short.shape != y.shape {
                    return y;
                }
                self.b.binary("Add", &y, &short.name)
            }
            Block::Se {
                reduce,
                inner,
                gate,
                gap,
            } => self.se(&x, reduce, inner, gate, gap),
            Block::Residual { k, act } => {
                let k = odd_k(k);
                let y = self.conv_bn_act(&x, x.c(), k, 1, 1, true, act.act());
                self.b.binary("Add", &y, &x.name)
            }
            Block::Branches {
                n,
                k,
                depthwise,
                identity,
                act,
            } => {
                let k = if k % 2 == 0 { 3 } else { 5 };
                let c = x.c();
                let group = if depthwise { c } else { 1 };
                let mut sum = self.conv_bn_act(&x, c, k, 1, group, true, Act::None);
                for i in 0..(n % 3) {
                    let kk = if i == 0 { 1 } else { k };
                    let br = self.conv_bn_act(&x, c, kk, 1, group, true, Act::None);
                    sum = self.b.binary("Add", &sum, &br.name);
                }
                if identity {
                    let id = self.b.bn(&x);
                    sum = self.b.binary("Add", &sum, &id.name);
                }
                self.b.act(&sum, act.act())
            }
            Block::Act(a) => self.b.act(&x, a.act()),
            Block::Pool {
                max,
                k,
                stride2,
                pad,
            } => {
                let k = [1usize, 2, 3][(k % 3) as usize];
                let s = if stride2 { 2 } else { 1 };
                let p = if pad { k / 2 } else { 0 };
                if x.h() + 2 * p < k || x.w() + 2 * p < k {
                    return x;
                }
                let oh = (x.h() + 2 * p - k) / s + 1;
                let ow = (x.w() + 2 * p - k) / s + 1;
                use crate::onnx_build::{a_int, a_ints};
                let mut attrs = vec![
                    a_ints("kernel_shape", &[k as i64, k as i64]),
                    a_ints("strides", &[s as i64, s as i64]),
                    a_ints("pads", &[p as i64; 4]),
                ];
                if !max {
                    attrs.push(a_int("count_include_pad", 0));
                }
                let op = if max { "MaxPool" } else { "AveragePool" };
                self.b
                    .node(op, &[&x.name], attrs, vec![x.shape[0], x.c(), oh, ow])
            }
            Block::Resize { linear, sizes } => {
                use crate::onnx_build::a_str;
                let (n, c, h, w) = (x.shape[0], x.c(), x.h(), x.w());
                let roi = self.b.fresh("roi");
                let roi = self.b.param(ghostc::onnx::proto::TensorProto {
                    name: Some(roi),
                    dims: vec![0],
                    data_type: Some(ghostc::onnx::proto::tensor_proto::DataType::Float as i32),
                    ..Default::default()
                });
                let mut attrs = vec![a_str("mode", if linear { "linear" } else { "nearest" })];
                if linear {
                    attrs.push(a_str("coordinate_transformation_mode", "half_pixel"));
                }
                let up = if sizes {
                    let scales = "";
                    let sz = self
                        .b
                        .ints(&[n as i64, c as i64, 2 * h as i64, 2 * w as i64]);
                    self.b.node(
                        "Resize",
                        &[&x.name, &roi, scales, &sz],
                        attrs,
                        vec![n, c, 2 * h, 2 * w],
                    )
                } else {
                    let sc = self.b.fresh("sc");
                    let t = self.b.float_tensor(&sc, &[4], vec![1.0, 1.0, 2.0, 2.0]);
                    let sc = self.b.param(t);
                    self.b.node(
                        "Resize",
                        &[&x.name, &roi, &sc],
                        attrs,
                        vec![n, c, 2 * h, 2 * w],
                    )
                };
                self.conv_bn_act(&up, c, 3, 2, 1, true, Act::Relu)
            }
            Block::QConv(d) => self.qconv(&x, d),
            Block::Noop(kind) => match kind % 4 {
                0 => self.b.unary("Identity", &x, vec![]),
                1 => {
                    let full = x.c();
                    self.b.slice(&x, 1, 0, full)
                }
                2 => {
                    let shape: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
                    let t = self.b.ints(&shape);
                    self.b
                        .node("Reshape", &[&x.name, &t], vec![], x.shape.clone())
                }
                _ => self.b.unary("Dropout", &x, vec![]),
            },
        }
    }

    fn head(&mut self, x: V) -> V {
        if !x.is_image() {
            return x;
        }
        match self.desc.head {
            Head::Timm {
                hidden,
                act,
                classes,
            } => {
                let p = self.b.gap(&x);
                let hdn = self.b.conv(&p, ch(hidden) + 8, 1, 1, 1, [0; 4], 1, true);
                let hdn = self.b.act(&hdn, act.act());
                let f = self.b.flatten(&hdn, false);
                self.b.fc(&f, ch(classes), true)
            }
            Head::Dynamo { classes, gemm } => {
                let p = self.b.reduce_mean_hw(&x);
                let f = self.b.flatten_via_shape(&p);
                self.b.fc(&f, ch(classes), gemm)
            }
            Head::Softmax { classes } => {
                use crate::onnx_build::a_int;
                let p = self.b.gap(&x);
                let f = self.b.flatten(&p, true);
                let y = self.b.fc(&f, ch(classes), true);
                self.b.unary("Softmax", &y, vec![a_int("axis", -1)])
            }
            Head::None => x,
        }
    }
}

/// The model a description stands for, and whether fusions should run (always, here).
pub fn build(desc: &ModelDesc) -> ModelProto {
    let blocks = &desc.blocks[..desc.blocks.len().min(MAX_BLOCKS)];
    let quantized = blocks.iter().any(|b| matches!(b, Block::QConv(_)));
    // QDQ graphs as onnxruntime writes them: per-axis parameters need opset 13.
    let opset = if quantized {
        13 + (desc.opset % 9) as i64 // 13..=21
    } else {
        11 + (desc.opset % 11) as i64 // 11..=21
    };
    let mut b = Builder::new(opset, desc.seed as u64);
    b.raw = desc.raw;
    b.const_nodes = desc.const_nodes;
    b.relu_function = desc.relu_function;
    b.record_value_infos = desc.value_infos;
    let batch = if desc.batch2 && !desc.dynamic_batch {
        2
    } else {
        1
    };
    let input = V {
        name: "input".into(),
        shape: vec![
            batch,
            (desc.cin % 4) as usize + 1,
            (desc.h % 14) as usize + 1,
            (desc.w % 14) as usize + 1,
        ],
    };
    let mut g = Gen {
        b,
        desc,
        qtail: None,
    };
    let k = [3usize, 1, 3, 5][(desc.stem_k % 4) as usize];
    let stride = if desc.stem_stride2 && input.h() >= 2 && input.w() >= 2 {
        2
    } else {
        1
    };
    let mut x = if input.h() + 2 * (k / 2) >= k && input.w() + 2 * (k / 2) >= k {
        g.conv_bn_act(
            &input,
            ch(desc.stem_c),
            k,
            stride,
            1,
            true,
            desc.stem_act.act(),
        )
    } else {
        input.clone()
    };
    // The value after the stem and after each block (candidates for extra outputs).
    let mut seen = vec![x.clone()];
    for blk in blocks {
        x = g.block(x, *blk);
        seen.push(x.clone());
    }
    let mut out = g.head(x);
    let Gen { mut b, .. } = g;
    if out.name == input.name {
        // The graph must compute something: a Relu keeps input and output distinct.
        out = b.unary("Relu", &out, vec![]);
    }
    let at = |i: u8| seen[(i as usize) % seen.len()].clone();
    let mut outs = match desc.outputs {
        Outputs::One => vec![out],
        Outputs::Feature(i) => vec![at(i), out],
        Outputs::Features(i) => vec![seen[0].clone(), at(i), out],
        Outputs::Input(first) if first => vec![input.clone(), out],
        Outputs::Input(_) => vec![out, input.clone()],
        Outputs::IdentityPair => {
            let a = b.unary("Identity", &out, vec![]);
            let c = b.unary("Identity", &out, vec![]);
            vec![a, c]
        }
    };
    // One value listed twice is not a distinct output: list it again through an Identity.
    for i in 1..outs.len() {
        if outs[..i].iter().any(|o| o.name == outs[i].name) {
            outs[i] = b.unary("Identity", &outs[i], vec![]);
        }
    }
    if desc.reverse_nodes {
        b.nodes.reverse();
    }
    let refs: Vec<&V> = outs.iter().collect();
    b.finish_multi(&input, &refs, desc.dynamic_batch, desc.declare_output)
}
