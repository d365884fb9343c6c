//! Splitting one layer across threads.
//!
//! A [`Fork`] runs a closure once per *part* (`0 .. parts()`), the caller taking a share of
//! them, and returns when every part is done. [`Serial`] is the one-part fork (no synchronization at
//! all); with `std`, [`crate::Team`] is a persistent pool. [`Par`] wraps [`Kernels`] and a fork
//! and offers the layer kernels with the same arguments as [`Kernels`]: it checks the
//! arguments once, exactly as the serial kernel does, then gives each part a disjoint share
//! of the output.
//!
//! The partition is a pure function of the layer's shape and the number of parts (no work
//! stealing, no atomics inside kernels): shapes are compile-time constants in generated code,
//! so each layer's split is fixed when the model is compiled, and results are bit-identical
//! for any thread count (every output value and channel sum is computed by the same code on
//! the same inputs in the same order; only who computes it changes).
//! * pointwise: by pixels when there are no channel sums and the activations outweigh the
//!   weights or the output blocks are too few to share out, else by output blocks;
//! * Ghost module: by blocks of each half (x1 block `c` and the x2 block computed from it go
//!   to the same part, so the cheap depthwise reads only its own part's x1); when the blocks
//!   do not share out evenly (1, 3 or 5 blocks on 2 threads) on a large image without channel
//!   sums, by rows instead, as three passes (1x1, cheap depthwise, residual) with a join
//!   between them, since a row's depthwise needs its neighbours' x1 rows;
//! * depthwise: by blocks, or by output rows when blocks are few and there are no sums;
//! * expansion 1x1 + depthwise (`pointwise_depthwise`): by blocks (block `c` of the expanded
//!   tensor feeds only output block `c`, so each part streams its own blocks through its own
//!   rows of the ring); whole on one part when the blocks are fewer than the parts;
//! * grouped conv: as depthwise (by output blocks, or rows when blocks are few);
//! * Winograd 3x3 conv: chunk by chunk (the chunks fixed by the shape), each chunk's input
//!   transform by input blocks, its 16 GEMMs by position, its output transform by output
//!   blocks, with a join between them;
//! * dense conv (stem): by output rows; fully connected: by whole weight panels;
//! * DFC gate: by blocks; in a gated Ghost module, with the module's split (by blocks, each
//!   part gating its own blocks of both halves; by rows, a last pass gating each part's rows).
//!
//! A layer smaller than [`MIN_SPLIT_MACS`] runs whole on the calling thread: splitting it
//! would cost more in hand-offs than it saves (`GHOST_MIN_SPLIT_MACS=N` overrides it, with
//! `std`; the end-to-end tests use 0).

use crate::error::Error;
use crate::kernels::conv::{conv_args, conv_exec};
use crate::kernels::depthwise::{depthwise_args, depthwise_exec, DwArgs};
use crate::kernels::depthwise_general::{depthwise_any_args, DwAny};
use crate::kernels::dfc::{dfc_args, gate_dispatch, GateRows};
use crate::kernels::fc::{fc_args, fc_dispatch};
use crate::kernels::ghost::{
    drive as ghost_drive, drive_gated as ghost_drive_gated,
    drive_gated_whole as ghost_drive_gated_whole, ghost_args, ghost_gated_args, GhostArgs,
};
use crate::kernels::grouped::{grouped_args, grouped_exec, GcArgs};
use crate::kernels::pointwise::{pointwise_args, run_dispatch as pointwise_dispatch};
use crate::kernels::pwdw::{pwdw_args, pwdw_exec};
use crate::kernels::qdepthwise::{
    depthwise_u8_args, depthwise_u8_concat_args, depthwise_u8_exec, GhostConcatU8, QDwArgs,
};
use crate::kernels::qpointwise::{
    pointwise_u8_args, run_dispatch as qpointwise_dispatch, QPwArgs, Requant,
};
use crate::kernels::quantize::{dequantize_args, quant_exec, quantize_args, QuantArgs};
use crate::kernels::se::se_gate_with;
use crate::kernels::winograd::{
    gemm_phase as winograd_gemm, input_dispatch as winograd_input,
    output_dispatch as winograd_output, winograd_args, winograd_exec, POS as WINOGRAD_POSITIONS,
};
use crate::{
    Activation, ConvShape, DepthwiseGeneralShape, DepthwiseShape, DfcShape, Dst, Epilogue,
    GhostEpilogue, GhostGate, GhostShape, GroupedConvShape, Kernels, PointwiseShape, PwDwShape,
    SeActivations, SeShape, Src, WinogradShape, PANEL_BLOCKS,
};

/// Layers with fewer multiply-adds (or, for the memory-bound fully connected layer, weights)
/// than this are not split: about 3 us of work at 35 GMAC/s, where a split's hand-off and
/// cross-core cache traffic would eat most of the gain. A chosen value, not a tuned one.
pub const MIN_SPLIT_MACS: usize = 100_000;

