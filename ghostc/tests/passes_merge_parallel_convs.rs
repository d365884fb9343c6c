//! merge_parallel_convs: GhostNetV3 training-form branches (sums of convs over one input, plus
//! a standalone BN skip) merged into one conv, so the Ghost pattern then matches.

mod passes_common;

use ghostc::ir::{BinaryOp, Conv, Graph, Op, ValueId};
use ghostc::passes::{optimize, FuseOptions, MergeParallelConvs, PassOptions};
use passes_common::*;

const ON: MergeParallelConvs = MergeParallelConvs { enabled: true };

fn sum(g: &mut Graph, terms: &[ValueId]) -> ValueId {
    let mut acc = terms[0];
    for &t in &terms[1..] {
        acc = binary(g, BinaryOp::Add, acc, t);
    }
    acc
}

/// GhostModuleV3 in training form: x1 = relu(sum of 3 primary 1x1 convs);
/// x2 = relu(scale 1x1 dw(x1) + BN(x1) + sum of 3 dw 3x3(x1)); concat(x1, x2).
fn v3_train_module(g: &mut Graph, rng: &mut Rng, x: ValueId, init: usize) -> ValueId {
    let prim: Vec<ValueId> = (0..3)
        .map(|_| conv(g, rng, x, init, 1, 1, 1, true))
        .collect();
    let x1 = sum(g, &prim);
    let x1 = relu(g, x1);
    let mut cheap = vec![
        conv(g, rng, x1, init, 1, 1, init, true),
        batch_norm(g, rng, x1),
    ];
    cheap.extend((0..3).map(|_| conv(g, rng, x1, init, 3, 1, init, true)));
    let x2 = sum(g, &cheap);
    let x2 = relu(g, x2);
    concat(g, 1, &[x1, x2])
}

#[test]
fn training_form_ghost_module_collapses_to_two_convs() {
    let mut rng = Rng::new(1);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[2, 6, 7, 7]);
    let y = v3_train_module(&mut g, &mut rng, x, 5);
    g.outputs.push(y);
    let (after, changed) = check_pass(&g, &ON, 2);
    assert!(changed);
    let h = histogram(&after);
    assert_eq!(h.get("conv"), Some(&2), "\n{after}");
    assert_eq!(h.get("add"), None);
    assert_eq!(h.get("batch_norm"), None);

    // And the whole pipeline then finds one Ghost module.
    let mut full = g.clone();
    let mut r = Rng::new(3);
    let inputs = random_inputs(&g, &mut r);
    optimize(&mut full, &PassOptions::default()).unwrap();
    assert_close(&run(&g, &inputs), &run(&full, &inputs), "pipeline");
    assert_eq!(full.nodes.node_count(), 1, "\n{full}");
    assert_eq!(count(&full, "ghost"), 1);

    // Without the merge, no Ghost.
    let mut off = g.clone();
    let opts = PassOptions::with_fuse(FuseOptions::all().without(ghostc::passes::Fusion::Branches));
    optimize(&mut off, &opts).unwrap();
    assert_eq!(count(&off, "ghost"), 0);
}

#[test]
fn strided_depthwise_with_1x1_scale_branch() {
    // dw_rpr: 1x1 s2 pad 0 + 3x3 s2 pad 1 (x2), odd and even input sizes.
    for hw in [7, 8] {
        let mut rng = Rng::new(4);
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[1, 4, hw, hw]);
        let w = rand_const(&mut g, &mut rng, &[4, 1, 1, 1], -1.0, 1.0);
        let scale_conv = Conv {
            pads: [0; 4],
            ..conv_attrs(1, 2, 4)
        };
        let a = node(&mut g, Op::Conv(scale_conv), &[x, w]);
        let b = conv(&mut g, &mut rng, x, 4, 3, 2, 4, true);
        let c = conv(&mut g, &mut rng, x, 4, 3, 2, 4, false);
        let y = sum(&mut g, &[a, b, c]);
        g.outputs.push(y);
        let (after, _) = check_pass(&g, &ON, 5);
        assert_eq!(after.nodes.node_count(), 1, "\n{after}");
    }
}

