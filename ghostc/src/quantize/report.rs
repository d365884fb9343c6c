//! Accuracy of the quantized model against the f32 model, on the same inputs, both run by the
//! reference interpreter: the QDQ file is imported back through ghostc's own importer (so the
//! report also proves the file reads), and each of its activations is matched to the f32
//! model's by ONNX name (`X` against `X_dq`, see [`super::write`](mod@super::write)).
//!
//! Reported: top-1 agreement of the first output (argmax over its last axis, per row), the mean
//! and max absolute error of that output relative to its range (`max - min` of the f32 values,
//! per input), and per layer the largest error of each quantized activation relative to the f32
//! activation's range.
//!
//! Deliberately not done here: accuracy against labels (calibration sets have none); the
//! digits demo measures that.

use std::collections::HashMap;

use crate::ir::{Graph, Tensor, ValueDef};

use super::calibrate::{run_all, CalibrateError};

/// One activation's error.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerError {
    /// ONNX name of the activation (the output of node `node`).
    pub value: String,
    pub node: String,
    pub op: &'static str,
    /// `max |q - f| / (max f - min f)` over all inputs.
    pub max_rel: f32,
}

/// The accuracy report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccuracyReport {
    pub inputs: usize,
    /// Rows (images) of the first output compared.
    pub rows: usize,
    /// Rows whose argmax agrees.
    pub top1_agree: usize,
    /// Mean over rows of `mean |q - f| / range(f)`.
    pub mean_rel: f64,
    /// Max over rows of `max |q - f| / range(f)`.
    pub max_rel: f32,
    /// Per layer, in graph order.
    pub layers: Vec<LayerError>,
}

impl AccuracyReport {
    pub fn top1_percent(&self) -> f64 {
        100.0 * self.top1_agree as f64 / self.rows.max(1) as f64
    }

    /// The `n` layers with the largest error, worst first.
    pub fn worst_layers(&self, n: usize) -> Vec<&LayerError> {
        let mut v: Vec<&LayerError> = self.layers.iter().collect();
        v.sort_by(|a, b| b.max_rel.total_cmp(&a.max_rel));
        v.truncate(n);
        v
    }
}

/// Runs the f32 and the quantized graph side by side over inputs.
pub struct Validator<'a> {
    f32: &'a Graph,
    q: &'a Graph,
    /// (f32 value index, quantized value index, position in `report.layers`).
    pairs: Vec<(usize, usize, usize)>,
    sum_mean_rel: f64,
    report: AccuracyReport,
}

fn range(xs: &[f32]) -> f32 {
    let (lo, hi) = xs
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    if hi > lo {
        hi - lo
    } else {
        1.0
    }
}

fn argmax(xs: &[f32]) -> usize {
    xs.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

impl<'a> Validator<'a> {
    /// `f32`: the graph that was calibrated; `q`: the written QDQ model, imported.
    pub fn new(f32: &'a Graph, q: &'a Graph) -> Self {
        let by_name: HashMap<&str, usize> = q
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| matches!(v.def, ValueDef::Node(..)))
            .map(|(i, v)| (v.name.as_str(), i))
            .collect();
        let mut pairs = Vec::new();
        let mut layers = Vec::new();
        if let Ok(order) = f32.topo_order() {
            for n in order {
                let node = f32.node(n);
                for &v in &node.outputs {
                    let name = &f32.value(v).name;
                    let dq = format!("{name}_dq");
                    let Some(&qi) = by_name
                        .get(dq.as_str())
                        .or_else(|| by_name.get(name.as_str()))
                    else {
                        continue;
                    };
                    pairs.push((v.index(), qi, layers.len()));
                    layers.push(LayerError {
                        value: name.clone(),
                        node: node.name.clone(),
                        op: node.op.name(),
                        max_rel: 0.0,
                    });
                }
            }
        }
        Validator {
            f32,
            q,
            pairs,
            sum_mean_rel: 0.0,
            report: AccuracyReport {
                layers,
                ..Default::default()
            },
        }
    }

    /// Runs both graphs on one input and accumulates the comparison.
    pub fn observe(&mut self, input: &Tensor) -> Result<(), CalibrateError> {
        let fv = run_all(self.f32, input)?;
        let qv = run_all(self.q, input)?;
        for &(fi, qi, li) in &self.pairs {
            let (Some(Some(f)), Some(Some(q))) = (fv.get(fi), qv.get(qi)) else {
                continue;
            };
            let (Some(f), Some(q)) = (f.as_f32(), q.as_f32()) else {
                continue;
            };
            if f.len() != q.len() {
                continue;
            }
            let r = range(f);
            let err = crate::compare::compare(q, f).max_abs / r;
            let l = &mut self.report.layers[li];
            l.max_rel = l.max_rel.max(err);
        }
        let (fo, qo) = (self.f32.outputs[0], self.q.outputs[0]);
        if let (Some(Some(f)), Some(Some(q))) = (fv.get(fo.index()), qv.get(qo.index())) {
            let (f, q) = (f.to_f32_vec(), q.to_f32_vec());
            let cols = self
                .f32
                .value(fo)
                .ty
                .shape
                .last()
                .copied()
                .unwrap_or(1)
                .max(1);
            for (fr, qr) in f.chunks(cols).zip(q.chunks(cols)) {
                let r = range(fr);
                let sum: f64 = fr
                    .iter()
                    .zip(qr)
                    .map(|(a, b)| ((a - b).abs() / r) as f64)
                    .sum();
                self.sum_mean_rel += sum / fr.len() as f64;
                let max_abs = crate::compare::compare(qr, fr).max_abs;
                self.report.max_rel = self.report.max_rel.max(max_abs / r);
                self.report.rows += 1;
                self.report.top1_agree += (argmax(fr) == argmax(qr)) as usize;
            }
        }
        self.report.inputs += 1;
        Ok(())
    }

    pub fn report(&self) -> AccuracyReport {
        let mut r = self.report.clone();
        r.mean_rel = self.sum_mean_rel / r.rows.max(1) as f64;
        r
    }
}
