//! Runs the compiled model on the fixture's input (batch 3) and checks it against the ONNX
//! Runtime output with the project tolerance `max|y - ref| <= 1e-4 * max|ref| + 1e-5`.

use std::path::PathBuf;

use example_buildrs::Model;

// The fixture was exported with a dynamic batch; the compiled model keeps it.
const _: () = assert!(Model::DYNAMIC_BATCH);

fn fixture(file: &str) -> ghostc::npy::Array<f32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/ts17_v1_w050_64x64_dynbatch_b3")
        .join(file);
    ghostc::npy::read_f32(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn batch_of_three_matches_onnx_runtime() {
    let (input, expected) = (fixture("input.npy"), fixture("expected.npy"));
    assert_eq!(input.shape, [3, 3, 64, 64]);
    assert_eq!(input.data.len(), 3 * Model::INPUT_LEN);

    let model = Model::new();
    let mut output = vec![0.0; expected.data.len()];
    let mut scratch = vec![0.0; Model::SCRATCH_LEN];
    model.run(&input.data, &mut output, &mut scratch).unwrap();

    let diff = ghostc::compare::compare(&output, &expected.data);
    assert!(diff.ok(), "batch 3 vs ONNX Runtime: {diff}");
}

#[test]
fn one_image_at_a_time_gives_the_same_rows() {
    let (input, expected) = (fixture("input.npy"), fixture("expected.npy"));
    let model = Model::new();
    let mut scratch = vec![0.0; Model::SCRATCH_LEN];
    for (x, want) in input
        .data
        .chunks(Model::INPUT_LEN)
        .zip(expected.data.chunks(Model::OUTPUT_LEN))
    {
        let mut y = vec![0.0; Model::OUTPUT_LEN];
        model.run(x, &mut y, &mut scratch).unwrap();
        let diff = ghostc::compare::compare(&y, want);
        assert!(diff.ok(), "single image vs ONNX Runtime: {diff}");
    }
}

#[test]
fn wrong_lengths_are_errors_not_panics() {
    let model = Model::new();
    let mut scratch = vec![0.0; Model::SCRATCH_LEN];
    let mut out = vec![0.0; Model::OUTPUT_LEN];
    assert!(model
        .run(&vec![0.0; Model::INPUT_LEN + 1], &mut out, &mut scratch)
        .is_err());
    assert!(model
        .run(
            &vec![0.0; Model::INPUT_LEN],
            &mut out,
            &mut scratch[..Model::SCRATCH_LEN - 1]
        )
        .is_err());
}

/// Threads: a batch split by images over a 2- and 3-thread team (each thread with its own
/// scratch), and single images with every layer split across the team (scratch for one
/// image only), all against ONNX Runtime and against the serial run.
#[test]
fn threads_match_onnx_runtime_and_serial() {
    use ghost_runtime::{CompiledModel, Team, WithScratch};
    let (input, expected) = (fixture("input.npy"), fixture("expected.npy"));
    let model = Model::new();
    let mut serial = vec![0.0; expected.data.len()];
    let mut scratch = vec![0.0; Model::SCRATCH_LEN];
    model.run(&input.data, &mut serial, &mut scratch).unwrap();
    for threads in [2, 3] {
        // Whole batch, images on separate threads.
        let mut m = WithScratch::with_threads(Model::new(), threads).unwrap();
        assert_eq!(m.threads(), threads);
        let mut output = vec![f32::NAN; expected.data.len()];
        m.run(&input.data, &mut output).unwrap();
        let diff = ghostc::compare::compare(&output, &expected.data);
        assert!(
            diff.ok(),
            "batch 3 on {threads} threads vs ONNX Runtime: {diff}"
        );
        assert_eq!(output, serial, "image-parallel batch differs from serial");

        // One image at a time: each layer split across the team.
        let team = Team::new(threads).unwrap();
        for (i, (x, want)) in input
            .data
            .chunks(Model::INPUT_LEN)
            .zip(expected.data.chunks(Model::OUTPUT_LEN))
            .enumerate()
        {
            let mut y = vec![f32::NAN; Model::OUTPUT_LEN];
            CompiledModel::run_with(&model, &team, x, &mut y, &mut scratch).unwrap();
            let diff = ghostc::compare::compare(&y, want);
            assert!(
                diff.ok(),
                "image {i}, layers split over {threads} threads: {diff}"
            );
            let row = &serial[i * Model::OUTPUT_LEN..(i + 1) * Model::OUTPUT_LEN];
            assert_eq!(
                y, row,
                "image {i} on {threads} threads differs from the serial run"
            );
        }
    }
}
