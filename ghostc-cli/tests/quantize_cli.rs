//! `ghostc quantize` end to end: writes a QDQ model that `ghostc run` reads, prints the
//! accuracy report; bad calibration inputs exit 1 with a message naming the directory / file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ghostc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn quantize_writes_a_model_and_reports_accuracy() {
    let tmp = tempfile::tempdir().unwrap();
    let model = root().join("fixtures/ts11_v1_w050_32x32_b1/model.onnx");
    let out = tmp.path().join("m8.onnx");
    let calib = tmp.path().join("calib");
    std::fs::create_dir(&calib).unwrap();
    // A batch of 3 images in one file, one image in another.
    let img = 3 * 32 * 32;
    let data: Vec<f32> = (0..4 * img)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    ghostc::npy::write_f32(&calib.join("a.npy"), &[3, 3, 32, 32], &data[..3 * img]).unwrap();
    ghostc::npy::write_f32(&calib.join("b.npy"), &[3, 32, 32], &data[3 * img..]).unwrap();
    let o = ghostc(&[
        "quantize",
        model.to_str().unwrap(),
        "--calibrate",
        calib.to_str().unwrap(),
        "--method",
        "percentile",
        "--keep-float",
        "stem,head",
        "--out",
        out.to_str().unwrap(),
        "--validate-random",
        "3",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("calibration: 4 inputs, Percentile(99.99)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("top-1 agreement") && stdout.contains("worst layers"),
        "{stdout}"
    );
    assert!(
        stderr.contains("calibrating") && stderr.contains("4/4"),
        "progress: {stderr}"
    );
    // The written model runs through `ghostc run`.
    let y = tmp.path().join("y.npy");
    let x = root().join("fixtures/ts11_v1_w050_32x32_b1/input.npy");
    let o = ghostc(&[
        "run",
        out.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--output",
        y.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ghostc::npy::read_f32(&y).unwrap().shape, vec![1, 10]);
}

#[test]
fn bad_calibration_inputs_fail_naming_the_culprit() {
    let tmp = tempfile::tempdir().unwrap();
    let model = root().join("fixtures/ts11_v1_w050_32x32_b1/model.onnx");
    let out = tmp.path().join("m8.onnx");
    let run = |calib: &Path| {
        ghostc(&[
            "quantize",
            model.to_str().unwrap(),
            "--calibrate",
            calib.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = run(tmp.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("holds no .npy files") && err.contains(&tmp.path().display().to_string()),
        "{err}"
    );
    ghostc::npy::write_f32(
        &tmp.path().join("x.npy"),
        &[1, 3, 64, 64],
        &vec![0.0; 3 * 64 * 64],
    )
    .unwrap();
    let o = run(tmp.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("x.npy") && err.contains("1x3x64x64") && err.contains("1x3x32x32"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written on error");
}
