//! Int8 pointwise (1x1) convolution: `u8` activations, `s8` weights, `i32` accumulators and a
//! requantizing epilogue; the packing of its weights; the shared requantization parameters.
//!
//! # Int8 layout: NCHW8c bytes
//! An int8 tensor has exactly the blocked shape of its `f32` counterpart (see the crate docs),
//! one byte per element: `[ceil(C/8)][H][W][8]` `u8`, channel `c` of pixel `p` at byte
//! `(c/8)*H*W*8 + p*8 + c%8`. So block offsets, per-half padding of Ghost modules and arena
//! plans carry over unchanged, and the 8 bytes of a pixel's block are two k-groups of 4 input
//! channels: a 32-bit broadcast of one k-group is exactly the activation operand of
//! `vpdpbusd` (each 32-bit lane: 4 `u8` activations times 4 `s8` weights of one output
//! channel, summed into an `i32`). Activations are always stored as `u8`: an ONNX `int8`
//! tensor with zero point `z` is stored as `q + 128` with zero point `z + 128` (the same real
//! values; the quantize/dequantize boundary kernels take the `u8` zero point).
//!
//! # Semantics (ONNX `QLinearConv`, exact)
//! With `x` the `u8` activation (zero point `zx`), `w` the `s8` weight (zero point 0,
//! symmetric: per-output-channel scales as `quantize_static` writes them), `b` the `i32` bias
//! (scale `sx * sw[o]`):
//! * `acc[o] = b[o] + sum_k (x[k] - zx) * w[o][k]` in wrapping `i32`;
//! * `f = f32(acc[o]) * scale[o] + offset` with `scale[o] = sx * sw[o] / sy` (an `f32`
//!   multiply, as ONNX Runtime's MLAS requantizes, then an `f32` add; the offset is 0 except
//!   for a fused HardSigmoid), clamped to `[min - zy, max - zy]`;
//! * `q = round_half_to_even(f) + zy`, which lies in `[min, max]`.
//!
//! `min`/`max` are the saturation bounds: `(0, 255)` plain, `(zy, 255)` for a fused ReLU, the
//! quantized bounds for a clip. With a residual ([`QResidual`]) `q` is then added the way a
//! `DequantizeLinear -> Add -> QuantizeLinear` chain does:
//! `out = clamp(round_half_to_even((q - zy) * conv_scale + (r - zr) * scale) + zo, 0, 255)`
//! (two `f32` multiplies and one add, never fused, clamped before rounding).
//! Every step is integer arithmetic or one IEEE operation, so every ISA is bit-identical to
//! the scalar reference (tests compare bits).
//!
//! # Packed weights ([`pack_pointwise_u8`])
//! Output channels in panels of up to [`PANEL_BLOCKS`] blocks, as in the `f32` format. Panel
//! `t` covers blocks `4t .. 4t + pw` (`w = pw * 8` channels) and starts at byte
//! `t * 32 * (K + 8)`: `w` little-endian `i32` biases with `-zx * sum_k w[o][k]` folded in,
//! `w` little-endian `f32` scales, then `K / 4` k-groups of `w * 4` bytes (channel `c`'s four
//! weights at `4c .. 4c + 4`). Length `n_pad * (k_pad + 8)` bytes.
//!
//! # Paths
//! AVX-512 VNNI: `vpdpbusd` on ymm, 4 pixels x 4 blocks tiles. AVX2 with AVX-VNNI (Intel
//! cores from Alder Lake on without AVX-512, Zen 5): the VEX-encoded ymm `vpdpbusd`, in the
//! AVX2 path's 4 x 2 tiles (16 ymm registers). AVX2 otherwise (also AVX-512 CPUs without
//! VNNI): `vpmaddubsw` would saturate `255 * -128 * 2` in its `i16` pair sums, so each
//! activation is split into its low 7 bits and its top bit, both exact, then widened with
//! `vpmaddwd` (six instructions per 32 multiply-adds instead of one); 4 x 2 tiles. Both store
//! 4 pixels of a block at once: the zero point is added in `i32`, and saturating packs plus
//! `vpmaxub`/`vpminub` replace the lower `f32` clamp (same bytes, see `QSimd::requant4`).
//! NEON: plain NEON (`u8 * s8` fits `i16`: widen, multiply, pairwise-add; no `sdot` yet).
//! SIMD128: `i32x4.dot_i16x8` on the widened operands. Scalar is the reference.

