//! GhostNetV2's DFC attention gate applied to the tensor it multiplies: `y *= sigmoid(g)`
//! nearest-upsampled, where `g` is the gate at the pooled (quarter) resolution, on NCHW8c.
//!
//! The gate never exists at full resolution: the sigmoid runs once per quarter-resolution
//! element (in place on `g`), and the upsample is an index mapping computed per output row and
//! column (ONNX nearest semantics for the given coordinate and rounding modes, as the resize
//! kernel computes them), so the multiply reads the gate vector of the mapped pixel straight
//! from `g`. One pass over `y`, in place.
//!
//! The same row pass (`GateRows`) is what [`Kernels::ghost_gated`] runs in the Ghost
//! module's band loop, on rows still in cache; this stand-alone form serves gates whose `y` is
//! not a Ghost module's output.
//!
//! The sigmoid is the vector one of `arch::math` (within 2 ulp, on the kernels' ISA), the same
//! function as the `Sigmoid` epilogue activation and the glue Sigmoid step on that ISA, so the
//! fused and unfused gates give the same bits.

use crate::arch::Simd;
use crate::error::{check, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::kernels::resize::{nearest, src_coord, CoordMode, NearestMode};
use crate::kernels::vmath::{transcendental_raw, Transcendental};
use crate::Dst;

/// Shape of a DFC gate application on one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DfcShape {
    /// Channel blocks of the gate and of `y`.
    pub blocks: usize,
    /// Gate height (the pooled resolution).
    pub gate_h: usize,
    /// Gate width.
    pub gate_w: usize,
    /// Height of `y`.
    pub h: usize,
    /// Width of `y`.
    pub w: usize,
    /// Coordinate transform of the nearest upsample (PyTorch's `F.interpolate` nearest:
    /// asymmetric).
    pub coord: CoordMode,
    /// Rounding of the nearest upsample (PyTorch: floor).
    pub nearest: NearestMode,
}

/// One gate application over a rectangle of `y`: blocks `blk0 .. blk1` (gate block `b`
/// multiplies `y` block `b`), rows `r0 .. r1`, every column. The gate has been through its
/// sigmoid already.
#[derive(Clone, Copy)]
pub(crate) struct GateRows {
    /// Block 0 of the gate (`gate_h * gate_w * 8` floats per block).
    pub g: *mut f32,
    pub gate_h: usize,
    pub gate_w: usize,
    pub coord: CoordMode,
    pub nearest: NearestMode,
    /// Block 0 of `y` (`h * w * 8` floats per block).
    pub y: *mut f32,
    pub h: usize,
    pub w: usize,
    pub blk0: usize,
    pub blk1: usize,
    pub r0: usize,
    pub r1: usize,
}

/// Columns whose source gate column is computed at once (a stack array: the column mapping
/// does not depend on the row, so it is computed once per chunk and reused by every row and
/// block of the call; computing it per row was a quarter of GhostNetV2's gate-pass samples
/// under perf: 327 -> 246).
const CHUNK: usize = 64;

/// # Safety
/// `g` valid for `blk1*gate_h*gate_w*8` floats, `y` for `blk1*h*w*8`, not overlapping;
/// `r1 <= h`.
#[inline(always)]
unsafe fn gate_rows<S: Simd>(s: S, a: &GateRows) {
    let (ghw, hw) = (a.gate_h * a.gate_w, a.h * a.w);
    let mut map = [0usize; CHUNK];
    let mut x0 = 0;
    while x0 < a.w {
        let n = (a.w - x0).min(CHUNK);
        for (i, m) in map[..n].iter_mut().enumerate() {
            let gx = nearest(
                a.nearest,
                src_coord(a.coord, x0 + i, a.gate_w, a.w),
                a.gate_w,
            );
            *m = gx * 8;
        }
        for oy in a.r0..a.r1 {
            let gy = nearest(a.nearest, src_coord(a.coord, oy, a.gate_h, a.h), a.gate_h);
            for cb in a.blk0..a.blk1 {
                let grow = a.g.wrapping_add((cb * ghw + gy * a.gate_w) * 8);
                let yrow = a.y.wrapping_add(cb * hw * 8 + (oy * a.w + x0) * 8);
                for (i, &m) in map[..n].iter().enumerate() {
                    // SAFETY: gy < gate_h and gx < gate_w (clamped by `nearest`), so row gy,
                    // column gx is inside gate block cb; x0 + i < w and oy < h inside y block
                    // cb.
                    unsafe {
                        let p = yrow.add(i * 8);
                        s.store(p, s.mul(s.load(p), s.load(grow.add(m))));
                    }
                }
            }
        }
        x0 += n;
    }
}

