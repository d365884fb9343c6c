//! Squeeze-and-excitation: global average pool, FC, activation, FC, gate.
//!
//! The pool usually comes for free from a producer's `channel_sums` epilogue; [`Kernels::se_gate`]
//! turns those sums into per-channel gates `s[c]`. The gate is then folded into the following
//! 1x1's weights with [`crate::scale_packed_pointwise`] (`W * diag(s)`), so the gated tensor is
//! never written; [`Kernels::channel_assign`] is the unfused alternative.

use crate::error::{check, check_len, size, Error};
use crate::isa::Kernels;
use crate::kernels::pointwise::packed_len_blocks;
use crate::Activation;

/// The two nonlinearities of a squeeze-and-excitation block, each applied in its FC's epilogue,
/// so any [`Activation`] an epilogue supports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeActivations {
    /// After the reduce FC: ReLU in GhostNet and MobileNetV3, SiLU in EfficientNet.
    pub inner: Activation,
    /// After the expand FC, giving the gate: Sigmoid, HardSigmoid, `Clamp { lo: 0, hi: 1 }`, ...
    pub gate: Activation,
}

/// Shape of a squeeze-and-excitation block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeShape {
    /// Channel blocks of the gated tensor.
    pub c_blocks: usize,
    /// Channel blocks of the reduced (hidden) vector.
    pub r_blocks: usize,
}

impl Kernels {
    /// `gate[c] = acts.gate(W2 acts.inner(W1 (sums * inv_pixels) + b1) + b2)[c]`.
    /// `reduce`/`expand` are pointwise-packed (`c -> r` and `r -> c`), `scratch` holds
    /// `(c_blocks + r_blocks) * 8` floats, `gate` `c_blocks * 8`.
    #[allow(clippy::too_many_arguments)]
    pub fn se_gate(
        self,
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
}

/// A fully connected layer: `(packed, k_blocks, n_blocks, x, y, act)`, as [`Kernels::fc`].
pub(crate) type FcFn<'a> =
    dyn Fn(&[f32], usize, usize, &[f32], &mut [f32], Activation) -> Result<(), Error> + 'a;

/// The body of [`Kernels::se_gate`] with its two fully connected layers run by `fc` (serial,
/// or split across threads by [`crate::Par::se_gate`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn se_gate_with(
    fc: &FcFn<'_>,
    sums: &[f32],
    inv_pixels: f32,
    reduce: &[f32],
    expand: &[f32],
    shape: SeShape,
    acts: SeActivations,
    scratch: &mut [f32],
    gate: &mut [f32],
) -> Result<(), Error> {
    {
        let SeShape { c_blocks, r_blocks } = shape;
        check(
            c_blocks > 0 && r_blocks > 0,
            "shape",
            "sizes must be positive",
        )?;
        let (c, r) = (size(&[c_blocks, 8]), size(&[r_blocks, 8]));
        check_len("sums", sums.len(), c)?;
        check_len("scratch", scratch.len(), c.saturating_add(r))?;
        check_len("gate", gate.len(), c)?;
        // The FCs check these too, but only after `scratch` is written: an error must mean
        // nothing was written.
        check_len(
            "reduce",
            reduce.len(),
            packed_len_blocks(c_blocks, r_blocks),
        )?;
        check_len(
            "expand",
            expand.len(),
            packed_len_blocks(r_blocks, c_blocks),
        )?;
        let (mean, mid) = scratch.split_at_mut(c);
        for (m, s) in mean.iter_mut().zip(sums) {
            *m = s * inv_pixels;
        }
        fc(reduce, c_blocks, r_blocks, mean, mid, acts.inner)?;
        fc(expand, r_blocks, c_blocks, &mid[..r], gate, acts.gate)
    }
}
