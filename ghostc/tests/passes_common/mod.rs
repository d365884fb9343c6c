//! Shared helpers for the pass tests: the seeded PRNG, small graph builders over the public Graph
//! API (output types from `ir::infer`), and the semantic check every pass test uses: run the
//! interpreter before and after the pass on the same random inputs and compare.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use ghostc::interp;
use ghostc::ir::infer::{infer, InputFact};
use ghostc::ir::{
    Activation, BatchNorm, BinaryOp, Conv, Gemm, Graph, Op, Reduce, ReduceKind, Slice, Tensor,
    TensorType, ValueId,
};
use ghostc::passes::{run_pass, Pass};

/// The seeded generator of every ghostc test suite.
pub use ghostc_testkit::Rng;

pub fn tensor(shape: &[usize], data: Vec<f32>) -> Arc<Tensor> {
    Arc::new(Tensor::from_f32(shape.to_vec(), data).expect("data matches shape"))
}

pub fn input(g: &mut Graph, name: &str, shape: &[usize]) -> ValueId {
    g.add_input(name, TensorType::f32(shape.to_vec()))
}

pub fn konst(g: &mut Graph, shape: &[usize], data: Vec<f32>) -> ValueId {
    let name = format!("c{}", g.values.len());
    g.add_const(name, tensor(shape, data))
}

pub fn rand_const(g: &mut Graph, rng: &mut Rng, shape: &[usize], lo: f32, hi: f32) -> ValueId {
    let n = shape.iter().product();
    let data = rng.vec(n, lo, hi);
    konst(g, shape, data)
}

pub fn scalar(g: &mut Graph, v: f32) -> ValueId {
    konst(g, &[], vec![v])
}

/// Adds a node with output types from shape inference; returns its first output.
pub fn node(g: &mut Graph, op: Op, inputs: &[ValueId]) -> ValueId {
    let types = {
        let facts: Vec<InputFact<'_>> = inputs
            .iter()
            .map(|&v| InputFact {
                ty: &g.value(v).ty,
                value: g.value(v).constant().map(|t| &**t),
            })
            .collect();
        infer(&op, &facts)
            .unwrap_or_else(|e| panic!("test graph: {} does not infer: {e}", op.name()))
    };
    let name = format!("{}_{}", op.name(), g.nodes.node_count());
    let outputs = types
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("{name}:{i}"), t))
        .collect();
    let (_, outs) = g.add_node(name, op, inputs.to_vec(), outputs);
    outs[0]
}

pub fn conv_attrs(k: usize, stride: usize, group: usize) -> Conv {
    let p = k / 2;
    Conv {
        kernel: [k, k],
        strides: [stride, stride],
        pads: [p, p, p, p],
        dilations: [1, 1],
        group,
    }
}

/// A conv with random weights (and bias when `bias`), "same" padding.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    g: &mut Graph,
    rng: &mut Rng,
    x: ValueId,
    cout: usize,
    k: usize,
    stride: usize,
    group: usize,
    bias: bool,
) -> ValueId {
    let cin = g.value(x).ty.shape[1];
    let fan_in = (cin / group * k * k) as f32;
    let s = 1.5 / fan_in.sqrt();
    let w = rand_const(g, rng, &[cout, cin / group, k, k], -s, s);
    let mut inputs = vec![x, w];
    if bias {
        inputs.push(rand_const(g, rng, &[cout], -0.3, 0.3));
    }
    node(g, Op::Conv(conv_attrs(k, stride, group)), &inputs)
}

/// Inference BatchNorm over axis 1 with non-trivial statistics.
pub fn batch_norm(g: &mut Graph, rng: &mut Rng, x: ValueId) -> ValueId {
    let c = g.value(x).ty.shape[1];
    let gamma = rand_const(g, rng, &[c], 0.5, 1.5);
    let beta = rand_const(g, rng, &[c], -0.3, 0.3);
    let mean = rand_const(g, rng, &[c], -0.5, 0.5);
    let var = rand_const(g, rng, &[c], 0.3, 2.0);
    node(
        g,
        Op::BatchNorm(BatchNorm { epsilon: 1e-5 }),
        &[x, gamma, beta, mean, var],
    )
}

pub fn act(g: &mut Graph, x: ValueId, a: Activation) -> ValueId {
    node(g, Op::Activation(a), &[x])
}

pub fn relu(g: &mut Graph, x: ValueId) -> ValueId {
    act(g, x, Activation::Relu)
}

pub fn binary(g: &mut Graph, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
    node(g, Op::Binary(op), &[a, b])
}

pub fn concat(g: &mut Graph, axis: usize, xs: &[ValueId]) -> ValueId {
    node(g, Op::Concat { axis }, xs)
}

