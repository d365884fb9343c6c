//! Glue the generated code needs between kernels: disjoint views into the scratch arena, the
//! embedded weight blob as `f32`, channel permutations between blocked layouts, and a few
//! elementwise functions with no epilogue form. None of these is hot.

use crate::error::{check, check_len, size, Error};
use crate::kernels::vmath::Transcendental;
use crate::Kernels;

/// Splits `scratch` into `N` disjoint mutable regions given as `(offset, len)` in any order,
/// returned in the order given. Errors (never panics) if a region is out of bounds or two
/// overlap. This is how generated code borrows several arena buffers at once without `unsafe`.
pub fn regions<'a, const N: usize>(
    scratch: &'a mut [f32],
    ranges: [(usize, usize); N],
) -> Result<[&'a mut [f32]; N], Error> {
    let mut order = [0usize; N];
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    order.sort_unstable_by_key(|&i| ranges[i].0);
    let mut out: [Option<&'a mut [f32]>; N] = [(); N].map(|_| None);
    let mut rest = scratch;
    let mut pos = 0usize;
    for &i in &order {
        let (offset, len) = ranges[i];
        check(offset >= pos, "ranges", "arena regions overlap")?;
        let end = offset.checked_add(len);
        check_len("scratch", pos + rest.len(), end.unwrap_or(usize::MAX))?;
        let tail = core::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut(offset - pos);
        let (mine, tail) = tail.split_at_mut(len);
        out[i] = Some(mine);
        rest = tail;
        pos = offset + len;
    }
    let mut result: [&'a mut [f32]; N] = [(); N].map(|_| <&mut [f32]>::default());
    for (slot, region) in result.iter_mut().zip(out) {
        match region {
            Some(r) => *slot = r,
            None => {
                return Err(Error::Shape {
                    arg: "ranges",
                    detail: "region not assigned",
                })
            }
        }
    }
    Ok(result)
}

/// Views `f32` storage as its bytes: how generated code keeps `u8` tensors in its `f32`
/// scratch arena and packed int8 weights in its `f32` weight blob (four bytes a float, in
/// memory order).
pub fn as_bytes(x: &[f32]) -> &[u8] {
    // SAFETY: `u8` has alignment 1 and no invalid bit patterns; the byte slice covers exactly
    // the memory of `x` (`4 * len` bytes) and borrows it for the same lifetime.
    unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<u8>(), core::mem::size_of_val(x)) }
}

/// [`as_bytes`] for writing: any bytes written are a valid `f32` bit pattern.
pub fn as_bytes_mut(x: &mut [f32]) -> &mut [u8] {
    let len = core::mem::size_of_val(x);
    // SAFETY: as in `as_bytes`; the unique borrow of `x` moves to the returned slice, and every
    // bit pattern written through it is a valid `f32`.
    unsafe { core::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<u8>(), len) }
}

