//! Per-node cost: parameters and multiply-accumulates.
//!
//! MACs count the multiply-adds of convolutions and matrix products only, integer ones included
//! (conv:
//! `out_elems * cin/group * kh * kw`; transposed conv: `in_elems * cout/group * kh * kw`, the
//! taps that land in a cropped border included; Gemm/MatMul/Linear: `M * N * K`; SE: its two FCs), the
//! usual definition under which GhostNet-1.0 at 224x224 is quoted at about 142 M. Elementwise
//! ops, pooling and BatchNorm count zero. Parameters count float constant elements read by the
//! node.

use super::{Graph, NodeId, Op};

/// Multiply-accumulates of one node, per image.
pub fn macs(g: &Graph, n: NodeId) -> u64 {
    let node = g.node(n);
    let shape = |i: usize| -> &[usize] {
        node.inputs
            .get(i)
            .map(|&v| &g.value(v).ty.shape[..])
            .unwrap_or(&[])
    };
    let out_elems = |i: usize| -> u64 {
        node.outputs
            .get(i)
            .map(|&v| g.value(v).ty.numel() as u64)
            .unwrap_or(0)
    };
    let per_image = |total: u64| -> u64 {
        let batch = node
            .outputs
            .first()
            .and_then(|&v| g.value(v).ty.shape.first().copied())
            .unwrap_or(1)
            .max(1);
        total / batch as u64
    };
    let conv_macs =
        |w: &[usize], out: u64| -> u64 { out * w.iter().skip(1).product::<usize>() as u64 };
    let total = match &node.op {
        Op::Conv(_) | Op::FusedConv(_) | Op::QConv(_) => conv_macs(shape(1), out_elems(0)),
        Op::ConvTranspose(_) => conv_macs(shape(1), shape(0).iter().product::<usize>() as u64),
        Op::Ghost(gh) => {
            // Both halves are computed in full; the slice only drops channels of the output.
            let out = node
                .outputs
                .first()
                .map(|&v| &g.value(v).ty.shape[..])
                .unwrap_or(&[]);
            let hw: u64 = out.iter().skip(2).product::<usize>() as u64
                * out.first().copied().unwrap_or(1) as u64;
            let wp = shape(1);
            let wq = shape(3);
            let _ = gh;
            conv_macs(wp, hw * wp.first().copied().unwrap_or(0) as u64)
                + conv_macs(wq, hw * wq.first().copied().unwrap_or(0) as u64)
        }
        Op::SqueezeExcite(_) => {
            let n = shape(0).first().copied().unwrap_or(1) as u64;
            n * (shape(1).iter().product::<usize>() + shape(3).iter().product::<usize>()) as u64
        }
        Op::DfcGate(d) => dfc_gate_macs(g, node, d),
        Op::Linear { .. } => {
            let w = shape(1);
            out_elems(0) * w.get(1).copied().unwrap_or(0) as u64
        }
        Op::Gemm(gm) => {
            let a = shape(0);
            let k = if gm.trans_a { a.first() } else { a.get(1) }
                .copied()
                .unwrap_or(0);
            out_elems(0) * k as u64
        }
        Op::MatMul | Op::QMatMul(_) => {
            let a = shape(0);
            out_elems(0) * a.last().copied().unwrap_or(0) as u64
        }
        _ => 0,
    };
    per_image(total)
}

/// Float parameters read by one node (constant inputs), counting each constant once per node.
pub fn params(g: &Graph, n: NodeId) -> u64 {
    let node = g.node(n);
    let mut seen = Vec::new();
    node.inputs
        .iter()
        .filter(|v| {
            let new = !seen.contains(*v);
            seen.push(**v);
            new
        })
        .filter_map(|&v| g.value(v).constant())
        .filter(|t| t.dtype().is_float())
        .map(|t| t.numel() as u64)
        .sum()
}

/// The convs of a DFC gate, at the pooled resolution (shapes re-inferred from the node's
/// inputs; 0 if they do not infer, which the verifier would have reported).
fn dfc_gate_macs(g: &Graph, node: &super::Node, d: &super::DfcGate) -> u64 {
    use super::infer::{infer, InputFact};
    let fact = |v: super::ValueId| InputFact {
        ty: &g.value(v).ty,
        value: None,
    };
    let Some(&x) = node.inputs.get(1) else {
        return 0;
    };
    let Ok(mut a) = infer(&Op::Pool(d.pool.clone()), &[fact(x)]).map(|mut t| t.remove(0)) else {
        return 0;
    };
    let mut total = 0;
    for (i, c) in d.convs.iter().enumerate() {
        let (Some(&w), Some(&b)) = (node.inputs.get(2 + 2 * i), node.inputs.get(3 + 2 * i)) else {
            return 0;
        };
        let facts = [
            InputFact {
                ty: &a,
                value: None,
            },
            fact(w),
            fact(b),
        ];
        let Ok(out) = infer(&Op::Conv(c.clone()), &facts).map(|mut t| t.remove(0)) else {
            return 0;
        };
        let per_out: usize = g.value(w).ty.shape.iter().skip(1).product();
        total += out.numel() as u64 * per_out as u64;
        a = out;
    }
    total
}
