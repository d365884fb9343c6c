//! Typed access to a node's attributes, with errors naming the attribute and both types.

use super::error::{shown, NodeError};
use super::proto::attribute_proto::AttributeType;
use super::proto::{AttributeProto, TensorProto};

/// The declared type of an attribute, or the one implied by the field that is set when an old
/// exporter left `type` unset.
pub(crate) fn attr_type(a: &AttributeProto) -> Option<AttributeType> {
    if let Some(t) = a.r#type.and_then(|t| AttributeType::try_from(t).ok()) {
        if t != AttributeType::Undefined {
            return Some(t);
        }
    }
    if a.f.is_some() {
        Some(AttributeType::Float)
    } else if a.i.is_some() {
        Some(AttributeType::Int)
    } else if a.s.is_some() {
        Some(AttributeType::String)
    } else if a.t.is_some() {
        Some(AttributeType::Tensor)
    } else if a.g.is_some() {
        Some(AttributeType::Graph)
    } else if !a.floats.is_empty() {
        Some(AttributeType::Floats)
    } else if !a.ints.is_empty() {
        Some(AttributeType::Ints)
    } else if !a.strings.is_empty() {
        Some(AttributeType::Strings)
    } else {
        None
    }
}

fn type_name(a: &AttributeProto) -> String {
    attr_type(a)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|| "UNDEFINED".into())
}

/// A node's attributes.
#[derive(Clone, Copy)]
pub(crate) struct Attrs<'a> {
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(list: &'a [AttributeProto]) -> Self {
        Attrs { list }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name.as_deref() == Some(name))
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn typed(
        &self,
        name: &str,
        want: AttributeType,
    ) -> Result<Option<&'a AttributeProto>, NodeError> {
        let Some(a) = self.get(name) else {
            return Ok(None);
        };
        match attr_type(a) {
            Some(t) if t == want => Ok(Some(a)),
            // An empty list with no declared type fits any list type.
            None if matches!(
                want,
                AttributeType::Ints | AttributeType::Floats | AttributeType::Strings
            ) =>
            {
                Ok(Some(a))
            }
            _ => Err(NodeError::AttributeType {
                attr: shown(name),
                expected: want.as_str_name(),
                actual: type_name(a),
            }),
        }
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, NodeError> {
        Ok(self
            .typed(name, AttributeType::Int)?
            .map(|a| a.i.unwrap_or(0)))
    }

    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64, NodeError> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// An INT attribute that must be 0 or 1.
    pub(crate) fn bool_or(&self, name: &str, default: bool) -> Result<bool, NodeError> {
        match self.int(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(NodeError::BadAttribute {
                attr: name.into(),
                detail: format!("{v} is not 0 or 1"),
            }),
        }
    }

    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, NodeError> {
        Ok(self
            .typed(name, AttributeType::Float)?
            .map(|a| a.f.unwrap_or(0.0)))
    }

    pub(crate) fn float_or(&self, name: &str, default: f32) -> Result<f32, NodeError> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub(crate) fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, NodeError> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.as_slice()))
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, NodeError> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.as_slice()))
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, NodeError> {
        Ok(self
            .typed(name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(a.s.as_deref().unwrap_or_default()).into_owned()))
    }

    pub(crate) fn string_or(&self, name: &str, default: &str) -> Result<String, NodeError> {
        Ok(self.string(name)?.unwrap_or_else(|| default.to_string()))
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, NodeError> {
        match self.typed(name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(a) => {
                a.t.as_ref()
                    .map(Some)
                    .ok_or_else(|| NodeError::BadAttribute {
                        attr: name.into(),
                        detail: "TENSOR attribute without a tensor".into(),
                    })
            }
        }
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.list.iter().map(|a| a.name.as_deref().unwrap_or(""))
    }
}

/// Converts non-negative INTS into usizes, naming the attribute on failure.
pub(crate) fn to_usizes(attr: &str, values: &[i64]) -> Result<Vec<usize>, NodeError> {
    values
        .iter()
        .map(|&v| {
            usize::try_from(v).map_err(|_| NodeError::BadAttribute {
                attr: attr.into(),
                detail: format!("negative value {v}"),
            })
        })
        .collect()
}
