// Case 1: a 0-byte file decodes as a model without a graph.
ghost_macros::model!("tests/bad_models/empty.onnx");

fn main() {
    let _ = Model::new();
}
