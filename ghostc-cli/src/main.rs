//! The `ghostc` command line: argument parsing and printing only; the work is in the `ghostc`
//! library (and, for `ghostc bench`, in [`bench`](mod@bench)). Errors are printed as one line with their
//! cause chain (`{:#}`), exit code 1; usage errors exit 2 (clap).
//!
//! This crate exists so that build scripts and the proc-macro, which depend on the library,
//! never compile clap, anyhow or serde_json.

mod bench;
mod quantize;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use ghostc::ir::{fmt_shape, DType, Data, Graph, Tensor};
use ghostc::onnx::{ImportError, ImportOptions};
use ghostc::report::ModelReport;
use ghostc::{CompileError, ModelFile, Planned};

const EXIT_CODES: &str = "Exit codes: 0 success, 1 error (message on stderr), 2 usage error.";

#[derive(Parser)]
#[command(
    name = "ghostc",
    version,
    about = "Compile ONNX GhostNet-family CNNs into specialized, dependency-free Rust",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show inputs, outputs, a per-layer table (op, output shape, params, MACs) and totals,
    /// and whether code generation accepts the model: a model that imports but does not
    /// compile gets the full report, then every node code generation cannot lower, and exit
    /// code 1 (`--before` skips that check).
    #[command(
        after_help = "Examples:\n  ghostc inspect model.onnx\n  ghostc inspect model.onnx --before --ir\n  ghostc inspect model.onnx --shape input=1x3x224x224 --json\n  ghostc inspect model.onnx --dot graph.dot && dot -Tsvg graph.dot -o graph.svg"
    )]
    Inspect {
        /// The ONNX model.
        model: PathBuf,
        #[command(flatten)]
        shapes: ShapeArgs,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write the graph as Graphviz DOT to FILE.
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
        /// Print the IR as text (one line per node).
        #[arg(long)]
        ir: bool,
        /// Show the graph as imported, before any fusion (default: after the optimization
        /// passes, with fused ops).
        #[arg(long)]
        before: bool,
        #[command(flatten)]
        fuse: FuseArgs,
    },
    /// Run the model with the reference interpreter on .npy inputs and write .npy outputs.
    #[command(
        after_help = "Examples:\n  ghostc run model.onnx --input x.npy --output y.npy\n  ghostc run model.onnx --input input=x.npy --output y.npy\n\nThe input's shape pins the model's dynamic dims unless --shape is given. .npy files are float32, C order, little-endian."
    )]
    Run {
        /// The ONNX model.
        model: PathBuf,
        /// Input tensor as FILE.npy, or NAME=FILE.npy for a model with several inputs.
        #[arg(long = "input", value_name = "[NAME=]FILE", required = true)]
        inputs: Vec<String>,
        /// Where to write the output (the first output; NAME=FILE for others).
        #[arg(long = "output", value_name = "[NAME=]FILE", required = true)]
        outputs: Vec<String>,
        #[command(flatten)]
        shapes: ShapeArgs,
    },
    /// Compile the model into a standalone Rust crate (library + runner binary).
    #[command(
        after_help = "Examples:\n  ghostc compile model.onnx --out ghostnet_rs\n  ghostc compile model.onnx --out g --name ghostnet --shape input=1x3x224x224 --no-fuse se\n  ghostc compile model.onnx --out m4 --flash-budget 1048576 --ram-budget 262144\n  cd ghostnet_rs && cargo build --release && ./target/release/ghostnet_rs x.npy y.npy\n\nThe crate depends on ghost-runtime only; writes are atomic (a failed compile leaves any previous crate untouched)."
    )]
    Compile(CompileArgs),
    /// Compile, build and run the model, and compare each output with the reference
    /// interpreter (and with --expect). Exits 1 if any output is beyond tolerance.
    #[command(
        after_help = "Examples:\n  ghostc verify model.onnx\n  ghostc verify model.onnx --input x.npy --expect y.npy --no-fuse all\n  ghostc verify backbone.onnx --input input=x.npy --expect feat_s8=a.npy --expect feat_s16=b.npy\n\nTolerance: max |y - ref| <= 1e-4 * max |ref| + 1e-5, per output. Inputs without --input get seeded random noise."
    )]
    Verify {
        /// The ONNX model.
        model: PathBuf,
        /// Input .npy as FILE, or NAME=FILE for a model with several inputs (default: seeded
        /// uniform [-1, 1) noise of the input's shape). Repeatable.
        #[arg(long = "input", value_name = "[NAME=]FILE")]
        inputs: Vec<String>,
        /// Expected output .npy (e.g. from ONNX Runtime): FILE for the outputs in order, or
        /// NAME=FILE. Repeatable.
        #[arg(long = "expect", value_name = "[NAME=]FILE")]
        expect: Vec<String>,
        /// Keep the generated crate here instead of a temporary folder.
        #[arg(long)]
        keep: Option<PathBuf>,
        #[command(flatten)]
        shapes: ShapeArgs,
        #[command(flatten)]
        fuse: FuseArgs,
    },
    /// Compile, build (cargo build --release) and run the model: build time, binary size
    /// without the weights, weights + scratch vs peak RSS, first inference vs steady-state
    /// median and p10, % of the roofline against this core's measured FMA peak.
    #[command(
        after_help = "Examples:\n  ghostc bench model.onnx\n  ghostc bench model.onnx --profile --runs 100 --core 1 --target-dir /tmp/ghostc-bench-target\n  ghostc bench model.onnx --no-fuse se --name no_se --keep /tmp/no_se --runs 0\n\nWithout --target-dir the build is cold (ghost-runtime is built too, in a temporary target dir). The last line of the output holds every number as key=value (binary= last)."
    )]
    Bench(BenchArgs),
    /// Post-training quantization: calibrate the f32 model on .npy inputs (or random ones),
    /// write a standard QDQ ONNX model (s8 per-channel weights, u8 or s8 activations), and
    /// report its accuracy against the f32 model.
    Quantize(quantize::QuantizeArgs),
}

