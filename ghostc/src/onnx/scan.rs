//! Wire-format pre-scan of a `ModelProto`, run before prost decodes anything.
//!
//! prost allocates a full Rust struct for every sub-message, so a 2-byte empty `NodeProto` on
//! the wire becomes a few hundred bytes in memory: a small file can demand gigabytes. This scan
//! walks the protobuf framing without allocating, following only the fields that lead to graphs
//! (model -> graph -> node -> attribute -> graph, functions, training info), and fails as soon
//! as the node count, the sub-message count or the nesting depth passes its limit. It is
//! iterative (an explicit stack), so hostile nesting cannot overflow the call stack.
//!
//! It validates only framing (tags, varints, lengths, groups); prost still decodes and validates
//! field contents afterwards.

use super::{ImportError, Limits};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Model,
    Graph,
    Node,
    Attribute,
    Function,
    TrainingInfo,
}

enum Child {
    /// A message whose fields are scanned too.
    Descend(Kind),
    /// A message counted against `max_messages` but not looked into.
    Count,
}

/// What a length-delimited field of a message of `kind` holds, as far as the scan cares.
fn child(kind: Kind, field: u64) -> Option<Child> {
    use Child::*;
    match (kind, field) {
        (Kind::Model, 7) => Some(Descend(Kind::Graph)),
        (Kind::Model, 25) => Some(Descend(Kind::Function)),
        (Kind::Model, 20) => Some(Descend(Kind::TrainingInfo)),
        (Kind::Model, 8 | 14 | 26) => Some(Count),
        (Kind::TrainingInfo, 1 | 2) => Some(Descend(Kind::Graph)),
        (Kind::TrainingInfo, 3 | 4) => Some(Count),
        (Kind::Graph, 1) => Some(Descend(Kind::Node)),
        (Kind::Graph, 5 | 11 | 12 | 13 | 14 | 15 | 16) => Some(Count),
        (Kind::Node, 5) => Some(Descend(Kind::Attribute)),
        (Kind::Node, 9 | 10) => Some(Count),
        (Kind::Attribute, 6 | 11) => Some(Descend(Kind::Graph)),
        (Kind::Attribute, 5 | 10 | 14 | 15 | 22 | 23) => Some(Count),
        (Kind::Function, 7) => Some(Descend(Kind::Node)),
        (Kind::Function, 11) => Some(Descend(Kind::Attribute)),
        (Kind::Function, 9 | 12 | 14) => Some(Count),
        _ => None,
    }
}

fn invalid(msg: String) -> ImportError {
    ImportError::InvalidProtobuf(msg)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self, end: usize) -> Result<u64, ImportError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            if self.pos >= end {
                return Err(invalid(format!("truncated varint at byte {start}")));
            }
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| invalid(format!("truncated varint at byte {start}")))?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(invalid(format!("varint overflows 64 bits at byte {start}")));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid(format!(
            "varint longer than 10 bytes at byte {start}"
        )))
    }

    fn skip(&mut self, n: u64, end: usize, what: &str) -> Result<(), ImportError> {
        let start = self.pos;
        let new = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&p| p <= end)
            .ok_or_else(|| invalid(format!("truncated {what} at byte {start}")))?;
        self.pos = new;
        Ok(())
    }
}

