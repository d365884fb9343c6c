//! A 1x1 expansion followed by a depthwise k x k (k = 3 or 5, stride 1 or 2) as one kernel:
//! the expanded tensor never exists whole.
//!
//! This is the inverted-residual pattern of MobileNetV2/V3 and EfficientNet (expand 1x1 + act
//! -> depthwise + act). At high resolution the expanded tensor is the largest of the network
//! (EfficientNet-B0's 96 channels at 112x112 are 4.8 MB): unfused, the 1x1 writes it whole
//! and the depthwise reads it back, past L2.
//!
//! Algorithm (row streaming, as in the fused Ghost module): the image goes in bands of `band`
//! rows. For each band the pointwise GEMM (the same register tiles as [`Kernels::pointwise`])
//! writes the band's expanded rows into one slot of a two-slot ring in the caller's scratch;
//! then the depthwise computes every output row whose input rows are now all available,
//! reading them from the ring: the current band and the one before it (a band is at least `k`
//! rows, so older rows are never needed, and the next band may overwrite them). Output
//! rows use the depthwise kernel's row tiles (the same border, interior and pair-of-rows code
//! as [`Kernels::depthwise`]), so each output value adds its taps in the same order and the
//! result equals the two kernels run one after the other, bit for bit, channel sums aside
//! (they accumulate in another order; see [`Kernels::pointwise_depthwise`]).
//!
//! Measured (`ghost-bench --filter pwdw`, AVX-512, both layers' MACs, large buffers on 2 MiB
//! pages, three runs): EfficientNet-B0's 16 -> 96 at 112x112 with its 3x3 s2, SiLU, 21.0-22.4
//! -> 25.5-26.1 GMAC/s fused; with ReLU 26.1-27.8 -> 35.0-35.7; its 56x56 pairs +1.5-4.6 %.
//! Inside a whole EfficientNet-B0 it did not pay: there the unfused pair runs at 24.8 GMAC/s
//! (669 + 221 us) and the fused kernel at 23.2 (946 us); the whole model is 1.010x and 1.009x
//! the unfused build with 512-pixel bands, 1.001x with 1536-pixel bands (5 alternating rounds
//! each), 1.027x with 256-pixel bands (one 20-run pass each, not alternated). Why the
//! kernel measures so differently in and out of the model is not understood yet (the huge
//! pages of the model's arena are not it: ghost-bench's buffers have them too). So ghostc
//! does not emit this kernel; the compiler side (an `ExpandDepthwise` op, its pass, lowering
//! and codegen) is kept on the branch `wip/expand-depthwise` until the kernel beats the pair.
//!
//! Threads: `Par::pointwise_depthwise` splits by blocks (`PwDwArgs::blocks`); each block's
//! values are computed by the same code in the same order, so any split gives the same bits.
//!
//! Deliberately not done here: a residual on the depthwise output (no network in the zoo has
//! one there).

use crate::arch::{ActV, Wide};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::depthwise::{block_rows, check_shape, load_block, DwArgs, InputRows};
use crate::kernels::pointwise::{self, packed_len_blocks, view, PwArgs};
use crate::{Activation, DepthwiseShape, Dst, Src};
use core::ptr;

/// Shape of a fused 1x1 + depthwise over one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PwDwShape {
    /// Input channel blocks of the 1x1.
    pub k_blocks: usize,
    /// The depthwise layer: `blocks` is the expanded width (the 1x1's output blocks),
    /// `in_h x in_w` the image.
    pub dw: DepthwiseShape,
}

/// Rows per band: about 512 pixels (enough for the GEMM's tiles), at least the kernel's
/// height (the ring holds the band before), at most the image.
const fn band_rows(h: usize, w: usize, k: usize) -> usize {
    let mut b = 512usize.div_ceil(if w == 0 { 1 } else { w });
    if b < k {
        b = k;
    }
    if b > h {
        h
    } else {
        b
    }
}

/// Floats of one block's ring: two bands (one when a band is the whole image).
const fn ring_block_len(h: usize, w: usize, k: usize) -> usize {
    let band = band_rows(h, w, k);
    let slots = if band < h { 2 } else { 1 };
    slots * band * w * 8
}

