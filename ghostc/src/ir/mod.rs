//! The graph IR: a petgraph `StableGraph` of typed ops over statically shaped values.
//!
//! Nodes are [`Node`]s (an [`Op`] plus its input and output values); each edge runs from a
//! producer node to a consumer node and carries the [`ValueId`] flowing along it, so petgraph's
//! algorithms (toposort, cycle detection) see the data flow. Values live in a side table indexed
//! by `ValueId`: graph inputs, constants (weights, shared through `Arc`, stored once) and node
//! outputs. Every value has a fully static [`TensorType`]; a dynamic batch is a flag on the
//! graph, and the graph itself describes one image when it is set.
//!
//! Invariants (checked by [`crate::verify`]): node inputs are graph inputs, constants or outputs
//! of other nodes; edges mirror node inputs exactly; the graph is acyclic; every value has one
//! definition.

pub mod cost;
pub mod display;
pub mod infer;
pub mod op;
pub mod tensor;

use std::sync::Arc;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

pub use op::*;
pub use tensor::{fmt_shape, DType, Data, Tensor, TensorType};

/// Index of a node in the graph; stable across removals.
pub type NodeId = NodeIndex<u32>;

/// Index of a value in [`Graph::values`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueDef {
    /// A graph input, fed by the user.
    Input,
    /// A compile-time constant (weight, folded subgraph). Shared, never copied.
    Const(Arc<Tensor>),
    /// Output number `.1` of node `.0`.
    Node(NodeId, usize),
    /// Defined by nothing any more (its producer was removed); must be unreferenced.
    Dead,
}

/// A tensor flowing through the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// Name in the ONNX model, kept for messages and comments only; never an identifier.
    pub name: String,
    pub ty: TensorType,
    pub def: ValueDef,
}

impl Value {
    pub fn constant(&self) -> Option<&Arc<Tensor>> {
        match &self.def {
            ValueDef::Const(t) => Some(t),
            _ => None,
        }
    }
}

/// One operation instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// ONNX node name (or a synthesized `op_N` when the model left it empty).
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    /// Names of the ONNX nodes this node computes: its own at import, plus those of every node
    /// a fusion absorbed into it (see [`Graph::absorb`]). For comments in generated code.
    pub covers: Vec<String>,
}

/// The model graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: StableDiGraph<Node, ValueId>,
    pub values: Vec<Value>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    /// The leading dim of every input and output is a batch that may take any size at run time;
    /// the graph's shapes are those of one image (batch 1).
    pub dynamic_batch: bool,
    /// Opset versions the source model imported, by domain ("" is the default `ai.onnx`
    /// domain); for reports only, empty when the graph was not imported from ONNX.
    pub opset_imports: std::collections::BTreeMap<String, i64>,
    /// Position of each node name among all names ever added, in the order nodes were added.
    /// The importer adds nodes in the model's (topological) node order, so this puts the ONNX
    /// names a fused node covers back in graph order (see [`Graph::graph_order`]).
    pub name_order: std::collections::BTreeMap<String, usize>,
}

