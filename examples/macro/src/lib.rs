//! Example: a GhostNet compiled in place by the `ghost_macros::model!` proc-macro.
//!
//! The macro compiles the ONNX file while this crate builds and expands to the generated
//! `Model` items right here; no build script. Paths are relative to this crate's
//! `Cargo.toml`, and the crate is recompiled when the model file changes. The model is
//! Huawei's GhostNet (exported at opset 11, 3x48x48 input, batch 1, 10 classes).
//!
//! ```
//! use example_macro::Model;
//! let model = Model::new();
//! let input = vec![0.5_f32; Model::INPUT_LEN];
//! let mut output = vec![0.0_f32; Model::OUTPUT_LEN];
//! let mut scratch = vec![0.0_f32; Model::SCRATCH_LEN];
//! model.run(&input, &mut output, &mut scratch).unwrap();
//! ```

ghost_macros::model!("../../fixtures/ts11_huawei_48x48_b1/model.onnx");
