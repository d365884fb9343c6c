//! Every library entry point opens the model file exactly once per compile (issue 11: the file
//! used to be read once to hash it, outside the size limit, once to import it, and once more by
//! `write_crate`). The counter is inotify (see `open_count`), so any read counts, whatever
//! function does it; the first test shows that a second read is seen.
#![cfg(target_os = "linux")]

mod open_count;

use ghostc::codegen::emit::WeightsPath;
use ghostc::{compile_file, write_crate, Builder, CompileOptions, RuntimeDep};
use open_count::{private_model, OpenCounter};

const MODEL: &str = "ts11_v1_w050_32x32_b1";

#[test]
fn the_counter_sees_every_open() {
    let dir = tempfile::tempdir().unwrap();
    let model = private_model(MODEL, dir.path());
    let opens = OpenCounter::watch(&model);
    assert_eq!(opens.take(), 0);
    std::fs::read(&model).unwrap();
    assert_eq!(opens.take(), 1);
    std::fs::read(&model).unwrap();
    std::fs::read(&model).unwrap();
    assert_eq!(opens.take(), 2, "two sequential reads are two opens");
    // A stat is not an open (Builder and the macro stat the model folder's files).
    std::fs::metadata(&model).unwrap();
    assert_eq!(opens.take(), 0);
}

#[test]
fn compile_file_opens_the_model_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = private_model(MODEL, dir.path());
    let opens = OpenCounter::watch(&model);
    let compiled = compile_file(
        &model,
        &CompileOptions::default(),
        &WeightsPath::Relative("model.weights".into()),
    )
    .unwrap();
    assert_eq!(opens.take(), 1);
    // The hash in the source is the one of the bytes compiled.
    let want = ghostc::codegen::output::sha256_hex(&std::fs::read(&model).unwrap());
    assert_eq!(compiled.model_sha256, want);
    assert!(compiled.source.contains(&want));
}

#[test]
fn write_crate_opens_the_model_once_and_names_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let model = private_model(MODEL, dir.path());
    let out = dir.path().join("crate");
    let opens = OpenCounter::watch(&model);
    let compiled = write_crate(
        &model,
        &out,
        "tiny",
        &CompileOptions::default(),
        &RuntimeDep::default(),
    )
    .unwrap();
    assert_eq!(opens.take(), 1);
    let lib_rs = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
    assert!(
        lib_rs.contains(&format!("sha256 {}.", compiled.model_sha256)),
        "{lib_rs}"
    );
}

#[test]
fn builder_opens_the_model_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = private_model(MODEL, dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let opens = OpenCounter::watch(&model);
    Builder::new(&model).out_dir(&out).compile().unwrap();
    assert_eq!(opens.take(), 1);
}

#[test]
fn a_file_over_max_file_bytes_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let model = private_model(MODEL, dir.path());
    let mut opts = CompileOptions::default();
    opts.import.limits.max_file_bytes = 1000;
    let counter = OpenCounter::watch(&model);
    let e = compile_file(&model, &opts, &WeightsPath::Relative("w".into())).unwrap_err();
    assert!(e.to_string().contains("max_file_bytes"), "{e}");
    let (opens, reads) = counter.take_counts();
    assert_eq!((opens, reads), (1, 0), "opened to stat it, never read");
    // The same counter sees a read.
    std::fs::read(&model).unwrap();
    assert_eq!(counter.take_counts(), (1, 1));
}
