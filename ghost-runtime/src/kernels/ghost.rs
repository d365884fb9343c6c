//! The fused Ghost module: primary 1x1 (+act) -> x1 in output blocks `[0, nb)`, cheap
//! depthwise 3x3 stride 1 pad 1 (+act) on x1 -> x2 in output blocks `[nb, 2nb)`, optionally
//! `+ residual` on both halves and per-channel sums of the stored values.
//!
//! Algorithm (row streaming): the image is processed in bands of `band` rows, chosen so a band
//! has at least ~896 pixels (eight rows at 112x112, the whole image at 28x28 and below). For each band the
//! pointwise GEMM computes x1 for the band's pixels, then the depthwise computes every output
//! row whose three input rows are now available (the band's rows shifted up by one). x1 is
//! therefore re-read from L1/L2 right after being written, and nothing is concatenated.
//!
//! With a residual the stored x1 is `x1 + shortcut`, but the depthwise must see pre-add x1:
//! the pointwise epilogue also writes pre-add x1 into a caller-provided scratch buffer of
//! three bands per block, used as a ring: band `b` lives in slot `b % 3`, so the rows the
//! depthwise needs (the current band and the two rows before it) are always present and
//! nothing is copied. Without a residual the depthwise reads x1 back from the output and the
//! scratch is unused.
//!
//! Gated form ([`Kernels::ghost_gated`], GhostNetV2's DFC attention): the output is
//! multiplied by `sigmoid(g)` nearest-upsampled from the quarter-resolution gate `g`. The
//! multiply is part of both store epilogues (after the activation and the residual, on the
//! registers about to be stored), so no pass re-reads the output: the nearest upsample is a
//! table of one gate offset per pixel, built once per call in the scratch after the ring, and
//! the depthwise reads its x1 rows from the ring of pre-gate rows the pointwise epilogue
//! writes, as with a residual. (A separate gate pass over each band's rows, still in L2, was
//! GhostNetV2's 3.2 % of run time at 1 thread.) The gate is a compile-time parameter of the
//! band loop (`drive_with::<GATED>`) and of the epilogues it instantiates, so the plain
//! module's code is the same as without the feature. Its sigmoid is taken in place before the
//! band loop, unless the gate comes `activated` (ghostc puts it in the last gate conv's
//! epilogue).
//!
//! Deliberately not done here: channel sums with a gate (the planner never asks for them: a
//! squeeze after a DFC gate reads the gate's output).

use crate::arch::{ActV, Wide};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::depthwise::{load_block, rows, DwArgs, InRows, RowsOut};
use crate::kernels::dfc::{DfcShape, GateRows};
use crate::kernels::pointwise::{self, packed_len_blocks, view, PwArgs};
use crate::kernels::resize::{nearest, src_coord, CoordMode, NearestMode};
use crate::kernels::vmath::{transcendental_raw, Transcendental};
use crate::{Activation, Dst, Src};
use core::ptr;

/// Shape of a fused Ghost module over one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GhostShape {
    /// Input channel blocks.
    pub k_blocks: usize,
    /// Blocks of each half (x1 and x2 both have `half_blocks` blocks).
    pub half_blocks: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

/// Epilogue of the fused Ghost module.
#[derive(Debug)]
pub struct GhostEpilogue<'a> {
    /// Activation of the primary 1x1 (applied to x1).
    pub primary: Activation,
    /// Activation of the cheap depthwise (applied to x2).
    pub cheap: Activation,
    /// Added to both halves after their activations (`2 * half_blocks` blocks).
    pub residual: Option<Src<'a>>,
    /// `2 * half_blocks * 8` floats; accumulates the sums of the stored values.
    pub channel_sums: Option<&'a mut [f32]>,
}

