//! The int8 stem: a dense convolution (`groups = 1`, square kernel `K <= 8`, any stride) over a
//! quantized model input with few channels, which the 1x1 and depthwise kernels do not cover.
//!
//! Two kernels:
//! * [`Kernels::quantize_padded_u8`] quantizes the plain NCHW `f32` input (ONNX
//!   `QuantizeLinear`, the formula of [`crate::kernels::quantize`]) into planes padded with the
//!   zero point, so the convolution reads every tap from memory without a border case;
//! * [`Kernels::stem_u8`] convolves that padded `u8` input with `s8` weights into an NCHW8c
//!   `u8` output, requantized as [`crate::kernels::qpointwise`] does. Each tap row of `K`
//!   input pixels is read as `ceil(K / 4)` groups of 4 consecutive bytes (the taps past `K`
//!   have weight 0), broadcast to a block's 8 lanes: one `vpdpbusd` (or the AVX2 split) per
//!   group, block and pixel. Padding with the zero point makes `sum (x - zx) w` the QDQ
//!   graph's exact integer sum (`-zx * sum(w)` is folded into the bias at packing).
//!
//! # Packed weights ([`pack_stem_u8`])
//! Per output block `b` ([`stem_u8_packed_len`] bytes in all): 8 `i32` biases (with
//! `-zx * sum(w)` folded in), 8 `f32` scales, then for each input channel `c`, tap row `ky`
//! and group `g`, 32 bytes: lane `l`'s 4 weights `w[8b + l][c][ky][4g .. 4g + 4]` (0 past `K`
//! and past the output channels).
//!
//! Deliberately not done here: a residual (a stem has none), thread splitting (one image's
//! stem is a few tens of microseconds), kernels wider than 8.

