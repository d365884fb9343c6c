//! Softmax: the output has the input's shape; the axis must exist.

use super::{expect_float, invalid, one, InputFact, Outputs};

pub(super) fn softmax(axis: usize, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0])?;
    let x = &inputs[0].ty.shape;
    if axis >= x.len() {
        return Err(invalid(
            "softmax",
            format!("axis {axis} out of range for rank {}", x.len()),
        ));
    }
    one(inputs[0].ty.dtype, x.to_vec())
}

/// `Dfl`: x `[N, G * bins, L]`, w `[bins]` -> `[N, G, L]`.
pub(super) fn dfl(bins: usize, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1])?;
    let (x, w) = (&inputs[0].ty.shape, &inputs[1].ty.shape);
    if x.len() != 3 || bins == 0 || !x[1].is_multiple_of(bins) || w[..] != [bins] {
        return Err(invalid(
            "dfl",
            format!(
                "input [{}] and weights [{}] for {bins} bins: needs [N, G * bins, L] and [bins]",
                crate::ir::fmt_shape(x),
                crate::ir::fmt_shape(w)
            ),
        ));
    }
    one(inputs[0].ty.dtype, vec![x[0], x[1] / bins, x[2]])
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{f32t, run, shape_of};
    use crate::ir::Op;

    #[test]
    fn softmax_axis() {
        assert_eq!(
            shape_of(&Op::Softmax { axis: 1 }, &[f32t(&[2, 10])]),
            [2, 10]
        );
        assert!(run(&Op::Softmax { axis: 2 }, &[f32t(&[2, 10])]).is_err());
    }
}
