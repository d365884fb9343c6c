//! Dense 3x3 stride-1 convolution on NCHW8c by Winograd's minimal filtering F(2x2, 3x3):
//! ResNet's and YOLO necks' 3x3 layers with 4/9 of the direct method's multiply-adds.
//!
//! Algorithm (Lavin and Gray's formulation): the output is cut into 2x2 tiles; tile `t` reads
//! a 4x4 input patch `d` (zero outside the image, the padding ONNX defines) and
//! `y = A^T [ sum_c (G g_oc G^T) . (B^T d_c B) ] A`, with `.` elementwise over the 16 positions
//! of a 4x4 matrix. The weight transform `G g G^T` runs at compile time ([`pack_conv_winograd`]):
//! the packed weights are 16 pointwise matrices `V_p[o][c]`, one per position `p`. At run time,
//! per chunk of tiles: (1) the input transform writes `U_p[c][t]` (8 channels per vector, the
//! NCHW8c lanes, so the transforms are plain vector adds); (2) 16 pointwise GEMMs
//! `M_p = V_p U_p` run the tuned 1x1-conv kernel ([`crate::kernels::pointwise`]), tiles as its
//! pixels; (3) the output transform adds up `M` into the 2x2 outputs, applies the activation,
//! the residual and the channel sums, and stores. The bias rides in the GEMM of position
//! (1, 1), whose coefficient is 1 in all four outputs of `A^T M A`.
//!
//! Chunks: the tiles are taken in chunks of [`WinogradShape::chunk`] (fixed by the shape, so
//! the scratch is too, and every output value is computed the same way for any split); a
//! layer with large weights and a small map gets one chunk (its weights are streamed once), a
//! large map several (each chunk's `U` and `M` at most 2 MiB). [`crate::Par`] splits each
//! phase of each chunk: input blocks, GEMM positions, output blocks.
//!
//! Packed format (`winograd_packed_len`): 16 [`crate::pack_pointwise`]-format matrices of
//! `ceil(cin / 8) * 8` inputs and `out_blocks * 8` outputs, position `p = 4 i + j` at
//! `p * pointwise_packed_len(..)`; the bias in position 5's panels, zeros elsewhere.
//! Scratch (`winograd_scratch_len`): `U` (`[16][in blocks][chunk][8]`), then `M`
//! (`[16][out blocks][chunk][8]`), each position padded to an odd number of cache lines.
//!
//! Deliberately not done here: F(4x4, 3x3) (4x the weights in the binary where F(2x2, 3x3)
//! has 16/9, and larger rounding errors), strides, dilations and groups (the direct kernels
//! serve them), and fusing the transforms into the GEMM's loads and stores.

use crate::arch::{ActV, Simd};
use crate::error::{check, check_len, size, Error};
use crate::isa::{dispatch, Kernels};
use crate::kernels::pointwise::{
    conv_views, packed_len_blocks, packed_offset, pointwise_packed_len, run_dispatch, PwArgs,
};
use crate::kernels::tiles::ZEROS;
use crate::{Activation, Dst, Epilogue, Src};

/// Positions of the 4x4 transformed tile (the GEMMs of a chunk, [`Phase`]'s `lo .. hi` for
/// [`gemm_phase`]).
pub(crate) const POS: usize = 16;
/// Scratch (`U` + `M`) one chunk may take, in floats (2 MiB), so a large map's chunks stay
/// in the outer caches while the 16 GEMMs re-read them (see [`WinogradShape::chunk`]). A first
/// choice, not tuned against other sizes: ResNet-18's 7x7 and 14x14 layers get one chunk,
/// its 28x28 layers two, its 56x56 layers four.
const CHUNK_FLOATS: usize = 1 << 19;

/// Shape of a 3x3, stride-1, undilated, ungrouped convolution over one NCHW8c image for
/// [`Kernels::conv_winograd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinogradShape {
    /// Input channels (logical; the input has `ceil(cin / 8)` blocks).
    pub cin: usize,
    /// Output channels (logical).
    pub cout: usize,
    /// Output blocks written (`>= ceil(cout / 8)`).
    pub out_blocks: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Padding: top, left, bottom, right (each at most 2).
    pub pads: [usize; 4],
}

