//! Post-training quantization (`ghostc quantize`): from an f32 model and calibration inputs
//! to a standard QDQ ONNX file with s8 per-channel weights and u8 (or s8) activations.
//!
//! Steps, each its own file:
//! 1. [`prepare`]: BatchNorm is folded into the convs and dense layers (the
//!    [`crate::passes::FoldBatchNorm`] pass), and identities removed, so that the weights that
//!    get quantized are the ones inference uses. No other pass runs: the written model keeps
//!    the ONNX ops (fused ghostc ops have no ONNX spelling).
//! 2. [`select`]: which nodes run quantized (`--keep-float` classes and names stay f32) and
//!    which activations get a Q/DQ pair; decided from the graph alone, before calibration.
//! 3. [`calibrate`]: the f32 interpreter runs every calibration input and records the range
//!    (min-max, percentile or entropy) of each activation that gets a Q/DQ pair, and the
//!    per-channel mean of every quantized conv/dense input.
//! 4. [`weights`] + [`write`](mod@write): per-channel s8 weights, bias correction, i32 biases, and the
//!    QDQ model.
//! 5. [`report`]: the written file imported back and run against the f32 graph.
//!
//! [`quantize`] runs them all (the CLI calls [`quantize_prepared`] with a progress callback).

pub mod calibrate;
pub mod inputs;
pub mod report;
pub mod select;
pub mod weights;
pub mod write;

use std::collections::HashMap;

use prost::Message;

use crate::ir::{DType, Graph, Op, Tensor};
use crate::passes::{run_pass, FoldBatchNorm, PassError, RemoveIdentity};

pub use calibrate::{CalibrateError, Calibrator, Method};
pub use inputs::{InputError, InputSource};
pub use report::{AccuracyReport, Validator};
pub use write::{ActParams, WriteError, WriteSummary};

/// How to quantize.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeOptions {
    pub method: Method,
    /// Activation type: `U8` (default) or `I8`.
    pub activations: DType,
    /// `--keep-float` items: layer classes ([`select::CLASSES`]) or node names.
    pub keep_float: Vec<String>,
    pub bias_correction: bool,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            method: Method::MinMax,
            activations: DType::U8,
            keep_float: Vec::new(),
            bias_correction: true,
        }
    }
}