#[derive(Args)]
struct CompileArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Folder of the crate to write (replaced as a whole).
    #[arg(long)]
    out: PathBuf,
    /// Crate and binary name (default: the folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Depend on this published ghost-runtime version instead of this workspace's copy.
    #[arg(long, value_name = "VERSION")]
    runtime_version: Option<String>,
    /// Time every step (the binary then takes `--profile [N]`); needs std.
    #[arg(long)]
    profile: bool,
    #[command(flatten)]
    shapes: ShapeArgs,
    #[command(flatten)]
    fuse: FuseArgs,
    #[command(flatten)]
    budget: BudgetArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Also build an instrumented crate and print per-step times (op, output shape, MACs,
    /// median us, share, GMAC/s, % of peak, ONNX nodes), sorted by time.
    #[arg(long)]
    profile: bool,
    /// Timed runs after the first run and 5 warm-up runs (0: build and report sizes only).
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Keep the generated crate here (and the profiling one in DIR_profile).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Cargo target directory to build in and keep (re-runs are then fast; default: a fresh
    /// temporary one, so the build time is a cold build).
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    /// Crate and binary name (use distinct names for variants sharing a --target-dir).
    #[arg(long, default_value = "ghostc_bench")]
    name: String,
    /// Pin the runner (not the build) to this core with taskset.
    #[arg(long, value_name = "CORE")]
    core: Option<usize>,
    /// Threads the runner uses (--threads T); the roofline is then T cores' peak.
    #[arg(long, default_value_t = 1, value_name = "T")]
    threads: usize,
    #[command(flatten)]
    shapes: ShapeArgs,
    #[command(flatten)]
    fuse: FuseArgs,
}

fn bench(a: BenchArgs) -> Result<()> {
    ghostc::spec::check_crate_name(&a.name)?;
    let fuse = a.fuse.options()?;
    eprintln!("[bench] compiling {} ...", a.model.display());
    let t0 = std::time::Instant::now();
    let planned = plan(&a.model, &a.shapes, fuse)?;
    let opts = bench::BenchOptions {
        runtime: ghostc::RuntimeDep::default(),
        runs: a.runs,
        profile: a.profile,
        keep: a.keep,
        target_dir: a.target_dir,
        name: a.name,
        core: a.core,
        threads: a.threads,
    };
    let report = bench::bench(&a.model, &planned, t0, &opts)?;
    print!("{}", report.to_text());
    Ok(())
}

#[derive(Args)]
struct FuseArgs {
    /// Switch fusions off for ablation or debugging: a comma list of bn, act, ghost, residual,
    /// se, linear, branches, dfc, quant, pad, winograd, or all.
    #[arg(long, value_name = "LIST")]
    no_fuse: Option<String>,
}

impl FuseArgs {
    fn options(&self) -> Result<ghostc::passes::FuseOptions> {
        let mut opts = ghostc::passes::FuseOptions::all();
        if let Some(list) = &self.no_fuse {
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if name == "all" {
                    opts = ghostc::passes::FuseOptions::none();
                } else {
                    opts.set(name.parse::<ghostc::passes::Fusion>()?, false);
                }
            }
        }
        Ok(opts)
    }
}

