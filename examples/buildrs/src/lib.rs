//! Example: a GhostNet compiled by `build.rs` through `ghostc::Builder`, then `include!`d.
//!
//! `build.rs` writes `$OUT_DIR/model.rs` and `$OUT_DIR/model.weights`; this crate depends on
//! `ghost-runtime` alone. The model (a timm GhostNet v1, width 0.5, 3x64x64 input, 10 classes)
//! was exported with a dynamic batch, so [`Model::run`] takes any number of images at once.
//!
//! ```
//! use example_buildrs::Model;
//! let model = Model::new();
//! let input = vec![0.5_f32; 2 * Model::INPUT_LEN]; // two images
//! let mut output = vec![0.0_f32; 2 * Model::OUTPUT_LEN];
//! let mut scratch = vec![0.0_f32; Model::SCRATCH_LEN]; // reusable; run never allocates
//! model.run(&input, &mut output, &mut scratch).unwrap();
//! ```

include!(concat!(env!("OUT_DIR"), "/model.rs"));

// The README's Rust snippets (build.rs, include!, proc-macro) compile as doctests of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
