//! The fixture list of `fixtures/manifest.json`, shared by the library's tests
//! (`ghostc/tests`) and the CLI's end-to-end tests (`ghostc-cli/tests/e2e_common`).
#![allow(dead_code)] // each suite uses a subset

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One entry of `fixtures/manifest.json`.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub name: String,
    pub dir: PathBuf,
    pub input_shape: Vec<usize>,
    pub dynamic_batch: bool,
    /// Model outputs (the manifest's `output_names`, 1 when absent).
    pub outputs: usize,
}

impl Fixture {
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.onnx")
    }

    /// ONNX Runtime's golden for output `i` (see [`expected_file`]).
    pub fn expected(&self, i: usize) -> PathBuf {
        self.dir.join(expected_file(i))
    }
}

/// File name of ONNX Runtime's golden for output `i`: `expected.npy`, then `expected_1.npy`, ...
pub fn expected_file(i: usize) -> String {
    if i == 0 {
        "expected.npy".into()
    } else {
        format!("expected_{i}.npy")
    }
}

/// Every fixture in the manifest, in manifest order.
pub fn fixtures() -> Vec<Fixture> {
    let text = std::fs::read_to_string(root().join("fixtures/manifest.json"))
        .expect("fixtures/manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    manifest["fixtures"]
        .as_array()
        .expect("fixtures list")
        .iter()
        .map(|f| Fixture {
            name: f["name"].as_str().expect("name").to_string(),
            dir: root().join(f["path"].as_str().expect("path")),
            input_shape: f["input_shape"]
                .as_array()
                .expect("input_shape")
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect(),
            dynamic_batch: f["dynamic_batch"].as_bool().unwrap_or(false),
            outputs: f["output_names"].as_array().map_or(1, Vec::len),
        })
        .collect()
}

/// The fixture called `name`.
pub fn fixture(name: &str) -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("fixture {name} is not in the manifest"))
}

/// The smallest fixture (static batch 1, 32x32): the one the e2e harness crate is built from.
pub const SMALL: &str = "ts11_v1_w050_32x32_b1";

/// One entry of `fixtures/quant/manifest.json` (`tools/make_fixtures.py --quant`): a model
/// quantized by ONNX Runtime's `quantize_static`, its output's quantization scale, and ORT's
/// output as `expected.npy`.
#[derive(Clone, Debug)]
pub struct QuantFixture {
    pub name: String,
    pub dir: PathBuf,
    pub output_scale: f32,
}

impl QuantFixture {
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.onnx")
    }
}

/// Every quantized fixture, in manifest order.
pub fn quant_fixtures() -> Vec<QuantFixture> {
    let text = std::fs::read_to_string(root().join("fixtures/quant/manifest.json"))
        .expect("fixtures/quant/manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    manifest["fixtures"]
        .as_array()
        .expect("fixtures list")
        .iter()
        .map(|f| QuantFixture {
            name: f["name"].as_str().expect("name").to_string(),
            dir: root().join(f["path"].as_str().expect("path")),
            output_scale: f["output_scale"].as_f64().expect("output_scale") as f32,
        })
        .collect()
}

/// `|actual - expected|` in steps of `scale` (a quantized output's scale).
#[derive(Clone, Copy, Debug)]
pub struct Steps {
    /// The largest, unrounded.
    pub max: f32,
    /// Counts of 0, 1, 2 and 3+ steps (rounded; NaN counts as 3+).
    pub hist: [usize; 4],
}

impl Steps {
    /// Elements 2 or more steps off.
    pub fn two_or_more(&self) -> usize {
        self.hist[2] + self.hist[3]
    }
}

/// Steps off `expected`; panics when the lengths differ.
pub fn steps(actual: &[f32], expected: &[f32], scale: f32) -> Steps {
    assert_eq!(actual.len(), expected.len());
    let mut s = Steps {
        max: 0.0,
        hist: [0; 4],
    };
    for (a, e) in actual.iter().zip(expected) {
        let d = (a - e).abs() / scale;
        s.max = s.max.max(d);
        let r = d.round();
        s.hist[if r.is_nan() { 3 } else { (r as usize).min(3) }] += 1;
    }
    s
}