#[derive(Args)]
struct ShapeArgs {
    /// Pin an input's shape: NAME=DIMS (e.g. input=1x3x224x224), or DIMS alone for a
    /// single-input model. Repeatable.
    #[arg(long = "shape", value_name = "[NAME=]DIMS")]
    shapes: Vec<String>,
    /// Set an import limit for untrusted models: NAME=N, NAME one of max_file_bytes,
    /// max_nodes, max_messages, max_nesting_depth, max_tensor_elements, max_fold_elements,
    /// max_name_len, max_external_bytes. Repeatable.
    #[arg(long = "limit", value_name = "NAME=N")]
    limits: Vec<String>,
}

/// Memory budgets of `ghostc compile`, as `ghostc::Builder::flash_budget` / `ram_budget`.
#[derive(Args)]
struct BudgetArgs {
    /// Fail (exit 1, nothing written) if the weights need more than BYTES (flash on a
    /// microcontroller; code not counted).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    flash_budget: Option<usize>,
    /// Fail (exit 1, nothing written) if arena + input + output need more than BYTES of RAM
    /// (stack not counted).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    ram_budget: Option<usize>,
}

/// A byte count, with `_` separators allowed (`1_048_576`), as the proc-macro's budgets take it.
fn parse_bytes(s: &str) -> Result<usize, String> {
    s.trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("'{s}' is not a number of bytes (e.g. 262144 or 262_144)"))
}

/// Splits `NAME=VALUE`; a lone VALUE gets name "".
fn split_named(arg: &str) -> (&str, &str) {
    match arg.split_once('=') {
        Some((name, value)) => (name, value),
        None => ("", arg),
    }
}

/// A model file read once and imported once with the options of the flags.
struct Loaded {
    file: ModelFile,
    graph: Graph,
}

/// Reads the model (once) and imports it with `--shape`/`--limit`, plus `pins` (the shapes of
/// named `--input` files) for inputs `--shape` does not name. A shape without a name (or taken
/// from an unnamed `--input`) applies to the model's only input: the model is imported as is,
/// and imported again from the same bytes with that input pinned only when its shape differs
/// (a dynamic batch of any size fits as is).
///
/// The outer error is a usage error or a failed first import for an unnamed shape (worded
/// "cannot import MODEL"); the inner one is the read or the import, for the caller to word.
fn load(
    model: &std::path::Path,
    shapes: &ShapeArgs,
    unnamed: Option<Vec<usize>>,
    pins: &[(String, Vec<usize>)],
) -> Result<Result<Loaded, ImportError>> {
    let mut pinned = BTreeMap::new();
    let mut unnamed = unnamed;
    for s in &shapes.shapes {
        match ghostc::spec::parse_shape(s)? {
            (Some(name), dims) if !name.is_empty() => {
                pinned.insert(name.to_string(), dims);
            }
            (_, dims) => unnamed = Some(dims),
        }
    }
    for (name, dims) in pins {
        pinned.entry(name.clone()).or_insert_with(|| dims.clone());
    }
    let mut opts = ImportOptions {
        shapes: pinned,
        ..ImportOptions::default()
    };
    for limit in &shapes.limits {
        opts.limits.apply(limit)?;
    }
    let file = match ModelFile::read(model, &opts.limits) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let Some(shape) = unnamed else {
        return Ok(file.import(&opts).map(|graph| Loaded { file, graph }));
    };
    let graph = file
        .import(&opts)
        .with_context(|| format!("cannot import {}", model.display()))?;
    if graph.inputs.len() != 1 {
        bail!(
            "the model has {} inputs: name each one (--shape NAME=DIMS, --input NAME=FILE)",
            graph.inputs.len()
        );
    }
    let input = graph.value(graph.inputs[0]);
    let fits = input.ty.shape == shape
        || (graph.dynamic_batch && input.ty.shape.get(1..) == shape.get(1..));
    if fits {
        return Ok(Ok(Loaded { file, graph }));
    }
    opts.shapes.insert(input.name.clone(), shape);
    Ok(file.import(&opts).map(|graph| Loaded { file, graph }))
}

