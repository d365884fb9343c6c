// Case 21: every unsupported node in one error.
ghost_macros::model!("tests/bad_models/unsupported_ops.onnx");

fn main() {
    let _ = Model::new();
}
