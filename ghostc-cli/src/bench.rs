//! `ghostc bench`: write a planned model as a standalone crate ([`write_planned_crate`]), build it in
//! release ([`build_crate`]), run its runner and report what a deployment cares about: build
//! time, binary size without the weights, weight and scratch bytes, peak RSS, the first
//! inference of a fresh process against the steady state, and % of the roofline (MACs / median
//! latency against this core's FMA peak, measured on the spot by `ghost_runtime::peak` inside
//! the runner). With `profile`, a second, instrumented build gives a per-step table (op kind,
//! output shape, MACs, median time, share, GMAC/s, % of peak, ONNX nodes covered), emitted
//! from the same plan (the model is read, imported and lowered once).
//!
//! Every number comes from the runner's `key=value` output (`NAME --bench N`,
//! `NAME --profile N --raw`), so it is measured in the runner's own process, on the core it is
//! pinned to ([`BenchOptions::core`] or the caller's `taskset`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ghostc::plan::program::Program;
use ghostc::{build_crate, write_planned_crate, BuildError, CompileError, Planned, RuntimeDep};

/// What to benchmark and how.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub runtime: RuntimeDep,
    /// Timed runs after the first run and 5 warm-up runs; 0 builds and reports sizes only.
    pub runs: usize,
    /// Also build an instrumented crate and report per-step times.
    pub profile: bool,
    /// Write the crate(s) here (`DIR`, and `DIR_profile` with `profile`) instead of a temporary
    /// folder.
    pub keep: Option<PathBuf>,
    /// Cargo target directory. `None`: a fresh temporary one, so the build time includes
    /// ghost-runtime (a cold build). A persistent one makes re-runs fast.
    pub target_dir: Option<PathBuf>,
    /// Crate and binary name (distinct names let variants share one target directory).
    pub name: String,
    /// Run the runner under `taskset -c CORE` (the build is not pinned).
    pub core: Option<usize>,
    /// Threads the runner uses (`--threads T`; 1: no team). The roofline is then T cores' peak.
    pub threads: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            runtime: RuntimeDep::default(),
            runs: 200,
            profile: false,
            keep: None,
            target_dir: None,
            name: "ghostc_bench".into(),
            core: None,
            threads: 1,
        }
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The runner failed or printed something this version of ghostc does not understand.
    #[error("{cmd}: {detail}")]
    Runner { cmd: String, detail: String },
}

/// The runner's `--bench` numbers (`key=value` fields of its output line).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Threads the runner used.
    pub threads: usize,
    pub runs: usize,
    /// The first run of a fresh process: page faults of the weights and scratch included.
    pub first_us: f64,
    pub median_us: f64,
    pub p10_us: f64,
    pub p90_us: f64,
    pub min_us: f64,
    /// From the spawn of the runner (`taskset` included when pinned) to its first output:
    /// exec, loader, std start-up, the input, `Model::new`, the scratch and the first run.
    pub spawn_to_first_us: Option<f64>,
    /// From the runner's `main` to its first output.
    pub main_to_first_us: Option<f64>,
    /// Page faults during the first run (Linux).
    pub first_minflt: Option<u64>,
    pub first_majflt: Option<u64>,
    /// VmRSS before the model was touched and VmHWM after all runs (Linux).
    pub rss_start_kb: Option<u64>,
    pub vmhwm_kb: Option<u64>,
    /// This core's FMA peak as measured by the runner (x86_64 with AVX2+FMA, aarch64).
    pub peak_gmacs: Option<f64>,
}

/// One row of the per-step profile.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    pub step: usize,
    /// Kernel kind: ghost, pointwise, depthwise, conv, fc, se, ..., with `+res` (residual add in
    /// the epilogue), `+pool` (channel sums for a following SE) and `+se` (SE gate folded into
    /// the weights).
    pub op: String,
    /// The lowering's description of the step.
    pub what: String,
    pub out_shape: Vec<usize>,
    /// MACs per run (per image times the compiled batch).
    pub macs: u64,
    pub median_us: f64,
    pub mean_us: f64,
    /// ONNX nodes the step computes (part of).
    pub nodes: Vec<String>,
    /// Its MACs are int8 ones: % of peak is against the int8 peak.
    pub int8: bool,
}

