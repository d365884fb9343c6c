//! Shape and dtype inference: the output types of an op from its input types.
//!
//! Pure functions of (op, input facts). Constant input data is available for the few ops whose
//! output shape depends on values (Range). The importer calls this for every node; the verifier
//! calls it again after each pass to check that stored types still agree; the interpreter calls
//! it before evaluating an op, so every op implementation there may rely on the checks made here.
//!
//! Shapes come from untrusted files: all shape arithmetic is checked, and any overflow, or any
//! output whose byte size would not fit in `isize`, is an [`InferError`], never a panic.
//!
//! Dtype rules follow ONNX: ops computing on real numbers (Conv, activations, pooling, Gemm, ...)
//! take float inputs only (an int64 tensor fed to them is an error); elementwise arithmetic
//! takes two inputs of one numeric dtype (Pow's exponent may differ); comparisons give `Bool`;
//! data movement ops (Concat, Slice, Reshape, Gather, ...) take any dtype.
//!
//! This module holds the entry point, the arity and size checks every op gets, and the checks
//! and shape arithmetic several families share (broadcasting, sliding windows); the rules of
//! each op sit in its family's file, named as in `onnx/ops` and `interp`: `conv` (Conv,
//! BatchNorm), `dense` (Gemm, MatMul), `pool` (pooling, reductions), `softmax`, `elementwise`
//! (activations, unary and binary ops, Where, Cast), `resize`, `shape` (data movement and shape
//! computation), `quant` (Quantize, Dequantize and the integer
//! QOperator ops) and `fused` (the ops the passes build).
//!
//! Deliberately not done here: no value computation beyond what a shape needs (the interpreter
//! does that), and no knowledge of ONNX spellings or opsets (the importer resolves those first).

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

pub use dense::matmul_shape;
pub use pool::reduce_axes;
pub use shape::{range_len, slice_len};

use super::{fmt_shape, DType, Op, Tensor, TensorType};

/// What is known about one input: its type, and its data when it is a constant.
#[derive(Clone, Copy, Debug)]
pub struct InputFact<'a> {
    pub ty: &'a TensorType,
    pub value: Option<&'a Tensor>,
}

/// Why inference rejected an op's inputs. The caller adds the node's name and op.
///
/// From the importer this is a user error (a malformed or unsupported model); from the verifier
/// after a pass it is a ghostc bug (the pass built an inconsistent node).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferError {
    #[error("expected {expected} inputs, got {actual}")]
    Arity { expected: String, actual: usize },
    #[error("input {input}: {problem}")]
    Input { input: usize, problem: InputProblem },
    #[error("shapes [{a}] and [{b}] do not broadcast")]
    Broadcast { a: String, b: String },
    #[error("{what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

/// What is wrong with one input of an [`InferError::Input`]: its text is the same whether the
/// input is named by position (`input 0: ...`) or, by the importer, also by value name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputProblem {
    #[error("expected rank {expected}, got shape [{actual}]")]
    Rank { expected: String, actual: String },
    #[error("expected dtype {expected}, got {actual}")]
    DType { expected: String, actual: String },
    #[error("must be a constant")]
    NotConstant,
}

impl InferError {
    /// The input the error is about and what is wrong with it, for callers that can name the
    /// value (the importer does).
    pub fn input_problem(&self) -> Option<(usize, &InputProblem)> {
        match self {
            InferError::Input { input, problem } => Some((*input, problem)),
            _ => None,
        }
    }
}

/// What every family's rule returns: one type per output.
type Outputs = Result<Vec<TensorType>, InferError>;

fn invalid(what: &'static str, detail: impl Into<String>) -> InferError {
    InferError::Invalid {
        what,
        detail: detail.into(),
    }
}

fn overflow(what: &'static str) -> InferError {
    invalid(what, "shape arithmetic overflows")
}

/// A single output of `dtype` and `shape`.
fn one(dtype: DType, shape: Vec<usize>) -> Outputs {
    Ok(vec![TensorType::new(dtype, shape)])
}

