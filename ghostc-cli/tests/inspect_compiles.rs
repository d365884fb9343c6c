//! `ghostc inspect` says whether code generation accepts the model: the full report, then
//! `compiles: yes` (exit 0), or `compiles: NO` with every node code generation cannot lower
//! and exit code 1, the same list `ghostc compile` fails with.

use std::process::Command;

use ghostc_testkit::models::five_unsupported;

fn ghostc(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .args(args)
        .output()
        .expect("spawn ghostc")
}

#[test]
fn inspect_flags_a_model_that_will_not_compile_and_names_every_blocker() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("five.onnx");
    std::fs::write(&model, five_unsupported().bytes()).unwrap();
    let o = ghostc(&["inspect".as_ref(), model.as_os_str()]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("compiles: NO"), "{stdout}");
    assert!(stderr.contains("imports but does not compile"), "{stderr}");
    for node in [
        "pow_two_activations",
        "dilated_pool",
        "concat_on_width",
        "softmax_4d",
        "flatten_spatial",
    ] {
        assert!(stderr.contains(&format!("'{node}'")), "{node}: {stderr}");
    }
    assert!(stderr.contains("by op: "), "{stderr}");
    // `compile` fails with the same list.
    let out = dir.path().join("crate");
    let c = ghostc(&[
        "compile".as_ref(),
        model.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let cerr = String::from_utf8_lossy(&c.stderr);
    assert_eq!(c.status.code(), Some(1), "{cerr}");
    assert!(
        cerr.contains("code generation cannot lower 5 nodes"),
        "{cerr}"
    );
    assert!(!out.exists());
}

#[test]
fn inspect_says_when_a_model_compiles() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/ts17_features_w050_64x64_b1/model.onnx");
    let o = ghostc(&["inspect".as_ref(), fixture.as_os_str()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("compiles: yes"), "{stdout}");
}