pub fn slice(g: &mut Graph, x: ValueId, axis: usize, start: i64, end: i64) -> ValueId {
    node(
        g,
        Op::Slice(Slice {
            axes: vec![axis],
            starts: vec![start],
            ends: vec![end],
            steps: vec![1],
        }),
        &[x],
    )
}

pub fn reduce_mean_hw(g: &mut Graph, x: ValueId, keepdims: bool) -> ValueId {
    node(
        g,
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![2, 3],
            keepdims,
        }),
        &[x],
    )
}

pub fn reshape(g: &mut Graph, x: ValueId, shape: &[usize]) -> ValueId {
    node(
        g,
        Op::Reshape {
            shape: shape.to_vec(),
        },
        &[x],
    )
}

/// `Gemm(x, W [m, k] (transB) or [k, m], b [m])` with random weights.
pub fn gemm(
    g: &mut Graph,
    rng: &mut Rng,
    x: ValueId,
    m: usize,
    trans_b: bool,
    alpha: f32,
    beta: f32,
) -> ValueId {
    let k = g.value(x).ty.shape[1];
    let s = 1.5 / (k as f32).sqrt();
    let w_shape = if trans_b { [m, k] } else { [k, m] };
    let w = rand_const(g, rng, &w_shape, -s, s);
    let b = rand_const(g, rng, &[m], -0.3, 0.3);
    node(
        g,
        Op::Gemm(Gemm {
            alpha,
            beta,
            trans_a: false,
            trans_b,
        }),
        &[x, w, b],
    )
}

/// The graph's outputs on `inputs`.
pub fn run(g: &Graph, inputs: &[Tensor]) -> Vec<Tensor> {
    interp::run(g, inputs).unwrap_or_else(|e| panic!("interpreter failed: {e}\n{g}"))
}

/// Random inputs in `[-2, 2)` for every graph input.
pub fn random_inputs(g: &Graph, rng: &mut Rng) -> Vec<Tensor> {
    g.inputs
        .iter()
        .map(|&v| {
            let shape = g.value(v).ty.shape.clone();
            let n = shape.iter().product();
            Tensor::from_f32(shape, rng.vec(n, -2.0, 2.0)).expect("shape")
        })
        .collect()
}

/// `max |y - y_ref| <= 1e-4 * max |y_ref| + 1e-5`, per output. Returns the worst `max |y - y_ref|`.
pub fn assert_close(reference: &[Tensor], got: &[Tensor], what: &str) -> f32 {
    assert_eq!(reference.len(), got.len(), "{what}: number of outputs");
    let mut worst = 0.0f32;
    for (i, (r, y)) in reference.iter().zip(got).enumerate() {
        assert_eq!(r.shape(), y.shape(), "{what}: output {i} shape");
        let (r, y) = (r.to_f32_vec(), y.to_f32_vec());
        let scale = r.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = r
            .iter()
            .zip(&y)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-4 * scale + 1e-5,
            "{what}: output {i}: max |y - y_ref| = {diff:e} > 1e-4 * {scale:e} + 1e-5"
        );
        worst = worst.max(diff);
    }
    worst
}

/// Runs `pass` on a copy of `g` (verifying after it), checks the interpreter gives the same
/// outputs as on `g` for random inputs, and returns the rewritten graph and the changed flag.
pub fn check_pass(g: &Graph, pass: &dyn Pass, seed: u64) -> (Graph, bool) {
    ghostc::verify::verify(g).unwrap_or_else(|e| panic!("test graph does not verify: {e}\n{g}"));
    let mut rng = Rng::new(seed);
    let inputs = random_inputs(g, &mut rng);
    let reference = run(g, &inputs);
    let mut after = g.clone();
    let changed = run_pass(pass, &mut after, true)
        .unwrap_or_else(|e| panic!("{}: {e}\n{after}", pass.name()));
    let got = run(&after, &inputs);
    assert_close(&reference, &got, pass.name());
    (after, changed)
}

/// Asserts that `pass` reports no change and leaves the graph's text form identical.
pub fn assert_unchanged(g: &Graph, pass: &dyn Pass) {
    let mut after = g.clone();
    let changed =
        run_pass(pass, &mut after, true).unwrap_or_else(|e| panic!("{}: {e}", pass.name()));
    assert!(!changed, "{} reported a change", pass.name());
    assert_eq!(
        g.to_string(),
        after.to_string(),
        "{} changed the graph",
        pass.name()
    );
    assert_eq!(
        g.values.len(),
        after.values.len(),
        "{} added values",
        pass.name()
    );
}

/// Number of live nodes per op name.
pub fn histogram(g: &Graph) -> BTreeMap<&'static str, usize> {
    let mut h = BTreeMap::new();
    for n in g.nodes.node_indices() {
        *h.entry(g.node(n).op.name()).or_insert(0) += 1;
    }
    h
}

pub fn count(g: &Graph, op_name: &str) -> usize {
    histogram(g).get(op_name).copied().unwrap_or(0)
}
