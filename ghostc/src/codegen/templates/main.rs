//! Command-line runner for a ghostc-generated model (std only, no dependencies).
//!
//! Usage: `__NAME__ INPUT.npy OUTPUT.npy` runs the model (the batch is the .npy's leading dim);
//! `__NAME__ --bench [N]` times N runs (default 200) on a fixed input and prints the median, p10,
//! p90, the first run of the process, peak RSS (VmHWM) and % of this core's FMA peak;
//! `__NAME__ --profile [N [--raw]]` prints per-step times (profiling builds:
//! `ghostc compile --profile`; `--raw` prints `key=value` lines for `ghostc bench`).
//! `--threads T` (anywhere, default 1) runs on a `ghost_runtime::Team` of T threads: a batch
//! is split by images, a single image layer by layer.

use std::process::ExitCode;

use __CRATE__::Model;

/// When `main` began (for `main_to_first_us`).
static MAIN_START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Environment variable a launcher (`ghostc bench`) sets to the `SystemTime` of the spawn, in
/// nanoseconds since the Unix epoch: `--bench` then reports `spawn_to_first_us`, from the spawn
/// (exec, loader and std start-up included) to the first output.
const SPAWN_ENV: &str = "GHOSTC_SPAWN_UNIX_NS";

/// Set by `--threads T`.
static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// The model with 64-byte-aligned scratch for `--threads T` threads and, when T > 1, a team
/// of T threads (`ghost_runtime::WithScratch`).
fn model_with_threads() -> ghost_runtime::WithScratch<Model> {
    let threads = THREADS.load(std::sync::atomic::Ordering::Relaxed).max(1);
    ghost_runtime::WithScratch::with_threads(Model::new(), threads)
        .expect("cannot start worker threads")
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

fn run_files(input: &str, output: &str) -> Result<(), String> {
    let (shape, data) = read_npy(input)?;
    let batch = if shape.len() == Model::INPUT_SHAPE.len() && shape[1..] == Model::INPUT_SHAPE[1..]
    {
        shape[0]
    } else {
        return Err(format!(
            "{input}: shape {shape:?} does not match the model input {:?}",
            Model::INPUT_SHAPE
        ));
    };
    if !Model::DYNAMIC_BATCH && batch != Model::INPUT_SHAPE[0] {
        return Err(format!(
            "{input}: batch {batch}, the model was compiled for {}",
            Model::INPUT_SHAPE[0]
        ));
    }
    let out_per_image: usize = Model::OUTPUT_SHAPE[1..].iter().product();
    let images = if Model::DYNAMIC_BATCH { batch } else { 1 };
    let mut out = vec![0.0f32; images * Model::OUTPUT_SHAPE[0] * out_per_image];
    model_with_threads()
        .run(&data, &mut out)
        .map_err(|e| e.to_string())?;
    let mut out_shape = Model::OUTPUT_SHAPE.to_vec();
    out_shape[0] = batch;
    write_npy(output, &out_shape, &out)
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
    let input: Vec<f32> = (0..Model::INPUT_LEN)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut out = vec![0.0f32; Model::OUTPUT_LEN];
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
        Model::INPUT_SHAPE[0],
        Model::MACS * Model::INPUT_SHAPE[0] as u64,
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
        let gmacs = (Model::MACS * Model::INPUT_SHAPE[0] as u64) as f64 / pct(0.5) / 1e6;
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
        out.iter().map(|&v| v as f64).sum::<f64>()
    );
}

/// Set by `--profile N --raw`: print one `key=value` line per step instead of the table.
static PROFILE_RAW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() -> ExitCode {
    MAIN_START.get_or_init(std::time::Instant::now);
    let mut args: Vec<String> = std::env::args().skip(1).collect();
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
        [input, output] => {
            if let Err(e) = run_files(input, output) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ => {
            eprintln!("usage: __NAME__ [--threads T] (INPUT.npy OUTPUT.npy | --bench [N] | --profile [N [--raw]])");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