/// Runs a closure once per part and waits for all of them.
pub trait Fork: Sync {
    /// Number of parts a [`Fork::run`] executes (>= 1).
    fn parts(&self) -> usize;
    /// Calls `f(part)` once for every part in `0 .. parts()`, on the calling thread or on
    /// others, and returns after all calls returned.
    fn run(&self, f: &(dyn Fn(usize) + Sync));
}

/// The fork of one part: `run(f)` is `f(0)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl Fork for Serial {
    fn parts(&self) -> usize {
        1
    }
    fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        f(0)
    }
}

/// Part `i` of `n` items split into `parts` near-equal contiguous ranges.
pub const fn part_range(n: usize, parts: usize, i: usize) -> (usize, usize) {
    (n * i / parts, n * (i + 1) / parts)
}

/// [`MIN_SPLIT_MACS`], or with `std` the value of the environment variable
/// `GHOST_MIN_SPLIT_MACS` if set (read once; tests set 0 so every layer of a small model is
/// split).
fn default_min_split() -> usize {
    #[cfg(feature = "std")]
    {
        use core::sync::atomic::{AtomicUsize, Ordering};
        static CACHE: AtomicUsize = AtomicUsize::new(usize::MAX);
        let v = CACHE.load(Ordering::Relaxed);
        if v != usize::MAX {
            return v;
        }
        let v = std::env::var("GHOST_MIN_SPLIT_MACS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(MIN_SPLIT_MACS)
            .min(usize::MAX - 1);
        CACHE.store(v, Ordering::Relaxed);
        v
    }
    #[cfg(not(feature = "std"))]
    MIN_SPLIT_MACS
}

/// Part `i`'s output blocks, as whole weight panels when `whole_panels`. A panel-aligned
/// share of a packed weight is itself a packed weight (fully connected layers, gate folding),
/// and with channel sums it keeps the serial register tiles: a share starting inside a panel
/// would use narrower tiles there, which add up a channel's pixels in other groups, so the
/// sums (hence the squeeze-and-excitation gates) would differ in rounding from the serial run.
fn block_share(nb: usize, parts: usize, i: usize, whole_panels: bool) -> (usize, usize) {
    if whole_panels {
        let (t0, t1) = part_range(nb.div_ceil(PANEL_BLOCKS), parts, i);
        ((t0 * PANEL_BLOCKS).min(nb), (t1 * PANEL_BLOCKS).min(nb))
    } else {
        part_range(nb, parts, i)
    }
}

/// Whether the product of `factors` (a layer's multiply-adds) is below `min`.
fn small(min: usize, factors: &[usize]) -> bool {
    factors.iter().fold(1usize, |p, &f| p.saturating_mul(f)) < min
}

/// Raw kernel arguments shared by the parts of one call. The pointers come from borrows the
/// `Par` method holds for the whole call, and each part writes a disjoint share.
/// A checked depthwise layer [`Par`] can run whole or share out: the square 3x3/5x5 kernel's
/// arguments, or either kernel's ([`DwAny`]).
trait DwLayer: Sized {
    /// Output rows, channel blocks, whether it accumulates channel sums.
    fn extent(&self) -> (usize, usize, bool);
    fn macs(&self) -> [usize; 6];
    /// Blocks `b0 .. b1`, output rows `oy0 .. oy1`.
    fn share(&self, b0: usize, b1: usize, oy0: usize, oy1: usize) -> Self;
    /// # Safety
    /// As the kernel's `exec`: a checked layer whose borrows are alive.
    unsafe fn exec(&self, k: Kernels);
}

impl DwLayer for DwArgs {
    fn extent(&self) -> (usize, usize, bool) {
        (self.oh, self.blocks, !self.sums.is_null())
    }
    fn macs(&self) -> [usize; 6] {
        [self.oh, self.ow, self.blocks, 8, self.k, self.k]
    }
    fn share(&self, b0: usize, b1: usize, oy0: usize, oy1: usize) -> Self {
        self.blocks(b0, b1).rows(oy0, oy1)
    }
    unsafe fn exec(&self, k: Kernels) {
        // SAFETY: forwarded contract.
        unsafe { depthwise_exec(k, self) }
    }
}

impl DwLayer for DwAny {
    fn extent(&self) -> (usize, usize, bool) {
        DwAny::extent(self)
    }
    fn macs(&self) -> [usize; 6] {
        DwAny::macs(self)
    }
    fn share(&self, b0: usize, b1: usize, oy0: usize, oy1: usize) -> Self {
        DwAny::share(self, b0, b1, oy0, oy1)
    }
    unsafe fn exec(&self, k: Kernels) {
        // SAFETY: forwarded contract.
        unsafe { DwAny::exec(self, k) }
    }
}

/// The grouped conv shares out like a depthwise layer: by output blocks, or by rows.
impl DwLayer for GcArgs {
    fn extent(&self) -> (usize, usize, bool) {
        GcArgs::extent(self)
    }
    fn macs(&self) -> [usize; 6] {
        GcArgs::macs(self)
    }
    fn share(&self, b0: usize, b1: usize, oy0: usize, oy1: usize) -> Self {
        GcArgs::share(self, b0, b1, oy0, oy1)
    }
    unsafe fn exec(&self, k: Kernels) {
        // SAFETY: forwarded contract.
        unsafe { grouped_exec(k, self) }
    }
}

struct Shared<T>(T);
// SAFETY: the wrapped arguments are only read; the memory they point to is written through
// disjoint shares (see each `Par` method), and the borrows outlive `Fork::run`.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Accessor, so closures capture the whole wrapper (edition-2021 closures would capture
    /// the non-`Sync` field alone).
    fn get(&self) -> &T {
        &self.0
    }
}

