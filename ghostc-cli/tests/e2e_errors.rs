//! The generated model's error behaviour in a real release binary (the crate's own profile:
//! LTO, `panic = "abort"`, so a panic would abort the harness, not unwind):
//! - a wrong-length input, output or scratch returns `Err(Error::ExactLength)` (input, output) or `Err(Error::Length)` (scratch) naming the argument
//!   (both in the value and in its message), never panics, and leaves `output` untouched; a
//!   scratch larger than needed is accepted;
//! - the output does not depend on what the scratch held (zeros, NaN, 1e30 give identical bits);
//! - NaN and ±Inf in the input propagate like in the reference interpreter: the generated
//!   output and `ghostc::interp::run` agree, NaN positions included (`compare` counts a NaN on
//!   one side only as a mismatch).
//!
//! ONNX Runtime propagates NaN through Relu, Clip and HardSigmoid (checked with onnxruntime
//! 1.31.1), and so do the interpreter and ghost-runtime's epilogues.
//!
//! Uses the harness crate of `e2e_common` (shared with `e2e_alloc`; built once per process).

mod e2e_common;

use ghostc::ir::Tensor;
use ghostc::onnx::{load_model, ImportOptions};

#[test]
fn wrong_lengths_are_errors_naming_the_argument() {
    let h = e2e_common::harness();
    let (ok, out) = e2e_common::run_bin(&h.harness, &["errors"]);
    println!("{out}");
    assert!(
        ok,
        "length errors are wrong (or the model panicked):\n{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn output_does_not_depend_on_scratch_contents() {
    let h = e2e_common::harness();
    let (ok, out) = e2e_common::run_bin(&h.harness, &["scratch"]);
    assert!(
        ok,
        "output depends on the scratch's previous contents:\n{out}"
    );
}

#[test]
fn nan_and_inf_propagate_like_the_interpreter() {
    let h = e2e_common::harness();
    let fx = e2e_common::fixture(e2e_common::SMALL);
    let base = ghostc::npy::read_f32(&fx.dir.join("input.npy")).unwrap();
    let graph = load_model(&fx.model(), &ImportOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let n = base.data.len();
    // (label, [(index, value)]): single specials at a corner, the middle and the last element,
    // and a mix. Corner pixels sit next to zero padding, middle ones are interior.
    let cases: Vec<(&str, Vec<(usize, f32)>)> = vec![
        ("nan@0", vec![(0, f32::NAN)]),
        ("nan@mid", vec![(n / 2 + 17, f32::NAN)]),
        ("+inf@mid", vec![(n / 3 + 5, f32::INFINITY)]),
        ("-inf@last", vec![(n - 1, f32::NEG_INFINITY)]),
        (
            "mix",
            vec![
                (1, f32::NAN),
                (n / 2, f32::INFINITY),
                (n - 40, f32::NEG_INFINITY),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (label, edits) in cases {
        let mut data = base.data.clone();
        for &(i, v) in &edits {
            data[i] = v;
        }
        let (x, y) = (
            tmp.path().join(format!("{label}.npy")),
            tmp.path().join(format!("{label}.out.npy")),
        );
        ghostc::npy::write_f32(&x, &base.shape, &data).unwrap();
        let (ok, out) = e2e_common::run_bin(&h.runner, &[x.to_str().unwrap(), y.to_str().unwrap()]);
        assert!(ok, "{label}: the generated runner failed:\n{out}");
        let got = ghostc::npy::read_f32(&y).unwrap().data;
        let want = ghostc::interp::run(
            &graph,
            &[Tensor::from_f32(base.shape.clone(), data).unwrap()],
        )
        .unwrap()[0]
            .to_f32_vec();
        let d = ghostc::compare::compare(&got, &want);
        let nans = |v: &[f32]| v.iter().filter(|x| x.is_nan()).count();
        println!(
            "{label:10} generated NaN {}/{} interp NaN {}/{}: {d}",
            nans(&got),
            got.len(),
            nans(&want),
            want.len()
        );
        if !d.ok() {
            failures.push(format!(
                "{label}: {d}\n  generated {got:?}\n  interp    {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "NaN/Inf handling differs from the interpreter:\n{}",
        failures.join("\n")
    );
}
