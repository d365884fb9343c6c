//! Every fixture in `fixtures/manifest.json` through the whole product path: the `ghostc
//! compile` CLI writes a crate, cargo builds it, the generated runner (`NAME input.npy
//! out.npy...`, one file per model output) runs it, and each output is compared with ONNX
//! Runtime's (`expected.npy`, `expected_1.npy`, ...) by
//! `ghostc::compare::compare(..).ok()` (max |y - ref| <= 1e-4 * max |ref| + 1e-5). Twice per
//! fixture: all fusions on, and fusions off; each build runs on 1 thread and on a 2-thread
//! `ghost_runtime::Team` (`--threads 2`).
//!
//! Fusions off is `--no-fuse all` (no BN folding, activation/Ghost/residual/SE/linear/branch
//! fusion): every op goes through its unfused lowering. The fixtures in `NO_FUSE_SE` are also
//! compiled with `--no-fuse se` alone (everything fused but the SE blocks, which run op by op
//! on fused convs: the ablation switch's path).
//!
//! Build strategy (measured on the 2-core CI box): a standalone crate built by
//! `ghostc::build_crate` uses the crate's own profile and costs ~10-30 s per crate (ghost-runtime
//! compiled each time); 28 of them sequentially is far beyond the budget. So the
//! generated crates become members of ONE throwaway workspace (their `[profile]` and
//! `[workspace]` tables stripped, see `e2e_common::as_workspace_member`) built by a single
//! `cargo build --release` with opt-level 3, no LTO: ghost-runtime compiles once, members
//! compile in parallel, and each member is the generated crate byte for byte otherwise
//! (same lib.rs/model.rs/model.weights/main.rs). The standalone `build_crate` path with the
//! LTO profile is exercised by the harness crate of `e2e_alloc` / `e2e_errors`.
//!
//! Fixtures the pipeline cannot compile are never skipped silently: `KNOWN_UNSUPPORTED` lists
//! them with the reason, and the test fails if a listed one starts compiling (shrink the list)
//! or an unlisted one fails.

mod e2e_common;

use std::path::Path;
use std::time::Instant;

use e2e_common::{fixtures, ghostc_compile, Fixture};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// All fusions (the default).
    On,
    /// `--no-fuse all`.
    Off,
    /// `--no-fuse se`.
    NoSe,
}

impl Mode {
    fn args(self) -> &'static [&'static str] {
        match self {
            Mode::On => &[],
            Mode::Off => &["--no-fuse", "all"],
            Mode::NoSe => &["--no-fuse", "se"],
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Mode::On => "on",
            Mode::Off => "off",
            Mode::NoSe => "nose",
        }
    }
}

/// (fixture, mode, reason): fixtures `ghostc compile` rejects today. Empty: every fixture
/// compiles in both modes.
const KNOWN_UNSUPPORTED: &[(&str, Mode, &str)] = &[];

/// Fixtures also compiled with `--no-fuse se`: the one whose SE has SiLU between its FCs
/// (EfficientNet's), where the fused `se_gate` and the op-by-op SE take different paths.
const NO_FUSE_SE: &[&str] = &["ts17_tveffb0_w025_64x64_b1"];

fn modes(name: &str) -> &'static [Mode] {
    if NO_FUSE_SE.contains(&name) {
        &[Mode::On, Mode::Off, Mode::NoSe]
    } else {
        &[Mode::On, Mode::Off]
    }
}

fn known(name: &str, mode: Mode) -> Option<&'static str> {
    KNOWN_UNSUPPORTED
        .iter()
        .find(|(n, m, _)| *n == name && *m == mode)
        .map(|(_, _, r)| *r)
}

fn crate_name(fx: &Fixture, mode: Mode) -> String {
    format!("{}_{}", mode.tag(), fx.name)
}

