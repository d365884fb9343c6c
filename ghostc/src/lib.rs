//! ghostc compiles ONNX exports of GhostNet-family CNNs into specialized Rust.
//!
//! Pipeline: `onnx` decodes the protobuf and imports it into the typed graph IR (`ir`), pinning
//! every shape and folding shape subgraphs; `passes` rewrite the graph (BatchNorm folding,
//! activation and Ghost-module fusion); `plan` assigns arena offsets; `codegen` emits Rust that
//! calls `ghost-runtime`. `interp` runs the IR directly and is the oracle every stage is
//! checked against. See ARCHITECTURE.md for the picture.
//!
//! # Examples
//!
//! Import a model, print its size and run it with the reference interpreter:
//!
//! ```
//! use ghostc::ir::{DType, Data, Tensor};
//! use ghostc::onnx::{load_model, ImportOptions};
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ts11_v1_w050_32x32_b1");
//! let graph = load_model(&dir.join("model.onnx"), &ImportOptions::default())?;
//! let report = ghostc::report::ModelReport::new(&graph);
//! assert_eq!(report.inputs[0].shape, vec![1, 3, 32, 32]);
//!
//! let input = ghostc::npy::read_f32(&dir.join("input.npy"))?;
//! let x = Tensor::new(DType::F32, input.shape, Data::F32(input.data)).expect("shape matches data");
//! let logits = ghostc::interp::run(&graph, &[x])?;
//! let expected = ghostc::npy::read_f32(&dir.join("expected.npy"))?; // from ONNX Runtime
//! assert!(ghostc::compare::compare(&logits[0].to_f32_vec(), &expected.data).ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Compile it to Rust (what `ghostc compile`, `Builder` and `model!` do) and look at the plan:
//!
//! ```
//! use ghostc::codegen::emit::WeightsPath;
//!
//! let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ts11_v1_w050_32x32_b1/model.onnx");
//! let compiled = ghostc::compile_file(&model, &ghostc::CompileOptions::default(), &WeightsPath::Relative("model.weights".into()))?;
//! assert!(compiled.source.contains("pub struct Model"));
//! assert!(compiled.source.contains("p.ghost("), "Ghost modules run as one fused kernel");
//! println!("{} kernel calls, scratch {} floats", compiled.program.steps.len(), compiled.program.arena_len);
//! # Ok::<(), ghostc::CompileError>(())
//! ```

pub mod budget;
pub mod codegen;
pub mod compare;
pub mod compile;
pub mod interp;
pub mod ir;
pub mod model_file;
pub mod npy;
pub mod onnx;
pub mod passes;
pub mod plan;
pub mod quantize;
pub mod report;
pub mod spec;
pub mod verify;

pub use compile::{
    build_crate, compile_file, write_crate, write_planned_crate, BuildError, Builder, CompileError,
    CompileOptions, Compiled, Planned, RuntimeDep,
};
pub use model_file::ModelFile;
pub use spec::SpecError;