/// The per-step profile of the instrumented build.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub runs: usize,
    /// In step order.
    pub rows: Vec<StepRow>,
    /// Median wall time of a whole run with the timers on.
    pub wall_median_us: f64,
    /// One core's peak as measured by the runner.
    pub peak_gmacs: Option<f64>,
    /// One core's int8 (`vpdpbusd`) peak as measured by the runner, for int8 convolutions.
    pub peak_int8_gmacs: Option<f64>,
    /// Threads the runner used; % of peak is against threads x one core's peak.
    pub threads: usize,
}

/// Everything `ghostc bench` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    pub model: PathBuf,
    pub binary: PathBuf,
    pub compile_secs: f64,
    /// `cargo build --release` of the generated crate.
    pub build_secs: f64,
    /// Whether the build compiled ghost-runtime too (none in the target directory, or out of
    /// date); otherwise only the generated crate was compiled.
    pub cold_build: bool,
    pub binary_bytes: u64,
    pub weight_bytes: u64,
    pub scratch_bytes: u64,
    pub steps: usize,
    /// Images per run (the compiled batch).
    pub batch: usize,
    /// MACs per run.
    pub macs: u64,
    /// `None` when no runs were asked for.
    pub run: Option<RunStats>,
    pub profile: Option<Profile>,
}

impl BenchReport {
    /// Binary size minus the embedded weight blob: code, tables, std.
    pub fn code_bytes(&self) -> u64 {
        self.binary_bytes.saturating_sub(self.weight_bytes)
    }

    /// Achieved GMAC/s at the median latency.
    pub fn gmacs(&self) -> Option<f64> {
        let r = self.run.as_ref()?;
        (r.median_us > 0.0).then(|| self.macs as f64 / r.median_us / 1e3)
    }

    /// MACs / median latency as a % of the measured peak of one core times the threads.
    pub fn roofline_pct(&self) -> Option<f64> {
        let r = self.run.as_ref()?;
        Some(100.0 * self.gmacs()? / (r.peak_gmacs? * r.threads.max(1) as f64))
    }

    /// One line of `key=value` fields (after `bench:`), for scripts; `binary=` comes last and
    /// runs to the end of the line.
    pub fn machine_line(&self) -> String {
        let mut s = format!(
            "bench: compile_s={:.3} build_s={:.3} cold_build={} binary_bytes={} code_bytes={} weight_bytes={} scratch_bytes={} steps={} batch={} macs={}",
            self.compile_secs,
            self.build_secs,
            u8::from(self.cold_build),
            self.binary_bytes,
            self.code_bytes(),
            self.weight_bytes,
            self.scratch_bytes,
            self.steps,
            self.batch,
            self.macs
        );
        if let Some(r) = &self.run {
            let _ = write!(
                s,
                " threads={} runs={} first_us={:.1} median_us={:.1} p10_us={:.1} p90_us={:.1} min_us={:.1}",
                r.threads, r.runs, r.first_us, r.median_us, r.p10_us, r.p90_us, r.min_us
            );
            for (k, v) in [
                ("spawn_to_first_us", r.spawn_to_first_us),
                ("main_to_first_us", r.main_to_first_us),
            ] {
                if let Some(v) = v {
                    let _ = write!(s, " {k}={v:.1}");
                }
            }
            for (k, v) in [
                ("first_minflt", r.first_minflt),
                ("first_majflt", r.first_majflt),
                ("rss_start_kb", r.rss_start_kb),
                ("vmhwm_kb", r.vmhwm_kb),
            ] {
                if let Some(v) = v {
                    let _ = write!(s, " {k}={v}");
                }
            }
            if let Some(p) = r.peak_gmacs {
                let _ = write!(s, " peak_gmacs={p:.2}");
            }
            if let (Some(g), Some(p)) = (self.gmacs(), self.roofline_pct()) {
                let _ = write!(s, " gmacs={g:.2} roofline_pct={p:.1}");
            }
        }
        // Last: a path may contain spaces.
        let _ = write!(s, " binary={}", self.binary.display());
        s
    }

