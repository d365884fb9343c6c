//! The two-output backbone compiled by `build.rs` (`ghostc::Builder`), fused and unfused, on
//! the fixture's input: each output against ONNX Runtime's (`expected.npy`, `expected_1.npy`)
//! with the project tolerance, on one thread and on a 2-thread team.

use std::path::PathBuf;

use example_buildrs::{features, features_unfused};
use ghost_runtime::Team;

fn fixture(file: &str) -> ghostc::npy::Array<f32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/ts17_features_w050_64x64_b1")
        .join(file);
    ghostc::npy::read_f32(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(what: &str, got: &[Vec<f32>]) {
    for (i, y) in got.iter().enumerate() {
        let want = fixture(&if i == 0 {
            "expected.npy".to_string()
        } else {
            format!("expected_{i}.npy")
        });
        let d = ghostc::compare::compare(y, &want.data);
        assert!(d.ok(), "{what} output {i} vs ONNX Runtime: {d}");
    }
}

#[test]
fn both_outputs_match_onnx_runtime_fused_and_unfused() {
    let x = fixture("input.npy");
    assert_eq!(x.shape, features::Model::INPUT0_SHAPE);
    assert_eq!(features::Model::OUTPUT_NAMES, ["feat_s8", "feat_s16"]);
    assert_eq!(
        fixture("expected.npy").shape,
        features::Model::OUTPUT0_SHAPE
    );
    assert_eq!(
        fixture("expected_1.npy").shape,
        features::Model::OUTPUT1_SHAPE
    );
    let team = Team::new(2).unwrap();

    let (mut a, mut b) = (
        vec![0.0; features::Model::OUTPUT0_LEN],
        vec![0.0; features::Model::OUTPUT1_LEN],
    );
    let mut scratch = vec![0.0; features::Model::SCRATCH_LEN];
    features::Model::new()
        .run(
            features::ModelInputs { input0: &x.data },
            features::ModelOutputs {
                output0: &mut a,
                output1: &mut b,
            },
            &mut scratch,
        )
        .unwrap();
    check("fused", &[a.clone(), b.clone()]);
    let (mut a2, mut b2) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    features::Model::new()
        .run_with(
            &team,
            features::ModelInputs { input0: &x.data },
            features::ModelOutputs {
                output0: &mut a2,
                output1: &mut b2,
            },
            &mut scratch,
        )
        .unwrap();
    assert!(a2 == a && b2 == b, "2 threads are bit-identical to 1");

    let m = features_unfused::Model::new();
    let mut scratch = vec![0.0; features_unfused::Model::SCRATCH_LEN];
    let (mut c, mut d) = (
        vec![0.0; features_unfused::Model::OUTPUT0_LEN],
        vec![0.0; features_unfused::Model::OUTPUT1_LEN],
    );
    m.run_slices_with(
        &ghost_runtime::Serial,
        &[&x.data],
        &mut [&mut c, &mut d],
        &mut scratch,
    )
    .unwrap();
    check("unfused", &[c, d]);
}

/// A wrong length names the tensor; nothing is written.
#[test]
fn a_wrong_output_length_names_the_output() {
    let x = fixture("input.npy");
    let mut a = vec![7.0; features::Model::OUTPUT0_LEN];
    let mut b = vec![7.0; features::Model::OUTPUT1_LEN - 1];
    let err = features::Model::new()
        .run_io(
            features::ModelInputs { input0: &x.data },
            features::ModelOutputs {
                output0: &mut a,
                output1: &mut b,
            },
            &mut vec![0.0; features::Model::SCRATCH_LEN],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ghost_runtime::Error::ExactLength {
                arg: "outputs.output1",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(a.iter().chain(&b).all(|&v| v == 7.0));
    let err = features::Model::new()
        .run_slices_with(
            &ghost_runtime::Serial,
            &[&x.data],
            &mut [&mut a],
            &mut vec![0.0; features::Model::SCRATCH_LEN],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ghost_runtime::Error::ExactLength {
                arg: "outputs",
                expected: 2,
                actual: 1
            }
        ),
        "{err:?}"
    );
}
