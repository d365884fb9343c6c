//! Resize: the output sizes are an attribute (the importer resolved scales and sizes); this
//! checks them against the input's rank, the scales, and the dtype the mode needs.

use super::{dtype_err, invalid, one, InputFact, Outputs};
use crate::ir::{Resize, ResizeMode};

pub(super) fn resize(resize: &Resize, inputs: &[InputFact<'_>]) -> Outputs {
    let x = &inputs[0].ty.shape;
    let dtype = inputs[0].ty.dtype;
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

#[cfg(test)]
mod tests {
    use super::super::test_util::{f32t, run, shape_of};
    use super::*;
    use crate::ir::{DType, Op, TensorType};

    #[test]
    fn resize_sizes() {
        let r = Resize {
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
    }
}
