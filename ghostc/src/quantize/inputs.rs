//! Calibration and validation inputs: the `.npy` files of a directory, or seeded random ones.
//!
//! A directory is read in file-name order; each file holds one image (`[C, H, W]` or
//! `[1, C, H, W]`) or a batch (`[N, C, H, W]`), split into runs of the model's batch `B` (1
//! for a dynamic batch), so `N` must be a multiple of `B`. Every image must have the model
//! input's shape without the batch dim. Files are read lazily, one at a time, so 500
//! validation images never sit in memory together.
//!
//! Random inputs are standard normal (what the calibrated-BN fixtures were calibrated on),
//! from a seeded splitmix64 + Box-Muller generator: the same seed gives the same inputs on
//! every machine.

use std::path::{Path, PathBuf};

use crate::ir::{fmt_shape, Tensor};
use crate::npy::NpyError;

/// Why inputs could not be read.
#[derive(thiserror::Error, Debug)]
pub enum InputError {
    #[error("cannot list '{dir}'")]
    ListDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{dir}' holds no .npy files")]
    Empty { dir: String },
    #[error("'{file}'")]
    Read {
        file: String,
        #[source]
        source: NpyError,
    },
    #[error("'{file}': shape [{actual}] does not fit the model input [{expected}] (one image, or a batch of a multiple of its batch size)")]
    Shape {
        file: String,
        expected: String,
        actual: String,
    },
}

/// Where inputs come from.
#[derive(Clone, Debug)]
pub enum InputSource {
    /// `.npy` files (sorted), with the number of images each holds.
    Files(Vec<(PathBuf, usize)>),
    /// `count` standard-normal images from `seed`.
    Random { count: usize, seed: u64 },
}

/// Lists the `.npy` files of `dir`, checking each file's header (shape; only the header is
/// read) against `image` (the input shape of one image, batch dim included as 1).
pub fn list_dir(dir: &Path, image: &[usize]) -> Result<InputSource, InputError> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|source| InputError::ListDir {
        dir: shown.clone(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npy") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(InputError::Empty { dir: shown });
    }
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let shape = crate::npy::read_shape(&f).map_err(|source| InputError::Read {
            file: f.display().to_string(),
            source,
        })?;
        let n = images_in(&f, &shape, image)?;
        out.push((f, n));
    }
    Ok(InputSource::Files(out))
}

fn read(f: &Path) -> Result<crate::npy::Array<f32>, InputError> {
    crate::npy::read_f32(f).map_err(|source| InputError::Read {
        file: f.display().to_string(),
        source,
    })
}

/// How many runs of shape `image` (`[B, ...]`) an array of `shape` holds.
fn images_in(f: &Path, shape: &[usize], image: &[usize]) -> Result<usize, InputError> {
    let item = &image[1..];
    let b = image[0].max(1);
    let n = if shape == item && b == 1 {
        Some(1)
    } else if shape.len() == image.len()
        && shape[1..] == *item
        && shape[0] > 0
        && shape[0].is_multiple_of(b)
    {
        Some(shape[0] / b)
    } else {
        None
    };
    n.ok_or_else(|| InputError::Shape {
        file: f.display().to_string(),
        expected: fmt_shape(image),
        actual: fmt_shape(shape),
    })
}

impl InputSource {
    /// Number of runs (of the model's batch each).
    pub fn len(&self) -> usize {
        match self {
            InputSource::Files(f) => f.iter().map(|(_, n)| n).sum(),
            InputSource::Random { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each run's input (shape `image`), in order; stops at the first error.
    pub fn for_each<E: From<InputError>>(
        &self,
        image: &[usize],
        mut f: impl FnMut(usize, Tensor) -> Result<(), E>,
    ) -> Result<(), E> {
        let numel: usize = image.iter().product();
        let mut k = 0;
        match self {
            InputSource::Files(files) => {
                for (path, _) in files {
                    let arr = read(path)?;
                    let n = images_in(path, &arr.shape, image)?;
                    for i in 0..n {
                        let data = arr.data[i * numel..(i + 1) * numel].to_vec();
                        let t = Tensor::from_f32(image.to_vec(), data).expect("numel checked");
                        f(k, t)?;
                        k += 1;
                    }
                }
            }
            InputSource::Random { count, seed } => {
                let mut rng = Normal::new(*seed);
                for _ in 0..*count {
                    let data = (0..numel).map(|_| rng.next()).collect();
                    let t = Tensor::from_f32(image.to_vec(), data).expect("numel checked");
                    f(k, t)?;
                    k += 1;
                }
            }
        }
        Ok(())
    }
}

/// Standard-normal generator: splitmix64 uniforms, Box-Muller pairs.
struct Normal {
    state: u64,
    spare: Option<f32>,
}

impl Normal {
    fn new(seed: u64) -> Self {
        Normal {
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f32 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some((r * t.sin()) as f32);
        (r * t.cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_inputs_are_standard_normal_and_seeded() {
        let src = InputSource::Random { count: 2, seed: 7 };
        let mut all = Vec::new();
        src.for_each::<InputError>(&[1, 3, 50, 50], |_, t| {
            all.push(t.to_f32_vec());
            Ok(())
        })
        .unwrap();
        assert_ne!(all[0], all[1]);
        let xs: Vec<f64> = all.concat().iter().map(|&x| x as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "mean {mean} var {var}"
        );
        let mut again = Vec::new();
        src.for_each::<InputError>(&[1, 3, 50, 50], |_, t| {
            again.push(t.to_f32_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(all, again);
    }
}
