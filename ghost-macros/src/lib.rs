//! `ghost_macros::model!`: compiles an ONNX GhostNet into Rust while the calling crate builds.
//!
//! ```ignore
//! ghost_macros::model!("models/ghostnet.onnx");
//! // or, pinning a dynamic input and turning fusions off:
//! ghost_macros::model!("models/ghostnet.onnx", shape = "input=1x3x224x224", no_fuse = "se,ghost");
//!
//! let model = Model::new();
//! let mut scratch = vec![0.0; Model::SCRATCH_LEN];
//! model.run(&input, &mut output, &mut scratch)?;
//! ```
//!
//! The invocation expands, in place, to exactly the items `ghostc compile` / `ghostc::Builder`
//! generate (`Model`, its constants and `run`; see `ghostc::codegen::emit`), so the calling
//! crate needs `ghost-runtime` as a dependency. To have several models in one crate, invoke
//! the macro once per module. This crate is a thin shell: it parses the arguments, plans the model
//! with [`ghostc::Planned::read`] (one read of the file), emits it once and re-parses the
//! source; it holds no codegen logic.
//!
//! # Arguments
//! - the model path, a string literal relative to the calling crate's `CARGO_MANIFEST_DIR`
//!   (or absolute). External data (`model.onnx.data`) is found next to the model.
//! - `shape = "NAME=DIMS"` (repeatable, or comma-separated: `"a=1x3x8x8,b=1x4"`): pins an
//!   input's shape, like `ghostc --shape`. A dynamic batch may stay dynamic.
//! - `no_fuse = "se,ghost"`: fusions to turn off (`bn, act, ghost, residual, se, linear,
//!   branches, dfc, quant, pad, winograd`, or `all`), like `ghostc --no-fuse`.
//! - `limit = "max_nodes=1000"` (repeatable, or comma-separated): import limits for untrusted
//!   models, like `ghostc --limit`; names are the fields of `ghostc::onnx::Limits`.
//! - `flash_budget = "1048576"`, `ram_budget = "262144"` (bytes): fail the build of a model
//!   whose weights (flash) or arena + input + output (RAM) need more, like
//!   `ghostc compile --flash-budget` / `ghostc::Builder::flash_budget`.
//!
//! When the environment variable `GHOST_MACROS_MANIFEST_DIR` is set, relative model paths are
//! taken against it instead of `CARGO_MANIFEST_DIR`: compile-fail test harnesses such as
//! trybuild build the calling code in a generated crate under `target/`, and point this at the
//! real crate so its test models are found.
//!
//! # Diagnostics
//! Every problem becomes a `compile_error!` spanned at the path literal (unreadable model,
//! import or compile failure) or at the offending option (unknown key, bad shape, unknown
//! fusion, unknown limit); several problems are reported together. Malformed models get the
//! same typed errors as the CLI and `ghostc::Builder` (see `docs/bad-inputs.md`). Next to the errors the macro still emits
//! a stub `Model` with the real API (constants, `new`, `run`), so the calling code does not
//! drown in follow-on "cannot find type `Model`" errors.
//!
//! # Where the weights go, and why
//! The generated `WEIGHTS` static is `include_bytes!` of an absolute path, so the macro must
//! write the weight blob to a file before rustc evaluates that include. The file is
//! `<dir>/ghostc-macro/<sha256 of the weight bytes>.weights`, where `<dir>` is the first of:
//! 1. `$CARGO_TARGET_DIR`, when set in the environment (a relative value is taken against
//!    rustc's working directory, the workspace root; any writable folder would do, since the
//!    file only has to exist while the calling crate compiles);
//! 2. `<nearest ancestor of CARGO_MANIFEST_DIR holding a Cargo.lock>/target`: cargo's default
//!    target directory for the workspace or package being built;
//! 3. the system temporary directory (e.g. a crate built from a read-only registry checkout),
//!    also used when the first choice cannot be written.
//!
//! Why this location: it is outside the source tree (nothing to gitignore or to be read-only),
//! it is removed by `cargo clean`, and it survives between builds so an unchanged model does
//! not touch the file (cargo tracks `include_bytes!` files by mtime, so rewriting it would
//! force a rebuild every time). Naming by the hash of the *weights themselves* makes the name
//! a content address: the same name always holds the same bytes, so concurrent builds (two
//! crates, two option sets, two ghostc versions sharing a target dir) never overwrite each
//! other's file with different content, and the file is written, through a temporary file and
//! an atomic rename, only when it is missing or damaged. A deleted file is harmless: cargo
//! sees a missing dependency, rebuilds, and the macro writes it again, because a proc-macro
//! runs again whenever its calling crate is recompiled.
//!
//! ```compile_fail
//! // A missing model is a compile error at the path literal.
//! ghost_macros::model!("no/such/model.onnx");
//! ```
//!
//! # Rebuild tracking
//! The expansion contains `const _: &[u8] = include_bytes!("<abs model path>");` (and one per
//! `*.data` file next to the model), so cargo recompiles the calling crate, and thus reruns
//! the macro, when the model or its external data changes.

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token};

