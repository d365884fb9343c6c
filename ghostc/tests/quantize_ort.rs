//! `ghostc::quantize` against ONNX Runtime and against the f32 model.
//!
//! - The committed QDQ model that `ghostc quantize` wrote (fixtures/quantize, made by
//!   tools/make_quantize_fixture.py, which ran it in ORT) imports back through ghostc's
//!   importer, and ghostc's interpreter on it is within 1 quantization step of the output of
//!   ORT's output on every element, while the f32 model's output (f32.npy) is 2+ steps off
//!   somewhere (so the check can fail).
//! - Quantizing the same f32 model now, in process, writes the committed file byte for byte,
//!   and its outputs are within 1 step of ORT's (so the goldens describe what the code writes).
//! - With every node kept in f32 the writer's model is the f32 model: outputs equal the
//!   original graph's on several fixtures (every op of the GhostNet family written back).
//! - `--keep-float` classes remove exactly the weights of the layers they name.
//! - Bad inputs: an empty calibration dir, a file of the wrong shape, zero inputs, unknown
//!   `--keep-float` items, each a typed error naming the file / item.

mod fixtures_common;

use fixtures_common::root;
use ghostc::ir::{Op, Tensor};
use ghostc::onnx::{load_model, ImportOptions};
use ghostc::quantize::{
    self as q, InputError, InputSource, Method, QuantizeError, QuantizeOptions,
};

const FIXTURE: &str = "fixtures/quantize/ghostc_qdq_v1_w100_48x48_b2";
const SOURCE: &str = "fixtures/ts13_v1_w100_48x48_b2_nofold/model.onnx";

