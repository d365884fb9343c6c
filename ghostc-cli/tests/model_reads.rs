//! Every `ghostc` command that reads a model opens the file exactly once (issue 11: `verify`
//! used to import it up to three times, `compile` to read it three times, `bench --profile` to
//! run the whole pipeline twice). Opens are counted by inotify across processes (see
//! `ghostc/tests/open_count`), so a read anywhere in the binary counts.
#![cfg(target_os = "linux")]

#[path = "../../ghostc/tests/open_count/mod.rs"]
mod open_count;

use std::path::Path;
use std::process::Command;

use open_count::{private_model, OpenCounter};

const MODEL: &str = "ts11_v1_w050_32x32_b1";

/// Runs `ghostc ARGS` and asserts success.
fn ghostc(args: &[&std::ffi::OsStr]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .args(args)
        .output()
        .expect("spawn ghostc");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "ghostc {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&o.stdout).into_owned() + &stderr
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// An input .npy of the model's shape.
fn input(dir: &Path) -> std::path::PathBuf {
    let x = dir.join("x.npy");
    let shape = [1, 3, 32, 32];
    let data: Vec<f32> = (0..3 * 32 * 32)
        .map(|i| (i % 7) as f32 / 7.0 - 0.5)
        .collect();
    ghostc::npy::write_f32(&x, &shape, &data).unwrap();
    x
}

#[test]
fn compile_inspect_and_run_open_the_model_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = private_model(MODEL, dir.path());
    let x = input(dir.path());
    let out = dir.path().join("crate");
    let y = dir.path().join("y.npy");
    let opens = OpenCounter::watch(&model);
    let m = model.as_os_str();
    // An unnamed --shape takes the path that looks up the only input's name.
    let runs: [Vec<&std::ffi::OsStr>; 5] = [
        vec![os("compile"), m, os("--out"), out.as_os_str()],
        vec![
            os("compile"),
            m,
            os("--out"),
            out.as_os_str(),
            os("--shape"),
            os("1x3x32x32"),
        ],
        vec![os("inspect"), m, os("--shape"), os("1x3x32x32")],
        vec![os("inspect"), m, os("--before")],
        vec![
            os("run"),
            m,
            os("--input"),
            x.as_os_str(),
            os("--output"),
            y.as_os_str(),
        ],
    ];
    for args in runs {
        ghostc(&args);
        assert_eq!(opens.take(), 1, "ghostc {args:?}");
    }
}

#[test]
fn verify_opens_the_model_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = private_model(MODEL, dir.path());
    let x = input(dir.path());
    let opens = OpenCounter::watch(&model);
    let text = ghostc(&[
        os("verify"),
        model.as_os_str(),
        os("--input"),
        x.as_os_str(),
    ]);
    assert!(
        text.contains("vs interpreter:") && text.contains("-> ok"),
        "{text}"
    );
    assert_eq!(opens.take(), 1);
}