use crate::arch::{QSimd, QWide, Rq4};
use crate::error::{check, check_len, size, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::kernels::pointwise::PointwiseShape;
use crate::kernels::tiles::walk_row;
use crate::{Dst, Src, PANEL_BLOCKS};
use core::ptr;

/// Bytes of a packed int8 pointwise weight for `k_pad` inputs and `n_pad` outputs.
pub const fn pointwise_u8_packed_len(k_pad: usize, n_pad: usize) -> usize {
    n_pad * (k_pad + 8)
}

fn packed_len_blocks(k_blocks: usize, n_blocks: usize) -> usize {
    size(&[n_blocks, 8, size(&[k_blocks, 8]).saturating_add(8)])
}

/// Requantization of an int8 kernel's accumulators (see the module docs):
/// `q = clamp(round_half_to_even(f32(acc) * scale[o] + offset) + zero_point, min, max)` (the
/// product and the sum each rounded to `f32`), then an optional residual add. The per-channel
/// `scale` lives in the packed weights.
#[derive(Clone, Copy, Debug)]
pub struct Requant<'a> {
    /// Output zero point (`u8` domain; an `int8` tensor's zero point plus 128).
    pub zero_point: u8,
    /// Lower saturation bound: 0, or the zero point for a fused ReLU, or a clip's bound.
    pub min: u8,
    /// Upper saturation bound: 255, or a clip's bound.
    pub max: u8,
    /// Added to the scaled sum before clamping (0 for a plain conv; `beta / s_y` for a fused
    /// HardSigmoid, whose `alpha` is in the scales). Finite.
    pub offset: f32,
    /// Quantized residual added after the conv's own requantization.
    pub residual: Option<QResidual<'a>>,
}

impl Requant<'_> {
    /// Plain requantization to the full `u8` range with zero point `zero_point`.
    pub fn new(zero_point: u8) -> Self {
        Requant {
            zero_point,
            min: 0,
            max: 255,
            offset: 0.0,
            residual: None,
        }
    }
    /// Requantization with a fused ReLU (`min = zero_point`).
    pub fn relu(zero_point: u8) -> Self {
        Requant {
            min: zero_point,
            ..Requant::new(zero_point)
        }
    }
}

/// A quantized residual added in an int8 kernel's epilogue, as `DequantizeLinear` of both
/// inputs, `Add`, `QuantizeLinear` computes it: `out = clamp(round((q - zero_point of the
/// conv) * conv_scale + (r - zero_point) * scale) + out_zero_point, 0, 255)`.
#[derive(Clone, Copy, Debug)]
pub struct QResidual<'a> {
    /// The residual tensor (`u8` NCHW8c, same pixels), read at its block offset.
    pub src: Src<'a, u8>,
    /// The residual's zero point.
    pub zero_point: u8,
    /// Residual scale over the sum's scale, `s_r / s_out`.
    pub scale: f32,
    /// The conv output's scale over the sum's scale, `s_conv / s_out`.
    pub conv_scale: f32,
    /// Zero point of the sum.
    pub out_zero_point: u8,
}

/// Packs a row-major `[n_pad][k_pad]` `s8` weight matrix (zero point 0), `i32` biases and
/// `f32` requantization scales (`sx * sw[o] / sy`, finite and >= 0) into the format of the
/// module docs, folding the activation zero point `x_zero_point` into the biases. Padded rows
/// and columns must be zero. Run by ghostc at compile time.
pub fn pack_pointwise_u8(
    weights: &[i8],
    bias: &[i32],
    scale: &[f32],
    x_zero_point: u8,
    k_pad: usize,
    n_pad: usize,
    packed: &mut [u8],
) -> Result<(), Error> {
    check(
        k_pad.is_multiple_of(8) && k_pad > 0,
        "k_pad",
        "must be a positive multiple of 8",
    )?;
    check(
        n_pad.is_multiple_of(8) && n_pad > 0,
        "n_pad",
        "must be a positive multiple of 8",
    )?;
    check_len("weights", weights.len(), size(&[k_pad, n_pad]))?;
    check_len("bias", bias.len(), n_pad)?;
    check_len("scale", scale.len(), n_pad)?;
    check(
        scale[..n_pad].iter().all(|s| s.is_finite() && *s >= 0.0),
        "scale",
        "must be finite and >= 0",
    )?;
    check_len(
        "packed",
        packed.len(),
        packed_len_blocks(k_pad / 8, n_pad / 8),
    )?;
    let n_blocks = n_pad / 8;
    let mut t0 = 0;
    while t0 < n_blocks {
        let pw = PANEL_BLOCKS.min(n_blocks - t0);
        let base = t0 * 8 * (k_pad + 8);
        let width = pw * 8;
        let o0 = t0 * 8;
        for c in 0..width {
            let row = &weights[(o0 + c) * k_pad..(o0 + c + 1) * k_pad];
            let wsum = row.iter().fold(0i32, |a, &w| a.wrapping_add(w as i32));
            let b = bias[o0 + c].wrapping_sub((x_zero_point as i32).wrapping_mul(wsum));
            packed[base + 4 * c..base + 4 * c + 4].copy_from_slice(&b.to_le_bytes());
            let s = base + 4 * width + 4 * c;
            packed[s..s + 4].copy_from_slice(&scale[o0 + c].to_le_bytes());
            for g in 0..k_pad / 4 {
                let d = base + 8 * width + g * 4 * width + 4 * c;
                for t in 0..4 {
                    packed[d + t] = row[4 * g + t] as u8;
                }
            }
        }
        t0 += pw;
    }
    Ok(())
}

