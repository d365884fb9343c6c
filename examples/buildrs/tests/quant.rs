//! The int8 QDQ fixtures (`fixtures/quant`, `quantize_static` exports) compiled by `build.rs`
//! (`ghostc::Builder`), fused (QConv on the int8 kernels) and with the int8 fold off (every
//! conv dequantized to f32), run on the fixture's input: every output element within one
//! quantization step of the output scale of ONNX Runtime's output on the same QDQ model, on
//! one thread and on a 2-thread team. Prints how many elements are 0 and 1 steps off.

use std::path::PathBuf;

use example_buildrs::quant::*;
use ghost_runtime::Team;

fn fixture(name: &str, file: &str) -> ghostc::npy::Array<f32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/quant")
        .join(name)
        .join(file);
    ghostc::npy::read_f32(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The output scale `tools/make_fixtures.py --quant` recorded for fixture `name`.
fn output_scale(name: &str) -> f32 {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quant/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .find(&format!("\"name\": \"{name}\""))
        .unwrap_or_else(|| panic!("{name} not in the manifest"));
    number_after(&text[at..], "output_scale")
}

/// The number after the first `"key": ` in JSON `text` (the files are written by our tools,
/// so a search is enough).
fn number_after(text: &str, key: &str) -> f32 {
    let key = format!("\"{key}\": ");
    let from = text.find(&key).unwrap_or_else(|| panic!("{key} missing")) + key.len();
    let end = text[from..].find([',', '\n', '}']).unwrap() + from;
    text[from..end].trim().parse().unwrap()
}

/// Checks `got` against ONNX Runtime within one step; returns the counts 0 and 1 steps off.
fn check(name: &str, what: &str, got: &[f32]) -> [usize; 2] {
    check_against(
        name,
        what,
        got,
        &fixture(name, "expected.npy"),
        output_scale(name),
    )
}

/// [`check`] against `want` with output scale `scale`.
fn check_against(
    name: &str,
    what: &str,
    got: &[f32],
    want: &ghostc::npy::Array<f32>,
    scale: f32,
) -> [usize; 2] {
    assert_eq!(got.len(), want.data.len());
    let mut counts = [0usize; 2];
    for (i, (&y, &r)) in got.iter().zip(&want.data).enumerate() {
        let steps = ((y - r) / scale).abs();
        assert!(
            steps <= 1.0 + 1e-3,
            "{name} {what}: element {i} is {steps} steps off ({y} vs ONNX Runtime {r})"
        );
        counts[(steps > 0.5) as usize] += 1;
    }
    eprintln!(
        "{name} {what}: {} elements 0 steps off, {} 1 step off",
        counts[0], counts[1]
    );
    counts
}

macro_rules! quant_test {
    ($test:ident, $name:literal, $fused:ident, $nofold:ident) => {
        #[test]
        fn $test() {
            let x = fixture($name, "input.npy");
            assert_eq!(x.shape, $fused::Model::INPUT_SHAPE);
            let mut y = vec![0.0; $fused::Model::OUTPUT_LEN];
            let mut scratch = vec![0.0; $fused::Model::SCRATCH_LEN];
            $fused::Model::new()
                .run(&x.data, &mut y, &mut scratch)
                .unwrap();
            check($name, "fused", &y);
            let team = Team::new(2).unwrap();
            let mut yt = vec![0.0; y.len()];
            $fused::Model::new()
                .run_with(&team, &x.data, &mut yt, &mut scratch)
                .unwrap();
            assert_eq!(yt, y, "{}: 2 threads differ from 1", $name);
            let mut yn = vec![0.0; y.len()];
            let mut scratch = vec![0.0; $nofold::Model::SCRATCH_LEN];
            $nofold::Model::new()
                .run(&x.data, &mut yn, &mut scratch)
                .unwrap();
            check($name, "--no-fuse quant", &yn);
        }
    };
}

quant_test!(
    u8s8_perchannel_w100_48x48_op13,
    "qdq_u8s8_perchannel_v1_w100_48x48_op13",
    q_qdq_u8s8_perchannel_v1_w100_48x48_op13,
    q_qdq_u8s8_perchannel_v1_w100_48x48_op13_nofold
);
quant_test!(
    s8s8_perchannel_w050_32x32_op17,
    "qdq_s8s8_perchannel_v1_w050_32x32_op17",
    q_qdq_s8s8_perchannel_v1_w050_32x32_op17,
    q_qdq_s8s8_perchannel_v1_w050_32x32_op17_nofold
);
quant_test!(
    u8s8_pertensor_w050_32x32_op17,
    "qdq_u8s8_pertensor_v1_w050_32x32_op17",
    q_qdq_u8s8_pertensor_v1_w050_32x32_op17,
    q_qdq_u8s8_pertensor_v1_w050_32x32_op17_nofold
);
quant_test!(
    u8s8_perchannel_w050_32x32_op21,
    "qdq_u8s8_perchannel_v1_w050_32x32_op21",
    q_qdq_u8s8_perchannel_v1_w050_32x32_op21,
    q_qdq_u8s8_perchannel_v1_w050_32x32_op21_nofold
);

/// The QDQ model `ghostc quantize` wrote (`fixtures/quantize`, static batch 2, 8 images): its
/// SE expansion convs carry their HardSigmoid inside the QDQ pair, so they run on the int8
/// 1x1 kernel with the activation in the requantization; ONNX Runtime's output on the same
/// file is the reference.
#[test]
fn ghostc_quantize_fixture() {
    use q_ghostc_qdq as fused;
    use q_ghostc_qdq_nofold as nofold;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/quantize/ghostc_qdq_v1_w100_48x48_b2");
    let read = |f: &str| ghostc::npy::read_f32(&dir.join(f)).unwrap();
    let (x, want) = (read("input.npy"), read("expected.npy"));
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    let scale = number_after(&meta, "output_scale");
    let (m, mut scratch) = (fused::Model::new(), vec![0.0; fused::Model::SCRATCH_LEN]);
    let y = per_call(&x.data, |x, y| m.run(x, y, &mut scratch).unwrap());
    check_against("ghostc_qdq", "fused", &y, &want, scale);
    let (m, mut scratch) = (nofold::Model::new(), vec![0.0; nofold::Model::SCRATCH_LEN]);
    let yn = per_call(&x.data, |x, y| m.run(x, y, &mut scratch).unwrap());
    check_against("ghostc_qdq", "--no-fuse quant", &yn, &want, scale);
}

/// `model` on the fixture's images two at a time (its static batch), outputs in order.
fn per_call(x: &[f32], mut model: impl FnMut(&[f32], &mut [f32])) -> Vec<f32> {
    use q_ghostc_qdq::Model;
    let mut y = Vec::new();
    for images in x.chunks(Model::INPUT_LEN) {
        let mut out = vec![0.0; Model::OUTPUT_LEN];
        model(images, &mut out);
        y.extend(out);
    }
    y
}
