//! Text and Graphviz DOT renderings of the graph.
//!
//! The text form is one line per node in topological order, stable across runs, so it serves
//! snapshot tests: `%12 = conv[k3x3 s2 p1,1,1,1 g1](%0, $3, $4) -> f32[1x16x112x112]  # Conv_0`.
//! `%N` is a node-produced or input value, `$N` a constant. ONNX names only ever appear after
//! `#`, escaped with `{:?}` so a hostile name cannot forge lines.

use std::fmt::{self, Write};

use super::{Activation, Graph, Op, ValueDef, ValueId};

fn act_suffix(act: &Option<Activation>) -> String {
    act.map(|a| format!("+{}", Op::Activation(a).name()))
        .unwrap_or_default()
}

/// The op with its attributes, e.g. `conv[k3x3 s1 p0,0,0,0 g1]`.
pub fn op_label(op: &Op) -> String {
    let conv = |c: &super::Conv| {
        format!(
            "k{}x{} s{} p{},{},{},{} g{}{}",
            c.kernel[0],
            c.kernel[1],
            c.strides[0],
            c.pads[0],
            c.pads[1],
            c.pads[2],
            c.pads[3],
            c.group,
            if c.dilations != [1, 1] {
                format!(" d{}", c.dilations[0])
            } else {
                String::new()
            }
        )
    };
    match op {
        Op::Conv(c) => format!("conv[{}]", conv(c)),
        Op::ConvTranspose(t) => format!(
            "conv_transpose[{}{}{}]",
            conv(&t.conv),
            if t.output_padding != [0, 0] {
                format!(" op{},{}", t.output_padding[0], t.output_padding[1])
            } else {
                String::new()
            },
            act_suffix(&t.act)
        ),
        Op::FusedConv(f) => {
            format!(
                "fused_conv[{}{}{}]",
                conv(&f.conv),
                act_suffix(&f.act),
                if f.residual { "+res" } else { "" }
            )
        }
        Op::Ghost(g) => format!(
            "ghost[{}{} | cheap {}{} | c{}{}]",
            conv(&g.primary),
            act_suffix(&g.primary_act),
            conv(&g.cheap),
            act_suffix(&g.cheap_act),
            g.out_channels,
            if g.residual { " +res" } else { "" }
        ),
        Op::SqueezeExcite(s) => {
            format!(
                "squeeze_excite[{} {}]",
                Op::Activation(s.act).name(),
                Op::Activation(s.gate).name()
            )
        }
        Op::Linear { act } => format!("linear[{}]", act_suffix(act)),
        Op::Activation(Activation::Clamp { lo: min, hi: max }) => format!("clip[{min},{max}]"),
        Op::Activation(Activation::HardSigmoid { alpha, beta }) => {
            format!("hard_sigmoid[{alpha},{beta}]")
        }
        Op::Activation(Activation::LeakyRelu { alpha }) => format!("leaky_relu[{alpha}]"),
        Op::Concat { axis } | Op::Softmax { axis } | Op::Gather { axis } => {
            format!("{}[axis={axis}]", op.name())
        }
        Op::Split { axis, sizes } => format!("split[axis={axis} {sizes:?}]"),
        Op::Slice(s) => format!(
            "slice[axes={:?} starts={:?} ends={:?} steps={:?}]",
            s.axes, s.starts, s.ends, s.steps
        ),
        Op::Pool(p) => format!(
            "{}[k{}x{} s{} p{},{},{},{}]",
            op.name(),
            p.kernel[0],
            p.kernel[1],
            p.strides[0],
            p.pads[0],
            p.pads[1],
            p.pads[2],
            p.pads[3]
        ),
        Op::Reduce(r) => format!("{}[axes={:?} keepdims={}]", op.name(), r.axes, r.keepdims),
        Op::Gemm(g) => format!(
            "gemm[alpha={} beta={} ta={} tb={}]",
            g.alpha, g.beta, g.trans_a as u8, g.trans_b as u8
        ),
        Op::Transpose { perm } => format!("transpose[{perm:?}]"),
        Op::ChannelShuffle { groups } => format!("channel_shuffle[groups={groups}]"),
        Op::DepthToSpace { blocksize, crd } => format!(
            "depth_to_space[blocksize={blocksize} {}]",
            if *crd { "CRD" } else { "DCR" }
        ),
        Op::Dfl { bins } => format!("dfl[bins={bins}]"),
        Op::Cast { to } => format!("cast[{to}]"),
        Op::Resize(r) => format!("resize[{:?} {:?} {:?}]", r.mode, r.coord, r.scales),
        Op::Pad(p) => format!("pad[{:?} {:?} {}]", p.mode, p.pads, p.value),
        Op::Quantize(q) | Op::Dequantize(q) => format!("{}[{}]", op.name(), quant(q)),
        Op::QConv(c) => format!(
            "qconv[{} x {} w {} y {}{}]",
            conv(&c.conv),
            quant(&c.x),
            quant(&c.w),
            quant(&c.y),
            act_suffix(&c.act)
        ),
        Op::QMatMul(m) => format!(
            "qmatmul[a {} b {} y {}{}]",
            quant(&m.a),
            quant(&m.b),
            quant(&m.y),
            if m.trans_b { " tb" } else { "" }
        ),
        Op::QBinary(b) => format!(
            "{}[a {} b {} y {}{}]",
            op.name(),
            quant(&b.a),
            quant(&b.b),
            quant(&b.y),
            match b.form {
                crate::ir::QBinaryForm::Ratio => "",
                crate::ir::QBinaryForm::Dequantized => " dequantized",
            }
        ),
        Op::QConcat { axis, x, y } => format!(
            "qconcat[axis={axis} x {} y {}]",
            x.iter().map(quant).collect::<Vec<_>>().join(", "),
            quant(y)
        ),
        Op::QGlobalAveragePool { x, y } => {
            format!("qglobal_avg_pool[x {} y {}]", quant(x), quant(y))
        }
        Op::QActivation { act, x, y } => format!(
            "qactivation[{} x {} y {}]",
            Op::Activation(*act).name(),
            quant(x),
            quant(y)
        ),
        _ => op.name().to_string(),
    }
}

