//! Layout conversion between plain NCHW (one image, `[C][H*W]`) and NCHW8c
//! (`[ceil(C/8)][H*W][8]`, padded lanes zero). Memory-bound transposes; plain loops suffice.

use crate::error::{check_len, size, Error};

/// Number of `f32` of an NCHW8c tensor with `channels` channels and `pixels` pixels.
pub const fn nchw8c_len(channels: usize, pixels: usize) -> usize {
    channels.div_ceil(8) * 8 * pixels
}

/// NCHW -> NCHW8c for one image of `channels x pixels`; padded lanes are set to zero.
pub fn nchw_to_nchw8c(
    src: &[f32],
    channels: usize,
    pixels: usize,
    dst: &mut [f32],
) -> Result<(), Error> {
    check_len("src", src.len(), size(&[channels, pixels]))?;
    check_len("dst", dst.len(), size(&[channels.div_ceil(8), 8, pixels]))?;
    if pixels == 0 {
        // Nothing to copy; `channels` is unbounded by the slices here.
        return Ok(());
    }
    for cb in 0..channels.div_ceil(8) {
        let block = &mut dst[cb * pixels * 8..(cb + 1) * pixels * 8];
        for (p, lanes) in block.chunks_exact_mut(8).enumerate() {
            for (l, v) in lanes.iter_mut().enumerate() {
                let c = cb * 8 + l;
                *v = if c < channels {
                    src[c * pixels + p]
                } else {
                    0.0
                };
            }
        }
    }
    Ok(())
}

/// NCHW8c -> NCHW for one image of `channels x pixels`; padded lanes are dropped.
pub fn nchw8c_to_nchw(
    src: &[f32],
    channels: usize,
    pixels: usize,
    dst: &mut [f32],
) -> Result<(), Error> {
    check_len("src", src.len(), size(&[channels.div_ceil(8), 8, pixels]))?;
    check_len("dst", dst.len(), size(&[channels, pixels]))?;
    if pixels == 0 {
        return Ok(());
    }
    for (c, plane) in dst.chunks_exact_mut(pixels).take(channels).enumerate() {
        let block = &src[(c / 8) * pixels * 8..];
        for (p, v) in plane.iter_mut().enumerate() {
            *v = block[p * 8 + c % 8];
        }
    }
    Ok(())
}
