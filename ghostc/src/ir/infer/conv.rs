//! Conv and BatchNorm: the weight, group and channel consistency checks, and the output size of
//! a convolution (also used by the fused convolutions in `fused.rs`).

use super::{
    expect_float, expect_rank, expect_same_dtype, expect_shape, invalid, one, rank_err,
    window_output, InferError, InputFact, Outputs,
};
use crate::ir::{fmt_shape, Conv, ConvTranspose};

pub(super) fn conv(conv: &Conv, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1])?;
    let out = conv_output(conv, inputs, 0, 1, inputs.get(2).map(|_| 2))?;
    one(inputs[0].ty.dtype, out)
}

/// ConvTranspose: weight `[cin, cout / group, kh, kw]`; each spatial output
/// `(in - 1) * s + (k - 1) * d + 1 + output_padding - pads`, which must be positive.
pub(super) fn conv_transpose(t: &ConvTranspose, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1])?;
    expect_same_dtype(inputs, 0, 1)?;
    let xs = expect_rank(inputs, 0, 4)?;
    let ws = expect_rank(inputs, 1, 4)?;
    let c = &t.conv;
    let group = c.group;
    if group == 0 || xs[1] % group != 0 {
        return Err(invalid(
            "conv_transpose",
            format!("group {group} does not divide input channels {}", xs[1]),
        ));
    }
    if ws[0] != xs[1] {
        return Err(invalid(
            "conv_transpose",
            format!(
                "weight [{}] expects {} input channels, input has {}",
                fmt_shape(ws),
                ws[0],
                xs[1]
            ),
        ));
    }
    if ws[2..] != c.kernel {
        return Err(invalid(
            "conv_transpose",
            format!(
                "kernel attribute {:?} disagrees with weight [{}]",
                c.kernel,
                fmt_shape(ws)
            ),
        ));
    }
    let c_out = ws[1] * group;
    if let Some(b) = inputs.get(2).map(|_| 2) {
        expect_same_dtype(inputs, 0, b)?;
        expect_shape(inputs, b, &[c_out], "bias")?;
    }
    let mut out = vec![xs[0], c_out, 0, 0];
    for d in 0..2 {
        let (k, s, dil) = (c.kernel[d], c.strides[d], c.dilations[d]);
        if k == 0 || s == 0 || dil == 0 || xs[2 + d] == 0 {
            return Err(invalid(
                "conv_transpose",
                format!(
                    "kernel {k}, stride {s}, dilation {dil} and input size {} must be positive",
                    xs[2 + d]
                ),
            ));
        }
        let full = (xs[2 + d] - 1)
            .checked_mul(s)
            .and_then(|v| v.checked_add((k - 1).checked_mul(dil)?))
            .and_then(|v| v.checked_add(1 + t.output_padding[d]))
            .filter(|&v| v <= isize::MAX as usize)
            .ok_or_else(|| invalid("conv_transpose", "output size overflows"))?;
        let crop = c.pads[d].saturating_add(c.pads[d + 2]);
        if crop >= full {
            return Err(invalid(
                "conv_transpose",
                format!(
                    "pads {:?} crop the whole output of {full} in dim {d}",
                    c.pads
                ),
            ));
        }
        out[2 + d] = full - crop;
    }
    one(inputs[0].ty.dtype, out)
}

pub(super) fn batch_norm(inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1, 2, 3, 4])?;
    let x = &inputs[0].ty.shape;
    if x.len() < 2 {
        return Err(rank_err(0, ">= 2", x));
    }
    for i in 1..5 {
        expect_shape(inputs, i, &[x[1]], "per-channel parameter")?;
    }
    one(inputs[0].ty.dtype, x.to_vec())
}

/// Output shape of a convolution over `inputs[x]` with weight `inputs[w]` and optional bias,
/// after checking the weight's rank, channel and group consistency.
pub(super) fn conv_output(
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

#[cfg(test)]
mod tests {
    use super::super::test_util::{conv, f32t, run, shape_of};
    use super::super::InputProblem;
    use super::*;
    use crate::ir::{DType, Op, TensorType};

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
        assert!(
            matches!(e.input_problem(), Some((1, InputProblem::Rank { .. }))),
            "{e}"
        );
        // Window larger than padded input.
        assert!(run(
            &Op::Conv(conv(7, 1, 0, 1, 1)),
            &[x.clone(), f32t(&[4, 8, 7, 7])]
        )
        .is_err());
        // int64 input to a float op.
        let xi = TensorType::new(DType::I64, vec![1, 8, 5, 5]);
        let e = run(&Op::Conv(conv(3, 1, 1, 1, 1)), &[xi, f32t(&[4, 8, 3, 3])]).unwrap_err();
        assert!(
            matches!(e.input_problem(), Some((0, InputProblem::DType { .. }))),
            "{e}"
        );
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
}
