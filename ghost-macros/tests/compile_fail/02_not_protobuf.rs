// Case 2: a PNG renamed .onnx.
ghost_macros::model!("tests/bad_models/not_protobuf.onnx");

fn main() {
    let _ = Model::new();
}
