//! Channel concatenation of int8 (`u8`-stored) NCHW8c tensors, one input per call, with the
//! input requantized to the output's parameters on the way (com.microsoft `QLinearConcat`, or
//! `DequantizeLinear -> Concat -> QuantizeLinear` in a QDQ graph).
//!
//! * Conversion: `q_out = clamp(round_half_to_even(f32(q_in - zp_in) * s_in / s_out) + zp_out,
//!   0, 255)`: a dequantize then a quantize with the same `f32` operations as
//!   [`crate::kernels::quantize`] (the product first, then an IEEE division), so every path
//!   gives the bytes the QDQ graph defines. It depends on the input byte alone: each call
//!   converts the 256 possible bytes once (8 lanes at a time, with those operations) into a
//!   table, and the tensor goes through the table (`QSimd::lut_u8`: two `vpermi2b` per 64
//!   bytes with AVX-512 VBMI, a byte at a time elsewhere) instead of a division per byte.
//!   An input whose parameters equal the output's is copied.
//! * Placement: input channel `c` goes to output lane `channel_offset + c` of the dense layout.
//!   An offset on a block boundary copies whole blocks; any other offset shifts each pixel's 8
//!   bytes across two output blocks as one 64-bit word (little-endian lane order), merging
//!   with the lanes another input wrote.
//! * The input whose channels end the output also writes the padding lanes of the last output
//!   block, with the output zero point (they dequantize to 0), so no lane is left stale.
//!
//! * Spans: the conversion works on a run of pixels of every block of an input with any
//!   block strides, so [`crate::kernels::qdepthwise`]'s Ghost concatenation converts a
//!   group of lines of the depthwise conv (and the rows of its input) as a whole tensor is.
//!
//! Deliberately not done here: a shuffle-based table lookup for AVX2 or NEON (16 `vpshufb` /
//! `tbl` per 16 bytes; not measured whether that beats a byte at a time).

use crate::arch::QSimd;
use crate::error::{check, Error};
use crate::isa::{qdispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::kernels::quantize::check_scale;
use crate::{Dst, Src};

/// Quantization parameters of one input and of the output of an int8 concatenation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct U8Requant {
    /// Scale of the input.
    pub in_scale: f32,
    /// Zero point of the input, in `u8` storage (an ONNX `int8` zero point plus 128).
    pub in_zero_point: u8,
    /// Scale of the output.
    pub out_scale: f32,
    /// Zero point of the output, in `u8` storage.
    pub out_zero_point: u8,
}

impl U8Requant {
    /// The input already has the output's parameters: a copy.
    pub fn is_identity(&self) -> bool {
        self.in_scale == self.out_scale && self.in_zero_point == self.out_zero_point
    }
}

/// Where one input of an int8 channel concatenation lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcatU8Shape {
    /// Pixels per channel (`H * W`), the same for the input and the output.
    pub pixels: usize,
    /// Channels of this input; it holds `channels.div_ceil(8)` blocks.
    pub channels: usize,
    /// First output channel this input fills.
    pub channel_offset: usize,
    /// Channels of the whole output.
    pub out_channels: usize,
}

/// A validated call.
struct QConcatArgs {
    src: *const u8,
    dst: *mut u8,
    pixels: usize,
    channels: usize,
    offset: usize,
    /// Output lanes `offset .. end` are written (`end` includes the last block's padding when
    /// this input ends the output).
    end: usize,
    r: U8Requant,
}

impl QConcatArgs {
    /// The whole tensor as one span: source and output blocks `pixels * 8` bytes apart.
    fn span(&self) -> Span {
        Span {
            src: self.src,
            src_bs: self.pixels * 8,
            dst: self.dst,
            dst_bs: self.pixels * 8,
            pixels: self.pixels,
            channels: self.channels,
            offset: self.offset,
            end: self.end,
        }
    }
}

