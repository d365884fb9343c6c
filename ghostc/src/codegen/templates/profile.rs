/// Per-step profile: runs the model `runs` times after 5 warm-up runs and prints each step's
/// median time per run, sorted, with its share of the summed step medians, GMAC/s and % of the
/// FMA peak (`ghost_runtime::peak`, one core's, times `--threads`; int8 convolutions against the
/// `vpdpbusd` peak where it is measured), then a total line. With
/// `--raw`, prints `key=value` lines instead (read by `ghostc bench --profile`, which adds op
/// kinds, shapes and ONNX names). Only in profiling builds.
fn profile(runs: usize) {
    use std::sync::atomic::Ordering;
    let inputs = bench_inputs();
    let mut outputs = bench_outputs();
    let input = slices(&inputs);
    let mut out = slices_mut(&mut outputs);
    let mut model = model_with_threads();
    for _ in 0..5 {
        model.run(&input, &mut out)
            .expect("lengths are the model's own constants");
    }
    let steps = __CRATE__::PROFILE_STEPS.len();
    let runs = runs.max(1);
    // Per-run step times: the counters' growth over each run, so every step gets a median.
    let mut nanos = vec![0u64; steps * runs];
    let mut walls = Vec::with_capacity(runs);
    let snapshot = |into: &mut [u64]| {
        for (v, n) in into.iter_mut().zip(__CRATE__::PROFILE_NANOS.iter()) {
            *v = n.load(Ordering::Relaxed);
        }
    };
    let mut before = vec![0u64; steps];
    let mut after = vec![0u64; steps];
    for r in 0..runs {
        snapshot(&mut before);
        let t = std::time::Instant::now();
        model.run(&input, &mut out)
            .expect("lengths are the model's own constants");
        walls.push(t.elapsed().as_secs_f64() * 1e6);
        snapshot(&mut after);
        for s in 0..steps {
            nanos[s * runs + r] = after[s] - before[s];
        }
    }
    let median = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let wall = median(&mut walls);
    let images = compiled_images() as u64;
    // One core's peak (raw output); the table compares with threads x that.
    let peak = ghost_runtime::peak::peak_gmacs();
    let peak8 = if __CRATE__::PROFILE_INT8.iter().any(|&q| q) {
        ghost_runtime::peak::peak_int8_gmacs()
    } else {
        None
    };
    let threads = THREADS.load(Ordering::Relaxed).max(1) as f64;
    // (step, what, MACs per run, median us, mean us, int8)
    let mut rows: Vec<(usize, &str, u64, f64, f64, bool)> = __CRATE__::PROFILE_STEPS
        .iter()
        .enumerate()
        .map(|(i, (what, macs))| {
            let mut us: Vec<f64> = nanos[i * runs..(i + 1) * runs]
                .iter()
                .map(|&n| n as f64 / 1e3)
                .collect();
            let mean = us.iter().sum::<f64>() / runs as f64;
            (i, *what, macs * images, median(&mut us), mean, __CRATE__::PROFILE_INT8[i])
        })
        .collect();
    let total: f64 = rows.iter().map(|r| r.3).sum();
    let macs: u64 = rows.iter().map(|r| r.2).sum();
    if PROFILE_RAW.load(Ordering::Relaxed) {
        for (i, _, macs, med, mean, _) in &rows {
            println!("step={i} macs={macs} median_us={med:.3} mean_us={mean:.3}");
        }
        let mut line = format!(
            "total runs={runs} steps={steps} macs={macs} steps_median_us={total:.3} wall_median_us={wall:.3}"
        );
        if let Some(p) = peak {
            line += &format!(" peak_gmacs={p:.2}");
        }
        if let Some(p) = peak8 {
            line += &format!(" peak_int8_gmacs={p:.2}");
        }
        println!("{line}");
        return;
    }
    let pct_peak = |gmacs: f64, int8: bool| match if int8 { peak8 } else { peak } {
        Some(p) => format!("{:>6.1}", 100.0 * gmacs / (p * threads)),
        None => format!("{:>6}", "-"),
    };
    rows.sort_by(|a, b| b.3.total_cmp(&a.3));
    println!(
        "{:>4}  {:<52} {:>10} {:>9} {:>6} {:>7} {:>6}",
        "step", "what", "MACs", "med us", "%", "GMAC/s", "%peak"
    );
    for (i, what, macs, us, _, int8) in rows {
        let gmacs = if us > 0.0 {
            macs as f64 / us / 1e3
        } else {
            0.0
        };
        println!(
            "{i:>4}  {what:<52} {macs:>10} {us:>9.1} {:>5.1}% {gmacs:>7.1} {}",
            100.0 * us / total,
            pct_peak(gmacs, int8)
        );
    }
    let gmacs = macs as f64 / wall / 1e3;
    println!(
        "total {:.3} ms in steps (sum of medians), {:.3} ms per run (median of {runs}), {gmacs:.1} GMAC/s overall, {}",
        total / 1e3,
        wall / 1e3,
        match peak {
            Some(p) => format!(
                "{:.1} % of the peak of {threads} core(s) at {p:.1} GMAC/s each",
                100.0 * gmacs / (p * threads)
            ),
            None => "peak unknown on this CPU".to_string(),
        }
    );
    if let Some(p8) = peak8 {
        println!("int8 convolutions' %peak is against the int8 (vpdpbusd) peak of {p8:.1} GMAC/s per core");
    }
}