/// Views little-endian bytes as `f32` values in place. `None` when the bytes are not 4-byte
/// aligned, not a whole number of floats, or the target is big-endian.
pub fn f32_view(bytes: &[u8]) -> Option<&[f32]> {
    if cfg!(target_endian = "big") || !bytes.len().is_multiple_of(4) {
        return None;
    }
    // SAFETY: every bit pattern is a valid f32 and `align_to` only yields the middle part at
    // f32 alignment; we accept the view only when no bytes fall outside it.
    let (head, floats, tail) = unsafe { bytes.align_to::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(floats)
}

/// Copies channels between two NCHW8c tensors of `pixels` pixels: for each `(from, to)` lane
/// pair, `dst[to / 8][p][to % 8] = src[from / 8][p][from % 8]`. With `clear`, the destination's
/// first `dst_len` floats are zeroed first so unmapped (padding) lanes are zero.
pub fn remap_channels(
    src: &[f32],
    pairs: &[(u32, u32)],
    pixels: usize,
    dst: &mut [f32],
    dst_len: usize,
    clear: bool,
) -> Result<(), Error> {
    check_len("dst", dst.len(), dst_len)?;
    for &(from, to) in pairs {
        let (from, to) = (from as usize, to as usize);
        check_len("src", src.len(), (from / 8 + 1) * pixels * 8)?;
        check_len("dst", dst_len, (to / 8 + 1) * pixels * 8)?;
    }
    if clear {
        dst[..dst_len].fill(0.0);
    }
    // Runs of consecutive pairs with one destination block (the usual order) are copied block
    // by block: a whole-block copy when the run maps a source block's 8 lanes in order, else
    // pixel by pixel with the 8 (or fewer) lanes gathered at once.
    let mut i = 0;
    while i < pairs.len() {
        let block = pairs[i].1 as usize / 8;
        let mut lanes: [Option<usize>; 8] = [None; 8];
        let mut n = 0;
        while i + n < pairs.len() && pairs[i + n].1 as usize / 8 == block {
            let (from, to) = pairs[i + n];
            lanes[to as usize % 8] = Some(from as usize);
            n += 1;
        }
        i += n;
        let d = &mut dst[block * pixels * 8..][..pixels * 8];
        let whole = lanes[0]
            .filter(|&f| f % 8 == 0)
            .and_then(|f| (0..8).all(|l| lanes[l] == Some(f + l)).then_some(f / 8));
        if let Some(sb) = whole {
            d.copy_from_slice(&src[sb * pixels * 8..][..pixels * 8]);
            continue;
        }
        if lanes.iter().all(Option::is_some) {
            let at = lanes.map(|f| {
                let f = f.unwrap_or(0);
                (f / 8) * pixels * 8 + f % 8
            });
            for (p, out) in d.chunks_exact_mut(8).enumerate() {
                for (o, &a) in out.iter_mut().zip(&at) {
                    *o = src[a + p * 8];
                }
            }
            continue;
        }
        for (l, from) in lanes.iter().enumerate() {
            let Some(from) = *from else { continue };
            let s = &src[(from / 8) * pixels * 8..][..pixels * 8];
            for p in 0..pixels {
                d[p * 8 + l] = s[p * 8 + from % 8];
            }
        }
    }
    Ok(())
}

/// DepthToSpace between NCHW8c tensors: an `h x w` source, an `(h * b) x (w * b)`
/// destination. `pairs` is `b * b` groups of equally many `(from, to)` lane pairs; group
/// `i * b + j` moves offset `(i, j)` of every `b x b` output block:
/// `dst[to / 8][(y * b + i) * w * b + x * b + j][to % 8] = src[from / 8][y * w + x][from % 8]`.
/// The destination's first `dst_len` floats are zeroed first, so unmapped (padding) lanes are
/// zero.
///
/// Deliberately not done here: SIMD. For `b = 2` in PyTorch's CRD order the 8 lanes of an
/// output vector come from 4 input vectors (a 4 x 8 transpose); not written until a model
/// needs this step fast.
pub fn depth_to_space(
    src: &[f32],
    pairs: &[(u32, u32)],
    h: usize,
    w: usize,
    b: usize,
    dst: &mut [f32],
    dst_len: usize,
) -> Result<(), Error> {
    check(b > 0, "b", "must be positive")?;
    let groups = b.saturating_mul(b);
    check(
        pairs.len().is_multiple_of(groups),
        "pairs",
        "must be blocksize^2 groups of equal size",
    )?;
    let (hw, ow) = (size(&[h, w]), size(&[w, b]));
    let ohw = size(&[hw, groups]);
    check_len("dst", dst.len(), dst_len)?;
    for &(from, to) in pairs {
        let (from, to) = (from as usize, to as usize);
        check_len("src", src.len(), size(&[from / 8 + 1, hw, 8]))?;
        check_len("dst", dst_len, size(&[to / 8 + 1, ohw, 8]))?;
    }
    dst[..dst_len].fill(0.0);
    let per = pairs.len() / groups;
    if per == 0 {
        return Ok(());
    }
    for (g, group) in pairs.chunks_exact(per).enumerate() {
        let (i, j) = (g / b, g % b);
        for &(from, to) in group {
            let (from, to) = (from as usize, to as usize);
            let s = &src[(from / 8) * hw * 8..][..hw * 8];
            let d = &mut dst[(to / 8) * ohw * 8..][..ohw * 8];
            for y in 0..h {
                let row = (y * b + i) * ow + j;
                for x in 0..w {
                    d[(row + x * b) * 8 + to % 8] = s[(y * w + x) * 8 + from % 8];
                }
            }
        }
    }
    Ok(())
}

/// Copies an NCHW8c tensor of `blocks x src_pixels` into pixels `offset .. offset +
/// src_pixels` of one with `dst_pixels` per block (a Concat along the pixel axis: rank-3 `L`,
/// or whole rows `H` of rank 4): `dst[b][offset + p] = src[b][p]`.
pub fn copy_pixels(
    src: &[f32],
    src_pixels: usize,
    dst: &mut [f32],
    dst_pixels: usize,
    offset: usize,
    blocks: usize,
) -> Result<(), Error> {
    let fits = offset
        .checked_add(src_pixels)
        .is_some_and(|end| end <= dst_pixels);
    check(fits, "offset", "src pixels past the end of dst")?;
    check_len("src", src.len(), size(&[blocks, src_pixels, 8]))?;
    check_len("dst", dst.len(), size(&[blocks, dst_pixels, 8]))?;
    for b in 0..blocks {
        let s = &src[b * src_pixels * 8..][..src_pixels * 8];
        dst[(b * dst_pixels + offset) * 8..][..src_pixels * 8].copy_from_slice(s);
    }
    Ok(())
}

/// Gathers logical channels out of an NCHW8c tensor into plain NCHW:
/// `dst[c][p] = src[phys[c] / 8][p][phys[c] % 8]`.
pub fn gather_channels(
    src: &[f32],
    phys: &[u32],
    pixels: usize,
    dst: &mut [f32],
) -> Result<(), Error> {
    check_len("dst", dst.len(), phys.len() * pixels)?;
    let top = phys.iter().max().map_or(0, |&l| l as usize / 8 + 1);
    check_len("src", src.len(), top * pixels * 8)?;
    if pixels == 1 && phys.iter().enumerate().all(|(c, &l)| l as usize == c) {
        // One pixel in a dense layout (a classifier's logits): NCHW8c is NCHW already.
        dst.copy_from_slice(&src[..phys.len()]);
        return Ok(());
    }
    for (c, &lane) in phys.iter().enumerate() {
        let lane = lane as usize;
        let s = &src[(lane / 8) * pixels * 8..][..pixels * 8];
        for (p, d) in dst[c * pixels..(c + 1) * pixels].iter_mut().enumerate() {
            *d = s[p * 8 + lane % 8];
        }
    }
    Ok(())
}

/// Elementwise functions applied in place by [`unary`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu {
        /// Negative slope.
        alpha: f32,
    },
}