/// The DFC gate of [`Kernels::ghost_gated`].
#[derive(Debug)]
pub struct GhostGate<'a> {
    /// The gate, blocks `[0, 2 * half_blocks)` of a `gate_h x gate_w` NCHW8c tensor (gate
    /// block `b` multiplies output block `b`): before its sigmoid, which the kernel takes in
    /// place, unless `activated`.
    pub gate: &'a mut [f32],
    /// `blocks = 2 * half_blocks`, `h` and `w` those of the module.
    pub shape: DfcShape,
    /// The gate already holds its sigmoid (the producer applied it in its epilogue, where the
    /// divisions overlap the multiply-adds; as a separate pass they bound it); the kernel
    /// leaves it as is.
    pub activated: bool,
}

/// Gate geometry inside [`GhostArgs`].
#[derive(Clone, Copy)]
pub(crate) struct GateGeom {
    g: *mut f32,
    gh: usize,
    gw: usize,
    coord: CoordMode,
    nearest: NearestMode,
    /// The gate holds its sigmoid already ([`GhostGate::activated`]).
    activated: bool,
    /// `h * w` gate offsets in the scratch after the ring: pixel `p`'s gate vector in block
    /// `b` is at `g + b * gh * gw * 8 + map[p]` (written by [`GhostArgs::build_gate_map`]).
    map: *mut u32,
}

/// Rows per band for a given width.
const fn band_rows(h: usize, w: usize) -> usize {
    let b = 896usize.div_ceil(w);
    if b > h {
        h
    } else {
        b
    }
}

/// Scratch floats [`Kernels::ghost`] needs when it has a residual (0 is fine without one).
pub const fn ghost_scratch_len(shape: GhostShape) -> usize {
    shape.half_blocks * 3 * band_rows(shape.h, shape.w) * shape.w * 8
}

/// Scratch floats [`Kernels::ghost_gated`] needs, with or without a residual: the ring of
/// pre-gate x1 rows of [`ghost_scratch_len`] and one gate offset per pixel.
pub const fn ghost_gated_scratch_len(shape: GhostShape) -> usize {
    ghost_scratch_len(shape) + shape.h * shape.w
}

#[derive(Clone, Copy)]
pub(crate) struct GhostArgs {
    pw: *const f32,
    dw: *const f32,
    kb: usize,
    nb: usize,
    h: usize,
    w: usize,
    x: *const f32,
    y: *mut f32,
    r: *const f32,
    sums: *mut f32,
    scratch: *mut f32,
    primary: Activation,
    cheap: Activation,
    /// The DFC gate (read only by the gated band loop).
    gate: Option<GateGeom>,
    /// Blocks `b0 .. b1` of each half are computed (a thread's share; `0 .. nb` for all).
    /// Every per-block quantity (x1, x2, residual, sums, scratch ring) is disjoint across
    /// block ranges, so shares never touch the same memory.
    pub(crate) b0: usize,
    pub(crate) b1: usize,
}

/// The Ghost module as separate passes over whole rows, for splitting an image by rows
/// across threads (a row's cheap depthwise needs x1 rows of the neighbouring shares):
/// 1. `pw`: x1 = act(W x + b) into the x1 half (no residual yet: the depthwise needs x1);
/// 2. `dw`: x2 = act(dw3x3(x1)) (+ residual) into the x2 half;
/// 3. if `res` is set: x1 half += residual x1 half.
///
/// Each pass is split by rows and the next starts when every share of the previous is done.
pub(crate) struct Unfused {
    pub pw: PwArgs,
    pub dw: DwArgs,
    /// x1 half of the output and of the residual (null without residual), `nb` blocks of
    /// `h*w*8` floats each.
    pub y1: *mut f32,
    pub res1: *const f32,
}

