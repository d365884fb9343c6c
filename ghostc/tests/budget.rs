//! Memory budgets: `Budget::of` matches what the generated code declares, and a `Builder` given
//! a flash or RAM budget the model exceeds fails with the numbers and writes nothing.

use std::path::{Path, PathBuf};

use ghostc::budget::Budget;
use ghostc::codegen::emit::WeightsPath;
use ghostc::{compile_file, Builder, CompileError, CompileOptions};

fn digits() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/digits/data/digits.onnx")
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ghostc-budget-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn budget() -> Budget {
    let c = compile_file(
        &digits(),
        &CompileOptions::default(),
        &WeightsPath::Relative("model.weights".into()),
    )
    .unwrap();
    let b = Budget::of(&c.program);
    // The same numbers the generated Model declares.
    assert!(c.source.contains(&format!(
        "pub const WEIGHT_BYTES: usize = {}",
        b.weight_bytes
    )));
    assert_eq!(b.weight_bytes, c.weights.len());
    assert_eq!(b.arena_bytes, c.program.arena_len * 4);
    assert_eq!((b.input_bytes, b.output_bytes), (32 * 32 * 4, 10 * 4));
    b
}

#[test]
fn a_model_over_its_flash_budget_fails_the_build_by_how_much() {
    let b = budget();
    let dir = out_dir("flash");
    let err = Builder::new(digits())
        .out_dir(&dir)
        .flash_budget(b.flash_bytes() - 100)
        .compile()
        .unwrap_err();
    let CompileError::Budget(e) = &err else {
        panic!("expected a budget error, got {err}")
    };
    assert_eq!(
        (e.kind, e.need, e.limit),
        ("flash", b.flash_bytes(), b.flash_bytes() - 100)
    );
    assert!(
        err.to_string().contains("100 bytes over the budget"),
        "{err}"
    );
    assert!(
        !dir.join("model.rs").exists(),
        "nothing is written over budget"
    );
}

#[test]
fn a_model_over_its_ram_budget_fails_and_an_exact_fit_builds() {
    let b = budget();
    let dir = out_dir("ram");
    let err = Builder::new(digits())
        .out_dir(&dir)
        .ram_budget(b.ram_bytes() - 1)
        .compile()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("model needs {} bytes of RAM", b.ram_bytes())),
        "{err}"
    );
    assert!(err.to_string().contains("1 bytes over"), "{err}");
    let rs = Builder::new(digits())
        .out_dir(&dir)
        .flash_budget(b.flash_bytes())
        .ram_budget(b.ram_bytes())
        .compile()
        .unwrap();
    assert!(rs.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