#[test]
fn incompatible_terms_are_left_alone() {
    let mut rng = Rng::new(6);
    // Different strides.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 8, 8]);
    let a = conv(&mut g, &mut rng, x, 4, 1, 1, 1, true);
    let b = conv(&mut g, &mut rng, x, 4, 3, 1, 4, true);
    let y = binary(&mut g, BinaryOp::Add, a, b); // groups differ
    g.outputs.push(y);
    assert_unchanged(&g, &ON);

    // Different inputs.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 8, 8]);
    let z = input(&mut g, "z", &[1, 4, 8, 8]);
    let a = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let b = conv(&mut g, &mut rng, z, 4, 3, 1, 1, true);
    let y = binary(&mut g, BinaryOp::Add, a, b);
    g.outputs.push(y);
    assert_unchanged(&g, &ON);

    // A branch read elsewhere, and an activated branch.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 8, 8]);
    let a = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let b = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let y = binary(&mut g, BinaryOp::Add, a, b);
    let c = conv(&mut g, &mut rng, x, 4, 3, 1, 1, true);
    let c = relu(&mut g, c);
    let z = binary(&mut g, BinaryOp::Add, y, c);
    g.outputs.extend([z, a]);
    assert_unchanged(&g, &ON);

    // Two BatchNorms of one input: nothing to merge into.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 8, 8]);
    let a = batch_norm(&mut g, &mut rng, x);
    let b = batch_norm(&mut g, &mut rng, x);
    let y = binary(&mut g, BinaryOp::Add, a, b);
    g.outputs.push(y);
    assert_unchanged(&g, &ON);
}

#[test]
fn disabled_changes_nothing() {
    let mut rng = Rng::new(7);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 6, 7, 7]);
    let y = v3_train_module(&mut g, &mut rng, x, 5);
    g.outputs.push(y);
    assert_unchanged(&g, &MergeParallelConvs { enabled: false });
}

/// Planned multiply-adds of a fixture after the full pipeline (`ghostc inspect`'s total).
fn planned_macs(name: &str) -> (u64, Graph) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name);
    let mut g = ghostc::onnx::load_model(&dir.join("model.onnx"), &Default::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    optimize(&mut g, &PassOptions::default()).unwrap();
    let macs = g
        .nodes
        .node_indices()
        .map(|n| ghostc::ir::cost::macs(&g, n))
        .sum();
    (macs, g)
}

/// GhostNetV3 training-form exports of every form (timm through TorchScript, whose sums start
/// with `Add(branch, 0)`, and through dynamo; the Huawei code's spelling with BN-only identity
/// branches) re-parameterize completely: no BatchNorm and no branch Add left, and the planned
/// MACs equal the deploy form's (same architecture and resolution) within 1 %. The outputs
/// against ONNX Runtime are checked for every fixture by `passes_fixtures`.
#[test]
fn v3_training_form_plans_the_deploy_forms_macs() {
    let (deploy, deploy_g) = planned_macs("dynamo18_v3deploy_w100_64x64_b1");
    for train in [
        "ts17_v3train_w100_64x64_b1",
        "dynamo18_v3train_w100_64x64_b1",
    ] {
        let (macs, g) = planned_macs(train);
        let rel = (macs as f64 - deploy as f64).abs() / deploy as f64;
        assert!(
            rel <= 0.01,
            "{train}: {macs} MACs planned, deploy form {deploy} ({:.2} %)",
            100.0 * rel
        );
        assert_eq!(count(&g, "batch_norm"), 0, "{train}");
        assert_eq!(count(&g, "add"), count(&deploy_g, "add"), "{train}\n{g}");
        assert_eq!(count(&g, "ghost"), count(&deploy_g, "ghost"), "{train}");
    }
    // The Huawei spelling (56x56, no deploy twin): everything merges just the same.
    let (_, g) = planned_macs("ts13_v3train_hwstyle_w100_56x56_b1");
    assert_eq!(count(&g, "batch_norm"), 0, "\n{g}");
    assert_eq!(count(&g, "add"), count(&deploy_g, "add"), "\n{g}");
    assert_eq!(count(&g, "ghost"), count(&deploy_g, "ghost"));
}