/// Output types of `op` applied to `inputs`.
pub fn infer(op: &Op, inputs: &[InputFact<'_>]) -> Result<Vec<TensorType>, InferError> {
    let (lo, hi) = op.arity();
    if inputs.len() < lo || inputs.len() > hi {
        let expected = match (lo, hi) {
            (lo, hi) if lo == hi => lo.to_string(),
            (lo, usize::MAX) => format!("at least {lo}"),
            (lo, hi) => format!("{lo} to {hi}"),
        };
        return Err(InferError::Arity {
            expected,
            actual: inputs.len(),
        });
    }
    let outputs = infer_unchecked_size(op, inputs)?;
    for ty in &outputs {
        checked_numel(&ty.shape)?;
    }
    Ok(outputs)
}

/// The family rule of `op`; the arity is already checked.
fn infer_unchecked_size(op: &Op, inputs: &[InputFact<'_>]) -> Outputs {
    match op {
        Op::Conv(c) => conv::conv(c, inputs),
        Op::ConvTranspose(t) => conv::conv_transpose(t, inputs),
        Op::BatchNorm(_) => conv::batch_norm(inputs),
        Op::Gemm(g) => dense::gemm(g, inputs),
        Op::MatMul => dense::matmul(inputs),
        Op::GlobalAveragePool => pool::global_average_pool(inputs),
        Op::Pool(p) => pool::pool(p, inputs),
        Op::Reduce(r) => pool::reduce(r, inputs),
        Op::Softmax { axis } => softmax::softmax(*axis, inputs),
        Op::LayerNorm { axis, .. } => norm::layer_norm(*axis, inputs),
        Op::ChannelNorm { .. } => norm::channel_norm(inputs),
        Op::Activation(a) => elementwise::activation(a, inputs),
        Op::Binary(b) => elementwise::binary(*b, inputs),
        Op::Unary(u) => elementwise::unary(*u, inputs),
        Op::Where => elementwise::where_(inputs),
        Op::Cast { to } => elementwise::cast(*to, inputs),
        Op::Resize(r) => resize::resize(r, inputs),
        Op::Concat { axis } => shape::concat(*axis, inputs),
        Op::Slice(s) => shape::slice(s, inputs),
        Op::Split { axis, sizes } => shape::split(*axis, sizes, inputs),
        Op::Reshape { shape: target } => shape::reshape(target, inputs),
        Op::Transpose { perm } => shape::transpose(perm, inputs),
        Op::Identity => shape::identity(inputs),
        Op::Pad(p) => shape::pad(p, inputs),
        Op::Gather { axis } => shape::gather(*axis, inputs),
        Op::Expand { shape: target } => shape::expand(target, inputs),
        Op::Shape { start, end } => shape::shape(*start, *end, inputs),
        Op::ConstantOfShape {
            shape,
            dtype,
            value,
        } => shape::constant_of_shape(shape, *dtype, *value),
        Op::Range => shape::range(inputs),
        Op::Quantize(q) => quant::quantize(q, inputs),
        Op::Dequantize(q) => quant::dequantize(q, inputs),
        Op::QConv(c) => quant::qconv(c, inputs),
        Op::QMatMul(m) => quant::qmatmul(m, inputs),
        Op::QBinary(b) => quant::qbinary(b, inputs),
        Op::QConcat { axis, x, y } => quant::qconcat(*axis, x, y, inputs),
        Op::QGlobalAveragePool { x, y } => quant::qglobal_average_pool(x, y, inputs),
        Op::QActivation { act, x, y } => quant::qactivation(act, x, y, inputs),
        Op::FusedConv(f) => fused::fused_conv(f, inputs),
        Op::Ghost(g) => fused::ghost(g, inputs),
        Op::SqueezeExcite(se) => fused::squeeze_excite(se, inputs),
        Op::DfcGate(d) => fused::dfc_gate(d, inputs),
        Op::ChannelShuffle { groups } => shape::channel_shuffle(*groups, inputs),
        Op::DepthToSpace { blocksize, .. } => shape::depth_to_space(*blocksize, inputs),
        Op::Dfl { bins } => softmax::dfl(*bins, inputs),
        Op::Linear { act } => fused::linear(act.as_ref(), inputs),
    }
}

/// Output length of a sliding window along one axis:
/// `(input + pad_begin + pad_end - dilation * (kernel - 1) - 1) / stride + 1`.
pub fn window_output(
    what: &'static str,
    input: usize,
    kernel: usize,
    stride: usize,
    pad_begin: usize,
    pad_end: usize,
    dilation: usize,
) -> Result<usize, InferError> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(invalid(
            what,
            format!("kernel {kernel}, stride {stride}, dilation {dilation} must be positive"),
        ));
    }
    let span = dilation
        .checked_mul(kernel - 1)
        .and_then(|v| v.checked_add(1))
        .ok_or(overflow(what))?;
    let padded = input
        .checked_add(pad_begin)
        .and_then(|v| v.checked_add(pad_end))
        .ok_or(overflow(what))?;
    // Kernels index with isize; no real model comes anywhere near this.
    if padded > isize::MAX as usize {
        return Err(overflow(what));
    }
    if padded < span {
        return Err(invalid(
            what,
            format!("window of {span} (kernel {kernel}, dilation {dilation}) exceeds padded input of {padded}"),
        ));
    }
    Ok((padded - span) / stride + 1)
}

/// ONNX multidirectional (numpy) broadcasting of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, InferError> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i < rank - s.len() {
            1
        } else {
            s[i - (rank - s.len())]
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(InferError::Broadcast {
                a: fmt_shape(a),
                b: fmt_shape(b),
            }),
        })
        .collect()
}

