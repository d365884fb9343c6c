//! The lowered [`Program`] of every fixture, fused and unfused (the two modes `e2e_fixtures`
//! compiles), in its text form (`impl Display for Program`: one line per step) against the
//! committed files under `ghostc/tests/out/plan/`, so a change to lowering, layouts, weight
//! packing or the arena shows up as a reviewable diff without building any generated crate.
//!
//! After an intended change, regenerate them with
//! `GHOSTC_BLESS=1 cargo test --release -p ghostc --test plan_snapshots` and review the diff.
//! A snapshot the test does not produce any more fails the test (delete it when blessing).

mod fixtures_common;

use std::path::{Path, PathBuf};

use ghostc::ir::Op;
use ghostc::onnx::{load_model, ImportOptions};
use ghostc::passes::{optimize, FuseOptions, PassOptions};
use ghostc::plan::lower::lower_with;
use ghostc::plan::program::{Kernel, Program};
use ghostc_testkit::snapshot::Snapshots;

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/out/plan")
}

/// What `ghostc compile` (default import options, as the e2e tests call it) lowers.
fn program(model: &Path, fuse: FuseOptions) -> Program {
    let mut g = load_model(model, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let opts = PassOptions {
        fuse,
        ..PassOptions::default()
    };
    optimize(&mut g, &opts).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    lower_with(&g, fuse.into()).unwrap_or_else(|e| panic!("{}: {e}", model.display()))
}

#[test]
fn every_fixtures_program_matches_its_snapshot() {
    let mut snapshots = Snapshots::new(out_dir());
    for fx in fixtures_common::fixtures() {
        for (mode, fuse) in [
            ("fused", FuseOptions::all()),
            ("unfused", FuseOptions::none()),
        ] {
            let text = program(&fx.model(), fuse).to_string();
            snapshots.check(&format!("{}.{mode}.txt", fx.name), text);
        }
    }
    // One int8 (QDQ) fixture: int8 kernels, quantize/dequantize boundaries, u8 buffers, the
    // stem's f32 fallback.
    let quant = "qdq_u8s8_perchannel_v1_w050_32x32_op21";
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/quant")
        .join(quant)
        .join("model.onnx");
    let text = program(&model, FuseOptions::all()).to_string();
    snapshots.check(&format!("{quant}.fused.txt"), text);
    snapshots.finish("cargo test --release -p ghostc --test plan_snapshots");
}

#[test]
fn text_form_is_one_line_per_step_after_the_header_and_buffers() {
    let fx = fixtures_common::fixture(fixtures_common::SMALL);
    let p = program(&fx.model(), FuseOptions::all());
    let text = p.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + p.buffers.len() + p.steps.len());
    for (i, step) in p.steps.iter().enumerate() {
        let line = lines[2 + p.buffers.len() + i];
        assert!(
            line.trim_start()
                .starts_with(&format!("{i} {}", step.kernel.label())),
            "{line}"
        );
    }
}

/// With every fusion on, each GhostNetV2/V3 DFC branch (one per average pool in the import) is
/// pool, 1x1, 1x5, 5x1 at the pooled resolution, applied in the epilogue of the Ghost module
/// it multiplies (`ghost_gated`): no `dfc_gate` pass, no Sigmoid, Resize, Mul or copy step,
/// so no full-resolution gate tensor.
#[test]
fn dfc_gates_are_applied_in_the_ghost_epilogue() {
    let mut seen = 0;
    for fx in fixtures_common::fixtures() {
        if !(fx.name.contains("_v2") || fx.name.contains("_v3")) {
            continue;
        }
        let g = load_model(&fx.model(), &ImportOptions::default()).unwrap();
        let pools = g
            .nodes
            .node_indices()
            .filter(|&n| matches!(g.node(n).op, Op::Pool(_)))
            .count();
        let p = program(&fx.model(), FuseOptions::all());
        let count = |f: &dyn Fn(&Kernel) -> bool| p.steps.iter().filter(|s| f(&s.kernel)).count();
        assert!(pools > 0, "{}", fx.name);
        assert_eq!(
            count(&|k| matches!(k, Kernel::Ghost { gate: Some(_), .. })),
            pools,
            "{}\n{p}",
            fx.name
        );
        assert_eq!(
            count(&|k| matches!(k, Kernel::DfcGate { .. })),
            0,
            "{}\n{p}",
            fx.name
        );
        // The runtime refuses channel sums with a gate (they would be the ungated values).
        assert_eq!(
            count(&|k| matches!(
                k,
                Kernel::Ghost {
                    gate: Some(_),
                    channel_sums: Some(_),
                    ..
                }
            )),
            0,
            "{}\n{p}",
            fx.name
        );
        let unfused = count(&|k| {
            matches!(
                k,
                Kernel::Unary { .. }
                    | Kernel::Resize { .. }
                    | Kernel::Binary { .. }
                    | Kernel::Copy { .. }
            )
        });
        assert_eq!(unfused, 0, "{}\n{p}", fx.name);
        seen += 1;
    }
    assert!(seen >= 10, "{seen} GhostNetV2/V3 fixtures");
}