/// `u8 s0.0125 z128` per tensor, `i8 axis0 x16` per channel (the values would flood a line).
fn quant(q: &super::QuantParams) -> String {
    match q.axis {
        None => format!("{} s{} z{}", q.dtype, q.scale[0], q.zero_point[0]),
        Some(a) => format!("{} axis{} x{}", q.dtype, a, q.scale.len()),
    }
}

fn value_ref(g: &Graph, v: ValueId) -> String {
    match g.value(v).def {
        ValueDef::Const(_) => format!("${}", v.0),
        _ => format!("%{}", v.0),
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &v in &self.inputs {
            writeln!(
                f,
                "input %{} : {}  # {:?}",
                v.0,
                self.value(v).ty,
                self.value(v).name
            )?;
        }
        let order = self
            .topo_order()
            .unwrap_or_else(|_| self.nodes.node_indices().collect());
        for n in order {
            let node = self.node(n);
            let outs: Vec<String> = node.outputs.iter().map(|&v| value_ref(self, v)).collect();
            let ins: Vec<String> = node.inputs.iter().map(|&v| value_ref(self, v)).collect();
            let tys: Vec<String> = node
                .outputs
                .iter()
                .map(|&v| self.value(v).ty.to_string())
                .collect();
            writeln!(
                f,
                "{} = {}({}) -> {}  # {:?}",
                outs.join(", "),
                op_label(&node.op),
                ins.join(", "),
                tys.join(", "),
                node.name
            )?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|&v| value_ref(self, v)).collect();
        writeln!(f, "output {}", outs.join(", "))
    }
}

/// Escapes a string for a double-quoted DOT label.
fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push_str("\\n"),
            c if c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                let _ = write!(out, "\\\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Graphviz DOT of the data flow: one box per node (fused ops filled, so the fusion shows),
/// edges labelled with the tensor shape. Constants are folded into their consumer's label.
pub fn to_dot(g: &Graph) -> String {
    let mut s = String::from("digraph ghostc {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n");
    for &v in &g.inputs {
        let _ = writeln!(
            s,
            "  v{} [shape=ellipse, label=\"{}\\n{}\"];",
            v.0,
            dot_escape(&g.value(v).name),
            g.value(v).ty
        );
    }
    let order = g
        .topo_order()
        .unwrap_or_else(|_| g.nodes.node_indices().collect());
    for n in &order {
        let node = g.node(*n);
        let fused = matches!(
            node.op,
            Op::FusedConv(_) | Op::Ghost(_) | Op::SqueezeExcite(_) | Op::Linear { .. }
        );
        let style = match node.op {
            Op::Ghost(_) => ", style=filled, fillcolor=\"#b3de69\"",
            Op::SqueezeExcite(_) => ", style=filled, fillcolor=\"#fdb462\"",
            _ if fused => ", style=filled, fillcolor=\"#80b1d3\"",
            _ => "",
        };
        let _ = writeln!(
            s,
            "  n{} [label=\"{}\\n{}\"{}];",
            n.index(),
            dot_escape(&op_label(&node.op)),
            dot_escape(&node.name),
            style
        );
        for &v in &node.inputs {
            let src = match g.value(v).def {
                ValueDef::Node(p, _) => format!("n{}", p.index()),
                ValueDef::Input => format!("v{}", v.0),
                _ => continue,
            };
            let _ = writeln!(
                s,
                "  {src} -> n{} [label=\"{}\"];",
                n.index(),
                super::fmt_shape(&g.value(v).ty.shape)
            );
        }
    }
    for (i, &v) in g.outputs.iter().enumerate() {
        let _ = writeln!(
            s,
            "  out{i} [shape=ellipse, label=\"{}\\n{}\"];",
            dot_escape(&g.value(v).name),
            g.value(v).ty
        );
        match g.value(v).def {
            ValueDef::Node(p, _) => {
                let _ = writeln!(s, "  n{} -> out{i};", p.index());
            }
            ValueDef::Input => {
                let _ = writeln!(s, "  v{} -> out{i};", v.0);
            }
            _ => {}
        }
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_escapes_hostile_names() {
        assert_eq!(dot_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert!(!dot_escape("x\u{202e}y").contains('\u{202e}'));
    }
}