impl WinogradShape {
    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.in_h + self.pads[0] + self.pads[2]).saturating_sub(2)
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + self.pads[1] + self.pads[3]).saturating_sub(2)
    }
    /// Input channel blocks.
    pub fn in_blocks(&self) -> usize {
        self.cin.div_ceil(8)
    }
    /// Rows and columns of 2x2 output tiles.
    fn tiles_hw(&self) -> (usize, usize) {
        (self.out_h().div_ceil(2), self.out_w().div_ceil(2))
    }
    /// Output tiles.
    pub fn tiles(&self) -> usize {
        let (th, tw) = self.tiles_hw();
        th * tw
    }
    /// Tiles per chunk: as many as 2 MiB of `U` and `M` hold, but at least 49 (a 14x14
    /// output, so wide layers still reuse each weight over that many tiles per read; not
    /// tuned), and never more than the layer has.
    pub fn chunk(&self) -> usize {
        let per_tile = POS * 8 * (self.in_blocks() + self.out_blocks);
        (CHUNK_FLOATS / per_tile.max(1))
            .max(49)
            .min(self.tiles())
            .max(1)
    }
    /// The chunks of the layer's tiles in order: `(first tile, tiles)`.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (tiles, tc) = (self.tiles(), self.chunk());
        (0..tiles)
            .step_by(tc)
            .map(move |t0| (t0, tc.min(tiles - t0)))
    }
    /// Floats from one position's `U` (`blocks` = input blocks) or `M` (output blocks) to the
    /// next: the chunk's `blocks x chunk x 8` floats rounded up to an odd number of 64-byte
    /// lines, so the 16 positions a transform touches per tile fall in 16 different L1 sets.
    /// Unpadded, 32 -> 32 channels @56 (512-tile chunks, positions 64 KiB apart) ran at 0.88x
    /// the direct kernel in ghost-bench, padded at 1.2x (the set conflicts are the presumed
    /// cause; not checked with counters).
    fn pos_stride(&self, blocks: usize) -> usize {
        let lines = size(&[blocks, self.chunk(), 8]).div_ceil(16);
        size(&[lines | 1, 16])
    }
    /// Floats of one position's packed pointwise matrix.
    fn matrix_len(&self) -> usize {
        pointwise_packed_len(self.in_blocks() * 8, self.out_blocks * 8)
    }
    fn validate(&self) -> Result<(), Error> {
        check(
            self.cin > 0 && self.cout > 0,
            "shape.cin",
            "channels must be positive",
        )?;
        check(
            self.out_blocks >= self.cout.div_ceil(8),
            "shape.out_blocks",
            "must hold cout channels",
        )?;
        check(
            self.pads.iter().all(|&p| p <= 2),
            "shape.pads",
            "must be at most 2 (a 3x3 kernel)",
        )?;
        check(
            self.in_h > 0 && self.in_w > 0 && self.out_h() > 0 && self.out_w() > 0,
            "shape.in_h",
            "padded input smaller than the kernel",
        )
    }
}

/// Number of `f32` of packed Winograd weights.
pub fn winograd_packed_len(shape: &WinogradShape) -> usize {
    size(&[POS, packed_len_blocks(shape.in_blocks(), shape.out_blocks)])
}

/// Number of `f32` of scratch [`Kernels::conv_winograd`] needs.
pub fn winograd_scratch_len(shape: &WinogradShape) -> usize {
    size(&[
        POS,
        shape
            .pos_stride(shape.in_blocks())
            .saturating_add(shape.pos_stride(shape.out_blocks)),
    ])
}

/// `G g G^T` of one 3x3 kernel, in f64 (`G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]`).
fn transform_kernel(g: &[f32]) -> [f64; POS] {
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut gg = [[0.0f64; 3]; 4];
    for i in 0..4 {
        for c in 0..3 {
            gg[i][c] = (0..3).map(|k| G[i][k] * g[k * 3 + c] as f64).sum();
        }
    }
    let mut u = [0.0; POS];
    for i in 0..4 {
        for j in 0..4 {
            u[i * 4 + j] = (0..3).map(|k| gg[i][k] * G[j][k]).sum();
        }
    }
    u
}

