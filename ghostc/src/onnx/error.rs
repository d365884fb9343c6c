//! Import errors. Each variant says whether it is the user's (a malformed or unsupported model,
//! a missing option) or ghostc's (a bug). Names from the model are shown escaped and truncated
//! (see [`shown`]), so a hostile name cannot forge lines in a message or flood a terminal.

use std::fmt;

use crate::ir::infer::InferError;

/// An ONNX name made safe for messages: control characters and quotes escaped, bidi controls
/// escaped, at most 80 characters.
pub(crate) fn shown(name: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::new();
    for (n, c) in name.chars().enumerate() {
        if n == MAX {
            out.push_str("...");
            break;
        }
        match c {
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            _ => out.extend(c.escape_debug()),
        }
    }
    out
}

/// Why a model could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// User error: the model file could not be read.
    #[error("cannot read '{path}'")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// User error: the bytes are not a protobuf `ModelProto` (truncated, random, not ONNX).
    #[error("not a valid ONNX protobuf: {0}")]
    InvalidProtobuf(String),
    /// User error: the model decodes but has no graph (an empty file decodes this way).
    #[error("model has no graph")]
    NoGraph,
    /// User error (or a limit to raise): a configurable resource limit was hit. `limit` is
    /// the [`super::Limits`] field, which the message names with how to set it.
    #[error("{what}: {actual} exceeds the limit {limit} = {max} (set with --limit {limit}=N / Limits::{limit})")]
    Limit {
        limit: &'static str,
        what: String,
        actual: u64,
        max: u64,
    },
    /// User error: the model header is unusable (IR version, opset imports).
    #[error("{0}")]
    Model(String),
    /// User error: an initializer, constant or attribute tensor is malformed.
    #[error("{context}: {error}")]
    Tensor { context: String, error: TensorError },
    /// User error: external tensor data is missing, malformed or outside the model's folder.
    #[error("{context}: external data '{location}': {detail}")]
    ExternalData {
        context: String,
        location: String,
        detail: String,
    },
    /// User error: a graph input's type or shape is unusable, or the pinned shapes disagree.
    #[error("input '{input}': {detail}")]
    Input { input: String, detail: String },
    /// User error: a graph output is missing or disagrees with what ghostc computed.
    #[error("graph output '{output}': {detail}")]
    Output { output: String, detail: String },
    /// User error: a value is defined twice (by two nodes, or by a node and an initializer).
    #[error("value '{value}' is defined twice: {first} and {second}")]
    DuplicateValue {
        value: String,
        first: String,
        second: String,
    },
    /// User error: a node reads a value that nothing defines.
    #[error("node '{node}' ({op_type}): input '{value}' is produced by no node, initializer or graph input")]
    UndefinedValue {
        node: String,
        op_type: String,
        value: String,
    },
    /// User error: the graph has a cycle.
    #[error("graph has a cycle through node '{node}' ({op_type})")]
    Cycle { node: String, op_type: String },
    /// User error: a model-local function is malformed, recursive or nested too deeply.
    #[error("function '{function}': {detail}")]
    Function { function: String, detail: String },
    /// User error: a node is malformed (arity, attributes, non-constant parameters, shapes).
    #[error("node '{node}' ({op_type}): {error}")]
    Node {
        node: String,
        op_type: String,
        error: NodeError,
    },
    /// User error: ops ghostc does not support; lists every such node in the model.
    #[error("{} unsupported ONNX node{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, UnsupportedList(.0))]
    Unsupported(Vec<UnsupportedNode>),
    /// ghostc bug: an internal invariant broke.
    #[error("internal error (ghostc bug): {0}")]
    Bug(String),
}

impl ImportError {
    pub(crate) fn limit(
        limit: &'static str,
        actual: u64,
        max: u64,
        what: impl Into<String>,
    ) -> Self {
        ImportError::Limit {
            limit,
            what: what.into(),
            actual,
            max,
        }
    }
    pub(crate) fn model(msg: impl Into<String>) -> Self {
        ImportError::Model(msg.into())
    }
}

/// A node whose op ghostc cannot import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedNode {
    pub node: String,
    pub op_type: String,
    /// `ai.onnx` for the default domain.
    pub domain: String,
    /// The model's opset for that domain, if it imports one.
    pub opset: Option<i64>,
    /// Why, when the op type is known but this use of it is not supported.
    pub reason: Option<String>,
}