use ghostc::codegen::emit::WeightsPath;
use ghostc::codegen::output::{sha256_hex, write_if_changed};
use ghostc::passes::FuseOptions;
use ghostc::CompileOptions;

/// Compiles an ONNX model into the `Model` items at the call site. See the [crate] docs.
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    match syn::parse::<Args>(input).and_then(expand) {
        Ok(tokens) => tokens.into(),
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(stub());
            out.into()
        }
    }
}

/// The macro's arguments, parsed but not yet checked against the file system.
struct Args {
    path: LitStr,
    options: Vec<(Ident, LitStr)>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error(r#"expected the model path: model!("path/to/model.onnx", shape = "input=1x3x224x224", no_fuse = "se")"#));
        }
        let path: LitStr = input.parse()?;
        let mut options = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            options.push((key, value));
        }
        Ok(Args { path, options })
    }
}

/// Adds `e` to the accumulated errors.
fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// Byte budgets of the `flash_budget` / `ram_budget` options (`None`: no limit).
#[derive(Default)]
struct Budgets {
    flash: Option<usize>,
    ram: Option<usize>,
}

/// Checks the options and the path; every problem is reported, each at its own span.
fn options(args: &Args) -> syn::Result<(PathBuf, CompileOptions, Budgets)> {
    let mut errors = None;
    let mut opts = CompileOptions::default();
    let mut budgets = Budgets::default();
    let mut seen_no_fuse = false;
    for (key, value) in &args.options {
        match key.to_string().as_str() {
            "shape" => {
                for item in value
                    .value()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    let Some((name, dims)) = item.split_once('=') else {
                        push(&mut errors, syn::Error::new(value.span(), format!("expected NAME=DIMS (e.g. \"input=1x3x224x224\"), found '{item}'")));
                        continue;
                    };
                    match ghostc::spec::parse_dims(dims) {
                        Ok(d) => {
                            if opts
                                .import
                                .shapes
                                .insert(name.trim().to_string(), d)
                                .is_some()
                            {
                                push(
                                    &mut errors,
                                    syn::Error::new(
                                        value.span(),
                                        format!("shape of input '{}' given twice", name.trim()),
                                    ),
                                );
                            }
                        }
                        Err(e) => push(&mut errors, syn::Error::new(value.span(), e.to_string())),
                    }
                }
            }
            "no_fuse" => {
                if seen_no_fuse {
                    push(&mut errors, syn::Error::new(key.span(), "`no_fuse` given twice: list all fusions in one string, e.g. \"se,ghost\""));
                }
                seen_no_fuse = true;
                match value.value().parse::<FuseOptions>() {
                    Ok(f) => opts.fuse = f,
                    Err(e) => push(&mut errors, syn::Error::new(value.span(), e.to_string())),
                }
            }
            "limit" => {
                if let Err(e) = opts.import.limits.apply(&value.value()) {
                    push(&mut errors, syn::Error::new(value.span(), e.to_string()));
                }
            }
            kind @ ("flash_budget" | "ram_budget") => {
                match value.value().trim().replace('_', "").parse::<usize>() {
                    Ok(bytes) if kind == "flash_budget" => budgets.flash = Some(bytes),
                    Ok(bytes) => budgets.ram = Some(bytes),
                    Err(_) => push(
                        &mut errors,
                        syn::Error::new(
                            value.span(),
                            format!(
                                "`{kind}`: '{}' is not a number of bytes (e.g. \"262144\")",
                                value.value()
                            ),
                        ),
                    ),
                }
            }
            other => push(
                &mut errors,
                syn::Error::new(
                    key.span(),
                    format!(
                        "unknown option `{other}` (expected `shape`, `no_fuse`, `limit`, \
                         `flash_budget` or `ram_budget`)"
                    ),
                ),
            ),
        }
    }
    let base = std::env::var_os("GHOST_MACROS_MANIFEST_DIR")
        .filter(|d| !d.is_empty())
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR"));
    let path = match base {
        Some(dir) => PathBuf::from(dir).join(args.path.value()),
        None => PathBuf::from(args.path.value()),
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    if !path.is_file() {
        push(
            &mut errors,
            syn::Error::new(
                args.path.span(),
                format!(
                    "ghostc: no model file at {} (paths are relative to CARGO_MANIFEST_DIR)",
                    path.display()
                ),
            ),
        );
    }
    match errors {
        Some(e) => Err(e),
        None => Ok((path, opts, budgets)),
    }
}