impl GhostArgs {
    pub(crate) fn half_blocks(&self) -> usize {
        self.nb
    }
    pub(crate) fn h(&self) -> usize {
        self.h
    }
    pub(crate) fn w(&self) -> usize {
        self.w
    }
    pub(crate) fn has_sums(&self) -> bool {
        !self.sums.is_null()
    }
    /// The passes of [`Unfused`] (only without channel sums).
    pub(crate) fn unfused(&self) -> Unfused {
        debug_assert!(self.sums.is_null());
        let bs = self.h * self.w * 8;
        let has_res = !self.r.is_null();
        Unfused {
            pw: PwArgs::plain(
                self.pw,
                (self.kb, self.nb, self.h * self.w),
                (self.x, bs),
                (self.y, bs),
                self.primary,
            ),
            dw: DwArgs {
                w: self.dw,
                k: 3,
                stride: 1,
                blocks: self.nb,
                x: self.y,
                x_bs: bs,
                ih: self.h,
                iw: self.w,
                y: self.y.wrapping_add(self.nb * bs),
                y_bs: bs,
                oh: self.h,
                ow: self.w,
                pt: 1,
                pl: 1,
                r: if has_res {
                    self.r.wrapping_add(self.nb * bs)
                } else {
                    ptr::null()
                },
                r_bs: bs,
                sums: ptr::null_mut(),
                act: self.cheap,
                oy0: 0,
                oy1: self.h,
            },
            y1: self.y,
            res1: self.r,
        }
    }
    pub(crate) fn blocks(&self, b0: usize, b1: usize) -> GhostArgs {
        GhostArgs { b0, b1, ..*self }
    }
    /// The gate pass over blocks `blk0 .. blk1` of the output, rows `r0 .. r1`.
    pub(crate) fn gate_rows(&self, blk0: usize, blk1: usize, r0: usize, r1: usize) -> GateRows {
        let g = self.gate.expect("a gated module");
        GateRows {
            g: g.g,
            gate_h: g.gh,
            gate_w: g.gw,
            coord: g.coord,
            nearest: g.nearest,
            y: self.y,
            h: self.h,
            w: self.w,
            blk0,
            blk1,
            r0,
            r1,
        }
    }
    /// Floats per gate block.
    pub(crate) fn gate_block_len(&self) -> usize {
        self.gate.map_or(0, |g| g.gh * g.gw * 8)
    }
    /// Writes the per-pixel gate offsets of a gated module (once per call, before any band
    /// loop runs; the band loops of every thread only read them).
    ///
    /// # Safety
    /// A gated module's args; no band loop of this module is running.
    pub(crate) unsafe fn build_gate_map(&self) {
        let g = self.gate.expect("a gated module");
        let (h, w) = (self.h, self.w);
        // SAFETY: `map` has h*w entries after the ring (checked by `ghost_gated_args`) and
        // nothing else reads or writes it meanwhile (the contract).
        let map = unsafe { core::slice::from_raw_parts_mut(g.map, h * w) };
        let (first, rest) = map.split_at_mut(w);
        for (ox, m) in first.iter_mut().enumerate() {
            *m = (nearest(g.nearest, src_coord(g.coord, ox, g.gw, w), g.gw) * 8) as u32;
        }
        // Row 0's gate row is added last, after the other rows copied the column offsets.
        for (i, row) in rest.chunks_exact_mut(w).enumerate() {
            let gy = nearest(g.nearest, src_coord(g.coord, i + 1, g.gh, h), g.gh);
            let add = (gy * g.gw * 8) as u32;
            for (m, &c) in row.iter_mut().zip(first.iter()) {
                *m = c + add;
            }
        }
        let gy0 = nearest(g.nearest, src_coord(g.coord, 0, g.gh, h), g.gh);
        for m in first.iter_mut() {
            *m += (gy0 * g.gw * 8) as u32;
        }
    }
    /// Takes the sigmoid of gate blocks `blk0 .. blk1` in place, on the ISA of `k` (nothing
    /// if the gate came activated).
    ///
    /// # Safety
    /// A gated module's args; no one else touches these gate blocks meanwhile.
    pub(crate) unsafe fn gate_sigmoid(&self, k: Kernels, blk0: usize, blk1: usize) {
        let geom = self.gate.expect("a gated module");
        if geom.activated {
            return;
        }
        let (g, len) = (geom.g, self.gate_block_len());
        // SAFETY: blocks blk0..blk1 < 2*nb of the checked, writable gate, which no one else
        // touches meanwhile (this function's contract).
        unsafe {
            transcendental_raw(
                k,
                Transcendental::Sigmoid,
                g.add(blk0 * len),
                (blk1 - blk0) * len,
            )
        };
    }
}

