//! Shape and dtype inference: the output types of an op from its input types.
//!
//! Pure functions of (op, input facts). Constant input data is available for the few ops whose
//! output shape depends on values (Range). The importer calls this for every node; the verifier
//! calls it again after each pass to check that stored types still agree.

use super::{Op, Tensor, TensorType};

/// What is known about one input: its type, and its data when it is a constant.
#[derive(Clone, Copy, Debug)]
pub struct InputFact<'a> {
    pub ty: &'a TensorType,
    pub value: Option<&'a Tensor>,
}

/// Why inference rejected an op's inputs. The caller adds the node's name and op.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferError {
    #[error("expected {expected} inputs, got {actual}")]
    Arity { expected: String, actual: usize },
    #[error("input {input}: expected rank {expected}, got shape [{actual}]")]
    Rank { input: usize, expected: String, actual: String },
    #[error("input {input}: expected dtype {expected}, got {actual}")]
    DType { input: usize, expected: String, actual: String },
    #[error("shapes [{a}] and [{b}] do not broadcast")]
    Broadcast { a: String, b: String },
    #[error("{what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("input {input} must be a constant")]
    NotConstant { input: usize },
}

/// Output types of `op` applied to `inputs`.
pub fn infer(op: &Op, inputs: &[InputFact<'_>]) -> Result<Vec<TensorType>, InferError> {
    let _ = (op, inputs);
    Err(InferError::Invalid { what: "infer", detail: "not implemented yet".into() })
}