/// An error message with its `source()` chain, for errors from ghostc.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cur = s.source();
    }
    msg
}

fn expand(args: Args) -> syn::Result<TokenStream2> {
    let (path, opts, budgets) = options(&args)?;
    let span = args.path.span();
    let err = |msg: String| syn::Error::new(span, msg);
    // One read of the model; the weights file is named by the weights' own hash, known once
    // the model is planned, and the source is emitted once with that path.
    let planned = ghostc::Planned::read(&path, &opts).map_err(|e| {
        err(format!(
            "ghostc: cannot compile {}: {}",
            path.display(),
            chain(&e)
        ))
    })?;
    ghostc::budget::Budget::of(&planned.program)
        .check(budgets.flash, budgets.ram)
        .map_err(|e| err(format!("ghostc: cannot compile {}: {e}", path.display())))?;
    let weights_path = store_weights(&planned.weights).map_err(err)?;
    let source = planned
        .emit(
            &WeightsPath::Absolute(weights_path.display().to_string()),
            opts.profile,
        )
        .map_err(|e| {
            err(format!(
                "ghostc: cannot emit code for {}: {}",
                path.display(),
                chain(&e)
            ))
        })?;
    let items: TokenStream2 = source.parse().map_err(|e| {
        err(format!(
            "ghostc generated unparsable code (a ghostc bug): {e}"
        ))
    })?;
    let tracked = tracked_files(&path).into_iter().map(|p| {
        let p = p.display().to_string();
        quote!(
            const _: &[u8] = include_bytes!(#p);
        )
    });
    Ok(quote! {
        #(#tracked)*
        #items
    })
}

/// The folder `ghostc-macro/` lives in: see the crate docs.
fn cache_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        let t = PathBuf::from(t);
        dirs.push(std::path::absolute(&t).unwrap_or(t));
    } else if let Some(manifest) = std::env::var_os("CARGO_MANIFEST_DIR") {
        if let Some(root) = Path::new(&manifest)
            .ancestors()
            .find(|d| d.join("Cargo.lock").is_file())
        {
            dirs.push(root.join("target"));
        }
    }
    dirs.push(std::env::temp_dir());
    dirs
}

/// Writes the weight blob under its content hash (unless already there) and returns its path.
fn store_weights(weights: &[u8]) -> Result<PathBuf, String> {
    let name = format!("{}.weights", sha256_hex(weights));
    let mut failures = Vec::new();
    for dir in cache_dirs() {
        let file = dir.join("ghostc-macro").join(&name);
        // write_if_changed: a no-op when the file already holds these bytes, else a temporary
        // file and an atomic rename, so concurrent builds never see a partial blob.
        match write_if_changed(&file, weights) {
            Ok(()) => return Ok(file),
            Err(e) => failures.push(format!("{}: {e}", file.display())),
        }
    }
    Err(format!(
        "ghostc: cannot write the weights file ({})",
        failures.join("; ")
    ))
}

/// The model and the external data files next to it (`*.data`), for `include_bytes!`-based
/// rebuild tracking.
fn tracked_files(model: &Path) -> Vec<PathBuf> {
    let mut files = vec![model.to_path_buf()];
    files.extend(ghostc::model_file::data_files(model));
    files
}