/// Validated requantization constants and residual of an int8 kernel.
#[derive(Clone, Copy)]
pub(crate) struct Rq {
    pub zp: i32,
    /// `min - zp`, `max - zp` as `f32` (clamp before rounding).
    pub lo: f32,
    pub hi: f32,
    /// [`Requant::offset`].
    pub off: f32,
    /// Residual (null when absent): `u8` NCHW8c at block 0 of the kernel's output range.
    pub r: *const u8,
    pub r_bs: usize,
    pub r_zp: i32,
    pub r_scale: f32,
    pub c_scale: f32,
    pub o_zp: i32,
}

impl Rq {
    /// Checks `rq` for an output of `blocks` blocks of `pixels` pixels.
    pub(crate) fn new(rq: &Requant<'_>, blocks: usize, pixels: usize) -> Result<Rq, Error> {
        check(rq.min <= rq.max, "requant.min", "must be <= requant.max")?;
        check(rq.offset.is_finite(), "requant.offset", "must be finite")?;
        let zp = rq.zero_point as i32;
        let mut out = Rq {
            zp,
            lo: (rq.min as i32 - zp) as f32,
            hi: (rq.max as i32 - zp) as f32,
            off: rq.offset,
            r: ptr::null(),
            r_bs: 0,
            r_zp: 0,
            r_scale: 0.0,
            c_scale: 0.0,
            o_zp: 0,
        };
        if let Some(res) = &rq.residual {
            check(
                res.scale.is_finite() && res.scale >= 0.0,
                "residual.scale",
                "must be finite and >= 0",
            )?;
            check(
                res.conv_scale.is_finite() && res.conv_scale >= 0.0,
                "residual.conv_scale",
                "must be finite and >= 0",
            )?;
            let ro = view(
                "residual",
                res.src.data.len(),
                res.src.block_offset,
                blocks,
                pixels,
            )?;
            // SAFETY: offset checked in bounds just above.
            out.r = unsafe { res.src.data.as_ptr().add(ro) };
            out.r_bs = pixels * 8;
            out.r_zp = res.zero_point as i32;
            out.r_scale = res.scale;
            out.c_scale = res.conv_scale;
            out.o_zp = res.out_zero_point as i32;
        }
        Ok(out)
    }
}

/// The requantization epilogue of one block of 8 accumulators of one pixel, in registers.
#[derive(Clone, Copy)]
pub(crate) struct RqV<S: QSimd> {
    r_nzp: S::V,
    r_scale: S::V,
    c_scale: S::V,
    o_zp: S::I,
    o_lo: S::V,
    o_hi: S::V,
    off: S::V,
    /// A non-zero offset: added after the scale, and no packed 4-pixel stores (which do not
    /// add one).
    pub(crate) has_off: bool,
    /// `zp`, `lo`, `hi` (also read by [`Self::store`]) and their bytes.
    rq4: Rq4<S>,
}

impl<S: QSimd> RqV<S> {
    #[inline(always)]
    pub(crate) fn new(s: S, rq: &Rq) -> Self {
        RqV {
            r_nzp: s.splat(-rq.r_zp as f32),
            r_scale: s.splat(rq.r_scale),
            c_scale: s.splat(rq.c_scale),
            o_zp: s.isplat(rq.o_zp),
            o_lo: s.splat(-rq.o_zp as f32),
            o_hi: s.splat((255 - rq.o_zp) as f32),
            off: s.splat(rq.off),
            has_off: rq.off != 0.0,
            rq4: Rq4 {
                zp: s.isplat(rq.zp),
                lo: s.splat(rq.lo),
                hi: s.splat(rq.hi),
                min: (rq.lo as i32 + rq.zp) as u8,
                max: (rq.hi as i32 + rq.zp) as u8,
            },
        }
    }

    /// The constants of the plain requantization (no residual, no offset), for kernels that
    /// pack it themselves; `None` with an offset.
    #[inline(always)]
    #[cfg_attr(any(not(target_arch = "x86_64"), miri), allow(dead_code))]
    pub(crate) fn plain(&self) -> Option<Rq4<S>> {
        (!self.has_off).then_some(self.rq4)
    }

    /// Requantizes `acc` with per-channel `scale` and stores 8 bytes at `y`; with `r`
    /// non-null, adds the residual's 8 bytes at `r` first.
    ///
    /// # Safety
    /// `y` valid for writing 8 bytes; `r` null or valid for reading 8 bytes.
    #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
    #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
    pub(crate) unsafe fn store(self, s: S, acc: S::I, scale: S::V, y: *mut u8, r: *const u8) {
        // SAFETY: forwarded.
        unsafe { self.store_f32(s, s.to_f32(acc), scale, y, r) }
    }