/// Where one input's lanes of a concatenation go, over a run of pixels: the input's blocks
/// `src_bs` bytes apart, the output's `dst_bs` apart (`pixels * 8` each for a whole tensor; a
/// group of rows of a depthwise conv writing a Ghost module's concatenation:
/// [`crate::GhostConcatU8`]).
#[derive(Clone, Copy)]
pub(crate) struct Span {
    /// The first pixel of the input's first block.
    pub src: *const u8,
    pub src_bs: usize,
    /// The same pixel of output block 0.
    pub dst: *mut u8,
    pub dst_bs: usize,
    pub pixels: usize,
    /// Channels of the input (lanes past them in its last block are padding).
    pub channels: usize,
    /// First output lane written.
    pub offset: usize,
    /// Output lanes `offset .. end` are written (padding lanes past the channels get the
    /// output zero point).
    pub end: usize,
}

/// The conversion of one input's bytes to the output's parameters, made once per call.
#[derive(Clone, Copy)]
pub(crate) struct Conversion {
    /// Every input byte's output byte (unused for a copy).
    lut: [u8; 256],
    /// The parameters are equal: the bytes are copied.
    copy: bool,
    zero_point: u8,
}

impl Conversion {
    /// The conversion of `r` on token `s` (the table holds the bytes `convert` gives there).
    #[inline(always)]
    pub(crate) fn new<S: QSimd>(s: S, r: &U8Requant) -> Conversion {
        let copy = r.is_identity();
        Conversion {
            // A copy never looks the table up.
            lut: if copy { [0u8; 256] } else { table(s, r) },
            copy,
            zero_point: r.out_zero_point,
        }
    }
}

/// Pixels converted per batch into the on-stack buffer.
const CHUNK: usize = 64;

/// Byte mask of lanes `0 .. n` of a 64-bit word (`n <= 8`).
fn lanes_mask(n: usize) -> u64 {
    if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    }
}

/// The conversion's parameters, splatted once.
struct Splat<S: QSimd> {
    in_scale: S::V,
    neg_in_zp: S::V,
    out_scale: S::V,
    out_zp: S::I,
    lo: S::V,
    hi: S::V,
}

/// Requantizes the 8 bytes at `src` into the 8 at `dst`.
///
/// # Safety
/// `src` valid for reading and `dst` for writing 8 bytes.
#[inline(always)]
unsafe fn convert<S: QSimd>(s: S, src: *const u8, dst: *mut u8, k: &Splat<S>) {
    // SAFETY: forwarded.
    let v = s.mul(s.add(unsafe { s.load_u8(src) }, k.neg_in_zp), k.in_scale);
    let q = s.round(s.clamp(s.div(v, k.out_scale), k.lo, k.hi));
    // SAFETY: forwarded.
    unsafe { s.store_u8(dst, s.iadd(q, k.out_zp)) };
}

/// Every input byte's converted value, by the conversion itself (so the table holds the bytes
/// `convert` gives on this path): 32 conversions of 8 lanes instead of one per 8 bytes of the
/// tensor.
#[inline(always)]
fn table<S: QSimd>(s: S, r: &U8Requant) -> [u8; 256] {
    let k = Splat {
        in_scale: s.splat(r.in_scale),
        neg_in_zp: s.splat(-(r.in_zero_point as f32)),
        out_scale: s.splat(r.out_scale),
        out_zp: s.isplat(r.out_zero_point as i32),
        lo: s.splat(-(r.out_zero_point as f32)),
        hi: s.splat((255 - r.out_zero_point as i32) as f32),
    };
    let mut lut = [0u8; 256];
    let iota: [u8; 256] = core::array::from_fn(|i| i as u8);
    for g in 0..32 {
        // SAFETY: bytes 8g .. 8g + 8 of both 256-byte arrays.
        unsafe { convert(s, iota.as_ptr().add(8 * g), lut.as_mut_ptr().add(8 * g), &k) };
    }
    lut
}

