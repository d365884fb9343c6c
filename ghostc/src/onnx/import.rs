//! Building the IR graph from a decoded model: header checks, inputs, initializers,
//! topological order (`topo`), per-node conversion through the op table, constant folding,
//! outputs (their types are read and checked in `signature`).
//!
//! A node importer gets a [`NodeCtx`] and returns an [`ImportedNode`]: an IR op, an alias or
//! constants. The op's output types come from `ir::infer`; an op whose inputs are all constant
//! is folded by the interpreter right here.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::attr::Attrs;
use super::error::{shown, NodeError, UnsupportedNode};
use super::external::ExternalData;
use super::function::{self, normalize_domain, FlatNode};
use super::proto::{GraphProto, ModelProto, NodeProto, ValueInfoProto};
use super::signature::{check_declared, input_type};
use super::tensor::{initializer_context, tensor_from_proto};
use super::topo::topo_order;
use super::{ops, ImportError, ImportOptions, Limits, MAX_IR_VERSION, MAX_OPSET, MIN_OPSET};
use crate::ir::infer::{infer, InputFact};
use crate::ir::{fmt_shape, Graph, Op, Tensor, TensorType, ValueId};

/// What a node importer turns an ONNX node into (the import stage's result for one node).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One short-lived value per node.
pub(crate) enum ImportedNode {
    /// One IR op reading these values (data inputs only; parameters are in the op).
    Op { op: Op, inputs: Vec<ValueId> },
    /// Output 0 is this existing value (Identity, inference Dropout).
    Alias(ValueId),
    /// The outputs are these constants (Constant, Shape).
    Const(Vec<Tensor>),
}

/// An importer's view of the node being converted.
pub(crate) struct NodeCtx<'a> {
    pub name: &'a str,
    pub op_type: &'a str,
    /// Default-domain opset in force for this node.
    pub opset: i64,
    pub proto: &'a NodeProto,
    pub attrs: Attrs<'a>,
    inputs: &'a [Option<ValueId>],
    pub graph: &'a Graph,
    pub limits: &'a Limits,
    external: &'a RefCell<ExternalData>,
}

