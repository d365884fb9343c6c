//! MaxPool and AveragePool (count_include_pad=0) with `ceil_mode=1` through `ghostc verify`:
//! compiled, built and run, both outputs against ONNX Runtime's goldens
//! (`tests/data/pool_ceil`, made by `tools/make_pool_ceil.py`) and the interpreter. The model
//! has two outputs, so this also runs the multi-output runner and `--expect NAME=FILE`.

use std::path::Path;
use std::process::Command;

#[test]
fn ceil_mode_pools_match_onnx_runtime() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pool_ceil");
    let arg = |name: &str, file: &str| format!("{name}={}", data.join(file).display());
    let o = Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .arg("verify")
        .arg(data.join("model.onnx"))
        .args(["--input", &arg("x", "input.npy")])
        .args(["--expect", &arg("av", "expected_1.npy")])
        .args(["--expect", &arg("mx", "expected.npy")])
        .output()
        .expect("spawn ghostc");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{stdout}\n{stderr}");
    for name in ["mx", "av"] {
        assert!(
            stdout.contains(&format!("vs interpreter [{name}]"))
                && stdout.contains(&format!("vs --expect [{name}]")),
            "{name}: {stdout}"
        );
    }
    assert_eq!(stdout.matches("-> ok").count(), 4, "{stdout}");
}