/// Packs ONNX-layout weights `[out_blocks * 8][cin][3][3]` (row `o` is output lane `o`, in
/// whatever lane order the caller chose) and `bias[out_blocks * 8]` for
/// [`Kernels::conv_winograd`]. Run by ghostc at compile time.
pub fn pack_conv_winograd(
    weights: &[f32],
    bias: &[f32],
    shape: &WinogradShape,
    packed: &mut [f32],
) -> Result<(), Error> {
    shape.validate()?;
    let lanes = shape.out_blocks * 8;
    let k_pad = shape.in_blocks() * 8;
    check_len("weights", weights.len(), size(&[lanes, shape.cin, 9]))?;
    check_len("bias", bias.len(), lanes)?;
    check_len("packed", packed.len(), winograd_packed_len(shape))?;
    // Position p's matrix in the pointwise panel format, written entry by entry (no_std: no
    // room for the 16 unpacked matrices `pack_pointwise` would take).
    packed.fill(0.0);
    let (len, nb) = (shape.matrix_len(), shape.out_blocks);
    for (o, &b) in bias.iter().enumerate() {
        packed[5 * len + packed_offset(nb, k_pad, o, None)] = b;
        for c in 0..shape.cin {
            let at = (o * shape.cin + c) * 9;
            let u = transform_kernel(&weights[at..at + 9]);
            let off = packed_offset(nb, k_pad, o, Some(c));
            for (p, v) in u.iter().enumerate() {
                packed[p * len + off] = *v as f32;
            }
        }
    }
    Ok(())
}

/// Raw arguments of a checked Winograd conv.
#[derive(Clone, Copy)]
pub(crate) struct WgArgs {
    w: *const f32,
    sh: WinogradShape,
    x: *const f32,
    y: *mut f32,
    r: *const f32,
    sums: *mut f32,
    act: Activation,
    /// Scratch: `U`, then `M` at `m`.
    u: *mut f32,
    m: *mut f32,
}

/// One phase's share of one chunk: tiles `t0 .. t0 + nt`, and blocks (or positions)
/// `lo .. hi`.
#[derive(Clone, Copy)]
pub(crate) struct Phase {
    a: WgArgs,
    t0: usize,
    nt: usize,
    lo: usize,
    hi: usize,
}

impl WgArgs {
    pub(crate) fn phase(&self, t0: usize, nt: usize, lo: usize, hi: usize) -> Phase {
        Phase {
            a: *self,
            t0,
            nt,
            lo,
            hi,
        }
    }
}

/// `a - b`, exactly (a multiply by -1 is exact, so the fused add rounds once, like a
/// subtraction).
#[inline(always)]
fn sub<S: Simd>(s: S, m1: S::V, a: S::V, b: S::V) -> S::V {
    s.fma(b, m1, a)
}

/// Input transform of tiles `t0 .. t0 + nt`, input blocks `lo .. hi`: `U_p[c][t] = (B^T d B)_p`
/// with `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`.
///
/// # Safety
/// `ph` from a checked [`WgArgs`]; this share's `U` rows written by no one else meanwhile.
#[inline(always)]
unsafe fn input_phase<S: Simd>(s: S, ph: &Phase) {
    let a = &ph.a;
    let sh = &a.sh;
    let (tc, ib) = (sh.chunk(), sh.in_blocks());
    let (_, tw) = sh.tiles_hw();
    let ihw8 = sh.in_h * sh.in_w * 8;
    let pstride = sh.pos_stride(ib);
    let m1 = s.splat(-1.0);
    for t in ph.t0..ph.t0 + ph.nt {
        let (ty, tx) = (t / tw, t % tw);
        // Offsets of the 16 patch pixels inside block 0, or None outside the image.
        let mut off = [None; POS];
        for i in 0..4 {
            let iy = (2 * ty + i) as isize - sh.pads[0] as isize;
            for j in 0..4 {
                let ix = (2 * tx + j) as isize - sh.pads[1] as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < sh.in_h && (ix as usize) < sh.in_w {
                    off[i * 4 + j] = Some((iy as usize * sh.in_w + ix as usize) * 8);
                }
            }
        }
        for cb in ph.lo..ph.hi {
            let xb = a.x.wrapping_add(cb * ihw8);
            let mut d = [s.zero(); POS];
            for q in 0..POS {
                let p = match off[q] {
                    Some(o) => xb.wrapping_add(o),
                    None => ZEROS.0.as_ptr(),
                };
                // SAFETY: a pixel of a checked input block, or the zero block.
                d[q] = unsafe { s.load(p) };
            }
            // Rows: B^T d.
            let mut r = [s.zero(); POS];
            for j in 0..4 {
                let (d0, d1, d2, d3) = (d[j], d[4 + j], d[8 + j], d[12 + j]);
                r[j] = sub(s, m1, d0, d2);
                r[4 + j] = s.add(d1, d2);
                r[8 + j] = sub(s, m1, d2, d1);
                r[12 + j] = sub(s, m1, d1, d3);
            }
            // Columns: (B^T d) B, stored at U_p[cb][t - t0].
            let ub = a.u.wrapping_add((cb * tc + t - ph.t0) * 8);
            for i in 0..4 {
                let (r0, r1, r2, r3) = (r[i * 4], r[i * 4 + 1], r[i * 4 + 2], r[i * 4 + 3]);
                let v = [
                    sub(s, m1, r0, r2),
                    s.add(r1, r2),
                    sub(s, m1, r2, r1),
                    sub(s, m1, r1, r3),
                ];
                for (j, v) in v.into_iter().enumerate() {
                    // SAFETY: position `4i + j`, block `cb`, chunk tile `t - t0`: inside `U`.
                    unsafe { s.store(ub.add((i * 4 + j) * pstride), v) };
                }
            }
        }
    }
}

