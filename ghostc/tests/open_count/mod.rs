//! Counts how many times a file is opened, by any process, with Linux inotify: the check that
//! a compile reads its model file once (ghostc/tests/model_reads.rs, the CLI's e2e tests and
//! ghost-macros' unit tests include this file).
//!
//! inotify merges identical consecutive events that have not been read yet, so the watch also
//! takes close events: sequential opens then queue open, close, open, close and each open is
//! counted (consecutive reads of one open do merge: `reads` says whether, not how often). Two opens overlapping in time could still merge; every read in ghostc is
//! sequential. Give each counting test its own copy of the model, since tests running in
//! parallel in one process would otherwise count each other's opens.
#![allow(dead_code)] // each suite uses a subset

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An inotify watch on one file.
pub struct OpenCounter {
    fd: libc::c_int,
}

impl OpenCounter {
    /// Starts counting opens of `path` (which must exist).
    pub fn watch(path: &Path) -> OpenCounter {
        // SAFETY: inotify_init1 takes only flags and returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let c_path = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
        // SAFETY: fd is the inotify descriptor just created and c_path a NUL-terminated string
        // that outlives the call.
        let wd = unsafe {
            libc::inotify_add_watch(
                fd,
                c_path.as_ptr(),
                libc::IN_OPEN | libc::IN_CLOSE | libc::IN_ACCESS,
            )
        };
        assert!(
            wd >= 0,
            "inotify_add_watch {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        OpenCounter { fd }
    }

    /// Opens of the file since the watch started or since the previous call.
    pub fn take(&self) -> usize {
        self.take_counts().0
    }

    /// Opens and reads (`read` calls that returned data) since the watch started or since the
    /// previous call.
    pub fn take_counts(&self) -> (usize, usize) {
        // inotify_event: wd i32, mask u32, cookie u32, len u32, then `len` bytes of name (none
        // for a watch on a file).
        const HEADER: usize = 16;
        let mut buf = [0u8; 4096];
        let (mut opens, mut reads) = (0, 0);
        loop {
            // SAFETY: buf is valid for writes of buf.len() bytes; fd is non-blocking, so an
            // empty queue returns -1 (EAGAIN) instead of waiting.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return (opens, reads);
            }
            let n = n as usize;
            let mut at = 0;
            while at + HEADER <= n {
                let word =
                    |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
                if word(4) & libc::IN_OPEN != 0 {
                    opens += 1;
                }
                if word(4) & libc::IN_ACCESS != 0 {
                    reads += 1;
                }
                at += HEADER + word(12) as usize;
            }
        }
    }
}

impl Drop for OpenCounter {
    fn drop(&mut self) {
        // SAFETY: fd is owned by this counter and closed once, here.
        unsafe { libc::close(self.fd) };
    }
}

/// Copies the fixture model `name` (a folder under `fixtures/` without external data) into
/// `dir` and returns the copy's path.
pub fn private_model(name: &str, dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
        .join("model.onnx");
    let dst = dir.join("model.onnx");
    std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    dst
}
