//! Snapshot files: a test generates text or bytes and compares them with a committed file; with
//! `GHOSTC_BLESS=1` it writes the file instead (review the diff, then commit it).
//!
//! One rule for every suite: only the exact value `1` blesses. A mismatch names the file and,
//! for text, the first differing line of both sides. A folder of snapshots ([`Snapshots`]) also
//! fails on files no case produces any more; blessing does not delete them (delete them by
//! hand, so a renamed case is noticed).

use std::path::{Path, PathBuf};

/// The variable that makes the tests rewrite their snapshots.
pub const BLESS_VAR: &str = "GHOSTC_BLESS";

/// Whether this run rewrites snapshots (`GHOSTC_BLESS=1`).
pub fn blessing() -> bool {
    std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1")
}

/// Compares `actual` with the file at `path`, or writes it (and missing folders) when blessing
/// and the contents differ. Returns what is wrong, or `None`.
pub fn check(path: &Path, actual: impl AsRef<[u8]>) -> Option<String> {
    let actual = actual.as_ref();
    let committed = std::fs::read(path).ok();
    if committed.as_deref() == Some(actual) {
        return None;
    }
    if blessing() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        std::fs::write(path, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("blessed {}", path.display());
        return None;
    }
    let Some(committed) = committed else {
        return Some(format!("{} is missing", path.display()));
    };
    Some(
        match (std::str::from_utf8(&committed), std::str::from_utf8(actual)) {
            (Ok(want), Ok(got)) => {
                let (want, got): (Vec<&str>, Vec<&str>) =
                    (want.lines().collect(), got.lines().collect());
                let first = (0..want.len().max(got.len()))
                    .find(|&i| want.get(i) != got.get(i))
                    .unwrap_or(want.len().min(got.len()));
                format!(
                    "{} differs at line {}:\n  committed: {}\n  generated: {}",
                    path.display(),
                    first + 1,
                    want.get(first).unwrap_or(&"<end of file>"),
                    got.get(first).unwrap_or(&"<end of file>")
                )
            }
            _ => format!(
                "{} differs ({} bytes committed, {} generated)",
                path.display(),
                committed.len(),
                actual.len()
            ),
        },
    )
}

/// Panics with `problems` (if any) and how to bless: `command` is the cargo command of the
/// suite, run with `GHOSTC_BLESS=1`.
pub fn assert_none(problems: &[String], command: &str) {
    assert!(
        problems.is_empty(),
        "{}\nIf the change is intended: `{BLESS_VAR}=1 {command}`, then review and commit the diff.",
        problems.join("\n")
    );
}

/// [`check`] one file and [`assert_none`].
pub fn assert_file(path: &Path, actual: impl AsRef<[u8]>, command: &str) {
    let problems: Vec<String> = check(path, actual).into_iter().collect();
    assert_none(&problems, command);
}

/// A folder of snapshot files, one per case: [`Snapshots::check`] each case, then
/// [`Snapshots::finish`].
pub struct Snapshots {
    dir: PathBuf,
    produced: Vec<String>,
    problems: Vec<String>,
}

impl Snapshots {
    pub fn new(dir: impl Into<PathBuf>) -> Snapshots {
        Snapshots {
            dir: dir.into(),
            produced: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Compares (or blesses) the case `name`, a file name in the folder.
    pub fn check(&mut self, name: &str, actual: impl AsRef<[u8]>) {
        self.problems.extend(check(&self.dir.join(name), actual));
        self.produced.push(name.to_string());
    }

    /// Panics with every mismatch, and with the files in the folder that no case produced.
    pub fn finish(mut self, command: &str) {
        let mut stale: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|f| !self.produced.contains(f))
                    .collect()
            })
            .unwrap_or_default();
        stale.sort();
        self.problems.extend(stale.iter().map(|f| {
            format!(
                "{} is produced by no case (delete it if that is intended)",
                self.dir.join(f).display()
            )
        }));
        assert_none(&self.problems, command);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Blessing is off here unless the whole run blesses; these cases only compare.
    #[test]
    fn mismatches_name_the_file_and_line() {
        if blessing() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        assert_eq!(
            check(&path, "x").unwrap(),
            format!("{} is missing", path.display())
        );
        std::fs::write(&path, "one\ntwo\n").unwrap();
        assert_eq!(check(&path, "one\ntwo\n"), None);
        let e = check(&path, "one\nTWO\n").unwrap();
        assert!(
            e.contains("differs at line 2") && e.contains("two") && e.contains("TWO"),
            "{e}"
        );
        let e = check(&path, "one\n").unwrap();
        assert!(e.contains("line 2") && e.contains("<end of file>"), "{e}");
        let e = check(&path, [0xff, 0xfe]).unwrap();
        assert!(e.contains("8 bytes committed, 2 generated"), "{e}");
    }

    #[test]
    fn a_folder_fails_on_files_no_case_produces() {
        if blessing() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kept.txt"), "k").unwrap();
        std::fs::write(dir.path().join("old.txt"), "o").unwrap();
        let mut s = Snapshots::new(dir.path());
        s.check("kept.txt", "k");
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.finish("cargo test")))
            .unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.contains("old.txt is produced by no case"), "{msg}");
        assert!(!msg.contains("kept.txt"), "{msg}");
        let mut s = Snapshots::new(dir.path());
        s.check("kept.txt", "k");
        s.check("old.txt", "o");
        s.finish("cargo test");
    }
}
