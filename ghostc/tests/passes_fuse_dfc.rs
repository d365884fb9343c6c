//! fuse_dfc: GhostNetV2's DFC attention (AvgPool 2x2 s2 -> 1x1 conv -> dw 1x5 -> dw 5x1 ->
//! Sigmoid -> nearest resize -> Mul with the Ghost output) into one `DfcGate` op, checked by
//! running the interpreter before and after, on hand-built graphs and on the V2 fixtures.

mod fixtures_common;
mod passes_common;

use ghostc::ir::{
    Activation, BinaryOp, Conv, CoordTransform, Graph, NearestMode, Op, Pool, PoolKind, Resize,
    ResizeMode, Tensor, ValueId,
};
use ghostc::onnx::{load_model, ImportOptions};
use ghostc::passes::{optimize, FuseDfc, FuseOptions, Fusion, PassOptions};
use passes_common::*;

const ON: FuseDfc = FuseDfc { enabled: true };

fn with_dfc() -> FuseOptions {
    let mut f = FuseOptions::all();
    f.set(Fusion::Dfc, true);
    f
}

fn avg_pool(g: &mut Graph, x: ValueId, kind: PoolKind) -> ValueId {
    let pool = Pool {
        kind,
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0; 4],
        dilations: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    node(g, Op::Pool(pool), &[x])
}

/// A depthwise `kh x kw` conv, "same" padding, no bias.
fn dw(g: &mut Graph, rng: &mut Rng, x: ValueId, kh: usize, kw: usize) -> ValueId {
    let c = g.value(x).ty.shape[1];
    let w = rand_const(g, rng, &[c, 1, kh, kw], -0.5, 0.5);
    let conv = Conv {
        kernel: [kh, kw],
        strides: [1, 1],
        pads: [kh / 2, kw / 2, kh / 2, kw / 2],
        dilations: [1, 1],
        group: c,
    };
    node(g, Op::Conv(conv), &[x, w])
}

fn nearest_to(g: &mut Graph, x: ValueId, shape: &[usize]) -> ValueId {
    let from = g.value(x).ty.shape.clone();
    let resize = Resize {
        sizes: shape.to_vec(),
        mode: ResizeMode::Nearest,
        coord: CoordTransform::Asymmetric,
        nearest: NearestMode::Floor,
        scales: shape
            .iter()
            .zip(&from)
            .map(|(&o, &i)| o as f32 / i as f32)
            .collect(),
        cubic_coeff_a: -0.75,
        exclude_outside: false,
    };
    node(g, Op::Resize(resize), &[x])
}

/// What may differ from GhostNetV2's DFC branch in the hand-built graphs.
#[derive(Clone, Copy)]
struct Variant {
    pool: PoolKind,
    /// A ReLU between the 1x5 and the 5x1 conv (not DFC).
    relu_inside: bool,
    /// Gate operand first in the Mul.
    gate_first: bool,
    /// The pooled map also feeds a graph output.
    pooled_is_output: bool,
    /// The gate function (GhostNetV2: Sigmoid, the only one the runtime's `dfc_gate` applies).
    gate: Activation,
    /// Kernel of the first conv (GhostNetV2: 1; a 3x3 dense conv is not run at the pooled
    /// resolution by the planner).
    first_k: usize,
}

const DFC: Variant = Variant {
    pool: PoolKind::Avg,
    relu_inside: false,
    gate_first: false,
    pooled_is_output: false,
    gate: Activation::Sigmoid,
    first_k: 1,
};

/// GhostModuleV2 in "attn" mode: Ghost module (1x1 + dw 3x3, concat, slice) times the DFC gate
/// of its input, BatchNorms unfolded.
fn v2_module(g: &mut Graph, rng: &mut Rng, x: ValueId, out: usize, v: Variant) -> ValueId {
    let init = out.div_ceil(2);
    let p = conv(g, rng, x, init, 1, 1, 1, false);
    let p = batch_norm(g, rng, p);
    let p = relu(g, p);
    let q = conv(g, rng, p, init, 3, 1, init, false);
    let q = batch_norm(g, rng, q);
    let q = relu(g, q);
    let cat = concat(g, 1, &[p, q]);
    let y = slice(g, cat, 1, 0, out as i64);

    let pooled = avg_pool(g, x, v.pool);
    if v.pooled_is_output {
        g.outputs.push(pooled);
    }
    let a = conv(g, rng, pooled, out, v.first_k, 1, 1, false);
    let a = batch_norm(g, rng, a);
    let a = dw(g, rng, a, 1, 5);
    let mut a = batch_norm(g, rng, a);
    if v.relu_inside {
        a = relu(g, a);
    }
    let a = dw(g, rng, a, 5, 1);
    let a = batch_norm(g, rng, a);
    let a = act(g, a, v.gate);
    let shape = g.value(y).ty.shape.clone();
    let r = nearest_to(g, a, &shape);
    if v.gate_first {
        binary(g, BinaryOp::Mul, r, y)
    } else {
        binary(g, BinaryOp::Mul, y, r)
    }
}

