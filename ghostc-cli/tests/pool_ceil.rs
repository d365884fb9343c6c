//! MaxPool and AveragePool (count_include_pad=0) with `ceil_mode=1` through `ghostc verify`:
//! compiled, built and run, both outputs against ONNX Runtime's goldens
//! (`tests/data/pool_ceil`, made by `tools/make_pool_ceil.py`) and the interpreter. The model
//! has two outputs, so this also runs the multi-output runner and `--expect NAME=FILE`.

mod e2e_common;

use std::path::Path;

use e2e_common::ghostc_verify;

#[test]
fn ceil_mode_pools_match_onnx_runtime() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pool_ceil");
    let arg = |name: &str, file: &str| format!("{name}={}", data.join(file).display());
    let stdout = ghostc_verify(
        &data.join("model.onnx"),
        &[
            "--input".into(),
            arg("x", "input.npy"),
            "--expect".into(),
            arg("av", "expected_1.npy"),
            "--expect".into(),
            arg("mx", "expected.npy"),
        ],
    );
    for name in ["mx", "av"] {
        assert!(
            stdout.contains(&format!("vs interpreter [{name}]"))
                && stdout.contains(&format!("vs --expect [{name}]")),
            "{name}: {stdout}"
        );
    }
    assert_eq!(stdout.matches("-> ok").count(), 4, "{stdout}");
}