/// The depthwise rows `dw_next .. dw_end` of one band.
struct DwBand<'a> {
    a: &'a GhostArgs,
    dw_next: usize,
    dw_end: usize,
}

/// Cheap-op rows of one band, all blocks (`G`: gated, x1 read from the ring). A separate
/// `#[target_feature]` instantiation from the pointwise part: with both inlined into one
/// function LLVM kept the GEMM accumulators in memory (measured 2x slower).
///
/// # Safety
/// As [`drive`]; the x1 rows the band's depthwise rows read are computed.
#[inline(always)]
unsafe fn dw_band<
    S: Wide,
    const C1: usize,
    const C2: usize,
    const D1: usize,
    const D2: usize,
    const G: bool,
>(
    s: S,
    b: &DwBand<'_>,
) {
    let a = b.a;
    let (h, w, nb) = (a.h, a.w, a.nb);
    let bs = h * w * 8;
    let row_len = w * 8;
    let band = band_rows(h, w);
    let sb = 3 * band * row_len;
    let has_res = !a.r.is_null();
    // x1 comes from the ring of pre-add, pre-gate rows when the stored x1 is not it.
    let ring = has_res || G;
    let cheap = ActV::new(s, a.cheap);
    let (dw_next, dw_end) = (b.dw_next, b.dw_end);
    for cb in a.b0..a.b1 {
        // SAFETY: block cb < nb of the packed depthwise.
        let bw = unsafe { load_block::<S, 3>(s, a.dw.add(cb * 8 * 10)) };
        let mut sum = s.zero();
        let mut oy = dw_next;
        while oy < dw_end {
            // Pairs of rows need all four input rows inside the image.
            let pair = oy + 1 < dw_end && oy >= 1 && oy + 2 < h;
            let mut inp: InRows = [ptr::null(); 8];
            for (t, rp) in inp.iter_mut().enumerate().take(if pair { 4 } else { 3 }) {
                let iy = (oy + t) as isize - 1;
                if iy < 0 || iy as usize >= h {
                    continue;
                }
                let iy = iy as usize;
                *rp = if ring {
                    // SAFETY: iy >= r0 - 2 (dw_next = r0 - 1) and iy < r1: the row's band is
                    // the current one or one of the two before, all still in the ring.
                    unsafe {
                        a.scratch
                            .add(cb * sb + ((iy / band) % 3 * band + iy % band) * row_len)
                    }
                } else {
                    // SAFETY: x1 row iy of block cb in the output, already written.
                    unsafe { a.y.add(cb * bs + iy * row_len) }
                };
            }
            let ob = nb + cb;
            let (g, gm) = match a.gate {
                Some(g) => (g.g.wrapping_add(ob * g.gh * g.gw * 8).cast_const(), g.map),
                None => (ptr::null(), ptr::null_mut()),
            };
            let grow = |oy: usize| gm.wrapping_add(oy * w).cast_const();
            let orow = |oy: usize| {
                let y = a.y.wrapping_add(ob * bs + oy * row_len);
                let r = if has_res {
                    a.r.wrapping_add(ob * bs + oy * row_len)
                } else {
                    ptr::null()
                };
                (y, r)
            };
            // SAFETY (both calls): rows valid for w pixels; output rows oy (and oy + 1
            // when paired) of block nb + cb for w pixels; k 3, s 1, pad 1 gives ow == w.
            if pair {
                let ((y0, q0), (y1, q1)) = (orow(oy), orow(oy + 1));
                let mut out = RowsOut {
                    y: [y0, y1],
                    r: [q0, q1],
                    g,
                    gm: [grow(oy), grow(oy + 1)],
                    sum,
                };
                // SAFETY: see above.
                unsafe { rows::<S, 3, 1, 2, D1, D2, G>(s, &inp, &bw, &cheap, w, w, 1, &mut out) };
                sum = out.sum;
                oy += 2;
            } else {
                let (y0, q0) = orow(oy);
                let mut out = RowsOut {
                    y: [y0],
                    r: [q0],
                    g,
                    gm: [grow(oy)],
                    sum,
                };
                // SAFETY: see above.
                unsafe { rows::<S, 3, 1, 1, C1, C2, G>(s, &inp, &bw, &cheap, w, w, 1, &mut out) };
                sum = out.sum;
                oy += 1;
            }
        }
        if !a.sums.is_null() {
            // SAFETY: sums has 2*nb*8 floats.
            unsafe {
                let q = a.sums.add((nb + cb) * 8);
                s.store(q, s.add(s.load(q), sum));
            }
        }
    }
}

