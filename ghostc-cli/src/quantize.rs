//! `ghostc quantize`: calibration, QDQ writing and the accuracy report, with a progress bar on
//! stderr. The work is in `ghostc::quantize`; this file parses flags and prints.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use ghostc::ir::DType;
use ghostc::onnx::ImportOptions;
use ghostc::quantize::{self as q, InputSource, Method, QuantizeOptions};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  ghostc quantize model.onnx --calibrate images/ --out model_int8.onnx\n  ghostc quantize model.onnx --random 64 --method entropy --keep-float depthwise,se --out m8.onnx --validate-random 500\n\nCalibration and validation inputs are .npy files (float32, one image [C,H,W] or [1,C,H,W], or a batch [N,C,H,W]), read in file-name order. --random N uses N standard-normal images (seeded). The report compares the int8 model (the written file, imported back) with the f32 model: top-1 agreement, logit error relative to the logit range, and the worst layers."
)]
pub struct QuantizeArgs {
    /// The f32 ONNX model.
    model: PathBuf,
    /// Directory of calibration .npy files.
    #[arg(long, value_name = "DIR", conflicts_with = "random")]
    calibrate: Option<PathBuf>,
    /// Calibrate on N random standard-normal inputs instead.
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// Where to write the QDQ model.
    #[arg(long)]
    out: PathBuf,
    /// Calibration method: minmax, percentile or entropy.
    #[arg(long, default_value = "minmax")]
    method: String,
    /// Percentile for --method percentile.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Activation type: u8 or s8 (weights are always s8 per channel).
    #[arg(long, default_value = "u8")]
    activations: String,
    /// Keep these in f32: layer classes (depthwise, pointwise, se, stem, head) or node names,
    /// comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    keep_float: Vec<String>,
    /// Do not correct biases for the weights' rounding.
    #[arg(long)]
    no_bias_correction: bool,
    /// Report accuracy on these .npy inputs (default: the calibration inputs).
    #[arg(long, value_name = "DIR", conflicts_with = "validate_random")]
    validate: Option<PathBuf>,
    /// Report accuracy on N random inputs (a different seed from calibration).
    #[arg(long, value_name = "N")]
    validate_random: Option<usize>,
    /// Seed of --random (validation uses seed + 1).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip the accuracy report.
    #[arg(long)]
    no_report: bool,
    /// Layers to list in the report (worst first).
    #[arg(long, default_value_t = 10)]
    worst: usize,
}

/// A one-line progress bar on stderr (redrawn in place on a terminal, else printed at 25 %
/// steps so logs stay short).
struct Progress {
    what: &'static str,
    total: usize,
    start: Instant,
    tty: bool,
    last_quarter: usize,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Self {
        Progress {
            what,
            total,
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            last_quarter: 0,
        }
    }

    fn tick(&mut self, done: usize) {
        let secs = self.start.elapsed().as_secs_f64();
        let eta = if done > 0 {
            secs / done as f64 * (self.total - done) as f64
        } else {
            0.0
        };
        let width = 30;
        let filled = width * done / self.total.max(1);
        let line = format!(
            "{:<11} [{}{}] {done}/{} {secs:.1}s (eta {eta:.0}s)",
            self.what,
            "#".repeat(filled),
            "-".repeat(width - filled),
            self.total
        );
        if self.tty {
            eprint!("\r{line}");
            if done == self.total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        } else {
            let quarter = 4 * done / self.total.max(1);
            if quarter > self.last_quarter || done == self.total {
                self.last_quarter = quarter;
                eprintln!("{line}");
            }
        }
    }
}