/// Scratch floats [`Kernels::pointwise_depthwise`] needs: the ring of every expanded block.
pub const fn pwdw_scratch_len(shape: PwDwShape) -> usize {
    let d = shape.dw;
    d.blocks * ring_block_len(d.in_h, d.in_w, d.k)
}

/// The ring of expanded rows: block `cb` starts at `p + cb * bs`; input row `iy` lives in
/// slot `(iy / band) % 2` (band 0 alone in slot 0 when it is the whole image).
#[derive(Clone, Copy)]
struct Ring {
    p: *mut f32,
    bs: usize,
    band: usize,
    iw: usize,
}

impl Ring {
    /// Row `iy` of expanded block `cb`.
    #[inline(always)]
    fn at(&self, cb: usize, iy: usize) -> *mut f32 {
        let q = (iy / self.band) % 2 * self.band + iy % self.band;
        self.p.wrapping_add(cb * self.bs + q * self.iw * 8)
    }
}

impl InputRows for Ring {
    #[inline(always)]
    fn row(&self, cb: usize, iy: usize) -> *const f32 {
        self.at(cb, iy)
    }
}

/// Validated raw arguments of the fused loop.
#[derive(Clone, Copy)]
pub(crate) struct PwDwArgs {
    pw: *const f32,
    kb: usize,
    x: *const f32,
    x_bs: usize,
    pw_act: Activation,
    /// The depthwise layer over blocks `b0 .. b1` (its input pointer unused: rows come from
    /// the ring).
    dw: DwArgs,
    /// The ring, from block 0.
    ring: Ring,
    /// Expanded blocks of the whole layer (the 1x1's packed panels depend on it).
    nb: usize,
    /// Expanded blocks `b0 .. b1` are computed (a thread's share; all of them by default).
    b0: usize,
    b1: usize,
}

impl PwDwArgs {
    /// Expanded (and output) blocks this call computes.
    pub(crate) fn n_blocks(&self) -> usize {
        self.b1 - self.b0
    }
    /// Both layers' multiply-adds.
    pub(crate) fn macs(&self) -> usize {
        let d = &self.dw;
        size(&[d.ih, d.iw, self.kb, 8, self.n_blocks(), 8]).saturating_add(size(&[
            d.oh,
            d.ow,
            self.n_blocks(),
            8,
            d.k,
            d.k,
        ]))
    }
    /// The same layer restricted to blocks `b0 .. b1` of it: the 1x1 computes those
    /// expanded blocks into their own rows of the ring, the depthwise reads and writes only
    /// those blocks. Disjoint shares write disjoint memory.
    pub(crate) fn blocks(&self, b0: usize, b1: usize) -> PwDwArgs {
        PwDwArgs {
            dw: self.dw.blocks(b0, b1),
            b0: self.b0 + b0,
            b1: self.b0 + b1,
            ..*self
        }
    }
}

/// Output rows `oy0 .. oy1` of every block.
struct DwRows<'a> {
    a: &'a PwDwArgs,
    oy0: usize,
    oy1: usize,
}

/// The depthwise rows of one band, all blocks, reading the ring.
///
/// # Safety
/// Every input row the rows `oy0 .. oy1` read is in the ring; the output views are valid.
#[inline(always)]
unsafe fn dw_rows<
    S: Wide,
    const K: usize,
    const ST: usize,
    const C1: usize,
    const C2: usize,
    const D1: usize,
    const D2: usize,
>(
    s: S,
    b: &DwRows<'_>,
) {
    let d = b.a.dw.rows(b.oy0, b.oy1);
    // The depthwise's blocks start at b0 of the layer.
    let ring = Ring {
        p: b.a.ring.p.wrapping_add(b.a.b0 * b.a.ring.bs),
        ..b.a.ring
    };
    let act = ActV::new(s, d.act);
    for cb in 0..d.blocks {
        // SAFETY: block cb < blocks of the checked packed depthwise.
        let bw = unsafe { load_block::<S, K>(s, d.w.add(cb * 8 * (K * K + 1))) };
        // The running channel sum continues from the previous band's (module docs).
        let sum = if d.sums.is_null() {
            s.zero()
        } else {
            // SAFETY: sums has blocks * 8 floats.
            unsafe { s.load(d.sums.add(cb * 8)) }
        };
        // SAFETY: the input rows are in the ring (the caller's contract); the output rows
        // are the checked view's.
        let sum = unsafe {
            block_rows::<S, Ring, K, ST, C1, C2, D1, D2, false>(s, &d, &ring, cb, &bw, &act, sum)
        };
        if !d.sums.is_null() {
            // SAFETY: as above.
            unsafe { s.store(d.sums.add(cb * 8), sum) };
        }
    }
}

