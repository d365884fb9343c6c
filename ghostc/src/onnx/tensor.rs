//! `TensorProto` -> [`Tensor`]: initializers, `Constant` values and tensor attributes.
//!
//! Every length is checked before anything is allocated: the dims (non-negative, product
//! without overflow, under `max_tensor_elements`), then the byte or value count of the one data
//! field that carries the payload (raw_data, a typed field, or external data). Floating types
//! are stored as f32 and integer types as i64 (see [`crate::ir::tensor`]); f16 and bf16 are
//! widened exactly.

use super::error::{shown, TensorError};
use super::external::ExternalData;
use super::proto::tensor_proto::{DataLocation, DataType};
use super::proto::TensorProto;
use super::{ImportError, Limits};
use crate::ir::{DType, Data, Tensor};

/// The IR dtype of an ONNX `TensorProto.DataType` code.
pub(crate) fn dtype_from_onnx(code: i32) -> Result<DType, TensorError> {
    let dt = DataType::try_from(code).ok();
    Ok(match dt {
        Some(DataType::Float) => DType::F32,
        Some(DataType::Float16) => DType::F16,
        Some(DataType::Bfloat16) => DType::BF16,
        Some(DataType::Double) => DType::F64,
        Some(DataType::Int64) => DType::I64,
        Some(DataType::Int32) => DType::I32,
        Some(DataType::Int16) => DType::I16,
        Some(DataType::Int8) => DType::I8,
        Some(DataType::Uint8) => DType::U8,
        Some(DataType::Uint16) => DType::U16,
        Some(DataType::Uint32) => DType::U32,
        Some(DataType::Uint64) => DType::U64,
        Some(DataType::Bool) => DType::Bool,
        _ => {
            return Err(TensorError::UnsupportedDType {
                code,
                name: dtype_name(code),
            })
        }
    })
}

/// The ONNX `TensorProto.DataType` of an IR dtype (inverse of [`dtype_from_onnx`]).
pub(crate) fn dtype_to_onnx(d: DType) -> DataType {
    match d {
        DType::F32 => DataType::Float,
        DType::F16 => DataType::Float16,
        DType::BF16 => DataType::Bfloat16,
        DType::F64 => DataType::Double,
        DType::I64 => DataType::Int64,
        DType::I32 => DataType::Int32,
        DType::I16 => DataType::Int16,
        DType::I8 => DataType::Int8,
        DType::U8 => DataType::Uint8,
        DType::U16 => DataType::Uint16,
        DType::U32 => DataType::Uint32,
        DType::U64 => DataType::Uint64,
        DType::Bool => DataType::Bool,
    }
}

