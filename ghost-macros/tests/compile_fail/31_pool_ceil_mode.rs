// Case 31: MaxPool 'p' with ceil_mode = 2 (only 0 and 1 are accepted).
ghost_macros::model!("tests/bad_models/pool_ceil_mode.onnx");

fn main() {
    let _ = Model::new();
}
