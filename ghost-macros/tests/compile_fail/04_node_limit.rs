// Case 4: a node-count limit, set through the macro.
ghost_macros::model!("tests/bad_models/relu_chain.onnx", limit = "max_nodes=2");

fn main() {
    let _ = Model::new();
}
