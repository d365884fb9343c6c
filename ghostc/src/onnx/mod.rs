//! ONNX front end: the only module that sees protobuf types.
//!
//! An ONNX file is untrusted input, so import runs in stages that each bound what the next one
//! can cost (see `shared/design/bad-inputs.md` for the catalogue of hostile inputs):
//!
//! 1. `scan`: a wire-format pre-scan of the raw bytes that counts nodes and sub-messages and
//!    measures graph nesting *before* prost allocates anything, so a small file declaring
//!    millions of empty nodes fails fast instead of expanding ~80x in memory.
//! 2. prost decodes the `ModelProto` (types generated from the vendored `onnx.proto`, see
//!    [`proto`]); then the model header is checked (IR version, opset imports, name lengths).
//! 3. `function` inlines model-local functions (the dynamo exporter emits them) into one flat
//!    node list, renaming their internal values and resolving attribute references.
//! 4. `tensor` turns initializers and `Constant` values into [`crate::ir::Tensor`]s, with exact
//!    length checks before any allocation; `external` reads external data confined to the
//!    model's folder.
//! 5. `import` pins the input shapes (`signature`), orders the nodes topologically (`topo`:
//!    Kahn, iterative), and converts each node through the op table in `ops` into a canonical
//!    [`crate::ir::Op`] whose structural parameters (Reshape's shape, Slice bounds, axes,
//!    pads...) come from constant inputs. Nodes whose inputs are all constant are evaluated with
//!    the reference interpreter and become constants, which is how
//!    `Shape -> Gather -> Concat -> Reshape` chains vanish once the input shapes are pinned.
//!
//! Opset differences (attributes that became inputs, changed defaults) are normalized inside
//! each op's importer, so the IR never sees an opset number. Supported: default-domain opsets
//! [`MIN_OPSET`] to [`MAX_OPSET`].
//!
//! Dynamic batch rule: when the model has exactly one input and its leading dim is symbolic
//! (`dim_param` or missing), and the user either leaves that dim unpinned or pins it to 1, the
//! graph is built for batch 1 and [`crate::ir::Graph::dynamic_batch`] is set. Pinning it to
//! N > 1 builds a static batch-N graph. Every other symbolic dim must be pinned through
//! [`ImportOptions::shapes`].

mod attr;
mod error;
mod external;
mod function;
mod import;
mod ops;
pub mod proto;
mod scan;
mod signature;
pub(crate) mod tensor;
mod topo;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

pub use error::{ImportError, LimitSpecError, NodeError, TensorError, UnsupportedNode};
pub use ops::supported_ops;

use crate::ir;

/// Lowest default-domain opset the importer accepts.
pub const MIN_OPSET: i64 = 11;
/// Highest default-domain opset the importer accepts (the vendored onnx.proto's release).
pub const MAX_OPSET: i64 = 28;
/// Highest ONNX IR version accepted (`IR_VERSION` of the vendored onnx.proto).
pub const MAX_IR_VERSION: i64 = 14;

/// Resource limits for untrusted models. Every limit error names the field it hit. Each can be
/// set by name: `ghostc --limit max_nodes=N` on every subcommand, [`Limits::set`] /
/// [`Limits::apply`], `ghostc::Builder::limits`, and the proc-macro's `limit = "max_nodes=N"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Size of the .onnx file (the protobuf itself, external data excluded).
    pub max_file_bytes: u64,
    /// Nodes in the main graph, in all nested subgraphs and functions, and after inlining.
    pub max_nodes: usize,
    /// Protobuf sub-messages inside graphs and functions (nodes, attributes, tensors, value
    /// infos): bounds the memory prost can be made to allocate from a small file.
    pub max_messages: usize,
    /// Nesting of messages (graph -> node -> attribute -> graph ...) and of function calls.
    pub max_nesting_depth: usize,
    /// Elements of any single tensor: initializer, constant, or node output.
    pub max_tensor_elements: usize,
    /// Total elements a single constant-folded node may produce; larger results stay nodes.
    pub max_fold_elements: usize,
    /// Bytes in any name (node, value, tensor, attribute, op type, domain). Names never become
    /// identifiers, so long ones are harmless; the default (16 MiB) only stops absurd ones.
    pub max_name_len: usize,
    /// Total bytes read from external data files.
    pub max_external_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 1 << 30,
            max_nodes: 100_000,
            max_messages: 250_000,
            max_nesting_depth: 64,
            max_tensor_elements: 1 << 28,
            max_fold_elements: 1 << 20,
            max_name_len: 16 << 20,
            max_external_bytes: 4 << 30,
        }
    }
}

