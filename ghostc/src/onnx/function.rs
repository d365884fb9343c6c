//! Flattening the main graph's nodes, inlining calls to model-local functions.
//!
//! A call `y = f(x)` is replaced by `f`'s body with its formal inputs and outputs renamed to
//! the call's actual values and every internal value renamed with a prefix unique to the call
//! (`f#3/tmp`), so two calls never share internals. Attributes that refer to the caller
//! (`ref_attr_name`) take the call site's attribute of that name, else the function's default
//! (`attribute_proto`), else they are dropped, as the ONNX spec says. Nodes inside a function
//! use the function's own opset imports. Calls nest up to `max_nesting_depth`; a function that
//! reaches itself is a named error (ONNX forbids recursion), and the total node count after
//! inlining is bounded by `max_nodes`.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::error::shown;
use super::proto::{FunctionProto, ModelProto, NodeProto, OperatorSetIdProto};
use super::{ImportError, Limits};

/// Opset versions by domain ("" is the default domain, `ai.onnx` is folded into it).
pub(crate) type Opsets = HashMap<String, i64>;

/// `ai.onnx` and "" both mean the default domain.
pub(crate) fn normalize_domain(domain: Option<&str>) -> &str {
    match domain {
        None | Some("ai.onnx") => "",
        Some(d) => d,
    }
}

/// Opset imports as a map, rejecting a domain listed twice with different versions.
pub(crate) fn opset_map(
    imports: &[OperatorSetIdProto],
    owner: &str,
) -> Result<Opsets, ImportError> {
    let mut map = Opsets::new();
    for imp in imports {
        let domain = normalize_domain(imp.domain.as_deref()).to_string();
        let version = imp.version.unwrap_or(0);
        if let Some(old) = map.insert(domain.clone(), version) {
            if old != version {
                return Err(ImportError::model(format!(
                    "{owner} imports domain '{}' twice, with opsets {old} and {version}",
                    if domain.is_empty() {
                        "ai.onnx"
                    } else {
                        &domain
                    }
                )));
            }
        }
    }
    Ok(map)
}

/// A node of the flattened graph.
#[derive(Debug)]
pub(crate) struct FlatNode {
    pub proto: NodeProto,
    /// The opset imports in force where the node is (the model's, or its function's).
    pub opsets: Rc<Opsets>,
}

type FunctionKey = (String, String, String);

fn key(domain: Option<&str>, name: Option<&str>, overload: Option<&str>) -> FunctionKey {
    (
        normalize_domain(domain).to_string(),
        name.unwrap_or("").to_string(),
        overload.unwrap_or("").to_string(),
    )
}

struct Flattener<'a> {
    functions: HashMap<FunctionKey, (&'a FunctionProto, Rc<Opsets>)>,
    limits: &'a Limits,
    out: Vec<FlatNode>,
    calls: usize,
}

/// The main graph's nodes with every function call inlined.
pub(crate) fn flatten(
    model: &ModelProto,
    model_opsets: &Opsets,
    limits: &Limits,
) -> Result<Vec<FlatNode>, ImportError> {
    let mut functions = HashMap::new();
    for f in &model.functions {
        let k = key(
            f.domain.as_deref(),
            f.name.as_deref(),
            f.overload.as_deref(),
        );
        let fname = shown(&k.1);
        // A function without opset imports of its own uses the model's.
        let opsets = if f.opset_import.is_empty() {
            model_opsets.clone()
        } else {
            opset_map(&f.opset_import, &format!("function '{fname}'"))?
        };
        if functions.insert(k, (f, Rc::new(opsets))).is_some() {
            return Err(ImportError::Function {
                function: fname,
                detail: "defined twice".into(),
            });
        }
    }
    let graph = model.graph.as_ref().ok_or(ImportError::NoGraph)?;
    let mut flattener = Flattener {
        functions,
        limits,
        out: Vec::new(),
        calls: 0,
    };
    let top = Rc::new(model_opsets.clone());
    let mut chain = Vec::new();
    for node in &graph.node {
        flattener.node(node.clone(), &top, &mut chain)?;
    }
    Ok(flattener.out)
}