/// [`load`] for the commands that word an import failure "cannot import MODEL: ...".
fn load_for_import(
    model: &std::path::Path,
    shapes: &ShapeArgs,
    unnamed: Option<Vec<usize>>,
    pins: &[(String, Vec<usize>)],
) -> Result<Loaded> {
    load(model, shapes, unnamed, pins)?
        .with_context(|| format!("cannot import {}", model.display()))
}

/// [`load`] then optimize and lower, for the commands that compile: errors as the library's
/// `compile_file` gives them.
fn plan(
    model: &std::path::Path,
    shapes: &ShapeArgs,
    fuse: ghostc::passes::FuseOptions,
) -> Result<Planned> {
    let loaded = load(model, shapes, None, &[])?.map_err(CompileError::from_read)?;
    Ok(Planned::from_graph(
        loaded.graph,
        loaded.file.sha256().to_string(),
        fuse,
    )?)
}

fn inspect(
    model: PathBuf,
    shapes: ShapeArgs,
    json: bool,
    dot: Option<PathBuf>,
    ir: bool,
    before: bool,
    fuse: FuseArgs,
) -> Result<()> {
    let fuse = fuse.options()?;
    let mut graph = load_for_import(&model, &shapes, None, &[])?.graph;
    if !before {
        let pass_opts = ghostc::passes::PassOptions {
            fuse,
            ..Default::default()
        };
        ghostc::passes::optimize(&mut graph, &pass_opts)?;
    }
    let report = ModelReport::new(&graph);
    // Lowering says whether code generation would accept the model; the same graph `compile`
    // lowers (unless --before, which shows the graph before the passes).
    let lowered = (!before).then(|| ghostc::plan::lower::lower_with(&graph, fuse.into()));
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
        match &lowered {
            Some(Ok(program)) => {
                println!("{}", ghostc::budget::Budget::of(program).to_line());
                println!("compiles: yes");
            }
            Some(Err(_)) => {
                println!("memory: not computed (the model does not compile)");
                println!("compiles: NO (why: the error on stderr)");
            }
            None => {}
        }
    }
    if ir {
        print!("\n{graph}");
    }
    if let Some(path) = dot {
        write_atomic(&path, ghostc::ir::display::to_dot(&graph).as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(Err(e)) = lowered {
        return Err(anyhow::Error::new(e).context(format!(
            "{} imports but does not compile (the report above is still complete)",
            model.display()
        )));
    }
    Ok(())
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn run(model: PathBuf, inputs: Vec<String>, outputs: Vec<String>, shapes: ShapeArgs) -> Result<()> {
    let mut arrays = Vec::new();
    for arg in &inputs {
        let (name, file) = split_named(arg);
        let array = ghostc::npy::read_f32(std::path::Path::new(file))?;
        arrays.push((name.to_string(), array));
    }
    let unnamed = arrays
        .iter()
        .find(|(n, _)| n.is_empty())
        .map(|(_, a)| a.shape.clone());
    // Each named input's .npy shape pins the model's dims unless --shape did.
    let pins: Vec<(String, Vec<usize>)> = arrays
        .iter()
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, a)| (n.clone(), a.shape.clone()))
        .collect();
    let graph = load_for_import(&model, &shapes, unnamed, &pins)?.graph;
    let mut feed = Vec::new();
    for (i, &v) in graph.inputs.iter().enumerate() {
        let value = graph.value(v);
        let found = arrays
            .iter()
            .find(|(n, _)| n == &value.name)
            .or_else(|| {
                (graph.inputs.len() == 1 && arrays.len() == 1 && arrays[0].0.is_empty())
                    .then(|| &arrays[0])
            })
            .or_else(|| arrays.get(i).filter(|(n, _)| n.is_empty()));
        let Some((_, array)) = found else {
            bail!(
                "no --input given for model input {:?} ({})",
                value.name,
                value.ty
            );
        };
        let tensor = Tensor::new(
            DType::F32,
            array.shape.clone(),
            Data::F32(array.data.clone()),
        )
        .context("input .npy element count does not match its shape")?;
        feed.push(tensor);
    }
    let results = ghostc::interp::run(&graph, &feed)?;
    for (i, arg) in outputs.iter().enumerate() {
        let (name, file) = split_named(arg);
        let index = if name.is_empty() {
            i
        } else {
            graph
                .outputs
                .iter()
                .position(|&v| graph.value(v).name == name)
                .with_context(|| format!("model has no output named {name:?}"))?
        };
        let Some(t) = results.get(index) else {
            bail!(
                "model has {} outputs, asked for #{}",
                results.len(),
                index + 1
            )
        };
        let data = t.to_f32_vec();
        ghostc::npy::write_f32(std::path::Path::new(file), t.shape(), &data)?;
        eprintln!("wrote {} [{}]", file, fmt_shape(t.shape()));
    }
    Ok(())
}

