//! The ordered pipeline: option parsing, a synthetic Huawei-style GhostNet bottleneck through
//! every pass, each fusion switched off in turn, and --stop-after.

mod passes_common;

use ghostc::ir::{Activation, BinaryOp, Graph, Op, ValueId};
use ghostc::passes::{optimize, FuseOptions, Fusion, PassOptions, PASS_NAMES};
use passes_common::*;

#[test]
fn parses_no_fuse_lists() {
    let o: FuseOptions = "ghost,se".parse().unwrap();
    assert!(!o.ghost && !o.se && o.bn && o.act && o.residual && o.linear);
    assert_eq!("".parse::<FuseOptions>().unwrap(), FuseOptions::all());
    assert_eq!("all".parse::<FuseOptions>().unwrap(), FuseOptions::none());
    assert_eq!(
        " bn , act ".parse::<FuseOptions>().unwrap(),
        FuseOptions::all().without(Fusion::Bn).without(Fusion::Act)
    );
    assert!("ghost,bogus".parse::<FuseOptions>().is_err());
    for f in Fusion::ALL {
        assert_eq!(f.name().parse::<Fusion>().unwrap(), f);
        assert!(!FuseOptions::all().without(f).is_enabled(f));
        assert!(FuseOptions::only(f).is_enabled(f));
    }
}

/// Ghost module with BatchNorms, Huawei style: cat()[:, :out].
fn ghost_module(g: &mut Graph, rng: &mut Rng, x: ValueId, out: usize, with_relu: bool) -> ValueId {
    let init = out.div_ceil(2);
    let mut p = conv(g, rng, x, init, 1, 1, 1, false);
    p = batch_norm(g, rng, p);
    if with_relu {
        p = relu(g, p);
    }
    let mut q = conv(g, rng, p, init, 3, 1, init, false);
    q = batch_norm(g, rng, q);
    if with_relu {
        q = relu(g, q);
    }
    let cat = concat(g, 1, &[p, q]);
    slice(g, cat, 1, 0, out as i64)
}

/// stem -> bottleneck (ghost1, dw s2 + BN, SE, ghost2, downsample shortcut, add) ->
/// bottleneck with identity shortcut -> GAP -> flatten -> Gemm -> BN1d -> ReLU -> Gemm.
fn tiny_ghostnet(batch: usize) -> Graph {
    let mut rng = Rng::new(42);
    let mut g = Graph::new();
    let x = input(&mut g, "input", &[batch, 3, 16, 16]);
    let stem = conv(&mut g, &mut rng, x, 8, 3, 2, 1, false);
    let stem = batch_norm(&mut g, &mut rng, stem);
    let stem = relu(&mut g, stem);

    let h = ghost_module(&mut g, &mut rng, stem, 23, true);
    let h = conv(&mut g, &mut rng, h, 23, 3, 2, 23, false);
    let h = batch_norm(&mut g, &mut rng, h);
    // Huawei SE: GAP -> view -> Linear -> ReLU -> Linear -> clamp(x+3,0,6)/6 -> view -> Mul.
    let pooled = node(&mut g, Op::GlobalAveragePool, &[h]);
    let v = reshape(&mut g, pooled, &[batch, 23]);
    let s = gemm(&mut g, &mut rng, v, 8, true, 1.0, 1.0);
    let s = relu(&mut g, s);
    let s = gemm(&mut g, &mut rng, s, 23, true, 1.0, 1.0);
    let three = scalar(&mut g, 3.0);
    let s = binary(&mut g, BinaryOp::Add, s, three);
    let s = act(&mut g, s, Activation::Clamp { lo: 0.0, hi: 6.0 });
    let six = scalar(&mut g, 6.0);
    let s = binary(&mut g, BinaryOp::Div, s, six);
    let s = reshape(&mut g, s, &[batch, 23, 1, 1]);
    let h = binary(&mut g, BinaryOp::Mul, h, s);
    let h = ghost_module(&mut g, &mut rng, h, 11, false);
    let sc = conv(&mut g, &mut rng, stem, 8, 3, 2, 8, false);
    let sc = batch_norm(&mut g, &mut rng, sc);
    let sc = conv(&mut g, &mut rng, sc, 11, 1, 1, 1, false);
    let sc = batch_norm(&mut g, &mut rng, sc);
    let b1 = binary(&mut g, BinaryOp::Add, h, sc);

    let h = ghost_module(&mut g, &mut rng, b1, 30, true);
    let h = ghost_module(&mut g, &mut rng, h, 11, false);
    let b2 = binary(&mut g, BinaryOp::Add, b1, h);

    let pooled = node(&mut g, Op::GlobalAveragePool, &[b2]);
    let v = reshape(&mut g, pooled, &[batch, 11]);
    let f = gemm(&mut g, &mut rng, v, 16, true, 1.0, 1.0);
    let f = batch_norm(&mut g, &mut rng, f);
    let f = relu(&mut g, f);
    let logits = gemm(&mut g, &mut rng, f, 5, true, 1.0, 1.0);
    g.value_mut(logits).name = "logits".into();
    g.outputs.push(logits);
    g
}

