//! The whole pipeline behind every entry point (CLI, build.rs `Builder`, proc-macro): read the
//! model file once ([`ModelFile`]), import, optimize, lower ([`Planned`]), emit ([`Compiled`]).
//!
//! Emitting is a separate step because two callers need the plan before the source: the
//! proc-macro names the weights file by the weights' hash, and `ghostc bench` emits one plan
//! with and without timers.

use std::path::{Path, PathBuf};

use crate::codegen::emit::{emit_with, EmitOptions, WeightsPath};
use crate::codegen::output::{write_dir_atomically, write_if_changed, OutputError};
use crate::ir::Graph;
use crate::model_file::{data_files, ModelFile};
use crate::onnx::{ImportError, ImportOptions};
use crate::passes::{optimize, FuseOptions, PassError, PassOptions};
use crate::plan::lower::{lower_with, LowerError, LowerOptions};
use crate::plan::program::Program;
use crate::spec::{check_crate_name, SpecError};

/// Why a model could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Pass(#[from] PassError),
    #[error(transparent)]
    Lower(#[from] LowerError),
    #[error(transparent)]
    Output(#[from] OutputError),
    /// User error: the model exceeds the flash/RAM budget given to [`Builder`].
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
    /// User error: a crate name (or other user-typed spec) is not accepted.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// User error: the model file cannot be read.
    #[error("cannot read {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// User error: a build script ran without OUT_DIR and no out_dir was given.
    #[error("no output directory: call .out_dir(...) or run from a build script (OUT_DIR unset)")]
    NoOutDir,
}

/// What to compile and how.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    pub import: ImportOptions,
    pub fuse: FuseOptions,
    /// Emit per-step timers (std only); see [`EmitOptions::profile`].
    pub profile: bool,
}

impl CompileError {
    /// The error for a failed [`ModelFile::read`] on a compile path: an unreadable file is
    /// [`CompileError::Io`] ("cannot read PATH"), a file over the size limit stays an import
    /// error naming `max_file_bytes`.
    pub fn from_read(e: ImportError) -> CompileError {
        match e {
            ImportError::Io { path, source } => CompileError::Io { path, source },
            other => CompileError::Import(other),
        }
    }
}

/// A model imported, optimized and lowered, before any code is emitted.
#[derive(Debug)]
pub struct Planned {
    pub program: Program,
    /// The optimized graph the program was lowered from.
    pub graph: Graph,
    /// The program's weight blob, little-endian (what the generated code `include_bytes!`).
    pub weights: Vec<u8>,
    /// SHA-256 of the model file's bytes, as read for this compile.
    pub model_sha256: String,
}

impl Planned {
    /// Reads the model file once and plans it.
    pub fn read(model: &Path, opts: &CompileOptions) -> Result<Planned, CompileError> {
        let file = ModelFile::read(model, &opts.import.limits).map_err(CompileError::from_read)?;
        let graph = file.import(&opts.import)?;
        Planned::from_graph(graph, file.sha256().to_string(), opts.fuse)
    }

    /// Optimizes and lowers an imported graph; `model_sha256` is the hash of the file it came
    /// from ([`ModelFile::sha256`]).
    pub fn from_graph(
        mut graph: Graph,
        model_sha256: String,
        fuse: FuseOptions,
    ) -> Result<Planned, CompileError> {
        let pass_opts = PassOptions {
            fuse,
            ..PassOptions::default()
        };
        optimize(&mut graph, &pass_opts)?;
        let program = lower_with(&graph, LowerOptions::from(fuse))?;
        Ok(Planned {
            weights: program.weights.to_le_bytes(),
            program,
            graph,
            model_sha256,
        })
    }

    /// The Rust module's source, including the weights from `weights`; `profile` adds per-step
    /// timers (see [`EmitOptions::profile`]).
    pub fn emit(&self, weights: &WeightsPath, profile: bool) -> Result<String, CompileError> {
        Ok(emit_with(
            &self.program,
            weights,
            &self.model_sha256,
            EmitOptions { profile },
        )?)
    }

    /// Pairs the plan with the source emitted from it.
    pub fn into_compiled(self, source: String) -> Compiled {
        Compiled {
            source,
            weights: self.weights,
            program: self.program,
            graph: self.graph,
            model_sha256: self.model_sha256,
        }
    }
}

/// A compiled model: the Rust module's source and its weight blob.
#[derive(Debug)]
pub struct Compiled {
    pub source: String,
    pub weights: Vec<u8>,
    pub program: Program,
    /// The optimized graph the program was lowered from.
    pub graph: Graph,
    /// SHA-256 of the model file's bytes, as read for this compile (named in the source).
    pub model_sha256: String,
}