/// The ONNX spelling of a data type code, for messages.
pub(crate) fn dtype_name(code: i32) -> String {
    DataType::try_from(code)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Converts checked dims into a shape, returning it with its element count.
pub(crate) fn checked_shape(
    dims: &[i64],
    limits: &Limits,
) -> Result<(Vec<usize>, u64), TensorError> {
    let mut shape = Vec::with_capacity(dims.len().min(64));
    let mut numel: u64 = 1;
    let overflow = || TensorError::ShapeOverflow {
        shape: dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    for (axis, &dim) in dims.iter().enumerate() {
        let d = u64::try_from(dim).map_err(|_| TensorError::NegativeDim { axis, dim })?;
        numel = numel.checked_mul(d).ok_or_else(overflow)?;
        shape.push(usize::try_from(d).map_err(|_| overflow())?);
    }
    if numel > limits.max_tensor_elements as u64 {
        return Err(TensorError::TooLarge {
            elements: numel,
            max: limits.max_tensor_elements as u64,
        });
    }
    Ok((shape, numel))
}

/// Decodes a tensor. `context` names it in errors ("initializer 'W'").
pub(crate) fn tensor_from_proto(
    t: &TensorProto,
    context: &str,
    limits: &Limits,
    external: &mut ExternalData,
) -> Result<Tensor, ImportError> {
    let err = |error: TensorError| ImportError::Tensor {
        context: context.to_string(),
        error,
    };
    let code = t.data_type.unwrap_or(0);
    let dtype = dtype_from_onnx(code).map_err(err)?;
    let (shape, numel) = checked_shape(&t.dims, limits).map_err(err)?;
    if t.segment.is_some() {
        return Err(err(TensorError::Segment));
    }
    let is_external = match t.data_location.unwrap_or(0) {
        x if x == DataLocation::Default as i32 => false,
        x if x == DataLocation::External as i32 => true,
        other => return Err(err(TensorError::BadLocation(other))),
    };
    let mut fields: Vec<&'static str> = Vec::new();
    if is_external {
        fields.push("external_data");
    }
    if t.raw_data.is_some() {
        fields.push("raw_data");
    }
    for (set, name) in [
        (!t.float_data.is_empty(), "float_data"),
        (!t.int32_data.is_empty(), "int32_data"),
        (!t.int64_data.is_empty(), "int64_data"),
        (!t.double_data.is_empty(), "double_data"),
        (!t.uint64_data.is_empty(), "uint64_data"),
        (!t.string_data.is_empty(), "string_data"),
    ] {
        if set {
            fields.push(name);
        }
    }
    if let [first, second, ..] = fields[..] {
        return Err(err(TensorError::TwoDataFields { first, second }));
    }
    // numel * size cannot overflow: numel <= max_tensor_elements (a usize) and size <= 8, but
    // check anyway rather than rely on the default limit.
    let expected_bytes = numel.checked_mul(dtype.size() as u64).ok_or_else(|| {
        err(TensorError::ShapeOverflow {
            shape: format!("{shape:?}"),
        })
    })?;
    let data = match fields.first().copied() {
        None if numel == 0 => empty_data(dtype),
        None => return Err(err(TensorError::NoData { expected: numel })),
        Some("external_data") => {
            let bytes = external.read(context, &t.external_data, expected_bytes)?;
            from_raw(dtype, &bytes).map_err(err)?
        }
        Some("raw_data") => {
            let raw = t.raw_data.as_deref().unwrap_or_default();
            if (raw.len() as u64) < expected_bytes {
                return Err(err(TensorError::RawTooShort {
                    actual: raw.len(),
                    expected: expected_bytes,
                }));
            }
            if raw.len() as u64 != expected_bytes {
                return Err(err(TensorError::RawWrongLength {
                    actual: raw.len(),
                    expected: expected_bytes,
                }));
            }
            from_raw(dtype, raw).map_err(err)?
        }
        Some(field) => from_typed(t, dtype, field, numel).map_err(err)?,
    };
    Tensor::new(dtype, shape, data)
        .ok_or_else(|| ImportError::Bug(format!("{context}: decoded data does not match its type")))
}

fn empty_data(dtype: DType) -> Data {
    if dtype.is_float() {
        Data::F32(Vec::new())
    } else if dtype == DType::Bool {
        Data::Bool(Vec::new())
    } else {
        Data::I64(Vec::new())
    }
}

/// Exact conversion of an IEEE half to f32.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    if exp == 0 {
        // Zero or subnormal: mant * 2^-24, exact in f32.
        let v = mant as f32 * (1.0 / 16_777_216.0);
        return if sign != 0 { -v } else { v };
    }
    let bits = if exp == 31 {
        sign | 0x7f80_0000 | (mant << 13)
    } else {
        sign | ((exp + 112) << 23) | (mant << 13)
    };
    f32::from_bits(bits)
}

fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// f32 to IEEE half, rounding to nearest even (exact for values widened from a half).
pub(crate) fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    // Rounds `m >> shift` to nearest even.
    let round = |m: u32, shift: u32| -> u32 {
        let (q, rem, half) = (m >> shift, m & ((1 << shift) - 1), 1 << (shift - 1));
        q + u32::from(rem > half || (rem == half && q & 1 == 1))
    };
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal half (or zero): units of 2^-24.
        if e < -10 {
            return sign;
        }
        return sign | round(man | 0x80_0000, (14 - e) as u32) as u16;
    }
    // A carry out of the mantissa bumps the exponent (up to infinity), which is right.
    sign | round(((e as u32) << 23) | man, 13) as u16
}

/// f32 to bfloat16, rounding to nearest even.
pub(crate) fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    let (q, rem) = (b >> 16, b & 0xffff);
    (q + u32::from(rem > 0x8000 || (rem == 0x8000 && q & 1 == 1))) as u16
}

