//! GhostNetV2's DFC attention gate applied to the tensor it multiplies: `y *= sigmoid(g)`
//! nearest-upsampled, where `g` is the gate at the pooled (quarter) resolution, on NCHW8c.
//!
//! The gate never exists at full resolution: the sigmoid runs once per quarter-resolution
//! element (in place on `g`), and the upsample is an index mapping computed per output row and
//! column (ONNX nearest semantics for the given coordinate and rounding modes, as the resize
//! kernel computes them), so the multiply reads the gate vector of the mapped pixel straight
//! from `g`. One pass over `y`, in place.
//!
//! Deliberately not done here: the multiply inside the Ghost module's own epilogue (the
//! planner decides where the gate is applied; this kernel is the stand-alone form and the
//! reference for a fused one), and a vector sigmoid (the scalar `expf` of the rest of the
//! runtime keeps results identical to the unfused Sigmoid step; the gate has a quarter of
//! the elements of `y`).

use crate::arch::Simd;
use crate::error::{check, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::view;
use crate::kernels::resize::{nearest, src_coord, CoordMode, NearestMode};
use crate::kernels::softmax::expf;
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

struct DfcArgs {
    sh: DfcShape,
    g: *const f32,
    y: *mut f32,
}

/// # Safety
/// `g` valid for `blocks*gate_h*gate_w*8` floats, `y` for `blocks*h*w*8`, not overlapping.
#[inline(always)]
unsafe fn run<S: Simd>(s: S, a: &DfcArgs) {
    let sh = &a.sh;
    let (ghw, hw) = (sh.gate_h * sh.gate_w, sh.h * sh.w);
    for cb in 0..sh.blocks {
        let gb = a.g.wrapping_add(cb * ghw * 8);
        let yb = a.y.wrapping_add(cb * hw * 8);
        for oy in 0..sh.h {
            let gy = nearest(
                sh.nearest,
                src_coord(sh.coord, oy, sh.gate_h, sh.h),
                sh.gate_h,
            );
            let grow = gb.wrapping_add(gy * sh.gate_w * 8);
            let yrow = yb.wrapping_add(oy * sh.w * 8);
            for ox in 0..sh.w {
                let gx = nearest(
                    sh.nearest,
                    src_coord(sh.coord, ox, sh.gate_w, sh.w),
                    sh.gate_w,
                );
                // SAFETY: gy < gate_h and gx < gate_w (clamped by `nearest`), ox < w.
                unsafe {
                    let p = yrow.add(ox * 8);
                    s.store(p, s.mul(s.load(p), s.load(grow.add(gx * 8))));
                }
            }
        }
    }
}

impl Kernels {
    /// Applies a DFC gate: `gate` (blocks `[0, blocks)` of a `gate_h x gate_w` NCHW8c tensor,
    /// the last gate conv's output before its sigmoid) becomes `sigmoid(gate)` in place, then
    /// every pixel of `y`'s blocks `[y.block_offset, +blocks)` (an `h x w` tensor) is
    /// multiplied by the gate vector of its nearest source pixel.
    pub fn dfc_gate(self, gate: &mut [f32], shape: DfcShape, y: Dst<'_>) -> Result<(), Error> {
        let sh = shape;
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
        let gate = &mut gate[..sh.blocks * ghw * 8];
        for v in gate.iter_mut() {
            *v = 1.0 / (1.0 + expf(-*v));
        }
        let a = DfcArgs {
            sh,
            g: gate.as_ptr(),
            // SAFETY: checked by `view`.
            y: unsafe { y.data.as_mut_ptr().add(yo) },
        };
        // SAFETY: extents checked above; `gate` and `y` are distinct borrows.
        dispatch!(self, run, &a, DfcArgs; avx512 []; avx2 []; neon []; scalar []);
        Ok(())
    }
}
