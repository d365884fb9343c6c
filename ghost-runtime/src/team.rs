//! [`Team`]: persistent worker threads plus the calling thread, a [`Fork`] for [`crate::Par`].
//!
//! Built for many short jobs (one per layer, ~5-500 us each). A job is published by storing
//! `(epoch, next part = 0)` in one atomic word; the caller and the woken workers then *claim*
//! parts with compare-and-swap on that word until none is left, and the caller waits until
//! every claimed part is finished. Which parts exist is fixed by the layer (see
//! [`crate::Par`]); only which thread runs each one is decided at run time, so a worker that
//! the OS has not scheduled yet costs nothing: the caller takes its part. Idle workers spin
//! for a while before parking. No allocation or lock per job. A second thread calling
//! [`Fork::run`] while the team is busy runs all its parts itself, so a `Team` may be shared.
//!
//! A team also watches whether its threads pay: when another process keeps a core busy, a
//! worker that claims a part and is then descheduled stalls the whole layer (measured: 2
//! threads slower than 1 on a shared machine). Each job times the caller's own parts; over a
//! window of jobs, if the team did not beat the caller's serial estimate by a margin, the
//! next jobs run serially on the caller (workers park), and the team probes again later,
//! backing off while the probes keep losing (see [`Adapt`]). Which thread runs a part never
//! changes a result, so the switch is invisible except in time. [`Team::set_adaptive`] turns
//! it off.

use crate::par::Fork;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::boxed::Box;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::vec::Vec;

/// How long an idle worker spins before parking: long enough to span the gap between two
/// layers and between back-to-back inferences, short enough not to burn a core when idle.
const SPIN: Duration = Duration::from_micros(300);

type Job = *const (dyn Fn(usize) + Sync);

/// A value alone on its cache line (the claim word is hammered by every thread).
#[repr(align(128))]
struct Padded<T>(T);

struct Inner {
    /// `epoch << 32 | next unclaimed part`.
    state: Padded<AtomicU64>,
    /// Parts of the current epoch finished.
    finished: Padded<AtomicUsize>,
    /// Parts of every job: the team's threads, the caller included.
    parts: usize,
    job: UnsafeCell<Option<Job>>,
    stop: AtomicBool,
    panicked: AtomicBool,
    sleeping: Box<[Padded<AtomicBool>]>,
    /// Workers that have finished starting up (see [`Team::new`]).
    started: AtomicUsize,
}

// SAFETY: `job` is written only by the thread holding `busy`, before it publishes the epoch
// (Release), and read only by a thread that claimed a part of that epoch (Acquire CAS on
// `state`); the publisher does not write it again until every part of the
// epoch is finished, which cannot happen while a claimed part runs.
unsafe impl Sync for Inner {}
// SAFETY: as above; the raw job pointer is only dereferenced under that protocol.
unsafe impl Send for Inner {}

impl Inner {
    /// Claims and runs parts of `epoch` until none is left; returns how many it ran.
    fn work(&self, epoch: u64) -> usize {
        let mut ran = 0;
        let mut s = self.state.0.load(Ordering::Acquire);
        loop {
            if s >> 32 != epoch {
                return ran;
            }
            let part = (s & 0xffff_ffff) as usize;
            if part >= self.parts {
                return ran;
            }
            match self
                .state
                .0
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: we claimed a part of `epoch`, so the job is that epoch's and
                    // stays alive until we report the part finished.
                    let f = unsafe { &*(*self.job.get()).expect("job published with the epoch") };
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(part))).is_err() {
                        self.panicked.store(true, Ordering::Release);
                    }
                    self.finished.0.fetch_add(1, Ordering::AcqRel);
                    ran += 1;
                    s = self.state.0.load(Ordering::Acquire);
                }
                Err(now) => s = now,
            }
        }
    }
}

/// Jobs per probe window: long enough to span most of an inference's layers.
const WINDOW: u32 = 64;
/// Serial jobs after a losing window, doubled per further losing window up to [`MAX_SERIAL`].
const MIN_SERIAL: u32 = 512;
const MAX_SERIAL: u32 = 1 << 16;

