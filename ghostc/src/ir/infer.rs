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

use super::{fmt_shape, DType, Data, Op, Tensor, TensorType};
use super::{Activation, BinaryOp, Conv, PadMode, ResizeMode, UnaryOp};

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
    #[error("input {input}: expected rank {expected}, got shape [{actual}]")]
    Rank {
        input: usize,
        expected: String,
        actual: String,
    },
    #[error("input {input}: expected dtype {expected}, got {actual}")]
    DType {
        input: usize,
        expected: String,
        actual: String,
    },
    #[error("shapes [{a}] and [{b}] do not broadcast")]
    Broadcast { a: String, b: String },
    #[error("{what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("input {input} must be a constant")]
    NotConstant { input: usize },
}

fn invalid(what: &'static str, detail: impl Into<String>) -> InferError {
    InferError::Invalid {
        what,
        detail: detail.into(),
    }
}

fn overflow(what: &'static str) -> InferError {
    invalid(what, "shape arithmetic overflows")
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

fn infer_unchecked_size(op: &Op, inputs: &[InputFact<'_>]) -> Result<Vec<TensorType>, InferError> {
    let ty = |i: usize| inputs[i].ty;
    let shape = |i: usize| &inputs[i].ty.shape[..];
    let one = |dtype: DType, shape: Vec<usize>| Ok(vec![TensorType::new(dtype, shape)]);
    match op {
        Op::Conv(conv) => {
            expect_float(inputs, &[0, 1])?;
            let out = conv_output(conv, inputs, 0, 1, inputs.get(2).map(|_| 2))?;
            one(ty(0).dtype, out)
        }
        Op::BatchNorm(_) => {
            expect_float(inputs, &[0, 1, 2, 3, 4])?;
            let x = shape(0);
            if x.len() < 2 {
                return Err(rank_err(0, ">= 2", x));
            }
            for i in 1..5 {
                expect_shape(inputs, i, &[x[1]], "per-channel parameter")?;
            }
            one(ty(0).dtype, x.to_vec())
        }
        Op::Activation(act) => {
            expect_float(inputs, &[0])?;
            check_activation(act)?;
            one(ty(0).dtype, shape(0).to_vec())
        }
        Op::Binary(b) => infer_binary(*b, inputs),
        Op::Unary(u) => {
            let dtype = ty(0).dtype;
            let ok = match u {
                UnaryOp::Neg | UnaryOp::Abs => dtype != DType::Bool,
                UnaryOp::Not => dtype == DType::Bool,
                _ => dtype.is_float(),
            };
            if !ok {
                let expected = match u {
                    UnaryOp::Neg | UnaryOp::Abs => "a numeric type",
                    UnaryOp::Not => "bool",
                    _ => "a float type",
                };
                return Err(dtype_err(0, expected, dtype));
            }
            one(dtype, shape(0).to_vec())
        }
        Op::Concat { axis } => {
            let first = shape(0);
            if *axis >= first.len() {
                return Err(invalid(
                    "concat",
                    format!("axis {axis} out of range for rank {}", first.len()),
                ));
            }
            let mut out = first.to_vec();
            for i in 1..inputs.len() {
                expect_same_dtype(inputs, 0, i)?;
                let s = shape(i);
                let compatible = s.len() == first.len()
                    && s.iter()
                        .zip(first)
                        .enumerate()
                        .all(|(d, (a, b))| d == *axis || a == b);
                if !compatible {
                    return Err(invalid(
                        "concat",
                        format!(
                            "input {i} [{}] does not match input 0 [{}] off axis {axis}",
                            fmt_shape(s),
                            fmt_shape(first)
                        ),
                    ));
                }
                out[*axis] = out[*axis].checked_add(s[*axis]).ok_or(overflow("concat"))?;
            }
            one(ty(0).dtype, out)
        }
        Op::Slice(slice) => {
            let x = shape(0);
            let n = slice.axes.len();
            if slice.starts.len() != n || slice.ends.len() != n || slice.steps.len() != n {
                return Err(invalid(
                    "slice",
                    "axes, starts, ends and steps differ in length",
                ));
            }
            let mut out = x.to_vec();
            let mut seen = vec![false; x.len()];
            for (k, &axis) in slice.axes.iter().enumerate() {
                if axis >= x.len() {
                    return Err(invalid(
                        "slice",
                        format!("axis {axis} out of range for rank {}", x.len()),
                    ));
                }
                if std::mem::replace(&mut seen[axis], true) {
                    return Err(invalid("slice", format!("axis {axis} repeated")));
                }
                out[axis] = slice_len(x[axis], slice.starts[k], slice.ends[k], slice.steps[k])?;
            }
            one(ty(0).dtype, out)
        }
        Op::Split { axis, sizes } => {
            let x = shape(0);
            if *axis >= x.len() {
                return Err(invalid(
                    "split",
                    format!("axis {axis} out of range for rank {}", x.len()),
                ));
            }
            if sizes.is_empty() {
                return Err(invalid("split", "no outputs"));
            }
            let total = sizes
                .iter()
                .try_fold(0usize, |acc, &s| acc.checked_add(s))
                .ok_or(overflow("split"))?;
            if total != x[*axis] {
                return Err(invalid(
                    "split",
                    format!("sizes sum to {total}, axis {axis} has {}", x[*axis]),
                ));
            }
            Ok(sizes
                .iter()
                .map(|&s| {
                    let mut o = x.to_vec();
                    o[*axis] = s;
                    TensorType::new(ty(0).dtype, o)
                })
                .collect())
        }
        Op::GlobalAveragePool => {
            expect_float(inputs, &[0])?;
            let x = shape(0);
            if x.len() < 3 {
                return Err(rank_err(0, ">= 3", x));
            }
            let mut out = x.to_vec();
            out[2..].iter_mut().for_each(|d| *d = 1);
            one(ty(0).dtype, out)
        }
        Op::Pool(pool) => {
            expect_float(inputs, &[0])?;
            let x = expect_rank(inputs, 0, 4)?;
            let mut out = x.to_vec();
            for d in 0..2 {
                out[2 + d] = window_output(
                    "pool",
                    x[2 + d],
                    pool.kernel[d],
                    pool.strides[d],
                    pool.pads[d],
                    pool.pads[d + 2],
                    pool.dilations[d],
                )?;
            }
            one(ty(0).dtype, out)
        }
        Op::Reduce(reduce) => {
            let dtype = ty(0).dtype;
            if dtype == DType::Bool {
                return Err(dtype_err(0, "a numeric type", dtype));
            }
            let x = shape(0);
            let axes = reduce_axes(&reduce.axes, x.len())?;
            let mut out = Vec::with_capacity(x.len());
            for (d, &n) in x.iter().enumerate() {
                if !axes.contains(&d) {
                    out.push(n);
                } else if reduce.keepdims {
                    out.push(1);
                }
            }
            one(dtype, out)
        }
        Op::Gemm(gemm) => {
            expect_float(inputs, &[0, 1])?;
            expect_same_dtype(inputs, 0, 1)?;
            let a = expect_rank(inputs, 0, 2)?;
            let b = expect_rank(inputs, 1, 2)?;
            let (m, k) = if gemm.trans_a {
                (a[1], a[0])
            } else {
                (a[0], a[1])
            };
            let (kb, n) = if gemm.trans_b {
                (b[1], b[0])
            } else {
                (b[0], b[1])
            };
            if k != kb {
                return Err(invalid(
                    "gemm",
                    format!(
                        "inner dims differ: A [{}] gives K={k}, B [{}] gives K={kb}",
                        fmt_shape(a),
                        fmt_shape(b)
                    ),
                ));
            }
            if inputs.len() == 3 {
                expect_float(inputs, &[2])?;
                expect_same_dtype(inputs, 0, 2)?;
                let c = shape(2);
                if !broadcasts_to(c, &[m, n]) {
                    return Err(InferError::Broadcast {
                        a: fmt_shape(c),
                        b: fmt_shape(&[m, n]),
                    });
                }
            }
            one(ty(0).dtype, vec![m, n])
        }
        Op::MatMul => {
            expect_float(inputs, &[0, 1])?;
            expect_same_dtype(inputs, 0, 1)?;
            one(ty(0).dtype, matmul_shape(shape(0), shape(1))?)
        }
        Op::Reshape { shape: target } => {
            let from = checked_numel(shape(0))?;
            let to = checked_numel(target)?;
            if from != to {
                return Err(invalid(
                    "reshape",
                    format!(
                        "[{}] has {from} elements, target [{}] has {to}",
                        fmt_shape(shape(0)),
                        fmt_shape(target)
                    ),
                ));
            }
            one(ty(0).dtype, target.clone())
        }
        Op::Transpose { perm } => {
            let x = shape(0);
            if !is_permutation(perm, x.len()) {
                return Err(invalid(
                    "transpose",
                    format!("{perm:?} is not a permutation of rank {}", x.len()),
                ));
            }
            one(ty(0).dtype, perm.iter().map(|&p| x[p]).collect())
        }
        Op::Identity => one(ty(0).dtype, shape(0).to_vec()),
        Op::Resize(resize) => {
            let x = shape(0);
            let dtype = ty(0).dtype;
            if resize.mode != ResizeMode::Nearest && !dtype.is_float() {
                return Err(dtype_err(0, "a float type", dtype));
            }
            if resize.sizes.len() != x.len() || resize.scales.len() != x.len() {
                return Err(invalid(
                    "resize",
                    format!(
                        "{} sizes and {} scales for rank {}",
                        resize.sizes.len(),
                        resize.scales.len(),
                        x.len()
                    ),
                ));
            }
            if let Some(s) = resize.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                return Err(invalid(
                    "resize",
                    format!("scale {s} is not a positive finite number"),
                ));
            }
            if let Some(d) = (0..x.len()).find(|&d| x[d] == 0 && resize.sizes[d] != 0) {
                return Err(invalid(
                    "resize",
                    format!("axis {d} is empty but the output is not"),
                ));
            }
            if !resize.cubic_coeff_a.is_finite() {
                return Err(invalid("resize", "cubic_coeff_a is not finite"));
            }
            one(dtype, resize.sizes.clone())
        }
        Op::Softmax { axis } => {
            expect_float(inputs, &[0])?;
            let x = shape(0);
            if *axis >= x.len() {
                return Err(invalid(
                    "softmax",
                    format!("axis {axis} out of range for rank {}", x.len()),
                ));
            }
            one(ty(0).dtype, x.to_vec())
        }
        Op::Pad(pad) => {
            let x = shape(0);
            let rank = x.len();
            if pad.pads.len() != 2 * rank {
                return Err(invalid(
                    "pad",
                    format!("{} pad amounts for rank {rank}", pad.pads.len()),
                ));
            }
            let mut out = Vec::with_capacity(rank);
            for (d, &n) in x.iter().enumerate() {
                let (begin, end) = (pad.pads[d], pad.pads[d + rank]);
                let n_i = i64::try_from(n).map_err(|_| overflow("pad"))?;
                let len = n_i
                    .checked_add(begin)
                    .and_then(|v| v.checked_add(end))
                    .ok_or(overflow("pad"))?;
                if len < 0 {
                    return Err(invalid(
                        "pad",
                        format!("axis {d} of size {n} cropped by {begin},{end}"),
                    ));
                }
                // Reflect and edge padding need something to copy.
                let limit = match pad.mode {
                    PadMode::Reflect | PadMode::Edge if n == 0 => 0,
                    _ => i64::MAX,
                };
                if begin.max(end) > limit {
                    return Err(invalid(
                        "pad",
                        format!(
                            "{:?} padding of {begin},{end} on axis {d} of size {n}",
                            pad.mode
                        ),
                    ));
                }
                out.push(usize::try_from(len).map_err(|_| overflow("pad"))?);
            }
            one(ty(0).dtype, out)
        }
        Op::Gather { axis } => {
            let data = shape(0);
            let idx_dtype = ty(1).dtype;
            if !idx_dtype.is_int() {
                return Err(dtype_err(1, "an integer type", idx_dtype));
            }
            if *axis >= data.len() {
                return Err(invalid(
                    "gather",
                    format!("axis {axis} out of range for rank {}", data.len()),
                ));
            }
            if let Some(Data::I64(indices)) = inputs[1].value.map(|t| &t.data) {
                let n = data[*axis] as i128;
                if let Some(i) = indices
                    .iter()
                    .find(|&&i| (i as i128) < -n || (i as i128) >= n)
                {
                    return Err(invalid(
                        "gather",
                        format!("index {i} out of range for axis of size {n}"),
                    ));
                }
            }
            let mut out = data[..*axis].to_vec();
            out.extend_from_slice(shape(1));
            out.extend_from_slice(&data[*axis + 1..]);
            one(ty(0).dtype, out)
        }
        Op::Cast { to } => one(*to, shape(0).to_vec()),
        Op::Expand { shape: target } => {
            if !broadcasts_to(shape(0), target) {
                return Err(InferError::Broadcast {
                    a: fmt_shape(shape(0)),
                    b: fmt_shape(target),
                });
            }
            one(ty(0).dtype, target.clone())
        }
        Op::Where => {
            if ty(0).dtype != DType::Bool {
                return Err(dtype_err(0, "bool", ty(0).dtype));
            }
            expect_same_dtype(inputs, 1, 2)?;
            let xy = broadcast_shapes(shape(1), shape(2))?;
            one(ty(1).dtype, broadcast_shapes(shape(0), &xy)?)
        }
        Op::Shape { start, end } => {
            let rank = shape(0).len();
            if start > end || *end > rank {
                return Err(invalid(
                    "shape",
                    format!("dims [{start}, {end}) out of range for rank {rank}"),
                ));
            }
            one(DType::I64, vec![end - start])
        }
        Op::ConstantOfShape {
            shape,
            dtype,
            value,
        } => {
            if dtype.is_int() && !(value.is_finite() && value.fract() == 0.0) {
                return Err(invalid(
                    "constant_of_shape",
                    format!("value {value} is not an integer"),
                ));
            }
            one(*dtype, shape.clone())
        }
        Op::Range => {
            let dtype = ty(0).dtype;
            if dtype == DType::Bool {
                return Err(dtype_err(0, "a numeric type", dtype));
            }
            let mut scalars = Vec::with_capacity(3);
            for i in 0..3 {
                expect_same_dtype(inputs, 0, i)?;
                if checked_numel(shape(i))? != 1 || shape(i).len() > 1 {
                    return Err(rank_err(i, "0 (a scalar)", shape(i)));
                }
                scalars.push(
                    inputs[i]
                        .value
                        .ok_or(InferError::NotConstant { input: i })?,
                );
            }
            let (start, limit, delta) = (scalars[0], scalars[1], scalars[2]);
            one(dtype, vec![range_len(start, limit, delta)?])
        }
        Op::FusedConv(fused) => {
            expect_float(inputs, &[0, 1, 2])?;
            if let Some(act) = &fused.act {
                check_activation(act)?;
            }
            let out = conv_output(&fused.conv, inputs, 0, 1, Some(2))?;
            if fused.residual {
                expect_float(inputs, &[3])?;
                expect_shape(inputs, 3, &out, "residual")?;
            }
            one(ty(0).dtype, out)
        }
        Op::Ghost(ghost) => {
            expect_float(inputs, &[0, 1, 2, 3, 4])?;
            for act in [&ghost.primary_act, &ghost.cheap_act].into_iter().flatten() {
                check_activation(act)?;
            }
            let p = conv_output(&ghost.primary, inputs, 0, 1, Some(2))?;
            let p_ty = TensorType::new(ty(0).dtype, p.clone());
            let cheap_inputs = [
                InputFact {
                    ty: &p_ty,
                    value: None,
                },
                inputs[3],
                inputs[4],
            ];
            let q = conv_output(&ghost.cheap, &cheap_inputs, 0, 1, Some(2))
                .map_err(|e| invalid("ghost", format!("cheap conv: {e}")))?;
            if p[2..] != q[2..] {
                return Err(invalid(
                    "ghost",
                    format!(
                        "primary output [{}] and cheap output [{}] differ spatially",
                        fmt_shape(&p),
                        fmt_shape(&q)
                    ),
                ));
            }
            let channels = p[1].checked_add(q[1]).ok_or(overflow("ghost"))?;
            if ghost.out_channels == 0 || ghost.out_channels > channels {
                return Err(invalid(
                    "ghost",
                    format!(
                        "out_channels {} not in 1..={channels} (primary {} + cheap {})",
                        ghost.out_channels, p[1], q[1]
                    ),
                ));
            }
            let out = vec![p[0], ghost.out_channels, p[2], p[3]];
            if ghost.residual {
                expect_float(inputs, &[5])?;
                expect_shape(inputs, 5, &out, "residual")?;
            }
            one(ty(0).dtype, out)
        }
        Op::SqueezeExcite(se) => {
            expect_float(inputs, &[0, 1, 2, 3, 4])?;
            check_activation(&se.act)?;
            check_activation(&se.gate)?;
            let x = shape(0);
            if x.len() < 3 {
                return Err(rank_err(0, ">= 3", x));
            }
            let c = x[1];
            let w1 = expect_rank(inputs, 1, 2)?;
            let r = w1[0];
            expect_shape(inputs, 1, &[r, c], "squeeze weight")?;
            expect_shape(inputs, 2, &[r], "squeeze bias")?;
            expect_shape(inputs, 3, &[c, r], "excite weight")?;
            expect_shape(inputs, 4, &[c], "excite bias")?;
            one(ty(0).dtype, x.to_vec())
        }
        Op::Linear { act } => {
            expect_float(inputs, &[0, 1, 2])?;
            if let Some(act) = act {
                check_activation(act)?;
            }
            let x = expect_rank(inputs, 0, 2)?;
            let w = expect_rank(inputs, 1, 2)?;
            if w[1] != x[1] {
                return Err(invalid(
                    "linear",
                    format!(
                        "x [{}] and weight [{}] disagree on K",
                        fmt_shape(x),
                        fmt_shape(w)
                    ),
                ));
            }
            expect_shape(inputs, 2, &[w[0]], "bias")?;
            one(ty(0).dtype, vec![x[0], w[0]])
        }
    }
}

fn infer_binary(op: BinaryOp, inputs: &[InputFact<'_>]) -> Result<Vec<TensorType>, InferError> {
    let (a, b) = (inputs[0].ty, inputs[1].ty);
    let out_shape = broadcast_shapes(&a.shape, &b.shape)?;
    let dtype = match op {
        BinaryOp::Pow => {
            for (i, t) in [a, b].iter().enumerate() {
                if t.dtype == DType::Bool {
                    return Err(dtype_err(i, "a numeric type", t.dtype));
                }
            }
            a.dtype
        }
        BinaryOp::Equal => {
            expect_same_dtype(inputs, 0, 1)?;
            DType::Bool
        }
        _ => {
            expect_same_dtype(inputs, 0, 1)?;
            if a.dtype == DType::Bool {
                return Err(dtype_err(0, "a numeric type", a.dtype));
            }
            match op {
                BinaryOp::Less | BinaryOp::Greater => DType::Bool,
                _ => a.dtype,
            }
        }
    };
    Ok(vec![TensorType::new(dtype, out_shape)])
}

fn check_activation(act: &Activation) -> Result<(), InferError> {
    match *act {
        Activation::Clip { min, max } if min.is_nan() || max.is_nan() => {
            Err(invalid("clip", format!("bounds {min}, {max} include NaN")))
        }
        _ => Ok(()),
    }
}

/// Output shape of a convolution over `inputs[x]` with weight `inputs[w]` and optional bias,
/// after checking the weight's rank, channel and group consistency.
fn conv_output(
    conv: &Conv,
    inputs: &[InputFact<'_>],
    x: usize,
    w: usize,
    bias: Option<usize>,
) -> Result<Vec<usize>, InferError> {
    expect_same_dtype(inputs, x, w)?;
    let xs = expect_rank(inputs, x, 4)?;
    let ws = expect_rank(inputs, w, 4)?;
    let group = conv.group;
    if group == 0 {
        return Err(invalid("conv", "group is 0"));
    }
    let (c_out, c_in) = (ws[0], xs[1]);
    if c_in % group != 0 || c_out % group != 0 {
        return Err(invalid(
            "conv",
            format!(
                "group {group} does not divide input channels {c_in} and output channels {c_out}"
            ),
        ));
    }
    if ws[1] != c_in / group {
        return Err(invalid(
            "conv",
            format!(
                "weight [{}] expects {} channels per group, input has {c_in}/{group}",
                fmt_shape(ws),
                ws[1]
            ),
        ));
    }
    if ws[2..] != conv.kernel {
        return Err(invalid(
            "conv",
            format!(
                "kernel attribute {:?} disagrees with weight [{}]",
                conv.kernel,
                fmt_shape(ws)
            ),
        ));
    }
    if let Some(b) = bias {
        expect_same_dtype(inputs, x, b)?;
        expect_shape(inputs, b, &[c_out], "bias")?;
    }
    let mut out = vec![xs[0], c_out, 0, 0];
    for d in 0..2 {
        out[2 + d] = window_output(
            "conv",
            xs[2 + d],
            ws[2 + d],
            conv.strides[d],
            conv.pads[d],
            conv.pads[d + 2],
            conv.dilations[d],
        )?;
    }
    Ok(out)
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

/// Number of elements a normalized slice selects on an axis of length `dim` (see
/// [`super::Slice`]): for `step > 0`, `0 <= start, end <= dim`; for `step < 0`,
/// `0 <= start < dim` and `-1 <= end < dim`. Bounds outside those ranges are errors.
pub fn slice_len(dim: usize, start: i64, end: i64, step: i64) -> Result<usize, InferError> {
    let dim = dim as i128;
    let (start, end, step) = (start as i128, end as i128, step as i128);
    let bad = || {
        invalid(
            "slice",
            format!("bounds {start}:{end}:{step} not normalized for axis of size {dim}"),
        )
    };
    let len = if step > 0 {
        if !(0..=dim).contains(&start) || !(0..=dim).contains(&end) {
            return Err(bad());
        }
        if end > start {
            (end - start + step - 1) / step
        } else {
            0
        }
    } else if step < 0 {
        if dim == 0 {
            // Nothing to select; accept the clamped forms an importer may produce.
            if !(-1..=0).contains(&start) || end != -1 {
                return Err(bad());
            }
            return Ok(0);
        }
        if !(0..dim).contains(&start) || !(-1..dim).contains(&end) {
            return Err(bad());
        }
        if start > end {
            (start - end + (-step) - 1) / (-step)
        } else {
            0
        }
    } else {
        return Err(invalid("slice", "step is 0"));
    };
    usize::try_from(len).map_err(|_| overflow("slice"))
}

/// Length of `Range(start, limit, delta)`: `max(ceil((limit - start) / delta), 0)`, computed as
/// ONNX Runtime does (integers exactly; floats as `ceil(f64(limit - start) / f64(delta))` with
/// the difference taken in f32).
pub fn range_len(start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<usize, InferError> {
    let first = |t: &Tensor| -> Result<Scalar, InferError> {
        match &t.data {
            Data::I64(v) if v.len() == 1 => Ok(Scalar::Int(v[0])),
            Data::F32(v) if v.len() == 1 => Ok(Scalar::Float(v[0])),
            _ => Err(invalid(
                "range",
                format!("operands must be numeric scalars, got {}", t.ty),
            )),
        }
    };
    let len: f64 = match (first(start)?, first(limit)?, first(delta)?) {
        (Scalar::Int(s), Scalar::Int(l), Scalar::Int(d)) => {
            if d == 0 {
                return Err(invalid("range", "delta is 0"));
            }
            let (diff, d) = (l as i128 - s as i128, d as i128);
            // Ceiling division for any signs.
            let q = diff / d;
            let ceil = if diff % d != 0 && ((diff < 0) == (d < 0)) {
                q + 1
            } else {
                q
            };
            return usize::try_from(ceil.max(0)).map_err(|_| overflow("range"));
        }
        (Scalar::Float(s), Scalar::Float(l), Scalar::Float(d)) => {
            if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
                return Err(invalid(
                    "range",
                    format!("start {s}, limit {l}, delta {d} must be finite, delta non-zero"),
                ));
            }
            (((l - s) as f64) / d as f64).ceil()
        }
        _ => return Err(invalid("range", "operands have mixed storage")),
    };
    if !len.is_finite() || len >= usize::MAX as f64 {
        return Err(overflow("range"));
    }
    Ok(len.max(0.0) as usize)
}

enum Scalar {
    Int(i64),
    Float(f32),
}

/// Reduction axes: empty means all axes (ONNX's default with `noop_with_empty_axes = 0`).
/// Errors when an axis is out of range, repeated or unsorted.
pub fn reduce_axes(axes: &[usize], rank: usize) -> Result<Vec<usize>, InferError> {
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    if axes.iter().any(|&a| a >= rank) || axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(
            "reduce",
            format!("axes {axes:?} not sorted, unique and below rank {rank}"),
        ));
    }
    Ok(axes.to_vec())
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

/// numpy `matmul` output shape: 1-D operands are promoted (and the added dim dropped again),
/// leading batch dims broadcast.
pub fn matmul_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, InferError> {
    if a.is_empty() || b.is_empty() {
        return Err(invalid("matmul", "operands must have rank >= 1"));
    }
    let a2: Vec<usize> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<usize> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != kb {
        return Err(invalid(
            "matmul",
            format!("[{}] @ [{}]: inner dims differ", fmt_shape(a), fmt_shape(b)),
        ));
    }
    let mut out = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(out)
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

fn is_permutation(perm: &[usize], rank: usize) -> bool {
    let mut seen = vec![false; rank];
    perm.len() == rank
        && perm
            .iter()
            .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true))
}

fn rank_err(input: usize, expected: &str, actual: &[usize]) -> InferError {
    InferError::Rank {
        input,
        expected: expected.into(),
        actual: fmt_shape(actual),
    }
}

fn dtype_err(input: usize, expected: &str, actual: DType) -> InferError {
    InferError::DType {
        input,
        expected: expected.into(),
        actual: actual.to_string(),
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
        return Err(InferError::DType {
            input: j,
            expected: format!("{a} (as input {i})"),
            actual: b.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Gemm, Ghost, Pad, Pool, PoolKind, Reduce, ReduceKind, Slice, SqueezeExcite};

    fn f32t(shape: &[usize]) -> TensorType {
        TensorType::f32(shape.to_vec())
    }

    fn run(op: &Op, tys: &[TensorType]) -> Result<Vec<TensorType>, InferError> {
        let facts: Vec<InputFact<'_>> =
            tys.iter().map(|ty| InputFact { ty, value: None }).collect();
        infer(op, &facts)
    }

    fn shape_of(op: &Op, tys: &[TensorType]) -> Vec<usize> {
        run(op, tys).unwrap().remove(0).shape
    }

    fn conv(k: usize, s: usize, p: usize, d: usize, g: usize) -> Conv {
        Conv {
            kernel: [k, k],
            strides: [s, s],
            pads: [p; 4],
            dilations: [d, d],
            group: g,
        }
    }

    #[test]
    fn conv_output_sizes() {
        let op = Op::Conv(conv(3, 2, 1, 1, 1));
        assert_eq!(
            shape_of(
                &op,
                &[f32t(&[1, 3, 224, 224]), f32t(&[16, 3, 3, 3]), f32t(&[16])]
            ),
            [1, 16, 112, 112]
        );
        // Dilation 2, no pad: 10 - 5 + 1 = 6.
        let op = Op::Conv(conv(3, 1, 0, 2, 1));
        assert_eq!(
            shape_of(&op, &[f32t(&[1, 2, 10, 10]), f32t(&[4, 2, 3, 3])]),
            [1, 4, 6, 6]
        );
        // Depthwise.
        let op = Op::Conv(conv(3, 1, 1, 1, 8));
        assert_eq!(
            shape_of(&op, &[f32t(&[2, 8, 5, 7]), f32t(&[8, 1, 3, 3])]),
            [2, 8, 5, 7]
        );
        // Asymmetric pads.
        let op = Op::Conv(Conv {
            kernel: [1, 1],
            strides: [1, 1],
            pads: [1, 0, 0, 2],
            dilations: [1, 1],
            group: 1,
        });
        assert_eq!(
            shape_of(&op, &[f32t(&[1, 1, 4, 4]), f32t(&[1, 1, 1, 1])]),
            [1, 1, 5, 6]
        );
    }

    #[test]
    fn conv_rejects_inconsistent_weights() {
        let x = f32t(&[1, 8, 5, 5]);
        // Group does not divide.
        assert!(run(
            &Op::Conv(conv(3, 1, 1, 1, 3)),
            &[x.clone(), f32t(&[3, 3, 3, 3])]
        )
        .is_err());
        // Wrong per-group channel count.
        assert!(run(
            &Op::Conv(conv(3, 1, 1, 1, 2)),
            &[x.clone(), f32t(&[4, 8, 3, 3])]
        )
        .is_err());
        // Kernel attribute disagrees with weight.
        assert!(run(
            &Op::Conv(conv(5, 1, 1, 1, 1)),
            &[x.clone(), f32t(&[4, 8, 3, 3])]
        )
        .is_err());
        // Bias length.
        assert!(run(
            &Op::Conv(conv(3, 1, 1, 1, 1)),
            &[x.clone(), f32t(&[4, 8, 3, 3]), f32t(&[5])]
        )
        .is_err());
        // Weight rank.
        let e = run(
            &Op::Conv(conv(3, 1, 1, 1, 1)),
            &[x.clone(), f32t(&[4, 8, 3])],
        )
        .unwrap_err();
        assert!(matches!(e, InferError::Rank { input: 1, .. }), "{e}");
        // Window larger than padded input.
        assert!(run(
            &Op::Conv(conv(7, 1, 0, 1, 1)),
            &[x.clone(), f32t(&[4, 8, 7, 7])]
        )
        .is_err());
        // int64 input to a float op.
        let xi = TensorType::new(DType::I64, vec![1, 8, 5, 5]);
        let e = run(&Op::Conv(conv(3, 1, 1, 1, 1)), &[xi, f32t(&[4, 8, 3, 3])]).unwrap_err();
        assert!(matches!(e, InferError::DType { input: 0, .. }), "{e}");
        // Zero stride, huge pads overflow.
        assert!(run(
            &Op::Conv(conv(3, 0, 1, 1, 1)),
            &[x.clone(), f32t(&[4, 8, 3, 3])]
        )
        .is_err());
        assert!(run(
            &Op::Conv(conv(3, 1, usize::MAX, 1, 1)),
            &[x, f32t(&[4, 8, 3, 3])]
        )
        .is_err());
    }

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
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[2, 1, 4], &[3, 1]).unwrap(), [2, 3, 4]);
        assert_eq!(broadcast_shapes(&[], &[5]).unwrap(), [5]);
        assert_eq!(broadcast_shapes(&[0], &[1]).unwrap(), [0]);
        assert!(broadcast_shapes(&[2, 3], &[3, 2]).is_err());
        let add = Op::Binary(BinaryOp::Add);
        assert_eq!(
            shape_of(&add, &[f32t(&[1, 16, 8, 8]), f32t(&[1, 16, 1, 1])]),
            [1, 16, 8, 8]
        );
        let i = TensorType::new(DType::I64, vec![3]);
        assert!(run(&add, &[f32t(&[3]), i.clone()]).is_err());
        let eq = run(&Op::Binary(BinaryOp::Equal), &[i.clone(), i.clone()]).unwrap();
        assert_eq!(eq[0].dtype, DType::Bool);
        let b = TensorType::new(DType::Bool, vec![3]);
        assert!(run(&Op::Binary(BinaryOp::Less), &[b.clone(), b]).is_err());
    }

    #[test]
    fn gemm_and_matmul() {
        let g = Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        };
        let op = Op::Gemm(g.clone());
        assert_eq!(
            shape_of(&op, &[f32t(&[2, 960]), f32t(&[1000, 960]), f32t(&[1000])]),
            [2, 1000]
        );
        assert_eq!(
            shape_of(&op, &[f32t(&[2, 960]), f32t(&[1000, 960]), f32t(&[2, 1])]),
            [2, 1000]
        );
        // C is broadcast only towards [M, N].
        assert!(run(
            &op,
            &[f32t(&[2, 960]), f32t(&[1000, 960]), f32t(&[3, 1000])]
        )
        .is_err());
        assert!(run(&op, &[f32t(&[2, 960]), f32t(&[1000, 961])]).is_err());
        assert_eq!(matmul_shape(&[3], &[3]).unwrap(), Vec::<usize>::new());
        assert_eq!(matmul_shape(&[3], &[3, 4]).unwrap(), [4]);
        assert_eq!(matmul_shape(&[2, 3], &[3]).unwrap(), [2]);
        assert_eq!(
            matmul_shape(&[5, 1, 2, 3], &[4, 3, 6]).unwrap(),
            [5, 4, 2, 6]
        );
        assert!(matmul_shape(&[2, 3], &[4, 6]).is_err());
    }

    #[test]
    fn pools_and_reduce() {
        let pool = Pool {
            kind: PoolKind::Avg,
            kernel: [2, 2],
            strides: [2, 2],
            pads: [0, 0, 1, 1],
            dilations: [1, 1],
            ceil_mode: true,
            count_include_pad: false,
        };
        assert_eq!(
            shape_of(&Op::Pool(pool), &[f32t(&[1, 4, 7, 7])]),
            [1, 4, 4, 4]
        );
        assert_eq!(
            shape_of(&Op::GlobalAveragePool, &[f32t(&[2, 4, 7, 9])]),
            [2, 4, 1, 1]
        );
        let r = |axes: Vec<usize>, keepdims| {
            Op::Reduce(Reduce {
                kind: ReduceKind::Mean,
                axes,
                keepdims,
            })
        };
        assert_eq!(
            shape_of(&r(vec![2, 3], true), &[f32t(&[1, 4, 7, 7])]),
            [1, 4, 1, 1]
        );
        assert_eq!(
            shape_of(&r(vec![2, 3], false), &[f32t(&[1, 4, 7, 7])]),
            [1, 4]
        );
        assert_eq!(
            shape_of(&r(vec![], false), &[f32t(&[1, 4, 7, 7])]),
            Vec::<usize>::new()
        );
        assert!(run(&r(vec![3, 2], true), &[f32t(&[1, 4, 7, 7])]).is_err());
        assert!(run(&r(vec![4], true), &[f32t(&[1, 4, 7, 7])]).is_err());
    }

    #[test]
    fn slices() {
        assert_eq!(slice_len(10, 0, 10, 1).unwrap(), 10);
        assert_eq!(slice_len(10, 1, 10, 3).unwrap(), 3); // 1, 4, 7
        assert_eq!(slice_len(10, 9, -1, -1).unwrap(), 10);
        assert_eq!(slice_len(10, 9, 0, -2).unwrap(), 5); // 9, 7, 5, 3, 1
        assert_eq!(slice_len(10, 5, 3, 1).unwrap(), 0);
        assert_eq!(slice_len(0, 0, -1, -1).unwrap(), 0);
        assert!(slice_len(10, 11, 10, 1).is_err());
        assert!(slice_len(10, 10, 0, -1).is_err());
        assert!(slice_len(10, 0, 5, 0).is_err());
        let op = Op::Slice(Slice {
            axes: vec![1],
            starts: vec![0],
            ends: vec![16],
            steps: vec![1],
        });
        assert_eq!(shape_of(&op, &[f32t(&[1, 24, 8, 8])]), [1, 16, 8, 8]);
        let dup = Op::Slice(Slice {
            axes: vec![1, 1],
            starts: vec![0, 0],
            ends: vec![1, 1],
            steps: vec![1, 1],
        });
        assert!(run(&dup, &[f32t(&[1, 24, 8, 8])]).is_err());
    }

    #[test]
    fn concat_split_gather() {
        let op = Op::Concat { axis: 1 };
        assert_eq!(
            shape_of(&op, &[f32t(&[1, 8, 4, 4]), f32t(&[1, 8, 4, 4])]),
            [1, 16, 4, 4]
        );
        assert!(run(&op, &[f32t(&[1, 8, 4, 4]), f32t(&[1, 8, 4, 5])]).is_err());
        assert!(run(&Op::Concat { axis: 4 }, &[f32t(&[1, 8, 4, 4])]).is_err());
        let split = run(
            &Op::Split {
                axis: 1,
                sizes: vec![3, 5],
            },
            &[f32t(&[1, 8, 2])],
        )
        .unwrap();
        assert_eq!(split, [f32t(&[1, 3, 2]), f32t(&[1, 5, 2])]);
        assert!(run(
            &Op::Split {
                axis: 1,
                sizes: vec![3, 4]
            },
            &[f32t(&[1, 8, 2])]
        )
        .is_err());
        let idx = TensorType::new(DType::I64, vec![2, 3]);
        assert_eq!(
            shape_of(&Op::Gather { axis: 1 }, &[f32t(&[4, 5, 6]), idx]),
            [4, 2, 3, 6]
        );
        let scalar_idx = TensorType::new(DType::I64, vec![]);
        let ints = TensorType::new(DType::I64, vec![4]);
        assert_eq!(
            shape_of(&Op::Gather { axis: 0 }, &[ints.clone(), scalar_idx.clone()]),
            Vec::<usize>::new()
        );
        assert!(run(&Op::Gather { axis: 0 }, &[ints.clone(), f32t(&[])]).is_err());
        let bad = Tensor::from_i64(vec![], vec![4]).unwrap();
        let facts = [
            InputFact {
                ty: &ints,
                value: None,
            },
            InputFact {
                ty: &scalar_idx,
                value: Some(&bad),
            },
        ];
        assert!(infer(&Op::Gather { axis: 0 }, &facts).is_err());
    }

    #[test]
    fn reshape_transpose_expand_pad() {
        assert_eq!(
            shape_of(
                &Op::Reshape {
                    shape: vec![1, 960]
                },
                &[f32t(&[1, 960, 1, 1])]
            ),
            [1, 960]
        );
        assert!(run(
            &Op::Reshape {
                shape: vec![1, 961]
            },
            &[f32t(&[1, 960, 1, 1])]
        )
        .is_err());
        assert!(run(
            &Op::Reshape {
                shape: vec![usize::MAX, 2]
            },
            &[f32t(&[2])]
        )
        .is_err());
        assert_eq!(
            shape_of(
                &Op::Transpose {
                    perm: vec![0, 2, 3, 1]
                },
                &[f32t(&[1, 2, 3, 4])]
            ),
            [1, 3, 4, 2]
        );
        assert!(run(
            &Op::Transpose {
                perm: vec![0, 2, 2, 1]
            },
            &[f32t(&[1, 2, 3, 4])]
        )
        .is_err());
        assert!(run(&Op::Transpose { perm: vec![0, 1] }, &[f32t(&[1, 2, 3])]).is_err());
        assert_eq!(
            shape_of(
                &Op::Expand {
                    shape: vec![2, 3, 4]
                },
                &[f32t(&[3, 1])]
            ),
            [2, 3, 4]
        );
        assert!(run(
            &Op::Expand {
                shape: vec![2, 3, 4]
            },
            &[f32t(&[2, 4])]
        )
        .is_err());
        let pad = |pads: Vec<i64>, mode| {
            Op::Pad(Pad {
                pads,
                mode,
                value: 0.0,
            })
        };
        assert_eq!(
            shape_of(&pad(vec![0, 1, 0, 2], PadMode::Constant), &[f32t(&[3, 3])]),
            [3, 6]
        );
        assert_eq!(
            shape_of(
                &pad(vec![-1, 0, 0, -1], PadMode::Constant),
                &[f32t(&[3, 3])]
            ),
            [2, 2]
        );
        assert!(run(&pad(vec![-4, 0, 0, 0], PadMode::Constant), &[f32t(&[3, 3])]).is_err());
        assert!(run(&pad(vec![0, 1, 0, 0], PadMode::Reflect), &[f32t(&[3, 0])]).is_err());
        assert_eq!(
            shape_of(&pad(vec![0, 3, 0, 0], PadMode::Constant), &[f32t(&[3, 0])]),
            [3, 3]
        );
        assert_eq!(
            shape_of(&pad(vec![0, 2, 0, 0], PadMode::Reflect), &[f32t(&[3, 3])]),
            [3, 5]
        );
        assert!(run(&pad(vec![0, 0], PadMode::Constant), &[f32t(&[3, 3])]).is_err());
    }

    #[test]
    fn shape_ops() {
        let x = f32t(&[1, 3, 8, 8]);
        let s = run(&Op::Shape { start: 2, end: 4 }, std::slice::from_ref(&x)).unwrap();
        assert_eq!(s, [TensorType::new(DType::I64, vec![2])]);
        assert!(run(&Op::Shape { start: 2, end: 5 }, std::slice::from_ref(&x)).is_err());
        let c = Op::ConstantOfShape {
            shape: vec![2, 2],
            dtype: DType::I64,
            value: 1.0,
        };
        assert_eq!(
            run(&c, &[]).unwrap(),
            [TensorType::new(DType::I64, vec![2, 2])]
        );
        assert_eq!(
            shape_of(&Op::Cast { to: DType::I64 }, std::slice::from_ref(&x)),
            [1, 3, 8, 8]
        );
        let bools = TensorType::new(DType::Bool, vec![3, 1]);
        assert_eq!(
            shape_of(&Op::Where, &[bools.clone(), f32t(&[1, 4]), f32t(&[])]),
            [3, 4]
        );
        assert!(run(&Op::Where, &[f32t(&[3, 1]), f32t(&[1, 4]), f32t(&[])]).is_err());
    }

    #[test]
    fn range_lengths() {
        let i = |v: i64| Tensor::from_i64(vec![], vec![v]).unwrap();
        let f = |v: f32| Tensor::scalar_f32(v);
        let len = |a: &Tensor, b: &Tensor, c: &Tensor| {
            let facts: Vec<InputFact<'_>> = [a, b, c]
                .iter()
                .map(|t| InputFact {
                    ty: &t.ty,
                    value: Some(t),
                })
                .collect();
            infer(&Op::Range, &facts).map(|t| t[0].shape[0])
        };
        assert_eq!(len(&i(3), &i(9), &i(3)).unwrap(), 2); // spec example: [3, 6]
        assert_eq!(len(&i(10), &i(4), &i(-3)).unwrap(), 2); // spec example: [10, 7]
        assert_eq!(len(&i(0), &i(10), &i(3)).unwrap(), 4);
        assert_eq!(len(&i(5), &i(0), &i(1)).unwrap(), 0);
        assert_eq!(len(&f(0.0), &f(1.0), &f(0.3)).unwrap(), 4);
        assert!(len(&i(0), &i(1), &i(0)).is_err());
        assert!(len(&i(0), &i(i64::MAX), &i(1)).is_err());
        assert!(len(&f(0.0), &i(1), &i(1)).is_err());
        let ty = TensorType::new(DType::I64, vec![]);
        let facts = [InputFact {
            ty: &ty,
            value: None,
        }; 3];
        assert_eq!(
            infer(&Op::Range, &facts).unwrap_err(),
            InferError::NotConstant { input: 0 }
        );
    }

    #[test]
    fn resize_and_softmax() {
        let r = crate::ir::Resize {
            sizes: vec![1, 3, 16, 16],
            mode: ResizeMode::Linear,
            coord: crate::ir::CoordTransform::HalfPixel,
            nearest: crate::ir::NearestMode::Floor,
            scales: vec![1.0, 1.0, 2.0, 2.0],
            cubic_coeff_a: -0.75,
            exclude_outside: false,
        };
        assert_eq!(
            shape_of(&Op::Resize(r.clone()), &[f32t(&[1, 3, 8, 8])]),
            [1, 3, 16, 16]
        );
        let mut bad = r.clone();
        bad.scales.pop();
        assert!(run(&Op::Resize(bad), &[f32t(&[1, 3, 8, 8])]).is_err());
        let ints = TensorType::new(DType::I64, vec![1, 3, 8, 8]);
        assert!(run(&Op::Resize(r), &[ints]).is_err());
        assert_eq!(
            shape_of(&Op::Softmax { axis: 1 }, &[f32t(&[2, 10])]),
            [2, 10]
        );
        assert!(run(&Op::Softmax { axis: 2 }, &[f32t(&[2, 10])]).is_err());
    }

    #[test]
    fn fused_ops() {
        let fused = Op::FusedConv(crate::ir::FusedConv {
            conv: conv(1, 1, 0, 1, 1),
            act: None,
            residual: true,
        });
        let x = f32t(&[1, 8, 4, 4]);
        let tys = [
            x.clone(),
            f32t(&[16, 8, 1, 1]),
            f32t(&[16]),
            f32t(&[1, 16, 4, 4]),
        ];
        assert_eq!(shape_of(&fused, &tys), [1, 16, 4, 4]);
        assert!(run(&fused, &tys[..3]).is_err());
        let bad_res = [
            x.clone(),
            f32t(&[16, 8, 1, 1]),
            f32t(&[16]),
            f32t(&[1, 8, 4, 4]),
        ];
        assert!(run(&fused, &bad_res).is_err());

        let ghost = |out_channels| {
            Op::Ghost(Ghost {
                primary: conv(1, 1, 0, 1, 1),
                primary_act: Some(Activation::Relu),
                cheap: conv(3, 1, 1, 1, 8),
                cheap_act: Some(Activation::Relu),
                out_channels,
                residual: false,
            })
        };
        let tys = [
            x.clone(),
            f32t(&[8, 8, 1, 1]),
            f32t(&[8]),
            f32t(&[8, 1, 3, 3]),
            f32t(&[8]),
        ];
        assert_eq!(shape_of(&ghost(12), &tys), [1, 12, 4, 4]);
        assert!(run(&ghost(17), &tys).is_err());
        assert!(run(&ghost(0), &tys).is_err());

        let se = Op::SqueezeExcite(SqueezeExcite {
            act: Activation::Relu,
            gate: Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
        });
        let tys = [
            x.clone(),
            f32t(&[2, 8]),
            f32t(&[2]),
            f32t(&[8, 2]),
            f32t(&[8]),
        ];
        assert_eq!(shape_of(&se, &tys), [1, 8, 4, 4]);
        let bad = [x, f32t(&[2, 8]), f32t(&[2]), f32t(&[2, 8]), f32t(&[8])];
        assert!(run(&se, &bad).is_err());

        let lin = Op::Linear { act: None };
        assert_eq!(
            shape_of(&lin, &[f32t(&[2, 960]), f32t(&[10, 960]), f32t(&[10])]),
            [2, 10]
        );
        assert!(run(&lin, &[f32t(&[2, 960]), f32t(&[10, 96]), f32t(&[10])]).is_err());
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