/// [`Kernels`] whose layer kernels split their work over a [`Fork`].
#[derive(Clone, Copy)]
pub struct Par<'f> {
    k: Kernels,
    fork: &'f dyn Fork,
    min_split: usize,
}

impl core::fmt::Debug for Par<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Par")
            .field("kernels", &self.k)
            .field("parts", &self.fork.parts())
            .field("min_split", &self.min_split)
            .finish()
    }
}

impl<'f> Par<'f> {
    /// Kernels `k` run over `fork`'s parts.
    pub fn new(k: Kernels, fork: &'f dyn Fork) -> Self {
        Par {
            k,
            fork,
            min_split: default_min_split(),
        }
    }

    /// Splits layers of at least `macs` multiply-adds (default [`MIN_SPLIT_MACS`]; 0 splits
    /// every layer, as the tests do).
    pub fn min_split_macs(self, macs: usize) -> Self {
        Par {
            min_split: macs,
            ..self
        }
    }

    /// [`Kernels::pointwise`], split by pixels or output blocks.
    pub fn pointwise(
        &self,
        packed: &[f32],
        shape: PointwiseShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = pointwise_args(packed, shape, input, output, epilogue)?;
        let (k, parts) = (self.k, self.fork.parts());
        if parts == 1 || small(self.min_split, &[a.px, a.kb, a.nb, 64]) {
            // SAFETY: checked by `pointwise_args`; the borrows live until we return.
            unsafe { pointwise_dispatch(k, &a) };
            return Ok(());
        }
        // Pixels when the activations outweigh the weights (early, large layers: each thread
        // then keeps its own rows in its own cache) or the blocks are too few to share out.
        let by_pixels =
            a.sums.is_null() && a.px >= 8 * parts && (a.nb < 4 * parts || a.px >= 64 * a.nb);
        let a = Shared(a);
        self.fork.run(&|i| {
            let a = a.get();
            let part = if by_pixels {
                let (p0, p1) = part_range(a.px, parts, i);
                a.pixels(p0, p1)
            } else {
                let (b0, b1) = block_share(a.nb, parts, i, !a.sums.is_null());
                crate::kernels::pointwise::PwArgs {
                    blk0: b0,
                    blk1: b1,
                    ..*a
                }
            };
            if part.px > 0 && part.blk0 < part.blk1 {
                // SAFETY: a share of a checked layer; shares write disjoint pixels or blocks
                // (and disjoint channel sums), and the borrows outlive `run`.
                unsafe { pointwise_dispatch(k, &part) };
            }
        });
        Ok(())
    }

    /// [`Kernels::pointwise_u8`], split by pixels (large images) or output blocks. Every
    /// output byte is one exact integer dot product and its own epilogue, so any split is
    /// bit-identical to the serial kernel.
    pub fn pointwise_u8(
        &self,
        packed: &[u8],
        shape: PointwiseShape,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
        requant: Requant<'_>,
    ) -> Result<(), Error> {
        let a = pointwise_u8_args(packed, shape, input, output, &requant)?;
        let (k, parts) = (self.k, self.fork.parts());
        if parts == 1 || small(self.min_split, &[a.px, a.kb, a.nb, 64]) {
            // SAFETY: checked by `pointwise_u8_args`; the borrows live until we return.
            unsafe { qpointwise_dispatch(k, &a) };
            return Ok(());
        }
        let by_pixels = a.px >= 8 * parts && (a.nb < 4 * parts || a.px >= 64 * a.nb);
        let a = Shared(a);
        self.fork.run(&|i| {
            let a = a.get();
            let part = if by_pixels {
                let (p0, p1) = part_range(a.px, parts, i);
                a.pixels(p0, p1)
            } else {
                let (b0, b1) = block_share(a.nb, parts, i, false);
                QPwArgs {
                    blk0: b0,
                    blk1: b1,
                    ..*a
                }
            };
            if part.px > 0 && part.blk0 < part.blk1 {
                // SAFETY: a share of a checked layer; shares write disjoint pixels or blocks,
                // and the borrows outlive `run`.
                unsafe { qpointwise_dispatch(k, &part) };
            }
        });
        Ok(())
    }

    /// [`Kernels::depthwise_u8`], split by channel blocks, or by output rows when the blocks
    /// are fewer than the parts. Bit-identical to the serial kernel (each output is computed
    /// on its own).
    pub fn depthwise_u8(
        &self,
        packed: &[u8],
        shape: DepthwiseShape,
        input_zero_point: u8,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
        requant: Requant<'_>,
    ) -> Result<(), Error> {
        let a = depthwise_u8_args(packed, shape, input_zero_point, input, output, &requant)?;
        // SAFETY: checked by `depthwise_u8_args`; the borrows live until we return.
        unsafe { self.split_depthwise_u8(a) };
        Ok(())
    }