/// Whether `from` broadcasts unidirectionally to `to` (Gemm's C, Expand).
pub fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len()
        && from
            .iter()
            .rev()
            .zip(to.iter().rev())
            .all(|(&f, &t)| f == t || f == 1)
}

/// Element count of `shape`, erroring when it or its size in bytes (at 8 bytes per element, the
/// widest storage) overflows.
pub fn checked_numel(shape: &[usize]) -> Result<usize, InferError> {
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(overflow("shape"))?;
    match n.checked_mul(8) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(n),
        _ => Err(invalid(
            "shape",
            format!("[{}] is too large", fmt_shape(shape)),
        )),
    }
}

fn rank_err(input: usize, expected: &str, actual: &[usize]) -> InferError {
    InferError::Input {
        input,
        problem: InputProblem::Rank {
            expected: expected.into(),
            actual: fmt_shape(actual),
        },
    }
}

fn dtype_err(input: usize, expected: impl Into<String>, actual: DType) -> InferError {
    InferError::Input {
        input,
        problem: InputProblem::DType {
            expected: expected.into(),
            actual: actual.to_string(),
        },
    }
}

fn not_constant(input: usize) -> InferError {
    InferError::Input {
        input,
        problem: InputProblem::NotConstant,
    }
}

fn expect_rank<'a>(
    inputs: &[InputFact<'a>],
    i: usize,
    rank: usize,
) -> Result<&'a [usize], InferError> {
    let s = &inputs[i].ty.shape;
    if s.len() != rank {
        return Err(rank_err(i, &rank.to_string(), s));
    }
    Ok(s)
}

fn expect_shape(
    inputs: &[InputFact<'_>],
    i: usize,
    expected: &[usize],
    what: &'static str,
) -> Result<(), InferError> {
    let s = &inputs[i].ty.shape;
    if s != expected {
        return Err(invalid(
            what,
            format!(
                "input {i}: expected [{}], got [{}]",
                fmt_shape(expected),
                fmt_shape(s)
            ),
        ));
    }
    Ok(())
}

fn expect_float(inputs: &[InputFact<'_>], which: &[usize]) -> Result<(), InferError> {
    for &i in which {
        let dtype = inputs[i].ty.dtype;
        if !dtype.is_float() {
            return Err(dtype_err(i, "a float type", dtype));
        }
    }
    Ok(())
}

fn expect_same_dtype(inputs: &[InputFact<'_>], i: usize, j: usize) -> Result<(), InferError> {
    let (a, b) = (inputs[i].ty.dtype, inputs[j].ty.dtype);
    if a != b {
        return Err(dtype_err(j, format!("{a} (as input {i})"), b));
    }
    Ok(())
}

/// Helpers for the family files' tests.
#[cfg(test)]
mod test_util {
    use super::{infer, InferError, InputFact, Op, TensorType};

    pub(super) fn f32t(shape: &[usize]) -> TensorType {
        TensorType::f32(shape.to_vec())
    }

    /// Inference over inputs with no constant data.
    pub(super) fn run(op: &Op, tys: &[TensorType]) -> Result<Vec<TensorType>, InferError> {
        let facts: Vec<InputFact<'_>> =
            tys.iter().map(|ty| InputFact { ty, value: None }).collect();
        infer(op, &facts)
    }

    /// The first output's shape; panics when inference fails.
    pub(super) fn shape_of(op: &Op, tys: &[TensorType]) -> Vec<usize> {
        run(op, tys).unwrap().remove(0).shape
    }

    /// A square convolution: kernel, stride, pad (all four sides), dilation, group.
    pub(super) fn conv(k: usize, s: usize, p: usize, d: usize, g: usize) -> crate::ir::Conv {
        crate::ir::Conv {
            kernel: [k, k],
            strides: [s, s],
            pads: [p; 4],
            dilations: [d, d],
            group: g,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{conv, f32t, run};
    use super::*;
    use crate::ir::BinaryOp;

    #[test]
    fn arity_is_checked() {
        let e = run(&Op::Binary(BinaryOp::Add), &[f32t(&[1])]).unwrap_err();
        assert_eq!(
            e,
            InferError::Arity {
                expected: "2".into(),
                actual: 1
            }
        );
        assert!(run(&Op::Conv(conv(1, 1, 0, 1, 1)), &[f32t(&[1, 1, 1, 1])]).is_err());
        assert!(run(&Op::Concat { axis: 0 }, &[]).is_err());
    }

    #[test]
    fn huge_outputs_are_errors() {
        let c = Op::ConstantOfShape {
            shape: vec![1 << 40, 1 << 40],
            dtype: DType::F32,
            value: 0.0,
        };
        assert!(run(&c, &[]).is_err());
        let e = Op::Expand {
            shape: vec![usize::MAX / 2, 4],
        };
        assert!(run(&e, &[f32t(&[1])]).is_err());
    }
}