/// # Safety
/// `src` valid for reading `pixels * 8` bytes at each of its first `channels.div_ceil(8)`
/// blocks; `dst` valid for reading and writing `pixels * 8` bytes at each output block
/// `offset / 8 .. end.div_ceil(8)`; no overlap.
#[inline(always)]
unsafe fn span<S: QSimd>(s: S, c: &Conversion, a: &Span) {
    let px = a.pixels;
    let (shift, first) = (a.offset % 8, a.offset / 8);
    // The output zero point in every lane (the padding value).
    let zp_word = u64::from_le_bytes([c.zero_point; 8]);
    let mut tmp = [0u8; CHUNK * 8];
    // Source blocks, and one more (all padding) when the output's padding lanes reach past
    // the last source block's lanes.
    for b in 0..(a.end - a.offset).div_ceil(8) {
        // Source lanes of block b holding channels, and the ones written at all.
        let valid = a.channels.saturating_sub(8 * b).min(8);
        let written = (a.end - (a.offset + 8 * b)).min(8);
        // Only dereferenced when `valid > 0`, i.e. b < channels.div_ceil(8).
        let sb = a.src.wrapping_add(b * a.src_bs);
        // SAFETY: output blocks `first + b` (and `+ 1` when shifted) are below
        // `end.div_ceil(8)`: lane `offset + 8b` < `end` for every b of the loop, and a shifted
        // block spills into the next one only when `written > 8 - shift`.
        let d0 = unsafe { a.dst.add((first + b) * a.dst_bs) };
        if shift == 0 && valid == 8 {
            if c.copy {
                // SAFETY: whole block, both extents as above; distinct allocations.
                unsafe { core::ptr::copy_nonoverlapping(sb, d0, px * 8) };
            } else {
                // A whole block on a block boundary: every lane of the output block is this
                // input's, so the converted bytes are stored directly (no merge).
                // SAFETY: source block b and output block first + b, px * 8 bytes each.
                unsafe { s.lut_u8(&c.lut, sb, d0, px * 8) };
            }
            continue;
        }
        let mask = lanes_mask(written);
        let keep_src = lanes_mask(valid);
        let mut p0 = 0;
        while p0 < px {
            let n = CHUNK.min(px - p0);
            if valid == 0 {
                // Padding only: `keep_src` is 0, the words below are the zero point.
            } else if c.copy {
                // SAFETY: pixels p0 .. p0 + n of source block b.
                let src = unsafe { core::slice::from_raw_parts(sb.add(p0 * 8), n * 8) };
                tmp[..n * 8].copy_from_slice(src);
            } else {
                // SAFETY: pixels p0 .. p0 + n of source block b; `tmp` holds CHUNK pixels.
                unsafe { s.lut_u8(&c.lut, sb.add(p0 * 8), tmp.as_mut_ptr(), n * 8) };
            }
            for p in 0..n {
                let t = u64::from_le_bytes(tmp[p * 8..p * 8 + 8].try_into().expect("8 bytes"));
                // Lanes past the channels (padding of the last block) take the zero point.
                let word = (t & keep_src) | (zp_word & !keep_src);
                // SAFETY: pixel p0 + p of output block first + b (extent above).
                unsafe {
                    merge(
                        d0.add((p0 + p) * 8),
                        word << (8 * shift),
                        mask << (8 * shift),
                    )
                };
                if shift > 0 && written > 8 - shift {
                    // SAFETY: the spill block exists (see d0's comment).
                    unsafe {
                        merge(
                            d0.add(a.dst_bs + (p0 + p) * 8),
                            word >> (8 * (8 - shift)),
                            mask >> (8 * (8 - shift)),
                        )
                    };
                }
            }
            p0 += n;
        }
    }
}

/// Writes the lanes of `word` selected by `mask` into the 8 bytes at `p`.
///
/// # Safety
/// `p` valid for reading and writing 8 bytes.
#[inline(always)]
unsafe fn merge(p: *mut u8, word: u64, mask: u64) {
    // SAFETY: forwarded; unaligned 8-byte access.
    unsafe {
        let old = u64::from_le_bytes(core::ptr::read_unaligned(p.cast::<[u8; 8]>()));
        let new = (old & !mask) | (word & mask);
        core::ptr::write_unaligned(p.cast::<[u8; 8]>(), new.to_le_bytes());
    }
}