/// The serial fallback's state. Touched only by the thread holding [`Team::busy`] (the
/// atomics are for `Sync`; `Relaxed` suffices as `busy` orders them).
struct Adapt {
    on: AtomicBool,
    /// Jobs still to run serially before the next probe window.
    serial_left: AtomicU32,
    /// Length of the next serial stretch.
    backoff: AtomicU32,
    /// Parallel jobs in the current window, their time, and the caller's serial estimate.
    jobs: AtomicU32,
    actual_ns: AtomicU64,
    serial_ns: AtomicU64,
}

impl Adapt {
    fn new() -> Self {
        Adapt {
            on: AtomicBool::new(true),
            serial_left: AtomicU32::new(0),
            backoff: AtomicU32::new(MIN_SERIAL),
            jobs: AtomicU32::new(0),
            actual_ns: AtomicU64::new(0),
            serial_ns: AtomicU64::new(0),
        }
    }

    /// Whether the next job should run serially (counting it).
    fn take_serial(&self) -> bool {
        let left = self.serial_left.load(Ordering::Relaxed);
        if left == 0 || !self.on.load(Ordering::Relaxed) {
            return false;
        }
        self.serial_left.store(left - 1, Ordering::Relaxed);
        true
    }

    /// Records a parallel job of `parts` parts that took `actual`, the caller having run
    /// `mine >= 1` of them in `own`; at the end of a window, decides on the next stretch.
    fn record(&self, parts: usize, mine: usize, own: Duration, actual: Duration) {
        let serial = own.as_nanos() as u64 / mine as u64 * parts as u64;
        let r = Ordering::Relaxed;
        let actual_ns = self.actual_ns.load(r) + actual.as_nanos() as u64;
        let serial_ns = self.serial_ns.load(r) + serial;
        let jobs = self.jobs.load(r) + 1;
        if jobs < WINDOW {
            self.jobs.store(jobs, r);
            self.actual_ns.store(actual_ns, r);
            self.serial_ns.store(serial_ns, r);
            return;
        }
        self.jobs.store(0, r);
        self.actual_ns.store(0, r);
        self.serial_ns.store(0, r);
        // The team must save at least 10 % of the serial estimate to be kept.
        if actual_ns.saturating_mul(10) > serial_ns.saturating_mul(9) {
            let stretch = self.backoff.load(r);
            self.serial_left.store(stretch, r);
            self.backoff.store((stretch * 2).min(MAX_SERIAL), r);
        } else {
            self.backoff.store(MIN_SERIAL, r);
        }
    }
}

/// A fixed team of `threads - 1` persistent worker threads plus the caller.
pub struct Team {
    inner: Arc<Inner>,
    busy: AtomicBool,
    adapt: Adapt,
    workers: Vec<JoinHandle<()>>,
}

impl core::fmt::Debug for Team {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Team")
            .field("threads", &self.threads())
            .finish()
    }
}

impl Team {
    /// A team of `threads` (at least 1; 1 means no worker thread and no synchronization).
    pub fn new(threads: usize) -> std::io::Result<Team> {
        let n = threads.max(1) - 1;
        let inner = Arc::new(Inner {
            state: Padded(AtomicU64::new(0)),
            finished: Padded(AtomicUsize::new(0)),
            parts: n + 1,
            job: UnsafeCell::new(None),
            stop: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            sleeping: (0..n).map(|_| Padded(AtomicBool::new(false))).collect(),
            started: AtomicUsize::new(0),
        });
        let mut workers = Vec::with_capacity(n);
        for w in 0..n {
            let inner = Arc::clone(&inner);
            let handle = thread::Builder::new()
                .name(std::format!("ghost-worker-{}", w + 1))
                .spawn(move || worker(&inner, w))?;
            workers.push(handle);
        }
        // A new thread finishes its start-up (std copies its name, 14 bytes here) only when
        // the OS schedules it; waiting here keeps that inside `new`, so that no allocation
        // happens later during a `run`, where the first jobs may run serially before the
        // workers ever wake (without the wait, e2e_alloc's harness saw that allocation in 2 of
        // 60 runs with the weight-prefault thread switched off).
        while inner.started.load(Ordering::Acquire) < n {
            thread::yield_now();
        }
        Ok(Team {
            inner,
            busy: AtomicBool::new(false),
            adapt: Adapt::new(),
            workers,
        })
    }

