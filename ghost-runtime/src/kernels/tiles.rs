//! The walk of a row of pixels in register tiles of `MR` pixels, shared by the f32 and int8
//! pointwise kernels: full tiles, then one overlapping last tile that recomputes pixels
//! already stored and stores only the new ones, so no tile ever reads past the row.
//!
//! A macro, not a function taking a closure: a closure is a function of its own without the
//! caller's `#[target_feature]`s, so the SIMD intrinsics inside it stop inlining (measured:
//! the f32 pointwise kernel ran 33-77x slower through a closure).

/// Eight zero floats, aligned for a vector load: the input a conv tap or transform reads
/// where it leaves the image (the padding ONNX defines), through the same pointer-based load
/// as a real pixel.
#[repr(align(32))]
pub(crate) struct Zeros(pub(crate) [f32; 8]);
pub(crate) static ZEROS: Zeros = Zeros([0.0; 8]);

/// `walk_row!(px, MR, |p0, m, lo| body)` runs `body` for each tile of a `px`-pixel row:
/// pixels `p0 .. p0 + m` are computed (`m <= MR`; a kernel re-reads the last pixel for rows
/// past `m`) and rows `lo .. m` are stored.
macro_rules! walk_row {
    ($px:expr, $mr:expr, |$p0:ident, $m:ident, $lo:ident| $body:expr) => {{
        let px: usize = $px;
        let mr: usize = $mr;
        if px >= mr {
            let mut p = 0;
            while p + mr <= px {
                let ($p0, $m, $lo) = (p, mr, 0usize);
                $body;
                p += mr;
            }
            if p < px {
                // Overlapping last tile: recompute px-MR..px, store only p..px.
                let ($p0, $m, $lo) = (px - mr, mr, mr - (px - p));
                $body;
            }
        } else {
            let ($p0, $m, $lo) = (0usize, px, 0usize);
            $body;
        }
    }};
}
pub(crate) use walk_row;

#[cfg(test)]
mod tests {
    /// Every pixel is stored exactly once and every computed range stays inside the row.
    #[test]
    fn each_pixel_stored_once() {
        for px in 1..40 {
            let mut stored = [0u32; 40];
            walk_row!(px, 6, |p0, m, lo| {
                assert!(
                    m <= 6 && p0 + m <= px && lo <= m,
                    "px {px}: tile {p0} {m} {lo}"
                );
                for n in &mut stored[p0 + lo..p0 + m] {
                    *n += 1;
                }
            });
            assert!(stored[..px].iter().all(|&n| n == 1), "px {px}: {stored:?}");
        }
    }
}