fn source(
    dir: &Option<PathBuf>,
    random: Option<usize>,
    seed: u64,
    image: &[usize],
) -> Result<Option<InputSource>> {
    Ok(match (dir, random) {
        (Some(d), _) => Some(q::inputs::list_dir(d, image)?),
        (None, Some(n)) => Some(InputSource::Random { count: n, seed }),
        (None, None) => None,
    })
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    let method = match a.method.as_str() {
        "minmax" | "min-max" => Method::MinMax,
        "percentile" => Method::Percentile(a.percentile),
        "entropy" | "kl" => Method::Entropy,
        m => bail!("--method {m}: expected minmax, percentile or entropy"),
    };
    let activations = match a.activations.as_str() {
        "u8" | "uint8" => DType::U8,
        "s8" | "i8" | "int8" => DType::I8,
        t => bail!("--activations {t}: expected u8 or s8"),
    };
    let opts = QuantizeOptions {
        method,
        activations,
        keep_float: a.keep_float.clone(),
        bias_correction: !a.no_bias_correction,
    };
    let t0 = Instant::now();
    let graph = ghostc::onnx::load_model(&a.model, &ImportOptions::default())
        .with_context(|| format!("importing '{}'", a.model.display()))?;
    let g = q::prepare(graph)?;
    let image = q::image_shape(&g);
    let Some(calib_src) = source(&a.calibrate, a.random, a.seed, &image)? else {
        bail!("give calibration inputs: --calibrate DIR or --random N");
    };
    let mut bar = Progress::new("calibrating", calib_src.len());
    bar.tick(0);
    let quantized = q::quantize_prepared(&g, &calib_src, &opts, |i| bar.tick(i + 1))?;
    let bytes = quantized.to_bytes();
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing '{}'", a.out.display()))?;
    let quantize_secs = t0.elapsed().as_secs_f64();
    let s = &quantized.summary;
    println!(
        "wrote {} ({:.2} MB): {} nodes quantized, {} f32 ({} kept by --keep-float), {} activations with Q/DQ, {} weights s8 per channel ({:.2} MB int8/i32, {:.2} MB f32 left), {} biases corrected{}",
        a.out.display(),
        bytes.len() as f64 / 1e6,
        quantized.quantized_nodes,
        quantized.float_nodes,
        quantized.kept_float.len(),
        s.qdq_activations,
        s.quantized_weights,
        s.int8_weight_bytes as f64 / 1e6,
        s.f32_weight_bytes as f64 / 1e6,
        s.corrected_biases,
        if s.float_biases.is_empty() { String::new() } else { format!(", f32 biases (overflow): {}", s.float_biases.join(", ")) }
    );
    println!(
        "calibration: {} inputs, {:?}, {} activations; quantize took {quantize_secs:.1} s",
        quantized.calibration_inputs, method, a.activations
    );
    if a.no_report {
        return Ok(());
    }
    let qg = q::reimport(&quantized).context("importing the written model back")?;
    let val_src = source(
        &a.validate,
        a.validate_random,
        a.seed.wrapping_add(1),
        &image,
    )?;
    let (val_src, on) = match val_src {
        Some(v) => (v, "validation set"),
        None => (calib_src, "calibration set"),
    };
    let mut v = q::Validator::new(&g, &qg);
    let mut bar = Progress::new("validating", val_src.len());
    let t1 = Instant::now();
    val_src.for_each::<q::QuantizeError>(&image, |i, t| {
        v.observe(&t)?;
        bar.tick(i + 1);
        Ok(())
    })?;
    let r = v.report();
    println!(
        "accuracy vs f32 on the {on} ({} inputs, {} rows, {:.1} s): top-1 agreement {:.2} % ({}/{}), logit error / logit range: mean {:.4}, max {:.4}",
        r.inputs,
        r.rows,
        t1.elapsed().as_secs_f64(),
        r.top1_percent(),
        r.top1_agree,
        r.rows,
        r.mean_rel,
        r.max_rel
    );
    println!("worst layers (max |int8 - f32| / f32 range):");
    for l in r.worst_layers(a.worst) {
        println!(
            "  {:>8.4}  {:<16} {} -> {}",
            l.max_rel, l.op, l.node, l.value
        );
    }
    Ok(())
}