    /// The human-readable report, then (with a profile) the per-step table, then
    /// [`machine_line`](Self::machine_line).
    pub fn to_text(&self) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        let mut s = String::new();
        let _ = writeln!(s, "model      {}", self.model.display());
        let _ = writeln!(
            s,
            "plan       {} kernel steps, {:.2} M MACs per run (batch {})",
            self.steps,
            self.macs as f64 / 1e6,
            self.batch
        );
        let _ = writeln!(
            s,
            "build      {:.1} s  cargo build --release of the generated crate ({}); ghostc compile {:.2} s",
            self.build_secs,
            if self.cold_build {
                "cold: ghost-runtime compiled too"
            } else {
                "warm: only the generated crate compiled, ghost-runtime was up to date"
            },
            self.compile_secs
        );
        let _ = writeln!(
            s,
            "binary     {:.2} MB; without the {:.2} MB of weights: {:.2} MB",
            mb(self.binary_bytes),
            mb(self.weight_bytes),
            mb(self.code_bytes())
        );
        let threads = self.run.as_ref().map_or(1, |r| r.threads.max(1));
        let ws = self.weight_bytes + self.scratch_bytes * threads as u64;
        let mut mem = format!(
            "memory     weights {:.2} MB + scratch {:.2} MB{} = {:.2} MB",
            mb(self.weight_bytes),
            mb(self.scratch_bytes),
            if threads > 1 {
                format!(" x {threads} threads")
            } else {
                String::new()
            },
            mb(ws)
        );
        if let Some(r) = &self.run {
            if let Some(h) = r.vmhwm_kb {
                let h = h * 1024;
                let _ = write!(
                    mem,
                    "; peak RSS (VmHWM) {:.2} MB = weights + scratch {} {:.2} MB",
                    mb(h),
                    if h >= ws { "+" } else { "-" },
                    mb(h.abs_diff(ws))
                );
                if let Some(r0) = r.rss_start_kb {
                    let _ = write!(mem, " (RSS at start {:.2} MB)", mb(r0 * 1024));
                }
            }
        }
        let _ = writeln!(s, "{mem}");
        match &self.run {
            None => {
                let _ = writeln!(s, "latency    not measured (--runs 0)");
            }
            Some(r) => {
                let faults = match (r.first_minflt, r.first_majflt) {
                    (Some(mi), Some(ma)) => format!(", {mi} minor + {ma} major page faults"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    s,
                    "first run  {:.3} ms (fresh process{faults}) = {:.2} x the median",
                    r.first_us / 1e3,
                    if r.median_us > 0.0 {
                        r.first_us / r.median_us
                    } else {
                        f64::NAN
                    }
                );
                if let Some(spawn) = r.spawn_to_first_us {
                    let _ = writeln!(
                        s,
                        "startup    {:.3} ms from the spawn to the first output{} (exec, Model::new, scratch, first run)",
                        spawn / 1e3,
                        r.main_to_first_us
                            .map(|m| format!(", {:.3} ms of it from main()", m / 1e3))
                            .unwrap_or_default()
                    );
                }
                let _ = writeln!(
                    s,
                    "steady     median {:.3} ms, p10 {:.3} ms, p90 {:.3} ms, min {:.3} ms over {} runs (after 5 warm-up runs)",
                    r.median_us / 1e3,
                    r.p10_us / 1e3,
                    r.p90_us / 1e3,
                    r.min_us / 1e3,
                    r.runs
                );
                match (self.gmacs(), r.peak_gmacs, self.roofline_pct()) {
                    (Some(g), Some(p), Some(pct)) => {
                        let _ = writeln!(
                            s,
                            "roofline   {:.2} M MACs / {:.3} ms = {g:.1} GMAC/s = {pct:.1} % of {} ({p:.1} GMAC/s per core, measured by the runner)",
                            self.macs as f64 / 1e6,
                            r.median_us / 1e3,
                            if r.threads > 1 {
                                format!("{} cores' peak", r.threads)
                            } else {
                                "this core's peak".to_string()
                            }
                        );
                    }
                    (Some(g), ..) => {
                        let _ = writeln!(
                            s,
                            "roofline   {g:.1} GMAC/s (peak not measurable on this CPU)"
                        );
                    }
                    _ => {}
                }
            }
        }
        if let Some(p) = &self.profile {
            s.push('\n');
            s.push_str(&p.to_text());
        }
        s.push('\n');
        s.push_str(&self.machine_line());
        s.push('\n');
        s
    }
}