/// Band loop: pointwise for the band's pixels, then the depthwise rows they complete.
///
/// # Safety
/// Pointers valid for the extents checked by [`Kernels::ghost`]; `y` and `scratch` overlap
/// nothing else. Block strides of x, y and r are `h*w*8`.
pub(crate) unsafe fn drive(k: Kernels, a: &GhostArgs) {
    // SAFETY: forwarded.
    unsafe { drive_with::<false>(k, a) }
}

/// [`drive`] with the gate applied (the gate of blocks `b0 .. b1` of both halves has been
/// through its sigmoid).
///
/// # Safety
/// As [`drive`], for args from [`ghost_gated_args`].
pub(crate) unsafe fn drive_gated(k: Kernels, a: &GhostArgs) {
    // SAFETY: forwarded.
    unsafe { drive_with::<true>(k, a) }
}

/// A whole gated module on one thread: the gate's sigmoid (unless activated), its map, the
/// band loop.
///
/// # Safety
/// As [`drive_gated`], with `a` covering every block, and the gate this call's alone.
pub(crate) unsafe fn drive_gated_whole(k: Kernels, a: &GhostArgs) {
    // SAFETY: forwarded; no band loop runs before the map is built.
    unsafe {
        a.gate_sigmoid(k, 0, 2 * a.nb);
        a.build_gate_map();
        drive_gated(k, a);
    }
}

/// The band loop; with `GATED` both epilogues multiply by the gate and the depthwise reads
/// x1 from the ring of pre-gate rows.
///
/// # Safety
/// As [`drive`]; with `GATED`, `a.gate` is set and its map built.
#[inline(always)]
unsafe fn drive_with<const GATED: bool>(k: Kernels, a: &GhostArgs) {
    let (h, w, nb) = (a.h, a.w, a.nb);
    let bs = h * w * 8;
    let row_len = w * 8;
    let band = band_rows(h, w);
    let sb = 3 * band * row_len;
    let has_res = !a.r.is_null();
    let (g, g_bs, gm) = match a.gate {
        Some(g) if GATED => (g.g.cast_const(), g.gh * g.gw * 8, g.map.cast_const()),
        _ => (ptr::null(), 0, ptr::null()),
    };
    let mut r0 = 0;
    let mut dw_next = 0;
    while r0 < h {
        let r1 = (r0 + band).min(h);
        let off = r0 * row_len;
        let pa = PwArgs {
            w: a.pw,
            kb: a.kb,
            nb,
            px: (r1 - r0) * w,
            // SAFETY: rows r0..r1 exist in every block.
            x: unsafe { a.x.add(off) },
            x_bs: bs,
            // SAFETY: as above.
            y: unsafe { a.y.add(off) },
            y_bs: bs,
            r: if has_res {
                // SAFETY: as above.
                unsafe { a.r.add(off) }
            } else {
                ptr::null()
            },
            r_bs: bs,
            pre: if has_res || GATED {
                // SAFETY: slot (r0 / band) % 3 of block 0; a band fits in its slot.
                unsafe { a.scratch.add((r0 / band) % 3 * band * row_len) }
            } else {
                ptr::null_mut()
            },
            pre_bs: sb,
            g,
            g_bs,
            // The map entries from the band's first pixel (the map is indexed by pixel).
            gm: if GATED {
                gm.wrapping_add(r0 * w)
            } else {
                ptr::null()
            },
            sums: a.sums,
            act: a.primary,
            blk0: a.b0,
            blk1: a.b1,
        };
        // SAFETY: forwarded extents; with GATED the gate and its map cover every block and
        // pixel of the module.
        unsafe {
            if GATED {
                pointwise::run_gated_dispatch(k, &pa)
            } else {
                pointwise::run_dispatch(k, &pa)
            }
        };
        let dw_end = if r1 == h { h } else { r1 - 1 };
        let db = DwBand { a, dw_next, dw_end };
        // The dispatch is sound: rows dw_next - 1 ..= dw_end of x1 are now computed.
        if GATED {
            dispatch!(k, dw_band, &db, DwBand<'_>; avx512 [8, 4, 4, 2, true];
                avx2 [4, 2, 2, 1, true]; neon [4, 2, 2, 1, true]; scalar [4, 2, 2, 1, true]);
        } else {
            dispatch!(k, dw_band, &db, DwBand<'_>; avx512 [8, 4, 4, 2, false];
                avx2 [4, 2, 2, 1, false]; neon [4, 2, 2, 1, false]; scalar [4, 2, 2, 1, false]);
        }
        dw_next = dw_end;
        r0 = r1;
    }
}

