//! Test helpers shared by ghostc's test suites (`ghostc`, the CLI crate, `ghost-macros`) and its
//! fuzz targets (`fuzz/`, a separate workspace that depends on this crate by path):
//!
//! - [`snapshot`]: committed files compared with what a test generates, rewritten with
//!   `GHOSTC_BLESS=1`;
//! - [`rng`]: the one seeded generator for test data;
//! - [`onnx`]: building ONNX models with the prost types, node by node;
//! - [`models`]: whole models several suites share.
//!
//! Deliberately not done here: nothing runs ghostc (each suite calls the API it tests), and
//! ghost-runtime's tests do not use this crate (the runtime stays dependency-free, dev
//! dependencies included; it keeps its own copy of the generator).

pub mod models;
pub mod onnx;
pub mod rng;
pub mod snapshot;

pub use rng::Rng;