/// Why quantization failed.
#[derive(thiserror::Error, Debug)]
pub enum QuantizeError {
    #[error("the model must have exactly one f32 input to calibrate, it has {inputs}: {detail}")]
    Inputs { inputs: usize, detail: String },
    #[error("no calibration inputs")]
    NoCalibration,
    #[error("--keep-float: {} is neither a layer class ({}) nor a node name", .unknown.join(", "), select::CLASSES.join(", "))]
    KeepFloat { unknown: Vec<String> },
    #[error("activation type {0} is not u8 or i8")]
    ActivationType(DType),
    #[error("percentile {0} is not in (0, 100]")]
    Percentile(f64),
    #[error(transparent)]
    Pass(#[from] PassError),
    #[error("calibration")]
    Calibrate(#[from] CalibrateError),
    #[error("inputs")]
    Input(#[from] InputError),
    #[error("writing the QDQ model")]
    Write(#[from] WriteError),
    #[error("the written QDQ model does not import back")]
    Reimport(#[from] crate::onnx::ImportError),
}

/// BatchNorm folded, identities removed; checks the model has one f32 input.
pub fn prepare(mut g: Graph) -> Result<Graph, QuantizeError> {
    let f32_inputs = g
        .inputs
        .iter()
        .filter(|&&v| g.value(v).ty.dtype == DType::F32)
        .count();
    if g.inputs.len() != 1 || f32_inputs != 1 {
        let detail = g
            .inputs
            .iter()
            .map(|&v| format!("'{}' {}", g.value(v).name, g.value(v).ty))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(QuantizeError::Inputs {
            inputs: g.inputs.len(),
            detail,
        });
    }
    run_pass(
        &FoldBatchNorm { enabled: true },
        &mut g,
        cfg!(debug_assertions),
    )?;
    run_pass(&RemoveIdentity, &mut g, cfg!(debug_assertions))?;
    Ok(g)
}

/// The shape of one interpreter run's input: the model input's shape (batch 1 for a dynamic
/// batch; a static batch B takes B images per run).
pub fn image_shape(g: &Graph) -> Vec<usize> {
    g.value(g.inputs[0]).ty.shape.clone()
}

/// The quantized model and what went into it.
#[derive(Clone, Debug)]
pub struct Quantized {
    pub model: crate::onnx::proto::ModelProto,
    pub summary: WriteSummary,
    /// Nodes run quantized / kept in f32 by `--keep-float` / not quantizable.
    pub quantized_nodes: usize,
    pub kept_float: Vec<String>,
    pub float_nodes: usize,
    pub calibration_inputs: usize,
}

impl Quantized {
    pub fn to_bytes(&self) -> Vec<u8> {
        self.model.encode_to_vec()
    }
}

/// Checks options that do not need the graph.
pub fn check_options(opts: &QuantizeOptions) -> Result<(), QuantizeError> {
    if !matches!(opts.activations, DType::U8 | DType::I8) {
        return Err(QuantizeError::ActivationType(opts.activations));
    }
    if let Method::Percentile(p) = opts.method {
        if !(p > 0.0 && p <= 100.0) {
            return Err(QuantizeError::Percentile(p));
        }
    }
    Ok(())
}

/// Which nodes run quantized and which activations get Q/DQ (`--keep-float` applied): needs
/// only the graph, so a mistyped `--keep-float` fails before calibration.
pub fn selection(g: &Graph, opts: &QuantizeOptions) -> Result<select::Selection, QuantizeError> {
    let keep = select::keep_float_nodes(g, &opts.keep_float)
        .map_err(|unknown| QuantizeError::KeepFloat { unknown })?;
    Ok(select::select(g, &keep))
}

/// A calibrator recording what [`quantize_prepared`] reads: the range of every Q/DQ
/// activation of `sel` and, with bias correction, the per-channel mean of each quantized
/// Conv/Gemm input.
pub fn calibrator(g: &Graph, sel: &select::Selection, opts: &QuantizeOptions) -> Calibrator {
    let means_of = sel
        .quantized
        .iter()
        .map(|&n| g.node(n))
        .filter(|node| opts.bias_correction && matches!(node.op, Op::Conv(_) | Op::Gemm(_)))
        .map(|node| node.inputs[0]);
    Calibrator::new(opts.method, sel.qdq.iter().copied(), means_of)
}

/// Builds the QDQ model from a prepared graph, its [`selection`] and a [`calibrator`] that has
/// seen the inputs (options already checked).
fn finish(
    g: &Graph,
    sel: select::Selection,
    calib: &Calibrator,
    opts: &QuantizeOptions,
) -> Result<Quantized, QuantizeError> {
    if calib.inputs_seen() == 0 {
        return Err(QuantizeError::NoCalibration);
    }
    let signed = opts.activations == DType::I8;
    let mut act = HashMap::new();
    for &v in &sel.qdq {
        let (lo, hi) = calib
            .stats(v)
            .map(|s| s.range(calib.method(), signed))
            .unwrap_or((0.0, 0.0));
        act.insert(v, ActParams::from_range(lo, hi, opts.activations));
    }
    let means = if opts.bias_correction {
        calib.means.iter().map(|(&v, m)| (v, m.mean())).collect()
    } else {
        HashMap::new()
    };
    let (model, summary) = write::write(
        g,
        &write::Quantization {
            act: &act,
            quantized: &sel.quantized,
            means: &means,
        },
    )?;
    Ok(Quantized {
        model,
        summary,
        quantized_nodes: sel.quantized.len(),
        kept_float: sel.kept_float.into_iter().collect(),
        float_nodes: g.nodes.node_count() - sel.quantized.len(),
        calibration_inputs: calib.inputs_seen(),
    })
}

/// One call: prepare `g`, calibrate on `inputs`, write. Returns the prepared graph too (the
/// f32 reference for [`Validator`]). `on_input(i)` is called after input `i` (from 0) ran.
pub fn quantize(
    g: Graph,
    inputs: &InputSource,
    opts: &QuantizeOptions,
    on_input: impl FnMut(usize),
) -> Result<(Graph, Quantized), QuantizeError> {
    check_options(opts)?;
    let g = prepare(g)?;
    let q = calibrate_and_write(&g, inputs, opts, on_input)?;
    Ok((g, q))
}

/// [`quantize`] on a graph already [`prepare`]d (the CLI prepares first: the input shape
/// checks the calibration files before calibration starts).
pub fn quantize_prepared(
    g: &Graph,
    inputs: &InputSource,
    opts: &QuantizeOptions,
    on_input: impl FnMut(usize),
) -> Result<Quantized, QuantizeError> {
    check_options(opts)?;
    calibrate_and_write(g, inputs, opts, on_input)
}

fn calibrate_and_write(
    g: &Graph,
    inputs: &InputSource,
    opts: &QuantizeOptions,
    mut on_input: impl FnMut(usize),
) -> Result<Quantized, QuantizeError> {
    if inputs.is_empty() {
        return Err(QuantizeError::NoCalibration);
    }
    let sel = selection(g, opts)?;
    let mut calib = calibrator(g, &sel, opts);
    inputs.for_each::<QuantizeError>(&image_shape(g), |i, t: Tensor| {
        calib.observe(g, &t)?;
        on_input(i);
        Ok(())
    })?;
    finish(g, sel, &calib, opts)
}

/// Imports a written QDQ model back (from memory) with ghostc's importer.
pub fn reimport(q: &Quantized) -> Result<Graph, QuantizeError> {
    Ok(crate::onnx::import_bytes(
        &q.to_bytes(),
        None,
        &Default::default(),
    )?)
}