/// [`dw_rows`] for the layer's kernel size and stride; the constants are those of
/// `depthwise::depthwise_exec`.
///
/// # Safety
/// As [`dw_rows`].
unsafe fn dw_rows_exec(k: Kernels, k_size: usize, stride: usize, b: &DwRows<'_>) {
    match (k_size, stride) {
        (3, 1) => dispatch!(k, dw_rows, b, DwRows<'_>;
            avx512 [3, 1, 8, 4, 4, 2]; avx2 [3, 1, 4, 2, 2, 1]; neon [3, 1, 4, 2, 2, 1]; scalar [3, 1, 4, 2, 2, 1]),
        (3, _) => dispatch!(k, dw_rows, b, DwRows<'_>;
            avx512 [3, 2, 8, 4, 4, 2]; avx2 [3, 2, 4, 2, 2, 1]; neon [3, 2, 4, 2, 2, 1]; scalar [3, 2, 4, 2, 2, 1]),
        (_, 1) => dispatch!(k, dw_rows, b, DwRows<'_>;
            avx512 [5, 1, 4, 2, 2, 1]; avx2 [5, 1, 2, 1, 1, 1]; neon [5, 1, 4, 2, 2, 1]; scalar [5, 1, 4, 2, 2, 1]),
        _ => dispatch!(k, dw_rows, b, DwRows<'_>;
            avx512 [5, 2, 4, 2, 2, 1]; avx2 [5, 2, 2, 1, 1, 1]; neon [5, 2, 4, 2, 2, 1]; scalar [5, 2, 4, 2, 2, 1]),
    }
}

/// The band loop over blocks `a.b0 .. a.b1`.
///
/// # Safety
/// `a` from [`pwdw_args`] (possibly restricted by [`PwDwArgs::blocks`]), its borrows alive.
pub(crate) unsafe fn pwdw_exec(k: Kernels, a: &PwDwArgs) {
    let d = &a.dw;
    let (k_size, stride) = (d.k, d.stride);
    let (ih, iw, band) = (d.ih, d.iw, a.ring.band);
    let mut r0 = 0;
    let mut oy = 0;
    while r0 < ih {
        let r1 = (r0 + band).min(ih);
        let pa = PwArgs {
            blk0: a.b0,
            blk1: a.b1,
            ..PwArgs::plain(
                a.pw,
                (a.kb, a.nb, (r1 - r0) * iw),
                // SAFETY: rows r0..r1 exist in every input block.
                (unsafe { a.x.add(r0 * iw * 8) }, a.x_bs),
                // This band's slot: rows r0..r1 are its rows 0..r1-r0 (r0 starts a band).
                (a.ring.at(0, r0), a.ring.bs),
                a.pw_act,
            )
        };
        // SAFETY: the slot holds `band >= r1 - r0` rows of every block; the ring overlaps
        // nothing else.
        unsafe { pointwise::run_dispatch(k, &pa) };
        // Output rows whose last input row (oy * stride - pt + k - 1) is computed; all the
        // rest after the last band (rows past the image are padding).
        let oy_end = if r1 == ih {
            d.oh
        } else if r1 + d.pt >= k_size {
            ((r1 + d.pt - k_size) / stride + 1).min(d.oh)
        } else {
            0
        }
        .max(oy);
        if oy < oy_end {
            // The first row `oy` was not computable after the previous band, so its first
            // input row is at least r0 - k + 1 > r0 - band: in this band's slot or the
            // previous band's, which this band did not overwrite.
            let b = DwRows {
                a,
                oy0: oy,
                oy1: oy_end,
            };
            // SAFETY: see above.
            unsafe { dw_rows_exec(k, k_size, stride, &b) };
        }
        oy = oy_end;
        r0 = r1;
    }
}