    /// [`Self::store`] of an accumulator already in `f32`.
    ///
    /// # Safety
    /// As [`Self::store`].
    #[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
    #[cfg_attr(not(ghost_runtime_opt0), inline(always))]
    pub(crate) unsafe fn store_f32(self, s: S, acc: S::V, scale: S::V, y: *mut u8, r: *const u8) {
        let mut f = s.mul(acc, scale);
        if self.has_off {
            f = s.add(f, self.off);
        }
        let f = s.clamp(f, self.rq4.lo, self.rq4.hi);
        let q = s.round(f);
        if r.is_null() {
            // SAFETY: forwarded.
            unsafe { s.store_u8(y, s.iadd(q, self.rq4.zp)) };
        } else {
            // q - zp is `round(f)`: exact small integers in f32.
            let a = s.mul(s.to_f32(q), self.c_scale);
            // SAFETY: forwarded.
            let rv = unsafe { s.load_u8(r) };
            let b = s.mul(s.add(rv, self.r_nzp), self.r_scale);
            let v = s.clamp(s.add(a, b), self.o_lo, self.o_hi);
            // SAFETY: forwarded.
            unsafe { s.store_u8(y, s.iadd(s.round(v), self.o_zp)) };
        }
    }

    /// [`Self::store_f32`] of 4 consecutive pixels (`y` and a non-null `r` 32 bytes each):
    /// without a residual or an offset, one [`QSimd::requant4_f32`] (the same bytes, packed
    /// once).
    ///
    /// # Safety
    /// `y` valid for writing 32 bytes; `r` null or valid for reading 32 bytes.
    #[inline(always)]
    pub(crate) unsafe fn store4_f32(
        self,
        s: S,
        acc: [S::V; 4],
        scale: S::V,
        y: *mut u8,
        r: *const u8,
    ) {
        if r.is_null() && !self.has_off {
            // SAFETY: forwarded.
            unsafe { s.requant4_f32(y, acc, scale, self.rq4) };
        } else {
            for (i, a) in acc.into_iter().enumerate() {
                // A null residual stays null (an offset alone brings us here).
                let ri = if r.is_null() {
                    r
                } else {
                    r.wrapping_add(8 * i)
                };
                // SAFETY: pixel i of the caller's 4.
                unsafe { self.store_f32(s, a, scale, y.add(8 * i), ri) };
            }
        }
    }
}

/// Shape and pointers of a validated int8 pointwise layer (byte strides; every pointer at
/// block 0, pixel 0 of its view).
#[derive(Clone, Copy)]
pub(crate) struct QPwArgs {
    pub w: *const u8,
    pub kb: usize,
    pub nb: usize,
    pub px: usize,
    pub x: *const u8,
    pub x_bs: usize,
    pub y: *mut u8,
    pub y_bs: usize,
    pub rq: Rq,
    /// Output blocks `blk0 .. blk1` are computed.
    pub blk0: usize,
    pub blk1: usize,
}

impl QPwArgs {
    /// The same layer restricted to pixels `p0 .. p1`.
    pub(crate) fn pixels(&self, p0: usize, p1: usize) -> QPwArgs {
        let mut rq = self.rq;
        if !rq.r.is_null() {
            rq.r = rq.r.wrapping_add(p0 * 8);
        }
        QPwArgs {
            px: p1 - p0,
            x: self.x.wrapping_add(p0 * 8),
            y: self.y.wrapping_add(p0 * 8),
            rq,
            ..*self
        }
    }
}

struct Cols {
    /// First k-group row of the column group's weights, and the row stride in bytes.
    w: *const u8,
    w_stride: usize,
    bias: *const u8,
    scale: *const u8,
    ob0: usize,
}

/// # Safety
/// Pointers valid for the extents of the shape: `w` for `pointwise_u8_packed_len(kb*8, nb*8)`
/// bytes, `x` for `(kb-1)*x_bs + px*8`, `y` and `rq.r` likewise with `nb` blocks; `y` overlaps
/// nothing else.
#[inline(always)]
pub(crate) unsafe fn run<
    S: QWide,
    const MR: usize,
    const NB: usize,
    const M2: usize,
    const M1: usize,
    const M1K: usize,