fn graph(hw: [usize; 2], v: Variant) -> Graph {
    let mut rng = Rng::new(7);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 6, hw[0], hw[1]]);
    let y = v2_module(&mut g, &mut rng, x, 11, v);
    g.outputs.push(y);
    g
}

/// The pipeline with DFC fusion on: same outputs as the unoptimized graph, and `n` DfcGates.
fn pipeline(g: &Graph, fuse: FuseOptions, n: usize) -> Graph {
    let mut opt = g.clone();
    optimize(&mut opt, &PassOptions::with_fuse(fuse)).unwrap();
    let inputs = random_inputs(g, &mut Rng::new(3));
    assert_close(&run(g, &inputs), &run(&opt, &inputs), "pipeline");
    assert_eq!(count(&opt, "dfc_gate"), n, "\n{opt}");
    opt
}

#[test]
fn dfc_branch_becomes_one_gate_on_the_ghost_module() {
    // Even, odd (7 -> 3 -> 7, a non-integer scale) and non-square sizes.
    for hw in [[8, 8], [7, 7], [9, 12]] {
        for gate_first in [false, true] {
            let g = graph(hw, Variant { gate_first, ..DFC });
            let opt = pipeline(&g, with_dfc(), 1);
            // Left: the Ghost module and the gate that multiplies it, nothing else.
            let h = histogram(&opt);
            assert_eq!(h.get("ghost"), Some(&1), "\n{opt}");
            assert_eq!(opt.nodes.node_count(), 2, "\n{opt}");
            // The pass alone, after the others: interpreter before == after.
            let mut before = g.clone();
            let mut off = with_dfc();
            off.set(Fusion::Dfc, false);
            optimize(&mut before, &PassOptions::with_fuse(off)).unwrap();
            assert_eq!(count(&before, "dfc_gate"), 0);
            let (after, changed) = check_pass(&before, &ON, 5);
            assert!(changed);
            assert_eq!(count(&after, "dfc_gate"), 1, "\n{after}");
        }
    }
}

#[test]
fn on_by_default_off_by_the_switch() {
    let g = graph([8, 8], DFC);
    pipeline(&g, FuseOptions::all(), 1);
    pipeline(&g, FuseOptions::all().without(Fusion::Dfc), 0);
    pipeline(&g, "dfc".parse::<FuseOptions>().unwrap(), 0);
    // Without activation fusion the Sigmoid is a node of its own: still one gate.
    pipeline(&g, with_dfc().without(Fusion::Act), 1);
}

#[test]
fn not_dfc_is_left_alone() {
    for v in [
        Variant {
            pool: PoolKind::Max,
            ..DFC
        },
        Variant {
            relu_inside: true,
            ..DFC
        },
        Variant {
            pooled_is_output: true,
            ..DFC
        },
        Variant {
            gate: Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            ..DFC
        },
        Variant { first_k: 3, ..DFC },
    ] {
        let g = graph([8, 8], v);
        pipeline(&g, with_dfc(), 0);
    }
}

/// The committed GhostNetV2/V3 fixtures (every exporter form): one gate per DFC branch (one
/// per AveragePool), and the interpreter still matches ONNX Runtime's output.
#[test]
fn v2_and_v3_fixtures() {
    let mut seen = 0;
    for fx in fixtures_common::fixtures() {
        if !(fx.name.contains("_v2") || fx.name.contains("_v3")) {
            continue;
        }
        let g = load_model(&fx.model(), &ImportOptions::default()).unwrap();
        let pools = count(&g, "avg_pool");
        assert!(pools > 0, "{}: no DFC branch", fx.name);
        let read = |f: &str| {
            let a = ghostc::npy::read_f32(&fx.dir.join(f)).unwrap();
            Tensor::from_f32(a.shape, a.data).unwrap()
        };
        let (input, expected) = (read("input.npy"), read("expected.npy"));
        let mut opt = g.clone();
        optimize(&mut opt, &PassOptions::with_fuse(with_dfc())).unwrap();
        assert_eq!(count(&opt, "dfc_gate"), pools, "{}\n{opt}", fx.name);
        assert_eq!(
            count(&opt, "avg_pool") + count(&opt, "resize"),
            0,
            "{}",
            fx.name
        );
        let got = run(&opt, std::slice::from_ref(&input));
        assert_close(std::slice::from_ref(&expected), &got, &fx.name);
        seen += 1;
    }
    assert!(seen >= 9, "{seen} GhostNetV2/V3 fixtures found");
}
