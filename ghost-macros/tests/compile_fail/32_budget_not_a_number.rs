// Case 32: a budget is a number of bytes; the error is at the option.
ghost_macros::model!("tests/bad_models/relu_chain.onnx", flash_budget = "1 MB");

fn main() {
    let _ = Model::new();
}
