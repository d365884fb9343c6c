//! Command-line runner for a ghostc-generated model (std only, no dependencies).
//!
//! Usage: `__NAME__ INPUT.npy... OUTPUT.npy...` runs the model: one file per model input, then
//! one per output, in graph order (`Model::INPUT_NAMES`, `Model::OUTPUT_NAMES`); any file may be
//! given as `NAME=FILE` to match a tensor by its ONNX name instead (the batch is the inputs'
//! leading dim, the same for all);
//! `__NAME__ --bench [N]` times N runs (default 200) on a fixed input and prints the median, p10,
//! p90, the first run of the process, peak RSS (VmHWM) and % of this core's FMA peak;
//! `__NAME__ --profile [N [--raw]]` prints per-step times (profiling builds:
//! `ghostc compile --profile`; `--raw` prints `key=value` lines for `ghostc bench`).
//! `--threads T` (anywhere, default 1) runs on a `ghost_runtime::Team` of T threads: a batch
//! is split by images, a single image layer by layer; `--fixed-team` keeps the team splitting
//! every job even while its workers do not pay (see `Team::set_adaptive`; for ablation).

use std::process::ExitCode;

use __CRATE__::Model;

/// When `main` began (for `main_to_first_us`).
static MAIN_START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Environment variable a launcher (`ghostc bench`) sets to the `SystemTime` of the spawn, in
/// nanoseconds since the Unix epoch: `--bench` then reports `spawn_to_first_us`, from the spawn
/// (exec, loader and std start-up included) to the first output.
const SPAWN_ENV: &str = "GHOSTC_SPAWN_UNIX_NS";

/// Set by `--fixed-team`.
static FIXED_TEAM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by `--threads T`.
static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// The model with 64-byte-aligned scratch for `--threads T` threads and, when T > 1, a team
/// of T threads: the parts of `ghost_runtime::WithScratch`, for any number of inputs and
/// outputs.
struct Runner {
    model: Model,
    scratch: ghost_runtime::AlignedScratch,
    team: Option<ghost_runtime::Team>,
}

impl Runner {
    /// Runs the model on `x` into `y` (graph order); allocates nothing.
    fn run(&mut self, x: &[&[f32]], y: &mut [&mut [f32]]) -> Result<(), ghost_runtime::Error> {
        let fork: &dyn ghost_runtime::Fork = match &self.team {
            Some(team) => team,
            None => &ghost_runtime::Serial,
        };
        self.model.run_slices_with(fork, x, y, self.scratch.as_mut_slice())
    }

    /// Threads `run` uses.
    fn threads(&self) -> usize {
        self.team.as_ref().map_or(1, |t| t.threads())
    }
}

fn model_with_threads() -> Runner {
    let threads = THREADS.load(std::sync::atomic::Ordering::Relaxed).max(1);
    let team = (threads > 1).then(|| {
        let team = ghost_runtime::Team::new(threads).expect("cannot start worker threads");
        team.set_adaptive(!FIXED_TEAM.load(std::sync::atomic::Ordering::Relaxed));
        team
    });
    Runner {
        model: Model::new(),
        scratch: ghost_runtime::AlignedScratch::new(threads * Model::SCRATCH_LEN),
        team,
    }
}

