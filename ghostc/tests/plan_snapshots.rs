//! The lowered [`Program`] of every fixture, fused and unfused (the two modes `e2e_fixtures`
//! compiles), in its text form (`impl Display for Program`: one line per step) against the
//! committed files under `ghostc/tests/out/plan/`, so a change to lowering, layouts, weight
//! packing or the arena shows up as a reviewable diff without building any generated crate.
//!
//! After an intended change, regenerate them with
//! `GHOSTC_BLESS=1 cargo test --release -p ghostc --test plan_snapshots` and review the diff.
//! A snapshot the test does not produce any more fails the test (delete it when blessing).

mod fixtures_common;

use std::path::{Path, PathBuf};

use ghostc::onnx::{load_model, ImportOptions};
use ghostc::passes::{optimize, FuseOptions, PassOptions};
use ghostc::plan::lower::lower;
use ghostc::plan::program::Program;

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/out/plan")
}

/// What `ghostc compile` (default import options, as the e2e tests call it) lowers.
fn program(model: &Path, fuse: FuseOptions) -> Program {
    let mut g = load_model(model, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let opts = PassOptions {
        fuse,
        ..PassOptions::default()
    };
    optimize(&mut g, &opts).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    lower(&g).unwrap_or_else(|e| panic!("{}: {e}", model.display()))
}

/// Compares `text` with the committed file `path`, or writes it when `GHOSTC_BLESS=1`.
/// Returns a problem description on a mismatch.
fn check_snapshot(path: &Path, text: &str) -> Option<String> {
    if std::env::var_os("GHOSTC_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
            std::fs::write(path, text).unwrap();
            eprintln!("blessed {}", path.display());
        }
        return None;
    }
    let Ok(want) = std::fs::read_to_string(path) else {
        return Some(format!(
            "{} is missing (create it with GHOSTC_BLESS=1)",
            path.display()
        ));
    };
    if want == text {
        return None;
    }
    let (got, want): (Vec<&str>, Vec<&str>) = (text.lines().collect(), want.lines().collect());
    let first = (0..got.len().max(want.len()))
        .find(|&i| got.get(i) != want.get(i))
        .unwrap_or(0);
    Some(format!(
        "{} differs at line {}:\n  committed: {}\n  lowered:   {}",
        path.display(),
        first + 1,
        want.get(first).unwrap_or(&"<end of file>"),
        got.get(first).unwrap_or(&"<end of file>")
    ))
}

#[test]
fn every_fixtures_program_matches_its_snapshot() {
    let mut problems = Vec::new();
    let mut expected = Vec::new();
    for fx in fixtures_common::fixtures() {
        for (mode, fuse) in [
            ("fused", FuseOptions::all()),
            ("unfused", FuseOptions::none()),
        ] {
            let file = format!("{}.{mode}.txt", fx.name);
            let text = program(&fx.model(), fuse).to_string();
            problems.extend(check_snapshot(&out_dir().join(&file), &text));
            expected.push(file);
        }
    }
    let stale: Vec<String> = std::fs::read_dir(out_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| !expected.contains(f))
        .collect();
    for f in stale {
        problems.push(format!(
            "{f} in tests/out/plan belongs to no fixture: delete it"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} snapshot problem(s); if the change is intended, rerun with GHOSTC_BLESS=1 and review \
         the diff:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn text_form_is_one_line_per_step_after_the_header_and_buffers() {
    let fx = fixtures_common::fixture(fixtures_common::SMALL);
    let p = program(&fx.model(), FuseOptions::all());
    let text = p.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + p.buffers.len() + p.steps.len());
    for (i, step) in p.steps.iter().enumerate() {
        let line = lines[2 + p.buffers.len() + i];
        assert!(
            line.trim_start()
                .starts_with(&format!("{i} {}", step.kernel.label())),
            "{line}"
        );
    }
}