>(
    s: S,
    a: &QPwArgs,
) {
    let k = a.kb * 8;
    let rqv = RqV::new(s, &a.rq);
    let mut t0 = a.blk0 - a.blk0 % PANEL_BLOCKS;
    while t0 < a.blk1 {
        let pw = PANEL_BLOCKS.min(a.nb - t0);
        let width = pw * 8;
        // SAFETY: panel offsets stay within the packed length (module docs).
        let panel = unsafe { a.w.add(t0 * 8 * (k + 8)) };
        let mut j0 = a.blk0.max(t0) - t0;
        let j1 = a.blk1.min(t0 + pw) - t0;
        while j0 < j1 {
            let nbh = NB.min(j1 - j0);
            // SAFETY: all within the panel.
            let c = unsafe {
                Cols {
                    w: panel.add(8 * width + j0 * 32),
                    w_stride: 4 * width,
                    bias: panel.add(j0 * 32),
                    scale: panel.add(4 * width + j0 * 32),
                    ob0: t0 + j0,
                }
            };
            // SAFETY: forwarded; `nbh` blocks from `ob0` exist.
            unsafe {
                if a.px == 1 {
                    one_pixel(s, a, &rqv, &c, nbh);
                } else if nbh == NB {
                    cols::<S, MR, NB>(s, a, &rqv, &c)
                } else {
                    // Narrower remainders in taller tiles: pairs of blocks (one register
                    // each with `QWide`), then a last single block.
                    let mut j = 0;
                    while j < nbh {
                        let cj = Cols {
                            w: c.w.add(j * 32),
                            bias: c.bias.add(j * 32),
                            scale: c.scale.add(j * 32),
                            ob0: c.ob0 + j,
                            ..c
                        };
                        if j + 2 <= nbh && NB > 2 {
                            cols::<S, M2, 2>(s, a, &rqv, &cj);
                            j += 2;
                        } else if a.kb >= 4 {
                            cols::<S, M1, 1>(s, a, &rqv, &cj);
                            j += 1;
                        } else {
                            cols::<S, M1K, 1>(s, a, &rqv, &cj);
                            j += 1;
                        }
                    }
                }
            }
            j0 += nbh;
        }
        t0 += pw;
    }
}

#[inline(always)]
unsafe fn cols<S: QWide, const MR: usize, const NB: usize>(
    s: S,
    a: &QPwArgs,
    rq: &RqV<S>,
    c: &Cols,
) {
    walk_row!(a.px, MR, |p0, m, lo| {
        // SAFETY: walk_row keeps p0 + m <= px; for a short row (m < MR) the tile clamps its
        // pixel indices to px - 1.
        unsafe { tile::<S, MR, NB>(s, a, rq, c, p0, m, lo) }
    });
}

/// A one-pixel input (an SE block's 1x1 convs, a classifier head's): `nbh` blocks from
/// `c.ob0`, two per register where the path has pairs. A tile of `MR` pixels would compute the
/// one pixel `MR` times over; here each register instead keeps [`PARTS`] partial sums, the
/// k-groups of two input blocks spread over them, so its dependency chain is a quarter as long.
/// The sum is the same `i32` in any order (wrapping addition), so the bytes are the tiles'.
///
/// # Safety
/// As [`tile`] with `a.px == 1`; `nbh` blocks of the column group exist.
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn one_pixel<S: QWide>(s: S, a: &QPwArgs, rq: &RqV<S>, c: &Cols, nbh: usize) {
    let mut j = 0;
    while j < nbh {
        // SAFETY: blocks j .. of the column group exist (the caller's contract); the offsets
        // stay inside the panel.
        let cj = unsafe {
            Cols {
                w: c.w.add(j * 32),
                bias: c.bias.add(j * 32),
                scale: c.scale.add(j * 32),
                ob0: c.ob0 + j,
                ..*c
            }
        };
        // SAFETY: forwarded; the blocks named exist.
        unsafe {
            if j + 4 <= nbh {
                one_pixel_pairs::<S, 2>(s, a, rq, &cj);
                j += 4;
            } else if j + 2 <= nbh {
                one_pixel_pairs::<S, 1>(s, a, rq, &cj);
                j += 2;
            } else {
                one_pixel_block(s, a, rq, &cj);
                j += 1;
            }
        }
    }
}

/// The k-groups of a one-pixel column group ([`one_pixel`]): `$body` runs with `$p` the
/// partial sum (the k-groups of two input blocks spread over [`PARTS`]; constant once the
/// loops unroll, so the accumulators stay in registers), `$x` the group's 4 activation bytes
/// and `$w` its weight row.
macro_rules! one_pixel_k_groups {
    ($a:expr, $c:expr, |$p:ident, $x:ident, $w:ident| $body:block) => {{
        let mut $w = $c.w;
        let mut kb = 0;
        while kb < $a.kb {
            for u in 0..2 {
                if u == 1 && kb + 1 == $a.kb {
                    break;
                }
                for half in 0..2 {
                    let $p = 2 * u + half;
                    // Block kb + u < a.kb of the pixel, bytes 4 * half .. + 4.
                    let $x = $a.x.wrapping_add((kb + u) * $a.x_bs + 4 * half);
                    $body
                    // Past the panel after the last row, never read: see `dots`.
                    $w = $w.wrapping_add($c.w_stride);
                }
            }
            kb += 2;
        }
    }};
}

/// Partial sums per register in [`one_pixel`].
const PARTS: usize = 4;