/// Little-endian raw bytes (length already checked to be numel * size) to storage.
fn from_raw(dtype: DType, raw: &[u8]) -> Result<Data, TensorError> {
    fn chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    Ok(match dtype {
        DType::F32 => Data::F32(chunks::<4>(raw).map(f32::from_le_bytes).collect()),
        DType::F64 => Data::F32(
            chunks::<8>(raw)
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
        ),
        DType::F16 => Data::F32(
            chunks::<2>(raw)
                .map(|b| f16_to_f32(u16::from_le_bytes(b)))
                .collect(),
        ),
        DType::BF16 => Data::F32(
            chunks::<2>(raw)
                .map(|b| bf16_to_f32(u16::from_le_bytes(b)))
                .collect(),
        ),
        DType::I64 => Data::I64(chunks::<8>(raw).map(i64::from_le_bytes).collect()),
        DType::I32 => Data::I64(
            chunks::<4>(raw)
                .map(|b| i64::from(i32::from_le_bytes(b)))
                .collect(),
        ),
        DType::I16 => Data::I64(
            chunks::<2>(raw)
                .map(|b| i64::from(i16::from_le_bytes(b)))
                .collect(),
        ),
        DType::I8 => Data::I64(raw.iter().map(|&b| i64::from(b as i8)).collect()),
        DType::U8 => Data::I64(raw.iter().map(|&b| i64::from(b)).collect()),
        DType::U16 => Data::I64(
            chunks::<2>(raw)
                .map(|b| i64::from(u16::from_le_bytes(b)))
                .collect(),
        ),
        DType::U32 => Data::I64(
            chunks::<4>(raw)
                .map(|b| i64::from(u32::from_le_bytes(b)))
                .collect(),
        ),
        DType::U64 => Data::I64(
            chunks::<8>(raw)
                .map(|b| {
                    let v = u64::from_le_bytes(b);
                    i64::try_from(v).map_err(|_| TensorError::OutOfRange {
                        value: v.to_string(),
                        dtype: "u64".into(),
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        DType::Bool => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
    })
}

/// Values from the typed field `field`, which must be the one ONNX assigns to `dtype`.
fn from_typed(
    t: &TensorProto,
    dtype: DType,
    field: &'static str,
    numel: u64,
) -> Result<Data, TensorError> {
    let wrong = || TensorError::WrongField {
        dtype: dtype.name().to_string(),
        field,
    };
    let count = |actual: usize| -> Result<(), TensorError> {
        if actual as u64 == numel {
            Ok(())
        } else {
            Err(TensorError::TypedCount {
                field,
                actual,
                expected: numel,
            })
        }
    };
    let range = |v: i64| TensorError::OutOfRange {
        value: v.to_string(),
        dtype: dtype.name().to_string(),
    };
    match field {
        "float_data" if dtype == DType::F32 => {
            count(t.float_data.len())?;
            Ok(Data::F32(t.float_data.clone()))
        }
        "double_data" if dtype == DType::F64 => {
            count(t.double_data.len())?;
            Ok(Data::F32(t.double_data.iter().map(|&v| v as f32).collect()))
        }
        "int64_data" if dtype == DType::I64 => {
            count(t.int64_data.len())?;
            Ok(Data::I64(t.int64_data.clone()))
        }
        "uint64_data" if matches!(dtype, DType::U32 | DType::U64) => {
            count(t.uint64_data.len())?;
            let max = if dtype == DType::U32 {
                u64::from(u32::MAX)
            } else {
                i64::MAX as u64
            };
            let values = t
                .uint64_data
                .iter()
                .map(|&v| {
                    if v <= max {
                        Ok(v as i64)
                    } else {
                        Err(TensorError::OutOfRange {
                            value: v.to_string(),
                            dtype: dtype.name().to_string(),
                        })
                    }
                })
                .collect::<Result<_, _>>()?;
            Ok(Data::I64(values))
        }
        "int32_data" => {
            count(t.int32_data.len())?;
            let ints = &t.int32_data;
            let (lo, hi): (i64, i64) = match dtype {
                DType::I32 => (i32::MIN.into(), i32::MAX.into()),
                DType::I16 => (i16::MIN.into(), i16::MAX.into()),
                DType::I8 => (i8::MIN.into(), i8::MAX.into()),
                DType::U8 => (0, u8::MAX.into()),
                DType::U16 | DType::F16 | DType::BF16 => (0, u16::MAX.into()),
                DType::Bool => (0, 1),
                _ => return Err(wrong()),
            };
            if let Some(&bad) = ints
                .iter()
                .find(|&&v| i64::from(v) < lo || i64::from(v) > hi)
            {
                return Err(range(bad.into()));
            }
            Ok(match dtype {
                DType::F16 => Data::F32(ints.iter().map(|&v| f16_to_f32(v as u16)).collect()),
                DType::BF16 => Data::F32(ints.iter().map(|&v| bf16_to_f32(v as u16)).collect()),
                DType::Bool => Data::Bool(ints.iter().map(|&v| v != 0).collect()),
                _ => Data::I64(ints.iter().map(|&v| i64::from(v)).collect()),
            })
        }
        _ => Err(wrong()),
    }
}

/// Context string for an initializer.
pub(crate) fn initializer_context(name: &str) -> String {
    format!("initializer '{}'", shown(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_to_onnx_inverts_dtype_from_onnx() {
        for d in [
            DType::F32,
            DType::F16,
            DType::BF16,
            DType::F64,
            DType::I64,
            DType::I32,
            DType::I16,
            DType::I8,
            DType::U8,
            DType::U16,
            DType::U32,
            DType::U64,
            DType::Bool,
        ] {
            assert_eq!(dtype_from_onnx(dtype_to_onnx(d) as i32).unwrap(), d);
        }
    }

    #[test]
    fn f32_to_half_inverts_the_widening_and_rounds_to_even() {
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if !x.is_nan() {
                assert_eq!(f32_to_f16(x), h, "f16 {h:#06x}");
            }
            let y = bf16_to_f32(h);
            if !y.is_nan() {
                assert_eq!(f32_to_bf16(y), h, "bf16 {h:#06x}");
            }
        }
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
        // Ties: 1 + 2^-11 is halfway between 0x3c00 and 0x3c01 -> even; 1 + 3 * 2^-11 -> 0x3c02.
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(65520.0), 0x7c00, "rounds up to infinity");
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0, "tie to even zero");
        assert_eq!(f32_to_f16(1.5 * 2f32.powi(-24)), 2);
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
    }

    #[test]
    fn f16_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
    }
}
