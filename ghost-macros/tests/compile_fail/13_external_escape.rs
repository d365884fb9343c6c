// Case 13: external data at ../../etc/passwd; nothing is opened.
ghost_macros::model!("tests/bad_models/external_escape.onnx");

fn main() {
    let _ = Model::new();
}
