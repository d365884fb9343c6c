// Case 6: initializer W needs 440 bytes of raw_data and has 12.
ghost_macros::model!("tests/bad_models/truncated_raw_data.onnx");

fn main() {
    let _ = Model::new();
}