/// [`gate_rows`] on the ISA of `k`.
///
/// # Safety
/// As [`gate_rows`].
pub(crate) unsafe fn gate_dispatch(k: Kernels, a: &GateRows) {
    dispatch!(k, gate_rows, a, GateRows; avx512 []; avx2 []; neon []; scalar []);
}

/// The checks of [`Kernels::dfc_gate`]: the gate's blocks `[0, blocks)` and the start of
/// `y`'s view.
pub(crate) fn dfc_args(gate: &mut [f32], sh: DfcShape, y: Dst<'_>) -> Result<GateRows, Error> {
    check(
        sh.gate_h > 0 && sh.gate_w > 0,
        "shape.gate_h",
        "gate must be non-empty",
    )?;
    check(sh.h > 0 && sh.w > 0, "shape.h", "y must be non-empty")?;
    let ghw = size(&[sh.gate_h, sh.gate_w]);
    view("gate", gate.len(), 0, sh.blocks, ghw)?;
    let yo = view(
        "y",
        y.data.len(),
        y.block_offset,
        sh.blocks,
        size(&[sh.h, sh.w]),
    )?;
    Ok(GateRows {
        g: gate.as_mut_ptr(),
        gate_h: sh.gate_h,
        gate_w: sh.gate_w,
        coord: sh.coord,
        nearest: sh.nearest,
        // SAFETY: checked by `view`.
        y: unsafe { y.data.as_mut_ptr().add(yo) },
        h: sh.h,
        w: sh.w,
        blk0: 0,
        blk1: sh.blocks,
        r0: 0,
        r1: sh.h,
    })
}

impl GateRows {
    /// Takes the sigmoid of gate blocks `blk0 .. blk1` in place, then applies them.
    ///
    /// # Safety
    /// As [`gate_rows`], with the whole rows `0 .. h` ; the gate is writable and these blocks
    /// of it are this call's alone.
    pub(crate) unsafe fn sigmoid_and_apply(&self, k: Kernels) {
        let ghw8 = self.gate_h * self.gate_w * 8;
        // SAFETY: the sigmoid's range is blocks blk0..blk1 of the gate, writable (from `&mut`
        // in `dfc_args`) and this call's alone (the contract); `gate_rows` as the contract.
        unsafe {
            transcendental_raw(
                k,
                Transcendental::Sigmoid,
                self.g.add(self.blk0 * ghw8),
                (self.blk1 - self.blk0) * ghw8,
            );
            gate_dispatch(k, self);
        }
    }
}

impl Kernels {
    /// Applies a DFC gate: `gate` (blocks `[0, blocks)` of a `gate_h x gate_w` NCHW8c tensor,
    /// the last gate conv's output before its sigmoid) becomes `sigmoid(gate)` in place, then
    /// every pixel of `y`'s blocks `[y.block_offset, +blocks)` (an `h x w` tensor) is
    /// multiplied by the gate vector of its nearest source pixel.
    pub fn dfc_gate(self, gate: &mut [f32], shape: DfcShape, y: Dst<'_>) -> Result<(), Error> {
        let a = dfc_args(gate, shape, y)?;
        // SAFETY: extents checked by `dfc_args`; `gate` and `y` are distinct unique borrows.
        unsafe { a.sigmoid_and_apply(self) };
        Ok(())
    }
}