/// Checks framing and the node / message / depth limits of an encoded `ModelProto`.
pub(crate) fn prescan(bytes: &[u8], limits: &Limits) -> Result<(), ImportError> {
    struct Frame {
        kind: Kind,
        end: usize,
    }
    let mut reader = Reader { bytes, pos: 0 };
    let mut stack = vec![Frame {
        kind: Kind::Model,
        end: bytes.len(),
    }];
    let mut nodes: usize = 0;
    let mut messages: usize = 0;
    while let Some(top) = stack.last() {
        let (kind, end) = (top.kind, top.end);
        if reader.pos >= end {
            stack.pop();
            continue;
        }
        let tag_pos = reader.pos;
        let tag = reader.varint(end)?;
        let field = tag >> 3;
        if field == 0 {
            return Err(invalid(format!("field number 0 at byte {tag_pos}")));
        }
        match tag & 7 {
            0 => {
                reader.varint(end)?;
            }
            1 => reader.skip(8, end, "fixed64 field")?,
            5 => reader.skip(4, end, "fixed32 field")?,
            2 => {
                let len = reader.varint(end)?;
                let body_start = reader.pos;
                reader.skip(len, end, "length-delimited field")?;
                let Some(what) = child(kind, field) else {
                    continue;
                };
                messages += 1;
                if messages > limits.max_messages {
                    return Err(ImportError::limit(
                        "max_messages",
                        messages as u64,
                        limits.max_messages as u64,
                        "protobuf messages inside graphs and functions",
                    ));
                }
                if let Child::Descend(sub) = what {
                    if sub == Kind::Node {
                        nodes += 1;
                        if nodes > limits.max_nodes {
                            return Err(ImportError::limit(
                                "max_nodes",
                                nodes as u64,
                                limits.max_nodes as u64,
                                "nodes in the model (pre-scan)",
                            ));
                        }
                    }
                    if stack.len() >= limits.max_nesting_depth {
                        return Err(ImportError::limit(
                            "max_nesting_depth",
                            stack.len() as u64 + 1,
                            limits.max_nesting_depth as u64,
                            "message nesting depth",
                        ));
                    }
                    let body_end = reader.pos;
                    reader.pos = body_start;
                    stack.push(Frame {
                        kind: sub,
                        end: body_end,
                    });
                }
            }
            3 => skip_group(&mut reader, field, end, limits)?,
            4 => {
                return Err(invalid(format!(
                    "unexpected end-group tag at byte {tag_pos}"
                )))
            }
            wire => {
                return Err(invalid(format!(
                    "invalid wire type {wire} at byte {tag_pos}"
                )))
            }
        }
    }
    Ok(())
}

/// Skips a (deprecated) group whose start tag for `field` was just read, iteratively.
fn skip_group(
    reader: &mut Reader<'_>,
    field: u64,
    end: usize,
    limits: &Limits,
) -> Result<(), ImportError> {
    let mut open = vec![field];
    while let Some(&current) = open.last() {
        let tag_pos = reader.pos;
        let tag = reader.varint(end)?;
        let f = tag >> 3;
        match tag & 7 {
            0 => {
                reader.varint(end)?;
            }
            1 => reader.skip(8, end, "fixed64 field")?,
            5 => reader.skip(4, end, "fixed32 field")?,
            2 => {
                let len = reader.varint(end)?;
                reader.skip(len, end, "length-delimited field")?;
            }
            3 => {
                if open.len() >= limits.max_nesting_depth {
                    return Err(ImportError::limit(
                        "max_nesting_depth",
                        open.len() as u64 + 1,
                        limits.max_nesting_depth as u64,
                        "group nesting depth",
                    ));
                }
                open.push(f);
            }
            4 if f == current => {
                open.pop();
            }
            _ => return Err(invalid(format!("malformed group at byte {tag_pos}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn len_field(field: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    #[test]
    fn counts_empty_nodes_without_decoding() {
        let mut graph = Vec::new();
        for _ in 0..1000 {
            len_field(1, &[], &mut graph);
        }
        let mut model = Vec::new();
        len_field(7, &graph, &mut model);
        let limits = Limits {
            max_nodes: 999,
            ..Limits::default()
        };
        let err = prescan(&model, &limits).unwrap_err();
        assert!(err.to_string().contains("max_nodes"), "{err}");
        assert!(prescan(&model, &Limits::default()).is_ok());
    }

    #[test]
    fn deep_subgraph_nesting_is_rejected_iteratively() {
        // graph { node { attribute { g: graph { node { ... } } } } }, 1000 levels deep.
        let mut body: Vec<u8> = Vec::new();
        for _ in 0..1000 {
            let mut attr = Vec::new();
            len_field(6, &body, &mut attr);
            let mut node = Vec::new();
            len_field(5, &attr, &mut node);
            let mut graph = Vec::new();
            len_field(1, &node, &mut graph);
            body = graph;
        }
        let mut model = Vec::new();
        len_field(7, &body, &mut model);
        let err = prescan(&model, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("max_nesting_depth"), "{err}");
    }

    #[test]
    fn truncated_input_is_invalid() {
        let mut model = Vec::new();
        len_field(7, &[8, 1, 2, 3], &mut model);
        model.truncate(model.len() - 2);
        let err = prescan(&model, &Limits::default()).unwrap_err();
        assert!(matches!(err, ImportError::InvalidProtobuf(_)), "{err}");
    }
}