/// [`one_pixel`] for `2 * NP` blocks, two per register.
///
/// # Safety
/// As [`one_pixel`] with `2 * NP` blocks.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn one_pixel_pairs<S: QWide, const NP: usize>(s: S, a: &QPwArgs, rq: &RqV<S>, c: &Cols) {
    let zero = [0u8; 64];
    // SAFETY: 64 bytes of `zero`; NP pairs of bias blocks from `c.bias`.
    let mut acc = unsafe { [[s.ipload(zero.as_ptr()); NP]; PARTS] };
    for j in 0..NP {
        // SAFETY: as above.
        acc[0][j] = unsafe { s.ipload(c.bias.add(j * 64)) };
    }
    one_pixel_k_groups!(a, c, |p, x, wrow| {
        // SAFETY: 4 bytes of the pixel; k-group row of the panel, blocks 2j, 2j + 1 of the
        // group.
        unsafe {
            let xv = s.xpbcast(x);
            for j in 0..NP {
                acc[p][j] = s.pdot(acc[p][j], xv, s.wpload(wrow.add(j * 64)));
            }
        }
    });
    for j in 0..NP {
        let mut v = s.ihalves(acc[0][j]);
        for part in &acc[1..] {
            let h = s.ihalves(part[j]);
            v = [s.iadd(v[0], h[0]), s.iadd(v[1], h[1])];
        }
        for (b, v) in v.into_iter().enumerate() {
            // SAFETY: block 2j + b of the group (scale, output and residual views).
            unsafe { one_pixel_store(s, a, rq, c, 2 * j + b, v) };
        }
    }
}

/// [`one_pixel`] for one block.
///
/// # Safety
/// As [`one_pixel`] with one block.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn one_pixel_block<S: QWide>(s: S, a: &QPwArgs, rq: &RqV<S>, c: &Cols) {
    let mut acc = [s.isplat(0); PARTS];
    // SAFETY: the block's 8 biases.
    acc[0] = unsafe { s.iload(c.bias) };
    one_pixel_k_groups!(a, c, |p, x, wrow| {
        // SAFETY: as in `one_pixel_pairs`, one block.
        acc[p] = unsafe { s.dot(acc[p], s.xbcast(x), s.wload(wrow)) };
    });
    let v = s.iadd(s.iadd(acc[0], acc[1]), s.iadd(acc[2], acc[3]));
    // SAFETY: block 0 of the group.
    unsafe { one_pixel_store(s, a, rq, c, 0, v) };
}

/// Requantizes and stores block `j` of a one-pixel column group.
///
/// # Safety
/// Block `j` of the group exists.
#[inline(always)]
unsafe fn one_pixel_store<S: QWide>(s: S, a: &QPwArgs, rq: &RqV<S>, c: &Cols, j: usize, v: S::I) {
    let ob = c.ob0 + j;
    // SAFETY: block ob < nb of the output and residual views; the group's scale block j.
    unsafe {
        let sc = s.load(c.scale.add(j * 32).cast());
        let r = if a.rq.r.is_null() {
            ptr::null()
        } else {
            a.rq.r.add(ob * a.rq.r_bs)
        };
        rq.store(s, v, sc, a.y.add(ob * a.y_bs), r);
    }
}

/// The accumulators of an `MR x NB` tile, one block per register: bias plus the dot products
/// over all k-groups.
///
/// # Safety
/// As [`tile`]; `xp` are the tile's pixel pointers.
#[allow(clippy::needless_range_loop)]
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn dots<S: QSimd, const MR: usize, const NB: usize>(
    s: S,
    a: &QPwArgs,
    c: &Cols,
    xp: &[*const u8; MR],
) -> [[S::I; NB]; MR] {
    let mut acc = [[s.isplat(0); NB]; MR];
    for j in 0..NB {
        // SAFETY: NB bias blocks from here.
        let b = unsafe { s.iload(c.bias.add(j * 32)) };
        for i in 0..MR {
            acc[i][j] = b;
        }
    }
    let mut wrow = c.w;
    for kb in 0..a.kb {
        let off = kb * a.x_bs;
        for half in 0..2 {
            let mut wv = [s.wzero(); NB];
            for j in 0..NB {
                // SAFETY: k-group row < K/4 of the panel, block j < pw.
                wv[j] = unsafe { s.wload(wrow.add(j * 32)) };
            }
            for i in 0..MR {
                // SAFETY: block kb of a valid pixel, bytes 4*half .. +4.
                let xv = unsafe { s.xbcast(xp[i].add(off + 4 * half)) };
                for j in 0..NB {
                    acc[i][j] = s.dot(acc[i][j], xv, wv[j]);
                }
            }
            // After the last k-group row this points past the panel by the column offset
            // (`j0 * 32` bytes, beyond the allocation for the last panel) and is never read:
            // `wrapping_add`, since `add` must stay in bounds (Miri reported the UB).
            wrow = wrow.wrapping_add(c.w_stride);
        }
    }
    acc
}

