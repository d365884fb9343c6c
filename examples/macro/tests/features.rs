//! The two-output backbone (timm `features_only` GhostNet) compiled by `ghost_macros::model!`,
//! fused and with every fusion off: both outputs against ONNX Runtime's with the project
//! tolerance.

use std::path::PathBuf;

mod fused {
    ghost_macros::model!("../../fixtures/ts17_features_w050_64x64_b1/model.onnx");
}

mod unfused {
    ghost_macros::model!(
        "../../fixtures/ts17_features_w050_64x64_b1/model.onnx",
        no_fuse = "all"
    );
}

fn fixture(file: &str) -> ghostc::npy::Array<f32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/ts17_features_w050_64x64_b1")
        .join(file);
    ghostc::npy::read_f32(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn both_outputs_match_onnx_runtime_fused_and_unfused() {
    let x = fixture("input.npy");
    let (want0, want1) = (fixture("expected.npy"), fixture("expected_1.npy"));
    assert_eq!(want0.shape, fused::Model::OUTPUT0_SHAPE);
    assert_eq!(want1.shape, fused::Model::OUTPUT1_SHAPE);

    let (mut a, mut b) = (
        vec![0.0; fused::Model::OUTPUT0_LEN],
        vec![0.0; fused::Model::OUTPUT1_LEN],
    );
    fused::Model::new()
        .run(
            fused::ModelInputs { input0: &x.data },
            fused::ModelOutputs {
                output0: &mut a,
                output1: &mut b,
            },
            &mut vec![0.0; fused::Model::SCRATCH_LEN],
        )
        .unwrap();
    let (mut c, mut d) = (
        vec![0.0; unfused::Model::OUTPUT0_LEN],
        vec![0.0; unfused::Model::OUTPUT1_LEN],
    );
    unfused::Model::new()
        .run(
            unfused::ModelInputs { input0: &x.data },
            unfused::ModelOutputs {
                output0: &mut c,
                output1: &mut d,
            },
            &mut vec![0.0; unfused::Model::SCRATCH_LEN],
        )
        .unwrap();
    for (what, got, want) in [
        ("fused feat_s8", &a, &want0),
        ("fused feat_s16", &b, &want1),
        ("unfused feat_s8", &c, &want0),
        ("unfused feat_s16", &d, &want1),
    ] {
        let diff = ghostc::compare::compare(got, &want.data);
        assert!(diff.ok(), "{what} vs ONNX Runtime: {diff}");
    }
}
