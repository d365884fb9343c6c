//! `cargo run --release -p digits`: runs the compiled GhostNet on the embedded digits test set
//! and compares it with PyTorch. Exits non-zero unless every prediction agrees with PyTorch's.

use digits::{benchmark, evaluate, Model, TestSet, BATCH};

const LATENCY_RUNS: usize = 500;

fn main() {
    let set = TestSet::load().unwrap_or_else(|e| fail(&e));
    let r = evaluate(&set).unwrap_or_else(|e| fail(&e.to_string()));
    let t = benchmark(&set, LATENCY_RUNS, 0.5).unwrap_or_else(|e| fail(&e.to_string()));
    let pct = |k: usize| 100.0 * k as f64 / r.images as f64;
    let (n, macs) = (r.images, Model::MACS as f64 / 1e6);
    println!("digits: GhostNet ({macs:.1} M MACs/image) compiled to Rust by ghostc");
    println!("  test set          {n} held-out 32x32 images");
    println!(
        "  accuracy          {:.2} %  (PyTorch: {:.2} %)",
        pct(r.correct),
        pct(r.torch_correct)
    );
    println!(
        "  top-1 agreement   {:.2} %  with PyTorch ({}/{n})",
        pct(r.agree),
        r.agree
    );
    println!("  max |logit diff|  {:.1e}  vs PyTorch", r.max_abs_diff);
    println!(
        "  latency           {:.1} us/image  (median of {LATENCY_RUNS} single-image runs)",
        t.latency * 1e6
    );
    println!(
        "  throughput        {:.0} images/s  (batch {BATCH})",
        t.throughput
    );
    println!("  kernels           {}", t.isa);
    if r.agree != r.images || r.correct != r.torch_correct {
        fail("the compiled model disagrees with PyTorch");
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
