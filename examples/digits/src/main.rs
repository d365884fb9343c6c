//! `cargo run --release -p digits`: runs the compiled GhostNet, as exported (f32) and quantized
//! at build time (int8), on the embedded digits test set and compares both with PyTorch.
//! Exits non-zero unless the f32 build predicts exactly what PyTorch predicts, and the int8
//! build stays within [`INT8_MAX_ACCURACY_DROP`] points of f32 accuracy with at least
//! [`INT8_MIN_AGREEMENT`] % top-1 agreement with PyTorch.

use digits::{benchmark, evaluate, int8, Model, Report, TestSet, Timing, BATCH};

const LATENCY_RUNS: usize = 500;
/// The int8 build's accuracy may be this many points below the f32 build's.
const INT8_MAX_ACCURACY_DROP: f64 = 0.5;
/// Top-1 agreement (%) the int8 build must reach with f32 PyTorch.
const INT8_MIN_AGREEMENT: f64 = 99.0;

fn main() {
    let set = TestSet::load().unwrap_or_else(|e| fail(&e));
    let (m32, m8) = (Model::new(), int8::Model::new());
    let r32 = evaluate(&m32, &set).unwrap_or_else(|e| fail(&e.to_string()));
    let r8 = evaluate(&m8, &set).unwrap_or_else(|e| fail(&e.to_string()));
    let t32 = benchmark(&m32, &set, LATENCY_RUNS, 0.5).unwrap_or_else(|e| fail(&e.to_string()));
    let t8 = benchmark(&m8, &set, LATENCY_RUNS, 0.5).unwrap_or_else(|e| fail(&e.to_string()));
    let n = r32.images;
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    println!(
        "digits: GhostNet ({:.1} M MACs/image) compiled to Rust by ghostc, as exported (f32) and quantized at build time (int8)",
        Model::MACS as f64 / 1e6
    );
    println!("  test set          {n} held-out 32x32 images");
    let line = |name: &str, f32_: String, int8_: String| println!("  {name:<18}{f32_:<24}{int8_}");
    line("", "f32".into(), "int8".into());
    let row = |name: &str, f: &dyn Fn(&Report, &Timing) -> String| {
        line(name, f(&r32, &t32), f(&r8, &t8));
    };
    row("accuracy", &|r, _| format!("{:.2} %", pct(r.correct)));
    row("top-1 agreement", &|r, _| {
        format!("{:.2} % ({}/{n})", pct(r.agree), r.agree)
    });
    row("max |logit diff|", &|r, _| {
        format!("{:.1e}", r.max_abs_diff)
    });
    row("latency", &|_, t| {
        format!("{:.1} us/image", t.latency * 1e6)
    });
    row("throughput", &|_, t| {
        format!("{:.0} images/s", t.throughput)
    });
    let kb = |bytes: usize| format!("{:.1} KB", bytes as f64 / 1e3);
    line(
        "weights",
        kb(Model::WEIGHT_BYTES),
        kb(int8::Model::WEIGHT_BYTES),
    );
    let f = std::mem::size_of::<f32>();
    line(
        "scratch",
        kb(Model::SCRATCH_LEN * f),
        kb(int8::Model::SCRATCH_LEN * f),
    );
    println!(
        "  (PyTorch f32: {:.2} % accurate; agreement and logit diff are against its logits; latency: median of {LATENCY_RUNS} single-image runs; throughput: batch {BATCH})",
        pct(r32.torch_correct)
    );
    println!("  kernels           {}", t32.isa);
    if r32.agree != n || r32.correct != r32.torch_correct {
        fail("the f32 build disagrees with PyTorch");
    }
    let drop = pct(r32.correct) - pct(r8.correct);
    if drop > INT8_MAX_ACCURACY_DROP || pct(r8.agree) < INT8_MIN_AGREEMENT {
        fail(&format!(
            "the int8 build loses {drop:.2} points of accuracy (at most {INT8_MAX_ACCURACY_DROP}) and agrees with PyTorch on {:.2} % (at least {INT8_MIN_AGREEMENT})",
            pct(r8.agree)
        ));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