impl<'a> Flattener<'a> {
    fn node(
        &mut self,
        node: NodeProto,
        opsets: &Rc<Opsets>,
        chain: &mut Vec<FunctionKey>,
    ) -> Result<(), ImportError> {
        let k = key(
            node.domain.as_deref(),
            node.op_type.as_deref(),
            node.overload.as_deref(),
        );
        let Some(&(function, ref fn_opsets)) = self.functions.get(&k) else {
            if self.out.len() >= self.limits.max_nodes {
                return Err(ImportError::limit(
                    "max_nodes",
                    self.out.len() as u64 + 1,
                    self.limits.max_nodes as u64,
                    "nodes after inlining functions",
                ));
            }
            self.out.push(FlatNode {
                proto: node,
                opsets: opsets.clone(),
            });
            return Ok(());
        };
        let fn_opsets = fn_opsets.clone();
        let fname = shown(&k.1);
        if chain.contains(&k) {
            let path: Vec<String> = chain
                .iter()
                .chain(std::iter::once(&k))
                .map(|c| shown(&c.1))
                .collect();
            return Err(ImportError::Function {
                function: fname,
                detail: format!("recursive call chain {}", path.join(" -> ")),
            });
        }
        if chain.len() >= self.limits.max_nesting_depth {
            return Err(ImportError::limit(
                "max_nesting_depth",
                chain.len() as u64 + 1,
                self.limits.max_nesting_depth as u64,
                format!("function call depth at '{fname}'"),
            ));
        }
        if node.input.len() > function.input.len() || node.output.len() > function.output.len() {
            return Err(ImportError::Function {
                function: fname,
                detail: format!(
                    "called by node '{}' with {} inputs and {} outputs, but it declares {} and {}",
                    shown(node.name.as_deref().unwrap_or("")),
                    node.input.len(),
                    node.output.len(),
                    function.input.len(),
                    function.output.len()
                ),
            });
        }
        self.calls += 1;
        let call_name = match node.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{}#{}", k.1, self.calls),
        };
        let prefix = format!("{call_name}#{}/", self.calls);
        // Formal -> actual names. Absent optional inputs map to "" (absent); absent outputs get
        // a fresh internal name.
        let mut rename: HashMap<&str, String> = HashMap::new();
        for (i, formal) in function.input.iter().enumerate() {
            rename.insert(
                formal.as_str(),
                node.input.get(i).cloned().unwrap_or_default(),
            );
        }
        for (i, formal) in function.output.iter().enumerate() {
            let actual = node
                .output
                .get(i)
                .filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("{prefix}{formal}"));
            rename.insert(formal.as_str(), actual);
        }
        let map_name = |n: &String| -> String {
            if n.is_empty() {
                String::new()
            } else {
                rename
                    .get(n.as_str())
                    .cloned()
                    .unwrap_or_else(|| format!("{prefix}{n}"))
            }
        };
        // Attribute values visible to the body: defaults, overridden by the call site.
        let mut env: HashMap<&str, &super::proto::AttributeProto> = HashMap::new();
        for a in &function.attribute_proto {
            env.insert(a.name.as_deref().unwrap_or(""), a);
        }
        let declared: HashSet<&str> = function
            .attribute
            .iter()
            .map(String::as_str)
            .chain(env.keys().copied())
            .collect();
        for a in &node.attribute {
            let n = a.name.as_deref().unwrap_or("");
            if declared.contains(n) {
                env.insert(n, a);
            }
        }
        let mut body = Vec::with_capacity(function.node.len());
        for (j, inner) in function.node.iter().enumerate() {
            let mut n = inner.clone();
            n.input = inner.input.iter().map(map_name).collect();
            n.output = inner.output.iter().map(map_name).collect();
            let inner_name = match inner.name.as_deref() {
                Some(s) if !s.is_empty() => s.to_string(),
                _ => format!("{}_{j}", inner.op_type.as_deref().unwrap_or("")),
            };
            n.name = Some(format!("{call_name}/{inner_name}"));
            n.attribute = Vec::with_capacity(inner.attribute.len());
            for a in &inner.attribute {
                match a.ref_attr_name.as_deref() {
                    Some(r) if !r.is_empty() => {
                        if let Some(v) = env.get(r) {
                            let mut resolved = (*v).clone();
                            resolved.name = a.name.clone();
                            resolved.ref_attr_name = None;
                            n.attribute.push(resolved);
                        }
                    }
                    _ => n.attribute.push(a.clone()),
                }
            }
            body.push(n);
        }
        chain.push(k);
        for n in body {
            self.node(n, &fn_opsets, chain)?;
        }
        chain.pop();
        Ok(())
    }
}
