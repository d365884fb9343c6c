//! [`Team`]: persistent worker threads plus the calling thread, a [`Fork`] for [`crate::Par`].
//!
//! Built for many short jobs (one per layer, ~10-500 us each): a job is published by bumping
//! an epoch counter, workers spin on it for a while before parking, and the caller runs part
//! 0 itself and then spins until every worker has stored the epoch it finished. No allocation
//! or lock per job. A second thread calling [`Fork::run`] while the team is busy runs all its
//! parts itself, so a `Team` may be shared.

use crate::par::Fork;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::boxed::Box;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::vec::Vec;

/// How long an idle worker spins before parking: long enough to span the gap between two
/// layers and between back-to-back inferences, short enough not to burn a core when idle.
const SPIN: Duration = Duration::from_micros(300);

type Job = *const (dyn Fn(usize) + Sync);

/// One worker's completion flag, alone on its cache line.
#[repr(align(128))]
struct Slot {
    done: AtomicUsize,
    sleeping: AtomicBool,
}

struct Inner {
    epoch: AtomicUsize,
    job: UnsafeCell<Option<Job>>,
    stop: AtomicBool,
    panicked: AtomicBool,
    slots: Box<[Slot]>,
}

// SAFETY: `job` is written only by the thread holding `busy` before it bumps `epoch` (Release)
// and read by workers after they observe the new epoch (Acquire); it is not written again
// until every worker has reported the epoch done.
unsafe impl Sync for Inner {}
// SAFETY: as above; the raw job pointer is only dereferenced under that protocol.
unsafe impl Send for Inner {}

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
        let slots: Box<[Slot]> = (0..n)
            .map(|_| Slot {
                done: AtomicUsize::new(0),
                sleeping: AtomicBool::new(false),
            })
            .collect();
        let inner = Arc::new(Inner {
            epoch: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            stop: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            slots,
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
    let slot = &inner.slots[w];
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let epoch = loop {
            let e = inner.epoch.load(Ordering::Acquire);
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
            slot.sleeping.store(true, Ordering::SeqCst);
            if inner.epoch.load(Ordering::SeqCst) == seen && !inner.stop.load(Ordering::SeqCst) {
                thread::park();
            }
            slot.sleeping.store(false, Ordering::SeqCst);
        };
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        seen = epoch;
        // SAFETY: the publisher wrote `job` before the Release bump we observed, and keeps the
        // closure alive until this slot reports `epoch`.
        let job = unsafe { (*inner.job.get()).expect("job published with the epoch") };
        // SAFETY: as above: the closure outlives this call.
        let f = unsafe { &*job };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(w + 1))).is_err() {
            inner.panicked.store(true, Ordering::Release);
        }
        slot.done.store(epoch, Ordering::Release);
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
        // returns only after every worker reported the epoch done.
        let job: Job = unsafe { core::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        // SAFETY: we hold `busy`, and every worker finished the previous epoch, so nobody
        // reads `job` now.
        unsafe { *inner.job.get() = Some(job) };
        let epoch = inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        for (slot, handle) in inner.slots.iter().zip(&self.workers) {
            if slot.sleeping.load(Ordering::SeqCst) {
                handle.thread().unpark();
            }
        }
        f(0);
        for slot in inner.slots.iter() {
            let mut spins = 0u32;
            while slot.done.load(Ordering::Acquire) != epoch {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(4096) {
                    thread::yield_now();
                } else {
                    core::hint::spin_loop();
                }
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
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        for handle in &self.workers {
            handle.thread().unpark();
        }
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}
