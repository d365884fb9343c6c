//! The int8 cases of the `kernels` target: `pointwise_u8`, `depthwise_u8`, `quantize_u8` and
//! `dequantize_u8` with their packers and `Par` versions.
//!
//! What: every int8 result must be bit-identical between the scalar reference and every SIMD
//! path this CPU runs (`Isa::Avx512` is the VNNI path on a VNNI CPU, `Isa::Avx2` the exact
//! `vpmaddubsw` split: both are compared), and every `Par` split bit-identical to the whole
//! call; that is the contract of ghost-runtime's int8 tests (`tests/qpointwise.rs`, ...).
//! Why a fuzzer on top of those tests: they keep scales in a friendly range (residual scales
//! at most 3, no subnormals, no infinities) and shapes in a few patterns; here scales come
//! from the whole `f32` range (tiny, huge, subnormal, any bit pattern), zero points sit at
//! 0 and 255, saturation bounds are arbitrary, and operands can be all-extreme (the sums the
//! AVX2 path must not saturate). A parameter the kernels must reject (a packer scale that is
//! NaN, infinite or negative; a residual scale likewise; `min > max`; a quantize scale that
//! is not positive and finite) must give `Err` and write nothing; one they accept must give
//! the same bytes everywhere. Short slices must be rejected without a write, and wild shapes
//! (`wild`) must neither panic nor touch memory out of bounds.

use arbitrary::Arbitrary;
use ghost_runtime::*;
use ghostc_testkit::Rng;

use super::{simd_kernels, wild_depthwise, wild_pointwise, Exec, Reverse};

/// A scale from the whole `f32` range.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ScaleSel {
    /// Around `1e-3`, as real models have.
    Typical(u8),
    /// Around `1e-30`.
    Tiny(u8),
    /// Around `1e30`.
    Huge(u8),
    /// A subnormal.
    Subnormal(u32),
    Zero,
    MinPositive,
    Max,
    /// Any bit pattern: NaN, infinities, negatives and all.
    Bits(u32),
}

impl ScaleSel {
    fn get(self) -> f32 {
        match self {
            ScaleSel::Typical(m) => 1e-3 * (1.0 + m as f32 / 64.0),
            ScaleSel::Tiny(m) => 1e-30 * (1.0 + m as f32 / 64.0),
            ScaleSel::Huge(m) => 1e30 * (1.0 + m as f32 / 64.0),
            ScaleSel::Subnormal(b) => f32::from_bits((b % 0x7f_ffff) + 1),
            ScaleSel::Zero => 0.0,
            ScaleSel::MinPositive => f32::MIN_POSITIVE,
            ScaleSel::Max => f32::MAX,
            ScaleSel::Bits(b) => f32::from_bits(b),
        }
    }
}

/// The packers' and the residual's rule: finite and `>= 0`.
fn scale_ok(s: f32) -> bool {
    s.is_finite() && s >= 0.0
}

/// A zero point, at the ends of the range more often than not.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Zp {
    Zero,
    Mid,
    Max,
    Any(u8),
}

impl Zp {
    fn get(self) -> u8 {
        match self {
            Zp::Zero => 0,
            Zp::Mid => 128,
            Zp::Max => 255,
            Zp::Any(z) => z,
        }
    }
}

/// Operand values.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Operands {
    Random,
    /// Activations all 255, weights -128/127 in pairs, biases at the `i32` ends: the largest
    /// dot products (AVX2's `vpmaddubsw` saturation case) and wrapping biases.
    Extreme,
    /// Activations and weights at 0 / 255 and -128 / 127 at random.
    Ends,
}