/// [`span`] 8 pixels at a time in zmm registers, for x86 with AVX-512 VBMI: a 64-byte load
/// of 8 pixels of a source block, the table lookup as in `QSimd::lut_u8` (two `vpermi2b` and
/// a blend), the padding lanes blended with the zero point, each pixel's 64-bit word shifted
/// into place, and masked byte stores instead of the read-modify-write of 8 bytes per pixel
/// that the generic body does (a Ghost module's second half at channel 36 or 92 of
/// GhostNet-1.0; ghost-bench `qcat`, 332 channels at 332 @14: copy 2.7-3.2 -> 1.3-1.5 us).
/// Writes only the bytes of its lanes, so spans of disjoint lanes may run concurrently.
///
/// # Safety
/// As [`span`]; AVX-512F/BW/VL/VNNI/VBMI available.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx,avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")]
unsafe fn span_wide(c: &Conversion, a: &Span) {
    use core::arch::x86_64::*;
    let px = a.pixels;
    let (shift, first) = (a.offset % 8, a.offset / 8);
    // The same byte mask for each of the 8 pixels (64-bit words) of a register.
    let rep = |m: u64| u64::from_le_bytes([m as u8; 8]);
    // SAFETY: (whole body) the features are enabled; the extents are those `span` documents:
    // loads read pixels `p .. p + n` of source block b (masked to them) only while `valid >
    // 0` (b below the source's blocks), stores write the same pixels of output blocks
    // `first + b` and, with a spill, `first + b + 1`.
    unsafe {
        let t = crate::arch::x86_64::Lut512::new(&c.lut);
        let zp = _mm512_set1_epi8(c.zero_point as i8);
        let up = _mm512_set1_epi64(8 * shift as i64);
        let down = _mm512_set1_epi64(64 - 8 * shift as i64);
        for b in 0..(a.end - a.offset).div_ceil(8) {
            let valid = a.channels.saturating_sub(8 * b).min(8);
            let written = (a.end - (a.offset + 8 * b)).min(8);
            let sb = a.src.wrapping_add(b * a.src_bs);
            let d0 = a.dst.add((first + b) * a.dst_bs);
            let lanes = (1u64 << written) - 1;
            let keep = rep((1u64 << valid) - 1);
            let (m0, m1) = (rep(lanes << shift), rep(lanes >> (8 - shift)));
            let spill = shift > 0 && written > 8 - shift;
            if shift == 0 && valid == 8 {
                // A whole block on a block boundary: converted or copied straight through.
                if c.copy {
                    core::ptr::copy_nonoverlapping(sb, d0, px * 8);
                } else {
                    crate::arch::x86_64::lut_vbmi(&c.lut, sb, d0, px * 8);
                }
                continue;
            }
            let mut p = 0;
            while p < px {
                let n = (px - p).min(8);
                let kp = u64::MAX >> (64 - 8 * n);
                let mut x = zp;
                if valid > 0 {
                    x = _mm512_maskz_loadu_epi8(kp, sb.add(p * 8).cast());
                    if !c.copy {
                        x = t.look(x);
                    }
                }
                let word = _mm512_mask_blend_epi8(keep, zp, x);
                let y = _mm512_sllv_epi64(word, up);
                _mm512_mask_storeu_epi8(d0.add(p * 8).cast(), m0 & kp, y);
                if spill {
                    let y = _mm512_srlv_epi64(word, down);
                    _mm512_mask_storeu_epi8(d0.add(a.dst_bs + p * 8).cast(), m1 & kp, y);
                }
                p += 8;
            }
        }
    }
}

/// A span and its conversion, for [`span_exec`].
struct SpanArgs<'c> {
    c: &'c Conversion,
    sp: Span,
}

/// # Safety
/// As [`span`].
#[inline(always)]
unsafe fn span_body<S: QSimd>(s: S, a: &SpanArgs<'_>) {
    // SAFETY: forwarded.
    unsafe { span(s, a.c, &a.sp) }
}