/// The checks of [`Kernels::pointwise_depthwise`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn pwdw_args(
    pw_packed: &[f32],
    dw_packed: &[f32],
    shape: PwDwShape,
    input: Src<'_>,
    output: Dst<'_>,
    pw_act: Activation,
    dw_act: Activation,
    channel_sums: Option<&mut [f32]>,
    scratch: &mut [f32],
) -> Result<PwDwArgs, Error> {
    let d = shape.dw;
    check(shape.k_blocks > 0, "shape.k_blocks", "must be positive")?;
    check_shape(&d)?;
    check_len(
        "pw_packed",
        pw_packed.len(),
        packed_len_blocks(shape.k_blocks, d.blocks),
    )?;
    check_len(
        "dw_packed",
        dw_packed.len(),
        size(&[d.blocks, 8, d.k * d.k + 1]),
    )?;
    let (oh, ow) = (d.out_h(), d.out_w());
    let ihw = size(&[d.in_h, d.in_w]);
    let ohw = size(&[oh, ow]);
    let xo = view(
        "input",
        input.data.len(),
        input.block_offset,
        shape.k_blocks,
        ihw,
    )?;
    let yo = view(
        "output",
        output.data.len(),
        output.block_offset,
        d.blocks,
        ohw,
    )?;
    check_len("scratch", scratch.len(), pwdw_scratch_len(shape))?;
    let sums = match channel_sums {
        Some(s) => {
            check_len("channel_sums", s.len(), size(&[d.blocks, 8]))?;
            s.as_mut_ptr()
        }
        None => ptr::null_mut(),
    };
    let band = band_rows(d.in_h, d.in_w, d.k);
    Ok(PwDwArgs {
        pw: pw_packed.as_ptr(),
        kb: shape.k_blocks,
        // SAFETY: checked by `view`.
        x: unsafe { input.data.as_ptr().add(xo) },
        x_bs: ihw * 8,
        pw_act,
        dw: DwArgs {
            w: dw_packed.as_ptr(),
            k: d.k,
            stride: d.stride,
            blocks: d.blocks,
            x: ptr::null(),
            x_bs: 0,
            ih: d.in_h,
            iw: d.in_w,
            // SAFETY: checked by `view`.
            y: unsafe { output.data.as_mut_ptr().add(yo) },
            y_bs: ohw * 8,
            oh,
            ow,
            pt: d.pad_top,
            pl: d.pad_left,
            r: ptr::null(),
            r_bs: 0,
            sums,
            act: dw_act,
            oy0: 0,
            oy1: oh,
        },
        ring: Ring {
            p: scratch.as_mut_ptr(),
            bs: ring_block_len(d.in_h, d.in_w, d.k),
            band,
            iw: d.in_w,
        },
        nb: d.blocks,
        b0: 0,
        b1: d.blocks,
    })
}

impl Kernels {
    /// A 1x1 convolution (`pw_packed` from [`crate::pack_pointwise`], `k_blocks*8 ->
    /// dw.blocks*8`, then `pw_act`) followed by a depthwise k x k (`dw_packed` from
    /// [`crate::pack_depthwise`], then `dw_act`) over one NCHW8c image, streamed in row bands
    /// (module docs): reads input blocks `[input.block_offset, +k_blocks)`, writes output
    /// blocks `[output.block_offset, +dw.blocks)`; the expanded tensor lives only in
    /// `scratch` ([`pwdw_scratch_len`] floats). The output equals [`Kernels::pointwise`]
    /// then [`Kernels::depthwise`] bit for bit. `channel_sums` (`dw.blocks * 8` floats)
    /// accumulate the output's per-channel sums, as the depthwise's would, added in bands
    /// (so they may differ from the depthwise's in the last bits).
    #[allow(clippy::too_many_arguments)]
    pub fn pointwise_depthwise(
        self,
        pw_packed: &[f32],
        dw_packed: &[f32],
        shape: PwDwShape,
        input: Src<'_>,
        output: Dst<'_>,
        pw_act: Activation,
        dw_act: Activation,
        channel_sums: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let a = pwdw_args(
            pw_packed,
            dw_packed,
            shape,
            input,
            output,
            pw_act,
            dw_act,
            channel_sums,
            scratch,
        )?;
        // SAFETY: every extent checked; output, scratch and sums are unique borrows.
        unsafe { pwdw_exec(self, &a) };
        Ok(())
    }
}
