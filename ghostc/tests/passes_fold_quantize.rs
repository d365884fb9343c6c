//! fold_quantize: `DQ -> Conv -> act? -> Q` chains into QConv, checked by running the graph
//! before and after through the interpreter. The quantized outputs may differ by one
//! quantization step where f32 rounding in the unfolded conv crosses a rounding boundary; the
//! tests count the differences in steps, on the graph output and on every folded conv's output
//! (the QConv keeps the Quantize's value, so both graphs can expose it), and print the
//! distribution (`--nocapture`). The concat and residual-add folds use the unfolded graph's
//! own f32 operations, so their test asks for identical integers.

mod fixtures_common;
mod passes_common;

use std::sync::Arc;

use ghostc::ir::{Activation, DType, Data, Graph, Op, QuantParams, Tensor, ValueId};
use ghostc::onnx::{load_model, ImportOptions};
use ghostc::passes::{run_pass, FoldQuantize};
use passes_common::*;

const ON: FoldQuantize = FoldQuantize { enabled: true };

/// Differences in steps of `scale` between two tensors of one type (dequantized f32 outputs
/// compare by value, quantized ones by integer): counts of 0, 1, 2 and 3+ steps.
fn steps(a: &Tensor, b: &Tensor, scale: f32) -> [usize; 4] {
    assert_eq!(a.ty, b.ty);
    let diffs: Vec<f32> = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| ((p - q).abs() / scale).round())
            .collect(),
        (Data::I64(x), Data::I64(y)) => {
            x.iter().zip(y).map(|(p, q)| (p - q).abs() as f32).collect()
        }
        _ => panic!("unexpected storage"),
    };
    let mut h = [0; 4];
    for d in diffs {
        h[if d.is_nan() { 3 } else { (d as usize).min(3) }] += 1;
    }
    h
}

fn add(h: &mut [usize; 4], d: [usize; 4]) {
    h.iter_mut().zip(d).for_each(|(a, b)| *a += b);
}

/// Runs `g` and its folded copy on `inputs`, exposing every Quantize output as a graph output
/// in both; returns the folded graph and the step histograms of the final outputs and of the
/// exposed values.
fn before_after(g: &Graph, inputs: &[Tensor]) -> (Graph, [usize; 4], [usize; 4]) {
    let mut before = g.clone();
    let quantized: Vec<(ValueId, f32)> = before
        .nodes
        .node_indices()
        .filter_map(|n| match &before.node(n).op {
            Op::Quantize(q) => Some((before.node(n).outputs[0], q.scale[0])),
            _ => None,
        })
        .filter(|(v, _)| !before.is_output(*v))
        .collect();
    let n_final = before.outputs.len();
    let final_scales: Vec<f32> = before
        .outputs
        .iter()
        .map(|&v| match before.producer(v).map(|n| &before.node(n).op) {
            Some(Op::Dequantize(q)) | Some(Op::Quantize(q)) => q.scale[0],
            _ => 1e-6,
        })
        .collect();
    before.outputs.extend(quantized.iter().map(|&(v, _)| v));
    let mut after = before.clone();
    let changed = run_pass(&ON, &mut after, true).expect("fold_quantize");
    assert!(changed, "nothing folded");
    let (yb, ya) = (run(&before, inputs), run(&after, inputs));
    let mut out = [0; 4];
    for k in 0..n_final {
        add(&mut out, steps(&yb[k], &ya[k], final_scales[k]));
    }
    let mut inner = [0; 4];
    for (k, &(_, scale)) in quantized.iter().enumerate() {
        add(&mut inner, steps(&yb[n_final + k], &ya[n_final + k], scale));
    }
    after.outputs.truncate(n_final);
    (after, out, inner)
}