fn optimized(g: &Graph, opts: &PassOptions) -> Graph {
    let mut rng = Rng::new(7);
    let inputs = random_inputs(g, &mut rng);
    let reference = run(g, &inputs);
    let mut after = g.clone();
    let reports = optimize(&mut after, opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(opts.stop_after.is_some() || reports.len() == PASS_NAMES.len());
    assert_close(&reference, &run(&after, &inputs), "pipeline");
    after
}

#[test]
fn full_pipeline_on_a_tiny_ghostnet() {
    for batch in [1, 2] {
        let g = tiny_ghostnet(batch);
        let after = optimized(&g, &PassOptions::default());
        let h = histogram(&after);
        println!("batch {batch}: {h:?}");
        for op in [
            "batch_norm",
            "concat",
            "slice",
            "add",
            "div",
            "clip",
            "mul",
            "gemm",
        ] {
            assert_eq!(h.get(op), None, "{op} left:\n{after}");
        }
        assert_eq!(h.get("ghost"), Some(&4));
        assert_eq!(h.get("squeeze_excite"), Some(&1));
        assert_eq!(h.get("linear"), Some(&2));
        let residual_ghosts = after
            .nodes
            .node_indices()
            .filter(|&n| matches!(&after.node(n).op, Op::Ghost(gh) if gh.residual))
            .count();
        assert_eq!(residual_ghosts, 2);
        assert_eq!(after.value(after.outputs[0]).name, "logits");
    }
}

#[test]
fn each_fusion_switched_off_stays_correct() {
    let g = tiny_ghostnet(1);
    for f in Fusion::ALL {
        let after = optimized(&g, &PassOptions::with_fuse(FuseOptions::all().without(f)));
        let h = histogram(&after);
        println!("--no-fuse {f}: {h:?}");
        match f {
            Fusion::Bn => assert!(h.contains_key("batch_norm")),
            Fusion::Ghost => assert_eq!(h.get("ghost"), None),
            Fusion::Se => assert_eq!(h.get("squeeze_excite"), None),
            Fusion::Residual => assert_eq!(h.get("add"), Some(&2)),
            Fusion::Linear => assert_eq!(h.get("linear"), None),
            Fusion::Act => assert!(h.contains_key("relu")),
            Fusion::Branches => {} // no parallel branches in this net
            Fusion::Dfc => assert_eq!(h.get("dfc_gate"), None), // no DFC branch either
            Fusion::Quant => {}    // an f32 net: nothing quantized
            Fusion::Pad => {}      // no Pad node (passes_fold_pad tests it)
            Fusion::Winograd => {} // a kernel choice when lowering: the graph is the same
        }
    }
    let after = optimized(&g, &PassOptions::with_fuse(FuseOptions::none()));
    // Only remove_identity ran: it drops the one no-op Slice (30 of 30 channels), nothing else.
    let (before, h) = (histogram(&g), histogram(&after));
    assert_eq!(h.get("slice").copied(), before.get("slice").map(|n| n - 1));
    for (op, n) in &before {
        if *op != "slice" {
            assert_eq!(h.get(op), Some(n), "{op}");
        }
    }
}

#[test]
fn stop_after_stops() {
    let g = tiny_ghostnet(1);
    let mut after = g.clone();
    let opts = PassOptions {
        stop_after: Some("fold_batch_norm".into()),
        ..PassOptions::default()
    };
    let reports = optimize(&mut after, &opts).unwrap();
    assert_eq!(
        reports.iter().map(|r| r.pass).collect::<Vec<_>>(),
        [
            "remove_identity",
            "channel_shuffle",
            "channels_first",
            "fuse_dfl",
            "fold_pad",
            "fold_quantize",
            "fold_batch_norm"
        ]
    );
    assert_eq!(count(&after, "batch_norm"), 0);
    assert!(count(&after, "concat") > 0);
}