/// [`dots`] two blocks per register ([`QWide`]; `NB` even): `acc[i][j]` holds blocks `2j`
/// and `2j + 1` of pixel `i` (`j < NB / 2`; the rest of the array is unused).
///
/// # Safety
/// As [`dots`].
#[allow(clippy::needless_range_loop)]
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn dots_wide<S: QWide, const MR: usize, const NB: usize>(
    s: S,
    a: &QPwArgs,
    c: &Cols,
    xp: &[*const u8; MR],
) -> [[S::IP; NB]; MR] {
    // Pairs per row; the arrays are NB long and their unused tail folds away.
    let np = NB / 2;
    // SAFETY: NB bias blocks from here (the first pair initializes the unused tail too).
    let b0 = unsafe { s.ipload(c.bias) };
    let mut acc = [[b0; NB]; MR];
    for j in 0..np {
        // SAFETY: NB bias blocks from here.
        let b = unsafe { s.ipload(c.bias.add(j * 64)) };
        for i in 0..MR {
            acc[i][j] = b;
        }
    }
    let mut wrow = c.w;
    for kb in 0..a.kb {
        let off = kb * a.x_bs;
        for half in 0..2 {
            // SAFETY: k-group row < K/4 of the panel, blocks 2j, 2j + 1 < pw.
            let w0 = unsafe { s.wpload(wrow) };
            let mut wv = [w0; NB];
            for j in 1..np {
                // SAFETY: as above.
                wv[j] = unsafe { s.wpload(wrow.add(j * 64)) };
            }
            for i in 0..MR {
                // SAFETY: block kb of a valid pixel, bytes 4*half .. +4.
                let xv = unsafe { s.xpbcast(xp[i].add(off + 4 * half)) };
                for j in 0..np {
                    acc[i][j] = s.pdot(acc[i][j], xv, wv[j]);
                }
            }
            // Past the panel after the last row, never read: see `dots`.
            wrow = wrow.wrapping_add(c.w_stride);
        }
    }
    acc
}

/// One `MR x NB` tile for pixels `p0 .. p0 + m` (rows past `m` re-read the last pixel),
/// storing rows `lo .. m`.
#[allow(clippy::needless_range_loop)]
#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn tile<S: QWide, const MR: usize, const NB: usize>(
    s: S,
    a: &QPwArgs,
    rq: &RqV<S>,
    c: &Cols,
    p0: usize,
    m: usize,
    lo: usize,
) {
    let mut xp = [a.x; MR];
    for i in 0..MR {
        // SAFETY: pixel index < px.
        xp[i] = unsafe { a.x.add((p0 + i.min(m - 1)) * 8) };
    }
    let mut sc = [s.zero(); NB];
    for j in 0..NB {
        // SAFETY: NB scale blocks from here.
        sc[j] = unsafe { s.load(c.scale.add(j * 32).cast()) };
    }
    // Without a residual or an offset, whole groups of 4 rows go through `requant4` (one
    // 32-byte store per block; two blocks at a time from pair registers); the rest row by
    // row.
    let quad = a.rq.r.is_null() && !rq.has_off && MR.is_multiple_of(4) && lo == 0 && m == MR;
    let acc = if NB.is_multiple_of(2) {
        // SAFETY: forwarded contract of `tile`.
        let accp = unsafe { dots_wide::<S, MR, NB>(s, a, c, &xp) };
        if quad {
            for i in (0..MR).step_by(4) {
                for j in 0..NB / 2 {
                    let ob = c.ob0 + 2 * j;
                    let y = a.y.wrapping_add(ob * a.y_bs + (p0 + i) * 8);
                    let q = [accp[i][j], accp[i + 1][j], accp[i + 2][j], accp[i + 3][j]];
                    // SAFETY: pixels p0+i .. +4 < px of blocks ob, ob + 1 < nb (run's
                    // contract).
                    unsafe {
                        s.prequant4([y, y.add(a.y_bs)], q, [sc[2 * j], sc[2 * j + 1]], rq.rq4)
                    };
                }
            }
            return;
        }
        let mut acc = [[s.isplat(0); NB]; MR];
        for i in 0..MR {
            for j in 0..NB / 2 {
                [acc[i][2 * j], acc[i][2 * j + 1]] = s.ihalves(accp[i][j]);
            }
        }
        acc
    } else {
        // SAFETY: forwarded contract of `tile`.
        unsafe { dots::<S, MR, NB>(s, a, c, &xp) }
    };
    if quad {
        // Odd NB (one block): pixels i .. i + 4 and i + 4 .. i + 8 of a block requantize as the
        // two halves of one pair register (16 lanes with AVX-512), a last 4 on their own.
        macro_rules! octs {
            ($($i:literal)*) => {$(
                for j in 0..NB {
                    let y = a.y.wrapping_add((c.ob0 + j) * a.y_bs + (p0 + $i) * 8);
                    if $i + 8 <= MR {
                        let q = [
                            s.ijoin([acc[$i][j], acc[$i + 4][j]]),
                            s.ijoin([acc[$i + 1][j], acc[$i + 5][j]]),
                            s.ijoin([acc[$i + 2][j], acc[$i + 6][j]]),
                            s.ijoin([acc[$i + 3][j], acc[$i + 7][j]]),
                        ];
                        // SAFETY: pixels p0+$i .. +8 < px of block ob0 + j < nb (run's
                        // contract).
                        unsafe { s.prequant4([y, y.add(32)], q, [sc[j], sc[j]], rq.rq4) };
                    } else if $i + 4 <= MR {
                        let q = [acc[$i][j], acc[$i + 1][j], acc[$i + 2][j], acc[$i + 3][j]];
                        // SAFETY: pixels p0+$i .. +4 < px of block ob0 + j < nb (run's
                        // contract).
                        unsafe { s.requant4(y, q, sc[j], rq.rq4) };
                    }
                }
            )*};
        }
        octs!(0 8);
        return;
    }
    macro_rules! rows {
        ($($i:literal)*) => {$(
            if $i < MR && $i >= lo && $i < m {
                let pix = (p0 + $i) * 8;
                for j in 0..NB {
                    let ob = c.ob0 + j;
                    // SAFETY: block ob < nb, pixel < px in each view (run's contract).
                    unsafe {
                        let r = if a.rq.r.is_null() {
                            ptr::null()
                        } else {
                            a.rq.r.add(ob * a.rq.r_bs + pix)
                        };
                        rq.store(s, acc[$i][j], sc[j], a.y.add(ob * a.y_bs + pix), r);
                    }
                }
            }
        )*};
    }
    rows!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    debug_assert!(MR <= 16, "tile stores at most 16 rows");
}

