// Case 30: graph output 'y' is listed twice.
ghost_macros::model!("tests/bad_models/duplicate_output.onnx");

fn main() {
    let _ = Model::new();
}