impl<'a> NodeCtx<'a> {
    /// Number of input slots as written (absent optional inputs count if not trailing).
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }

    pub fn n_outputs(&self) -> usize {
        self.proto.output.len()
    }

    /// Whether output `i` is present and used by name.
    pub fn has_output(&self, i: usize) -> bool {
        self.proto.output.get(i).is_some_and(|s| !s.is_empty())
    }

    pub fn check_inputs(&self, min: usize, max: usize) -> Result<(), NodeError> {
        let n = self.inputs.len();
        if n < min || n > max {
            let expected = if min == max {
                min.to_string()
            } else {
                format!("{min} to {max}")
            };
            return Err(NodeError::InputCount {
                expected,
                actual: n,
            });
        }
        Ok(())
    }

    pub fn input_name(&self, i: usize) -> String {
        shown(self.proto.input.get(i).map(String::as_str).unwrap_or(""))
    }

    /// A required input.
    pub fn input(&self, i: usize) -> Result<ValueId, NodeError> {
        self.opt_input(i).ok_or_else(|| NodeError::BadInput {
            index: i,
            value: self.input_name(i),
            detail: "required input is missing".into(),
        })
    }

    /// An optional input: `None` when absent or "".
    pub fn opt_input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }

    pub fn ty(&self, v: ValueId) -> &'a TensorType {
        &self.graph.value(v).ty
    }

    pub fn input_ty(&self, i: usize) -> Result<&'a TensorType, NodeError> {
        Ok(self.ty(self.input(i)?))
    }

    /// The input's shape, with its rank checked against `expected` when given.
    pub fn input_shape(
        &self,
        i: usize,
        what: &'static str,
        rank: Option<usize>,
    ) -> Result<&'a [usize], NodeError> {
        let shape = &self.input_ty(i)?.shape;
        if let Some(r) = rank {
            if shape.len() != r {
                return Err(NodeError::Rank {
                    what,
                    value: self.input_name(i),
                    actual: shape.len(),
                    expected: r.to_string(),
                });
            }
        }
        Ok(shape)
    }

    /// The constant value of optional input `i`; `None` when absent. Errors when present but
    /// not a constant; `what` says which parameter it sets.
    pub fn const_input(
        &self,
        i: usize,
        what: &'static str,
    ) -> Result<Option<&'a Tensor>, NodeError> {
        let Some(v) = self.opt_input(i) else {
            return Ok(None);
        };
        match self.graph.value(v).constant() {
            Some(t) => Ok(Some(t)),
            None => Err(NodeError::NotConstant {
                index: i,
                value: self.input_name(i),
                what,
            }),
        }
    }

    /// An optional constant integer input as i64 values.
    pub fn const_ints(&self, i: usize, what: &'static str) -> Result<Option<Vec<i64>>, NodeError> {
        let Some(t) = self.const_input(i, what)? else {
            return Ok(None);
        };
        if !t.dtype().is_int() {
            return Err(NodeError::BadInput {
                index: i,
                value: self.input_name(i),
                detail: format!("{what} must be an integer tensor, got {}", t.dtype()),
            });
        }
        Ok(Some(t.to_i64_vec()))
    }

    /// An optional constant scalar (or one-element) input as f32.
    pub fn const_scalar_f32(&self, i: usize, what: &'static str) -> Result<Option<f32>, NodeError> {
        let Some(t) = self.const_input(i, what)? else {
            return Ok(None);
        };
        match t.to_f32_vec().as_slice() {
            [v] => Ok(Some(*v)),
            _ => Err(NodeError::BadInput {
                index: i,
                value: self.input_name(i),
                detail: format!(
                    "{what} must hold one value, got shape [{}]",
                    fmt_shape(t.shape())
                ),
            }),
        }
    }

    /// Decodes a tensor attribute (Constant's `value`, ConstantOfShape's `value`).
    pub fn attr_tensor(&self, attr: &str) -> Result<Option<Tensor>, NodeError> {
        let Some(t) = self.attrs.tensor(attr)? else {
            return Ok(None);
        };
        let context = format!(
            "node '{}' ({}): attribute '{attr}'",
            shown(self.name),
            self.op_type
        );
        let mut external = self
            .external
            .try_borrow_mut()
            .map_err(|_| NodeError::Invalid("external data reader busy".into()))?;
        match tensor_from_proto(t, &context, self.limits, &mut external) {
            Ok(t) => Ok(Some(t)),
            Err(ImportError::Tensor { error, .. }) => Err(NodeError::BadAttribute {
                attr: attr.into(),
                detail: error.to_string(),
            }),
            Err(e) => Err(NodeError::BadAttribute {
                attr: attr.into(),
                detail: e.to_string(),
            }),
        }
    }
}

/// What an ONNX value name refers to during import.
#[derive(Clone, Debug)]
pub(super) enum Slot {
    Value(ValueId),
    /// Produced by an unsupported node, or downstream of one: its node is skipped.
    Poisoned,
    /// An optional output ghostc does not compute (BatchNorm running stats, Dropout mask).
    Unavailable {
        node: String,
    },
}

