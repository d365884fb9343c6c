//! Tensor values and their static types.
//!
//! Constants (weights, folded shape arithmetic) and the interpreter's working values are both
//! [`Tensor`]s. Integer types share one `i64` storage and floating types one `f32` storage: the
//! [`DType`] tag keeps the declared type for casts and verification, while the arithmetic stays
//! simple. ghostc computes in f32 only; integers exist for shape subgraphs that fold away.

use std::fmt;

/// Element type of a value, as declared by the model.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl DType {
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }
    pub fn is_int(self) -> bool {
        !self.is_float() && self != DType::Bool
    }
    /// Size of one element in bytes, as stored in ONNX raw_data.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bool => "bool",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Static type of a value: element type and a fully known shape.
///
/// Shapes are pinned at import time (dynamic dims come from the user); a dynamic batch is
/// recorded on the [`crate::ir::Graph`], and the graph is built for one image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Vec<usize>) -> Self {
        TensorType { dtype, shape }
    }
    pub fn f32(shape: Vec<usize>) -> Self {
        TensorType::new(DType::F32, shape)
    }
    /// Number of elements (the product of the dims; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.dtype, fmt_shape(&self.shape))
    }
}

/// `1x3x224x224` style formatting, the same spelling the CLI's `--shape` takes.
pub fn fmt_shape(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Element storage. Floating dtypes are held as f32, integer dtypes as i64.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dense, row-major tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub ty: TensorType,
    pub data: Data,
}

impl Tensor {
    /// Builds a tensor, checking that `data` holds exactly `shape.product()` elements of a
    /// storage class matching `dtype`. Returns `None` otherwise.
    pub fn new(dtype: DType, shape: Vec<usize>, data: Data) -> Option<Tensor> {
        let ty = TensorType::new(dtype, shape);
        let storage_ok = match &data {
            Data::F32(_) => dtype.is_float(),
            Data::I64(_) => dtype.is_int(),
            Data::Bool(_) => dtype == DType::Bool,
        };
        (storage_ok && data.len() == ty.numel()).then_some(Tensor { ty, data })
    }
    pub fn from_f32(shape: Vec<usize>, values: Vec<f32>) -> Option<Tensor> {
        Tensor::new(DType::F32, shape, Data::F32(values))
    }
    pub fn from_i64(shape: Vec<usize>, values: Vec<i64>) -> Option<Tensor> {
        Tensor::new(DType::I64, shape, Data::I64(values))
    }
    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor {
            ty: TensorType::f32(vec![]),
            data: Data::F32(vec![v]),
        }
    }
    pub fn shape(&self) -> &[usize] {
        &self.ty.shape
    }
    pub fn dtype(&self) -> DType {
        self.ty.dtype
    }
    pub fn numel(&self) -> usize {
        self.ty.numel()
    }
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            _ => None,
        }
    }
    /// Values converted to i64 whatever the storage (floats truncated, bools 0/1): for reading
    /// shape-like parameters such as Reshape's shape or Slice's bounds.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
            Data::Bool(v) => v.iter().map(|&b| b as i64).collect(),
        }
    }
    /// Values converted to f32 whatever the storage.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Bool(v) => v.iter().map(|&b| b as u8 as f32).collect(),
        }
    }
}