use crate::arch::QWide;
use crate::error::{check, check_len, size, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::kernels::qpointwise::{Requant, Rq, RqV};
use crate::kernels::quantize::{check_scale, quant_exec, QuantArgs};
use crate::Dst;
use core::ptr;

/// Shape of an int8 stem convolution over an input already padded ([`Kernels::stem_u8`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StemShape {
    /// Input channels.
    pub c_in: usize,
    /// Height of one padded input plane (the image with its padding, which holds the zero
    /// point).
    pub hp: usize,
    /// Width of one padded input plane (with any extra columns the last groups read).
    pub wp: usize,
    /// Kernel size (square, 1 to 8).
    pub k: usize,
    /// Stride (both dimensions).
    pub stride: usize,
    /// Output channels.
    pub c_out: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl StemShape {
    /// Groups of 4 taps per tap row.
    pub const fn groups(&self) -> usize {
        self.k.div_ceil(4)
    }

    /// The smallest padded width for an image of width `w`, left and right padding `pl`, `pr`,
    /// and `ow` output columns: wide enough for the last column's 4-byte groups.
    pub const fn padded_width(
        w: usize,
        pl: usize,
        pr: usize,
        k: usize,
        stride: usize,
        ow: usize,
    ) -> usize {
        let need = read_width(k, stride, ow);
        let plain = w + pl + pr;
        if plain > need {
            plain
        } else {
            need
        }
    }
}

/// Columns of a padded row that `ow` output columns read: the last one's 4-byte groups end at
/// `(ow - 1) * stride + 4 * ceil(k / 4)`.
const fn read_width(k: usize, stride: usize, ow: usize) -> usize {
    if ow == 0 {
        0
    } else {
        (ow - 1) * stride + 4 * k.div_ceil(4)
    }
}

/// Bytes of one output block's packed weights: biases, scales and a 32-byte row per input
/// channel, tap row and group of 4 taps.
const fn block_bytes(c_in: usize, k: usize) -> usize {
    64 + c_in * k * k.div_ceil(4) * 32
}

/// Bytes of the packed weights of a stem with `c_in` inputs, kernel `k` and `c_out` outputs.
pub const fn stem_u8_packed_len(c_in: usize, k: usize, c_out: usize) -> usize {
    c_out.div_ceil(8) * block_bytes(c_in, k)
}

/// Packs `s8` weights `[c_out][c_in][k][k]`, `i32` biases and `f32` requantization scales
/// (`sx * sw[o] / sy`, finite and >= 0) into the format of the module docs, folding the input
/// zero point `x_zero_point` into the biases. Run by ghostc at compile time.
#[allow(clippy::too_many_arguments)]
pub fn pack_stem_u8(
    weights: &[i8],
    bias: &[i32],
    scales: &[f32],
    c_in: usize,
    k: usize,
    c_out: usize,
    x_zero_point: u8,
    out: &mut [u8],
) -> Result<(), Error> {
    check((1..=8).contains(&k), "k", "must be 1 to 8")?;
    check(c_in > 0 && c_out > 0, "c_in", "channels must be positive")?;
    check_len("weights", weights.len(), size(&[c_out, c_in, k, k]))?;
    check_len("bias", bias.len(), c_out)?;
    check_len("scales", scales.len(), c_out)?;
    check(
        scales.iter().all(|s| s.is_finite() && *s >= 0.0),
        "scales",
        "must be finite and >= 0",
    )?;
    check_len("out", out.len(), stem_u8_packed_len(c_in, k, c_out))?;
    out.fill(0);
    let g = k.div_ceil(4);
    let per_block = block_bytes(c_in, k);
    for o in 0..c_out {
        let (b, l) = (o / 8, o % 8);
        let blk = &mut out[b * per_block..(b + 1) * per_block];
        let w = &weights[o * c_in * k * k..(o + 1) * c_in * k * k];
        let sum: i64 = w.iter().map(|&v| v as i64).sum();
        let folded = bias[o] as i64 - x_zero_point as i64 * sum;
        let folded = i32::try_from(folded).map_err(|_| Error::Shape {
            arg: "bias",
            detail: "the bias with the zero point's share folded in overflows i32",
        })?;
        blk[4 * l..4 * l + 4].copy_from_slice(&folded.to_le_bytes());
        blk[32 + 4 * l..32 + 4 * l + 4].copy_from_slice(&scales[o].to_le_bytes());
        for c in 0..c_in {
            for ky in 0..k {
                for gi in 0..g {
                    let row = 64 + ((c * k + ky) * g + gi) * 32 + 4 * l;
                    for t in 0..4 {
                        let kx = 4 * gi + t;
                        if kx < k {
                            blk[row + t] = w[(c * k + ky) * k + kx] as u8;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A validated stem (pointers at the input's first byte and the output's block 0).
struct QStemArgs {
    w: *const u8,
    x: *const u8,
    y: *mut u8,
    sh: StemShape,
    rq: Rq,
}

/// # Safety
/// Pointers valid for the extents of `sh` (checked by [`Kernels::stem_u8`]); `y` overlaps
/// nothing else.
///
/// Tiles of `MR` output pixels x `NB` blocks: `MR * NB` independent accumulator chains, enough
/// to cover the dot products' latency (4 chains left GhostNet-1.0's stem latency-bound at 71
/// us on a Zen 5 core, 8 x 2 took 43 with per-block requantization, 38 with the pair one
/// below; a variant with one zmm per pair of blocks and 8 chains took 60). No closures in here: a closure can lose the caller's target features and its
/// inlining (the first version called `vcvtdq2ps` out of line that way).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn run<S: QWide, const MR: usize, const NB: usize>(s: S, a: &QStemArgs) {
    let sh = a.sh;
    let g = sh.groups();
    let per_block = block_bytes(sh.c_in, sh.k);
    let plane = sh.hp * sh.wp;
    let px = sh.oh * sh.ow;
    let blocks = sh.c_out.div_ceil(8);
    let rqv = RqV::new(s, &a.rq);
    let mut b0 = 0;
    while b0 < blocks {
        let nb = NB.min(blocks - b0);
        // Block j of the tile (a short tile repeats its last block, not stored).
        let mut wb = [a.w; NB];
        for (j, p) in wb.iter_mut().enumerate() {
            *p = a.w.wrapping_add((b0 + j.min(nb - 1)) * per_block);
        }
        let mut bias = [s.isplat(0); NB];
        let mut scale = [s.zero(); NB];
        for j in 0..NB {
            // SAFETY: the block's 32 bias bytes and 32 scale bytes.
            unsafe {
                bias[j] = s.iload(wb[j]);
                scale[j] = s.load(wb[j].add(32).cast());
            }
        }
        for oy in 0..sh.oh {
            let mut ox0 = 0;
            while ox0 < sh.ow {
                let n = MR.min(sh.ow - ox0);
                // Pixel i's first tap byte in plane 0 (a short tile repeats its last pixel).
                let mut x0 = [a.x; MR];
                for (i, p) in x0.iter_mut().enumerate() {
                    let ox = (ox0 + i).min(sh.ow - 1);
                    *p = a.x.wrapping_add(oy * sh.stride * sh.wp + ox * sh.stride);
                }
                let mut acc = [bias; MR];
                let mut r = 64;
                for c in 0..sh.c_in {
                    for ky in 0..sh.k {
                        let off = c * plane + ky * sh.wp;
                        for gi in 0..g {
                            let mut w = [s.wzero(); NB];
                            for j in 0..NB {
                                // SAFETY: tap row (c, ky, gi) of block j.
                                w[j] = unsafe { s.wload(wb[j].add(r)) };
                            }
                            for i in 0..MR {
                                // SAFETY: 4 bytes of the padded input: the shape check makes
                                // (oh - 1) * stride + k <= hp rows and the last group's bytes
                                // of the last column fit wp.
                                let x = unsafe { s.xbcast(x0[i].add(off + 4 * gi)) };
                                for j in 0..NB {
                                    acc[i][j] = s.dot(acc[i][j], x, w[j]);
                                }
                            }
                            r += 32;
                        }
                    }
                }
                if let (2, 2, Some(c), true) = (NB, nb, rqv.plain(), n == MR) {
                    // A full tile of two blocks: 4 pixels of both requantize in one pair
                    // register (16 lanes with AVX-512: half the operations of two blocks).
                    // `NB - 1` is 1 here; written so the one-block instantiation compiles.
                    // SAFETY: pixels ox0 .. ox0 + MR of row oy of blocks b0, b0 + 1.
                    unsafe {
                        let y0 = a.y.add((b0 * px + oy * sh.ow + ox0) * 8);
                        let y1 = y0.add(px * 8);
                        for i in (0..MR).step_by(4) {
                            let q = [
                                s.ijoin([acc[i][0], acc[i][NB - 1]]),
                                s.ijoin([acc[i + 1][0], acc[i + 1][NB - 1]]),
                                s.ijoin([acc[i + 2][0], acc[i + 2][NB - 1]]),
                                s.ijoin([acc[i + 3][0], acc[i + 3][NB - 1]]),
                            ];
                            let sc = [scale[0], scale[NB - 1]];
                            s.prequant4([y0.add(8 * i), y1.add(8 * i)], q, sc, c);
                        }
                    }
                    ox0 += n;
                    continue;
                }
                for j in 0..nb {
                    // SAFETY: pixels ox0 .. ox0 + n of row oy of block b0 + j.
                    unsafe {
                        let y = a.y.add(((b0 + j) * px + oy * sh.ow + ox0) * 8);
                        let mut i = 0;
                        while i + 4 <= n {
                            let four = [
                                s.to_f32(acc[i][j]),
                                s.to_f32(acc[i + 1][j]),
                                s.to_f32(acc[i + 2][j]),
                                s.to_f32(acc[i + 3][j]),
                            ];
                            rqv.store4_f32(s, four, scale[j], y.add(8 * i), ptr::null());
                            i += 4;
                        }
                        while i < n {
                            rqv.store(s, acc[i][j], scale[j], y.add(8 * i), ptr::null());
                            i += 1;
                        }
                    }
                }
                ox0 += n;
            }
        }
        b0 += nb;
    }
}

/// # Safety
/// As [`run`].
unsafe fn stem_exec(k: Kernels, a: &QStemArgs) {
    qdispatch!(k, run, a, QStemArgs; vnni [8, 2]; avx2 [4, 2]; scalar [4, 1])
}

/// Rows of a plain `f32` plane quantized into rows of a padded `u8` plane (the image part of
/// [`Kernels::quantize_padded_u8`] on AVX-512).
#[cfg(all(target_arch = "x86_64", not(miri)))]
pub(crate) struct QuantRows {
    /// Row 0's first float; rows are `w` floats apart.
    pub(crate) f: *const f32,
    /// Row 0's first byte; rows are `stride` bytes apart.
    pub(crate) q: *mut u8,
    pub(crate) rows: usize,
    pub(crate) w: usize,
    pub(crate) stride: usize,
    pub(crate) scale: f32,
    /// Zero point, `u8` storage.
    pub(crate) zp: i32,
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
use crate::kernels::qelementwise_zmm::quant_rows as zmm_rows;

impl Kernels {
    /// Int8 stem convolution (module docs) of one image: `input` holds `c_in` padded planes
    /// of `hp x wp` bytes (zero point `input_zero_point` in the padding), `packed` comes from
    /// [`pack_stem_u8`] with the same zero point, the output is `ceil(c_out / 8)` NCHW8c
    /// blocks of `oh x ow` pixels at the view's block offset. `requant` must have no residual.
    pub fn stem_u8(
        self,
        packed: &[u8],
        shape: StemShape,
        input: &[u8],
        output: Dst<'_, u8>,
        requant: Requant<'_>,
    ) -> Result<(), Error> {
        let sh = shape;
        check((1..=8).contains(&sh.k), "shape.k", "must be 1 to 8")?;
        check(sh.stride > 0, "shape.stride", "must be positive")?;
        check(
            sh.c_in > 0 && sh.c_out > 0,
            "shape",
            "channels must be positive",
        )?;
        check(
            requant.residual.is_none(),
            "requant.residual",
            "a stem takes none",
        )?;
        if sh.oh > 0 && sh.ow > 0 {
            check(
                (sh.oh - 1) * sh.stride + sh.k <= sh.hp,
                "shape.hp",
                "must hold (oh - 1) * stride + k rows",
            )?;
            check(
                read_width(sh.k, sh.stride, sh.ow) <= sh.wp,
                "shape.wp",
                "must hold (ow - 1) * stride + 4 * ceil(k / 4) columns",
            )?;
        }
        check_len(
            "packed",
            packed.len(),
            stem_u8_packed_len(sh.c_in, sh.k, sh.c_out),
        )?;
        check_len("input", input.len(), size(&[sh.c_in, sh.hp, sh.wp]))?;
        let blocks = sh.c_out.div_ceil(8);
        let px = size(&[sh.oh, sh.ow]);
        let yo = view("output", output.data.len(), output.block_offset, blocks, px)?;
        let rq = Rq::new(&requant, blocks, px)?;
        let a = QStemArgs {
            w: packed.as_ptr(),
            x: input.as_ptr(),
            y: output.data[yo..].as_mut_ptr(),
            sh,
            rq,
        };
        // SAFETY: extents checked above; the output is a unique borrow.
        unsafe { stem_exec(self, &a) };
        Ok(())
    }

    /// Quantizes a plain NCHW `f32` image of `c` channels of `h x w` (ONNX `QuantizeLinear`,
    /// the formula of [`Kernels::quantize_u8`], same bytes) into `c` planes of `hp x wp` bytes
    /// with the image at row `top`, column `left`, every other byte the zero point: the input
    /// of [`Kernels::stem_u8`].
    #[allow(clippy::too_many_arguments)]
    pub fn quantize_padded_u8(
        self,
        scale: f32,
        zero_point: u8,
        (c, h, w): (usize, usize, usize),
        (hp, wp): (usize, usize),
        (top, left): (usize, usize),
        input: &[f32],
        output: &mut [u8],
    ) -> Result<(), Error> {
        check_scale(scale, "scale")?;
        check(top + h <= hp, "hp", "must hold top + h rows")?;
        check(left + w <= wp, "wp", "must hold left + w columns")?;
        check_len("input", input.len(), size(&[c, h, w]))?;
        check_len("output", output.len(), size(&[c, hp, wp]))?;
        let full = w / 8 * 8;
        for ci in 0..c {
            let planes = &mut output[ci * hp * wp..(ci + 1) * hp * wp];
            // The padding only: the image's bytes are written below.
            planes[..top * wp].fill(zero_point);
            planes[(top + h) * wp..].fill(zero_point);
            for r in 0..h {
                let row = &mut planes[(top + r) * wp..(top + r + 1) * wp];
                row[..left].fill(zero_point);
                row[left + w..].fill(zero_point);
            }
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            {
                let rows = QuantRows {
                    f: input[ci * h * w..].as_ptr(),
                    q: planes[top * wp + left..].as_mut_ptr(),
                    rows: h,
                    w,
                    stride: wp,
                    scale,
                    zp: zero_point as i32,
                };
                // SAFETY: `h` rows of `w` floats of channel ci's plane of `input`, and of `w`
                // bytes `wp` apart from row `top`, column `left` of plane ci (`top + h <= hp`,
                // `left + w <= wp`, checked above); distinct buffers.
                if unsafe { crate::kernels::qelementwise_zmm::try_run(self, &rows, zmm_rows) } {
                    continue;
                }
            }
            for r in 0..h {
                let row = &mut planes[(top + r) * wp..(top + r + 1) * wp];
                let src = &input[(ci * h + r) * w..(ci * h + r + 1) * w];
                let dst = &mut row[left..left + w];
                let a = QuantArgs {
                    // Only read (quantize).
                    f: src.as_ptr().cast_mut(),
                    q: dst.as_mut_ptr(),
                    n: full / 8,
                    scale,
                    zp: zero_point as i32,
                    quantize: true,
                };
                // SAFETY: `full` floats of `src` and bytes of `dst` (both `w` long); distinct
                // buffers.
                unsafe { quant_exec(self, &a) };
                // The row's last `w % 8` values: one more vector through a copy.
                let rest = w - full;
                if rest > 0 {
                    let mut tf = [0f32; 8];
                    let mut tq = [0u8; 8];
                    tf[..rest].copy_from_slice(&src[full..]);
                    let t = QuantArgs {
                        f: tf.as_mut_ptr(),
                        q: tq.as_mut_ptr(),
                        n: 1,
                        ..a
                    };
                    // SAFETY: one vector of each local array.
                    unsafe { quant_exec(self, &t) };
                    dst[full..].copy_from_slice(&tq[..rest]);
                }
            }
        }
        Ok(())
    }
}