/// The fixed inputs `--bench` and `--profile` run on (every input at the compiled batch).
fn bench_inputs() -> Vec<Vec<f32>> {
    Model::INPUT_LENS
        .iter()
        .map(|&n| (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect())
        .collect()
}

/// Borrows every tensor as a slice, for [`Runner::run`].
fn slices(v: &[Vec<f32>]) -> Vec<&[f32]> {
    v.iter().map(Vec::as_slice).collect()
}

/// Borrows every tensor mutably, for [`Runner::run`].
fn slices_mut(v: &mut [Vec<f32>]) -> Vec<&mut [f32]> {
    v.iter_mut().map(Vec::as_mut_slice).collect()
}

/// Zeroed outputs at the compiled batch.
fn bench_outputs() -> Vec<Vec<f32>> {
    Model::OUTPUT_LENS.iter().map(|&n| vec![0.0f32; n]).collect()
}

/// Images per call at the compiled batch.
fn compiled_images() -> usize {
    Model::INPUT_SHAPES[0][0]
}

fn read_npy(path: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("{path}: not a .npy file"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        _ if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(format!("{path}: truncated header")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or(format!("{path}: truncated header"))?;
    let header =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| format!("{path}: bad header"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(format!(
            "{path}: expected float32 little-endian ('<f4') data"
        ));
    }
    if header.contains("'fortran_order': True") {
        return Err(format!("{path}: Fortran order is not supported"));
    }
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|r| r.split('(').nth(1))
        .and_then(|r| r.split(')').next())
        .ok_or(format!("{path}: header has no shape"))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("{path}: bad dim '{s}'")))
        .collect::<Result<_, _>>()?;
    let body = &bytes[end..];
    let count: usize = shape.iter().product();
    if body.len() != count * 4 {
        return Err(format!(
            "{path}: shape {shape:?} needs {} bytes, file has {}",
            count * 4,
            body.len()
        ));
    }
    Ok((
        shape,
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

fn write_npy(path: &str, shape: &[usize], data: &[f32]) -> Result<(), String> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, out)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{path}: {e}"))
}

/// Assigns the file arguments to the model's inputs then outputs: `NAME=FILE` by ONNX name,
/// the others in order into the slots still free.
fn assign_files(args: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
    let (n_in, n_out) = (Model::INPUT_NAMES.len(), Model::OUTPUT_NAMES.len());
    let mut slots: Vec<Option<String>> = vec![None; n_in + n_out];
    let mut positional = Vec::new();
    for a in args {
        let named = a.split_once('=').and_then(|(name, file)| {
            let i = Model::INPUT_NAMES.iter().position(|n| *n == name);
            let o = Model::OUTPUT_NAMES.iter().position(|n| *n == name).map(|o| n_in + o);
            i.or(o).map(|slot| (slot, file))
        });
        match named {
            Some((slot, file)) if slots[slot].is_none() => slots[slot] = Some(file.to_string()),
            Some(_) => return Err(format!("'{a}': that tensor is given twice")),
            None => positional.push(a.clone()),
        }
    }
    let mut rest = positional.into_iter();
    for slot in slots.iter_mut().filter(|s| s.is_none()) {
        *slot = rest.next();
    }
    if let Some(extra) = rest.next() {
        return Err(format!("'{extra}': the model has {n_in} input(s) and {n_out} output(s), every file is taken"));
    }
    let mut files = Vec::new();
    for (i, slot) in slots.into_iter().enumerate() {
        let (word, name) = if i < n_in {
            ("input", Model::INPUT_NAMES[i])
        } else {
            ("output", Model::OUTPUT_NAMES[i - n_in])
        };
        files.push(slot.ok_or(format!("no file for model {word} {name:?}"))?);
    }
    let outputs = files.split_off(n_in);
    Ok((files, outputs))
}

fn run_files(args: &[String]) -> Result<(), String> {
    let (input_files, output_files) = assign_files(args)?;
    let mut inputs = Vec::new();
    let mut batch = None;
    for (t, file) in input_files.iter().enumerate() {
        let (shape, data) = read_npy(file)?;
        let want = Model::INPUT_SHAPES[t];
        if shape.len() != want.len() || shape[1..] != want[1..] {
            return Err(format!(
                "{file}: shape {shape:?} does not match the model input {:?} {want:?}",
                Model::INPUT_NAMES[t]
            ));
        }
        if !Model::DYNAMIC_BATCH && shape[0] != want[0] {
            return Err(format!(
                "{file}: batch {}, the model was compiled for {}",
                shape[0], want[0]
            ));
        }
        match batch {
            Some(b) if b != shape[0] => {
                return Err(format!("{file}: batch {}, the first input has {b}", shape[0]))
            }
            _ => batch = Some(shape[0]),
        }
        inputs.push(data);
    }
    let batch = batch.unwrap_or(1);
    let mut outputs: Vec<Vec<f32>> = Model::OUTPUT_SHAPES
        .iter()
        .map(|s| vec![0.0f32; batch * s[1..].iter().product::<usize>()])
        .collect();
    model_with_threads()
        .run(&slices(&inputs), &mut slices_mut(&mut outputs))
        .map_err(|e| e.to_string())?;
    for (t, file) in output_files.iter().enumerate() {
        let mut shape = Model::OUTPUT_SHAPES[t].to_vec();
        shape[0] = batch;
        write_npy(file, &shape, &outputs[t])?;
    }
    Ok(())
}

/// One field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`, ...); `None` off Linux.
fn status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Minor and major page faults of this process so far (`/proc/self/stat`); `None` off Linux.
fn page_faults() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name: state ppid pgrp session tty_nr tpgid flags
    // minflt cminflt majflt ...
    let rest: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some((rest.get(7)?.parse().ok()?, rest.get(9)?.parse().ok()?))
}