/// [`span_wide`] when `k` runs the AVX-512 path on a CPU with VBMI, else [`span`] on the
/// token `k` dispatches to (`c` made by [`conversion`] with the same `k`).
///
/// # Safety
/// As [`span`].
pub(crate) unsafe fn span_exec(k: Kernels, c: &Conversion, sp: &Span) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if k.isa() == crate::isa::Isa::Avx512 && crate::isa::x86_vbmi() {
        // SAFETY: VBMI (with AVX-512F/BW/VL/VNNI, see `x86_vbmi`) detected just above;
        // forwarded.
        return unsafe { span_wide(c, sp) };
    }
    let a = SpanArgs { c, sp: *sp };
    qdispatch!(k, span_body, &a, SpanArgs<'_>; vnni []; avx2 []; scalar [])
}

/// Where [`conversion`] writes.
struct ConversionArgs {
    r: U8Requant,
    out: *mut Conversion,
}

/// # Safety
/// `a.out` valid for writing.
#[inline(always)]
unsafe fn conversion_body<S: QSimd>(s: S, a: &ConversionArgs) {
    // SAFETY: forwarded.
    unsafe { a.out.write(Conversion::new(s, &a.r)) }
}

/// The conversion of `r` made on the token `k` dispatches to (the bytes [`span_exec`]'s
/// generic path gives).
pub(crate) fn conversion(k: Kernels, r: &U8Requant) -> Conversion {
    let mut out = core::mem::MaybeUninit::<Conversion>::uninit();
    let a = ConversionArgs {
        r: *r,
        out: out.as_mut_ptr(),
    };
    qdispatch!(k, conversion_body, &a, ConversionArgs; vnni []; avx2 []; scalar []);
    // SAFETY: every dispatch target wrote `out`.
    unsafe { out.assume_init() }
}

/// # Safety
/// The extents of [`concat_args`].
unsafe fn concat_exec(k: Kernels, a: &QConcatArgs) {
    // SAFETY: the whole tensors (forwarded).
    unsafe { span_exec(k, &conversion(k, &a.r), &a.span()) }
}

fn concat_args(
    shape: ConcatU8Shape,
    r: U8Requant,
    input: Src<'_, u8>,
    output: Dst<'_, u8>,
) -> Result<QConcatArgs, Error> {
    let ConcatU8Shape {
        pixels,
        channels,
        channel_offset,
        out_channels,
    } = shape;
    check(channels > 0, "channels", "must be positive")?;
    check(
        channel_offset
            .checked_add(channels)
            .is_some_and(|e| e <= out_channels),
        "channel_offset",
        "channel_offset + channels must not exceed out_channels",
    )?;
    check_scale(r.in_scale, "in_scale")?;
    check_scale(r.out_scale, "out_scale")?;
    let end = if channel_offset + channels == out_channels {
        out_channels.div_ceil(8) * 8
    } else {
        channel_offset + channels
    };
    let xo = view(
        "input",
        input.data.len(),
        input.block_offset,
        channels.div_ceil(8),
        pixels,
    )?;
    let yo = view(
        "output",
        output.data.len(),
        output.block_offset,
        end.div_ceil(8),
        pixels,
    )?;
    Ok(QConcatArgs {
        src: input.data[xo..].as_ptr(),
        dst: output.data[yo..].as_mut_ptr(),
        pixels,
        channels,
        offset: channel_offset,
        end,
        r,
    })
}

impl Kernels {
    /// Writes one input of an int8 channel concatenation of one image into its output
    /// channels `channel_offset ..` (blocks from `output.block_offset`), requantized from the
    /// input's parameters to the output's (see [`crate::kernels::qconcat`]). Lanes of the
    /// output outside the input's channels are left as they are, but for the last block's
    /// padding when this input ends the output.
    pub fn concat_u8(
        self,
        shape: ConcatU8Shape,
        requant: U8Requant,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
    ) -> Result<(), Error> {
        let a = concat_args(shape, requant, input, output)?;
        // SAFETY: extents checked; the output is a unique borrow, the input a shared one.
        unsafe { concat_exec(self, &a) };
        Ok(())
    }
}
