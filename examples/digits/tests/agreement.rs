//! The compiled f32 model predicts exactly what PyTorch predicts on every test image, and its
//! logits stay within the project tolerance of PyTorch's; the int8 build (quantized by
//! build.rs) keeps the accuracy within half a point and agrees with PyTorch on >= 99 %.

use digits::{evaluate, int8, Model, TestSet};

#[test]
fn compiled_model_agrees_with_pytorch() {
    let set = TestSet::load().unwrap();
    assert!(!set.is_empty());
    let r = evaluate(&Model::new(), &set).unwrap();
    assert_eq!(
        r.agree, r.images,
        "top-1 agreement with PyTorch must be 100 %: {r:?}"
    );
    assert_eq!(r.correct, r.torch_correct, "{r:?}");
    let scale = set.torch_logits.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(
        r.max_abs_diff <= 1e-4 * scale + 1e-5,
        "max |logit diff| {} vs scale {scale}",
        r.max_abs_diff
    );
    // Sanity: the demo model is actually trained.
    assert!(r.correct * 10 >= r.images * 9, "{r:?}");
}

#[test]
fn int8_build_keeps_the_accuracy() {
    let set = TestSet::load().unwrap();
    let f = evaluate(&Model::new(), &set).unwrap();
    let q = evaluate(&int8::Model::new(), &set).unwrap();
    // Accuracy within 0.5 points of f32 (in images: 200 * drop <= images).
    let drop = f.correct.saturating_sub(q.correct);
    assert!(200 * drop <= q.images, "int8 {q:?} vs f32 {f:?}");
    assert!(100 * q.agree >= 99 * q.images, "int8 {q:?}");
    // It is the int8 build: its weights are about a quarter of the f32 ones, and its logits
    // are not the f32 ones (quantization moves them), though close to PyTorch's.
    const { assert!(int8::Model::WEIGHT_BYTES * 3 < Model::WEIGHT_BYTES) };
    let scale = set.torch_logits.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(q.max_abs_diff > 1e-3 * scale, "{q:?}");
    assert!(q.max_abs_diff < 0.2 * scale, "{q:?} vs scale {scale}");
}

#[test]
fn benchmark_runs() {
    let set = TestSet::load().unwrap();
    let t = digits::benchmark(&Model::new(), &set, 3, 0.0).unwrap();
    assert!(t.latency > 0.0 && t.throughput > 0.0, "{t:?}");
    let t = digits::benchmark(&int8::Model::new(), &set, 3, 0.0).unwrap();
    assert!(t.latency > 0.0 && t.throughput > 0.0, "{t:?}");
}

#[test]
fn npy_reader_rejects_garbage() {
    assert!(digits::npy::read_f32(b"not an npy file").is_err());
    assert!(digits::npy::read_f32(b"\x93NUMPY\x01\x00\xff\xff{}").is_err());
}
