//! Fully connected layers (GEMV at batch 1) over pointwise-packed weights.
//!
//! At batch 1 these layers read every weight once, so they are bound by weight bandwidth.
//! Algorithm: per panel of up to 4 output blocks, stream the `K x 32` panel rows once;
//! even and odd input channels accumulate into separate register sets (2 x `pw` independent
//! FMA chains) so the FMA latency never limits the load stream.

use crate::arch::{ActV, Simd};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::{packed_len_blocks, PANEL_BLOCKS};
use crate::Activation;

#[derive(Clone, Copy)]
pub(crate) struct FcArgs {
    pub w: *const f32,
    pub kb: usize,
    pub nb: usize,
    pub x: *const f32,
    pub y: *mut f32,
    pub act: Activation,
}

impl FcArgs {
    /// The same layer restricted to output blocks `b0 .. b1`; both must be multiples of
    /// [`PANEL_BLOCKS`] (or `b1 == nb`), so the restricted weights are whole panels.
    pub(crate) fn blocks(&self, b0: usize, b1: usize) -> FcArgs {
        debug_assert!(
            b0.is_multiple_of(PANEL_BLOCKS) && (b1.is_multiple_of(PANEL_BLOCKS) || b1 == self.nb)
        );
        FcArgs {
            w: self.w.wrapping_add(b0 * 8 * (self.kb * 8 + 1)),
            nb: b1 - b0,
            y: self.y.wrapping_add(b0 * 8),
            ..*self
        }
    }
}

#[cfg_attr(ghost_runtime_opt0, inline(never))] // see ghost-runtime/build.rs
#[cfg_attr(not(ghost_runtime_opt0), inline(always))]
unsafe fn panel<S: Simd, const NB: usize>(
    s: S,
    a: &FcArgs,
    act: &ActV<S::V>,
    p: *const f32,
    ob0: usize,
) {
    let k = a.kb * 8;
    let mut acc0 = [s.zero(); NB];
    let mut acc1 = [s.zero(); NB];
    for (j, acc) in acc0.iter_mut().enumerate() {
        // SAFETY: bias vectors of this panel.
        *acc = unsafe { s.load(p.add(j * 8)) };
    }
    let w = p.wrapping_add(NB * 8);
    let mut kk = 0;
    while kk < k {
        // SAFETY: rows kk, kk+1 < K (K is a multiple of 8) and x has K floats.
        unsafe {
            let x0 = s.bcast(a.x.add(kk));
            let x1 = s.bcast(a.x.add(kk + 1));
            for j in 0..NB {
                acc0[j] = s.fma(x0, s.load(w.add(kk * NB * 8 + j * 8)), acc0[j]);
                acc1[j] = s.fma(x1, s.load(w.add((kk + 1) * NB * 8 + j * 8)), acc1[j]);
            }
        }
        kk += 2;
    }
    for j in 0..NB {
        let v = act.apply(s, s.add(acc0[j], acc1[j]));
        // SAFETY: output block ob0 + j < nb.
        unsafe { s.store(a.y.add((ob0 + j) * 8), v) };
    }
}

/// # Safety
/// `w` valid for `pointwise_packed_len(kb*8, nb*8)`, `x` for `kb*8`, `y` for `nb*8`, no
/// overlap of `y` with the others.
#[inline(always)]
pub(crate) unsafe fn run<S: Simd>(s: S, a: &FcArgs) {
    let act = ActV::new(s, a.act);
    let k = a.kb * 8;
    let mut t0 = 0;
    while t0 < a.nb {
        let pw = PANEL_BLOCKS.min(a.nb - t0);
        let p = a.w.wrapping_add(t0 * 8 * (k + 1));
        // SAFETY: forwarded; panel t0 has pw blocks.
        unsafe {
            match pw {
                4 => panel::<S, 4>(s, a, &act, p, t0),
                3 => panel::<S, 3>(s, a, &act, p, t0),
                2 => panel::<S, 2>(s, a, &act, p, t0),
                _ => panel::<S, 1>(s, a, &act, p, t0),
            }
        }
        t0 += pw;
    }
}

pub(crate) fn fc_dispatch(k: Kernels, a: &FcArgs) {
    // Sound: every caller validated `a` against the contract of `run`.
    dispatch!(k, run, a, FcArgs; avx512 []; avx2 []; neon []; scalar []);
}

impl Kernels {
    /// `y = act(W x + bias)` with `W` packed by [`crate::pack_pointwise`]
    /// (`k_pad = 8*k_blocks` inputs, `n_pad = 8*n_blocks` outputs). `x` is a flat vector
    /// (equivalently an NCHW8c tensor with one pixel).
    pub fn fc(
        self,
        packed: &[f32],
        k_blocks: usize,
        n_blocks: usize,
        x: &[f32],
        y: &mut [f32],
        act: Activation,
    ) -> Result<(), Error> {
        let a = fc_args(packed, k_blocks, n_blocks, x, y, act)?;
        fc_dispatch(self, &a);
        Ok(())
    }
}

/// The checks of [`Kernels::fc`], returning the raw arguments of the whole layer.
pub(crate) fn fc_args(
    packed: &[f32],
    k_blocks: usize,
    n_blocks: usize,
    x: &[f32],
    y: &mut [f32],
    act: Activation,
) -> Result<FcArgs, Error> {
    check(
        k_blocks > 0 && n_blocks > 0,
        "k_blocks",
        "sizes must be positive",
    )?;
    check_len(
        "packed",
        packed.len(),
        packed_len_blocks(k_blocks, n_blocks),
    )?;
    check_len("x", x.len(), size(&[k_blocks, 8]))?;
    check_len("y", y.len(), size(&[n_blocks, 8]))?;
    Ok(FcArgs {
        w: packed.as_ptr(),
        kb: k_blocks,
        nb: n_blocks,
        x: x.as_ptr(),
        y: y.as_mut_ptr(),
        act,
    })
}
