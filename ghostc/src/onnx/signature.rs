//! The graph's signature: the static type of each input (declared dims, the user's pinned
//! shape, a symbolic batch) and the check of each output's declared type against the one
//! import computed.
//!
//! Deliberately not done here: inputs are not reordered or renamed, and value infos of inner
//! values are not checked (import computes every type itself).

use super::error::shown;
use super::proto::tensor_shape_proto::{dimension, Dimension};
use super::proto::{type_proto, ValueInfoProto};
use super::tensor::{checked_shape, dtype_from_onnx};
use super::{ImportError, Limits};
use crate::ir::{fmt_shape, TensorType};

/// The static type of a graph input: dims from the model, symbolic ones from the user's pinned
/// shape, a symbolic leading dim of a single input as a dynamic batch. Returns the type and
/// whether the batch is dynamic.
pub(super) fn input_type(
    info: &ValueInfoProto,
    pinned: Option<&Vec<usize>>,
    single_input: bool,
    limits: &Limits,
) -> Result<(TensorType, bool), ImportError> {
    let name = info.name.as_deref().unwrap_or("");
    let fail = |detail: String| ImportError::Input {
        input: shown(name),
        detail,
    };
    let Some(type_proto::Value::TensorType(tt)) =
        info.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(fail(
            "is not a tensor (sequences, maps and optionals are not supported)".into(),
        ));
    };
    let code = tt.elem_type.unwrap_or(0);
    let dtype = dtype_from_onnx(code).map_err(|e| fail(e.to_string()))?;
    let Some(shape) = &tt.shape else {
        return match pinned {
            Some(p) => {
                let dims: Vec<i64> = p.iter().map(|&d| d as i64).collect();
                checked_shape(&dims, limits).map_err(|e| fail(e.to_string()))?;
                Ok((TensorType::new(dtype, p.clone()), false))
            }
            None => Err(fail(
                "has no shape in the model; pin it with a shape option".into(),
            )),
        };
    };
    if let Some(p) = pinned {
        if p.len() != shape.dim.len() {
            return Err(fail(format!(
                "has rank {} ([{}]) but the pinned shape [{}] has rank {}",
                shape.dim.len(),
                declared_shape(&shape.dim),
                fmt_shape(p),
                p.len()
            )));
        }
    }
    let mut dims = Vec::with_capacity(shape.dim.len());
    let mut dynamic_batch = false;
    for (axis, d) in shape.dim.iter().enumerate() {
        let pinned_dim = pinned.and_then(|p| p.get(axis).copied());
        let dim = match &d.value {
            Some(dimension::Value::DimValue(v)) => {
                let v = usize::try_from(*v)
                    .map_err(|_| fail(format!("dim {axis} is negative ({v})")))?;
                if let Some(p) = pinned_dim {
                    if p != v {
                        return Err(fail(format!(
                            "dim {axis} is {v} in the model but pinned to {p}"
                        )));
                    }
                }
                v
            }
            symbolic => {
                let label = match symbolic {
                    Some(dimension::Value::DimParam(s)) => format!(" ('{}')", shown(s)),
                    _ => String::new(),
                };
                match pinned_dim {
                    Some(1) | None if axis == 0 && single_input => {
                        dynamic_batch = true;
                        1
                    }
                    Some(p) => p,
                    None => {
                        return Err(fail(format!(
                            "dim {axis}{label} is dynamic; pin it with a shape for this input (model shape [{}])",
                            declared_shape(&shape.dim)
                        )))
                    }
                }
            }
        };
        dims.push(dim);
    }
    let as_i64: Vec<i64> = dims
        .iter()
        .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
        .collect();
    checked_shape(&as_i64, limits).map_err(|e| fail(e.to_string()))?;
    Ok((TensorType::new(dtype, dims), dynamic_batch))
}

/// The output's declared static dims and dtype must agree with what import computed (the
/// leading dim is not compared when the batch is dynamic).
pub(super) fn check_declared(
    info: &ValueInfoProto,
    ty: &TensorType,
    dynamic_batch: bool,
) -> Result<(), ImportError> {
    let name = info.name.as_deref().unwrap_or("");
    let Some(type_proto::Value::TensorType(tt)) =
        info.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(());
    };
    if let Some(code) = tt.elem_type.filter(|&c| c != 0) {
        if let Ok(dt) = dtype_from_onnx(code) {
            if dt != ty.dtype {
                return Err(ImportError::Output {
                    output: shown(name),
                    detail: format!("declared dtype {dt}, computed {}", ty.dtype),
                });
            }
        }
    }
    if let Some(shape) = &tt.shape {
        let mismatch = || ImportError::Output {
            output: shown(name),
            detail: format!(
                "declared shape [{}], computed [{}]",
                declared_shape(&shape.dim),
                fmt_shape(&ty.shape)
            ),
        };
        if shape.dim.len() != ty.shape.len() {
            return Err(mismatch());
        }
        for (axis, (d, &actual)) in shape.dim.iter().zip(&ty.shape).enumerate() {
            if let Some(dimension::Value::DimValue(declared)) = d.value {
                if axis == 0 && dynamic_batch {
                    continue;
                }
                if declared != actual as i64 {
                    return Err(mismatch());
                }
            }
        }
    }
    Ok(())
}

fn declared_shape(dims: &[Dimension]) -> String {
    dims.iter()
        .map(|d| match &d.value {
            Some(dimension::Value::DimValue(v)) => v.to_string(),
            Some(dimension::Value::DimParam(p)) => shown(p),
            None => "?".into(),
        })
        .collect::<Vec<_>>()
        .join("x")
}
