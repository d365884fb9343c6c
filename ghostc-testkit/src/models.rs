//! Whole ONNX models that several suites need (the library's plan tests and the CLI's).

use crate::onnx::{a_int, a_ints, i64_tensor, named, node, Model};

/// Five nodes code generation cannot lower, each for another reason, with their node names:
/// `pow_two_activations` (Pow of two activations), `dilated_pool` (MaxPool dilations [2, 2]),
/// `concat_on_width` (Concat axis 3), `softmax_4d` (Softmax over a rank-4 tensor) and
/// `flatten_spatial` (Reshape [1, 8, 6, 6] -> [1, 288]). Two sit below another unsupported
/// node (the Reshape after the Softmax, the Concat after the MaxPool), so they are only reported
/// if lowering goes on past the first failure. Input `x` [1, 8, 6, 6]; three outputs.
pub fn five_unsupported() -> Model {
    Model::new(17)
        .input("x", &[1, 8, 6, 6])
        .init(i64_tensor("flat", &[2], &[1, 288]))
        .node(named(node("Relu", &["x"], &["r"], vec![]), "relu"))
        .node(named(
            node("Pow", &["x", "r"], &["d"], vec![]),
            "pow_two_activations",
        ))
        .node(named(
            node(
                "MaxPool",
                &["x"],
                &["p"],
                vec![
                    a_ints("kernel_shape", &[2, 2]),
                    a_ints("dilations", &[2, 2]),
                ],
            ),
            "dilated_pool",
        ))
        .node(named(
            node("Concat", &["p", "p"], &["c"], vec![a_int("axis", 3)]),
            "concat_on_width",
        ))
        .node(named(
            node("Softmax", &["x"], &["s"], vec![a_int("axis", 1)]),
            "softmax_4d",
        ))
        .node(named(
            node("Reshape", &["s", "flat"], &["f"], vec![]),
            "flatten_spatial",
        ))
        .output("d")
        .output("c")
        .output("f")
}