/// What the macro emits next to `compile_error!`: the `Model` API with unreachable bodies, so
/// the only errors the user sees are the real ones.
fn stub() -> TokenStream2 {
    quote! {
        /// Stub: the model failed to compile (see the error above).
        #[derive(Clone, Copy, Debug, Default)]
        pub struct Model;

        #[allow(dead_code, unused_variables, clippy::all)]
        impl Model {
            pub const INPUT_NAME: &'static str = "";
            pub const OUTPUT_NAME: &'static str = "";
            pub const INPUT_SHAPE: [usize; 4] = [1; 4];
            pub const OUTPUT_SHAPE: [usize; 2] = [1; 2];
            pub const INPUT_LEN: usize = 1;
            pub const OUTPUT_LEN: usize = 1;
            pub const SCRATCH_LEN: usize = 1;
            pub const DYNAMIC_BATCH: bool = false;
            pub const MACS: u64 = 0;
            pub const WEIGHT_BYTES: usize = 0;
            pub fn new() -> Self {
                Model
            }
            pub fn with_kernels(kernels: ::ghost_runtime::Kernels) -> Self {
                Model
            }
            pub fn run(&self, input: &[f32], output: &mut [f32], scratch: &mut [f32]) -> ::core::result::Result<(), ::ghost_runtime::Error> {
                ::core::unreachable!()
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[path = "../../ghostc/tests/open_count/mod.rs"]
mod open_count;

#[cfg(test)]
mod tests {
    use super::*;

    fn try_expand(tokens: TokenStream2) -> syn::Result<TokenStream2> {
        syn::parse2::<Args>(tokens).and_then(expand)
    }

    fn messages(e: syn::Error) -> Vec<String> {
        e.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn missing_model_is_an_error_at_the_path() {
        let msgs = messages(try_expand(quote!("no/such/model.onnx")).unwrap_err());
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].contains("no model file at") && msgs[0].contains("no/such/model.onnx"),
            "{msgs:?}"
        );
    }

    #[test]
    fn every_bad_option_is_reported_together() {
        let e = try_expand(quote!(
            "no/such.onnx",
            shape = "input=1xQx8x8",
            shape = "1x3x8x8",
            no_fuse = "sex",
            colour = "red",
        ))
        .unwrap_err();
        let msgs = messages(e);
        assert_eq!(msgs.len(), 5, "{msgs:?}");
        assert!(msgs[0].contains("bad dimension 'Q'"), "{msgs:?}");
        assert!(msgs[1].contains("expected NAME=DIMS"), "{msgs:?}");
        assert!(msgs[2].contains("unknown fusion 'sex'"), "{msgs:?}");
        assert!(msgs[3].contains("unknown option `colour`"), "{msgs:?}");
        assert!(msgs[4].contains("no model file"), "{msgs:?}");
    }

    #[test]
    fn syntax_errors_are_errors() {
        for bad in [
            quote!(),
            quote!(42),
            quote!("m.onnx" shape = "x"),
            quote!("m.onnx", shape = 3),
            quote!("m.onnx", shape),
        ] {
            assert!(syn::parse2::<Args>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_that_is_not_onnx_is_a_compile_error() {
        let msgs = messages(try_expand(quote!("Cargo.toml")).unwrap_err());
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].starts_with("ghostc: cannot compile"), "{msgs:?}");
    }

    #[test]
    fn a_fixture_expands_to_the_model_with_tracked_files() {
        let tokens = try_expand(quote!(
            "../fixtures/ts11_huawei_48x48_b1/model.onnx",
            no_fuse = "se"
        ))
        .unwrap();
        let file: syn::File = syn::parse2(tokens).unwrap();
        let text = quote!(#file).to_string();
        assert!(text.contains("pub struct Model"), "{text}");
        // The model itself is tracked, and the weights come from an existing absolute file.
        let includes: Vec<String> = text
            .split("include_bytes ! (")
            .skip(1)
            .map(|s| s.split('"').nth(1).unwrap().to_string())
            .collect();
        assert!(
            includes
                .iter()
                .any(|p| p.ends_with("ts11_huawei_48x48_b1/model.onnx")),
            "{includes:?}"
        );
        let weights = includes
            .iter()
            .find(|p| p.ends_with(".weights"))
            .expect("a weights include");
        assert!(
            Path::new(weights).is_absolute() && Path::new(weights).is_file(),
            "{weights}"
        );
        assert!(weights.contains("ghostc-macro"), "{weights}");
    }

    #[test]
    fn external_data_is_tracked() {
        let tokens = try_expand(quote!(
            "../fixtures/dynamo18_v1_w050_32x32_noopt_b1/model.onnx"
        ))
        .unwrap();
        let text = tokens.to_string();
        assert!(
            text.contains("dynamo18_v1_w050_32x32_noopt_b1/model.onnx.data\""),
            "{text}"
        );
    }

    /// One read of the model per expansion (it used to be read for its hash, then again by
    /// the compile). Counted with inotify on a private copy, see `open_count`.
    #[cfg(target_os = "linux")]
    #[test]
    fn expansion_opens_the_model_once() {
        let dir = tempfile::tempdir().unwrap();
        let model = crate::open_count::private_model("ts11_huawei_48x48_b1", dir.path());
        let opens = crate::open_count::OpenCounter::watch(&model);
        let lit = model.display().to_string();
        let tokens = try_expand(quote!(#lit)).unwrap();
        assert_eq!(opens.take(), 1);
        // The source was emitted once, with the stored weights' path.
        let text = tokens.to_string();
        assert_eq!(text.matches("pub struct Model {").count(), 1, "{text}");
    }

    #[test]
    fn stub_is_valid_rust() {
        syn::parse2::<syn::File>(stub()).unwrap();
    }
}