impl Limits {
    /// The limits' names (their field names), as `--limit NAME=N` spells them.
    pub const NAMES: [&'static str; 8] = [
        "max_file_bytes",
        "max_nodes",
        "max_messages",
        "max_nesting_depth",
        "max_tensor_elements",
        "max_fold_elements",
        "max_name_len",
        "max_external_bytes",
    ];

    /// Sets the limit called `name` (a field name) to `value`, a non-negative integer (`_`
    /// separators allowed, e.g. `16_777_216`).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), LimitSpecError> {
        let bad = || LimitSpecError::BadValue {
            name: error::shown(name),
            value: error::shown(value),
        };
        let digits: String = value.trim().chars().filter(|&c| c != '_').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let as_usize = || usize::try_from(n).map_err(|_| bad());
        match name.trim() {
            "max_file_bytes" => self.max_file_bytes = n,
            "max_nodes" => self.max_nodes = as_usize()?,
            "max_messages" => self.max_messages = as_usize()?,
            "max_nesting_depth" => self.max_nesting_depth = as_usize()?,
            "max_tensor_elements" => self.max_tensor_elements = as_usize()?,
            "max_fold_elements" => self.max_fold_elements = as_usize()?,
            "max_name_len" => self.max_name_len = as_usize()?,
            "max_external_bytes" => self.max_external_bytes = n,
            _ => {
                return Err(LimitSpecError::Unknown {
                    name: error::shown(name),
                })
            }
        }
        Ok(())
    }

    /// Applies a comma-separated list of `NAME=N` settings, e.g. `max_nodes=1000,max_name_len=64`.
    pub fn apply(&mut self, spec: &str) -> Result<(), LimitSpecError> {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| LimitSpecError::Syntax(error::shown(item)))?;
            self.set(name, value)?;
        }
        Ok(())
    }
}

/// How to import a model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// User-pinned shapes of graph inputs, by ONNX input name. Required for every dynamic dim
    /// except a dynamic batch (see the module docs).
    pub shapes: BTreeMap<String, Vec<usize>>,
    pub limits: Limits,
}

/// Reads an ONNX file and imports it. External data is resolved relative to the file's folder.
pub fn load_model(path: &Path, opts: &ImportOptions) -> Result<ir::Graph, ImportError> {
    let bytes = read_model_file(path, &opts.limits)?;
    import_bytes(&bytes, Some(model_dir(path)), opts)
}

/// Reads a model file, refusing one larger than `limits.max_file_bytes` before reading it (and
/// reading at most one byte more, in case it grows meanwhile). One open of the file.
pub fn read_model_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, ImportError> {
    let io_err = |source| ImportError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let limit = limits.max_file_bytes;
    if size > limit {
        return Err(ImportError::limit(
            "max_file_bytes",
            size,
            limit,
            "model file size in bytes",
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    Ok(bytes)
}

/// The folder a model's external data paths are relative to: the file's folder (`.` for a bare
/// file name).
pub fn model_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Imports an ONNX model from memory. `model_dir` is the folder external data paths are
/// relative to; without it a model with external data is rejected.
pub fn import_bytes(
    bytes: &[u8],
    model_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<ir::Graph, ImportError> {
    let limits = &opts.limits;
    let size = bytes.len() as u64;
    if size > limits.max_file_bytes {
        return Err(ImportError::limit(
            "max_file_bytes",
            size,
            limits.max_file_bytes,
            "model file size in bytes",
        ));
    }
    scan::prescan(bytes, limits)?;
    let model = <proto::ModelProto as prost::Message>::decode(bytes)
        .map_err(|e| ImportError::InvalidProtobuf(compact_decode_error(&e)))?;
    import::import_model(model, model_dir, opts)
}

/// prost's decode error lists every enclosing field, innermost first; hostile nesting makes
/// that thousands of characters. Keeps the three innermost and three outermost fields.
fn compact_decode_error(e: &prost::DecodeError) -> String {
    const PREFIX: &str = "failed to decode Protobuf message: ";
    let text = e.to_string();
    let Some(body) = text.strip_prefix(PREFIX) else {
        return text;
    };
    let parts: Vec<&str> = body.split(": ").collect();
    let n = parts.len();
    if n <= 10 {
        return text;
    }
    format!(
        "{PREFIX}{}: ... {} more fields ...: {}",
        parts[..3].join(": "),
        n - 7,
        parts[n - 4..].join(": ")
    )
}
