//! Elementwise ops: activations, unary and binary arithmetic (numpy broadcasting), comparisons,
//! Where and Cast. The output has the (broadcast) input shape; the rules here are the dtypes.

use super::{
    broadcast_shapes, dtype_err, expect_float, expect_same_dtype, invalid, one, InferError,
    InputFact, Outputs,
};
use crate::ir::{fmt_shape, Activation, BinaryOp, DType, TensorType, UnaryOp};

pub(super) fn activation(act: &Activation, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0])?;
    check_activation(act)?;
    one(inputs[0].ty.dtype, inputs[0].ty.shape.clone())
}

pub(super) fn unary(op: UnaryOp, inputs: &[InputFact<'_>]) -> Outputs {
    let dtype = inputs[0].ty.dtype;
    let ok = match op {
        UnaryOp::Neg | UnaryOp::Abs => dtype != DType::Bool,
        UnaryOp::Not => dtype == DType::Bool,
        _ => dtype.is_float(),
    };
    if !ok {
        let expected = match op {
            UnaryOp::Neg | UnaryOp::Abs => "a numeric type",
            UnaryOp::Not => "bool",
            _ => "a float type",
        };
        return Err(dtype_err(0, expected, dtype));
    }
    one(dtype, inputs[0].ty.shape.clone())
}

pub(super) fn binary(op: BinaryOp, inputs: &[InputFact<'_>]) -> Outputs {
    let (a, b) = (inputs[0].ty, inputs[1].ty);
    let out_shape = broadcast_shapes(&a.shape, &b.shape)?;
    if op == BinaryOp::PRelu && out_shape != a.shape {
        return Err(invalid(
            "slope",
            format!(
                "shape [{}] does not broadcast to the input's [{}] (PRelu broadcasts one way)",
                fmt_shape(&b.shape),
                fmt_shape(&a.shape)
            ),
        ));
    }
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

pub(super) fn where_(inputs: &[InputFact<'_>]) -> Outputs {
    if inputs[0].ty.dtype != DType::Bool {
        return Err(dtype_err(0, "bool", inputs[0].ty.dtype));
    }
    expect_same_dtype(inputs, 1, 2)?;
    let xy = broadcast_shapes(&inputs[1].ty.shape, &inputs[2].ty.shape)?;
    one(
        inputs[1].ty.dtype,
        broadcast_shapes(&inputs[0].ty.shape, &xy)?,
    )
}

pub(super) fn cast(to: DType, inputs: &[InputFact<'_>]) -> Outputs {
    one(to, inputs[0].ty.shape.clone())
}

/// Activation parameters every implementation can honour (also checks fused epilogues).
pub(super) fn check_activation(act: &Activation) -> Result<(), InferError> {
    match *act {
        Activation::Clamp { lo: min, hi: max } if min.is_nan() || max.is_nan() => {
            Err(invalid("clip", format!("bounds {min}, {max} include NaN")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{f32t, run, shape_of};
    use super::*;
    use crate::ir::Op;

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
    fn cast_and_where() {
        let x = f32t(&[1, 3, 8, 8]);
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
}