impl Profile {
    /// The per-step table sorted by median time (descending), a total line, and the time per
    /// op kind.
    pub fn to_text(&self) -> String {
        let total: f64 = self.rows.iter().map(|r| r.median_us).sum();
        let gmacs = |macs: u64, us: f64| {
            if us > 0.0 {
                macs as f64 / us / 1e3
            } else {
                0.0
            }
        };
        let peak = |g: f64, int8: bool| match if int8 {
            self.peak_int8_gmacs
        } else {
            self.peak_gmacs
        } {
            Some(p) if p > 0.0 && g > 0.0 => {
                format!("{:.1}", 100.0 * g / (p * self.threads.max(1) as f64))
            }
            _ => "-".into(),
        };
        let share = |us: f64| {
            if total > 0.0 {
                100.0 * us / total
            } else {
                0.0
            }
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "per-step profile: median of {} runs of the instrumented build on {} thread(s), sorted by time",
            self.runs,
            self.threads.max(1)
        );
        let _ = writeln!(
            s,
            "{:>4}  {:<20} {:<16} {:>11} {:>9} {:>6} {:>7} {:>6}  onnx nodes",
            "step", "op", "output", "MACs", "time us", "share%", "GMAC/s", "%peak"
        );
        let mut rows: Vec<&StepRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| {
            b.median_us
                .total_cmp(&a.median_us)
                .then(a.step.cmp(&b.step))
        });
        for r in rows {
            let g = gmacs(r.macs, r.median_us);
            let _ = writeln!(
                s,
                "{:>4}  {:<20} {:<16} {:>11} {:>9.1} {:>6.1} {:>7.1} {:>6}  {}",
                r.step,
                r.op,
                fmt_dims(&r.out_shape),
                r.macs,
                r.median_us,
                share(r.median_us),
                g,
                peak(g, r.int8),
                fmt_nodes(&r.nodes)
            );
        }
        let macs: u64 = self.rows.iter().map(|r| r.macs).sum();
        let g = gmacs(macs, total);
        let _ = writeln!(
            s,
            "{:>4}  {:<20} {:<16} {:>11} {:>9.1} {:>6.1} {:>7.1} {:>6}  sum of step medians; a whole run (timers on): {:.1} us",
            "",
            "total",
            format!("{} steps", self.rows.len()),
            macs,
            total,
            100.0,
            g,
            peak(g, false),
            self.wall_median_us
        );
        // Time per op kind.
        let mut kinds: BTreeMap<&str, (usize, u64, f64, bool)> = BTreeMap::new();
        for r in &self.rows {
            let k = r.op.split('+').next().unwrap_or(&r.op);
            let e = kinds.entry(k).or_default();
            e.0 += 1;
            e.1 += r.macs;
            e.2 += r.median_us;
            // A kind is one kernel, so its steps are all int8 or all not.
            e.3 = r.int8;
        }
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by(|a, b| b.1 .2.total_cmp(&a.1 .2));
        let _ = writeln!(
            s,
            "\nby op kind:\n{:<20} {:>5} {:>11} {:>9} {:>6} {:>7} {:>6}",
            "op", "steps", "MACs", "time us", "share%", "GMAC/s", "%peak"
        );
        for (k, (n, macs, us, int8)) in kinds {
            let g = gmacs(macs, us);
            let _ = writeln!(
                s,
                "{k:<20} {n:>5} {macs:>11} {us:>9.1} {:>6.1} {g:>7.1} {:>6}",
                share(us),
                peak(g, int8)
            );
        }
        if let Some(p) = self.peak_gmacs {
            let _ = writeln!(
                s,
                "peak: {p:.1} GMAC/s per core (measured by the runner); % of peak is against {} core(s)",
                self.threads.max(1)
            );
        }
        if let Some(p) = self.peak_int8_gmacs {
            let _ = writeln!(
                s,
                "int8 peak: {p:.1} GMAC/s per core (vpdpbusd, measured by the runner): the %peak of the int8 convolutions (pointwise-u8, depthwise-u8, stem-u8; the total row: the f32 peak)"
            );
        }
        s
    }
}

