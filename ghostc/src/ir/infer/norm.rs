//! Normalizations over some axes of one tensor: the output has the input's shape.

use super::{expect_float, invalid, one, InputFact, Outputs};
use crate::ir::fmt_shape;

/// `LayerNorm` over the dims `axis..`: scale and bias broadcast (ONNX rules) to those dims.
pub(super) fn layer_norm(axis: usize, inputs: &[InputFact<'_>]) -> Outputs {
    let floats: Vec<usize> = (0..inputs.len()).collect();
    expect_float(inputs, &floats)?;
    let x = &inputs[0].ty.shape;
    if axis >= x.len() {
        return Err(invalid(
            "layer_norm",
            format!("axis {axis} out of range for rank {}", x.len()),
        ));
    }
    let norm = &x[axis..];
    for (slot, p) in inputs.iter().enumerate().skip(1) {
        let s = &p.ty.shape;
        let fits = s.len() <= norm.len()
            && s.iter()
                .rev()
                .zip(norm.iter().rev())
                .all(|(&a, &b)| a == b || a == 1);
        if !fits {
            return Err(invalid(
                "layer_norm",
                format!(
                    "input {slot} [{}] does not broadcast to the normalized dims [{}]",
                    fmt_shape(s),
                    fmt_shape(norm)
                ),
            ));
        }
    }
    one(inputs[0].ty.dtype, x.to_vec())
}

/// `ChannelNorm`: x `[N, C, ..]`, gamma and beta `[C]`.
pub(super) fn channel_norm(inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1, 2])?;
    let x = &inputs[0].ty.shape;
    let ok = x.len() >= 2 && inputs[1..].iter().all(|p| p.ty.shape[..] == [x[1]]);
    if !ok {
        return Err(invalid(
            "channel_norm",
            format!(
                "input [{}], gamma [{}], beta [{}]: needs [N, C, ..], [C] and [C]",
                fmt_shape(x),
                fmt_shape(&inputs[1].ty.shape),
                fmt_shape(&inputs[2].ty.shape)
            ),
        ));
    }
    one(inputs[0].ty.dtype, x.to_vec())
}
