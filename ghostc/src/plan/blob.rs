//! The weight blob: every constant the generated code reads, packed once at compile time by
//! lowering into one little-endian byte string that the generated crate embeds with
//! `include_bytes!` in a 64-byte-aligned static and uses in place.

/// Alignment of every entry, in f32 elements (64 bytes: one cache line, any SIMD load).
pub const ALIGN_F32: usize = 16;

/// Accumulates f32 arrays; each starts on a 64-byte boundary.
#[derive(Default, Debug, Clone)]
pub struct WeightBlob {
    data: Vec<f32>,
}

impl WeightBlob {
    pub fn new() -> Self {
        WeightBlob::default()
    }

    /// Appends `values` and returns their offset in f32 elements.
    pub fn push(&mut self, values: &[f32]) -> usize {
        let offset = self.data.len().div_ceil(ALIGN_F32) * ALIGN_F32;
        self.data.resize(offset, 0.0);
        self.data.extend_from_slice(values);
        offset
    }

    /// Appends bytes (packed int8 weights) four to a float in memory order, zero-padded to a
    /// whole float; generated code reads them back with `ghost_runtime::glue::as_bytes`.
    /// Returns their offset in f32 elements.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> usize {
        let floats: Vec<f32> = bytes
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                f32::from_le_bytes(b)
            })
            .collect();
        self.push(&floats)
    }

    /// Length in f32 elements, padded to the alignment.
    pub fn len(&self) -> usize {
        self.data.len().div_ceil(ALIGN_F32) * ALIGN_F32
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The blob as f32 values (for in-process execution).
    pub fn as_f32(&self) -> Vec<f32> {
        let mut v = self.data.clone();
        v.resize(self.len(), 0.0);
        v
    }

    /// Little-endian bytes, the file the generated crate embeds.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * 4);
        for v in self.as_f32() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_round_trip() {
        let mut b = WeightBlob::new();
        assert_eq!(b.push(&[1.0, 2.0, 3.0]), 0);
        assert_eq!(b.push(&[4.0]), 16);
        assert_eq!(b.len(), 32);
        let bytes = b.to_le_bytes();
        assert_eq!(bytes.len(), 128);
        assert_eq!(f32::from_le_bytes(bytes[64..68].try_into().unwrap()), 4.0);
        let raw: Vec<u8> = (1..=6).collect();
        assert_eq!(b.push_bytes(&raw), 32);
        assert_eq!(b.to_le_bytes()[128..136], [1, 2, 3, 4, 5, 6, 0, 0]);
    }
}