    /// [`Kernels::depthwise_u8_concat`], split by output rows (blocks of the concatenation
    /// hold lanes of two of the conv's blocks), each part with its share of `buffer` (serial
    /// when the buffer has fewer lines than there are parts). Bit-identical to the serial
    /// kernel.
    #[allow(clippy::too_many_arguments)]
    pub fn depthwise_u8_concat(
        &self,
        packed: &[u8],
        shape: DepthwiseShape,
        input_zero_point: u8,
        input: Src<'_, u8>,
        output: Dst<'_, u8>,
        requant: Requant<'_>,
        concat: GhostConcatU8,
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let a = depthwise_u8_concat_args(
            packed,
            shape,
            input_zero_point,
            input,
            output,
            &requant,
            concat,
            buffer,
        )?;
        // SAFETY: checked by `depthwise_u8_concat_args`; the borrows live until we return.
        unsafe { self.split_depthwise_u8(a) };
        Ok(())
    }

    /// Runs a checked int8 depthwise layer over the parts, split by channel blocks, or by
    /// output rows when the blocks are fewer than the parts or the layer writes a
    /// concatenation.
    ///
    /// # Safety
    /// `a` comes from the checks of a layer whose borrows outlive the call.
    unsafe fn split_depthwise_u8(&self, a: QDwArgs) {
        let (k, parts) = (self.k, self.fork.parts());
        let by_rows = a.cat.is_some() || a.blocks < parts;
        let lines_split = a.cat.is_none_or(|c| c.splits(parts, a.ow));
        if parts == 1 || !lines_split || small(self.min_split, &[a.oh, a.ow, a.blocks, 8, a.k, a.k])
        {
            // SAFETY: the caller's contract.
            unsafe { depthwise_u8_exec(k, &a, true) };
            return;
        }
        let a = Shared(a);
        self.fork.run(&|i| {
            let a = a.get();
            let part = if by_rows {
                let (r0, r1) = part_range(a.oh, parts, i);
                let mut part = a.share(0, a.blocks, r0, r1);
                part.cat = a.cat.map(|c| c.part(i, parts, a.ow));
                part
            } else {
                let (b0, b1) = part_range(a.blocks, parts, i);
                a.share(b0, b1, 0, a.oh)
            };
            if part.blocks > 0 && part.oy0 < part.oy1 {
                // SAFETY: a share of a checked layer writing disjoint blocks or rows; the
                // borrows outlive `run`.
                unsafe { depthwise_u8_exec(k, &part, true) };
            }
        });
    }

    /// [`Kernels::quantize_u8`], split into contiguous ranges of pixels.
    pub fn quantize_u8(
        &self,
        blocks: usize,
        pixels: usize,
        scale: f32,
        zero_point: u8,
        input: Src<'_>,
        output: Dst<'_, u8>,
    ) -> Result<(), Error> {
        let a = quantize_args(blocks, pixels, scale, zero_point, input, output)?;
        self.quant(a);
        Ok(())
    }

    /// [`Kernels::dequantize_u8`], split into contiguous ranges of pixels.
    pub fn dequantize_u8(
        &self,
        blocks: usize,
        pixels: usize,
        scale: f32,
        zero_point: u8,
        input: Src<'_, u8>,
        output: Dst<'_>,
    ) -> Result<(), Error> {
        let a = dequantize_args(blocks, pixels, scale, zero_point, input, output)?;
        self.quant(a);
        Ok(())
    }

    /// Runs a checked (de)quantization, split when large (each vector is converted on its
    /// own, so any split is bit-identical).
    fn quant(&self, a: QuantArgs) {
        let (k, parts) = (self.k, self.fork.parts());
        if parts == 1 || small(self.min_split, &[a.n, 8]) {
            // SAFETY: checked by the caller's `*_args`; the borrows live until it returns.
            unsafe { quant_exec(k, &a) };
            return;
        }
        let a = Shared(a);
        self.fork.run(&|i| {
            let a = a.get();
            let (v0, v1) = part_range(a.n, parts, i);
            if v0 < v1 {
                // SAFETY: disjoint vector ranges of a checked conversion.
                unsafe { quant_exec(k, &a.share(v0, v1)) };
            }
        });
    }

    /// [`Kernels::ghost`], split by blocks of each half.
    #[allow(clippy::too_many_arguments)]
    pub fn ghost(
        &self,
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
        // SAFETY: checked by `ghost_args`; the borrows live until we return.
        unsafe { self.ghost_split::<false>(a, shape) };
        Ok(())
    }

    /// [`Kernels::ghost_gated`], split as [`Par::ghost`]; each part takes the sigmoid of its
    /// own gate blocks (or, split by rows, of its share of the gate) and gates its share.
    #[allow(clippy::too_many_arguments)]
    pub fn ghost_gated(
        &self,
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
        // SAFETY: checked by `ghost_gated_args`; the borrows live until we return.
        unsafe { self.ghost_split::<true>(a, shape) };
        Ok(())
    }