fn compile(args: CompileArgs) -> Result<()> {
    let CompileArgs {
        model,
        out,
        name,
        runtime_version,
        profile,
        shapes,
        fuse,
        budget,
    } = args;
    let name = match name {
        Some(n) => n,
        None => out
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.to_string())
            .context("cannot derive a crate name from --out; pass --name")?,
    };
    if let Err(e) = ghostc::spec::check_crate_name(&name) {
        bail!("{e} (use --name)");
    }
    let fuse = fuse.options()?;
    let runtime = match runtime_version {
        Some(v) => ghostc::RuntimeDep::Version(v),
        None => ghostc::RuntimeDep::default(),
    };
    let t0 = std::time::Instant::now();
    let planned = plan(&model, &shapes, fuse)?;
    ghostc::budget::Budget::of(&planned.program)
        .check(budget.flash_budget, budget.ram_budget)
        .map_err(CompileError::from)?;
    ghostc::write_planned_crate(&planned, &out, &name, profile, &runtime)?;
    let p = &planned.program;
    eprintln!(
        "wrote crate {name} to {} in {:.2} s: {} kernel calls, {:.1} M MACs/image, scratch {:.2} MB, weights {:.2} MB",
        out.display(),
        t0.elapsed().as_secs_f64(),
        p.steps.len(),
        p.steps.iter().map(|s| s.macs).sum::<u64>() as f64 / 1e6,
        p.arena_len as f64 * 4.0 / 1e6,
        planned.weights.len() as f64 / 1e6
    );
    Ok(())
}