/// Int8 pointwise instantiations: (MR, NB, M2, M1, M1K) per path (`M2` rows for a remainder
/// of two blocks, `M1` for one, `M1K` for one when the input has fewer than 32 channels).
/// VNNI's remainder tiles grew from 8 and 12 pixels to 12 and 16 (GhostNet-1.0 int8, whole
/// model with the depthwise change of the same day 0.966-0.983 of the time before in two
/// alternating A/Bs; per-step medians of 4 alternating profiles, us: 672 -> 56 @14 18.9 ->
/// 17.6, 480 -> 56 @14 13.6 -> 12.7, 120 -> 20 @28 7.3 -> 6.6). A short input kept 12 (16 -> 8
/// @112 10.8 vs 11.7 us at 16, measured before single blocks requantized 8 pixels at a time).
/// Caveat: two builds differing only in one more comparison here moved single steps by up to
/// 7 %, so single-step differences of that size are not evidence.
pub(crate) unsafe fn run_dispatch(k: Kernels, a: &QPwArgs) {
    qdispatch!(k, run, a, QPwArgs; vnni [4, 4, 12, 16, 12]; avx2 [4, 2, 4, 8, 8]; scalar [4, 2, 4, 4, 4]);
}

impl Kernels {
    /// Int8 1x1 convolution of one NCHW8c `u8` image (semantics in [`crate::kernels::qpointwise`]):
    /// reads input blocks `[input.block_offset, +k_blocks)`, writes output blocks
    /// `[output.block_offset, +n_blocks)`. `packed` comes from [`pack_pointwise_u8`].
    pub fn pointwise_u8(
        self,
        packed: &[u8],
        shape: PointwiseShape,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
        requant: Requant<'_>,
    ) -> Result<(), Error> {
        let a = pointwise_u8_args(packed, shape, input, output, &requant)?;
        // SAFETY: `pointwise_u8_args` checked every extent; `output` is a unique borrow.
        unsafe { run_dispatch(self, &a) };
        Ok(())
    }
}

/// The checks of [`Kernels::pointwise_u8`], returning the raw arguments of the whole layer.
pub(crate) fn pointwise_u8_args(
    packed: &[u8],
    shape: PointwiseShape,
    input: Src<'_, u8>,
    output: Dst<'_, u8>,
    requant: &Requant<'_>,
) -> Result<QPwArgs, Error> {
    let PointwiseShape {
        k_blocks,
        n_blocks,
        pixels,
    } = shape;
    check(k_blocks > 0, "shape.k_blocks", "must be positive")?;
    check(n_blocks > 0, "shape.n_blocks", "must be positive")?;
    check(pixels > 0, "shape.pixels", "must be positive")?;
    check_len(
        "packed",
        packed.len(),
        packed_len_blocks(k_blocks, n_blocks),
    )?;
    let xo = view(
        "input",
        input.data.len(),
        input.block_offset,
        k_blocks,
        pixels,
    )?;
    let yo = view(
        "output",
        output.data.len(),
        output.block_offset,
        n_blocks,
        pixels,
    )?;
    let rq = Rq::new(requant, n_blocks, pixels)?;
    Ok(QPwArgs {
        w: packed.as_ptr(),
        kb: k_blocks,
        nb: n_blocks,
        px: pixels,
        // SAFETY: offsets checked by `view`.
        x: unsafe { input.data.as_ptr().add(xo) },
        x_bs: pixels * 8,
        // SAFETY: offsets checked by `view`.
        y: unsafe { output.data.as_mut_ptr().add(yo) },
        y_bs: pixels * 8,
        rq,
        blk0: 0,
        blk1: n_blocks,
    })
}