#[test]
fn qdq_fixtures_fold_every_conv_within_one_step() {
    for f in fixtures_common::quant_fixtures() {
        let g = load_model(&f.model(), &ImportOptions::default()).expect("import");
        let convs = count(&g, "conv");
        if convs == 0 {
            continue; // the QOperator export has QConv already
        }
        let input = {
            let a = ghostc::npy::read_f32(&f.dir.join("input.npy")).unwrap();
            Tensor::from_f32(a.shape, a.data).unwrap()
        };
        let (after, out, inner) = before_after(&g, &[input]);
        println!(
            "{:44} {convs} convs -> {} qconv, {} nodes -> {}; output steps 0/1/2/3+: {out:?}; \
             every quantized value: {inner:?}",
            f.name,
            count(&after, "qconv"),
            g.nodes.node_count(),
            after.nodes.node_count()
        );
        assert_eq!(count(&after, "qconv"), convs, "{}", f.name);
        assert_eq!(count(&after, "conv"), 0);
        // The classifier Gemm (s8 weights per row, transposed) becomes a QMatMul.
        let gemms = count(&g, "gemm");
        assert!(gemms > 0, "{}: no Gemm to fold", f.name);
        assert_eq!(count(&after, "qmatmul"), gemms, "{}", f.name);
        // Each SE squeeze (ReduceMean over H, W between a DQ and a Q) and the head's global
        // pool become int8 pools.
        let means = count(&g, "reduce_mean");
        assert!(means > 0, "{}: no SE squeeze to fold", f.name);
        let pools = means + count(&g, "global_avg_pool");
        assert_eq!(count(&after, "qglobal_avg_pool"), pools, "{}", f.name);
        assert_eq!(
            out[2] + out[3],
            0,
            "{}: output off by 2+ steps: {out:?}",
            f.name
        );
        assert_eq!(
            inner[2] + inner[3],
            0,
            "{}: a conv output off by 2+ steps: {inner:?}",
            f.name
        );
    }
}

fn int_const(g: &mut Graph, dtype: DType, shape: &[usize], values: Vec<i64>) -> ValueId {
    let name = format!("c{}", g.values.len());
    g.add_const(
        name,
        Arc::new(Tensor::new(dtype, shape.to_vec(), Data::I64(values)).unwrap()),
    )
}

/// x -> Q -> DQ -> Conv(DQ(w per channel), bias) -> act -> Q -> DQ.
fn qdq_conv(rng: &mut Rng, act_op: Option<Activation>, int_bias: bool, y_dtype: DType) -> Graph {
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 6, 5, 5]);
    let qx = QuantParams::per_tensor(DType::U8, 4.0 / 255.0, 128);
    let xq = node(&mut g, Op::Quantize(qx.clone()), &[x]);
    let xd = node(&mut g, Op::Dequantize(qx.clone()), &[xq]);
    let (cout, cin, k) = (4, 6, 3);
    let w = int_const(
        &mut g,
        DType::I8,
        &[cout, cin, k, k],
        (0..cout * cin * k * k)
            .map(|_| (rng.vec(1, -127.0, 127.0)[0]) as i64)
            .collect(),
    );
    let qw = QuantParams {
        dtype: DType::I8,
        scale: vec![0.002, 0.004, 0.001, 0.003],
        zero_point: vec![0; 4],
        axis: Some(0),
    };
    let wd = node(&mut g, Op::Dequantize(qw.clone()), &[w]);
    let b = if int_bias {
        let bias_scale: Vec<f32> = qw.scale.iter().map(|s| s * qx.scale[0]).collect();
        let bi = int_const(&mut g, DType::I32, &[cout], vec![500, -1200, 30, 0]);
        node(
            &mut g,
            Op::Dequantize(QuantParams {
                dtype: DType::I32,
                zero_point: vec![0; 4],
                scale: bias_scale,
                axis: Some(0),
            }),
            &[bi],
        )
    } else {
        rand_const(&mut g, rng, &[cout], -0.3, 0.3)
    };
    let mut y = node(&mut g, Op::Conv(conv_attrs(k, 1, 1)), &[xd, wd, b]);
    if let Some(a) = act_op {
        y = act(&mut g, y, a);
    }
    let qy = QuantParams::per_tensor(y_dtype, 0.02, if y_dtype == DType::U8 { 100 } else { 0 });
    let yq = node(&mut g, Op::Quantize(qy.clone()), &[y]);
    let yd = node(&mut g, Op::Dequantize(qy), &[yq]);
    g.outputs.push(yd);
    g
}

#[test]
fn synthetic_chains_fold_with_bias_and_activation() {
    let mut rng = Rng::new(14);
    let mut total = [0; 4];
    for (act_op, int_bias, dtype) in [
        (None, true, DType::U8),
        (Some(Activation::Relu), true, DType::U8),
        (Some(Activation::HardSwish), false, DType::I8),
        (
            Some(Activation::Clamp { lo: 0.0, hi: 6.0 }),
            false,
            DType::U8,
        ),
    ] {
        let g = qdq_conv(&mut rng, act_op, int_bias, dtype);
        for seed in 0..20 {
            let inputs = random_inputs(&g, &mut Rng::new(seed));
            let (after, out, _) = before_after(&g, &inputs);
            assert_eq!(count(&after, "qconv"), 1);
            assert_eq!(
                count(&after, "conv") + count(&after, "dequantize"),
                1,
                "{after}"
            );
            assert_eq!(out[2] + out[3], 0, "{act_op:?}: {out:?}");
            add(&mut total, out);
        }
    }
    println!("synthetic chains, output steps 0/1/2/3+: {total:?}");
}

