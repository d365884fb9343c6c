//! Lowering at the model boundary and its errors: several inputs and outputs (ranks 2, 3 and
//! 4) become `Loc::Input(i)` / `Loc::Output(i)` in graph order, and a model with several
//! unsupported configurations gets ONE error naming every node, its blocking attribute or
//! shape and what is supported instead, with a per-op summary.

use ghostc::ir::Graph;
use ghostc::onnx::{import_bytes, ImportOptions};
use ghostc::passes::{optimize, PassOptions};
use ghostc::plan::lower::{lower, LowerError};
use ghostc::plan::program::{Kernel, Loc};
use ghostc_testkit::models;
use ghostc_testkit::onnx::{a_int, f32_raw, i64_tensor, named, node, Model};

fn import(m: &Model) -> Graph {
    let mut g = import_bytes(&m.bytes(), None, &ImportOptions::default()).unwrap();
    optimize(&mut g, &PassOptions::default()).unwrap();
    g
}

#[test]
fn five_unsupported_configurations_are_reported_in_one_error() {
    let err = lower(&import(&models::five_unsupported())).unwrap_err();
    let LowerError::Unsupported(list) = &err else {
        panic!("expected Unsupported, got {err:?}")
    };
    let msg = err.to_string();
    let expect = [
        ("pow_two_activations", "pow", "Add, Sub, Mul, Div and PRelu"),
        ("dilated_pool", "dilations=[2, 2]", "dilations=[1, 1]"),
        ("concat_on_width", "axis=3", "axis=2 (pixels, rows)"),
        ("softmax_4d", "axis=1 over input rank 4", "rank-2"),
        ("flatten_spatial", "[1x8x6x6] -> [1x288]", "keep N, C"),
    ];
    assert_eq!(list.len(), expect.len(), "{msg}");
    for (node, blocker, supported) in expect {
        let u = list
            .iter()
            .find(|u| u.node == node)
            .unwrap_or_else(|| panic!("{node} not reported:\n{msg}"));
        assert!(
            u.blocker.contains(blocker) || u.op.contains(blocker),
            "{node}: {u}"
        );
        assert!(u.supported.contains(supported), "{node}: {u}");
        assert!(msg.contains(&format!("'{node}'")), "{msg}");
    }
    assert!(
        msg.starts_with("code generation cannot lower 5 nodes:"),
        "{msg}"
    );
    assert_eq!(
        msg.lines().count(),
        7,
        "one line per node plus header and summary:\n{msg}"
    );
    assert!(
        msg.lines()
            .last()
            .unwrap()
            .trim_start()
            .starts_with("by op: "),
        "{msg}"
    );
}

#[test]
fn a_short_list_has_no_summary() {
    let m = Model::new(17)
        .input("x", &[1, 8, 6, 6])
        .node(named(
            node("Softmax", &["x"], &["s"], vec![a_int("axis", 1)]),
            "softmax_4d",
        ))
        .output("s");
    let err = lower(&import(&m)).unwrap_err().to_string();
    assert_eq!(
        err,
        "code generation cannot lower 1 node:\n  - 'softmax_4d' (softmax): axis=1 over input \
         rank 4 [1x8x6x6]; supported: axis=1 of a rank-2 [N, C] tensor"
    );
}

/// Two inputs, three outputs of rank 4, 3 and 2; the runtime-level locations follow graph
/// order, and each output is gathered from its own buffer.
#[test]
fn several_inputs_and_outputs_lower_in_graph_order() {
    let m = Model::new(17)
        .input("a", &[1, 8, 4, 4])
        .input("b", &[1, 8, 4, 4])
        .init(i64_tensor("to3", &[3], &[1, 8, 16]))
        .init(f32_raw("w", &[4, 8, 1, 1], &[0.25; 32]))
        .node(node("Add", &["a", "b"], &["sum"], vec![]))
        .node(node("Reshape", &["sum", "to3"], &["flat"], vec![]))
        .node(node("GlobalAveragePool", &["b"], &["gap"], vec![]))
        .node(node("Conv", &["gap", "w"], &["conv"], vec![]))
        .node(node("Flatten", &["conv"], &["vec"], vec![]))
        .output("sum")
        .output("flat")
        .output("vec");
    let p = lower(&import(&m)).unwrap();
    let names = |ios: &[ghostc::plan::program::Io]| -> Vec<(String, Vec<usize>)> {
        ios.iter()
            .map(|io| (io.name.clone(), io.shape.clone()))
            .collect()
    };
    assert_eq!(
        names(&p.inputs),
        [
            ("a".into(), vec![1, 8, 4, 4]),
            ("b".into(), vec![1, 8, 4, 4])
        ]
    );
    assert_eq!(
        names(&p.outputs),
        [
            ("sum".into(), vec![1, 8, 4, 4]),
            ("flat".into(), vec![1, 8, 16]),
            ("vec".into(), vec![1, 4])
        ]
    );
    let reads: Vec<Loc> = p
        .steps
        .iter()
        .filter_map(|s| match s.kernel {
            Kernel::ToBlocked { src, .. } => Some(src),
            _ => None,
        })
        .collect();
    assert_eq!(reads, [Loc::Input(0), Loc::Input(1)]);
    let writes: Vec<(Loc, usize)> = p
        .steps
        .iter()
        .filter_map(|s| match s.kernel {
            Kernel::FromBlocked { dst, pixels, .. } => Some((dst, pixels)),
            _ => None,
        })
        .collect();
    assert_eq!(
        writes,
        [
            (Loc::Output(0), 16),
            (Loc::Output(1), 16),
            (Loc::Output(2), 1)
        ]
    );
    let text = p.to_string();
    assert!(
        text.starts_with(
            "inputs \"a\" [1x8x4x4], \"b\" [1x8x4x4] -> outputs \"sum\" [1x8x4x4], \"flat\" [1x8x16], \"vec\" [1x4], batch 1"
        ),
        "{text}"
    );
}

/// Outputs must carry the batch of the inputs.
#[test]
fn an_output_without_the_batch_dim_is_named() {
    let m = Model::new(17)
        .input("x", &[2, 8, 4, 4])
        .init(i64_tensor("to2", &[2], &[1, 256]))
        .node(named(node("Reshape", &["x", "to2"], &["y"], vec![]), "r"))
        .output("y");
    let err = lower(&import(&m)).unwrap_err().to_string();
    assert!(
        err.contains("'y' (output): batch 1 [1x256] differs from the first input's 2"),
        "{err}"
    );
}
