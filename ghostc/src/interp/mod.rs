//! Reference interpreter (the oracle): a deliberately simple implementation of every op.
//!
//! Everything else in ghostc (passes, codegen, the runtime kernels) is checked against this
//! module, so it favours obviously correct over fast: direct loops, index maps for data
//! movement, and fused ops composed from the plain ones. Floats compute in f32 (reductions
//! accumulate in f64); integers in i64, wrapped to their declared width; booleans as `bool`,
//! which is all the folded shape subgraphs need.
//!
//! [`eval_op`] first runs shape inference ([`crate::ir::infer::infer`]) on the concrete inputs,
//! so each op implementation may rely on inference's validation; it then checks that what it
//! computed has exactly the inferred type. [`run`] evaluates a whole graph in topological
//! order and frees each value after its last use.
//!
//! Semantics follow ONNX as ONNX Runtime implements it, with one deliberate exception: every
//! max/min (Max, Min, MaxPool, ReduceMax/Min, Relu, Clip) propagates NaN.
//!
//! The op files carry the family names of `ir::infer` and `onnx/ops`: `conv`, `dense`, `pool`,
//! `softmax`, `elementwise`, `resize`, `shape`, `quant` (integer semantics of the quantized
//! ops) and `fused`.

mod conv;
mod dense;
mod elementwise;
mod fused;
mod norm;
mod pool;
mod quant;
mod resize;
mod shape;
mod softmax;

use crate::ir::infer::{infer, InferError, InputFact};
use crate::ir::{fmt_shape, DType, Data, Graph, Op, Tensor, TensorType, ValueDef, ValueId};