    /// Whether the team falls back to running jobs serially while its workers do not pay
    /// (on by default; see the module docs). Off, every job is split over the team.
    pub fn set_adaptive(&self, on: bool) {
        self.adapt.on.store(on, Ordering::Relaxed);
    }

    /// Threads in the team, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }
}

fn worker(inner: &Inner, w: usize) {
    inner.started.fetch_add(1, Ordering::Release);
    let sleeping = &inner.sleeping[w].0;
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let epoch = loop {
            let e = inner.state.0.load(Ordering::Acquire) >> 32;
            if e != seen {
                break e;
            }
            if inner.stop.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(256) || start.elapsed() < SPIN {
                core::hint::spin_loop();
                continue;
            }
            // Announce the sleep, then re-check: a publisher that bumps the epoch after our
            // check sees `sleeping` and unparks us (an unpark before park is not lost).
            sleeping.store(true, Ordering::SeqCst);
            if inner.state.0.load(Ordering::SeqCst) >> 32 == seen
                && !inner.stop.load(Ordering::SeqCst)
            {
                thread::park();
            }
            sleeping.store(false, Ordering::SeqCst);
        };
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        seen = epoch;
        inner.work(epoch);
    }
}

impl Fork for Team {
    fn parts(&self) -> usize {
        self.threads()
    }

    fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        let n = self.threads();
        if n == 1 {
            return f(0);
        }
        if self.busy.swap(true, Ordering::Acquire) {
            // Another thread is using the team: do every part here.
            for i in 0..n {
                f(i);
            }
            return;
        }
        if self.adapt.take_serial() {
            // Released even if a part panics (the panic then reaches the caller as it is).
            let _busy = ReleaseOnDrop(&self.busy);
            for i in 0..n {
                f(i);
            }
            return;
        }
        let inner = &*self.inner;
        let start = Instant::now();
        // SAFETY: lifetime erasure only; the closure outlives this call, and this call
        // returns only after every part of the epoch is finished.
        let job: Job = unsafe { core::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        // SAFETY: we hold `busy` and every part of the previous epoch is finished, so no
        // thread reads `job` now (see `Inner`).
        unsafe { *inner.job.get() = Some(job) };
        inner.finished.0.store(0, Ordering::Relaxed);
        let epoch = (inner.state.0.load(Ordering::Relaxed) >> 32) + 1;
        inner.state.0.store(epoch << 32, Ordering::SeqCst);
        for (sleeping, handle) in inner.sleeping.iter().zip(&self.workers) {
            if sleeping.0.load(Ordering::SeqCst) {
                handle.thread().unpark();
            }
        }
        let mine = inner.work(epoch);
        let own = start.elapsed();
        let mut spins = 0u32;
        while inner.finished.0.load(Ordering::Acquire) != n {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(128) {
                // A part is running on a thread the OS may have descheduled: let it run.
                thread::yield_now();
            } else {
                core::hint::spin_loop();
            }
        }
        if mine > 0 {
            self.adapt.record(n, mine, own, start.elapsed());
        }
        self.busy.store(false, Ordering::Release);
        if inner.panicked.swap(false, Ordering::AcqRel) {
            panic!("a ghost-runtime worker thread panicked");
        }
    }
}

