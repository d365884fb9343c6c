// Case 32: relu_chain needs more RAM (arena + input + output) than the budget.
ghost_macros::model!("tests/bad_models/relu_chain.onnx", ram_budget = "8");

fn main() {
    let _ = Model::new();
}