impl Operands {
    fn x(self, rng: &mut Rng, n: usize) -> Vec<u8> {
        match self {
            Operands::Random => rng.bytes(n),
            Operands::Extreme => vec![255; n],
            Operands::Ends => (0..n).map(|_| if rng.bool() { 255 } else { 0 }).collect(),
        }
    }
    fn w(self, rng: &mut Rng, n: usize) -> Vec<i8> {
        match self {
            Operands::Random => rng.bytes(n).into_iter().map(|b| b as i8).collect(),
            Operands::Extreme => (0..n)
                .map(|i| if (i / 2) % 3 == 0 { 127 } else { -128 })
                .collect(),
            Operands::Ends => (0..n)
                .map(|_| if rng.bool() { 127 } else { -128 })
                .collect(),
        }
    }
    fn bias(self, rng: &mut Rng, n: usize) -> Vec<i32> {
        match self {
            Operands::Random => (0..n)
                .map(|_| (rng.next_u64() % 400_001) as i32 - 200_000)
                .collect(),
            _ => (0..n)
                .map(|_| [i32::MIN, i32::MAX, 0][rng.range(0, 2)])
                .collect(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ResSel {
    zp: Zp,
    scale: ScaleSel,
    conv_scale: ScaleSel,
    out_zp: Zp,
    off: bool,
}

/// Requantization: output zero point, saturation bounds, optional residual.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct RqSel {
    zp: Zp,
    /// 0: full range, 1: fused ReLU, else `(lo, hi)` as given (possibly `lo > hi`: rejected).
    bounds: u8,
    lo: u8,
    hi: u8,
    residual: Option<ResSel>,
}

impl RqSel {
    fn requant<'a>(&self, r: Option<&'a [u8]>) -> Requant<'a> {
        let zp = self.zp.get();
        let (min, max) = match self.bounds % 3 {
            0 => (0, 255),
            1 => (zp, 255),
            _ => (self.lo, self.hi),
        };
        Requant {
            zero_point: zp,
            min,
            max,
            offset: 0.0,
            residual: self.residual.zip(r).map(|(s, r)| QResidual {
                src: Src::at(r, s.off as usize),
                zero_point: s.zp.get(),
                scale: s.scale.get(),
                conv_scale: s.conv_scale.get(),
                out_zero_point: s.out_zp.get(),
            }),
        }
    }
    /// Whether the kernels must accept these parameters.
    fn valid(&self) -> bool {
        let rq = self.requant(Some(&[]));
        rq.min <= rq.max
            && rq
                .residual
                .is_none_or(|r| scale_ok(r.scale) && scale_ok(r.conv_scale))
    }
}

/// Operands and quantization of an int8 conv case.
#[derive(Arbitrary, Debug, Clone)]
pub struct QParams {
    ops: Operands,
    /// Input zero point.
    xzp: Zp,
    /// Per-channel requantization scales: these for the first channels, then `fill`.
    scales: Vec<ScaleSel>,
    fill: ScaleSel,
    rq: RqSel,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum QCase {
    Pointwise {
        k: u8,
        n: u8,
        px: u8,
        x_off: u8,
        y_off: u8,
        q: QParams,
    },
    Depthwise {
        c: u8,
        h: u8,
        w: u8,
        k5: bool,
        s2: bool,
        pads: [u8; 4],
        x_off: u8,
        y_off: u8,
        q: QParams,
    },
    /// `quantize_u8` (`f32` -> `u8`), or `dequantize_u8` with `back`.
    Convert {
        back: bool,
        blocks: u8,
        px: u8,
        off: bool,
        scale: ScaleSel,
        zp: Zp,
        /// Quantize input values: ties of the step, infinities, NaN, huge, any bits.
        special: u8,
    },
}

/// A kernel argument: `f32` or `u8` elements.
#[derive(Clone, Debug)]
enum Buf {
    F(Vec<f32>),
    Q(Vec<u8>),
}

impl Buf {
    fn len(&self) -> usize {
        match self {
            Buf::F(v) => v.len(),
            Buf::Q(v) => v.len(),
        }
    }
    fn truncate(&mut self, n: usize) {
        match self {
            Buf::F(v) => v.truncate(n),
            Buf::Q(v) => v.truncate(n),
        }
    }
    /// The exact contents (`f32` by bits, so NaNs compare by payload).
    fn bits(&self) -> Vec<u32> {
        match self {
            Buf::F(v) => v.iter().map(|f| f.to_bits()).collect(),
            Buf::Q(v) => v.iter().map(|&b| b as u32).collect(),
        }
    }
    fn q(&self) -> &[u8] {
        match self {
            Buf::Q(v) => v,
            Buf::F(_) => unreachable!("a u8 buffer"),
        }
    }
    fn f(&self) -> &[f32] {
        match self {
            Buf::F(v) => v,
            Buf::Q(_) => unreachable!("an f32 buffer"),
        }
    }
}

fn take_q(b: &mut [Buf], i: usize) -> Vec<u8> {
    match std::mem::replace(&mut b[i], Buf::Q(vec![])) {
        Buf::Q(v) => v,
        Buf::F(_) => unreachable!("a u8 buffer"),
    }
}

fn take_f(b: &mut [Buf], i: usize) -> Vec<f32> {
    match std::mem::replace(&mut b[i], Buf::F(vec![])) {
        Buf::F(v) => v,
        Buf::Q(_) => unreachable!("an f32 buffer"),
    }
}

type QCall = Box<dyn Fn(Exec, &mut [Buf]) -> Result<(), Error>>;

/// One int8 kernel call: buffer `output` is compared bit for bit, `required` buffers must be
/// rejected when shorter; `valid` says whether the parameters must be accepted.
struct QProb {
    bufs: Vec<Buf>,
    output: usize,
    required: Vec<usize>,
    valid: bool,
    call: QCall,
}

macro_rules! par_call {
    ($ex:expr, $method:ident ( $($arg:expr),* $(,)? )) => {
        match $ex.parts {
            None => $ex.k.$method($($arg),*),
            Some(p) => Par::new($ex.k, &Reverse(p)).min_split_macs(0).$method($($arg),*),
        }
    };
}

impl QParams {
    /// `s8` weights of `rows` output channels by `len` taps, zero-padded to `rows_pad` rows
    /// of `len_pad` (row-major, as the packers take them), then `i32` biases and
    /// requantization scales of `rows_pad` channels (the padding channels: 0, as ghostc
    /// packs them; the others: `scales`, then `fill`).
    fn operands(
        &self,
        rng: &mut Rng,
        rows: usize,
        len: usize,
        rows_pad: usize,
        len_pad: usize,
    ) -> (Vec<i8>, Vec<i32>, Vec<f32>) {
        let wl = self.ops.w(rng, rows * len);
        let mut w = vec![0i8; rows_pad * len_pad];
        for o in 0..rows {
            w[o * len_pad..o * len_pad + len].copy_from_slice(&wl[o * len..(o + 1) * len]);
        }
        let mut bias = self.ops.bias(rng, rows);
        bias.resize(rows_pad, 0);
        let scale = (0..rows_pad)
            .map(|i| match i {
                i if i >= rows => 0.0,
                i => self.scales.get(i).copied().unwrap_or(self.fill).get(),
            })
            .collect();
        (w, bias, scale)
    }
}

/// Packs with `pack`, checking that it accepts exactly the valid scales; `None` when it
/// (rightly) rejected them.
fn packed(
    len: usize,
    scale: &[f32],
    pack: impl FnOnce(&mut [u8]) -> Result<(), Error>,
) -> Option<Vec<u8>> {
    let mut p = vec![0xA5; len];
    let r = pack(&mut p);
    let want_ok = scale.iter().all(|&s| scale_ok(s));
    assert_eq!(r.is_ok(), want_ok, "packer on scales {scale:?}: {r:?}");
    if r.is_err() {
        assert!(p.iter().all(|&b| b == 0xA5), "rejected packing wrote");
    }
    r.ok().map(|_| p)
}

type ConvCall = dyn Fn(Exec, &[u8], Src<'_, u8>, Dst<'_, u8>, Requant<'_>) -> Result<(), Error>;

/// Where an int8 conv reads or writes: block offset, blocks, pixels.
struct View {
    off: usize,
    blocks: usize,
    pixels: usize,
}

impl View {
    fn len(&self) -> usize {
        (self.off + self.blocks) * self.pixels * 8
    }
}

/// The problem of an int8 conv: its `packed` weights, an input of `q`'s operands at `x`,
/// an output at `y`, and a residual as large as the output (required only when `q.rq` has
/// one); `conv` runs the kernel.
fn conv_prob(
    rng: &mut Rng,
    packed: Vec<u8>,
    q: &QParams,
    x: View,
    y: View,
    conv: impl Fn(Exec, &[u8], Src<'_, u8>, Dst<'_, u8>, Requant<'_>) -> Result<(), Error> + 'static,
) -> QProb {
    let conv: Box<ConvCall> = Box::new(conv);
    let rq = q.rq;
    let r = View {
        off: rq.residual.map_or(0, |r| r.off as usize),
        ..y
    };
    let bufs = vec![
        Buf::Q(packed),
        Buf::Q(q.ops.x(rng, x.len())),
        Buf::Q(vec![7; y.len()]),
        Buf::Q(rng.bytes(r.len())),
    ];
    let mut required = vec![0, 1, 2];
    if rq.residual.is_some() {
        required.push(3);
    }
    let (xo, yo) = (x.off, y.off);
    QProb {
        bufs,
        output: 2,
        required,
        valid: rq.valid(),
        call: Box::new(move |ex, b| {
            let mut y = take_q(b, 2);
            let r = conv(
                ex,
                b[0].q(),
                Src::at(b[1].q(), xo),
                Dst::at(&mut y, yo),
                rq.requant(Some(b[3].q())),
            );
            b[2] = Buf::Q(y);
            r
        }),
    }
}

fn build(case: &QCase, rng: &mut Rng) -> Option<QProb> {
    Some(match case {
        QCase::Pointwise {
            k,
            n,
            px,
            x_off,
            y_off,
            q,
        } => {
            let (k, n) = ((*k % 90) as usize + 1, (*n % 90) as usize + 1);
            let px = (*px % 40) as usize + 1;
            let (kp, np) = (k.div_ceil(8) * 8, n.div_ceil(8) * 8);
            let (w, bias, sc) = q.operands(rng, n, k, np, kp);
            let xz = q.xzp.get();
            let p = packed(pointwise_u8_packed_len(kp, np), &sc, |p| {
                pack_pointwise_u8(&w, &bias, &sc, xz, kp, np, p)
            })?;
            let shape = PointwiseShape {
                k_blocks: kp / 8,
                n_blocks: np / 8,
                pixels: px,
            };
            let x = View {
                off: (*x_off % 3) as usize,
                blocks: kp / 8,
                pixels: px,
            };
            let y = View {
                off: (*y_off % 3) as usize,
                blocks: np / 8,
                pixels: px,
            };
            conv_prob(rng, p, q, x, y, move |ex, p, x, y, r| {
                par_call!(ex, pointwise_u8(p, shape, x, y, r))
            })
        }
        QCase::Depthwise {
            c,
            h,
            w,
            k5,
            s2,
            pads,
            x_off,
            y_off,
            q,
        } => {
            let k = if *k5 { 5 } else { 3 };
            let c = (*c % 48) as usize + 1;
            let cp = c.div_ceil(8) * 8;
            let blocks = cp / 8;
            let p = pads.map(|p| (p as usize) % k);
            let sh = DepthwiseShape {
                blocks,
                in_h: ((*h % 24) as usize + 1).max(k.saturating_sub(p[0] + p[2])),
                in_w: ((*w % 24) as usize + 1).max(k.saturating_sub(p[1] + p[3])),
                k,
                stride: if *s2 { 2 } else { 1 },
                pad_top: p[0],
                pad_left: p[1],
                pad_bottom: p[2],
                pad_right: p[3],
            };
            let (wt, bias, sc) = q.operands(rng, c, k * k, cp, k * k);
            let pk = packed(depthwise_u8_packed_len(cp, k), &sc, |p| {
                pack_depthwise_u8(&wt, &bias, &sc, cp, k, p)
            })?;
            let x = View {
                off: (*x_off % 2) as usize,
                blocks,
                pixels: sh.in_h * sh.in_w,
            };
            let y = View {
                off: (*y_off % 3) as usize,
                blocks,
                pixels: sh.out_h() * sh.out_w(),
            };
            let xz = q.xzp.get();
            conv_prob(rng, pk, q, x, y, move |ex, p, x, y, r| {
                par_call!(ex, depthwise_u8(p, sh, xz, x, y, r))
            })
        }
        QCase::Convert {
            back,
            blocks,
            px,
            off,
            scale,
            zp,
            special,
        } => {
            let (nb, px, off) = (
                (*blocks % 4) as usize + 1,
                (*px % 40) as usize + 1,
                *off as usize,
            );
            let (s, z) = (scale.get(), zp.get());
            // Input at block offset `off`, output at block offset 1.
            let (x_len, y_len) = ((off + nb) * px * 8, (1 + nb) * px * 8);
            let required = vec![0, 1];
            if *back {
                QProb {
                    bufs: vec![Buf::Q(rng.bytes(x_len)), Buf::F(vec![7.0; y_len])],
                    output: 1,
                    required,
                    valid: s.is_finite(),
                    call: Box::new(move |ex, b| {
                        let mut y = take_f(b, 1);
                        let (x, y_dst) = (Src::at(b[0].q(), off), Dst::at(&mut y, 1));
                        let r = par_call!(ex, dequantize_u8(nb, px, s, z, x, y_dst));
                        b[1] = Buf::F(y);
                        r
                    }),
                }
            } else {
                let x = quantize_inputs(rng, x_len, s, *special);
                QProb {
                    bufs: vec![Buf::F(x), Buf::Q(vec![7; y_len])],
                    output: 1,
                    required,
                    valid: s.is_finite() && s > 0.0,
                    call: Box::new(move |ex, b| {
                        let mut q = take_q(b, 1);
                        let (x, q_dst) = (Src::at(b[0].f(), off), Dst::at(&mut q, 1));
                        let r = par_call!(ex, quantize_u8(nb, px, s, z, x, q_dst));
                        b[1] = Buf::Q(q);
                        r
                    }),
                }
            }
        }
    })
}

/// `n` inputs of `quantize_u8` with scale `s`: exact ties of the step, infinities, NaN,
/// values up to `f32::MAX`, any bit patterns, ordinary values; `special` shifts the pattern.
fn quantize_inputs(rng: &mut Rng, n: usize, s: f32, special: u8) -> Vec<f32> {
    let step = if s.is_finite() && s > 0.0 { s } else { 1.0 };
    (0..n)
        .map(|i| match (i + special as usize) % 9 {
            0 => (rng.range(0, 600) as f32 - 300.0 + 0.5) * step,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => f32::NAN,
            4 => rng.f() * f32::MAX,
            5 => f32::from_bits(rng.next_u64() as u32),
            _ => rng.f() * 300.0 * step,
        })
        .collect()
}

fn unchanged(what: &str, after: &[Buf], before: &[Buf]) {
    for (j, (a, b)) in after.iter().zip(before).enumerate() {
        assert!(
            a.bits() == b.bits(),
            "{what}: rejected call wrote buffer {j}"
        );
    }
}

/// Runs one int8 case through every check of the module docs. `parts`: the `Par` split;
/// `short`: which required buffer to shorten, and by how much.
pub fn check(case: &QCase, seed: u64, parts: u8, short: Option<(u8, u16)>) {
    let mut rng = Rng::new(seed);
    let Some(prob) = build(case, &mut rng) else {
        return;
    };
    let what = format!("{case:?}");
    let scalar = Kernels::with_isa(Isa::Scalar).unwrap();
    let run = |k: Kernels, parts: Option<usize>| {
        let mut b = prob.bufs.clone();
        let r = (prob.call)(Exec { k, parts }, &mut b);
        (r, b)
    };
    let (r, want) = run(scalar, None);
    if !prob.valid {
        assert!(r.is_err(), "{what}: invalid parameters accepted");
        unchanged(&what, &want, &prob.bufs);
        return;
    }
    r.unwrap_or_else(|e| panic!("{what}: scalar rejected valid arguments: {e}"));
    let want = want[prob.output].bits();
    for k in simd_kernels() {
        let (r, got) = run(k, None);
        r.unwrap_or_else(|e| panic!("{what}: {:?} rejected valid arguments: {e}", k.isa()));
        let got = got[prob.output].bits();
        if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{what}: {:?} ({}) differs from scalar at element {i}: {:#x} vs {:#x}",
                k.isa(),
                k.int8_path(),
                got[i],
                want[i]
            );
        }
        let parts = (parts % 7) as usize + 1;
        let (r, split) = run(k, Some(parts));
        r.unwrap_or_else(|e| panic!("{what}: split in {parts} rejected: {e}"));
        assert!(
            split[prob.output].bits() == want,
            "{what}: {:?} split in {parts} differs from the whole layer",
            k.isa()
        );
    }
    if let Some((which, by)) = short {
        let i = prob.required[which as usize % prob.required.len()];
        let mut bufs = prob.bufs.clone();
        let len = bufs[i].len();
        if len > 0 {
            let cut = (by as usize % len) + 1;
            bufs[i].truncate(len - cut);
            let before = bufs.clone();
            let r = (prob.call)(
                Exec {
                    k: Kernels::new(),
                    parts: None,
                },
                &mut bufs,
            );
            assert!(
                r.is_err(),
                "{what}: buffer {i} shortened by {cut} was accepted"
            );
            unchanged(&what, &bufs, &before);
        }
    }
}

/// The int8 kernels and packers with wild shape parameters from `n` over small slices: must
/// not panic or touch memory out of bounds.
pub fn wild(n: &mut dyn FnMut() -> usize) {
    let k = Kernels::new();
    let x = vec![0x80u8; 256];
    let f = vec![0.5f32; 256];
    let mut y = vec![0u8; 256];
    let mut fy = vec![0f32; 256];
    let w = vec![1i8; 256];
    let b = vec![1i32; 64];
    let s = vec![0.5f32; 64];
    let mut rq = Requant::relu(n() as u8);
    if n().is_multiple_of(2) {
        rq.residual = Some(QResidual {
            src: Src::at(&x, n()),
            zero_point: 3,
            scale: 0.5,
            conv_scale: 2.0,
            out_zero_point: 9,
        });
    }
    let _ = k.pointwise_u8(
        &x,
        wild_pointwise(n),
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
        rq,
    );
    let _ = k.depthwise_u8(
        &x,
        wild_depthwise(n),
        n() as u8,
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
        rq,
    );
    let _ = k.quantize_u8(n(), n(), 0.5, 7, Src::at(&f, n()), Dst::at(&mut y, n()));
    let _ = k.dequantize_u8(n(), n(), 0.5, 7, Src::at(&x, n()), Dst::at(&mut fy, n()));
    let par = Par::new(k, &Reverse(3)).min_split_macs(0);
    let _ = par.pointwise_u8(
        &x,
        wild_pointwise(n),
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
        rq,
    );
    let _ = par.quantize_u8(n(), n(), 0.5, 7, Src::at(&f, n()), Dst::at(&mut y, n()));
    let _ = pack_pointwise_u8(&w, &b, &s, 5, n(), n(), &mut y);
    let _ = pack_depthwise_u8(&w, &b, &s, n(), n(), &mut y);
}