/// Validates the header and imports the model.
pub(crate) fn import_model(
    model: ModelProto,
    model_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Graph, ImportError> {
    let limits = &opts.limits;
    let graph = model.graph.as_ref().ok_or(ImportError::NoGraph)?;
    match model.ir_version {
        None => {
            return Err(ImportError::model(format!(
                "ir_version is missing (expected 1 to {MAX_IR_VERSION})"
            )))
        }
        Some(v @ ..=0) => {
            return Err(ImportError::model(format!(
                "ir_version {v} is invalid (expected 1 to {MAX_IR_VERSION})"
            )))
        }
        Some(v) if v > MAX_IR_VERSION => {
            return Err(ImportError::model(format!(
                "ir_version {v} is newer than the newest supported ({MAX_IR_VERSION})"
            )))
        }
        _ => {}
    }
    let opsets = function::opset_map(&model.opset_import, "the model")?;
    let default_opset = *opsets.get("").ok_or_else(|| {
        let mut imported: Vec<String> = opsets
            .iter()
            .map(|(d, v)| format!("{} {v}", shown(d)))
            .collect();
        imported.sort();
        ImportError::model(format!(
            "the model has no opset import for the default domain (ai.onnx); it imports: [{}]",
            imported.join(", ")
        ))
    })?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&default_opset) {
        return Err(ImportError::model(format!(
            "default-domain opset {default_opset} is out of the supported range {MIN_OPSET}..={MAX_OPSET}"
        )));
    }
    check_names(&model, limits)?;
    let flat = function::flatten(&model, &opsets, limits)?;
    let external = RefCell::new(ExternalData::new(model_dir, limits));
    let mut builder = Builder {
        g: Graph::new(),
        opts,
        values: HashMap::new(),
        unsupported: Vec::new(),
        external: &external,
    };
    builder.initializers(graph)?;
    builder.inputs(graph)?;
    let order = topo_order(&flat, &builder.values)?;
    for i in order {
        if let Some(node) = flat.get(i) {
            builder.node(node, i)?;
        }
    }
    builder.outputs(graph)?;
    if !builder.unsupported.is_empty() {
        return Err(ImportError::Unsupported(builder.unsupported));
    }
    let mut g = builder.g;
    g.opset_imports = opsets.into_iter().collect();
    g.remove_dead_nodes();
    Ok(g)
}

/// Every name in the model within `max_name_len`.
fn check_names(model: &ModelProto, limits: &Limits) -> Result<(), ImportError> {
    let max = limits.max_name_len;
    let check = |kind: &str, name: &str| -> Result<(), ImportError> {
        if name.len() > max {
            return Err(ImportError::limit(
                "max_name_len",
                name.len() as u64,
                max as u64,
                format!("{kind} name '{}'", shown(name)),
            ));
        }
        Ok(())
    };
    let check_nodes = |nodes: &[NodeProto]| -> Result<(), ImportError> {
        for n in nodes {
            check("node", n.name.as_deref().unwrap_or(""))?;
            check("op type", n.op_type.as_deref().unwrap_or(""))?;
            check("domain", n.domain.as_deref().unwrap_or(""))?;
            for v in n.input.iter().chain(&n.output) {
                check("value", v)?;
            }
            for a in &n.attribute {
                check("attribute", a.name.as_deref().unwrap_or(""))?;
                check(
                    "attribute reference",
                    a.ref_attr_name.as_deref().unwrap_or(""),
                )?;
            }
        }
        Ok(())
    };
    if let Some(g) = &model.graph {
        check_nodes(&g.node)?;
        for t in &g.initializer {
            check("initializer", t.name.as_deref().unwrap_or(""))?;
        }
        for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
            check("value", v.name.as_deref().unwrap_or(""))?;
        }
    }
    for f in &model.functions {
        check("function", f.name.as_deref().unwrap_or(""))?;
        check_nodes(&f.node)?;
        for v in f.input.iter().chain(&f.output).chain(&f.attribute) {
            check("function parameter", v)?;
        }
    }
    Ok(())
}

struct Builder<'a> {
    g: Graph,
    opts: &'a ImportOptions,
    values: HashMap<String, Slot>,
    unsupported: Vec<UnsupportedNode>,
    external: &'a RefCell<ExternalData>,
}

