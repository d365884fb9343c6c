// A misspelled limit is an error at the option.
ghost_macros::model!("tests/bad_models/relu_chain.onnx", limit = "max_nodez=2");

fn main() {
    let _ = Model::new();
}
