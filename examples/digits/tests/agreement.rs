//! The compiled model predicts exactly what PyTorch predicts on every test image, and its
//! logits stay within the project tolerance of PyTorch's.

use digits::{evaluate, TestSet};

#[test]
fn compiled_model_agrees_with_pytorch() {
    let set = TestSet::load().unwrap();
    assert!(!set.is_empty());
    let r = evaluate(&set).unwrap();
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
fn benchmark_runs() {
    let set = TestSet::load().unwrap();
    let t = digits::benchmark(&set, 3, 0.0).unwrap();
    assert!(t.latency > 0.0 && t.throughput > 0.0, "{t:?}");
}

#[test]
fn npy_reader_rejects_garbage() {
    assert!(digits::npy::read_f32(b"not an npy file").is_err());
    assert!(digits::npy::read_f32(b"\x93NUMPY\x01\x00\xff\xff{}").is_err());
}