fn fmt_dims(d: &[usize]) -> String {
    if d.is_empty() {
        return "-".into();
    }
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// ONNX names, escaped (they come from an untrusted file), with their common `/`-prefix
/// factored out: `/blocks.1/ghost1/{primary_conv/Conv, cheap_operation/Conv}`.
fn fmt_nodes(nodes: &[String]) -> String {
    let esc: Vec<String> = nodes.iter().map(|n| n.escape_debug().to_string()).collect();
    match esc.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => {
            let mut len = first.len();
            for n in rest {
                len = first
                    .bytes()
                    .zip(n.bytes())
                    .take(len)
                    .take_while(|(a, b)| a == b)
                    .count();
            }
            // Cut after a '/' (ASCII, so a char boundary in every name).
            let cut = first.as_bytes()[..len]
                .iter()
                .rposition(|&b| b == b'/')
                .map_or(0, |i| i + 1);
            let tails: Vec<&str> = esc.iter().map(|n| &n[cut..]).collect();
            format!("{}{{{}}}", &first[..cut], tails.join(", "))
        }
    }
}

/// Parses the `key=value` tokens of one line.
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .collect()
}

fn num<T: std::str::FromStr>(f: &BTreeMap<&str, &str>, key: &str) -> Option<T> {
    f.get(key)?.parse().ok()
}

/// Parses the output of `NAME --bench N`.
pub fn parse_bench_output(stdout: &str) -> Option<RunStats> {
    let line = stdout.lines().find(|l| l.contains("median_us="))?;
    let f = fields(line);
    Some(RunStats {
        threads: num(&f, "threads").unwrap_or(1),
        runs: num(&f, "runs")?,
        first_us: num(&f, "first_us")?,
        median_us: num(&f, "median_us")?,
        p10_us: num(&f, "p10_us")?,
        p90_us: num(&f, "p90_us")?,
        min_us: num(&f, "min_us")?,
        spawn_to_first_us: num(&f, "spawn_to_first_us"),
        main_to_first_us: num(&f, "main_to_first_us"),
        first_minflt: num(&f, "first_minflt"),
        first_majflt: num(&f, "first_majflt"),
        rss_start_kb: num(&f, "rss_start_kb"),
        vmhwm_kb: num(&f, "vmhwm_kb"),
        peak_gmacs: num(&f, "peak_gmacs"),
    })
}

/// Parses the output of `NAME --profile N --raw` and joins it with the program's steps.
pub fn parse_profile_output(stdout: &str, program: &Program) -> Option<Profile> {
    let mut rows = Vec::new();
    let mut total = None;
    for line in stdout.lines() {
        let f = fields(line);
        if line.starts_with("step=") {
            let step: usize = num(&f, "step")?;
            let s = program.steps.get(step)?;
            rows.push(StepRow {
                step,
                op: s.kernel.label(),
                what: s.what.clone(),
                out_shape: s.out_shape.clone(),
                macs: num(&f, "macs")?,
                median_us: num(&f, "median_us")?,
                mean_us: num(&f, "mean_us")?,
                nodes: s.nodes.clone(),
                int8: s.kernel.int8_macs(),
            });
        } else if line.starts_with("total ") {
            total = Some((
                num::<usize>(&f, "runs")?,
                num::<f64>(&f, "wall_median_us")?,
                num::<f64>(&f, "peak_gmacs"),
                num::<f64>(&f, "peak_int8_gmacs"),
            ));
        }
    }
    let (runs, wall_median_us, peak_gmacs, peak_int8_gmacs) = total?;
    (rows.len() == program.steps.len()).then_some(Profile {
        runs,
        rows,
        wall_median_us,
        peak_gmacs,
        peak_int8_gmacs,
        threads: 1,
    })
}

/// The release builds of ghost-runtime in `target` with their modification times: a build
/// that compiles ghost-runtime (again) adds or touches one.
fn runtime_builds(target: &Path) -> Vec<(std::ffi::OsString, Option<std::time::SystemTime>)> {
    let mut v: Vec<_> = std::fs::read_dir(target.join("release").join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("libghost_runtime-") && n.ends_with(".rlib")
        })
        .map(|e| (e.file_name(), e.metadata().and_then(|m| m.modified()).ok()))
        .collect();
    v.sort();
    v
}

