/// Per-step profile: runs the model `runs` times and prints each step's share of the time,
/// sorted, with GMAC/s. Only in profiling builds.
fn profile(runs: usize) {
    use std::sync::atomic::Ordering;
    let model = Model::new();
    let input: Vec<f32> = (0..Model::INPUT_LEN)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut out = vec![0.0f32; Model::OUTPUT_LEN];
    let mut scratch = vec![0.0f32; Model::SCRATCH_LEN];
    for _ in 0..5 {
        model
            .run(&input, &mut out, &mut scratch)
            .expect("lengths are the model's own constants");
    }
    for n in __CRATE__::PROFILE_NANOS.iter() {
        n.store(0, Ordering::Relaxed);
    }
    let runs = runs.max(1);
    let t0 = std::time::Instant::now();
    for _ in 0..runs {
        model
            .run(&input, &mut out, &mut scratch)
            .expect("lengths are the model's own constants");
    }
    let wall = t0.elapsed().as_secs_f64() * 1e3 / runs as f64;
    let mut rows: Vec<(usize, &str, u64, f64)> = __CRATE__::PROFILE_STEPS
        .iter()
        .zip(__CRATE__::PROFILE_NANOS.iter())
        .enumerate()
        .map(|(i, ((what, macs), ns))| {
            (
                i,
                *what,
                *macs,
                ns.load(Ordering::Relaxed) as f64 / 1e6 / runs as f64,
            )
        })
        .collect();
    let total: f64 = rows.iter().map(|r| r.3).sum();
    rows.sort_by(|a, b| b.3.total_cmp(&a.3));
    println!(
        "{:>4}  {:<52} {:>10} {:>9} {:>7} {:>6}",
        "step", "what", "MACs", "ms", "GMAC/s", "%"
    );
    for (i, what, macs, ms) in rows {
        let gmacs = if ms > 0.0 {
            macs as f64 / ms / 1e6
        } else {
            0.0
        };
        println!(
            "{i:>4}  {what:<52} {macs:>10} {ms:>9.4} {gmacs:>7.1} {:>5.1}%",
            100.0 * ms / total
        );
    }
    let macs: u64 = __CRATE__::PROFILE_STEPS.iter().map(|s| s.1).sum();
    println!(
        "total {total:.3} ms in steps, {wall:.3} ms per run, {:.1} GMAC/s overall",
        macs as f64 / wall / 1e6
    );
}