/// Clears a flag when dropped.
struct ReleaseOnDrop<'a>(&'a AtomicBool);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        // No job runs (`&mut self`): spinning workers see `stop`, parked ones see it on waking.
        self.inner.stop.store(true, Ordering::SeqCst);
        for handle in &self.workers {
            handle.thread().unpark();
        }
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Every part of every job runs exactly once, whoever claims it, with several threads
    /// sharing one team (the loser of the `busy` race runs its parts itself) and far more
    /// threads than cores.
    #[test]
    #[cfg_attr(miri, ignore = "spinning threads: too slow under Miri")]
    fn every_part_runs_once_under_contention() {
        let team = Team::new(3).unwrap();
        assert_eq!(team.parts(), 3);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for round in 0..300u32 {
                        let hits: [AtomicU32; 3] = Default::default();
                        team.run(&|i| {
                            hits[i].fetch_add(1 + round % 2, Ordering::Relaxed);
                        });
                        for h in &hits {
                            assert_eq!(h.load(Ordering::Relaxed), 1 + round % 2);
                        }
                    }
                });
            }
        });
    }

    /// The fallback's decisions: a window that does not save 10 % of the serial estimate
    /// starts a serial stretch, further losing windows double it up to the cap, a winning
    /// window resets it; turned off, no stretch is ever taken.
    #[test]
    fn adapt_backs_off_while_losing_and_resets_on_a_win() {
        let us = Duration::from_micros;
        let a = Adapt::new();
        let window = |a: &Adapt, actual: u64| {
            for _ in 0..WINDOW {
                assert!(!a.take_serial());
                // Two parts, the caller ran one in 100 us: serial estimate 200 us.
                a.record(2, 1, us(100), us(actual));
            }
        };
        let drain = |a: &Adapt| (0..).take_while(|_| a.take_serial()).count() as u32;
        window(&a, 120);
        assert_eq!(drain(&a), 0, "a 40 % saving keeps the team");
        window(&a, 185);
        assert_eq!(drain(&a), MIN_SERIAL, "7.5 % is not enough");
        window(&a, 400);
        assert_eq!(drain(&a), 2 * MIN_SERIAL);
        for _ in 0..16 {
            window(&a, 400);
            drain(&a);
        }
        window(&a, 400);
        assert_eq!(drain(&a), MAX_SERIAL);
        window(&a, 100);
        assert_eq!(drain(&a), 0);
        window(&a, 400);
        assert_eq!(drain(&a), MIN_SERIAL, "a win resets the backoff");
        // The caller ran both parts (worker absent): no saving, a loss.
        for _ in 0..WINDOW {
            a.record(2, 2, us(200), us(205));
        }
        a.on.store(false, Ordering::Relaxed);
        assert_eq!(drain(&a), 0, "off: never serial");
        a.on.store(true, Ordering::Relaxed);
        assert_eq!(
            drain(&a),
            2 * MIN_SERIAL,
            "the caller-only window was a loss"
        );
    }

    /// Serial stretches and panics inside them leave the team usable, every part run once.
    #[test]
    #[cfg_attr(miri, ignore = "spinning threads: too slow under Miri")]
    fn serial_stretch_runs_every_part_and_survives_a_panic() {
        let team = Team::new(2).unwrap();
        team.adapt.serial_left.store(3, Ordering::Relaxed);
        let caller = thread::current().id();
        for _ in 0..3 {
            let hits: [AtomicU32; 2] = Default::default();
            team.run(&|i| {
                assert_eq!(
                    thread::current().id(),
                    caller,
                    "serial: the caller runs all"
                );
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
        team.adapt.serial_left.store(1, Ordering::Relaxed);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            team.run(&|_| panic!("part fails"))
        }));
        assert!(r.is_err());
        assert!(
            !team.busy.load(Ordering::Acquire),
            "busy released after the panic"
        );
        let hits = AtomicU32::new(0);
        team.run(&|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 2);
    }

    /// Workers park when idle and wake for the next job; dropping the team joins them.
    #[test]
    #[cfg_attr(miri, ignore = "spinning threads: too slow under Miri")]
    fn parked_workers_wake_and_drop_joins() {
        let team = Team::new(2).unwrap();
        let hits = AtomicU32::new(0);
        team.run(&|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        thread::sleep(SPIN * 4);
        team.run(&|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 4);
        drop(team);
        let solo = Team::new(1).unwrap();
        solo.run(&|i| assert_eq!(i, 0));
    }
}
