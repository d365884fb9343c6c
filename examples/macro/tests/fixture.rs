//! Runs the macro-compiled model on the fixture's input and checks it against the ONNX Runtime
//! output with the project tolerance `max|y - ref| <= 1e-4 * max|ref| + 1e-5`.

use std::path::PathBuf;

use example_macro::Model;

fn fixture(file: &str) -> ghostc::npy::Array<f32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/ts11_huawei_48x48_b1")
        .join(file);
    ghostc::npy::read_f32(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn matches_onnx_runtime() {
    let (input, expected) = (fixture("input.npy"), fixture("expected.npy"));
    assert_eq!(input.shape, Model::INPUT_SHAPE);
    assert_eq!(expected.shape, Model::OUTPUT_SHAPE);

    let model = Model::new();
    let mut output = vec![0.0; Model::OUTPUT_LEN];
    let mut scratch = vec![0.0; Model::SCRATCH_LEN];
    model.run(&input.data, &mut output, &mut scratch).unwrap();

    let diff = ghostc::compare::compare(&output, &expected.data);
    assert!(diff.ok(), "vs ONNX Runtime: {diff}");
}

#[test]
fn options_compile_too() {
    // Same model with the SE and Ghost fusions off: a different program, the same numbers.
    mod unfused {
        ghost_macros::model!(
            "../../fixtures/ts11_huawei_48x48_b1/model.onnx",
            shape = "input=1x3x48x48",
            no_fuse = "se,ghost"
        );
    }
    let input = fixture("input.npy");
    let (mut a, mut b) = (
        vec![0.0; Model::OUTPUT_LEN],
        vec![0.0; unfused::Model::OUTPUT_LEN],
    );
    Model::new()
        .run(&input.data, &mut a, &mut vec![0.0; Model::SCRATCH_LEN])
        .unwrap();
    unfused::Model::new()
        .run(
            &input.data,
            &mut b,
            &mut vec![0.0; unfused::Model::SCRATCH_LEN],
        )
        .unwrap();
    let diff = ghostc::compare::compare(&b, &a);
    assert!(diff.ok(), "unfused vs fused: {diff}");
}