/// The environment variable through which the runner learns when it was spawned (nanoseconds
/// since the Unix epoch; the generated `main.rs` reads the same name).
pub const SPAWN_ENV: &str = "GHOSTC_SPAWN_UNIX_NS";

/// Runs the runner with `args` (after `--threads T` when T > 1), pinned when asked; returns its
/// stdout.
fn run_runner(
    bin: &Path,
    args: &[String],
    core: Option<usize>,
    threads: usize,
) -> Result<String, BenchError> {
    let mut cmd = match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    if threads > 1 {
        cmd.arg("--threads").arg(threads.to_string());
    }
    cmd.args(args);
    let shown = format!("{cmd:?}");
    // The runner reports the time from here to its first output (`spawn_to_first_us`).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    cmd.env(SPAWN_ENV, now.to_string());
    let out = cmd.output().map_err(|source| BenchError::Io {
        what: format!("cannot run {shown}"),
        source,
    })?;
    if !out.status.success() {
        return Err(BenchError::Runner {
            cmd: shown,
            detail: format!(
                "exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| BenchError::Runner {
        cmd: shown,
        detail: "output is not UTF-8".into(),
    })
}

/// Writes, builds and runs the planned `model` as described in the module docs; `started` is
/// when its compile began (the report's compile time runs from it to the crate written).
/// Progress goes to stderr.
pub fn bench(
    model: &Path,
    planned: &Planned,
    started: Instant,
    opts: &BenchOptions,
) -> Result<BenchReport, BenchError> {
    let tmp = tempfile::tempdir().map_err(|source| BenchError::Io {
        what: "cannot create a temporary folder".into(),
        source,
    })?;
    let dir = opts
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().join("crate"));
    let target = opts
        .target_dir
        .clone()
        .unwrap_or_else(|| tmp.path().join("target"));

    write_planned_crate(planned, &dir, &opts.name, false, &opts.runtime)?;
    let compile_secs = started.elapsed().as_secs_f64();

    eprintln!(
        "[bench] cargo build --release in {} (target {}) ...",
        dir.display(),
        target.display(),
    );
    let before = runtime_builds(&target);
    let t0 = Instant::now();
    let binary = build_crate(&dir, &opts.name, Some(&target))?;
    let build_secs = t0.elapsed().as_secs_f64();
    let cold_build = runtime_builds(&target) != before;
    let binary_bytes = std::fs::metadata(&binary)
        .map_err(|source| BenchError::Io {
            what: format!("cannot stat {}", binary.display()),
            source,
        })?
        .len();
    let p = &planned.program;
    let batch = p.batch;

    let run = if opts.runs > 0 {
        eprintln!(
            "[bench] {} --bench {}{} ...",
            binary.display(),
            opts.runs,
            opts.core
                .map(|c| format!(" (taskset -c {c})"))
                .unwrap_or_default()
        );
        let out = run_runner(
            &binary,
            &["--bench".into(), opts.runs.to_string()],
            opts.core,
            opts.threads,
        )?;
        Some(parse_bench_output(&out).ok_or_else(|| BenchError::Runner {
            cmd: binary.display().to_string(),
            detail: format!("unexpected --bench output: {}", out.trim()),
        })?)
    } else {
        None
    };

    let profile = if opts.profile {
        let name = format!("{}_profile", opts.name);
        let pdir = match &opts.keep {
            Some(k) => {
                let mut s = k.clone().into_os_string();
                s.push("_profile");
                PathBuf::from(s)
            }
            None => tmp.path().join("crate_profile"),
        };
        eprintln!("[bench] profiling build in {} ...", pdir.display());
        write_planned_crate(planned, &pdir, &name, true, &opts.runtime)?;
        let pbin = build_crate(&pdir, &name, Some(&target))?;
        let runs = opts.runs.max(1);
        eprintln!("[bench] {} --profile {runs} --raw ...", pbin.display());
        let out = run_runner(
            &pbin,
            &["--profile".into(), runs.to_string(), "--raw".into()],
            opts.core,
            opts.threads,
        )?;
        let mut profile =
            parse_profile_output(&out, &planned.program).ok_or_else(|| BenchError::Runner {
                cmd: pbin.display().to_string(),
                detail: "unexpected --profile --raw output (step count or fields)".into(),
            })?;
        profile.threads = opts.threads.max(1);
        Some(profile)
    } else {
        None
    };

    Ok(BenchReport {
        model: model.to_path_buf(),
        binary: if opts.keep.is_some() || opts.target_dir.is_some() {
            binary
        } else {
            PathBuf::from("-")
        },
        compile_secs,
        build_secs,
        cold_build,
        binary_bytes,
        weight_bytes: planned.weights.len() as u64,
        scratch_bytes: p.arena_len as u64 * 4,
        steps: p.steps.len(),
        batch,
        macs: p.steps.iter().map(|s| s.macs).sum::<u64>() * batch as u64,
        run,
        profile,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn int8_steps_are_measured_against_the_int8_peak() {
        let row = |step, op: &str, int8| StepRow {
            step,
            op: op.into(),
            what: String::new(),
            out_shape: vec![1, 8, 4, 4],
            macs: 1_000_000,
            median_us: 10.0,
            mean_us: 10.0,
            nodes: vec![],
            int8,
        };
        let p = Profile {
            runs: 3,
            rows: vec![row(0, "conv", false), row(1, "pointwise-u8", true)],
            wall_median_us: 20.0,
            peak_gmacs: Some(200.0),
            peak_int8_gmacs: Some(800.0),
            threads: 1,
        };
        let t = p.to_text();
        // 1 M MACs in 10 us = 100 GMAC/s: 50 % of the f32 peak, 12.5 % of the int8 one, in
        // the step table and the op-kind table alike.
        let pct = |op: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.split_whitespace().nth(1) == Some(op) || l.starts_with(op))
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let at = f.iter().position(|&x| x == "100.0").expect("GMAC/s column");
                    f[at + 1].to_string()
                })
                .collect()
        };
        assert_eq!(pct("conv"), ["50.0", "50.0"], "{t}");
        assert_eq!(pct("pointwise-u8"), ["12.5", "12.5"], "{t}");
        assert!(t.contains("int8 peak: 800.0 GMAC/s"), "{t}");
    }

    use super::*;

    #[test]
    fn parses_runner_bench_line() {
        let line = "runs 20  median 4.150 ms  p10 4.020 ms  p90 4.300 ms  first 12.000 ms  checksum 1.0  |  runs=20 first_us=12000.0 median_us=4150.0 p10_us=4020.0 p90_us=4300.0 min_us=4000.0 images=1 macs=1 weight_bytes=4 scratch_bytes=8 spawn_to_first_us=15000.5 main_to_first_us=13000.0 first_minflt=10 first_majflt=0 rss_start_kb=1000 vmhwm_kb=25000 peak_gmacs=58.00 gmacs=34.0 roofline_pct=58.6\n";
        let r = parse_bench_output(line).unwrap();
        assert_eq!(r.runs, 20);
        assert_eq!(r.median_us, 4150.0);
        assert_eq!(r.vmhwm_kb, Some(25000));
        assert_eq!(r.peak_gmacs, Some(58.0));
        assert_eq!(r.spawn_to_first_us, Some(15000.5));
        assert_eq!(r.main_to_first_us, Some(13000.0));
        let no_start = line
            .replace("spawn_to_first_us", "x")
            .replace("main_to_first_us", "y");
        let r = parse_bench_output(&no_start).unwrap();
        assert_eq!((r.spawn_to_first_us, r.main_to_first_us), (None, None));
        assert!(parse_bench_output("runs 20  median 4.1 ms  p10 4.0 ms").is_none());
    }

    #[test]
    fn nodes_share_their_prefix() {
        let n = |v: &[&str]| fmt_nodes(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(n(&[]), "");
        assert_eq!(n(&["/a/b/Conv"]), "/a/b/Conv");
        assert_eq!(n(&["/a/b/c/Conv", "/a/b/d/Relu"]), "/a/b/{c/Conv, d/Relu}");
        assert_eq!(n(&["x", "y\n"]), "{x, y\\n}");
        assert_eq!(n(&["/é/a", "/é/b", "/éx"]), "/{é/a, é/b, éx}");
        assert_eq!(n(&["/é", "/è"]), "/{é, è}");
    }
}
