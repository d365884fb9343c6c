//! Command-line runner for a ghostc-generated model (std only, no dependencies).
//!
//! Usage: `__NAME__ INPUT.npy OUTPUT.npy` runs the model (the batch is the .npy's leading dim);
//! `__NAME__ --bench [N]` times N runs (default 200) on a fixed input and prints the median;
//! `__NAME__ --profile [N]` prints per-step times (profiling builds: `ghostc compile --profile`).

use std::process::ExitCode;

use __CRATE__::Model;

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
    let model = Model::new();
    let (shape, data) = read_npy(input)?;
    let per_image: usize = Model::INPUT_SHAPE[1..].iter().product();
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
    let _ = per_image;
    let out_per_image: usize = Model::OUTPUT_SHAPE[1..].iter().product();
    let images = if Model::DYNAMIC_BATCH { batch } else { 1 };
    let mut out = vec![0.0f32; images * Model::OUTPUT_SHAPE[0] * out_per_image];
    let mut scratch = vec![0.0f32; Model::SCRATCH_LEN];
    model
        .run(&data, &mut out, &mut scratch)
        .map_err(|e| e.to_string())?;
    let mut out_shape = Model::OUTPUT_SHAPE.to_vec();
    out_shape[0] = batch;
    write_npy(output, &out_shape, &out)
}

fn bench(runs: usize) {
    let model = Model::new();
    let input: Vec<f32> = (0..Model::INPUT_LEN)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut out = vec![0.0f32; Model::OUTPUT_LEN];
    let mut scratch = vec![0.0f32; Model::SCRATCH_LEN];
    let t0 = std::time::Instant::now();
    model
        .run(&input, &mut out, &mut scratch)
        .expect("lengths are the model's own constants");
    let first = t0.elapsed();
    for _ in 0..5 {
        model
            .run(&input, &mut out, &mut scratch)
            .expect("lengths are the model's own constants");
    }
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            model
                .run(&input, &mut out, &mut scratch)
                .expect("lengths are the model's own constants");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "runs {}  median {:.3} ms  p10 {:.3} ms  p90 {:.3} ms  first {:.3} ms  checksum {:.6}",
        times.len(),
        pct(0.5),
        pct(0.1),
        pct(0.9),
        first.as_secs_f64() * 1e3,
        out.iter().map(|&v| v as f64).sum::<f64>()
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
            eprintln!("usage: __NAME__ INPUT.npy OUTPUT.npy | __NAME__ --bench [N] | __NAME__ --profile [N]");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