/// Applies `f` to every element of `x` in place, the transcendental ones by the vector
/// functions of `arch::math` on the ISA of `k` (the bits the epilogues give on that ISA).
pub fn unary(k: Kernels, f: Unary, x: &mut [f32]) {
    match f {
        Unary::Sigmoid => k.transcendental(Transcendental::Sigmoid, x),
        Unary::Tanh => k.transcendental(Transcendental::Tanh, x),
        Unary::LeakyRelu { alpha } => x.iter_mut().for_each(|v| {
            if *v < 0.0 {
                *v *= alpha
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_disjoint_in_given_order_and_checked() {
        let mut s = [0.0f32; 20];
        let [a, b, c] = regions(&mut s, [(10, 5), (0, 4), (4, 6)]).unwrap();
        assert_eq!((a.len(), b.len(), c.len()), (5, 4, 6));
        a[0] = 1.0;
        b[0] = 2.0;
        c[0] = 3.0;
        assert_eq!((s[10], s[0], s[4]), (1.0, 2.0, 3.0));
        assert!(regions(&mut s, [(0, 5), (4, 2)]).is_err());
        assert!(regions(&mut s, [(18, 5)]).is_err());
        assert!(regions(&mut s, [(usize::MAX, 5)]).is_err());
    }

    #[test]
    fn byte_views_cover_the_floats_in_memory_order() {
        let mut s = [1.0f32, -2.0];
        assert_eq!(as_bytes(&s).len(), 8);
        assert_eq!(as_bytes(&s)[4..8], (-2.0f32).to_ne_bytes());
        as_bytes_mut(&mut s)[..4].copy_from_slice(&3.5f32.to_ne_bytes());
        assert_eq!(s, [3.5, -2.0]);
    }

    #[test]
    fn remap_and_gather_move_the_right_lanes() {
        // 2 blocks x 3 pixels; move lane 9 (block 1, lane 1) to lane 2.
        let src: [f32; 48] = core::array::from_fn(|i| i as f32);
        let mut dst = [7.0f32; 24];
        remap_channels(&src, &[(9, 2)], 3, &mut dst, 24, true).unwrap();
        assert_eq!(dst[2], src[24 + 1]);
        assert_eq!(dst[8 + 2], src[24 + 8 + 1]);
        assert_eq!(dst[0], 0.0);
        let mut plain = [0.0f32; 6];
        gather_channels(&src, &[9, 0], 3, &mut plain).unwrap();
        assert_eq!(plain, [25.0, 33.0, 41.0, 0.0, 8.0, 16.0]);
        assert!(gather_channels(&src, &[16], 3, &mut plain).is_err());
        // One pixel: the dense layout is copied, any other goes lane by lane.
        let mut logits = [0.0f32; 11];
        let dense: [u32; 11] = core::array::from_fn(|c| c as u32);
        gather_channels(&src, &dense, 1, &mut logits).unwrap();
        assert_eq!(logits[..], src[..11]);
        let mut two = [0.0f32; 2];
        gather_channels(&src, &[9, 0], 1, &mut two).unwrap();
        assert_eq!(two, [9.0, 0.0]);
        assert!(gather_channels(&src[..8], &dense, 1, &mut logits).is_err());
    }

    /// Every path of `remap_channels` (a whole block, all 8 lanes gathered from two blocks, a
    /// partial block, a block whose pairs are not adjacent, no clearing) against one lane
    /// at a time.
    #[test]
    fn remap_paths_equal_lane_by_lane_copies() {
        let pixels = 5;
        let src: [f32; 4 * 5 * 8] = core::array::from_fn(|i| i as f32 + 0.5);
        let interleave: [(u32, u32); 8] = core::array::from_fn(|l| {
            let from = if l % 2 == 0 { l / 2 } else { 24 + l / 2 };
            (from as u32, 8 + l as u32)
        });
        let mut pairs: [(u32, u32); 8 + 8 + 3 + 2] = [(0, 0); 21];
        for (l, pair) in pairs[..8].iter_mut().enumerate() {
            *pair = (16 + l as u32, 16 + l as u32); // block 2 -> block 2, whole
        }
        pairs[8..16].copy_from_slice(&interleave); // block 1 from blocks 0 and 3
        pairs[16..19].copy_from_slice(&[(5, 1), (30, 3), (9, 6)]); // block 0, partial
        pairs[19..].copy_from_slice(&[(2, 0), (31, 24)]); // block 0 again, then block 3
        for clear in [true, false] {
            let mut got = [-1.0f32; 4 * 5 * 8];
            let mut want = got;
            remap_channels(&src, &pairs, pixels, &mut got, 160, clear).unwrap();
            if clear {
                want.fill(0.0);
            }
            for &(from, to) in &pairs {
                let (from, to) = (from as usize, to as usize);
                for p in 0..pixels {
                    want[(to / 8) * pixels * 8 + p * 8 + to % 8] =
                        src[(from / 8) * pixels * 8 + p * 8 + from % 8];
                }
            }
            assert_eq!(got, want, "clear {clear}");
        }
    }

    /// DepthToSpace with blocksize 2 in both channel orders against the NCHW definition: 12
    /// input channels (two blocks, the second half padding) of 3 x 5 pixels into 3 output
    /// channels (one block) of 6 x 10; padding lanes come out zero.
    #[test]
    fn depth_to_space_matches_the_nchw_definition() {
        const B: usize = 2;
        let (h, w, c_out) = (3, 5, 3);
        let hw = h * w;
        // NCHW source value of channel c at pixel p, placed at lane c of the blocked layout.
        let value = |c: usize, p: usize| (c * 100 + p) as f32 + 0.25;
        let mut src = [0.0f32; 2 * 15 * 8];
        for c in 0..12 {
            for p in 0..hw {
                src[(c / 8) * hw * 8 + p * 8 + c % 8] = value(c, p);
            }
        }
        for crd in [false, true] {
            let channel = |c: usize, i: usize, j: usize| {
                if crd {
                    (c * B + i) * B + j
                } else {
                    (i * B + j) * c_out + c
                }
            };
            let mut pairs = [(0u32, 0u32); 12];
            for (g, group) in pairs.chunks_exact_mut(c_out).enumerate() {
                for (c, pair) in group.iter_mut().enumerate() {
                    *pair = (channel(c, g / B, g % B) as u32, c as u32);
                }
            }
            let mut got = [-1.0f32; 60 * 8];
            depth_to_space(&src, &pairs, h, w, B, &mut got, 60 * 8).unwrap();
            for oy in 0..h * B {
                for ox in 0..w * B {
                    for lane in 0..8 {
                        let want = if lane < c_out {
                            let c = channel(lane, oy % B, ox % B);
                            value(c, (oy / B) * w + ox / B)
                        } else {
                            0.0
                        };
                        let at = (oy * w * B + ox) * 8 + lane;
                        assert_eq!(got[at], want, "crd {crd} ({oy}, {ox}) lane {lane}");
                    }
                }
            }
        }
    }

    #[test]
    fn copy_pixels_places_each_block_at_the_offset() {
        // 2 blocks x 2 pixels into 2 blocks x 5 pixels at pixel 3.
        let src: [f32; 32] = core::array::from_fn(|i| i as f32 + 1.0);
        let mut dst = [0.0f32; 80];
        copy_pixels(&src, 2, &mut dst, 5, 3, 2).unwrap();
        assert_eq!(dst[24..40], src[..16]);
        assert_eq!(dst[64..80], src[16..]);
        assert!(dst[..24].iter().chain(&dst[40..64]).all(|&v| v == 0.0));
        assert!(copy_pixels(&src, 2, &mut dst, 5, 4, 2).is_err());
        assert!(copy_pixels(&src, 2, &mut dst[..79], 5, 3, 2).is_err());
    }

    #[test]
    fn weights_view_round_trips() {
        #[repr(C, align(64))]
        struct A([u8; 8]);
        let a = A([0, 0, 128, 63, 0, 0, 0, 64]);
        assert_eq!(f32_view(&a.0), Some(&[1.0f32, 2.0][..]));
        assert_eq!(f32_view(&a.0[1..5]), None);
    }

    #[test]
    fn unary_functions_on_every_isa() {
        for k in crate::Isa::ALL.into_iter().filter_map(Kernels::with_isa) {
            let mut x = [0.0f32, 100.0, -100.0, f32::NAN];
            unary(k, Unary::Sigmoid, &mut x);
            assert!(
                (x[0] - 0.5).abs() < 1e-6
                    && (x[1] - 1.0).abs() < 1e-6
                    && x[2].abs() < 1e-6
                    && x[3].is_nan(),
                "{k:?}: {x:?}"
            );
            // Nine values: one full vector and a tail.
            let src = [0.5f32, -3.0, 30.0, -30.0, 1e-3, 0.0, 2.5, -0.75, 9.0];
            let mut t = src;
            unary(k, Unary::Tanh, &mut t);
            for (v, x) in t.iter().zip(src) {
                let r = x.tanh();
                assert!((v - r).abs() < 1e-6, "{k:?}: tanh({x}) = {v}, want {r}");
            }
            let mut l = [-2.0f32, 3.0, 0.0, f32::NEG_INFINITY];
            unary(k, Unary::LeakyRelu { alpha: 0.1 }, &mut l);
            assert_eq!(l, [-0.2, 3.0, 0.0, f32::NEG_INFINITY], "{k:?}");
        }
    }
}