impl Kernels {
    /// Fused Ghost module over one NCHW8c image (see the module docs): writes x1 to output
    /// blocks `[output.block_offset, +half_blocks)` and x2 to the next `half_blocks` blocks.
    /// `pw_packed` from [`crate::pack_pointwise`] (`k_blocks*8 -> half_blocks*8`), `dw_packed`
    /// from [`crate::pack_depthwise`] with `k = 3`. `scratch` needs
    /// [`ghost_scratch_len`] floats if there is a residual, else may be empty.
    #[allow(clippy::too_many_arguments)]
    pub fn ghost(
        self,
        pw_packed: &[f32],
        dw_packed: &[f32],
        shape: GhostShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: GhostEpilogue<'_>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let a = ghost_args(
            pw_packed, dw_packed, shape, input, output, epilogue, scratch,
        )?;
        // SAFETY: `ghost_args` checked every extent; `output` and `scratch` are unique borrows.
        unsafe { drive(self, &a) };
        Ok(())
    }
}

impl Kernels {
    /// [`Kernels::ghost`] followed by GhostNetV2's DFC gate, applied in the module's store
    /// epilogues (see the module docs): `output *= sigmoid(gate)` nearest-upsampled to
    /// `h x w`. The gate is overwritten with its sigmoid unless it comes `activated`.
    /// `scratch` needs [`ghost_gated_scratch_len`] floats, residual or not. No channel sums
    /// (an error if asked for).
    #[allow(clippy::too_many_arguments)]
    pub fn ghost_gated(
        self,
        pw_packed: &[f32],
        dw_packed: &[f32],
        shape: GhostShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: GhostEpilogue<'_>,
        gate: GhostGate<'_>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let a = ghost_gated_args(
            pw_packed, dw_packed, shape, input, output, epilogue, gate, scratch,
        )?;
        // SAFETY: every extent checked; output, gate and scratch are unique borrows.
        unsafe { drive_gated_whole(self, &a) };
        Ok(())
    }
}

