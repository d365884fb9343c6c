//! The model summary `ghostc inspect` prints: inputs, outputs, a per-layer table and totals.
//! With the `serde` feature the report is `Serialize` (`ghostc inspect --json`).

use crate::ir::{cost, fmt_shape, Graph, ValueDef};

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
}

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LayerInfo {
    pub index: usize,
    pub name: String,
    pub op: String,
    pub output_shape: Vec<usize>,
    pub params: u64,
    pub macs: u64,
}

/// Summary of a graph, per image.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ModelReport {
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    pub dynamic_batch: bool,
    pub layers: Vec<LayerInfo>,
    pub total_params: u64,
    pub total_macs: u64,
    /// Bytes of every intermediate (node-produced) tensor added up: what a runtime that never
    /// reuses memory would hold.
    pub activation_bytes_total: u64,
    /// Largest sum of simultaneously live intermediate tensors over the topological order: a
    /// lower bound for a reuse-after-last-use arena with this schedule.
    pub activation_bytes_peak: u64,
}

impl ModelReport {
    pub fn new(g: &Graph) -> ModelReport {
        let info = |v| {
            let value = g.value(v);
            TensorInfo {
                name: value.name.clone(),
                dtype: value.ty.dtype.to_string(),
                shape: value.ty.shape.clone(),
            }
        };
        let order = g
            .topo_order()
            .unwrap_or_else(|_| g.nodes.node_indices().collect());
        let mut layers = Vec::new();
        let mut total_bytes = 0u64;
        // Liveness over the order: a value dies after its last consumer.
        let position: std::collections::HashMap<_, _> =
            order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let mut frees_at: Vec<u64> = vec![0; order.len() + 1];
        let mut allocs_at: Vec<u64> = vec![0; order.len() + 1];
        for (i, &n) in order.iter().enumerate() {
            let node = g.node(n);
            for &v in &node.outputs {
                let bytes = (g.value(v).ty.numel() * g.value(v).ty.dtype.size()) as u64;
                total_bytes += bytes;
                allocs_at[i] += bytes;
                let last_use = if g.is_output(v) {
                    order.len()
                } else {
                    g.consumers(v)
                        .iter()
                        .map(|(c, _)| position[c])
                        .max()
                        .unwrap_or(i)
                };
                frees_at[last_use] += bytes;
            }
            layers.push(LayerInfo {
                index: i,
                name: node.name.clone(),
                op: crate::ir::display::op_label(&node.op),
                output_shape: node
                    .outputs
                    .first()
                    .map(|&v| g.value(v).ty.shape.clone())
                    .unwrap_or_default(),
                params: cost::params(g, n),
                macs: cost::macs(g, n),
            });
        }
        let (mut live, mut peak) = (0u64, 0u64);
        for i in 0..order.len() {
            live += allocs_at[i];
            peak = peak.max(live);
            live -= frees_at[i];
        }
        let mut seen = std::collections::HashSet::new();
        let total_params = order
            .iter()
            .flat_map(|&n| g.node(n).inputs.iter().copied())
            .filter(|&v| seen.insert(v))
            .filter_map(|v| match &g.value(v).def {
                ValueDef::Const(t) if t.dtype().is_float() => Some(t.numel() as u64),
                _ => None,
            })
            .sum();
        ModelReport {
            inputs: g.inputs.iter().map(|&v| info(v)).collect(),
            outputs: g.outputs.iter().map(|&v| info(v)).collect(),
            dynamic_batch: g.dynamic_batch,
            total_macs: layers.iter().map(|l| l.macs).sum(),
            total_params,
            layers,
            activation_bytes_total: total_bytes,
            activation_bytes_peak: peak,
        }
    }

    /// Human-readable table.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let batch = if self.dynamic_batch {
            " (dynamic batch: shapes per image)"
        } else {
            ""
        };
        for t in &self.inputs {
            let _ = writeln!(
                s,
                "input  {:?}: {}[{}]{batch}",
                t.name,
                t.dtype,
                fmt_shape(&t.shape)
            );
        }
        for t in &self.outputs {
            let _ = writeln!(
                s,
                "output {:?}: {}[{}]",
                t.name,
                t.dtype,
                fmt_shape(&t.shape)
            );
        }
        let _ = writeln!(
            s,
            "\n{:>4}  {:<44} {:<18} {:>10} {:>12}  name",
            "#", "op", "output", "params", "MACs"
        );
        for l in &self.layers {
            let mut op_text = l.op.clone();
            if op_text.chars().count() > 44 {
                op_text = op_text.chars().take(43).collect::<String>() + "…";
            }
            let _ = writeln!(
                s,
                "{:>4}  {:<44} {:<18} {:>10} {:>12}  {:?}",
                l.index,
                op_text,
                fmt_shape(&l.output_shape),
                l.params,
                l.macs,
                l.name
            );
        }
        let _ = writeln!(
            s,
            "\ntotal: {} layers, {:.3} M params ({:.1} MB f32), {:.2} M MACs per image",
            self.layers.len(),
            self.total_params as f64 / 1e6,
            self.total_params as f64 * 4.0 / 1e6,
            self.total_macs as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "activations: {:.2} MB in all, {:.2} MB peak live (reuse after last use)",
            self.activation_bytes_total as f64 / 1e6,
            self.activation_bytes_peak as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "MACs count conv and matrix-product multiply-adds only (elementwise, pooling: 0)."
        );
        s
    }
}
