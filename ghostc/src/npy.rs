//! Minimal .npy reader and writer for float32 arrays (C order, little-endian), the format the
//! CLI and the tests exchange tensors in. Reading also accepts f64/i64/i32 arrays, converted to
//! f32 or i64 as asked, because fixtures carry labels as int64.

use std::io::Write;
use std::path::Path;

/// Why an .npy file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a .npy file: {detail}")]
    Format { path: String, detail: String },
    #[error("{path}: dtype '{descr}' is not supported (expected little-endian f4, f8, i4 or i8)")]
    DType { path: String, descr: String },
    #[error("{path}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray")]
    FortranOrder { path: String },
}

/// A dense array read from an .npy file.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
    data_start: usize,
}

fn parse_header(bytes: &[u8], path: &str) -> Result<Header, NpyError> {
    let fmt_err = |d: &str| NpyError::Format {
        path: path.into(),
        detail: d.into(),
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(fmt_err("missing \\x93NUMPY magic"));
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(fmt_err(&format!("unsupported version {major}"))),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| fmt_err("header runs past the end"))?;
    let header =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| fmt_err("header is not UTF-8"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))?;
        let rest = &header[at + key.len() + 2..];
        Some(rest[rest.find(':')? + 1..].trim_start())
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\'').and_then(|r| r.split('\'').next()))
        .ok_or_else(|| fmt_err("header has no 'descr'"))?
        .to_string();
    let fortran = field("fortran_order").is_some_and(|r| r.starts_with("True"));
    let shape_text = field("shape")
        .and_then(|r| r.strip_prefix('(').and_then(|r| r.split(')').next()))
        .ok_or_else(|| fmt_err("header has no 'shape'"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| fmt_err(&format!("bad dim '{s}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Header {
        descr,
        fortran,
        shape,
        data_start: end,
    })
}

fn read_raw(path: &Path) -> Result<(Header, Vec<u8>), NpyError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: p.clone(),
        source,
    })?;
    let header = parse_header(&bytes, &p)?;
    if header.fortran {
        return Err(NpyError::FortranOrder { path: p });
    }
    Ok((header, bytes))
}

fn elements<const N: usize>(
    h: &Header,
    bytes: &[u8],
    path: &Path,
) -> Result<Vec<[u8; N]>, NpyError> {
    let count = h.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let body = &bytes[h.data_start..];
    match count.and_then(|c| c.checked_mul(N)) {
        Some(len) if len == body.len() => Ok(body
            .chunks_exact(N)
            .map(|c| c.try_into().expect("chunks_exact gives N bytes"))
            .collect()),
        _ => Err(NpyError::Format {
            path: path.display().to_string(),
            detail: format!(
                "shape {:?} needs {:?} bytes of {N}-byte elements, file has {}",
                h.shape,
                count,
                body.len()
            ),
        }),
    }
}

