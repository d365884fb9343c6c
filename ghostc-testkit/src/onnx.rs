//! Building ONNX models with ghostc's prost types (no Python, no protoc): nodes, attributes,
//! tensors, value infos and a [`Model`] builder. Test suites and the fuzz generators build
//! valid models and the hostile cases of `docs/bad-inputs.md` from these.
//!
//! Deliberately not done here: no shape inference and no checking; a builder writes exactly
//! what it is told, malformed values included (that is the point of many cases).

pub use ghostc::onnx::proto;
use proto::attribute_proto::AttributeType;
use proto::tensor_proto::{DataLocation, DataType};
use proto::tensor_shape_proto::{dimension, Dimension};
use proto::{
    type_proto, AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

use prost::Message;

/// A default-domain node named `{op}_{first output}`.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: Some(format!("{op}_{}", outputs.first().copied().unwrap_or(""))),
        attribute: attrs,
        ..Default::default()
    }
}

/// `n` renamed.
pub fn named(mut n: NodeProto, name: &str) -> NodeProto {
    n.name = Some(name.into());
    n
}

/// An attribute with a name and a type and no value.
pub fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

pub fn a_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attr(name, AttributeType::Int)
    }
}

pub fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub fn a_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        ..attr(name, AttributeType::Float)
    }
}

pub fn a_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

pub fn a_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..attr(name, AttributeType::String)
    }
}

pub fn a_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(t),
        ..attr(name, AttributeType::Tensor)
    }
}

/// An attribute of a function body that refers to the caller's attribute `referenced`.
pub fn a_ref(name: &str, referenced: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        ref_attr_name: Some(referenced.into()),
        ..attr(name, ty)
    }
}

/// A tensor with exactly these `raw_data` bytes.
pub fn raw_tensor(name: &str, dtype: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(dtype as i32),
        dims: dims.to_vec(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// An f32 tensor stored as little-endian `raw_data`.
pub fn f32_raw(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    raw_tensor(name, DataType::Float, dims, raw)
}

/// An f32 tensor stored in `float_data`.
pub fn f32_data(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        dims: dims.to_vec(),
        float_data: values,
        ..Default::default()
    }
}

/// An i64 tensor stored in `int64_data`.
pub fn i64_tensor(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Int64 as i32),
        dims: dims.to_vec(),
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

/// A float tensor whose data is in an external file: an optional `location` entry, then the
/// `extra` key/value entries as given.
pub fn external_tensor(
    name: &str,
    location: Option<&str>,
    extra: &[(&str, &str)],
    dims: &[i64],
) -> TensorProto {
    let entry = |k: &str, v: &str| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    };
    let mut entries: Vec<_> = location.map(|l| entry("location", l)).into_iter().collect();
    entries.extend(extra.iter().map(|(k, v)| entry(k, v)));
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        dims: dims.to_vec(),
        data_location: Some(DataLocation::External as i32),
        external_data: entries,
        ..Default::default()
    }
}

/// One dim of a declared shape.
#[derive(Clone, Copy, Debug)]
pub enum Dim {
    Value(i64),
    /// Symbolic (`dim_param`).
    Param(&'static str),
    /// Neither value nor name.
    Unknown,
}

/// A tensor-typed value info of element type `elem` (a [`DataType`] as i32, so invalid codes
/// can be written too) and shape `dims`.
pub fn value_info(name: &str, elem: i32, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: match *d {
                Dim::Value(v) => Some(dimension::Value::DimValue(v)),
                Dim::Param(p) => Some(dimension::Value::DimParam(p.to_string())),
                Dim::Unknown => None,
            },
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A tensor-typed value info with no shape.
pub fn typed(name: &str, elem: i32) -> ValueInfoProto {
    ValueInfoProto {
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: None,
            })),
            ..Default::default()
        }),
        ..untyped(name)
    }
}

/// A value info of static dims (negative ones too: they are the point of some cases).
pub fn tensor_info(name: &str, dtype: DataType, dims: &[i64]) -> ValueInfoProto {
    let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Value(d)).collect();
    value_info(name, dtype as i32, &dims)
}

/// A value declared by name only (no type).
pub fn untyped(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

pub fn opset(domain: &str, version: i64) -> OperatorSetIdProto {
    OperatorSetIdProto {
        domain: Some(domain.into()),
        version: Some(version),
    }
}

/// A model under construction: IR version 8, one graph named `g`, the default-domain opset
/// given to [`Model::new`].
#[derive(Clone, Debug)]
pub struct Model {
    pub proto: ModelProto,
}

impl Model {
    pub fn new(opset_version: i64) -> Model {
        Model {
            proto: ModelProto {
                ir_version: Some(8),
                opset_import: vec![opset("", opset_version)],
                graph: Some(GraphProto {
                    name: Some("g".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    }

    pub fn graph_mut(&mut self) -> &mut GraphProto {
        self.proto.graph.get_or_insert_with(GraphProto::default)
    }

    /// A float input of static shape.
    pub fn input(mut self, name: &str, dims: &[i64]) -> Model {
        self.graph_mut()
            .input
            .push(tensor_info(name, DataType::Float, dims));
        self
    }

    pub fn input_info(mut self, info: ValueInfoProto) -> Model {
        self.graph_mut().input.push(info);
        self
    }

    pub fn init(mut self, t: TensorProto) -> Model {
        self.graph_mut().initializer.push(t);
        self
    }

    pub fn node(mut self, n: NodeProto) -> Model {
        self.graph_mut().node.push(n);
        self
    }

    /// An output declared by name only.
    pub fn output(mut self, name: &str) -> Model {
        self.graph_mut().output.push(untyped(name));
        self
    }

    pub fn output_info(mut self, info: ValueInfoProto) -> Model {
        self.graph_mut().output.push(info);
        self
    }

    pub fn function(mut self, f: FunctionProto) -> Model {
        self.proto.functions.push(f);
        self
    }

    /// Imports another opset (after the ones already there).
    pub fn opset(mut self, domain: &str, version: i64) -> Model {
        self.proto.opset_import.push(opset(domain, version));
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }
}