/// The checks of [`Kernels::ghost_gated`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn ghost_gated_args(
    pw_packed: &[f32],
    dw_packed: &[f32],
    shape: GhostShape,
    input: Src<'_>,
    output: Dst<'_>,
    epilogue: GhostEpilogue<'_>,
    gate: GhostGate<'_>,
    scratch: &mut [f32],
) -> Result<GhostArgs, Error> {
    let gs = gate.shape;
    check(
        epilogue.channel_sums.is_none(),
        "epilogue.channel_sums",
        "not supported with a DFC gate",
    )?;
    check(
        gs.blocks == size(&[2, shape.half_blocks]) && gs.h == shape.h && gs.w == shape.w,
        "gate.shape",
        "blocks, h and w must be 2 * half_blocks, h and w of the module",
    )?;
    check(
        gs.gate_h > 0 && gs.gate_w > 0,
        "gate.shape.gate_h",
        "gate must be non-empty",
    )?;
    view(
        "gate",
        gate.gate.len(),
        0,
        gs.blocks,
        size(&[gs.gate_h, gs.gate_w]),
    )?;
    // Offsets into a gate block are u32 in the map.
    check(
        size(&[gs.gate_h, gs.gate_w, 8]) <= u32::MAX as usize,
        "gate.shape.gate_h",
        "gate blocks must have fewer than 2^32 floats",
    )?;
    check_len("scratch", scratch.len(), ghost_gated_scratch_len(shape))?;
    let ring = ghost_scratch_len(shape);
    let mut a = ghost_args(
        pw_packed, dw_packed, shape, input, output, epilogue, scratch,
    )?;
    a.gate = Some(GateGeom {
        g: gate.gate.as_mut_ptr(),
        gh: gs.gate_h,
        gw: gs.gate_w,
        coord: gs.coord,
        nearest: gs.nearest,
        activated: gate.activated,
        // The scratch is f32 and the map u32: same size and alignment, and nothing reads the
        // map's words as floats.
        // SAFETY: `ring + h*w` floats checked just above.
        map: unsafe { a.scratch.add(ring) }.cast::<u32>(),
    });
    Ok(a)
}

/// The checks of [`Kernels::ghost`], returning the raw arguments of the whole module.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ghost_args(
    pw_packed: &[f32],
    dw_packed: &[f32],
    shape: GhostShape,
    input: Src<'_>,
    output: Dst<'_>,
    epilogue: GhostEpilogue<'_>,
    scratch: &mut [f32],
) -> Result<GhostArgs, Error> {
    {
        let GhostShape {
            k_blocks,
            half_blocks: nb,
            h,
            w,
        } = shape;
        check(k_blocks > 0, "shape.k_blocks", "must be positive")?;
        check(nb > 0, "shape.half_blocks", "must be positive")?;
        check(h > 0 && w > 0, "shape.h", "image must be non-empty")?;
        check_len(
            "pw_packed",
            pw_packed.len(),
            packed_len_blocks(k_blocks, nb),
        )?;
        check_len("dw_packed", dw_packed.len(), size(&[nb, 8, 10]))?;
        let hw = size(&[h, w]);
        let xo = view("input", input.data.len(), input.block_offset, k_blocks, hw)?;
        let yo = view(
            "output",
            output.data.len(),
            output.block_offset,
            size(&[2, nb]),
            hw,
        )?;
        let r = match &epilogue.residual {
            Some(res) => {
                let ro = view(
                    "residual",
                    res.data.len(),
                    res.block_offset,
                    size(&[2, nb]),
                    hw,
                )?;
                check_len("scratch", scratch.len(), ghost_scratch_len(shape))?;
                // SAFETY: checked just above.
                unsafe { res.data.as_ptr().add(ro) }
            }
            None => ptr::null(),
        };
        let sums = match epilogue.channel_sums {
            Some(sums) => {
                check_len("channel_sums", sums.len(), size(&[2, nb, 8]))?;
                sums.as_mut_ptr()
            }
            None => ptr::null_mut(),
        };
        let a = GhostArgs {
            pw: pw_packed.as_ptr(),
            dw: dw_packed.as_ptr(),
            kb: k_blocks,
            nb,
            h,
            w,
            // SAFETY: checked by `view`.
            x: unsafe { input.data.as_ptr().add(xo) },
            // SAFETY: checked by `view`.
            y: unsafe { output.data.as_mut_ptr().add(yo) },
            r,
            sums,
            scratch: scratch.as_mut_ptr(),
            primary: epilogue.primary,
            cheap: epilogue.cheap,
            gate: None,
            b0: 0,
            b1: nb,
        };
        Ok(a)
    }
}