impl fmt::Display for UnsupportedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' ({}, domain {}",
            self.node, self.op_type, self.domain
        )?;
        if let Some(v) = self.opset {
            write!(f, " opset {v}")?;
        }
        f.write_str(")")?;
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

struct UnsupportedList<'a>(&'a [UnsupportedNode]);

impl fmt::Display for UnsupportedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// What is wrong with a tensor's encoding. The caller names the tensor.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    #[error("unsupported data_type {code} ({name})")]
    UnsupportedDType { code: i32, name: String },
    #[error("negative dim {dim} at axis {axis}")]
    NegativeDim { axis: usize, dim: i64 },
    #[error("shape [{shape}] overflows")]
    ShapeOverflow { shape: String },
    #[error("{elements} elements exceed the limit max_tensor_elements = {max} (set with --limit max_tensor_elements=N / Limits::max_tensor_elements)")]
    TooLarge { elements: u64, max: u64 },
    #[error("raw_data {actual} bytes, expected {expected}")]
    RawTooShort { actual: usize, expected: u64 },
    #[error("raw_data {actual} bytes, expected exactly {expected} bytes")]
    RawWrongLength { actual: usize, expected: u64 },
    #[error("{field} has {actual} values, expected {expected}")]
    TypedCount {
        field: &'static str,
        actual: usize,
        expected: u64,
    },
    #[error("two data fields set: {first} and {second}")]
    TwoDataFields {
        first: &'static str,
        second: &'static str,
    },
    #[error("data_type {dtype} cannot be stored in {field}")]
    WrongField { dtype: String, field: &'static str },
    #[error("no data for {expected} elements")]
    NoData { expected: u64 },
    #[error("value {value} out of range for {dtype}")]
    OutOfRange { value: String, dtype: String },
    #[error("segmented tensors are not supported")]
    Segment,
    #[error("data_location {0} is not DEFAULT or EXTERNAL")]
    BadLocation(i32),
}

/// What is wrong with a node. The caller names the node and its op type.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("expected {expected} inputs, got {actual}")]
    InputCount { expected: String, actual: usize },
    #[error("expected {expected} outputs, got {actual}")]
    OutputCount { expected: String, actual: usize },
    #[error("required attribute '{attr}' is missing")]
    MissingAttribute { attr: String },
    #[error("attribute '{attr}' has type {actual}, expected {expected}")]
    AttributeType {
        attr: String,
        expected: &'static str,
        actual: String,
    },
    #[error("attribute '{attr}': {detail}")]
    BadAttribute { attr: String, detail: String },
    #[error("input {index} ('{value}') must be a constant (after folding) to set {what}")]
    NotConstant {
        index: usize,
        value: String,
        what: &'static str,
    },
    #[error("input {index} ('{value}'): {detail}")]
    BadInput {
        index: usize,
        value: String,
        detail: String,
    },
    #[error("{what} '{value}' has rank {actual}, expected {expected}")]
    Rank {
        what: &'static str,
        value: String,
        actual: usize,
        expected: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Infer(#[from] InferError),
    #[error("constant folding failed: {0}")]
    Fold(String),
    #[error(
        "output '{value}' has {elements} elements, over the limit max_tensor_elements = {max} (set with --limit max_tensor_elements=N / Limits::max_tensor_elements)"
    )]
    OutputTooLarge {
        value: String,
        elements: u64,
        max: u64,
    },
    #[error("{0}")]
    Tensor(#[from] TensorError),
}

impl NodeError {
    /// A string attribute whose value is not one of `accepted` (which the message lists).
    pub(crate) fn unknown_value(attr: &str, value: &str, accepted: &[&str]) -> Self {
        NodeError::BadAttribute {
            attr: attr.into(),
            detail: format!(
                "unknown value '{}' (expected one of: {})",
                shown(value),
                accepted.join(", ")
            ),
        }
    }
}

/// A bad limit setting (`--limit NAME=N`, the proc-macro's `limit = "NAME=N"`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitSpecError {
    #[error("unknown limit '{name}' (expected one of: {})", super::Limits::NAMES.join(", "))]
    Unknown { name: String },
    #[error("limit {name}: '{value}' is not a non-negative integer")]
    BadValue { name: String, value: String },
    #[error("expected NAME=N (e.g. max_nodes=1000), found '{0}'")]
    Syntax(String),
}
