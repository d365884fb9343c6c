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

/// A two-output backbone (timm `features_only` GhostNet, 3x64x64 input; outputs
/// `feat_s8` [1, 20, 8, 8] and `feat_s16` [1, 32, 4, 4]), compiled by the same build script.
///
/// ```
/// use example_buildrs::features::{Model, ModelInputs, ModelOutputs};
/// let image = vec![0.5_f32; Model::INPUT0_LEN];
/// let (mut s8, mut s16) = (vec![0.0; Model::OUTPUT0_LEN], vec![0.0; Model::OUTPUT1_LEN]);
/// let mut scratch = vec![0.0_f32; Model::SCRATCH_LEN];
/// Model::new()
///     .run(
///         ModelInputs { input0: &image },
///         ModelOutputs { output0: &mut s8, output1: &mut s16 },
///         &mut scratch,
///     )
///     .unwrap();
/// ```
pub mod features {
    include!(concat!(env!("OUT_DIR"), "/features.rs"));
}

/// [`features`] compiled with every fusion off (a different program, the same numbers).
pub mod features_unfused {
    include!(concat!(env!("OUT_DIR"), "/features_unfused.rs"));
}

// The README's Rust snippets (build.rs, include!, proc-macro) compile as doctests of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The int8 (QDQ) fixtures of `fixtures/quant` and `fixtures/quantize` (`q_ghostc_qdq`), each
/// compiled fused and with `--no-fuse quant`
/// (`*_nofold`: every conv dequantized to f32); `tests/quant.rs` checks them against ONNX
/// Runtime.
pub mod quant {
    macro_rules! quant_modules {
        ($($m:ident),* $(,)?) => {$(
            #[allow(missing_docs)]
            pub mod $m {
                include!(concat!(env!("OUT_DIR"), "/", stringify!($m), ".rs"));
            }
        )*};
    }
    quant_modules!(
        q_qdq_u8s8_perchannel_v1_w100_48x48_op13,
        q_qdq_u8s8_perchannel_v1_w100_48x48_op13_nofold,
        q_qdq_s8s8_perchannel_v1_w050_32x32_op17,
        q_qdq_s8s8_perchannel_v1_w050_32x32_op17_nofold,
        q_qdq_u8s8_pertensor_v1_w050_32x32_op17,
        q_qdq_u8s8_pertensor_v1_w050_32x32_op17_nofold,
        q_qdq_u8s8_perchannel_v1_w050_32x32_op21,
        q_qdq_u8s8_perchannel_v1_w050_32x32_op21_nofold,
        q_ghostc_qdq,
        q_ghostc_qdq_nofold,
    );
}