#[test]
fn shared_or_unsupported_chains_stay() {
    let mut rng = Rng::new(3);
    // The conv output is also a graph output: not folded.
    let mut g = qdq_conv(&mut rng, None, true, DType::U8);
    let conv = g
        .nodes
        .node_indices()
        .find(|&n| matches!(g.node(n).op, Op::Conv(_)))
        .unwrap();
    let y = g.node(conv).outputs[0];
    g.outputs.push(y);
    assert_unchanged(&g, &ON);
    // Disabled: nothing happens.
    let g = qdq_conv(&mut rng, None, true, DType::U8);
    assert_unchanged(&g, &FoldQuantize { enabled: false });
    // A per-channel output quantization (not a QConv output): not folded.
    let mut g = qdq_conv(&mut rng, None, true, DType::U8);
    let q = g
        .nodes
        .node_indices()
        .rfind(|&n| matches!(g.node(n).op, Op::Quantize(_)))
        .unwrap();
    let per_channel = QuantParams {
        dtype: DType::U8,
        scale: vec![0.02; 4],
        zero_point: vec![100; 4],
        axis: Some(1),
    };
    g.node_mut(q).op = Op::Quantize(per_channel.clone());
    let dq = g.consumers(g.node(q).outputs[0])[0].0;
    g.node_mut(dq).op = Op::Dequantize(per_channel);
    assert_unchanged(&g, &ON);
}

/// Two quantized inputs (different parameters) joined by `Q(Concat(DQ, DQ))` and
/// `Q(Add(DQ, DQ))`: folded into QConcat and a dequantized-form QBinary with exactly the
/// unfolded graph's integers (same f32 operations), including the copy of an input that
/// already has the output's parameters.
#[test]
fn concat_and_residual_add_fold_exactly() {
    let mut rng = Rng::new(17);
    for (t, dtype) in [DType::U8, DType::I8, DType::U8].into_iter().enumerate() {
        let mut g = Graph::new();
        let shape = [1, 12, 5, 7];
        let a = input(&mut g, "a", &shape);
        let b = input(&mut g, "b", &shape);
        let zp = |z: i64| if dtype == DType::U8 { z } else { z - 128 };
        let qa = QuantParams::per_tensor(dtype, 0.031, zp(7));
        let qb = QuantParams::per_tensor(dtype, 0.0173, zp(131));
        // Trial 2: the concat's output shares `a`'s parameters (a is copied).
        let qy = if t == 2 {
            qa.clone()
        } else {
            QuantParams::per_tensor(dtype, 0.045, zp(60))
        };
        let aq = node(&mut g, Op::Quantize(qa.clone()), &[a]);
        let bq = node(&mut g, Op::Quantize(qb.clone()), &[b]);
        let ad = node(&mut g, Op::Dequantize(qa), &[aq]);
        let bd = node(&mut g, Op::Dequantize(qb), &[bq]);
        let cat = node(&mut g, Op::Concat { axis: 1 }, &[ad, bd]);
        let sum = node(&mut g, Op::Binary(ghostc::ir::BinaryOp::Add), &[ad, bd]);
        for v in [cat, sum] {
            let q = node(&mut g, Op::Quantize(qy.clone()), &[v]);
            g.outputs.push(q);
        }
        let inputs: Vec<Tensor> = (0..2)
            .map(|_| Tensor::from_f32(shape.to_vec(), rng.vec(12 * 35, -4.0, 4.0)).unwrap())
            .collect();
        let mut after = g.clone();
        assert!(run_pass(&ON, &mut after, true).expect("fold_quantize"));
        assert_eq!(count(&after, "qconcat"), 1);
        assert_eq!(count(&after, "concat") + count(&after, "add"), 0);
        assert!(after
            .nodes
            .node_indices()
            .any(|n| matches!(&after.node(n).op, Op::QBinary(b) if b.form == ghostc::ir::QBinaryForm::Dequantized)));
        let (yb, ya) = (run(&g, &inputs), run(&after, &inputs));
        for k in 0..2 {
            assert_eq!(yb[k].as_i64(), ya[k].as_i64(), "trial {t} output {k}");
        }
        // The Concat read by something else too: left alone.
        let mut shared = g.clone();
        shared.outputs.push(cat);
        let mut folded = shared.clone();
        run_pass(&ON, &mut folded, true).expect("fold_quantize");
        assert_eq!(count(&folded, "qconcat"), 0);
    }
}

