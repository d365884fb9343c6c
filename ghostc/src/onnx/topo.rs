//! Node order: every value defined once, every input defined somewhere, then a topological
//! order of the (function-inlined) node list that keeps file order among ready nodes, and the
//! name of a node on a cycle when there is none.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use super::error::shown;
use super::function::FlatNode;
use super::import::Slot;
use super::ImportError;

/// Node indices in a topological order (Kahn's algorithm, ties by file order), after checking
/// that every value has one definition and every input is defined somewhere.
pub(super) fn topo_order(
    nodes: &[FlatNode],
    known: &HashMap<String, Slot>,
) -> Result<Vec<usize>, ImportError> {
    let node_label = |i: usize| -> (String, String) {
        let p = nodes.get(i).map(|n| &n.proto);
        let op = p.and_then(|p| p.op_type.as_deref()).unwrap_or("");
        let name = match p.and_then(|p| p.name.as_deref()) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{op}_{i}"),
        };
        (shown(&name), shown(op))
    };
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for out in n.proto.output.iter().filter(|o| !o.is_empty()) {
            if known.contains_key(out.as_str()) {
                return Err(ImportError::DuplicateValue {
                    value: shown(out),
                    first: "an initializer or graph input".into(),
                    second: format!("output of node '{}'", node_label(i).0),
                });
            }
            if let Some(&first) = producer.get(out.as_str()) {
                return Err(ImportError::DuplicateValue {
                    value: shown(out),
                    first: format!("output of node '{}'", node_label(first).0),
                    second: format!("output of node '{}'", node_label(i).0),
                });
            }
            producer.insert(out, i);
        }
    }
    let mut indegree = vec![0usize; nodes.len()];
    let mut successors: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for input in n.proto.input.iter().filter(|s| !s.is_empty()) {
            if let Some(&p) = producer.get(input.as_str()) {
                indegree[i] += 1;
                successors[p].push(i);
            } else if !known.contains_key(input.as_str()) {
                let (node, op_type) = node_label(i);
                return Err(ImportError::UndefinedValue {
                    node,
                    op_type,
                    value: shown(input),
                });
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..nodes.len())
        .filter(|&i| indegree[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &s in &successors[i] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if order.len() == nodes.len() {
        return Ok(order);
    }
    // Walk predecessors that are still blocked until one repeats: that node is on a cycle.
    let mut current = (0..nodes.len()).find(|&i| indegree[i] > 0).unwrap_or(0);
    let mut seen = HashSet::new();
    while seen.insert(current) {
        let next = nodes.get(current).and_then(|n| {
            n.proto
                .input
                .iter()
                .filter_map(|inp| producer.get(inp.as_str()).copied())
                .find(|&p| indegree.get(p).is_some_and(|&d| d > 0))
        });
        match next {
            Some(p) => current = p,
            None => break,
        }
    }
    let (node, op_type) = node_label(current);
    Err(ImportError::Cycle { node, op_type })
}