fn random_input(shape: &[usize]) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..shape.iter().product::<usize>())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn verify(
    model: PathBuf,
    inputs: Vec<String>,
    expect: Vec<String>,
    keep: Option<PathBuf>,
    shapes: ShapeArgs,
    fuse: FuseArgs,
) -> Result<()> {
    let mut arrays = Vec::new();
    for arg in &inputs {
        let (name, file) = split_named(arg);
        arrays.push((name.to_string(), ghostc::npy::read_f32(Path::new(file))?));
    }
    let unnamed = match arrays.as_slice() {
        [(n, a)] if n.is_empty() => Some(a.shape.clone()),
        _ => None,
    };
    if arrays.len() > 1 && arrays.iter().any(|(n, _)| n.is_empty()) {
        bail!("several --input files: name each one (--input NAME=FILE)");
    }
    let pins: Vec<(String, Vec<usize>)> = arrays
        .iter()
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, a)| (n.clone(), a.shape.clone()))
        .collect();
    let fuse = fuse.options()?;
    // One read and one import: the imported graph is the interpreter's reference, and a copy
    // of it is compiled.
    let loaded = load_for_import(&model, &shapes, unnamed, &pins)?;
    let reference_graph = loaded.graph;
    let mut feed = Vec::new();
    for &v in &reference_graph.inputs {
        let value = reference_graph.value(v);
        let given = arrays
            .iter()
            .find(|(n, _)| n.is_empty() || *n == value.name)
            .map(|(_, a)| a);
        let (shape, data) = match given {
            Some(a) => (a.shape.clone(), a.data.clone()),
            None => (value.ty.shape.clone(), random_input(&value.ty.shape)),
        };
        feed.push((value.name.clone(), shape, data));
    }
    for (name, _) in &arrays {
        if !name.is_empty() && !feed.iter().any(|(n, _, _)| n == name) {
            bail!("the model has no input named {name:?}");
        }
    }
    let tmp = tempfile::tempdir()?;
    let dir = keep.clone().unwrap_or_else(|| tmp.path().join("crate"));
    eprintln!("[1/3] compiling {} ...", model.display());
    let planned = Planned::from_graph(
        reference_graph.clone(),
        loaded.file.sha256().to_string(),
        fuse,
    )?;
    ghostc::write_planned_crate(
        &planned,
        &dir,
        "ghostc_verify",
        false,
        &ghostc::RuntimeDep::default(),
    )?;
    eprintln!("[2/3] building the generated crate (cargo build --release) ...");
    let target = std::env::temp_dir().join("ghostc-verify-target");
    let bin = ghostc::build_crate(&dir, "ghostc_verify", Some(&target))?;
    eprintln!("[3/3] running it and the reference interpreter ...");
    // The runner takes one file per input, then one per output, in graph order.
    let mut args = Vec::new();
    for (i, (_, shape, data)) in feed.iter().enumerate() {
        let x = tmp.path().join(format!("x{i}.npy"));
        ghostc::npy::write_f32(&x, shape, data)?;
        args.push(x);
    }
    let outs: Vec<PathBuf> = (0..reference_graph.outputs.len())
        .map(|i| tmp.path().join(format!("y{i}.npy")))
        .collect();
    args.extend(outs.iter().cloned());
    let status = std::process::Command::new(&bin).args(&args).status()?;
    if !status.success() {
        bail!("the generated binary failed ({status})");
    }
    let tensors = feed
        .into_iter()
        .map(|(name, shape, data)| {
            Tensor::new(DType::F32, shape, Data::F32(data))
                .with_context(|| format!("input {name:?}: element count does not match its shape"))
        })
        .collect::<Result<Vec<_>>>()?;
    let reference = ghostc::interp::run(&reference_graph, &tensors)?;
    let names: Vec<String> = reference_graph
        .outputs
        .iter()
        .map(|&v| reference_graph.value(v).name.clone())
        .collect();
    let mut expected: Vec<Option<PathBuf>> = vec![None; names.len()];
    let mut next = 0;
    for arg in &expect {
        let (name, file) = split_named(arg);
        let index = if name.is_empty() {
            while expected.get(next).is_some_and(Option::is_some) {
                next += 1;
            }
            next
        } else {
            names
                .iter()
                .position(|n| n == name)
                .with_context(|| format!("the model has no output named {name:?}"))?
        };
        let Some(slot) = expected.get_mut(index) else {
            bail!(
                "{} --expect files for {} outputs",
                expect.len(),
                names.len()
            );
        };
        *slot = Some(PathBuf::from(file));
    }
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        let got = ghostc::npy::read_f32(&outs[i])?;
        let label = if names.len() == 1 {
            String::new()
        } else {
            format!(" [{name}]")
        };
        let d = ghostc::compare::compare(&got.data, &reference[i].to_f32_vec());
        let good = d.ok() && got.shape == reference[i].shape();
        println!(
            "vs interpreter{label}: {d} -> {}",
            if good { "ok" } else { "BEYOND TOLERANCE" }
        );
        ok &= good;
        if let Some(e) = &expected[i] {
            let e = ghostc::npy::read_f32(e)?;
            let d = ghostc::compare::compare(&got.data, &e.data);
            let good = d.ok() && got.shape == e.shape;
            println!(
                "vs --expect{label}:    {d} -> {}",
                if good { "ok" } else { "BEYOND TOLERANCE" }
            );
            ok &= good;
        }
    }
    if !ok {
        bail!("outputs differ beyond tolerance (max |y - ref| <= 1e-4 * max|ref| + 1e-5)");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect {
            model,
            shapes,
            json,
            dot,
            ir,
            before,
            fuse,
        } => inspect(model, shapes, json, dot, ir, before, fuse),
        Command::Run {
            model,
            inputs,
            outputs,
            shapes,
        } => run(model, inputs, outputs, shapes),
        Command::Compile(args) => compile(args),
        Command::Verify {
            model,
            inputs,
            expect,
            keep,
            shapes,
            fuse,
        } => verify(model, inputs, expect, keep, shapes, fuse),
        Command::Bench(args) => bench(args),
        Command::Quantize(args) => quantize::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