    /// The split of [`Par::ghost`] and [`Par::ghost_gated`].
    ///
    /// # Safety
    /// `a` from `ghost_args` (`ghost_gated_args` if `GATED`), its borrows alive.
    unsafe fn ghost_split<const GATED: bool>(&self, a: GhostArgs, shape: GhostShape) {
        let (k, parts) = (self.k, self.fork.parts());
        let nb = a.half_blocks();
        let per_pixel = shape.k_blocks.saturating_mul(8).saturating_add(9);
        if parts == 1 || small(self.min_split, &[shape.h, shape.w, nb, 8, per_pixel]) {
            // SAFETY: forwarded.
            unsafe {
                if GATED {
                    ghost_drive_gated_whole(k, &a);
                } else {
                    ghost_drive(k, &a);
                }
            }
            return;
        }
        // Split the rows instead, in separate passes (see `Unfused`), when the blocks split
        // unevenly (1 block on 2 threads, 3 or 5 blocks, ...) on a large image, or when the
        // module reduces channels (more input blocks than output blocks of a half: every
        // block share would read the whole, larger, input; GhostNet's residual modules, e.g.
        // 672 -> 56+56 at 14x14 ran at 0.9x of one thread split by blocks, 1.2x by rows).
        let uneven = nb.div_ceil(parts) * parts * 100 > nb * 115;
        let reduces = shape.k_blocks > nb;
        let by_rows = !a.has_sums()
            && a.h() >= 2 * parts
            && (reduces || (uneven && a.h() * a.w() >= 64 * nb));
        if by_rows {
            let u = Shared(a.unfused());
            let (h, w) = (a.h(), a.w());
            let ga = Shared(a);
            self.fork.run(&|i| {
                let (r0, r1) = part_range(h, parts, i);
                // SAFETY: rows r0..r1 of x1 (pass 1 writes only the x1 half).
                unsafe { pointwise_dispatch(k, &u.get().pw.pixels(r0 * w, r1 * w)) };
                if GATED {
                    let (g0, g1) = part_range(2 * nb, parts, i);
                    // SAFETY: this part's gate blocks; no pass reads the gate before the
                    // last one, after a join.
                    unsafe { ga.get().gate_sigmoid(k, g0, g1) };
                }
            });
            self.fork.run(&|i| {
                let (r0, r1) = part_range(h, parts, i);
                // SAFETY: x2 rows r0..r1; x1 (all rows, read-only now) is complete.
                unsafe { depthwise_exec(k, &u.get().dw.rows(r0, r1)) };
            });
            // The residual and the gate pass touch only rows r0..r1 of each part; the gate
            // multiplies the stored values, after the residual, as the serial loop does.
            let res = !u.get().res1.is_null();
            if res || GATED {
                self.fork.run(&|i| {
                    let (r0, r1) = part_range(h, parts, i);
                    let u = u.get();
                    if res {
                        for cb in 0..nb {
                            let off = cb * h * w * 8 + r0 * w * 8;
                            let len = (r1 - r0) * w * 8;
                            // SAFETY: rows r0..r1 of x1 block cb (this share's alone; no
                            // pass reads x1 any more) and the same rows of the residual's
                            // x1 half.
                            let (y, r) = unsafe {
                                (
                                    core::slice::from_raw_parts_mut(u.y1.add(off), len),
                                    core::slice::from_raw_parts(u.res1.add(off), len),
                                )
                            };
                            for (y, r) in y.iter_mut().zip(r) {
                                *y += *r;
                            }
                        }
                    }
                    if GATED && r0 < r1 {
                        // SAFETY: rows r0..r1 of every output block, this part's alone; the
                        // gate (read-only now) went through its sigmoid in pass 1.
                        unsafe { gate_dispatch(k, &ga.get().gate_rows(0, 2 * nb, r0, r1)) };
                    }
                });
            }
            return;
        }
        let sums = a.has_sums();
        if GATED {
            // SAFETY: no band loop runs yet; the parts only read the map.
            unsafe { a.build_gate_map() };
        }
        let a = Shared(a);
        self.fork.run(&|i| {
            let (b0, b1) = block_share(nb, parts, i, sums);
            if b0 < b1 {
                let a = a.get().blocks(b0, b1);
                // SAFETY: a share of a checked module: blocks b0..b1 of x1, x2, the residual,
                // the sums, the scratch ring and (both halves of) the gate are this part's
                // alone.
                unsafe {
                    if GATED {
                        a.gate_sigmoid(k, b0, b1);
                        a.gate_sigmoid(k, nb + b0, nb + b1);
                        ghost_drive_gated(k, &a);
                    } else {
                        ghost_drive(k, &a);
                    }
                }
            }
        });
    }

