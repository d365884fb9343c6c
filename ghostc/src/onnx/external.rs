//! External tensor data (`data_location = EXTERNAL`), confined to the model's folder.
//!
//! The location comes from an untrusted file, so before anything is opened it must be a
//! relative path made only of normal components (no root, no prefix, no `..`, not empty, not
//! `.`): `Path::join` with an absolute path would silently replace the base. Then every
//! component is checked with `symlink_metadata` (no symlinked file or folder on the way), the
//! file must be a regular file with a single hard link (a hard link can point anywhere on the
//! same file system), and the opened file must be the one that was checked (same device and
//! inode on unix). Reads are bounded: seek to the offset and read exactly the tensor's bytes.
//! Open files are cached per location, since one data file usually holds every weight.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use super::error::shown;
use super::proto::StringStringEntryProto;
use super::{ImportError, Limits};

struct OpenFile {
    file: File,
    len: u64,
}

/// Reader of external data for one model.
pub(crate) struct ExternalData {
    dir: Option<PathBuf>,
    max_external_bytes: u64,
    files: HashMap<String, OpenFile>,
    bytes_read: u64,
}

impl ExternalData {
    pub(crate) fn new(dir: Option<&Path>, limits: &Limits) -> Self {
        ExternalData {
            dir: dir.map(Path::to_path_buf),
            max_external_bytes: limits.max_external_bytes,
            files: HashMap::new(),
            bytes_read: 0,
        }
    }

    /// Reads the `expected` bytes of a tensor described by `entries` (the TensorProto's
    /// `external_data` key/value list). `context` names the tensor for errors.
    pub(crate) fn read(
        &mut self,
        context: &str,
        entries: &[StringStringEntryProto],
        expected: u64,
    ) -> Result<Vec<u8>, ImportError> {
        let mut location: Option<&str> = None;
        let mut offset: Option<&str> = None;
        let mut length: Option<&str> = None;
        for entry in entries {
            let key = entry.key.as_deref().unwrap_or("");
            let value = entry.value.as_deref().unwrap_or("");
            let slot = match key {
                "location" => &mut location,
                "offset" => &mut offset,
                "length" => &mut length,
                _ => continue, // "checksum" and future keys carry nothing we need.
            };
            if slot.replace(value).is_some() {
                return Err(ImportError::ExternalData {
                    context: context.to_string(),
                    location: shown(location.unwrap_or("")),
                    detail: format!("key '{}' is given twice", shown(key)),
                });
            }
        }
        let Some(location) = location else {
            return Err(ImportError::ExternalData {
                context: context.to_string(),
                location: String::new(),
                detail: "data_location is EXTERNAL but no 'location' is given".into(),
            });
        };
        let fail = |detail: String| ImportError::ExternalData {
            context: context.to_string(),
            location: shown(location),
            detail,
        };
        let parse = |key: &str, text: Option<&str>| -> Result<Option<u64>, ImportError> {
            match text {
                None => Ok(None),
                Some(t) => t.parse::<u64>().map(Some).map_err(|_| {
                    fail(format!(
                        "{key} '{}' is not a non-negative integer",
                        shown(t)
                    ))
                }),
            }
        };
        let offset = parse("offset", offset)?.unwrap_or(0);
        let length = parse("length", length)?;
        if let Some(len) = length {
            if len != expected {
                return Err(fail(format!(
                    "length {len} does not match the tensor's {expected} bytes"
                )));
            }
        }
        let total = self.bytes_read.saturating_add(expected);
        if total > self.max_external_bytes {
            return Err(ImportError::limit(
                "max_external_bytes",
                total,
                self.max_external_bytes,
                format!("{context}: external data bytes read"),
            ));
        }

        let dir = self.dir.as_deref().ok_or_else(|| {
            fail(
                "the model was given as bytes without a folder, so external data cannot be read"
                    .into(),
            )
        })?;
        if !self.files.contains_key(location) {
            let path = confined_path(dir, location).map_err(&fail)?;
            let file = open_checked(&path).map_err(&fail)?;
            self.files.insert(location.to_string(), file);
        }
        let open = self
            .files
            .get_mut(location)
            .ok_or_else(|| ImportError::Bug("external file cache lost an entry".into()))?;
        let end = offset
            .checked_add(expected)
            .ok_or_else(|| fail(format!("offset {offset} + length {expected} overflows")))?;
        if end > open.len {
            return Err(fail(format!(
                "offset {offset} + length {expected} is past the end of the file ({} bytes)",
                open.len
            )));
        }
        let size = usize::try_from(expected)
            .map_err(|_| fail(format!("length {expected} does not fit in memory")))?;
        let mut buf = vec![0u8; size];
        open.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| open.file.read_exact(&mut buf))
            .map_err(|e| {
                fail(format!(
                    "read of {expected} bytes at offset {offset} failed: {e}"
                ))
            })?;
        self.bytes_read = total;
        Ok(buf)
    }
}

/// `dir/location` if `location` is a plain relative path that stays inside `dir` and nothing on
/// the way is a symlink. Checks the text before touching the file system.
fn confined_path(dir: &Path, location: &str) -> Result<PathBuf, String> {
    const ESCAPES: &str = "escapes the model directory";
    if location.is_empty() || location.contains('\0') {
        return Err(format!("{ESCAPES} (empty or NUL in location)"));
    }
    let rel = Path::new(location);
    let mut parts = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => return Err(format!("{ESCAPES} ('..' component)")),
            Component::CurDir => return Err(format!("{ESCAPES} ('.' component)")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{ESCAPES} (absolute path)"))
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("{ESCAPES} (no file name)"));
    }
    let mut path = dir.to_path_buf();
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        path.push(part);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("file not found: {}", path.display()));
            }
            Err(e) => return Err(format!("cannot stat {}: {e}", path.display())),
        };
        if meta.file_type().is_symlink() {
            return Err(format!(
                "{} is a symlink; external data must be a regular file inside the model directory",
                path.display()
            ));
        }
        if i < last && !meta.is_dir() {
            return Err(format!("{} is not a directory", path.display()));
        }
    }
    Ok(path)
}

/// Opens a checked path and verifies it is a regular file with one link, the same one stat saw.
fn open_checked(path: &Path) -> Result<OpenFile, String> {
    let before = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !before.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if before.nlink() > 1 {
            return Err(format!(
                "{} has {} hard links; external data must have exactly one",
                path.display(),
                before.nlink()
            ));
        }
    }
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let after = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (after.dev(), after.ino()) != (before.dev(), before.ino()) {
            return Err(format!(
                "{} changed while it was being opened",
                path.display()
            ));
        }
    }
    Ok(OpenFile {
        file,
        len: after.len(),
    })
}
