//! Shared helpers for the end-to-end suites (`e2e_*.rs`): the fixture list, the `ghostc` CLI,
//! building generated crates, and one small harness crate shared by `e2e_alloc` and
//! `e2e_errors`.
//!
//! Everything cargo builds goes to ONE target directory under `CARGO_TARGET_TMPDIR`, so
//! ghost-runtime is compiled once per profile for all suites and survives between runs.
#![allow(dead_code)] // each suite uses a subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

// The fixture list (root, Fixture, fixtures, fixture, SMALL) is shared with the library's
// tests (ghostc/tests/plan_snapshots.rs), which cannot include this module: it names the
// `ghostc` binary.
#[path = "../../../ghostc/tests/fixtures_common/mod.rs"]
mod fixtures_common;
pub use fixtures_common::*;

/// The target directory every generated crate of every e2e suite builds into.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-target")
}

/// Runs `ghostc compile MODEL --out OUT --name NAME EXTRA...`; Err(stderr) on failure.
pub fn ghostc_compile(model: &Path, out: &Path, name: &str, extra: &[&str]) -> Result<(), String> {
    let o = Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .arg("compile")
        .arg(model)
        .arg("--out")
        .arg(out)
        .arg("--name")
        .arg(name)
        .args(extra)
        .output()
        .expect("spawn ghostc");
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ghostc compile exited with {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Runs `ghostc verify MODEL ARGS...`, asserts that it succeeded and returns its stdout.
pub fn ghostc_verify(model: &Path, args: &[String]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .arg("verify")
        .arg(model)
        .args(args)
        .output()
        .expect("spawn ghostc");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Copies the files of `src` into `dst`, writing only files whose bytes differ (so cargo's
/// mtime fingerprints see an unchanged crate as unchanged), and deleting files `src` lacks.
pub fn sync_tree(src: &Path, dst: &Path) {
    fn files(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let (mut have, mut want) = (Vec::new(), Vec::new());
    files(src, src, &mut want);
    files(dst, dst, &mut have);
    for rel in &have {
        if !want.contains(rel) {
            std::fs::remove_file(dst.join(rel)).unwrap();
        }
    }
    for rel in &want {
        let bytes = std::fs::read(src.join(rel)).unwrap();
        ghostc::codegen::output::write_if_changed(&dst.join(rel), &bytes).unwrap();
    }
}

/// The generated Cargo.toml without its `[profile.*]` and `[workspace]` tables, so the crate
/// can be a member of a throwaway workspace. Panics if the tables are not there (the format
/// changed and this helper must follow).
pub fn as_workspace_member(cargo_toml: &str) -> String {
    assert!(
        cargo_toml.contains("\n[workspace]"),
        "generated Cargo.toml has no [workspace] table:\n{cargo_toml}"
    );
    let mut out = String::new();
    let mut dropping = false;
    for line in cargo_toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            dropping = t == "[workspace]" || t.starts_with("[profile");
        }
        if !dropping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Builds the crates under `ws` (folder names = crate names) as ONE cargo workspace: a single
/// `cargo build --release`, so ghost-runtime is built once and the members compile in parallel.
/// The workspace profile is opt-level 3 without LTO (see e2e_fixtures.rs for why).
/// Returns the build time and cargo's stderr when some member failed (then only the members
/// with a binary at [`workspace_bin`] built).
pub fn build_workspace(ws: &Path, members: &[String]) -> (std::time::Duration, Option<String>) {
    for m in members {
        let toml = ws.join(m).join("Cargo.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        std::fs::write(&toml, as_workspace_member(&text)).unwrap();
    }
    let list: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
    let root_toml = format!(
        "[workspace]\nresolver = \"2\"\nmembers = [{}]\n\n[profile.release]\nopt-level = 3\nlto = false\ncodegen-units = 16\npanic = \"abort\"\ndebug = false\nincremental = false\n",
        list.join(", ")
    );
    std::fs::write(ws.join("Cargo.toml"), root_toml).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let t0 = Instant::now();
    let mut cmd = Command::new(cargo);
    // --keep-going: one broken member must not hide the others' results; stale binaries are
    // removed first so a member that fails to build has no binary.
    for m in members {
        let _ = std::fs::remove_file(workspace_bin(m));
    }
    cmd.current_dir(ws)
        .args(["build", "--release", "--quiet", "--offline", "--keep-going"])
        .env("CARGO_TARGET_DIR", target_dir());
    for var in [
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_MANIFEST_DIR",
    ] {
        cmd.env_remove(var);
    }
    let o = cmd.output().expect("spawn cargo");
    let failed = (!o.status.success()).then(|| {
        format!(
            "cargo build in {} failed ({}):\n{}",
            ws.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (t0.elapsed(), failed)
}

/// Path of a binary built by [`build_workspace`].
pub fn workspace_bin(name: &str) -> PathBuf {
    target_dir()
        .join("release")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The harness crate: the generated crate of [`SMALL`] (standalone, built with
/// `ghostc::build_crate`, i.e. its own release profile: LTO, panic = abort) plus
/// `src/bin/harness.rs` with subcommands `alloc`, `errors`, `scratch`.
pub struct Harness {
    /// The generated runner: `runner IN.npy OUT.npy`.
    pub runner: PathBuf,
    /// The test harness binary.
    pub harness: PathBuf,
}

pub const HARNESS_CRATE: &str = "e2e_harness";

const HARNESS_MAIN: &str = r#"//! e2e test harness (written by ghostc-cli/tests/e2e_common): checks that need the generated
//! `Model` in a real release binary.
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use e2e_harness::{Error, Model};

/// Counts every allocation (alloc, alloc_zeroed, realloc) made through the global allocator.
struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to System unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size(), Relaxed);
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(n, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn input() -> Vec<f32> {
    (0..Model::INPUT_LEN).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect()
}

fn model_warm_up(team: &ghost_runtime::Team, x: &[f32], out: &mut [f32], scratch: &mut [f32]) -> Result<(), ghost_runtime::Error> {
    Model::new().run_with(team, x, out, scratch)
}

fn alloc() -> ExitCode {
    // Positive control: the counter sees allocations at all.
    let before = ALLOCS.load(Relaxed);
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(16));
    std::hint::black_box(&v);
    let control = ALLOCS.load(Relaxed) - before;
    let x = input();
    let mut out = vec![0.0f32; Model::OUTPUT_LEN];
    let mut scratch = vec![0.0f32; 2 * Model::SCRATCH_LEN];
    // The team's threads are started (and allocate) before counting, and one run on it reads
    // GHOST_MIN_SPLIT_MACS (set to 0 by the test, so every layer is split); after that,
    // running on it must not allocate.
    let team = ghost_runtime::Team::new(2).expect("start a worker thread");
    let _ = model_warm_up(&team, &x, &mut out, &mut scratch);
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    let model = Model::new();
    let mut results = Ok(());
    for _ in 0..5 {
        results = results.and(model.run(&x, &mut out, &mut scratch));
        results = results.and(model.run_with(&team, &x, &mut out, &mut scratch));
    }
    let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    // Error paths must not allocate either.
    let err = model.run(&x[1..], &mut out, &mut scratch).is_err();
    let a2 = ALLOCS.load(Relaxed);
    println!("control allocations: {control}");
    println!("run allocations: {} ({} bytes) over Model::new + 5 runs + 5 runs on 2 threads; error path: {}", a1 - a0, b1 - b0, a2 - a1);
    println!("runs ok: {}, error returned: {err}, checksum {}", results.is_ok(), out.iter().sum::<f32>());
    if control == 0 || a1 != a0 || a2 != a1 || results.is_err() || !err {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn errors() -> ExitCode {
    let model = Model::new();
    let (i, o, s) = (Model::INPUT_LEN, Model::OUTPUT_LEN, Model::SCRATCH_LEN);
    let cases: [(&str, usize, usize, usize); 8] = [
        ("input", i - 1, o, s),
        ("input", i + 1, o, s),
        ("input", 0, o, s),
        ("output", i, o - 1, s),
        ("output", i, o + 1, s),
        ("output", i, 0, s),
        ("scratch", i, o, s - 1),
        ("scratch", i, o, 0),
    ];
    let mut ok = true;
    for (arg, il, ol, sl) in cases {
        let x = vec![0.5f32; il];
        let mut out = vec![7.0f32; ol];
        let mut scratch = vec![0.0f32; sl];
        let r = model.run(&x, &mut out, &mut scratch);
        let untouched = out.iter().all(|&v| v == 7.0);
        let good = match &r {
            // Inputs and outputs have exact lengths, the scratch a minimum; the text says which.
            Err(e @ Error::ExactLength { arg: a, .. }) => *a == arg && arg != "scratch" && e.to_string().contains("expected exactly") && untouched,
            Err(e @ Error::Length { arg: a, .. }) => *a == arg && arg == "scratch" && e.to_string().contains("expected at least") && untouched,
            _ => false,
        };
        ok &= good;
        println!("{} {arg} lens ({il}, {ol}, {sl}): {:?} -> {} (output untouched: {untouched})", if good { "ok  " } else { "FAIL" }, r, match &r { Err(e) => e.to_string(), Ok(()) => "Ok".into() });
    }
    // A larger scratch is fine.
    let mut out = vec![0.0f32; o];
    let r = model.run(&input(), &mut out, &mut vec![0.0f32; s + 100]);
    println!("{} oversized scratch: {:?}", if r.is_ok() { "ok  " } else { "FAIL" }, r);
    ok &= r.is_ok();
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The output must not depend on what the scratch held before: zeros, NaN, and a previous
/// run's leftovers give bit-identical outputs.
fn scratch() -> ExitCode {
    let model = Model::new();
    let x = input();
    let run = |fill: f32| {
        let mut out = vec![0.0f32; Model::OUTPUT_LEN];
        let mut scratch = vec![fill; Model::SCRATCH_LEN];
        model.run(&x, &mut out, &mut scratch).expect("run");
        out
    };
    let (zero, nan, big) = (run(0.0), run(f32::NAN), run(1e30));
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    println!("zero scratch: {zero:?}\nNaN scratch:  {nan:?}\n1e30 scratch: {big:?}");
    if bits(&zero) == bits(&nan) && bits(&zero) == bits(&big) && zero.iter().all(|v| v.is_finite()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("alloc") => alloc(),
        Some("errors") => errors(),
        Some("scratch") => scratch(),
        _ => {
            eprintln!("usage: harness alloc|errors|scratch");
            ExitCode::from(2)
        }
    }
}
"#;

/// Writes (if changed) and builds the harness crate once per test process.
pub fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    H.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-harness");
        let stage = tempfile::tempdir().unwrap();
        let staged = stage.path().join("crate");
        let fx = fixture(SMALL);
        ghostc::write_crate(
            &fx.model(),
            &staged,
            HARNESS_CRATE,
            &ghostc::CompileOptions::default(),
            &ghostc::RuntimeDep::default(),
        )
        .expect("write harness crate");
        ghostc::codegen::output::write_if_changed(
            &staged.join("src/bin/harness.rs"),
            HARNESS_MAIN.as_bytes(),
        )
        .unwrap();
        let dir = base.join("crate");
        sync_tree(&staged, &dir);
        let t0 = Instant::now();
        let runner = ghostc::build_crate(&dir, HARNESS_CRATE, Some(&target_dir()))
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "harness crate built (ghostc::build_crate, standalone release profile) in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let harness = runner.with_file_name(format!("harness{}", std::env::consts::EXE_SUFFIX));
        assert!(
            runner.exists() && harness.exists(),
            "built binaries missing: {} {}",
            runner.display(),
            harness.display()
        );
        Harness { runner, harness }
    })
}

/// Runs a binary; returns (success, stdout + stderr). `GHOST_MIN_SPLIT_MACS=0`: a
/// generated model on several threads splits every layer, however small (the fixtures are).
pub fn run_bin(bin: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(bin)
        .args(args)
        .env("GHOST_MIN_SPLIT_MACS", "0")
        .output()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    (
        o.status.success(),
        format!(
            "status {}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}