    /// [`Kernels::dfc_gate`], split by blocks (each part takes the sigmoid of its own gate
    /// blocks and applies them).
    pub fn dfc_gate(&self, gate: &mut [f32], shape: DfcShape, y: Dst<'_>) -> Result<(), Error> {
        let a = dfc_args(gate, shape, y)?;
        let (k, parts) = (self.k, self.fork.parts());
        let blocks = shape.blocks;
        if parts == 1 || small(self.min_split, &[shape.h, shape.w, blocks, 8]) {
            // SAFETY: checked by `dfc_args`; the borrows live until we return.
            unsafe { a.sigmoid_and_apply(k) };
            return Ok(());
        }
        let a = Shared(a);
        self.fork.run(&|i| {
            let (b0, b1) = part_range(blocks, parts, i);
            if b0 < b1 {
                let a = GateRows {
                    blk0: b0,
                    blk1: b1,
                    ..*a.get()
                };
                // SAFETY: blocks b0..b1 of the gate and of y are this part's alone.
                unsafe { a.sigmoid_and_apply(k) };
            }
        });
        Ok(())
    }

    /// [`Kernels::depthwise`], split by blocks or output rows.
    pub fn depthwise(
        &self,
        packed: &[f32],
        shape: DepthwiseShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        // The square kernel's own arguments, not `DwAny::Square`: this instantiation of
        // `split_depthwise` never references the general kernel, so a model without such layers
        // does not link it (wasm and Cortex-M code size).
        let a = depthwise_args(packed, shape, input, output, epilogue)?;
        self.split_depthwise(a);
        Ok(())
    }

    /// [`Kernels::pointwise_depthwise`], split by blocks (see the module docs).
    #[allow(clippy::too_many_arguments)]
    pub fn pointwise_depthwise(
        &self,
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
        let (k, parts) = (self.k, self.fork.parts());
        let nb = a.n_blocks();
        if parts == 1 || nb < parts || small(self.min_split, &[a.macs()]) {
            // SAFETY: checked by `pwdw_args`; the borrows live until we return.
            unsafe { pwdw_exec(k, &a) };
            return Ok(());
        }
        let a = Shared(a);
        self.fork.run(&|i| {
            let (b0, b1) = part_range(nb, parts, i);
            if b0 < b1 {
                // SAFETY: a share of a checked layer: its own blocks of the ring, the output
                // and the sums.
                unsafe { pwdw_exec(k, &a.get().blocks(b0, b1)) };
            }
        });
        Ok(())
    }

    /// [`Kernels::depthwise_general`], split as [`Par::depthwise`].
    pub fn depthwise_general(
        &self,
        packed: &[f32],
        shape: DepthwiseGeneralShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = depthwise_any_args(self.k.isa(), packed, shape, input, output, epilogue)?;
        self.split_depthwise(a);
        Ok(())
    }

    /// [`Kernels::conv_grouped`], split by output blocks, or by output rows when blocks are
    /// few and there are no channel sums.
    pub fn conv_grouped(
        &self,
        packed: &[f32],
        shape: GroupedConvShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = grouped_args(packed, shape, input, output, epilogue)?;
        self.split_depthwise(a);
        Ok(())
    }

    /// Runs a checked depthwise layer by blocks, or by output rows when blocks are few and
    /// there are no channel sums.
    fn split_depthwise<A: DwLayer>(&self, a: A) {
        let (k, parts) = (self.k, self.fork.parts());
        if parts == 1 || small(self.min_split, &a.macs()) {
            // SAFETY: checked by the caller; the borrows live until it returns.
            unsafe { a.exec(k) };
            return;
        }
        let (oh, nb, sums) = a.extent();
        let by_rows = !sums && nb < 4 * parts && oh >= 2 * parts;
        let a = Shared(a);
        self.fork.run(&|i| {
            let (b0, b1, r0, r1) = if by_rows {
                let (r0, r1) = part_range(oh, parts, i);
                (0, nb, r0, r1)
            } else {
                let (b0, b1) = part_range(nb, parts, i);
                (b0, b1, 0, oh)
            };
            if b0 < b1 && r0 < r1 {
                // SAFETY: a share of a checked layer writing disjoint blocks or rows.
                unsafe { a.get().share(b0, b1, r0, r1).exec(k) };
            }
        });
    }

    /// [`Kernels::conv`], split by output rows (whole layer on one part if it has sums).
    pub fn conv(
        &self,
        packed: &[f32],
        shape: ConvShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
    ) -> Result<(), Error> {
        let a = conv_args(packed, shape, input, output, epilogue)?;
        let (k, parts) = (self.k, self.fork.parts());
        let sh = shape;
        let work = [
            sh.out_h(),
            sh.out_w(),
            sh.out_blocks,
            8,
            sh.cin,
            sh.kh,
            sh.kw,
        ];
        if parts == 1 || a.has_sums() || small(self.min_split, &work) {
            // SAFETY: checked by `conv_args`; the borrows live until we return.
            unsafe { conv_exec(k, &a) };
            return Ok(());
        }
        let a = Shared(a);
        self.fork.run(&|i| {
            let (r0, r1) = part_range(a.get().out_h(), parts, i);
            if r0 < r1 {
                // SAFETY: a share of a checked layer writing disjoint output rows.
                unsafe { conv_exec(k, &a.get().rows(r0, r1)) };
            }
        });
        Ok(())
    }