/// Compiles the model at `model` (read once); the generated source includes the weights from
/// `weights`.
pub fn compile_file(
    model: &Path,
    opts: &CompileOptions,
    weights: &WeightsPath,
) -> Result<Compiled, CompileError> {
    let planned = Planned::read(model, opts)?;
    let source = planned.emit(weights, opts.profile)?;
    Ok(planned.into_compiled(source))
}

/// Build-script entry point: compiles a model into `OUT_DIR/<name>.rs` (plus its weights) for
/// the crate to `include!`.
///
/// In `build.rs`'s `main`:
/// ```no_run
/// ghostc::Builder::new("models/ghostnet.onnx")
///     .shape("input", &[1, 3, 224, 224])
///     .compile()
///     .unwrap_or_else(|e| {
///         eprintln!("error: {e}");
///         std::process::exit(1)
///     });
/// ```
/// and in `src/lib.rs`: `include!(concat!(env!("OUT_DIR"), "/model.rs"));`
#[derive(Clone, Debug)]
pub struct Builder {
    model: PathBuf,
    name: String,
    out_dir: Option<PathBuf>,
    opts: CompileOptions,
    /// Byte limits checked by `compile` (see [`crate::budget`]).
    flash_budget: Option<usize>,
    ram_budget: Option<usize>,
}

impl Builder {
    pub fn new(model: impl AsRef<Path>) -> Self {
        Builder {
            model: model.as_ref().to_path_buf(),
            name: "model".into(),
            out_dir: None,
            opts: CompileOptions::default(),
            flash_budget: None,
            ram_budget: None,
        }
    }

    /// Pins the shape of input `name` (dynamic dims must be pinned; a dynamic batch may stay).
    pub fn shape(mut self, name: &str, dims: &[usize]) -> Self {
        self.opts
            .import
            .shapes
            .insert(name.to_string(), dims.to_vec());
        self
    }

    /// Import limits for untrusted models (default: [`crate::onnx::Limits::default`]).
    pub fn limits(mut self, limits: crate::onnx::Limits) -> Self {
        self.opts.import.limits = limits;
        self
    }

    /// Which fusions run (all by default).
    pub fn fuse(mut self, fuse: FuseOptions) -> Self {
        self.opts.fuse = fuse;
        self
    }

    /// Output folder (default: the build script's OUT_DIR).
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// File stem of the generated module (default `model`: `model.rs`, `model.weights`).
    pub fn module_name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Fails [`Builder::compile`] when the weights exceed `bytes` (the model's flash need;
    /// code is not counted, see [`crate::budget::Budget`]).
    pub fn flash_budget(mut self, bytes: usize) -> Self {
        self.flash_budget = Some(bytes);
        self
    }

    /// Fails [`Builder::compile`] when arena + input + output exceed `bytes`.
    pub fn ram_budget(mut self, bytes: usize) -> Self {
        self.ram_budget = Some(bytes);
        self
    }

    /// Compiles and writes the module; returns the path of the `.rs` file. Prints
    /// `cargo:rerun-if-changed` lines for the model and its external data.
    pub fn compile(self) -> Result<PathBuf, CompileError> {
        let dir = match self.out_dir {
            Some(d) => d,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(CompileError::NoOutDir)?,
        };
        println!("cargo:rerun-if-changed={}", self.model.display());
        for f in data_files(&self.model) {
            println!("cargo:rerun-if-changed={}", f.display());
        }
        let weights_file = format!("{}.weights", self.name);
        // The module is include!d from the user's crate, so the weights path must not depend on
        // where that crate lives: resolve it through OUT_DIR when writing there, else absolutely.
        let wpath = if std::env::var_os("OUT_DIR").is_some_and(|o| Path::new(&o) == dir) {
            WeightsPath::OutDir(weights_file.clone())
        } else {
            let abs = std::path::absolute(dir.join(&weights_file)).map_err(|source| {
                CompileError::Io {
                    path: dir.display().to_string(),
                    source,
                }
            })?;
            WeightsPath::Absolute(abs.display().to_string())
        };
        let compiled = compile_file(&self.model, &self.opts, &wpath)?;
        crate::budget::Budget::of(&compiled.program).check(self.flash_budget, self.ram_budget)?;
        write_if_changed(&dir.join(&weights_file), &compiled.weights)?;
        let rs = dir.join(format!("{}.rs", self.name));
        write_if_changed(&rs, compiled.source.as_bytes())?;
        Ok(rs)
    }
}

/// Where a standalone crate gets ghost-runtime from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeDep {
    /// A path dependency (default: this ghostc's own workspace copy).
    Path(PathBuf),
    /// A published version.
    Version(String),
}

impl Default for RuntimeDep {
    fn default() -> Self {
        RuntimeDep::Path(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("ghost-runtime"),
        )
    }
}