/// Output transform of tiles `t0 .. t0 + nt`, output blocks `lo .. hi`: `y = A^T M A` with
/// `A^T = [1 1 1 0; 0 1 -1 -1]`, then the activation, the residual, the store and the sums.
///
/// # Safety
/// `ph` from a checked [`WgArgs`] whose `M` holds this chunk's products; this share's output
/// blocks (and sums) written by no one else meanwhile.
#[inline(always)]
unsafe fn output_phase<S: Simd>(s: S, ph: &Phase) {
    let a = &ph.a;
    let sh = &a.sh;
    let tc = sh.chunk();
    let (_, tw) = sh.tiles_hw();
    let (oh, ow) = (sh.out_h(), sh.out_w());
    let ohw8 = oh * ow * 8;
    let pstride = sh.pos_stride(sh.out_blocks);
    let act = ActV::new(s, a.act);
    let m1 = s.splat(-1.0);
    for ob in ph.lo..ph.hi {
        let mb = a.m.wrapping_add(ob * tc * 8);
        let mut sum = s.zero();
        for t in ph.t0..ph.t0 + ph.nt {
            let mt = mb.wrapping_add((t - ph.t0) * 8);
            let mut mm = [s.zero(); POS];
            for (p, v) in mm.iter_mut().enumerate() {
                // SAFETY: position `p`, block `ob`, chunk tile `t - t0`: inside `M`.
                *v = unsafe { s.load(mt.add(p * pstride)) };
            }
            // Rows: A^T M (2 x 4).
            let mut r = [s.zero(); 8];
            for j in 0..4 {
                let (m0, m1v, m2, m3) = (mm[j], mm[4 + j], mm[8 + j], mm[12 + j]);
                r[j] = s.add(s.add(m0, m1v), m2);
                r[4 + j] = sub(s, m1, sub(s, m1, m1v, m2), m3);
            }
            let (ty, tx) = (t / tw, t % tw);
            for i in 0..2 {
                let oy = 2 * ty + i;
                if oy >= oh {
                    break;
                }
                let (r0, r1, r2, r3) = (r[i * 4], r[i * 4 + 1], r[i * 4 + 2], r[i * 4 + 3]);
                let v = [s.add(s.add(r0, r1), r2), sub(s, m1, sub(s, m1, r1, r2), r3)];
                for (j, v) in v.into_iter().enumerate() {
                    let ox = 2 * tx + j;
                    if ox >= ow {
                        break;
                    }
                    let off = ob * ohw8 + (oy * ow + ox) * 8;
                    let mut v = act.apply(s, v);
                    // SAFETY: block and pixel inside the output (and residual), checked by
                    // `winograd_args`.
                    unsafe {
                        if !a.r.is_null() {
                            v = s.add(v, s.load(a.r.add(off)));
                        }
                        s.store(a.y.add(off), v);
                    }
                    sum = s.add(sum, v);
                }
            }
        }
        if !a.sums.is_null() {
            let p = a.sums.wrapping_add(ob * 8);
            // SAFETY: block `ob` of the checked sums, this share's alone.
            unsafe { s.store(p, s.add(s.load(p), sum)) };
        }
    }
}

