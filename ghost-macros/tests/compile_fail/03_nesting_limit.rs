// Case 3: subgraphs nested 40 deep hit the default nesting limit.
ghost_macros::model!("tests/bad_models/nested_subgraphs.onnx");

fn main() {
    let _ = Model::new();
}
