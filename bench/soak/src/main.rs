//! Soak: runs a dynamic-batch GhostNet for a given time on one 2-thread [`Team`] shared by two
//! caller threads, each with its own scratch, with random batch sizes (1-8) and a random
//! choice of `run` (serial) or `run_with(&team)` per call. Every output is compared bit for
//! bit with a serial reference computed image by image at start, and the resident set size
//! is sampled each minute: it must stay flat (inference never allocates).
//!
//! `cargo run --release --manifest-path bench/soak/Cargo.toml -- --minutes 30`
//! Exit status 1 on any mismatch, error, or RSS growth over 1 MiB after warm-up.

use ghost_runtime::Team;
use ghostc_testkit::Rng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

include!(concat!(env!("OUT_DIR"), "/model.rs"));

/// Distinct images the calls draw from (each with its serial reference output).
const POOL: usize = 12;
const MAX_BATCH: usize = 8;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut minutes = 30.0_f64;
    let mut seed = 0x5eed_u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--minutes" => {
                minutes = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--minutes M")
            }
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("--seed N"),
            _ => panic!("usage: ghost-soak [--minutes M] [--seed N]"),
        }
    }
    const {
        assert!(
            Model::DYNAMIC_BATCH,
            "the soak needs a dynamic-batch export"
        )
    };
    let model = Model::new();
    let (inl, outl) = (Model::INPUT_LEN, Model::OUTPUT_LEN);

    // Serial references, one image at a time.
    let mut rng = Rng::new(seed);
    let images = rng.vec(POOL * inl, -1.0, 1.0);
    let mut refs = vec![0.0_f32; POOL * outl];
    let mut scratch = vec![0.0_f32; Model::SCRATCH_LEN];
    for i in 0..POOL {
        model
            .run(
                &images[i * inl..(i + 1) * inl],
                &mut refs[i * outl..(i + 1) * outl],
                &mut scratch,
            )
            .expect("serial reference");
    }
    drop(scratch);

    let team = Team::new(2).expect("2-thread team");
    let stop = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    let (calls, imgs) = (AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(minutes * 60.0);
    let mut rss = Vec::new();
    std::thread::scope(|sc| {
        for caller in 0..2u64 {
            let (model, team, images, refs) = (&model, &team, &images, &refs);
            let (stop, failed, calls, imgs) = (&stop, &failed, &calls, &imgs);
            sc.spawn(move || {
                let mut rng = Rng::new(seed.wrapping_add(caller + 1));
                let mut x = vec![0.0_f32; MAX_BATCH * inl];
                let mut y = vec![0.0_f32; MAX_BATCH * outl];
                let mut want = vec![0.0_f32; MAX_BATCH * outl];
                // Two shares of scratch: run_with splits a batch into whole images per thread.
                let mut scratch = vec![0.0_f32; 2 * Model::SCRATCH_LEN];
                while !stop.load(Ordering::Relaxed) {
                    let b = rng.range(1, MAX_BATCH);
                    for k in 0..b {
                        let i = rng.range(0, POOL - 1);
                        x[k * inl..(k + 1) * inl].copy_from_slice(&images[i * inl..(i + 1) * inl]);
                        want[k * outl..(k + 1) * outl]
                            .copy_from_slice(&refs[i * outl..(i + 1) * outl]);
                    }
                    let (x, y) = (&x[..b * inl], &mut y[..b * outl]);
                    let threaded = rng.bool();
                    let r = if threaded {
                        model.run_with(team, x, y, &mut scratch)
                    } else {
                        model.run(x, y, &mut scratch[..Model::SCRATCH_LEN])
                    };
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    imgs.fetch_add(b as u64, Ordering::Relaxed);
                    if let Err(e) = r {
                        eprintln!("caller {caller}, call {n}: error {e}");
                        failed.store(true, Ordering::Relaxed);
                    } else if let Some(p) = (0..b * outl).find(|&p| y[p].to_bits() != want[p].to_bits()) {
                        eprintln!(
                            "caller {caller}, call {n}: batch {b}, {}: element {p} is {} (serial {})",
                            if threaded { "run_with" } else { "run" },
                            y[p],
                            want[p]
                        );
                        failed.store(true, Ordering::Relaxed);
                    }
                    if failed.load(Ordering::Relaxed) {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
        // Sampler: RSS each minute (the first sample after 10 s of warm-up).
        let mut next = start + Duration::from_secs(10);
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            if Instant::now() >= next {
                let r = rss_kib();
                println!(
                    "{:7.1} min  calls {:9}  images {:10}  RSS {} KiB",
                    start.elapsed().as_secs_f64() / 60.0,
                    calls.load(Ordering::Relaxed),
                    imgs.load(Ordering::Relaxed),
                    r
                );
                rss.push(r);
                next += Duration::from_secs(60);
            }
        }
        // The last sample while the callers still run (their buffers are freed after the
        // scope, which would hide growth).
        rss.push(rss_kib());
        stop.store(true, Ordering::Relaxed);
    });
    let first = rss[0];
    let max = rss.iter().copied().max().unwrap_or(first);
    println!(
        "done: {:.1} min, {} calls, {} images, RSS while running: first {} KiB, last {} KiB, max {} KiB",
        start.elapsed().as_secs_f64() / 60.0,
        calls.load(Ordering::Relaxed),
        imgs.load(Ordering::Relaxed),
        first,
        rss[rss.len() - 1],
        max
    );
    if rss.len() < 2 {
        eprintln!("FAILED: too short to check RSS (the first sample is taken after 10 s)");
        std::process::exit(1);
    }
    let grew = max.saturating_sub(first) > 1024;
    if failed.load(Ordering::Relaxed) || grew {
        eprintln!(
            "FAILED{}",
            if grew {
                ": RSS grew by more than 1 MiB"
            } else {
                ""
            }
        );
        std::process::exit(1);
    }
}
