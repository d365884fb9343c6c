//! Compiles the fixture models into `$OUT_DIR` at build time: `model.rs` (+ `model.weights`),
//! a two-output backbone fused (`features.rs`) and unfused (`features_unfused.rs`), and the
//! QDQ int8 fixtures of `fixtures/quant` and the one `ghostc quantize` wrote
//! (`fixtures/quantize`), each fused (`q_<name>.rs`) and with the int8 fold off
//! (`q_<name>_nofold.rs`).

fn main() {
    let fail = |e: ghostc::CompileError| -> std::path::PathBuf {
        eprintln!("error: ghostc: {e}");
        std::process::exit(1)
    };
    // Dynamic batch stays dynamic: `Model::run` accepts any number of 3x64x64 images.
    ghostc::Builder::new("../../fixtures/ts17_v1_w050_64x64_dynbatch_b3/model.onnx")
        .compile()
        .unwrap_or_else(fail);
    // A timm features_only backbone: two outputs, run through `ModelInputs`/`ModelOutputs`.
    let features = "../../fixtures/ts17_features_w050_64x64_b1/model.onnx";
    ghostc::Builder::new(features)
        .module_name("features")
        .compile()
        .unwrap_or_else(fail);
    ghostc::Builder::new(features)
        .module_name("features_unfused")
        .fuse(ghostc::passes::FuseOptions::none())
        .compile()
        .unwrap_or_else(fail);
    for name in QUANT {
        let model = format!("../../fixtures/quant/{name}/model.onnx");
        ghostc::Builder::new(&model)
            .module_name(&format!("q_{name}"))
            .compile()
            .unwrap_or_else(fail);
        ghostc::Builder::new(&model)
            .module_name(&format!("q_{name}_nofold"))
            .fuse(ghostc::passes::FuseOptions {
                quant: false,
                ..Default::default()
            })
            .compile()
            .unwrap_or_else(fail);
    }
    // The QDQ model `ghostc quantize` wrote: its SE expansions keep their HardSigmoid inside
    // the QDQ pair, which the int8 kernels' requantization computes.
    let model = "../../fixtures/quantize/ghostc_qdq_v1_w100_48x48_b2/model.onnx";
    ghostc::Builder::new(model)
        .module_name("q_ghostc_qdq")
        .compile()
        .unwrap_or_else(fail);
    ghostc::Builder::new(model)
        .module_name("q_ghostc_qdq_nofold")
        .fuse(ghostc::passes::FuseOptions {
            quant: false,
            ..Default::default()
        })
        .compile()
        .unwrap_or_else(fail);
}

/// The QDQ fixtures (`quantize_static` exports; the QOperator one is not lowered yet).
const QUANT: [&str; 4] = [
    "qdq_u8s8_perchannel_v1_w100_48x48_op13",
    "qdq_s8s8_perchannel_v1_w050_32x32_op17",
    "qdq_u8s8_pertensor_v1_w050_32x32_op17",
    "qdq_u8s8_perchannel_v1_w050_32x32_op21",
];