#[test]
fn fixtures_match_onnx_runtime_through_generated_code() {
    let ws = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-fixtures-ws");
    let stage = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut members = Vec::new();
    let mut built = Vec::new();
    let t0 = Instant::now();
    let all = fixtures();
    for name in NO_FUSE_SE {
        assert!(
            all.iter().any(|fx| fx.name == *name),
            "NO_FUSE_SE names {name}, which is not in the manifest"
        );
    }
    for fx in all {
        for &mode in modes(&fx.name) {
            let name = crate_name(&fx, mode);
            let out = stage.path().join(&name);
            match (
                ghostc_compile(&fx.model(), &out, &name, mode.args()),
                known(&fx.name, mode),
            ) {
                (Ok(()), None) => {
                    members.push(name.clone());
                    built.push((fx.clone(), mode, name));
                }
                (Ok(()), Some(reason)) => problems.push(format!(
                    "{} [{}] compiles now but is in KNOWN_UNSUPPORTED ({reason}): remove it",
                    fx.name,
                    mode.tag()
                )),
                (Err(e), Some(reason)) => println!(
                    "{:40} {:3} known unsupported: {reason}\n    {e}",
                    fx.name,
                    mode.tag()
                ),
                (Err(e), None) => problems.push(format!(
                    "{} [{}] does not compile: {e}",
                    fx.name,
                    mode.tag()
                )),
            }
        }
    }
    println!(
        "compiled {} crates with the CLI in {:.1} s",
        members.len(),
        t0.elapsed().as_secs_f64()
    );
    // Keep unchanged files (mtimes) so a rerun rebuilds only what changed.
    std::fs::create_dir_all(&ws).unwrap();
    for m in &members {
        e2e_common::sync_tree(&stage.path().join(m), &ws.join(m));
    }
    let (dt, build_err) = e2e_common::build_workspace(&ws, &members);
    println!(
        "built {} crates in one cargo workspace in {:.1} s",
        members.len(),
        dt.as_secs_f64()
    );
    if let Some(e) = &build_err {
        let tail: Vec<&str> = e
            .lines()
            .filter(|l| l.starts_with("error"))
            .take(20)
            .collect();
        problems.push(format!(
            "some generated crates do not build:\n{}",
            tail.join("\n")
        ));
    }

    println!(
        "{:40} {:8} {:>10} {:>10} {:>8}  result",
        "fixture", "fuse", "max abs", "max rel", "max ULP"
    );
    for (fx, mode, name) in built {
        let outs: Vec<_> = (0..fx.outputs)
            .map(|i| stage.path().join(format!("{name}.out{i}.npy")))
            .collect();
        let input = fx.dir.join("input.npy");
        if !e2e_common::workspace_bin(&name).exists() {
            println!(
                "{:40} {:8} {:>10} {:>10} {:>8}  FAIL (crate does not build)",
                fx.name,
                mode.tag(),
                "-",
                "-",
                "-"
            );
            problems.push(format!(
                "{} [{}]: the generated crate does not build (see cargo's errors above)",
                fx.name,
                mode.tag()
            ));
            continue;
        }
        // One thread, and two (a batch split by images, a single image layer by layer).
        for threads in [1usize, 2] {
            let tag = format!("{}/t{threads}", mode.tag());
            let threads_arg = threads.to_string();
            for out in &outs {
                let _ = std::fs::remove_file(out);
            }
            let mut args = vec!["--threads", &threads_arg, input.to_str().unwrap()];
            args.extend(outs.iter().map(|o| o.to_str().unwrap()));
            let (ok, log) = e2e_common::run_bin(&e2e_common::workspace_bin(&name), &args);
            if !ok {
                problems.push(format!(
                    "{} [{}]: the generated runner failed: {log}",
                    fx.name, tag
                ));
                continue;
            }
            for (i, out) in outs.iter().enumerate() {
                let got = ghostc::npy::read_f32(out).unwrap();
                let want = ghostc::npy::read_f32(&fx.expected(i)).unwrap();
                let d = ghostc::compare::compare(&got.data, &want.data);
                let pass = d.ok() && got.shape == want.shape;
                let which = if fx.outputs > 1 {
                    format!(" #{i}")
                } else {
                    String::new()
                };
                println!(
                    "{:40} {:8} {:10.3e} {:10.3e} {:8}  {}{}",
                    format!("{}{which}", fx.name),
                    tag,
                    d.max_abs,
                    d.max_rel,
                    d.max_ulp,
                    if pass { "pass" } else { "FAIL" },
                    if got.shape != want.shape {
                        format!(" (shape {:?} vs {:?})", got.shape, want.shape)
                    } else {
                        String::new()
                    }
                );
                if !pass {
                    problems.push(format!(
                        "{}{which} [{}]: output differs from ONNX Runtime: {d}",
                        fx.name, tag
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