fn meta() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join(FIXTURE).join("meta.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs `g` (static batch 2) over `x` [8, 3, 48, 48] two images at a time.
fn run_batches(g: &ghostc::ir::Graph, x: &ghostc::npy::Array<f32>) -> Vec<f32> {
    let per: usize = x.shape[1..].iter().product();
    let b = g.value(g.inputs[0]).ty.shape[0];
    let mut out = Vec::new();
    for chunk in x.data.chunks(per * b) {
        let mut shape = x.shape.clone();
        shape[0] = b;
        let t = Tensor::from_f32(shape, chunk.to_vec()).unwrap();
        out.extend(ghostc::interp::run(g, &[t]).unwrap()[0].to_f32_vec());
    }
    out
}

/// Steps off `expected`: the max, and the histogram as text.
fn steps(actual: &[f32], expected: &[f32], scale: f32) -> (f32, String) {
    let s = fixtures_common::steps(actual, expected, scale);
    (
        s.max,
        format!(
            "0 steps: {}, 1 step: {}, >=2 steps: {}",
            s.hist[0],
            s.hist[1],
            s.two_or_more()
        ),
    )
}

#[test]
fn committed_qdq_model_matches_onnx_runtime_within_one_step() {
    let dir = root().join(FIXTURE);
    let g = load_model(&dir.join("model.onnx"), &ImportOptions::default()).unwrap();
    assert!(
        g.nodes
            .node_indices()
            .any(|n| matches!(g.node(n).op, Op::Quantize(_))),
        "the fixture is a QDQ model"
    );
    let x = ghostc::npy::read_f32(&dir.join("input.npy")).unwrap();
    let scale = meta()["output_scale"].as_f64().unwrap() as f32;
    let y = run_batches(&g, &x);
    for golden in ["expected.npy", "expected_noopt.npy"] {
        let e = ghostc::npy::read_f32(&dir.join(golden)).unwrap();
        let (max, hist) = steps(&y, &e.data, scale);
        eprintln!("interpreter vs ORT {golden}: max {max:.3} steps; {hist}");
        assert!(max <= 1.0 + 1e-3, "{golden}: {max} steps ({hist})");
    }
    // The check discriminates: the f32 model's output (f32.npy) is 2 or more steps off ORT's
    // on some element.
    let f32_out = ghostc::npy::read_f32(&dir.join("f32.npy")).unwrap();
    let e = ghostc::npy::read_f32(&dir.join("expected.npy")).unwrap();
    let f = fixtures_common::steps(&f32_out.data, &e.data, scale);
    eprintln!("f32 model vs ORT: max {:.3} steps; {:?}", f.max, f.hist);
    assert!(
        f.two_or_more() > 0,
        "the f32 output is within 1 step of the int8 one: the 1-step check cannot fail"
    );
}

#[test]
fn quantizing_now_still_matches_the_onnx_runtime_goldens() {
    let g = load_model(&root().join(SOURCE), &ImportOptions::default()).unwrap();
    let src = InputSource::Random { count: 16, seed: 1 };
    let (_, quantized) = q::quantize(g, &src, &QuantizeOptions::default(), |_| {}).unwrap();
    let committed = std::fs::read(root().join(FIXTURE).join("model.onnx")).unwrap();
    let same = quantized.to_bytes() == committed;
    let qg = q::reimport(&quantized).unwrap();
    let dir = root().join(FIXTURE);
    let x = ghostc::npy::read_f32(&dir.join("input.npy")).unwrap();
    let e = ghostc::npy::read_f32(&dir.join("expected.npy")).unwrap();
    let scale = meta()["output_scale"].as_f64().unwrap() as f32;
    let (max, hist) = steps(&run_batches(&qg, &x), &e.data, scale);
    eprintln!("fresh quantization vs ORT on the committed file: max {max:.3} steps; {hist}; byte-identical file: {same}");
    assert!(
        max <= 1.0 + 1e-3,
        "{max} steps ({hist}); if quantization changed on purpose, rerun tools/make_quantize_fixture.py"
    );
    assert!(
        same,
        "re-quantizing no longer writes the committed file byte for byte; if quantization changed on purpose, rerun tools/make_quantize_fixture.py"
    );
}

/// Every node name of `g`.
fn all_names(g: &ghostc::ir::Graph) -> Vec<String> {
    g.nodes
        .node_indices()
        .map(|n| g.node(n).name.clone())
        .collect()
}

#[test]
fn all_float_model_written_back_equals_the_f32_model() {
    for fixture in [
        "fixtures/ts11_v1_w050_32x32_b1",
        "fixtures/ts13_v1_w100_48x48_b2_nofold",
        "fixtures/ts17_v2_w100_72x88_b1",
        "fixtures/ts11_huawei_48x48_b1",
        "fixtures/ts17_v3deploy_w050_64x64_b1",
    ] {
        let dir = root().join(fixture);
        let g = load_model(&dir.join("model.onnx"), &ImportOptions::default()).unwrap();
        let prepared = q::prepare(g.clone()).unwrap();
        let opts = QuantizeOptions {
            keep_float: all_names(&prepared),
            ..Default::default()
        };
        let src = InputSource::Random { count: 1, seed: 3 };
        let (_, quantized) = q::quantize(g.clone(), &src, &opts, |_| {})
            .unwrap_or_else(|e| panic!("{fixture}: {e:#?}"));
        assert_eq!(quantized.summary.qdq_activations, 0, "{fixture}");
        let back = q::reimport(&quantized).unwrap_or_else(|e| panic!("{fixture}: {e:#?}"));
        let x = ghostc::npy::read_f32(&dir.join("input.npy")).unwrap();
        let t = Tensor::from_f32(x.shape.clone(), x.data.clone()).unwrap();
        let a = ghostc::interp::run(&g, std::slice::from_ref(&t)).unwrap();
        let b = ghostc::interp::run(&back, &[t]).unwrap();
        let d = ghostc::compare::compare(&b[0].to_f32_vec(), &a[0].to_f32_vec());
        eprintln!(
            "{fixture}: written-back f32 model max rel {:.2e}",
            d.max_rel
        );
        assert!(d.max_rel <= 1e-5, "{fixture}: {d:?}");
    }
}

fn count_weight_dq(g: &ghostc::ir::Graph) -> usize {
    g.nodes
        .node_indices()
        .filter(|&n| {
            let node = g.node(n);
            matches!(&node.op, Op::Dequantize(p) if p.axis.is_some())
        })
        .count()
}

#[test]
fn keep_float_classes_keep_their_weights_in_f32() {
    let g = load_model(&root().join(SOURCE), &ImportOptions::default()).unwrap();
    let src = InputSource::Random { count: 2, seed: 5 };
    let prepared = q::prepare(g.clone()).unwrap();
    let depthwise = q::select::class_nodes(&prepared, "depthwise")
        .unwrap()
        .len();
    let se = q::select::class_nodes(&prepared, "se").unwrap();
    assert!(depthwise > 0 && !se.is_empty());
    let all = q::quantize(g.clone(), &src, &QuantizeOptions::default(), |_| {})
        .unwrap()
        .1;
    let dw = q::quantize(
        g.clone(),
        &src,
        &QuantizeOptions {
            keep_float: vec!["depthwise".into()],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap()
    .1;
    // Each quantized conv has a per-channel weight DQ and (its bias) a per-channel i32 DQ.
    let (wa, wd) = (
        count_weight_dq(&q::reimport(&all).unwrap()),
        count_weight_dq(&q::reimport(&dw).unwrap()),
    );
    assert_eq!(wa - wd, 2 * depthwise, "all {wa}, depthwise kept {wd}");
    assert_eq!(dw.kept_float.len(), depthwise);
    // SE: GAP, two convs, their activations, the gate and the Mul stay f32.
    let se_model = q::quantize(
        g,
        &src,
        &QuantizeOptions {
            keep_float: vec!["se".into()],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap()
    .1;
    assert_eq!(se_model.kept_float.len(), se.len());
    assert!(se
        .iter()
        .any(|&n| matches!(prepared.node(n).op, Op::Binary(_))));
}

#[test]
fn calibration_methods_and_s8_activations_all_write_models_that_run() {
    let g = load_model(&root().join(SOURCE), &ImportOptions::default()).unwrap();
    let src = InputSource::Random { count: 4, seed: 9 };
    for (method, act) in [
        (Method::MinMax, ghostc::ir::DType::I8),
        (Method::Percentile(99.9), ghostc::ir::DType::U8),
        (Method::Entropy, ghostc::ir::DType::U8),
    ] {
        let opts = QuantizeOptions {
            method,
            activations: act,
            ..Default::default()
        };
        let (f, quantized) = q::quantize(g.clone(), &src, &opts, |_| {}).unwrap();
        let back = q::reimport(&quantized).unwrap();
        let mut v = q::Validator::new(&f, &back);
        src.for_each::<QuantizeError>(&q::image_shape(&f), |_, t| Ok(v.observe(&t)?))
            .unwrap();
        let r = v.report();
        eprintln!(
            "{method:?} {act}: top-1 {:.1} %, logit err mean {:.4} max {:.4}",
            r.top1_percent(),
            r.mean_rel,
            r.max_rel
        );
        assert_eq!(r.rows, 8);
        assert!(
            r.mean_rel < 0.2 && !r.layers.is_empty(),
            "{method:?}: {r:?}"
        );
    }
}

#[test]
fn bad_inputs_are_typed_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let g = load_model(&root().join(SOURCE), &ImportOptions::default()).unwrap();
    let image = q::image_shape(&q::prepare(g.clone()).unwrap());
    // Empty directory.
    let e = q::inputs::list_dir(tmp.path(), &image).unwrap_err();
    assert!(matches!(e, InputError::Empty { .. }), "{e}");
    assert!(
        e.to_string().contains(&tmp.path().display().to_string()),
        "{e}"
    );
    // Wrong shape: [3, 32, 32] for a [2, 3, 48, 48] model.
    let bad = tmp.path().join("img0.npy");
    ghostc::npy::write_f32(&bad, &[3, 32, 32], &vec![0.0; 3 * 32 * 32]).unwrap();
    let e = q::inputs::list_dir(tmp.path(), &image).unwrap_err();
    assert!(matches!(e, InputError::Shape { .. }), "{e}");
    assert!(
        e.to_string().contains("img0.npy") && e.to_string().contains("3x32x32"),
        "{e}"
    );
    // An odd batch for a batch-2 model.
    ghostc::npy::write_f32(&bad, &[3, 3, 48, 48], &vec![0.0; 3 * 3 * 48 * 48]).unwrap();
    assert!(matches!(
        q::inputs::list_dir(tmp.path(), &image),
        Err(InputError::Shape { .. })
    ));
    // A good batch of 4 = two runs.
    ghostc::npy::write_f32(&bad, &[4, 3, 48, 48], &vec![0.5; 4 * 3 * 48 * 48]).unwrap();
    assert_eq!(q::inputs::list_dir(tmp.path(), &image).unwrap().len(), 2);
    // Zero calibration inputs.
    let none = InputSource::Random { count: 0, seed: 0 };
    let e = q::quantize(g.clone(), &none, &QuantizeOptions::default(), |_| {}).unwrap_err();
    assert!(matches!(e, QuantizeError::NoCalibration), "{e}");
    // Unknown --keep-float items are all named.
    let opts = QuantizeOptions {
        keep_float: vec!["depthwise".into(), "nosuchlayer".into(), "dw2".into()],
        ..Default::default()
    };
    let one = InputSource::Random { count: 1, seed: 0 };
    let e = q::quantize(g, &one, &opts, |_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("nosuchlayer, dw2") && msg.contains("depthwise, pointwise"),
        "{msg}"
    );
    // A bad percentile.
    let e = q::check_options(&QuantizeOptions {
        method: Method::Percentile(0.0),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("percentile 0"), "{e}");
}