/// Why the interpreter failed.
#[derive(thiserror::Error, Debug)]
pub enum InterpError {
    /// User error: `run` was given the wrong number of inputs.
    #[error("the graph takes {expected} inputs, got {actual}")]
    InputCount { expected: usize, actual: usize },
    /// User error: a graph input does not have the graph's declared type.
    #[error("input '{name}': expected {expected}, got {actual}")]
    InputType {
        name: String,
        expected: String,
        actual: String,
    },
    /// A node failed; the cause is the source.
    #[error("node '{node}' ({op})")]
    Node {
        node: String,
        op: &'static str,
        #[source]
        source: Box<InterpError>,
    },
    /// The op rejects its inputs' types (a malformed model, or a ghostc bug inside `run`).
    #[error(transparent)]
    Infer(#[from] InferError),
    /// Caller bug: an input tensor's data disagrees with its own type.
    #[error("input {input}: {detail}")]
    Malformed { input: usize, detail: String },
    /// The data itself is invalid for the op (out-of-range Gather index, integer division by 0).
    #[error("{op}: {detail}")]
    Value { op: &'static str, detail: String },
    /// A case this interpreter does not implement.
    #[error("{op}: {detail} is not supported by the interpreter")]
    Unsupported { op: &'static str, detail: String },
    /// ghostc bug: a computed value disagrees with inference or with the graph's stored type.
    #[error("{what}: computed {actual}, expected {expected}")]
    OutputType {
        what: String,
        expected: String,
        actual: String,
    },
    /// ghostc bug: the graph is structurally broken (cycle, undefined value).
    #[error("graph: {detail}")]
    Graph { detail: String },
}

type Result<T, E = InterpError> = std::result::Result<T, E>;

/// Evaluates one op on concrete inputs.
pub fn eval_op(op: &Op, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    for (i, t) in inputs.iter().enumerate() {
        check_well_formed(i, t)?;
    }
    let facts: Vec<InputFact<'_>> = inputs
        .iter()
        .map(|t| InputFact {
            ty: &t.ty,
            value: Some(t),
        })
        .collect();
    let types = infer(op, &facts)?;
    let outputs = dispatch(op, inputs, &types)?;
    if outputs.len() != types.len() {
        return Err(InterpError::OutputType {
            what: format!("{} outputs", op.name()),
            expected: types.len().to_string(),
            actual: outputs.len().to_string(),
        });
    }
    for (slot, (t, ty)) in outputs.iter().zip(&types).enumerate() {
        if t.ty != *ty || check_well_formed(slot, t).is_err() {
            return Err(InterpError::OutputType {
                what: format!("{} output {slot}", op.name()),
                expected: ty.to_string(),
                actual: format!("{} holding {} elements", t.ty, t.data.len()),
            });
        }
    }
    Ok(outputs)
}

fn dispatch(op: &Op, x: &[&Tensor], types: &[TensorType]) -> Result<Vec<Tensor>> {
    let out = &types[0];
    let one = |t: Tensor| Ok(vec![t]);
    match op {
        Op::Conv(c) => one(conv::conv(c, x[0], x[1], x.get(2).copied(), out)?),
        Op::ConvTranspose(t) => one(conv::conv_transpose(t, x[0], x[1], x.get(2).copied(), out)?),
        Op::BatchNorm(b) => one(conv::batch_norm(b.epsilon, x[0], x[1], x[2], x[3], x[4])?),
        Op::Activation(a) => one(elementwise::activation(a, x[0])?),
        Op::Binary(b) => one(elementwise::binary(*b, x[0], x[1], out)?),
        Op::Unary(u) => one(elementwise::unary(*u, x[0])?),
        Op::Concat { axis } => one(shape::concat(*axis, x, out)?),
        Op::Slice(s) => one(shape::slice(s, x[0], out)?),
        Op::Split { axis, sizes } => shape::split(*axis, sizes, x[0], types),
        Op::GlobalAveragePool => one(pool::global_average_pool(x[0], out)?),
        Op::Pool(p) => one(pool::pool(p, x[0], out)?),
        Op::Reduce(r) => one(pool::reduce(r, x[0], out)?),
        Op::Gemm(g) => one(dense::gemm(g, x[0], x[1], x.get(2).copied(), out)?),
        Op::MatMul => one(dense::matmul(x[0], x[1], out)?),
        Op::Reshape { .. } | Op::Identity => one(Tensor {
            ty: out.clone(),
            data: x[0].data.clone(),
        }),
        Op::Transpose { perm } => one(shape::transpose(perm, x[0], out)?),
        Op::Resize(r) => one(resize::resize(r, x[0], out)?),
        Op::Softmax { axis } => one(softmax::softmax(*axis, x[0])?),
        Op::LayerNorm { axis, epsilon } => one(norm::layer_norm(
            *axis,
            *epsilon,
            x[0],
            x[1],
            x.get(2).copied(),
        )?),
        Op::ChannelNorm { epsilon } => one(norm::channel_norm(*epsilon, x[0], x[1], x[2])?),
        Op::Pad(p) => one(shape::pad(p, x[0], out)?),
        Op::Gather { axis } => one(shape::gather(*axis, x[0], x[1], out)?),
        Op::Cast { to } => one(elementwise::cast(x[0], *to)?),
        Op::Expand { .. } => one(shape::expand(x[0], out)?),
        Op::Where => one(elementwise::where_(x[0], x[1], x[2], out)?),
        Op::Shape { start, end } => {
            let dims = x[0].shape()[*start..*end]
                .iter()
                .map(|&d| d as i64)
                .collect();
            one(Tensor {
                ty: out.clone(),
                data: Data::I64(dims),
            })
        }
        Op::ConstantOfShape { dtype, value, .. } => {
            one(shape::constant_of_shape(*dtype, *value, out))
        }
        Op::Range => one(shape::range(x[0], x[1], x[2], out)?),
        Op::Quantize(q) => one(quant::quantize(q, x[0], out)?),
        Op::Dequantize(q) => one(quant::dequantize(q, x[0], out)?),
        Op::QConv(c) => one(quant::qconv(c, x, out)?),
        Op::QMatMul(m) => one(quant::qmatmul(m, x, out)?),
        Op::QBinary(b) => one(quant::qbinary(b, x[0], x[1], out)?),
        Op::QConcat { axis, x: qx, y } => one(quant::qconcat(*axis, qx, y, x, out)?),
        Op::QGlobalAveragePool { x: qx, y } => one(quant::qglobal_average_pool(qx, y, x[0], out)?),
        Op::QActivation { act, x: qx, y } => one(quant::qactivation(act, qx, y, x[0], out)?),
        Op::FusedConv(f) => one(fused::fused_conv(f, x)?),
        Op::Ghost(g) => one(fused::ghost(g, x)?),
        Op::SqueezeExcite(s) => one(fused::squeeze_excite(s, x)?),
        Op::DfcGate(d) => one(fused::dfc_gate(d, x)?),
        Op::ChannelShuffle { groups } => one(fused::channel_shuffle(*groups, x[0])?),
        Op::DepthToSpace { blocksize, crd } => {
            one(shape::depth_to_space(*blocksize, *crd, x[0], out)?)
        }
        Op::Dfl { bins } => one(fused::dfl(*bins, x[0], x[1])?),
        Op::Linear { act } => one(fused::linear(act.as_ref(), x)?),
    }
}

/// The tensor's data must match its type: storage class for the dtype, and one element per
/// position of the shape.
fn check_well_formed(input: usize, t: &Tensor) -> Result<()> {
    let storage_ok = match &t.data {
        Data::F32(_) => t.dtype().is_float(),
        Data::I64(_) => t.dtype().is_int(),
        Data::Bool(_) => t.dtype() == DType::Bool,
    };
    let numel = crate::ir::infer::checked_numel(t.shape()).ok();
    if !storage_ok || numel != Some(t.data.len()) {
        return Err(InterpError::Malformed {
            input,
            detail: format!(
                "{} tensor holds {} {} elements",
                t.ty,
                t.data.len(),
                storage_name(&t.data)
            ),
        });
    }
    Ok(())
}

fn storage_name(d: &Data) -> &'static str {
    match d {
        Data::F32(_) => "f32",
        Data::I64(_) => "i64",
        Data::Bool(_) => "bool",
    }
}

/// The f32 storage of a float tensor.
fn floats(t: &Tensor) -> Result<&[f32]> {
    t.as_f32().ok_or_else(|| InterpError::Malformed {
        input: 0,
        detail: format!(
            "expected f32 storage, {} tensor holds {}",
            t.ty,
            storage_name(&t.data)
        ),
    })
}

fn float_tensor(ty: TensorType, data: Vec<f32>) -> Tensor {
    Tensor {
        ty,
        data: Data::F32(data),
    }
}

/// Runs the whole graph. Inputs are in `graph.inputs` order, outputs in `graph.outputs` order.
///
/// Each input must have its graph input's dtype and shape; when `graph.dynamic_batch` is set
/// the leading dim may be any N, and the graph (built for one image) runs once per image with
/// the outputs stacked along dim 0.
pub fn run(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    if inputs.len() != graph.inputs.len() {
        return Err(InterpError::InputCount {
            expected: graph.inputs.len(),
            actual: inputs.len(),
        });
    }
    let mut batch = None;
    for (&v, t) in graph.inputs.iter().zip(inputs) {
        let value = graph.value(v);
        let mismatch = || InterpError::InputType {
            name: value.name.clone(),
            expected: if graph.dynamic_batch {
                format!(
                    "{}[Nx{}]",
                    value.ty.dtype,
                    fmt_shape(value.ty.shape.get(1..).unwrap_or(&[]))
                )
            } else {
                value.ty.to_string()
            },
            actual: t.ty.to_string(),
        };
        check_well_formed(0, t).map_err(|_| mismatch())?;
        let shape_ok = if graph.dynamic_batch {
            t.shape().len() == value.ty.shape.len()
                && !t.shape().is_empty()
                && t.shape()[1..] == value.ty.shape[1..]
        } else {
            t.shape() == value.ty.shape
        };
        if t.dtype() != value.ty.dtype || !shape_ok {
            return Err(mismatch());
        }
        if graph.dynamic_batch {
            let n = t.shape()[0];
            if *batch.get_or_insert(n) != n {
                return Err(InterpError::InputType {
                    name: value.name.clone(),
                    expected: format!("batch {} like the other inputs", batch.unwrap_or(0)),
                    actual: t.ty.to_string(),
                });
            }
        }
    }
    let Some(n_images) = batch else {
        return run_once(graph, inputs.to_vec());
    };
    if graph
        .inputs
        .iter()
        .any(|&v| graph.value(v).ty.shape.first() != Some(&1))
    {
        return Err(InterpError::Graph {
            detail: "dynamic batch graph whose inputs do not have batch 1".into(),
        });
    }
    let mut per_image: Vec<Vec<Tensor>> = Vec::with_capacity(n_images);
    for image in 0..n_images {
        let slices = inputs.iter().map(|t| shape::batch_item(t, image)).collect();
        per_image.push(run_once(graph, slices)?);
    }
    (0..graph.outputs.len())
        .map(|k| {
            let ty = &graph.value(graph.outputs[k]).ty;
            let parts: Vec<&Tensor> = per_image.iter().map(|outs| &outs[k]).collect();
            shape::stack_batch(&parts, ty, n_images)
        })
        .collect()
}

/// Runs the graph once on inputs already checked against its types.
fn run_once(graph: &Graph, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let live = eval(graph, inputs, false)?;
    graph
        .outputs
        .iter()
        .map(|&v| lookup(graph, &live, v).cloned())
        .collect()
}

/// Runs the graph once (no batch splitting: each input must have exactly its graph input's
/// type) and returns every value it computed, by value index: the graph inputs and every node
/// output (`None` for constants). For calibration and per-layer comparisons.
pub fn run_all_values(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    if inputs.len() != graph.inputs.len() {
        return Err(InterpError::InputCount {
            expected: graph.inputs.len(),
            actual: inputs.len(),
        });
    }
    for (&v, t) in graph.inputs.iter().zip(inputs) {
        let value = graph.value(v);
        let mismatch = || InterpError::InputType {
            name: value.name.clone(),
            expected: value.ty.to_string(),
            actual: t.ty.to_string(),
        };
        check_well_formed(0, t).map_err(|_| mismatch())?;
        if t.ty != value.ty {
            return Err(mismatch());
        }
    }
    eval(graph, inputs.to_vec(), true)
}

/// Runs every node in topological order on checked inputs and returns the live values: with
/// `keep_all` every value, else only the graph outputs (each value is freed after its last
/// read).
fn eval(graph: &Graph, inputs: Vec<Tensor>, keep_all: bool) -> Result<Vec<Option<Tensor>>> {
    let order = graph.topo_order().map_err(|n| InterpError::Graph {
        detail: format!("cycle through node '{}'", graph.node(n).name),
    })?;
    // Remaining reads of each value by nodes still to run; graph outputs are never freed.
    let mut remaining_uses = vec![0usize; graph.values.len()];
    for &n in &order {
        for &v in &graph.node(n).inputs {
            if let Some(count) = remaining_uses.get_mut(v.index()) {
                *count += 1;
            }
        }
    }
    let mut live: Vec<Option<Tensor>> = vec![None; graph.values.len()];
    for (&v, t) in graph.inputs.iter().zip(inputs) {
        live[v.index()] = Some(t);
    }
    for &n in &order {
        let node = graph.node(n);
        let node_err = |e: InterpError| InterpError::Node {
            node: node.name.clone(),
            op: node.op.name(),
            source: Box::new(e),
        };
        let outputs = {
            let args = node
                .inputs
                .iter()
                .map(|&v| lookup(graph, &live, v))
                .collect::<Result<Vec<_>>>()
                .map_err(node_err)?;
            eval_op(&node.op, &args).map_err(node_err)?
        };
        if outputs.len() != node.outputs.len() {
            return Err(node_err(InterpError::OutputType {
                what: "output count".into(),
                expected: node.outputs.len().to_string(),
                actual: outputs.len().to_string(),
            }));
        }
        for &v in &node.inputs {
            let count = &mut remaining_uses[v.index()];
            *count -= 1;
            if *count == 0 && !keep_all && !graph.is_output(v) {
                live[v.index()] = None;
            }
        }
        for (&v, t) in node.outputs.iter().zip(outputs) {
            let value = graph.value(v);
            if t.ty != value.ty {
                return Err(node_err(InterpError::OutputType {
                    what: format!("value '{}'", value.name),
                    expected: value.ty.to_string(),
                    actual: t.ty.to_string(),
                }));
            }
            if keep_all || remaining_uses[v.index()] > 0 || graph.is_output(v) {
                live[v.index()] = Some(t);
            }
        }
    }
    Ok(live)
}

fn lookup<'a>(graph: &'a Graph, live: &'a [Option<Tensor>], v: ValueId) -> Result<&'a Tensor> {
    let value = graph
        .values
        .get(v.index())
        .ok_or_else(|| InterpError::Graph {
            detail: format!("value #{} does not exist", v.0),
        })?;
    match &value.def {
        ValueDef::Const(t) => Ok(t),
        _ => live[v.index()].as_ref().ok_or_else(|| InterpError::Graph {
            detail: format!("value '{}' is read before it is computed", value.name),
        }),
    }
}

/// Helpers for the op files' tests.
#[cfg(test)]
mod test_util {
    use super::eval_op;
    use crate::ir::{Op, Tensor};

    /// An f32 tensor; panics when `v` does not fill `shape`.
    pub(super) fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    /// An i64 tensor; panics when `v` does not fill `shape`.
    pub(super) fn ti(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_i64(shape.to_vec(), v.to_vec()).unwrap()
    }

    /// The first output of `op`; panics when evaluation fails.
    pub(super) fn eval1(op: Op, inputs: &[&Tensor]) -> Tensor {
        eval_op(&op, inputs).unwrap().remove(0)
    }
}