    /// [`Kernels::conv_winograd`], chunk by chunk, each of its three phases split (input
    /// blocks, GEMM positions, output blocks) with a join after each.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_winograd(
        &self,
        packed: &[f32],
        shape: WinogradShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let a = winograd_args(packed, shape, input, output, epilogue, scratch)?;
        let (k, parts) = (self.k, self.fork.parts());
        let work = [
            shape.tiles(),
            4 * 16,
            shape.in_blocks() * 8,
            shape.out_blocks * 8,
        ];
        if parts == 1 || small(self.min_split, &work) {
            // SAFETY: checked by `winograd_args`; the borrows live until we return.
            unsafe { winograd_exec(k, &a) };
            return Ok(());
        }
        let (ib, ob) = (shape.in_blocks(), shape.out_blocks);
        let a = Shared(a);
        for (t0, nt) in shape.chunks() {
            // Each phase reads only what the previous one wrote, after its join; each part
            // writes its own input blocks of `U`, positions of `M`, output blocks (and sums).
            self.fork.run(&|i| {
                let (b0, b1) = part_range(ib, parts, i);
                if b0 < b1 {
                    // SAFETY: this part's input blocks of the chunk's `U`.
                    unsafe { winograd_input(k, &a.get().phase(t0, nt, b0, b1)) };
                }
            });
            self.fork.run(&|i| {
                let (p0, p1) = part_range(WINOGRAD_POSITIONS, parts, i);
                if p0 < p1 {
                    // SAFETY: this part's positions of `M`; `U` complete and read-only.
                    unsafe { winograd_gemm(k, &a.get().phase(t0, nt, p0, p1)) };
                }
            });
            self.fork.run(&|i| {
                let (b0, b1) = part_range(ob, parts, i);
                if b0 < b1 {
                    // SAFETY: this part's output blocks and sums; `M` complete, read-only.
                    unsafe { winograd_output(k, &a.get().phase(t0, nt, b0, b1)) };
                }
            });
        }
        Ok(())
    }

    /// [`Kernels::fc`], split by whole weight panels.
    pub fn fc(
        &self,
        packed: &[f32],
        k_blocks: usize,
        n_blocks: usize,
        x: &[f32],
        y: &mut [f32],
        act: Activation,
    ) -> Result<(), Error> {
        let a = fc_args(packed, k_blocks, n_blocks, x, y, act)?;
        let (k, parts) = (self.k, self.fork.parts());
        let panels = n_blocks.div_ceil(PANEL_BLOCKS);
        if parts == 1 || panels == 1 || small(self.min_split, &[k_blocks, n_blocks, 64]) {
            fc_dispatch(k, &a);
            return Ok(());
        }
        let a = Shared(a);
        self.fork.run(&|i| {
            let (b0, b1) = block_share(n_blocks, parts, i, true);
            if b0 < b1 {
                fc_dispatch(k, &a.get().blocks(b0, b1));
            }
        });
        Ok(())
    }

    /// [`Kernels::se_gate`], its two fully connected layers split by weight panels.
    #[allow(clippy::too_many_arguments)]
    pub fn se_gate(
        &self,
        sums: &[f32],
        inv_pixels: f32,
        reduce: &[f32],
        expand: &[f32],
        shape: SeShape,
        acts: SeActivations,
        scratch: &mut [f32],
        gate: &mut [f32],
    ) -> Result<(), Error> {
        se_gate_with(
            &|w, kb, nb, x, y, act| self.fc(w, kb, nb, x, y, act),
            sums,
            inv_pixels,
            reduce,
            expand,
            shape,
            acts,
            scratch,
            gate,
        )
    }

    /// [`crate::scale_packed_pointwise`], split by whole weight panels (a panel-aligned
    /// slice of a packed weight is the packed weight of those output channels).
    pub fn scale_packed_pointwise(
        &self,
        packed: &[f32],
        k_pad: usize,
        n_pad: usize,
        scale: &[f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let parts = self.fork.parts();
        let panels = n_pad.div_ceil(8 * PANEL_BLOCKS);
        let len = crate::pointwise_packed_len(k_pad, n_pad);
        if parts == 1
            || panels < 2
            || small(self.min_split, &[k_pad, n_pad])
            || packed.len() != len
            || out.len() != len
            || !k_pad.is_multiple_of(8)
            || !n_pad.is_multiple_of(8)
        {
            // Also the path that reports any argument error.
            return crate::scale_packed_pointwise(packed, k_pad, n_pad, scale, out);
        }
        crate::error::check_len("scale", scale.len(), k_pad)?;
        let o = Shared(out.as_mut_ptr());
        self.fork.run(&|i| {
            let (b0, b1) = block_share(n_pad / 8, parts, i, true);
            if b0 < b1 {
                let (f0, f1) = (b0 * 8 * (k_pad + 1), b1 * 8 * (k_pad + 1));
                // SAFETY: blocks b0..b1 of `out` (length checked above) are this part's
                // alone; `out` is borrowed for the whole call.
                let out = unsafe { core::slice::from_raw_parts_mut(o.get().add(f0), f1 - f0) };
                crate::scale_packed_pointwise(&packed[f0..f1], k_pad, (b1 - b0) * 8, scale, out)
                    .expect("a panel-aligned slice of a checked packed weight is valid");
            }
        });
        Ok(())
    }
}