impl<'a> Builder<'a> {
    fn initializers(&mut self, graph: &GraphProto) -> Result<(), ImportError> {
        if let Some(s) = graph.sparse_initializer.first() {
            let name = s
                .values
                .as_ref()
                .and_then(|v| v.name.as_deref())
                .unwrap_or("");
            return Err(ImportError::Tensor {
                context: initializer_context(name),
                error: super::TensorError::UnsupportedDType {
                    code: -1,
                    name: "sparse initializer".into(),
                },
            });
        }
        for t in &graph.initializer {
            let name = t.name.as_deref().unwrap_or("");
            let context = initializer_context(name);
            if name.is_empty() {
                return Err(ImportError::model("an initializer has an empty name"));
            }
            if self.values.contains_key(name) {
                return Err(ImportError::DuplicateValue {
                    value: shown(name),
                    first: "an initializer".into(),
                    second: "another initializer".into(),
                });
            }
            let tensor = {
                let mut ext = self.external.borrow_mut();
                tensor_from_proto(t, &context, &self.opts.limits, &mut ext)?
            };
            let id = self.g.add_const(name, Arc::new(tensor));
            self.values.insert(name.to_string(), Slot::Value(id));
        }
        Ok(())
    }

    fn inputs(&mut self, graph: &GraphProto) -> Result<(), ImportError> {
        // Inputs that are also initializers are constants with a default (IR < 4 style).
        let real: Vec<&ValueInfoProto> = graph
            .input
            .iter()
            .filter(|v| !self.values.contains_key(v.name.as_deref().unwrap_or("")))
            .collect();
        let names: Vec<&str> = real
            .iter()
            .map(|v| v.name.as_deref().unwrap_or(""))
            .collect();
        for pinned in self.opts.shapes.keys() {
            if !names.contains(&pinned.as_str()) {
                return Err(ImportError::Input {
                    input: shown(pinned),
                    detail: format!(
                        "a shape was given for it but the model has no such input (inputs: {})",
                        names
                            .iter()
                            .map(|n| format!("'{}'", shown(n)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        let single = real.len() == 1;
        for info in real {
            let name = info.name.as_deref().unwrap_or("");
            if name.is_empty() {
                return Err(ImportError::model("a graph input has an empty name"));
            }
            if self.values.contains_key(name) {
                return Err(ImportError::DuplicateValue {
                    value: shown(name),
                    first: "a graph input".into(),
                    second: "another graph input".into(),
                });
            }
            let (ty, dynamic_batch) =
                input_type(info, self.opts.shapes.get(name), single, &self.opts.limits)?;
            self.g.dynamic_batch |= dynamic_batch;
            let id = self.g.add_input(name, ty);
            self.values.insert(name.to_string(), Slot::Value(id));
        }
        Ok(())
    }

    fn node(&mut self, flat: &FlatNode, index: usize) -> Result<(), ImportError> {
        let proto = &flat.proto;
        let op_type = proto.op_type.as_deref().unwrap_or("");
        let domain = normalize_domain(proto.domain.as_deref());
        let name = match proto.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{op_type}_{index}"),
        };
        let node_err = |error: NodeError| ImportError::Node {
            node: shown(&name),
            op_type: shown(op_type),
            error,
        };
        let importer = if domain.is_empty() {
            ops::lookup(op_type)
        } else {
            ops::lookup_in(domain, op_type)
        };

        let mut inputs = Vec::with_capacity(proto.input.len());
        let mut poisoned = false;
        for (i, input) in proto.input.iter().enumerate() {
            if input.is_empty() {
                inputs.push(None);
                continue;
            }
            match self.values.get(input.as_str()) {
                Some(Slot::Value(v)) => inputs.push(Some(*v)),
                Some(Slot::Poisoned) => {
                    poisoned = true;
                    inputs.push(None);
                }
                Some(Slot::Unavailable { node }) => {
                    return Err(node_err(NodeError::BadInput {
                        index: i,
                        value: shown(input),
                        detail: format!(
                            "is an optional output of node '{}' that ghostc does not compute",
                            shown(node)
                        ),
                    }))
                }
                None => {
                    return Err(ImportError::UndefinedValue {
                        node: shown(&name),
                        op_type: shown(op_type),
                        value: shown(input),
                    })
                }
            }
        }
        let Some(importer) = importer else {
            self.report_unsupported(flat, &name, None);
            return Ok(());
        };
        if poisoned {
            self.poison(proto);
            return Ok(());
        }
        let opset = flat.opsets.get("").copied().unwrap_or(MIN_OPSET);
        let result = {
            let ctx = NodeCtx {
                name: &name,
                op_type,
                opset,
                proto,
                attrs: Attrs::new(&proto.attribute),
                inputs: &inputs,
                graph: &self.g,
                limits: &self.opts.limits,
                external: self.external,
            };
            importer(&ctx)
        };
        let imported = match result {
            Ok(l) => l,
            Err(NodeError::Unsupported(reason)) => {
                self.report_unsupported(flat, &name, Some(reason));
                return Ok(());
            }
            Err(e) => return Err(node_err(e)),
        };
        self.apply(proto, &name, imported).map_err(node_err)
    }

    fn report_unsupported(&mut self, flat: &FlatNode, name: &str, reason: Option<String>) {
        let proto = &flat.proto;
        let domain = normalize_domain(proto.domain.as_deref());
        self.unsupported.push(UnsupportedNode {
            node: shown(name),
            op_type: shown(proto.op_type.as_deref().unwrap_or("")),
            domain: if domain.is_empty() {
                "ai.onnx".into()
            } else {
                shown(domain)
            },
            opset: flat.opsets.get(domain).copied(),
            reason,
        });
        self.poison(proto);
    }

    fn poison(&mut self, proto: &NodeProto) {
        for out in proto.output.iter().filter(|o| !o.is_empty()) {
            self.values.insert(out.clone(), Slot::Poisoned);
        }
    }

    fn apply(
        &mut self,
        proto: &NodeProto,
        name: &str,
        imported: ImportedNode,
    ) -> Result<(), NodeError> {
        let outputs = &proto.output;
        match imported {
            ImportedNode::Alias(v) => {
                let first = outputs.first().ok_or(NodeError::OutputCount {
                    expected: "at least 1".into(),
                    actual: 0,
                })?;
                self.values.insert(first.clone(), Slot::Value(v));
                self.mark_unavailable(outputs, 1, name);
            }
            ImportedNode::Const(tensors) => {
                if tensors.len() > outputs.len() {
                    return Err(NodeError::OutputCount {
                        expected: tensors.len().to_string(),
                        actual: outputs.len(),
                    });
                }
                let n = tensors.len();
                for (t, out) in tensors.into_iter().zip(outputs) {
                    self.check_size(out, &t.ty)?;
                    let id = self.g.add_const(out.clone(), Arc::new(t));
                    if !out.is_empty() {
                        self.values.insert(out.clone(), Slot::Value(id));
                    }
                }
                self.mark_unavailable(outputs, n, name);
            }
            ImportedNode::Op { op, inputs } => {
                let types = {
                    let facts: Vec<InputFact<'_>> = inputs
                        .iter()
                        .map(|&v| {
                            let value = self.g.value(v);
                            InputFact {
                                ty: &value.ty,
                                value: value.constant().map(|t| &**t),
                            }
                        })
                        .collect();
                    // Name the offending value, not just its position.
                    infer(&op, &facts).map_err(|e| match e.input_problem() {
                        Some((index, problem)) if index < inputs.len() => NodeError::BadInput {
                            index,
                            value: self.g.value(inputs[index]).name.clone(),
                            detail: problem.to_string(),
                        },
                        _ => NodeError::Infer(e),
                    })?
                };
                if types.len() > outputs.len() {
                    return Err(NodeError::OutputCount {
                        expected: types.len().to_string(),
                        actual: outputs.len(),
                    });
                }
                let mut fold_elements: u64 = 0;
                for (ty, out) in types.iter().zip(outputs) {
                    fold_elements = fold_elements.saturating_add(self.check_size(out, ty)?);
                }
                let all_const = inputs.iter().all(|&v| self.g.value(v).constant().is_some());
                let n = types.len();
                // A dequantized constant (a weight) stays a Dequantize node over its integers,
                // so that passes can fold it into a quantized op.
                let foldable = !matches!(op, Op::Dequantize(_));
                if all_const
                    && foldable
                    && fold_elements <= self.opts.limits.max_fold_elements as u64
                {
                    let tensors = fold(&op, &inputs, &self.g)?;
                    if tensors.len() != n || tensors.iter().zip(&types).any(|(t, ty)| &t.ty != ty) {
                        return Err(NodeError::Fold(format!(
                            "the interpreter produced [{}], shape inference said [{}] (ghostc bug)",
                            tensors
                                .iter()
                                .map(|t| t.ty.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            types
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    for (t, out) in tensors.into_iter().zip(outputs) {
                        let id = self.g.add_const(out.clone(), Arc::new(t));
                        if !out.is_empty() {
                            self.values.insert(out.clone(), Slot::Value(id));
                        }
                    }
                } else {
                    let outs: Vec<(String, TensorType)> = types
                        .into_iter()
                        .zip(outputs)
                        .map(|(ty, out)| (out.clone(), ty))
                        .collect();
                    let (_, ids) = self.g.add_node(name, op, inputs, outs);
                    for (id, out) in ids.into_iter().zip(outputs) {
                        if !out.is_empty() {
                            self.values.insert(out.clone(), Slot::Value(id));
                        }
                    }
                }
                self.mark_unavailable(outputs, n, name);
            }
        }
        Ok(())
    }

    fn mark_unavailable(&mut self, outputs: &[String], from: usize, node: &str) {
        for out in outputs.iter().skip(from).filter(|o| !o.is_empty()) {
            self.values.insert(
                out.clone(),
                Slot::Unavailable {
                    node: node.to_string(),
                },
            );
        }
    }

    /// Elements of a node output, checked against `max_tensor_elements`.
    fn check_size(&self, out: &str, ty: &TensorType) -> Result<u64, NodeError> {
        let max = self.opts.limits.max_tensor_elements as u64;
        let elements = ty
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .unwrap_or(u64::MAX);
        if elements > max {
            return Err(NodeError::OutputTooLarge {
                value: shown(out),
                elements,
                max,
            });
        }
        Ok(elements)
    }

    fn outputs(&mut self, graph: &GraphProto) -> Result<(), ImportError> {
        // Position of each output name seen so far. ONNX Runtime accepts a name listed twice
        // (and returns the tensor twice), but the generated `Model` and its runner address
        // outputs by name, where two with one name are ambiguous.
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (pos, info) in graph.output.iter().enumerate() {
            let name = info.name.as_deref().unwrap_or("");
            if let Some(first) = seen.insert(name, pos) {
                return Err(ImportError::Output {
                    output: shown(name),
                    detail: format!(
                        "is listed twice among the graph outputs (positions {first} and {pos}); \
                         give each output its own name (an Identity node makes a copy)"
                    ),
                });
            }
            let v = match self.values.get(name) {
                Some(Slot::Value(v)) => *v,
                Some(Slot::Poisoned) => continue,
                Some(Slot::Unavailable { node }) => {
                    return Err(ImportError::Output {
                        output: shown(name),
                        detail: format!(
                            "is an optional output of node '{}' that ghostc does not compute",
                            shown(node)
                        ),
                    })
                }
                None => {
                    return Err(ImportError::Output {
                        output: shown(name),
                        detail: "is produced by no node, initializer or input".into(),
                    })
                }
            };
            check_declared(info, &self.g.value(v).ty, self.g.dynamic_batch)?;
            self.g.outputs.push(v);
        }
        if graph.output.is_empty() {
            return Err(ImportError::model("the graph has no outputs"));
        }
        Ok(())
    }
}

/// Evaluates an op on constant inputs with the reference interpreter.
fn fold(op: &Op, inputs: &[ValueId], g: &Graph) -> Result<Vec<Tensor>, NodeError> {
    let tensors: Vec<&Tensor> = inputs
        .iter()
        .filter_map(|&v| g.value(v).constant().map(|t| &**t))
        .collect();
    crate::interp::eval_op(op, &tensors).map_err(|e| NodeError::Fold(e.to_string()))
}