/// `Q(Mul(DQ(gate), DQ(x)))` with a `[1, C, 1, 1]` gate (an SE's channel scale, gate first):
/// folded into a dequantized-form QBinary whose full tensor comes first, with exactly the
/// unfolded graph's integers.
#[test]
fn channel_gate_mul_folds_exactly() {
    let mut rng = Rng::new(23);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 12, 5, 7]);
    let gate = input(&mut g, "gate", &[1, 12, 1, 1]);
    let qx = QuantParams::per_tensor(DType::U8, 0.031, 7);
    let qg = QuantParams::per_tensor(DType::U8, 1.0 / 255.0, 0);
    let qy = QuantParams::per_tensor(DType::U8, 0.029, 3);
    let xq = node(&mut g, Op::Quantize(qx.clone()), &[x]);
    let gq = node(&mut g, Op::Quantize(qg.clone()), &[gate]);
    let xd = node(&mut g, Op::Dequantize(qx), &[xq]);
    let gd = node(&mut g, Op::Dequantize(qg), &[gq]);
    let m = node(&mut g, Op::Binary(ghostc::ir::BinaryOp::Mul), &[gd, xd]);
    let y = node(&mut g, Op::Quantize(qy), &[m]);
    g.outputs.push(y);
    let inputs = [
        Tensor::from_f32(vec![1, 12, 5, 7], rng.vec(12 * 35, -4.0, 4.0)).unwrap(),
        Tensor::from_f32(vec![1, 12, 1, 1], rng.vec(12, 0.0, 1.0)).unwrap(),
    ];
    let mut after = g.clone();
    assert!(run_pass(&ON, &mut after, true).expect("fold_quantize"));
    let folded = after
        .nodes
        .node_indices()
        .find(|&n| matches!(after.node(n).op, Op::QBinary(_)))
        .expect("a QBinary");
    assert_eq!(
        after.value(after.node(folded).inputs[0]).ty.shape,
        [1, 12, 5, 7]
    );
    assert_eq!(count(&after, "mul"), 0);
    assert_eq!(
        run(&g, &inputs)[0].as_i64(),
        run(&after, &inputs)[0].as_i64()
    );
}

/// `Q(DQ(x))` with equal parameters disappears and `Q(Reshape(DQ(x)))` becomes a Reshape of
/// the integers, both giving exactly the unfolded graph's integers (inputs across the whole
/// range, saturating ones included, u8 and i8); with different parameters (a real
/// requantization) neither folds.
#[test]
fn round_trips_and_reshapes_fold_exactly() {
    let mut rng = Rng::new(29);
    for (dtype, zp) in [(DType::U8, 131), (DType::I8, -7), (DType::U8, 0)] {
        for scale in [0.0173f32, 1.0 / 255.0, 3.7e-5, 41.0] {
            let p = QuantParams::per_tensor(dtype, scale, zp);
            let other = QuantParams::per_tensor(dtype, scale * 1.01, zp);
            for (q2, folds) in [(p.clone(), true), (other, false)] {
                let mut g = Graph::new();
                let x = input(&mut g, "x", &[1, 8, 1, 1]);
                let xq = node(&mut g, Op::Quantize(p.clone()), &[x]);
                let xd = node(&mut g, Op::Dequantize(p.clone()), &[xq]);
                // A round trip, then a Flatten-like Reshape between a DQ and a Q.
                let rq = node(&mut g, Op::Quantize(q2.clone()), &[xd]);
                let rd = node(&mut g, Op::Dequantize(q2.clone()), &[rq]);
                let flat = reshape(&mut g, rd, &[1, 8]);
                // Without folds, the Reshape's Q is not the DQ's either.
                let qf = if folds { q2.clone() } else { p.clone() };
                let fq = node(&mut g, Op::Quantize(qf), &[flat]);
                g.outputs.push(fq);
                let range = 300.0 * scale;
                let inputs =
                    [Tensor::from_f32(vec![1, 8, 1, 1], rng.vec(8, -range, range)).unwrap()];
                let mut after = g.clone();
                run_pass(&ON, &mut after, true).expect("fold_quantize");
                let what = format!("{dtype:?} zp {zp} scale {scale} folds {folds}");
                assert_eq!(
                    count(&after, "quantize"),
                    if folds { 1 } else { 3 },
                    "{what}"
                );
                assert_eq!(
                    count(&after, "dequantize"),
                    if folds { 0 } else { 2 },
                    "{what}"
                );
                assert_eq!(
                    run(&g, &inputs)[0].as_i64(),
                    run(&after, &inputs)[0].as_i64(),
                    "{what}"
                );
            }
        }
    }
}