impl Graph {
    pub fn new() -> Self {
        Graph::default()
    }

    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.values[id.index()]
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    /// Adds a graph input.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let id = self.push_value(name.into(), ty, ValueDef::Input);
        self.inputs.push(id);
        id
    }

    /// Adds a constant value.
    pub fn add_const(&mut self, name: impl Into<String>, tensor: Arc<Tensor>) -> ValueId {
        let ty = tensor.ty.clone();
        self.push_value(name.into(), ty, ValueDef::Const(tensor))
    }

    fn push_value(&mut self, name: String, ty: TensorType, def: ValueDef) -> ValueId {
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value { name, ty, def });
        id
    }

    /// Adds a node whose outputs are new values with the given names and types, wiring edges
    /// from the producers of its inputs. Returns the node and its output values.
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<ValueId>,
        outputs: Vec<(String, TensorType)>,
    ) -> (NodeId, Vec<ValueId>) {
        let name: String = name.into();
        let next = self.name_order.len();
        self.name_order.entry(name.clone()).or_insert(next);
        let node = self.nodes.add_node(Node {
            covers: vec![name.clone()],
            name,
            op,
            inputs: inputs.clone(),
            outputs: vec![],
        });
        let outs: Vec<ValueId> = outputs
            .into_iter()
            .enumerate()
            .map(|(slot, (n, ty))| self.push_value(n, ty, ValueDef::Node(node, slot)))
            .collect();
        self.nodes[node].outputs = outs.clone();
        for v in inputs {
            if let ValueDef::Node(producer, _) = self.values[v.index()].def {
                self.nodes.add_edge(producer, node, v);
            }
        }
        (node, outs)
    }

    /// Removes a node; its outputs become [`ValueDef::Dead`] and must no longer be used.
    pub fn remove_node(&mut self, id: NodeId) -> Option<Node> {
        let node = self.nodes.remove_node(id)?;
        for &v in &node.outputs {
            self.values[v.index()].def = ValueDef::Dead;
        }
        Some(node)
    }

    /// Removes node `from`, whose outputs must be unused, recording in `into` that it now also
    /// computes what `from` did (for provenance comments).
    pub fn absorb(&mut self, into: NodeId, from: NodeId) {
        if let Some(node) = self.remove_node(from) {
            let covers = &mut self.nodes[into].covers;
            for name in node.covers {
                if !covers.contains(&name) {
                    covers.push(name);
                }
            }
        }
    }

    /// `names` (a node's `covers`) sorted by when a node of that name was first added: graph
    /// order for imported nodes; names never added keep their relative order, last.
    pub fn graph_order(&self, names: &[String]) -> Vec<String> {
        let mut sorted = names.to_vec();
        sorted.sort_by_key(|n| self.name_order.get(n).copied().unwrap_or(usize::MAX));
        sorted
    }

    /// The producing node of a value, if it is a node output.
    pub fn producer(&self, v: ValueId) -> Option<NodeId> {
        match self.values[v.index()].def {
            ValueDef::Node(n, _) => Some(n),
            _ => None,
        }
    }

    /// Every (consumer node, input slot) reading `v`, in node order. Graph outputs are not
    /// included; see [`Graph::is_output`].
    pub fn consumers(&self, v: ValueId) -> Vec<(NodeId, usize)> {
        let mut uses = Vec::new();
        for n in self.nodes.node_indices() {
            for (slot, &i) in self.nodes[n].inputs.iter().enumerate() {
                if i == v {
                    uses.push((n, slot));
                }
            }
        }
        uses
    }

    /// Number of uses of `v`, counting graph outputs.
    pub fn use_count(&self, v: ValueId) -> usize {
        self.consumers(v).len() + self.outputs.iter().filter(|&&o| o == v).count()
    }

    pub fn is_output(&self, v: ValueId) -> bool {
        self.outputs.contains(&v)
    }

    /// Points input `slot` of `node` at `v`, keeping edges in sync.
    pub fn set_input(&mut self, node: NodeId, slot: usize, v: ValueId) {
        let old = self.nodes[node].inputs[slot];
        self.nodes[node].inputs[slot] = v;
        self.drop_edge(old, node);
        if let ValueDef::Node(producer, _) = self.values[v.index()].def {
            self.nodes.add_edge(producer, node, v);
        }
    }

    /// Replaces the inputs of `node` wholesale, keeping edges in sync.
    pub fn set_inputs(&mut self, node: NodeId, inputs: Vec<ValueId>) {
        let old = std::mem::take(&mut self.nodes[node].inputs);
        for v in old {
            self.drop_edge(v, node);
        }
        self.nodes[node].inputs = inputs.clone();
        for v in inputs {
            if let ValueDef::Node(producer, _) = self.values[v.index()].def {
                self.nodes.add_edge(producer, node, v);
            }
        }
    }

    fn drop_edge(&mut self, v: ValueId, consumer: NodeId) {
        let edge = self
            .nodes
            .edges_directed(consumer, Direction::Incoming)
            .find(|e| *e.weight() == v)
            .map(|e| e.id());
        if let Some(e) = edge {
            self.nodes.remove_edge(e);
        }
    }

    /// Makes every reader of `old` (nodes and graph outputs) read `new` instead.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        for (node, slot) in self.consumers(old) {
            self.set_input(node, slot, new);
        }
        for o in self.outputs.iter_mut() {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Nodes in a deterministic topological order (ties broken by node index).
    /// Errors with one node on a cycle.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, NodeId> {
        // Kahn's algorithm with a min-heap on the index: iterative, deterministic.
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut indegree: std::collections::HashMap<NodeId, usize> = self
            .nodes
            .node_indices()
            .map(|n| (n, self.nodes.edges_directed(n, Direction::Incoming).count()))
            .collect();
        let mut ready: BinaryHeap<Reverse<NodeId>> = indegree
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(&n, _)| Reverse(n))
            .collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.nodes.edges_directed(n, Direction::Outgoing) {
                let d = indegree
                    .get_mut(&e.target())
                    .expect("edge target is a node");
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(e.target()));
                }
            }
        }
        if order.len() == self.nodes.node_count() {
            Ok(order)
        } else {
            let stuck = indegree
                .into_iter()
                .filter(|&(_, d)| d > 0)
                .map(|(n, _)| n)
                .min();
            Err(stuck.expect("a cycle leaves a node with positive indegree"))
        }
    }

    /// Removes nodes none of whose outputs reach a graph output. Returns how many were removed.
    pub fn remove_dead_nodes(&mut self) -> usize {
        let mut live = std::collections::HashSet::new();
        let mut stack: Vec<NodeId> = self
            .outputs
            .iter()
            .filter_map(|&v| self.producer(v))
            .collect();
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                for &v in &self.nodes[n].inputs {
                    if let Some(p) = self.producer(v) {
                        stack.push(p);
                    }
                }
            }
        }
        let dead: Vec<NodeId> = self
            .nodes
            .node_indices()
            .filter(|n| !live.contains(n))
            .collect();
        for &n in &dead {
            self.remove_node(n);
        }
        dead.len()
    }
}