/// Reads only the header of an .npy file and returns the array's shape, after the checks
/// [`read_f32`] makes without reading the body: a dtype it accepts, C order, and a file length
/// that matches the shape.
pub fn read_shape(path: &Path) -> Result<Vec<usize>, NpyError> {
    use std::io::Read;
    let p = path.display().to_string();
    let io = |source| NpyError::Io {
        path: p.clone(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let file_len = f.metadata().map_err(io)?.len();
    // Magic (6), version (2), header length (2 in v1, 4 in v2/v3).
    let mut bytes = Vec::with_capacity(128);
    (&mut f).take(12).read_to_end(&mut bytes).map_err(io)?;
    let header_len = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as u64,
        Some(2 | 3) if bytes.len() >= 12 => {
            12 + u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as u64
        }
        _ => 0, // parse_header names the problem
    };
    let rest = header_len.saturating_sub(bytes.len() as u64);
    (&mut f).take(rest).read_to_end(&mut bytes).map_err(io)?;
    let h = parse_header(&bytes, &p)?;
    if h.fortran {
        return Err(NpyError::FortranOrder { path: p });
    }
    let size: u64 = match h.descr.as_str() {
        "<f4" | "<i4" => 4,
        "<f8" | "<i8" => 8,
        _ => {
            return Err(NpyError::DType {
                path: p,
                descr: h.descr,
            })
        }
    };
    let count = h
        .shape
        .iter()
        .try_fold(size, |a, &d| a.checked_mul(d as u64));
    let body = file_len.saturating_sub(h.data_start as u64);
    if count != Some(body) {
        return Err(NpyError::Format {
            path: p,
            detail: format!(
                "shape {:?} needs {:?} bytes of {size}-byte elements, file has {body}",
                h.shape, count
            ),
        });
    }
    Ok(h.shape)
}

/// Reads an array as f32 (f4 as is; f8, i4, i8 converted).
pub fn read_f32(path: &Path) -> Result<Array<f32>, NpyError> {
    let (h, bytes) = read_raw(path)?;
    let data = match h.descr.as_str() {
        "<f4" => elements::<4>(&h, &bytes, path)?
            .into_iter()
            .map(f32::from_le_bytes)
            .collect(),
        "<f8" => elements::<8>(&h, &bytes, path)?
            .into_iter()
            .map(|b| f64::from_le_bytes(b) as f32)
            .collect(),
        "<i4" => elements::<4>(&h, &bytes, path)?
            .into_iter()
            .map(|b| i32::from_le_bytes(b) as f32)
            .collect(),
        "<i8" => elements::<8>(&h, &bytes, path)?
            .into_iter()
            .map(|b| i64::from_le_bytes(b) as f32)
            .collect(),
        _ => {
            return Err(NpyError::DType {
                path: path.display().to_string(),
                descr: h.descr,
            })
        }
    };
    Ok(Array {
        shape: h.shape,
        data,
    })
}

/// Reads an integer array as i64 (i8 and i4 accepted).
pub fn read_i64(path: &Path) -> Result<Array<i64>, NpyError> {
    let (h, bytes) = read_raw(path)?;
    let data = match h.descr.as_str() {
        "<i8" => elements::<8>(&h, &bytes, path)?
            .into_iter()
            .map(i64::from_le_bytes)
            .collect(),
        "<i4" => elements::<4>(&h, &bytes, path)?
            .into_iter()
            .map(|b| i32::from_le_bytes(b) as i64)
            .collect(),
        _ => {
            return Err(NpyError::DType {
                path: path.display().to_string(),
                descr: h.descr,
            })
        }
    };
    Ok(Array {
        shape: h.shape,
        data,
    })
}

/// Encodes an f32 array as .npy (version 1.0) bytes.
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so that magic + version + length + header ends on a 64-byte boundary, then '\n'.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes an f32 array atomically (temporary file in the same folder, then rename).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    let p = path.display().to_string();
    let io = |source| NpyError::Io {
        path: p.clone(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(&encode_f32(shape, data)).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        write_f32(&path, &[2, 3, 4], &data).unwrap();
        let back = read_f32(&path).unwrap();
        assert_eq!(back.shape, vec![2, 3, 4]);
        assert_eq!(back.data, data);
        write_f32(&path, &[5], &data[..5]).unwrap();
        assert_eq!(read_f32(&path).unwrap().shape, vec![5]);
        assert_eq!(read_shape(&path).unwrap(), vec![5]);
        write_f32(&path, &[2, 3, 4], &data).unwrap();
        assert_eq!(read_shape(&path).unwrap(), vec![2, 3, 4]);
    }

    #[test]
    fn rejects_garbage_and_short_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.npy");
        std::fs::write(&path, b"hello").unwrap();
        assert!(matches!(read_f32(&path), Err(NpyError::Format { .. })));
        assert!(matches!(read_shape(&path), Err(NpyError::Format { .. })));
        let mut bytes = encode_f32(&[4], &[1.0, 2.0, 3.0, 4.0]);
        bytes.truncate(bytes.len() - 2);
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(read_f32(&path), Err(NpyError::Format { .. })));
        assert!(matches!(read_shape(&path), Err(NpyError::Format { .. })));
    }
}