/// The 16 GEMMs of positions `lo .. hi` of one chunk (`M_p = V_p U_p`).
///
/// # Safety
/// `ph` from a checked [`WgArgs`] whose `U` holds this chunk's transformed input; this
/// share's `M` positions written by no one else meanwhile.
pub(crate) unsafe fn gemm_phase(k: Kernels, ph: &Phase) {
    let a = &ph.a;
    let sh = &a.sh;
    let (tc, ib, nb) = (sh.chunk(), sh.in_blocks(), sh.out_blocks);
    let (wlen, us, ms) = (sh.matrix_len(), sh.pos_stride(ib), sh.pos_stride(nb));
    for p in ph.lo..ph.hi {
        let g = PwArgs::plain(
            a.w.wrapping_add(p * wlen),
            (ib, nb, ph.nt),
            (a.u.wrapping_add(p * us), tc * 8),
            (a.m.wrapping_add(p * ms), tc * 8),
            Activation::None,
        );
        // SAFETY: position `p`'s packed matrix, its `U` (the chunk's first `nt` tiles of
        // every input block) and its `M` rows, all inside the checked buffers.
        unsafe { run_dispatch(k, &g) };
    }
}

/// Input transform of one share ([`input_phase`] on the kernels' ISA).
///
/// # Safety
/// As [`input_phase`].
pub(crate) unsafe fn input_dispatch(k: Kernels, ph: &Phase) {
    dispatch!(k, input_phase, ph, Phase; avx512 []; avx2 []; neon []; scalar []);
}

/// Output transform of one share ([`output_phase`] on the kernels' ISA).
///
/// # Safety
/// As [`output_phase`].
pub(crate) unsafe fn output_dispatch(k: Kernels, ph: &Phase) {
    dispatch!(k, output_phase, ph, Phase; avx512 []; avx2 []; neon []; scalar []);
}

/// Runs a checked layer on one thread, chunk by chunk.
///
/// # Safety
/// `a` from [`winograd_args`], its borrows alive.
pub(crate) unsafe fn winograd_exec(k: Kernels, a: &WgArgs) {
    let sh = &a.sh;
    for (t0, nt) in sh.chunks() {
        // SAFETY: forwarded; the phases run in order on this thread.
        unsafe {
            input_dispatch(k, &a.phase(t0, nt, 0, sh.in_blocks()));
            gemm_phase(k, &a.phase(t0, nt, 0, POS));
            output_dispatch(k, &a.phase(t0, nt, 0, sh.out_blocks));
        }
    }
}

/// The checks of [`Kernels::conv_winograd`].
pub(crate) fn winograd_args(
    packed: &[f32],
    shape: WinogradShape,
    input: Src<'_>,
    mut output: Dst<'_>,
    epilogue: Epilogue<'_>,
    scratch: &mut [f32],
) -> Result<WgArgs, Error> {
    shape.validate()?;
    let sh = shape;
    check_len("packed", packed.len(), winograd_packed_len(&sh))?;
    let act = epilogue.activation;
    let v = conv_views(
        &input,
        &mut output,
        epilogue,
        (sh.in_blocks(), sh.in_h * sh.in_w),
        (sh.out_blocks, sh.out_h() * sh.out_w()),
    )?;
    check_len("scratch", scratch.len(), winograd_scratch_len(&sh))?;
    let u = scratch.as_mut_ptr();
    Ok(WgArgs {
        w: packed.as_ptr(),
        sh,
        x: v.x,
        y: v.y,
        r: v.r,
        sums: v.sums,
        act,
        u,
        m: u.wrapping_add(POS * sh.pos_stride(sh.in_blocks())),
    })
}

impl Kernels {
    /// 3x3 stride-1 convolution of one NCHW8c image by Winograd F(2x2, 3x3) (see the module
    /// docs), into output blocks `[output.block_offset, +out_blocks)`; `packed` from
    /// [`pack_conv_winograd`], `scratch` of [`winograd_scratch_len`] floats. Reads input
    /// blocks `[input.block_offset, +ceil(cin / 8))` (padded lanes must be finite).
    /// `out = act(conv + bias) + residual`; channel sums accumulate the stored values.
    pub fn conv_winograd(
        self,
        packed: &[f32],
        shape: WinogradShape,
        input: Src<'_>,
        output: Dst<'_>,
        epilogue: Epilogue<'_>,
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let a = winograd_args(packed, shape, input, output, epilogue, scratch)?;
        // SAFETY: `winograd_args` checked every extent; `output` and `scratch` are unique
        // borrows.
        unsafe { winograd_exec(self, &a) };
        Ok(())
    }
}