/// What [`par_images`] runs for one image: `(input, output, scratch)`.
pub type ImageFn<'a> = dyn Fn(&[f32], &mut [f32], &mut [f32]) -> Result<(), Error> + Sync + 'a;

/// Runs `f(image_in, image_out, scratch)` for every image of a batch, the images split into
/// contiguous runs over the fork's parts, each part with its own `scratch_len` floats of
/// `scratch`. Checks that `input`/`output` hold whole images and that `scratch` has
/// `parts * scratch_len` floats; returns the first error a part reported.
#[allow(clippy::too_many_arguments)]
pub fn par_images(
    fork: &dyn Fork,
    input: &[f32],
    image_in: usize,
    output: &mut [f32],
    image_out: usize,
    scratch: &mut [f32],
    scratch_len: usize,
    f: &ImageFn<'_>,
) -> Result<(), Error> {
    let parts = fork.parts();
    crate::error::check(
        image_in > 0 && input.len().is_multiple_of(image_in),
        "input",
        "must hold whole images",
    )?;
    let images = input.len() / image_in;
    crate::error::check_len("output", output.len(), images * image_out)?;
    crate::error::check_len("scratch", scratch.len(), parts * scratch_len)?;
    par_images_io(
        fork,
        [input],
        [image_in],
        [&mut output[..images * image_out]],
        [image_out],
        scratch,
        scratch_len,
        &|x, y, s| f(x[0], &mut *y[0], s),
    )
}

/// What [`par_images_io`] runs for one image: `(inputs, outputs, scratch)`, each tensor's
/// slice for that image.
pub type ImageIoFn<'a, const I: usize, const O: usize> =
    dyn Fn(&[&[f32]; I], &mut [&mut [f32]; O], &mut [f32]) -> Result<(), Error> + Sync + 'a;

/// [`par_images`] for a model with `I` inputs and `O` outputs: tensor `t` of every image
/// holds `image_in[t]` (`image_out[t]`) floats. The image count is `inputs[0]`'s; every other
/// tensor must hold that many images. No allocation: the per-image slices are arrays.
#[allow(clippy::too_many_arguments)]
pub fn par_images_io<const I: usize, const O: usize>(
    fork: &dyn Fork,
    inputs: [&[f32]; I],
    image_in: [usize; I],
    outputs: [&mut [f32]; O],
    image_out: [usize; O],
    scratch: &mut [f32],
    scratch_len: usize,
    f: &ImageIoFn<'_, I, O>,
) -> Result<(), Error> {
    let parts = fork.parts();
    crate::error::check(
        I > 0 && image_in[0] > 0 && inputs[0].len().is_multiple_of(image_in[0]),
        "inputs",
        "must hold whole images",
    )?;
    let images = inputs[0].len() / image_in[0];
    for (x, &n) in inputs.iter().zip(&image_in) {
        crate::error::check(x.len() == images * n, "inputs", "must hold the same images")?;
    }
    for (y, &n) in outputs.iter().zip(&image_out) {
        crate::error::check_len("outputs", y.len(), images * n)?;
    }
    crate::error::check_len("scratch", scratch.len(), parts * scratch_len)?;
    let xs: [*const f32; I] = core::array::from_fn(|t| inputs[t].as_ptr());
    let ys: [*mut f32; O] = {
        let mut outputs = outputs;
        core::array::from_fn(|t| outputs[t].as_mut_ptr())
    };
    let shared = Shared((xs, ys, scratch.as_mut_ptr()));
    let failed = core::sync::atomic::AtomicBool::new(false);
    let first_error = Shared(core::cell::Cell::new(None::<Error>));
    fork.run(&|i| {
        let (xs, ys, s) = shared.get();
        let (i0, i1) = part_range(images, parts, i);
        for img in i0..i1 {
            // SAFETY: image `img` of every checked input/output and part `i`'s own scratch
            // range; images and parts are disjoint, and the borrows outlive `run`.
            let (xi, mut yi, si) = unsafe {
                (
                    core::array::from_fn(|t| {
                        core::slice::from_raw_parts(xs[t].add(img * image_in[t]), image_in[t])
                    }),
                    core::array::from_fn(|t| {
                        core::slice::from_raw_parts_mut(ys[t].add(img * image_out[t]), image_out[t])
                    }),
                    core::slice::from_raw_parts_mut(s.add(i * scratch_len), scratch_len),
                )
            };
            if let Err(e) = f(&xi, &mut yi, si) {
                if !failed.swap(true, core::sync::atomic::Ordering::AcqRel) {
                    first_error.get().set(Some(e));
                }
                return;
            }
        }
    });
    match first_error.get().get() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