/// Times `runs` runs on a fixed input after the first run of this fresh process (timed on its
/// own: it pays the page faults of the weights and the scratch) and 5 warm-up runs. Also
/// reports the time from `main` (and, given [`SPAWN_ENV`], from the spawn) to the first
/// output: the input, `Model::new`, the scratch and the first run. Prints one line: the
/// human-readable part first (`runs N  median X ms  p10 ...`, parsed by bench/compare.py and
/// bench/compare.sh), then `key=value` fields after `|`.
fn bench(runs: usize) {
    let spawn_ns: Option<u128> = std::env::var(SPAWN_ENV).ok().and_then(|v| v.parse().ok());
    let rss_start = status_kb("VmRSS");
    let inputs = bench_inputs();
    let mut outputs = bench_outputs();
    let input = slices(&inputs);
    let mut out = slices_mut(&mut outputs);
    let mut model = model_with_threads();
    let faults0 = page_faults();
    let t0 = std::time::Instant::now();
    model
        .run(&input, &mut out)
        .expect("lengths are the model's own constants");
    let first = t0.elapsed();
    let first_done = (std::time::Instant::now(), std::time::SystemTime::now());
    let faults1 = page_faults();
    for _ in 0..5 {
        model
            .run(&input, &mut out)
            .expect("lengths are the model's own constants");
    }
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            model
                .run(&input, &mut out)
                .expect("lengths are the model's own constants");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let vmhwm = status_kb("VmHWM");
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let mut fields = format!(
        "threads={} runs={} first_us={:.1} median_us={:.1} p10_us={:.1} p90_us={:.1} min_us={:.1} images={} macs={} weight_bytes={} scratch_bytes={}",
        THREADS.load(std::sync::atomic::Ordering::Relaxed),
        times.len(),
        first.as_secs_f64() * 1e6,
        pct(0.5) * 1e3,
        pct(0.1) * 1e3,
        pct(0.9) * 1e3,
        times[0] * 1e3,
        compiled_images(),
        Model::MACS * compiled_images() as u64,
        Model::WEIGHT_BYTES,
        model.threads() * Model::SCRATCH_LEN * 4,
    );
    if let Some(start) = MAIN_START.get() {
        fields += &format!(
            " main_to_first_us={:.1}",
            (first_done.0 - *start).as_secs_f64() * 1e6
        );
    }
    let done_ns = first_done
        .1
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    if let Some(spawn) = spawn_ns.filter(|&s| s > 0 && s <= done_ns) {
        fields += &format!(" spawn_to_first_us={:.1}", (done_ns - spawn) as f64 / 1e3);
    }
    if let (Some((min0, maj0)), Some((min1, maj1))) = (faults0, faults1) {
        fields += &format!(" first_minflt={} first_majflt={}", min1 - min0, maj1 - maj0);
    }
    if let Some(kb) = rss_start {
        fields += &format!(" rss_start_kb={kb}");
    }
    if let Some(kb) = vmhwm {
        fields += &format!(" vmhwm_kb={kb}");
    }
    // One core's peak, measured on this thread; the roofline is threads x that.
    if let Some(peak) = ghost_runtime::peak::peak_gmacs() {
        let gmacs = (Model::MACS * compiled_images() as u64) as f64 / pct(0.5) / 1e6;
        let threads = THREADS.load(std::sync::atomic::Ordering::Relaxed).max(1);
        fields += &format!(
            " peak_gmacs={peak:.2} gmacs={gmacs:.2} roofline_pct={:.1}",
            100.0 * gmacs / (peak * threads as f64)
        );
    }
    println!(
        "runs {}  median {:.3} ms  p10 {:.3} ms  p90 {:.3} ms  first {:.3} ms  checksum {:.6}  |  {fields}",
        times.len(),
        pct(0.5),
        pct(0.1),
        pct(0.9),
        first.as_secs_f64() * 1e3,
        out.iter().flat_map(|o| o.iter()).map(|&v| v as f64).sum::<f64>()
    );
}

/// Set by `--profile N --raw`: print one `key=value` line per step instead of the table.
static PROFILE_RAW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() -> ExitCode {
    MAIN_START.get_or_init(std::time::Instant::now);
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--fixed-team") {
        FIXED_TEAM.store(true, std::sync::atomic::Ordering::Relaxed);
        args.remove(i);
    }
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        match args.get(i + 1).map(|t| t.parse::<usize>()) {
            Some(Ok(t)) if t > 0 => THREADS.store(t, std::sync::atomic::Ordering::Relaxed),
            _ => {
                eprintln!("error: --threads takes a positive thread count");
                return ExitCode::from(2);
            }
        }
        args.drain(i..i + 2);
    }
    match args.as_slice() {
        [flag] if flag == "--bench" => bench(200),
        [flag] if flag == "--profile" => profile(200),
        [flag, n] if flag == "--profile" => match n.parse() {
            Ok(n) => profile(n),
            Err(_) => {
                eprintln!("error: --profile takes a run count, got '{n}'");
                return ExitCode::from(2);
            }
        },
        [flag, n, raw] if flag == "--profile" && raw == "--raw" => match n.parse() {
            Ok(n) => {
                PROFILE_RAW.store(true, std::sync::atomic::Ordering::Relaxed);
                profile(n)
            }
            Err(_) => {
                eprintln!("error: --profile takes a run count, got '{n}'");
                return ExitCode::from(2);
            }
        },
        [flag, n] if flag == "--bench" => match n.parse() {
            Ok(n) => bench(n),
            Err(_) => {
                eprintln!("error: --bench takes a run count, got '{n}'");
                return ExitCode::from(2);
            }
        },
        files if !files.is_empty() && !files[0].starts_with("--") => {
            if let Err(e) = run_files(files) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ => {
            eprintln!("usage: __NAME__ [--threads T] ([NAME=]INPUT.npy... [NAME=]OUTPUT.npy... | --bench [N] | --profile [N [--raw]])");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