/// `Q(act(DQ(x)))` becomes a QActivation with the same integers (u8 and i8, SE-gate
/// activations and a ReLU), and stays when the activation has another reader.
#[test]
fn lone_activations_fold_exactly() {
    let mut rng = Rng::new(31);
    let acts = [
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Activation::Sigmoid,
        Activation::Relu,
        Activation::HardSwish,
    ];
    for (dtype, zx, zy) in [(DType::U8, 121, 0), (DType::I8, -3, -128)] {
        for act in acts {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &[1, 16, 2, 3]);
            let qx = QuantParams::per_tensor(dtype, 0.047, zx);
            let qy = QuantParams::per_tensor(dtype, 1.0 / 255.0, zy);
            let xq = node(&mut g, Op::Quantize(qx.clone()), &[x]);
            let xd = node(&mut g, Op::Dequantize(qx), &[xq]);
            let a = node(&mut g, Op::Activation(act), &[xd]);
            let y = node(&mut g, Op::Quantize(qy), &[a]);
            g.outputs.push(y);
            let inputs = [Tensor::from_f32(vec![1, 16, 2, 3], rng.vec(96, -8.0, 8.0)).unwrap()];
            let mut after = g.clone();
            assert!(run_pass(&ON, &mut after, true).expect("fold_quantize"));
            assert_eq!(count(&after, "qactivation"), 1, "{act:?}");
            assert_eq!(
                run(&g, &inputs)[0].as_i64(),
                run(&after, &inputs)[0].as_i64(),
                "{dtype:?} {act:?}"
            );
            // The activation also read elsewhere (here: a graph output) stays.
            let mut shared = g.clone();
            shared.outputs.push(a);
            run_pass(&ON, &mut shared, true).expect("fold_quantize");
            assert_eq!(count(&shared, "qactivation"), 0, "{act:?}");
        }
    }
}

/// `Q(ReduceMean[2, 3](DQ(x)))` and `Q(GlobalAveragePool(DQ(x)))` fold into a
/// QGlobalAveragePool, which sums the integers exactly where the graph sums dequantized f32
/// values: within one step. A mean over other axes stays.
#[test]
fn global_pools_fold_within_one_step() {
    use ghostc::ir::{Reduce, ReduceKind};
    let mut rng = Rng::new(29);
    for (op, folds) in [
        (
            Op::Reduce(Reduce {
                kind: ReduceKind::Mean,
                axes: vec![2, 3],
                keepdims: true,
            }),
            true,
        ),
        (Op::GlobalAveragePool, true),
        (
            Op::Reduce(Reduce {
                kind: ReduceKind::Mean,
                axes: vec![3],
                keepdims: true,
            }),
            false,
        ),
    ] {
        for dtype in [DType::U8, DType::I8] {
            let mut g = Graph::new();
            let x = input(&mut g, "x", &[2, 20, 9, 11]);
            let zp = if dtype == DType::U8 { 131 } else { -5 };
            let qx = QuantParams::per_tensor(dtype, 0.043, zp);
            let qy = QuantParams::per_tensor(dtype, 0.0071, zp / 3);
            let xq = node(&mut g, Op::Quantize(qx.clone()), &[x]);
            let xd = node(&mut g, Op::Dequantize(qx), &[xq]);
            let m = node(&mut g, op.clone(), &[xd]);
            let y = node(&mut g, Op::Quantize(qy), &[m]);
            g.outputs.push(y);
            let inputs =
                [Tensor::from_f32(vec![2, 20, 9, 11], rng.vec(2 * 20 * 99, -3.0, 5.0)).unwrap()];
            if !folds {
                let mut after = g.clone();
                run_pass(&ON, &mut after, true).expect("fold_quantize");
                assert_eq!(count(&after, "qglobal_avg_pool"), 0);
                continue;
            }
            let (after, out, _) = before_after(&g, &inputs);
            println!("{} {dtype:?}: output steps 0/1/2/3+: {out:?}", op.name());
            assert_eq!(count(&after, "qglobal_avg_pool"), 1);
            assert_eq!(out[2] + out[3], 0, "{}: {out:?}", op.name());
        }
    }
}
