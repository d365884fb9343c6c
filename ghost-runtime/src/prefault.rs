//! Paging the embedded weights in before the first inference needs them.
//!
//! A generated model's weights are a static blob in the binary: file-backed pages that the
//! kernel maps on first touch, one minor page fault per fault-around window. A fresh process's
//! first `run` used to pay all of them inside its layers. [`prefault_weights`] (called by the
//! generated `Model::new`, once per blob) asks the kernel to map the whole blob in one
//! `madvise(MADV_POPULATE_READ)` call (Linux 5.14+; older kernels: one read per page) on a
//! background thread, so the mapping overlaps with the caller's set-up and first layers instead
//! of interrupting them. On other targets and without `std` it does nothing.
//!
//! `GHOST_PREFAULT=off` in the environment switches it off (for measurements: see
//! `bench/README.md`); `GHOST_PREFAULT=sync` maps the blob on the calling thread instead.

/// Pages `blob` (the model's embedded weights) in ahead of use; see the module docs. Cheap
/// and idempotent to call again, but each call with prefaulting on starts a short-lived
/// thread, so generated code calls it once per blob.
pub fn prefault_weights(blob: &'static [u8]) {
    #[cfg(all(feature = "std", target_os = "linux"))]
    linux::prefault(blob);
    #[cfg(not(all(feature = "std", target_os = "linux")))]
    let _ = blob;
}

/// Bytes of a transparent huge page on the targets [`advise_huge`] knows.
#[cfg(feature = "std")]
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Asks Linux to back the 2 MiB-aligned range at `ptr` (`len` bytes, a multiple of 2 MiB) with
/// transparent huge pages when it is first touched (`madvise(MADV_HUGEPAGE)`; effective when
/// `/sys/kernel/mm/transparent_hugepage/enabled` is `madvise` or `always`). Returns whether
/// the advice was taken; `false` off Linux x86_64/aarch64 and with `GHOST_HUGE_SCRATCH=off`.
#[cfg(feature = "std")]
pub(crate) fn advise_huge(ptr: *const f32, len: usize) -> bool {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        if std::env::var_os("GHOST_HUGE_SCRATCH").is_some_and(|v| v == "off" || v == "0") {
            return false;
        }
        /// `MADV_HUGEPAGE` from `<linux/mman.h>`.
        const MADV_HUGEPAGE: i32 = 14;
        if !(ptr as usize).is_multiple_of(HUGE_PAGE) || !len.is_multiple_of(HUGE_PAGE) {
            return false;
        }
        // SAFETY: the caller owns [ptr, ptr + len); the advice changes no byte.
        unsafe { linux::madvise(ptr as *mut _, len, MADV_HUGEPAGE) == 0 }
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        let _ = (ptr, len);
        false
    }
}

#[cfg(all(feature = "std", target_os = "linux"))]
mod linux {
    /// Which prefaulting [`super::prefault_weights`] does, from `GHOST_PREFAULT` (`off`,
    /// `sync`; anything else or unset: on a background thread).
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Mode {
        Off,
        Sync,
        Thread,
    }

    /// `MADV_POPULATE_READ` from `<linux/mman.h>` (same value on every architecture).
    const MADV_POPULATE_READ: i32 = 22;
    /// The smallest page size of any Linux target; a larger page only means the first madvise
    /// fails (unaligned start) and the fallback touches more often than needed.
    const PAGE: usize = 4096;

    extern "C" {
        // libc's madvise, linked by std on every Linux target.
        pub(super) fn madvise(addr: *mut core::ffi::c_void, len: usize, advice: i32) -> i32;
    }

    fn mode() -> Mode {
        match std::env::var_os("GHOST_PREFAULT") {
            Some(v) if v == "off" || v == "0" => Mode::Off,
            Some(v) if v == "sync" => Mode::Sync,
            _ => Mode::Thread,
        }
    }

    pub(super) fn prefault(blob: &'static [u8]) {
        match mode() {
            Mode::Off => {}
            Mode::Sync => populate(blob),
            Mode::Thread => {
                // A failed spawn (no threads left) only loses the head start. Unnamed: std
                // copies a thread's name on the new thread as it starts, which may be after
                // this returns, i.e. an allocation during the caller's first runs.
                let _ = std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || populate(blob));
            }
        }
    }

    /// Maps every page of `blob` into this process.
    pub(super) fn populate(blob: &[u8]) {
        if blob.is_empty() {
            return;
        }
        let start = blob.as_ptr() as usize & !(PAGE - 1);
        let end = blob.as_ptr() as usize + blob.len();
        // SAFETY: [start, end) covers only pages holding part of `blob`, which are mapped and
        // readable; MADV_POPULATE_READ faults them in as a read would and changes no byte.
        let ok = unsafe { madvise(start as *mut _, end - start, MADV_POPULATE_READ) } == 0;
        if !ok {
            // EINVAL before Linux 5.14 (or a larger page size): touch each page instead.
            let mut sum = 0u8;
            for i in (0..blob.len()).step_by(PAGE) {
                // SAFETY: i < blob.len().
                sum ^= unsafe { core::ptr::read_volatile(blob.as_ptr().add(i)) };
            }
            core::hint::black_box(sum);
        }
    }
}

#[cfg(all(test, feature = "std", target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Read;

    /// Two megabytes of read-only data each, untouched before their test (distinct contents, so
    /// not merged).
    static POPULATED: [u8; 1 << 21] = [7; 1 << 21];
    static UNTOUCHED: [u8; 1 << 21] = [9; 1 << 21];

    /// Minor page faults of the calling thread so far.
    fn thread_minflt() -> u64 {
        let mut buf = [0u8; 1024];
        let mut f = std::fs::File::open("/proc/thread-self/stat").unwrap();
        let n = f.read(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        let rest = text.rsplit_once(')').unwrap().1;
        // state ppid pgrp session tty_nr tpgid flags minflt
        rest.split_whitespace().nth(7).unwrap().parse().unwrap()
    }

    /// Faults of reading one byte per page of `data`, and the bytes' xor.
    fn touch(data: &[u8]) -> (u64, u8) {
        let before = thread_minflt();
        let mut x = 0;
        for i in (0..data.len()).step_by(4096) {
            // SAFETY: i < data.len().
            x ^= unsafe { core::ptr::read_volatile(data.as_ptr().add(i)) };
        }
        (thread_minflt() - before, x)
    }

    #[test]
    fn populated_pages_do_not_fault() {
        linux::populate(&POPULATED);
        let (populated, x) = touch(&POPULATED);
        let (untouched, y) = touch(&UNTOUCHED);
        assert_eq!((x, y), (0, 0), "512 equal bytes xor to 0");
        // Under user-mode emulation (qemu-aarch64 in CI) the guest's fault counters do not see
        // the host's paging: an untouched 2 MB static then shows a handful of faults, not one
        // per page. Only a host that counts them can show the difference.
        if untouched < 64 {
            std::eprintln!(
                "fault counts not observable here ({untouched} for 512 untouched pages)"
            );
            return;
        }
        assert!(
            populated < untouched,
            "{populated} faults after populate, {untouched} without"
        );
    }

    #[test]
    fn any_range_is_fine() {
        static SMALL: [u8; 3 * 4096 + 5] = [5; 3 * 4096 + 5];
        linux::populate(&SMALL[1..]);
        linux::populate(&SMALL[..0]);
        linux::populate(&SMALL[4095..4100]);
        prefault_weights(&SMALL);
        assert!(SMALL.iter().all(|&b| b == 5));
    }
}
