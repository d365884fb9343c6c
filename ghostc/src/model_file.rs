//! The files a model is made of, as every entry point sees them: the `.onnx` file, read once
//! per compile through the importer's size limit and hashed from those same bytes, and the
//! external-data files next to it that `Builder` and `ghost_macros::model!` track for rebuilds.
//!
//! One read matters because the file is untrusted and may be large: a second read would not
//! respect `max_file_bytes` unless it repeated the check, and could see a different file than
//! the one compiled (the hash in the generated code must describe the compiled bytes).
//!
//! Deliberately not done here: reading the external data itself (the importer does that,
//! confined to the model's folder, in `onnx::external`), and working out which `*.data` files
//! the model actually names (tracking every one in the folder is cheap, and a spurious rebuild
//! is better than a missed one).

use std::path::{Path, PathBuf};

use crate::codegen::output::sha256_hex;
use crate::ir::Graph;
use crate::onnx::{import_bytes, model_dir, read_model_file, ImportError, ImportOptions, Limits};

/// A model file's bytes, read once, with their SHA-256.
#[derive(Clone, Debug)]
pub struct ModelFile {
    path: PathBuf,
    bytes: Vec<u8>,
    sha256: String,
}

impl ModelFile {
    /// Reads `path` (one open; refused beyond `limits.max_file_bytes`).
    pub fn read(path: &Path, limits: &Limits) -> Result<ModelFile, ImportError> {
        let bytes = read_model_file(path, limits)?;
        Ok(ModelFile {
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lowercase hex SHA-256 of the bytes (what the generated code's header names).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Imports the bytes; external data is resolved relative to the file's folder. Callers
    /// that need two option sets (the CLI pinning an unnamed shape) import twice from the one
    /// read.
    pub fn import(&self, opts: &ImportOptions) -> Result<Graph, ImportError> {
        import_bytes(&self.bytes, Some(model_dir(&self.path)), opts)
    }
}

/// The `*.data` files in the model's folder, sorted: the external data a rebuild must follow.
pub fn data_files(model: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(model_dir(model))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "data") && p.is_file())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_files_are_the_data_files_beside_the_model() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["m.onnx", "m.onnx.data", "b.data", "c.bin", "data"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.data")).unwrap();
        let names: Vec<String> = data_files(&dir.path().join("m.onnx"))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b.data", "m.onnx.data"]);
    }

    #[test]
    fn read_respects_the_file_size_limit_and_hashes_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, b"abc").unwrap();
        let f = ModelFile::read(&path, &Limits::default()).unwrap();
        assert_eq!(f.bytes(), b"abc");
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            f.sha256(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let small = Limits {
            max_file_bytes: 2,
            ..Limits::default()
        };
        let e = ModelFile::read(&path, &small).unwrap_err();
        assert!(e.to_string().contains("max_file_bytes"), "{e}");
    }
}