const RUNNER_TEMPLATE: &str = include_str!("codegen/templates/main.rs");
const PROFILE_FN: &str = include_str!("codegen/templates/profile.rs");
const NO_PROFILE_FN: &str = "fn profile(_runs: usize) {\n    eprintln!(\"error: not a profiling build; recompile with `ghostc compile --profile`\");\n    std::process::exit(2);\n}\n";

/// Writes a standalone crate `name` into `dir` (atomically: a failure leaves any previous crate
/// untouched): Cargo.toml depending on ghost-runtime alone, `src/lib.rs` with the model,
/// `src/model.weights`, and a binary `name` (`name IN.npy OUT.npy`, `name --bench [N]`).
/// `name` must pass [`check_crate_name`].
pub fn write_crate(
    model: &Path,
    dir: &Path,
    name: &str,
    opts: &CompileOptions,
    runtime: &RuntimeDep,
) -> Result<Compiled, CompileError> {
    check_crate_name(name)?;
    let planned = Planned::read(model, opts)?;
    let source = write_planned_crate(&planned, dir, name, opts.profile, runtime)?;
    Ok(planned.into_compiled(source))
}

/// [`write_crate`] for a model already planned (read and imported once by the caller, e.g.
/// `ghostc verify`, which also runs the imported graph); `profile` as in
/// [`CompileOptions::profile`]. Returns the source of `src/model.rs`.
pub fn write_planned_crate(
    planned: &Planned,
    dir: &Path,
    name: &str,
    profile: bool,
    runtime: &RuntimeDep,
) -> Result<String, CompileError> {
    check_crate_name(name)?;
    let source = planned.emit(&WeightsPath::Relative("model.weights".into()), profile)?;
    let dep = match runtime {
        RuntimeDep::Path(p) => {
            let p = std::path::absolute(p).unwrap_or_else(|_| p.clone());
            format!("ghost-runtime = {{ path = {:?} }}", p.display().to_string())
        }
        RuntimeDep::Version(v) => format!("ghost-runtime = {v:?}"),
    };
    let crate_ident = name.replace('-', "_");
    let cargo_toml = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"src/lib.rs\"\n\n[[bin]]\nname = \"{name}\"\npath = \"src/main.rs\"\n\n\
         [dependencies]\n{dep}\n\n[profile.release]\npanic = \"abort\"\n\n\
         # Standalone: never part of an enclosing workspace.\n[workspace]\n"
    );
    let lib_rs = format!(
        "//! Generated by ghostc from a model with sha256 {}.\n//! `Model::run` is the entry point; see `model.rs`.\n{}\nmod model;\npub use model::{{Model, ModelInputs, ModelOutputs}};\n{}pub use ghost_runtime::Error;\n",
        planned.model_sha256,
        if profile { "" } else { "#![no_std]\n" },
        if profile { "pub use model::{PROFILE_INT8, PROFILE_NANOS, PROFILE_STEPS};\n" } else { "" },
    );
    let profile_fn = if profile { PROFILE_FN } else { NO_PROFILE_FN };
    let main_rs = format!("{RUNNER_TEMPLATE}\n{profile_fn}")
        .replace("__CRATE__", &crate_ident)
        .replace("__NAME__", name);
    write_dir_atomically(dir, |d| {
        write_if_changed(&d.join("Cargo.toml"), cargo_toml.as_bytes())?;
        write_if_changed(&d.join("src/lib.rs"), lib_rs.as_bytes())?;
        write_if_changed(&d.join("src/model.rs"), source.as_bytes())?;
        write_if_changed(&d.join("src/model.weights"), &planned.weights)?;
        write_if_changed(&d.join("src/main.rs"), main_rs.as_bytes())?;
        Ok(())
    })?;
    Ok(source)
}

/// Why building a generated crate failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run cargo: {0}")]
    Spawn(std::io::Error),
    /// The generated crate did not compile: a ghostc bug (or a broken toolchain).
    #[error("cargo build failed in {dir} ({status}):\n{stderr}")]
    Failed {
        dir: String,
        status: String,
        stderr: String,
    },
}

/// Runs `cargo build --release` in a crate written by [`write_crate`] and returns the path of
/// its binary. `target_dir` lets several generated crates share one build of ghost-runtime.
pub fn build_crate(
    dir: &Path,
    name: &str,
    target_dir: Option<&Path>,
) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(dir)
        .args(["build", "--release", "--quiet", "--offline"]);
    let target = match target_dir {
        Some(t) => {
            cmd.env("CARGO_TARGET_DIR", t);
            t.to_path_buf()
        }
        None => {
            cmd.env_remove("CARGO_TARGET_DIR");
            dir.join("target")
        }
    };
    // The crate is standalone: do not inherit a parent build's flags or target.
    for var in [
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_MANIFEST_DIR",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().map_err(BuildError::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        return Err(BuildError::Failed {
            dir: dir.display().to_string(),
            status: out.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(target
        .join("release")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}
