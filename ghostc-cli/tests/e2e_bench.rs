//! `ghostc bench` end to end on the smallest fixture: compile, build (into the shared e2e target
//! directory, so ghost-runtime is built once for all e2e suites), run the runner and the
//! profiling runner, and check that the report has every field and that the numbers parse and
//! are positive. No timing thresholds: the machine is shared.

mod e2e_common;
#[cfg(target_os = "linux")]
#[path = "../../ghostc/tests/open_count/mod.rs"]
mod open_count;

use std::collections::BTreeMap;
use std::process::Command;

/// The `key=value` fields of the report's last line (`bench: ... binary=PATH`).
fn machine_fields(stdout: &str) -> BTreeMap<String, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("bench: "))
        .unwrap_or_else(|| panic!("no `bench:` line in:\n{stdout}"));
    let (head, binary) = line
        .split_once(" binary=")
        .unwrap_or_else(|| panic!("no binary= field: {line}"));
    let mut f: BTreeMap<String, String> = head["bench: ".len()..]
        .split_whitespace()
        .map(|t| {
            let (k, v) = t
                .split_once('=')
                .unwrap_or_else(|| panic!("bad field {t:?}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    f.insert("binary".into(), binary.to_string());
    f
}

fn positive(f: &BTreeMap<String, String>, key: &str) -> f64 {
    let v: f64 = f
        .get(key)
        .unwrap_or_else(|| panic!("field {key} missing: {f:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("field {key}={} does not parse: {e}", f[key]));
    assert!(v.is_finite() && v > 0.0, "{key}={v} is not positive");
    v
}

#[test]
fn bench_reports_every_field() {
    let keep = tempfile::tempdir().unwrap();
    // A private copy, so that the opens counted are this run's: two builds, one read.
    #[cfg(target_os = "linux")]
    let (model, opens) = {
        let model = open_count::private_model(e2e_common::SMALL, keep.path());
        let opens = open_count::OpenCounter::watch(&model);
        (model, opens)
    };
    #[cfg(not(target_os = "linux"))]
    let model = e2e_common::fixture(e2e_common::SMALL).model();
    let o = Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .arg("bench")
        .arg(&model)
        .args(["--runs", "5", "--profile", "--name", "e2e_bench"])
        .arg("--target-dir")
        .arg(e2e_common::target_dir())
        .arg("--keep")
        .arg(keep.path().join("crate"))
        .output()
        .expect("spawn ghostc");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{stdout}\n{stderr}");
    assert!(o.status.success(), "ghostc bench failed:\n{stderr}");
    #[cfg(target_os = "linux")]
    assert_eq!(opens.take(), 1, "bench --profile opens the model once");

    // The human-readable part.
    for label in [
        "build ",
        "binary ",
        "memory ",
        "first run ",
        "startup ",
        "steady ",
        "roofline ",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(label)),
            "no line starting with {label:?}"
        );
    }
    assert!(stdout.contains("peak RSS (VmHWM)"), "{stdout}");

    // Every number, machine-readable.
    let f = machine_fields(&stdout);
    for key in [
        "compile_s",
        "build_s",
        "binary_bytes",
        "code_bytes",
        "weight_bytes",
        "scratch_bytes",
        "steps",
        "batch",
        "macs",
        "threads",
        "runs",
        "first_us",
        "spawn_to_first_us",
        "main_to_first_us",
        "median_us",
        "p10_us",
        "p90_us",
        "min_us",
        "vmhwm_kb",
        "rss_start_kb",
        "peak_gmacs",
        "gmacs",
        "roofline_pct",
    ] {
        positive(&f, key);
    }
    assert!(f["cold_build"] == "0" || f["cold_build"] == "1");
    assert_eq!(f["runs"], "5");
    assert_eq!(
        positive(&f, "code_bytes") + positive(&f, "weight_bytes"),
        positive(&f, "binary_bytes")
    );
    assert!(positive(&f, "p10_us") <= positive(&f, "median_us"));
    // main() to the first output contains the first run (one clock, one process).
    assert!(
        positive(&f, "main_to_first_us") >= positive(&f, "first_us"),
        "{f:?}"
    );
    // VmHWM covers the weights (file-backed, all touched) and the scratch.
    assert!(
        positive(&f, "vmhwm_kb") * 1024.0
            >= positive(&f, "weight_bytes") + positive(&f, "scratch_bytes"),
        "{f:?}"
    );

    // The per-step table: one row per step plus a total line, sorted by time.
    let steps = positive(&f, "steps") as usize;
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("per-step profile"))
        .skip(2)
        .take_while(|l| !l.trim_start().starts_with("total"))
        .collect();
    assert_eq!(
        table.len(),
        steps,
        "one row per step:\n{}",
        table.join("\n")
    );
    let times: Vec<f64> = table
        .iter()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // step op output MACs time share GMAC/s %peak nodes...
            cols[4]
                .parse()
                .unwrap_or_else(|_| panic!("time column in {l:?}"))
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not sorted by time");
    assert!(times.iter().sum::<f64>() > 0.0);
    assert!(stdout.contains("ghost"), "a ghost step in the table");
    assert!(stdout.contains("by op kind:"));

    // The runner's own --bench line keeps the format bench/compare.py and compare.sh parse
    // (`median X ms  p10 Y ms` on one stdout line) and carries the key=value fields.
    let bin = std::path::PathBuf::from(&f["binary"]);
    let o = Command::new(&bin).args(["--bench", "3"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = String::from_utf8(o.stdout).unwrap();
    assert_eq!(line.lines().count(), 1, "one line on stdout: {line}");
    assert!(line.starts_with("runs 3  median "), "{line}");
    let p10 = line.find(" ms  p10 ").expect("median X ms  p10 Y ms");
    assert!(line[..p10]
        .trim_end()
        .ends_with(|c: char| c.is_ascii_digit()));
    for key in ["first_us=", "median_us=", "p10_us=", "vmhwm_kb="] {
        assert!(line.contains(key), "{key} in {line}");
    }
}

#[test]
fn bench_runs_0_builds_and_reports_sizes_only() {
    let fx = e2e_common::fixture(e2e_common::SMALL);
    let o = Command::new(env!("CARGO_BIN_EXE_ghostc"))
        .arg("bench")
        .arg(fx.model())
        .args([
            "--runs",
            "0",
            "--no-fuse",
            "all",
            "--name",
            "e2e_bench_unfused",
        ])
        .arg("--target-dir")
        .arg(e2e_common::target_dir())
        .output()
        .expect("spawn ghostc");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f = machine_fields(&stdout);
    for key in [
        "build_s",
        "binary_bytes",
        "weight_bytes",
        "scratch_bytes",
        "steps",
    ] {
        positive(&f, key);
    }
    assert!(!f.contains_key("median_us"), "no timing with --runs 0");
    assert!(stdout.contains("not measured (--runs 0)"));
}
