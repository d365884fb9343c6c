// Case 17: node add0 reads a value nothing defines.
ghost_macros::model!("tests/bad_models/dangling_input.onnx");

fn main() {
    let _ = Model::new();
}
