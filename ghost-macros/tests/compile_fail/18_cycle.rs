// Case 18: a cycle through n_a and n_b.
ghost_macros::model!("tests/bad_models/cycle.onnx");

fn main() {
    let _ = Model::new();
}
