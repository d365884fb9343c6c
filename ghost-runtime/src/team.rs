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

use crate::par::Fork;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
}

// SAFETY: `job` is written only by the thread holding `busy`, before it publishes the epoch
// (Release), and read only by a thread that claimed a part of that epoch (Acquire CAS on
// `state`); the publisher does not write it again until every part of the
// epoch is finished, which cannot happen while a claimed part runs.
unsafe impl Sync for Inner {}
// SAFETY: as above; the raw job pointer is only dereferenced under that protocol.
unsafe impl Send for Inner {}

impl Inner {
    /// Claims and runs parts of `epoch` until none is left.
    fn work(&self, epoch: u64) {
        let mut s = self.state.0.load(Ordering::Acquire);
        loop {
            if s >> 32 != epoch {
                return;
            }
            let part = (s & 0xffff_ffff) as usize;
            if part >= self.parts {
                return;
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
                    s = self.state.0.load(Ordering::Acquire);
                }
                Err(now) => s = now,
            }
        }
    }
}

/// A fixed team of `threads - 1` persistent worker threads plus the caller.
pub struct Team {
    inner: Arc<Inner>,
    busy: AtomicBool,
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
        });
        let mut workers = Vec::with_capacity(n);
        for w in 0..n {
            let inner = Arc::clone(&inner);
            let handle = thread::Builder::new()
                .name(std::format!("ghost-worker-{}", w + 1))
                .spawn(move || worker(&inner, w))?;
            workers.push(handle);
        }
        Ok(Team {
            inner,
            busy: AtomicBool::new(false),
            workers,
        })
    }

    /// Threads in the team, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }
}

fn worker(inner: &Inner, w: usize) {
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
        let inner = &*self.inner;
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
        inner.work(epoch);
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
        self.busy.store(false, Ordering::Release);
        if inner.panicked.swap(false, Ordering::AcqRel) {
            panic!("a ghost-runtime worker thread panicked");
        }
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
