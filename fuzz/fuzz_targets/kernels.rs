//! ghost-runtime kernels: random shapes, block offsets and epilogues (activation, residual,
//! channel sums) through every SIMD path this CPU runs (`Kernels::with_isa` of each ISA) and
//! the scalar reference; results must agree within the tolerance of ghost-runtime's tests,
//! `1e-5 * sqrt(terms) * max(1, |ref|)`. The layers `Par` can split are also run split into
//! 1..=7 parts (in reverse order, with `min_split_macs(0)` so that small layers split too),
//! which must be bit-identical to the unsplit call. Then the same call with one required
//! slice made shorter must return `Err` (not panic, not write), and calls with wild shape
//! parameters (huge, zero, overflowing) over small slices must not panic or touch memory out
//! of bounds (AddressSanitizer). The int8 kernels (`Case::Int8`) live in `kernels/int8.rs`:
//! the same checks, bit-exact, with hostile quantization parameters.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ghost_runtime::*;
use ghostc_testkit::Rng;
use libfuzzer_sys::fuzz_target;

#[path = "kernels/int8.rs"]
mod int8;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ActSel {
    None,
    Relu,
    Clamp(i8, i8),
    HardSigmoid(u8, i8),
    HardSwish,
    Sigmoid,
    Silu,
    Gelu,
}

impl ActSel {
    fn get(self) -> Activation {
        match self {
            ActSel::None => Activation::None,
            ActSel::Relu => Activation::Relu,
            ActSel::Clamp(a, b) => Activation::Clamp {
                lo: a as f32 / 32.0,
                hi: b as f32 / 32.0,
            },
            ActSel::HardSigmoid(a, b) => Activation::HardSigmoid {
                alpha: a as f32 / 128.0,
                beta: b as f32 / 64.0,
            },
            ActSel::HardSwish => Activation::HardSwish,
            ActSel::Sigmoid => Activation::Sigmoid,
            ActSel::Silu => Activation::Silu,
            ActSel::Gelu => Activation::Gelu,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Epi {
    act: ActSel,
    residual: Option<u8>,
    sums: bool,
}

#[derive(Arbitrary, Debug, Clone)]
enum Case {
    Pointwise {
        k: u8,
        n: u8,
        px: u8,
        x_off: u8,
        y_off: u8,
        epi: Epi,
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
        epi: Epi,
    },
    Ghost {
        k: u8,
        c1: u8,
        h: u8,
        w: u8,
        x_off: u8,
        y_off: u8,
        epi: Epi,
        cheap: ActSel,
    },
    Conv {
        cin: u8,
        nchw: bool,
        h: u8,
        w: u8,
        cout: u8,
        kh: u8,
        kw: u8,
        s: [u8; 2],
        pads: [u8; 4],
        x_off: u8,
        y_off: u8,
        epi: Epi,
    },
    ConvGeneral {
        cig: u8,
        cog: u8,
        groups: u8,
        h: u8,
        w: u8,
        kh: u8,
        kw: u8,
        s: [u8; 2],
        d: [u8; 2],
        pads: [u8; 4],
        epi: Epi,
    },
    Fc {
        k: u8,
        n: u8,
        act: ActSel,
    },
    SeGate {
        c: u8,
        r: u8,
        /// `None`: SiLU (EfficientNet's).
        inner: Option<ActSel>,
        /// `None`: Sigmoid.
        gate: Option<ActSel>,
        px: u8,
    },
    Gap {
        blocks: u8,
        px: u8,
        x_off: u8,
    },
    Pool {
        max: bool,
        cip: bool,
        blocks: u8,
        h: u8,
        w: u8,
        kh: u8,
        kw: u8,
        s: [u8; 2],
        pads: [u8; 4],
    },
    Binary {
        mul: bool,
        n: u8,
        act: ActSel,
        mode: u8,
        px: u8,
    },
    Resize {
        mode: u8,
        coord: u8,
        blocks: u8,
        in_hw: [u8; 2],
        out_hw: [u8; 2],
    },
    Upsample {
        blocks: u8,
        h: u8,
        w: u8,
    },
    Softmax {
        n: u16,
    },
    Layout {
        c: u8,
        px: u8,
        back: bool,
    },
    ScalePacked {
        k: u8,
        n: u8,
    },
    /// The int8 kernels (`kernels/int8.rs`), compared bit for bit.
    Int8(int8::QCase),
}

#[derive(Arbitrary, Debug)]
struct Input {
    case: Case,
    seed: u64,
    /// Also run split into this many parts (Par-capable kernels).
    parts: u8,
    /// Then shrink required buffer `.0` by `.1 + 1` floats: must be an error.
    short: Option<(u8, u16)>,
    /// Then call kernels with wild shapes over small slices: must not panic.
    wild: Option<Vec<u8>>,
}

/// How to run a kernel: which ISA, and split over `parts` (None: the plain `Kernels` call).
#[derive(Clone, Copy)]
struct Exec {
    k: Kernels,
    parts: Option<usize>,
}

/// Runs the parts one after another, last first (deterministic, single-threaded).
struct Reverse(usize);

impl Fork for Reverse {
    fn parts(&self) -> usize {
        self.0
    }
    fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        for i in (0..self.0).rev() {
            f(i);
        }
    }
}

type Call = Box<dyn Fn(Exec, &mut [Vec<f32>]) -> Result<(), Error>>;

/// One kernel call over `bufs`: `outputs` (with their accumulated-term counts) are compared
/// across ISAs, `required` buffers must be rejected when shorter.
struct Prob {
    bufs: Vec<Vec<f32>>,
    outputs: Vec<(usize, usize)>,
    required: Vec<usize>,
    splittable: bool,
    call: Call,
}

fn take(b: &mut [Vec<f32>], i: usize) -> Vec<f32> {
    std::mem::take(&mut b[i])
}

fn epilogue<'a>(
    e: &Epi,
    res: Option<(&'a [f32], usize)>,
    sums: Option<&'a mut [f32]>,
) -> Epilogue<'a> {
    Epilogue {
        activation: e.act.get(),
        residual: res.map(|(r, o)| Src::at(r, o)),
        channel_sums: sums,
    }
}

macro_rules! par_call {
    ($ex:expr, $method:ident ( $($arg:expr),* $(,)? )) => {
        match $ex.parts {
            None => $ex.k.$method($($arg),*),
            Some(p) => Par::new($ex.k, &Reverse(p)).min_split_macs(0).$method($($arg),*),
        }
    };
}

fn build(case: &Case, rng: &mut Rng) -> Option<Prob> {
    Some(match *case {
        Case::Int8(_) => return None,
        Case::Pointwise {
            k,
            n,
            px,
            x_off,
            y_off,
            epi,
        } => {
            let (kb, nb, px) = (
                (k % 12) as usize + 1,
                (n % 12) as usize + 1,
                (px % 40) as usize + 1,
            );
            let (xo, yo) = ((x_off % 3) as usize, (y_off % 3) as usize);
            let w = rng.vec(kb * 8 * nb * 8, -1.0, 1.0);
            let b = rng.vec(nb * 8, -1.0, 1.0);
            let mut packed = vec![0.0; pointwise_packed_len(kb * 8, nb * 8)];
            pack_pointwise(&w, &b, kb * 8, nb * 8, &mut packed).ok()?;
            let ro = epi.residual.map(|r| (r % 2) as usize);
            let bufs = vec![
                packed,
                rng.vec((xo + kb) * px * 8, -1.0, 1.0),
                vec![7.0; (yo + nb) * px * 8],
                rng.vec((ro.unwrap_or(0) + nb) * px * 8, -1.0, 1.0),
                vec![0.0; nb * 8],
            ];
            let shape = PointwiseShape {
                k_blocks: kb,
                n_blocks: nb,
                pixels: px,
            };
            let mut required = vec![0, 1, 2];
            if ro.is_some() {
                required.push(3);
            }
            if epi.sums {
                required.push(4);
            }
            Prob {
                bufs,
                outputs: vec![(2, kb * 8), (4, kb * 8 * px)],
                required,
                splittable: true,
                call: Box::new(move |ex, b| {
                    let (mut y, mut s) = (take(b, 2), take(b, 4));
                    let r = par_call!(
                        ex,
                        pointwise(
                            &b[0],
                            shape,
                            Src::at(&b[1], xo),
                            Dst::at(&mut y, yo),
                            epilogue(
                                &epi,
                                ro.map(|o| (&b[3][..], o)),
                                epi.sums.then_some(&mut s[..])
                            ),
                        )
                    );
                    b[2] = y;
                    b[4] = s;
                    r
                }),
            }
        }
        Case::Depthwise {
            c,
            h,
            w,
            k5,
            s2,
            pads,
            x_off,
            y_off,
            epi,
        } => {
            let k = if k5 { 5 } else { 3 };
            let blocks = (c % 6) as usize + 1;
            let p = pads.map(|p| (p as usize) % k);
            let sh = DepthwiseShape {
                blocks,
                in_h: ((h % 24) as usize + 1).max(k.saturating_sub(p[0] + p[2])),
                in_w: ((w % 24) as usize + 1).max(k.saturating_sub(p[1] + p[3])),
                k,
                stride: if s2 { 2 } else { 1 },
                pad_top: p[0],
                pad_left: p[1],
                pad_bottom: p[2],
                pad_right: p[3],
            };
            let (xo, yo) = ((x_off % 2) as usize, (y_off % 3) as usize);
            let ohw = sh.out_h() * sh.out_w();
            let ihw = sh.in_h * sh.in_w;
            let mut packed = vec![0.0; depthwise_packed_len(blocks * 8, k)];
            pack_depthwise(
                &rng.vec(blocks * 8 * k * k, -1.0, 1.0),
                &rng.vec(blocks * 8, -1.0, 1.0),
                blocks * 8,
                k,
                &mut packed,
            )
            .ok()?;
            let ro = epi.residual.map(|r| (r % 2) as usize);
            let bufs = vec![
                packed,
                rng.vec((xo + blocks) * ihw * 8, -1.0, 1.0),
                vec![7.0; (yo + blocks) * ohw * 8],
                rng.vec((ro.unwrap_or(0) + blocks) * ohw * 8, -1.0, 1.0),
                vec![0.0; blocks * 8],
            ];
            let mut required = vec![0, 1, 2];
            if ro.is_some() {
                required.push(3);
            }
            if epi.sums {
                required.push(4);
            }
            Prob {
                bufs,
                outputs: vec![(2, k * k), (4, k * k * ohw)],
                required,
                splittable: true,
                call: Box::new(move |ex, b| {
                    let (mut y, mut s) = (take(b, 2), take(b, 4));
                    let r = par_call!(
                        ex,
                        depthwise(
                            &b[0],
                            sh,
                            Src::at(&b[1], xo),
                            Dst::at(&mut y, yo),
                            epilogue(
                                &epi,
                                ro.map(|o| (&b[3][..], o)),
                                epi.sums.then_some(&mut s[..])
                            ),
                        )
                    );
                    b[2] = y;
                    b[4] = s;
                    r
                }),
            }
        }
        Case::Ghost {
            k,
            c1,
            h,
            w,
            x_off,
            y_off,
            epi,
            cheap,
        } => {
            let sh = GhostShape {
                k_blocks: (k % 8) as usize + 1,
                half_blocks: (c1 % 6) as usize + 1,
                h: (h % 20) as usize + 1,
                w: (w % 120) as usize + 1,
            };
            let (kb, nb, hw) = (sh.k_blocks, sh.half_blocks, sh.h * sh.w);
            if kb * nb * hw > 200_000 {
                return None;
            }
            let (xo, yo) = ((x_off % 2) as usize, (y_off % 2) as usize);
            let mut pw = vec![0.0; pointwise_packed_len(kb * 8, nb * 8)];
            pack_pointwise(
                &rng.vec(kb * nb * 64, -1.0, 1.0),
                &rng.vec(nb * 8, -1.0, 1.0),
                kb * 8,
                nb * 8,
                &mut pw,
            )
            .ok()?;
            let mut dw = vec![0.0; depthwise_packed_len(nb * 8, 3)];
            pack_depthwise(
                &rng.vec(nb * 8 * 9, -1.0, 1.0),
                &rng.vec(nb * 8, -1.0, 1.0),
                nb * 8,
                3,
                &mut dw,
            )
            .ok()?;
            let ro = epi.residual.map(|r| (r % 2) as usize);
            let bufs = vec![
                pw,
                dw,
                rng.vec((xo + kb) * hw * 8, -1.0, 1.0),
                vec![7.0; (yo + 2 * nb) * hw * 8],
                rng.vec((ro.unwrap_or(0) + 2 * nb) * hw * 8, -1.0, 1.0),
                vec![0.0; 2 * nb * 8],
                vec![
                    f32::NAN;
                    if ro.is_some() {
                        ghost_scratch_len(sh)
                    } else {
                        0
                    }
                ],
            ];
            let mut required = vec![0, 1, 2, 3];
            if ro.is_some() {
                required.extend([4, 6]);
            }
            if epi.sums {
                required.push(5);
            }
            Prob {
                bufs,
                outputs: vec![(3, 9 * kb * 8), (5, 9 * kb * 8 * hw)],
                required,
                splittable: true,
                call: Box::new(move |ex, b| {
                    let (mut y, mut s, mut scr) = (take(b, 3), take(b, 5), take(b, 6));
                    let r = par_call!(
                        ex,
                        ghost(
                            &b[0],
                            &b[1],
                            sh,
                            Src::at(&b[2], xo),
                            Dst::at(&mut y, yo),
                            GhostEpilogue {
                                primary: epi.act.get(),
                                cheap: cheap.get(),
                                residual: ro.map(|o| Src::at(&b[4][..], o)),
                                channel_sums: epi.sums.then_some(&mut s[..]),
                            },
                            &mut scr,
                        )
                    );
                    b[3] = y;
                    b[5] = s;
                    b[6] = scr;
                    r
                }),
            }
        }
        Case::Conv {
            cin,
            nchw,
            h,
            w,
            cout,
            kh,
            kw,
            s,
            pads,
            x_off,
            y_off,
            epi,
        } => {
            let cin = (cin % 12) as usize + 1;
            let (kh, kw) = ((kh % 5) as usize + 1, (kw % 5) as usize + 1);
            let p = [
                pads[0] as usize % kh,
                pads[1] as usize % kw,
                pads[2] as usize % kh,
                pads[3] as usize % kw,
            ];
            let layout = if nchw {
                InputLayout::Nchw
            } else {
                InputLayout::Nchw8c
            };
            let sh = ConvShape {
                cin,
                layout,
                in_h: ((h % 20) as usize + 1).max(kh),
                in_w: ((w % 20) as usize + 1).max(kw),
                out_blocks: (cout % 4) as usize + 1,
                kh,
                kw,
                stride_h: (s[0] % 3) as usize + 1,
                stride_w: (s[1] % 3) as usize + 1,
                pads: p,
            };
            let ihw = sh.in_h * sh.in_w;
            let ohw = sh.out_h() * sh.out_w();
            let ob = sh.out_blocks;
            let taps = cin * kh * kw;
            let mut packed = vec![0.0; conv_packed_len(cin, ob * 8, kh, kw)];
            pack_conv(
                &rng.vec(ob * 8 * taps, -1.0, 1.0),
                &rng.vec(ob * 8, -1.0, 1.0),
                cin,
                ob * 8,
                kh,
                kw,
                &mut packed,
            )
            .ok()?;
            let (xo, yo) = ((x_off % 2) as usize, (y_off % 2) as usize);
            // The input offset counts channel planes (NCHW) or blocks (NCHW8c).
            let x_len = match layout {
                InputLayout::Nchw => (xo + cin) * ihw,
                InputLayout::Nchw8c => (xo + cin.div_ceil(8)) * ihw * 8,
            };
            let ro = epi.residual.map(|r| (r % 2) as usize);
            let bufs = vec![
                packed,
                rng.vec(x_len, -1.0, 1.0),
                vec![7.0; (yo + ob) * ohw * 8],
                rng.vec((ro.unwrap_or(0) + ob) * ohw * 8, -1.0, 1.0),
                vec![0.0; ob * 8],
            ];
            let mut required = vec![0, 1, 2];
            if ro.is_some() {
                required.push(3);
            }
            if epi.sums {
                required.push(4);
            }
            Prob {
                bufs,
                outputs: vec![(2, taps), (4, taps * ohw)],
                required,
                splittable: true,
                call: Box::new(move |ex, b| {
                    let (mut y, mut s) = (take(b, 2), take(b, 4));
                    let r = par_call!(
                        ex,
                        conv(
                            &b[0],
                            sh,
                            Src::at(&b[1], xo),
                            Dst::at(&mut y, yo),
                            epilogue(
                                &epi,
                                ro.map(|o| (&b[3][..], o)),
                                epi.sums.then_some(&mut s[..])
                            ),
                        )
                    );
                    b[2] = y;
                    b[4] = s;
                    r
                }),
            }
        }
        Case::ConvGeneral {
            cig,
            cog,
            groups,
            h,
            w,
            kh,
            kw,
            s,
            d,
            pads,
            epi,
        } => {
            let g = (groups % 4) as usize + 1;
            let (cig, cog) = ((cig % 5) as usize + 1, (cog % 5) as usize + 1);
            let (kh, kw) = ((kh % 4) as usize + 1, (kw % 4) as usize + 1);
            let sh = GeneralConvShape {
                cin: cig * g,
                cout: cog * g,
                groups: g,
                in_h: (h % 12) as usize + 1,
                in_w: (w % 12) as usize + 1,
                kh,
                kw,
                stride: s.map(|v| (v % 3) as usize + 1),
                dilation: d.map(|v| (v % 2) as usize + 1),
                pads: pads.map(|v| (v % 3) as usize),
            };
            let ext_h = sh.dilation[0] * (kh - 1) + 1;
            let ext_w = sh.dilation[1] * (kw - 1) + 1;
            if sh.in_h + sh.pads[0] + sh.pads[2] < ext_h
                || sh.in_w + sh.pads[1] + sh.pads[3] < ext_w
            {
                return None;
            }
            let ohw = sh.out_h() * sh.out_w();
            let ob = sh.cout.div_ceil(8);
            let ro = epi.residual.map(|r| (r % 2) as usize);
            let bufs = vec![
                rng.vec(sh.cout * cig * kh * kw, -1.0, 1.0),
                rng.vec(sh.cout, -1.0, 1.0),
                rng.vec(sh.cin.div_ceil(8) * sh.in_h * sh.in_w * 8, -1.0, 1.0),
                vec![7.0; ob * ohw * 8],
                rng.vec((ro.unwrap_or(0) + ob) * ohw * 8, -1.0, 1.0),
                vec![0.0; ob * 8],
            ];
            Prob {
                bufs,
                outputs: vec![(3, cig * kh * kw), (5, cig * kh * kw * ohw)],
                required: vec![0, 1, 2, 3],
                splittable: false,
                call: Box::new(move |ex, b| {
                    let (mut y, mut s) = (take(b, 3), take(b, 5));
                    let r = ex.k.conv_general(
                        &b[0],
                        &b[1],
                        sh,
                        Src::new(&b[2]),
                        Dst::new(&mut y),
                        epilogue(
                            &epi,
                            ro.map(|o| (&b[4][..], o)),
                            epi.sums.then_some(&mut s[..]),
                        ),
                    );
                    b[3] = y;
                    b[5] = s;
                    r
                }),
            }
        }
        Case::Fc { k, n, act } => {
            let (kb, nb) = ((k % 40) as usize + 1, (n % 40) as usize + 1);
            let mut packed = vec![0.0; pointwise_packed_len(kb * 8, nb * 8)];
            pack_pointwise(
                &rng.vec(kb * nb * 64, -1.0, 1.0),
                &rng.vec(nb * 8, -1.0, 1.0),
                kb * 8,
                nb * 8,
                &mut packed,
            )
            .ok()?;
            let bufs = vec![packed, rng.vec(kb * 8, -1.0, 1.0), vec![7.0; nb * 8]];
            Prob {
                bufs,
                outputs: vec![(2, kb * 8)],
                required: vec![0, 1, 2],
                splittable: true,
                call: Box::new(move |ex, b| {
                    let mut y = take(b, 2);
                    let r = par_call!(ex, fc(&b[0], kb, nb, &b[1], &mut y, act.get()));
                    b[2] = y;
                    r
                }),
            }
        }
        Case::SeGate {
            c,
            r,
            inner,
            gate,
            px,
        } => {
            let (cb, rb) = ((c % 12) as usize + 1, (r % 4) as usize + 1);
            let mut red = vec![0.0; pointwise_packed_len(cb * 8, rb * 8)];
            pack_pointwise(
                &rng.vec(cb * rb * 64, -1.0, 1.0),
                &rng.vec(rb * 8, -1.0, 1.0),
                cb * 8,
                rb * 8,
                &mut red,
            )
            .ok()?;
            let mut exp = vec![0.0; pointwise_packed_len(rb * 8, cb * 8)];
            pack_pointwise(
                &rng.vec(cb * rb * 64, -1.0, 1.0),
                &rng.vec(cb * 8, -1.0, 1.0),
                rb * 8,
                cb * 8,
                &mut exp,
            )
            .ok()?;
            let inv = 1.0 / ((px as usize) + 1) as f32;
            let acts = SeActivations {
                inner: inner.map_or(Activation::Silu, ActSel::get),
                gate: gate.map_or(Activation::Sigmoid, ActSel::get),
            };
            let bufs = vec![
                rng.vec(cb * 8, -1.0, 1.0),
                red,
                exp,
                vec![0.0; (cb + rb) * 8],
                vec![7.0; cb * 8],
            ];
            Prob {
                bufs,
                outputs: vec![(4, (cb + rb) * 8)],
                required: vec![0, 1, 2, 3, 4],
                splittable: false,
                call: Box::new(move |ex, b| {
                    let (mut scr, mut gt) = (take(b, 3), take(b, 4));
                    let r = ex.k.se_gate(
                        &b[0],
                        inv,
                        &b[1],
                        &b[2],
                        SeShape {
                            c_blocks: cb,
                            r_blocks: rb,
                        },
                        acts,
                        &mut scr,
                        &mut gt,
                    );
                    b[3] = scr;
                    b[4] = gt;
                    r
                }),
            }
        }
        Case::Gap { blocks, px, x_off } => {
            let (nb, px, xo) = (
                (blocks % 8) as usize + 1,
                (px as usize) + 1,
                (x_off % 2) as usize,
            );
            let bufs = vec![rng.vec((xo + nb) * px * 8, -1.0, 1.0), vec![7.0; nb * 8]];
            Prob {
                bufs,
                outputs: vec![(1, px)],
                required: vec![0, 1],
                splittable: false,
                call: Box::new(move |ex, b| {
                    let mut y = take(b, 1);
                    let r = ex.k.global_avg_pool(Src::at(&b[0], xo), nb, px, &mut y);
                    b[1] = y;
                    r
                }),
            }
        }
        Case::Pool {
            max,
            cip,
            blocks,
            h,
            w,
            kh,
            kw,
            s,
            pads,
        } => {
            let (kh, kw) = ((kh % 4) as usize + 1, (kw % 4) as usize + 1);
            let sh = PoolShape {
                blocks: (blocks % 4) as usize + 1,
                in_h: ((h % 16) as usize + 1).max(kh),
                in_w: ((w % 16) as usize + 1).max(kw),
                kh,
                kw,
                stride: s.map(|v| (v % 3) as usize + 1),
                pads: [
                    pads[0] as usize % kh,
                    pads[1] as usize % kw,
                    pads[2] as usize % kh,
                    pads[3] as usize % kw,
                ],
            };
            let kind = if max {
                PoolKind::Max
            } else {
                PoolKind::Avg {
                    count_include_pad: cip,
                }
            };
            let ohw = sh.out_h() * sh.out_w();
            let bufs = vec![
                rng.vec(sh.blocks * sh.in_h * sh.in_w * 8, -1.0, 1.0),
                vec![7.0; sh.blocks * ohw * 8],
            ];
            Prob {
                bufs,
                outputs: vec![(1, kh * kw)],
                required: vec![0, 1],
                splittable: false,
                call: Box::new(move |ex, b| {
                    let mut y = take(b, 1);
                    let r = ex.k.pool(kind, sh, Src::new(&b[0]), Dst::new(&mut y));
                    b[1] = y;
                    r
                }),
            }
        }
        Case::Binary {
            mul,
            n,
            act,
            mode,
            px,
        } => {
            let op = if mul { BinaryOp::Mul } else { BinaryOp::Add };
            let nb = (n % 16) as usize + 1;
            match mode % 3 {
                0 => Prob {
                    bufs: vec![
                        rng.vec(nb * 8, -1.0, 1.0),
                        rng.vec(nb * 8, -1.0, 1.0),
                        vec![7.0; nb * 8],
                    ],
                    outputs: vec![(2, 1)],
                    required: vec![1, 2],
                    splittable: false,
                    call: Box::new(move |ex, b| {
                        let mut y = take(b, 2);
                        let r = ex.k.binary(op, &b[0], &b[1], &mut y, act.get());
                        b[2] = y;
                        r
                    }),
                },
                1 => Prob {
                    bufs: vec![rng.vec(nb * 8, -1.0, 1.0), rng.vec(nb * 8, -1.0, 1.0)],
                    outputs: vec![(0, 1)],
                    required: vec![1],
                    splittable: false,
                    call: Box::new(move |ex, b| {
                        let mut acc = take(b, 0);
                        let r = ex.k.binary_assign(op, &mut acc, &b[1], act.get());
                        b[0] = acc;
                        r
                    }),
                },
                _ => {
                    let px = (px % 30) as usize + 1;
                    Prob {
                        bufs: vec![rng.vec(nb * px * 8, -1.0, 1.0), rng.vec(nb * 8, -1.0, 1.0)],
                        outputs: vec![(0, 1)],
                        required: vec![0, 1],
                        splittable: false,
                        call: Box::new(move |ex, b| {
                            let mut x = take(b, 0);
                            let r = ex.k.channel_assign(op, &mut x, nb, px, &b[1], act.get());
                            b[0] = x;
                            r
                        }),
                    }
                }
            }
        }
        Case::Resize {
            mode,
            coord,
            blocks,
            in_hw,
            out_hw,
        } => {
            let mode = match mode % 5 {
                0 => ResizeMode::Linear,
                1 => ResizeMode::Nearest(NearestMode::RoundPreferFloor),
                2 => ResizeMode::Nearest(NearestMode::RoundPreferCeil),
                3 => ResizeMode::Nearest(NearestMode::Floor),
                _ => ResizeMode::Nearest(NearestMode::Ceil),
            };
            let coord = [
                CoordMode::HalfPixel,
                CoordMode::PytorchHalfPixel,
                CoordMode::Asymmetric,
                CoordMode::AlignCorners,
            ][(coord % 4) as usize];
            let sh = ResizeShape {
                blocks: (blocks % 3) as usize + 1,
                in_h: (in_hw[0] % 16) as usize + 1,
                in_w: (in_hw[1] % 16) as usize + 1,
                out_h: (out_hw[0] % 33) as usize + 1,
                out_w: (out_hw[1] % 33) as usize + 1,
            };
            let bufs = vec![
                rng.vec(sh.blocks * sh.in_h * sh.in_w * 8, -1.0, 1.0),
                vec![7.0; sh.blocks * sh.out_h * sh.out_w * 8],
            ];
            Prob {
                bufs,
                outputs: vec![(1, 4)],
                required: vec![0, 1],
                splittable: false,
                call: Box::new(move |ex, b| {
                    let mut y = take(b, 1);
                    let r =
                        ex.k.resize(mode, coord, sh, Src::new(&b[0]), Dst::new(&mut y));
                    b[1] = y;
                    r
                }),
            }
        }
        Case::Upsample { blocks, h, w } => {
            let (nb, h, w) = (
                (blocks % 4) as usize + 1,
                (h % 16) as usize + 1,
                (w % 16) as usize + 1,
            );
            let bufs = vec![
                rng.vec(nb * h * w * 8, -1.0, 1.0),
                vec![7.0; nb * 4 * h * w * 8],
            ];
            Prob {
                bufs,
                outputs: vec![(1, 1)],
                required: vec![0, 1],
                splittable: false,
                call: Box::new(move |ex, b| {
                    let mut y = take(b, 1);
                    let r =
                        ex.k.upsample2x_nearest(nb, h, w, Src::new(&b[0]), Dst::new(&mut y));
                    b[1] = y;
                    r
                }),
            }
        }
        Case::Softmax { n } => {
            let n = (n % 2000) as usize + 1;
            let x: Vec<f32> = rng.vec(n, -1.0, 1.0).iter().map(|v| v * 20.0).collect();
            Prob {
                bufs: vec![x, vec![7.0; n]],
                outputs: vec![(1, n)],
                required: vec![1],
                splittable: false,
                call: Box::new(move |ex, b| {
                    let mut y = take(b, 1);
                    let r = ex.k.softmax(&b[0], &mut y);
                    b[1] = y;
                    r
                }),
            }
        }
        Case::Layout { c, px, back } => {
            let (c, px) = ((c % 40) as usize + 1, (px % 50) as usize + 1);
            if back {
                Prob {
                    bufs: vec![rng.vec(nchw8c_len(c, px), -1.0, 1.0), vec![7.0; c * px]],
                    outputs: vec![(1, 1)],
                    required: vec![0, 1],
                    splittable: false,
                    call: Box::new(move |_, b| {
                        let mut y = take(b, 1);
                        let r = nchw8c_to_nchw(&b[0], c, px, &mut y);
                        b[1] = y;
                        r
                    }),
                }
            } else {
                Prob {
                    bufs: vec![rng.vec(c * px, -1.0, 1.0), vec![7.0; nchw8c_len(c, px)]],
                    outputs: vec![(1, 1)],
                    required: vec![0, 1],
                    splittable: false,
                    call: Box::new(move |_, b| {
                        let mut y = take(b, 1);
                        let r = nchw_to_nchw8c(&b[0], c, px, &mut y);
                        b[1] = y;
                        r
                    }),
                }
            }
        }
        Case::ScalePacked { k, n } => {
            let (kp, np) = (((k % 10) as usize + 1) * 8, ((n % 10) as usize + 1) * 8);
            let mut packed = vec![0.0; pointwise_packed_len(kp, np)];
            pack_pointwise(
                &rng.vec(kp * np, -1.0, 1.0),
                &rng.vec(np, -1.0, 1.0),
                kp,
                np,
                &mut packed,
            )
            .ok()?;
            let len = packed.len();
            Prob {
                bufs: vec![packed, rng.vec(kp, -1.0, 1.0), vec![7.0; len]],
                outputs: vec![(2, 1)],
                required: vec![0, 1, 2],
                splittable: false,
                call: Box::new(move |_, b| {
                    let mut y = take(b, 2);
                    let r = scale_packed_pointwise(&b[0], kp, np, &b[1], &mut y);
                    b[2] = y;
                    r
                }),
            }
        }
    })
}

/// `|a - b| <= 1e-5 * sqrt(terms) * max(1, |ref|)`, as in ghost-runtime's tests; NaN and
/// infinities must match exactly.
fn assert_close(what: &str, got: &[f32], want: &[f32], terms: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let tol = 1e-5 * (terms.max(1) as f32).sqrt();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()) {
            continue;
        }
        let err = (g - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "{what}: index {i}: got {g}, want {w} (err {err}, tol {tol})"
        );
    }
}

/// Every SIMD path this CPU runs (AVX-512 and AVX2 on an AVX-512 machine).
fn simd_kernels() -> impl Iterator<Item = Kernels> {
    [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Simd128]
        .into_iter()
        .filter_map(Kernels::with_isa)
}

/// A pointwise shape of wild parameters from `n` (see [`wild`]).
fn wild_pointwise(n: &mut dyn FnMut() -> usize) -> PointwiseShape {
    PointwiseShape {
        k_blocks: n(),
        n_blocks: n(),
        pixels: n(),
    }
}

/// A depthwise shape of wild parameters from `n` (see [`wild`]).
fn wild_depthwise(n: &mut dyn FnMut() -> usize) -> DepthwiseShape {
    DepthwiseShape {
        blocks: n(),
        in_h: n(),
        in_w: n(),
        k: n(),
        stride: n(),
        pad_top: n(),
        pad_left: n(),
        pad_bottom: n(),
        pad_right: n(),
    }
}

/// Calls every kernel with shape parameters taken from `bytes` (any size, zero, huge) over
/// small slices. Only panics and out-of-bounds accesses are findings.
fn wild(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let mut n = || -> usize {
        match u.int_in_range(0u8..=5).unwrap_or(0) {
            0 => u.int_in_range(0usize..=4).unwrap_or(0),
            1 => u.int_in_range(0usize..=40).unwrap_or(1),
            2 => usize::MAX - u.int_in_range(0usize..=8).unwrap_or(0),
            3 => (usize::MAX >> 3) + u.int_in_range(0usize..=8).unwrap_or(0),
            4 => 1usize << u.int_in_range(20u32..=40).unwrap_or(31),
            _ => u.arbitrary::<usize>().unwrap_or(0),
        }
    };
    let k = Kernels::new();
    let x = vec![0.5f32; 256];
    let mut y = vec![0.0f32; 256];
    let mut s = vec![0.0f32; 64];
    let mut scr = vec![0.0f32; 256];
    let act = Activation::Relu;
    let epi = |r: &mut usize| Epilogue {
        activation: act,
        residual: (*r % 2 == 0).then(|| Src::at(&x[..], *r / 2)),
        channel_sums: None,
    };
    let mut r = n();
    let _ = k.pointwise(
        &x,
        wild_pointwise(&mut n),
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
        epi(&mut r),
    );
    let _ = k.depthwise(
        &x,
        wild_depthwise(&mut n),
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
        epi(&mut r),
    );
    let _ = k.ghost(
        &x,
        &x,
        GhostShape {
            k_blocks: n(),
            half_blocks: n(),
            h: n(),
            w: n(),
        },
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
        GhostEpilogue {
            primary: act,
            cheap: act,
            residual: Some(Src::at(&x, n())),
            channel_sums: Some(&mut s),
        },
        &mut scr,
    );
    let layout = if n() % 2 == 0 {
        InputLayout::Nchw
    } else {
        InputLayout::Nchw8c
    };
    let _ = k.conv(
        &x,
        ConvShape {
            cin: n(),
            layout,
            in_h: n(),
            in_w: n(),
            out_blocks: n(),
            kh: n(),
            kw: n(),
            stride_h: n(),
            stride_w: n(),
            pads: [n(), n(), n(), n()],
        },
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
        epi(&mut r),
    );
    let _ = k.conv_general(
        &x,
        &x,
        GeneralConvShape {
            cin: n(),
            cout: n(),
            groups: n(),
            in_h: n(),
            in_w: n(),
            kh: n(),
            kw: n(),
            stride: [n(), n()],
            dilation: [n(), n()],
            pads: [n(), n(), n(), n()],
        },
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
        epi(&mut r),
    );
    let _ = k.fc(&x, n(), n(), &x, &mut y, act);
    let _ = k.se_gate(
        &x,
        0.5,
        &x,
        &x,
        SeShape {
            c_blocks: n(),
            r_blocks: n(),
        },
        SeActivations {
            inner: Activation::Silu,
            gate: Activation::Sigmoid,
        },
        &mut scr,
        &mut s,
    );
    let _ = k.global_avg_pool(Src::at(&x, n()), n(), n(), &mut s);
    let _ = k.pool(
        PoolKind::Max,
        PoolShape {
            blocks: n(),
            in_h: n(),
            in_w: n(),
            kh: n(),
            kw: n(),
            stride: [n(), n()],
            pads: [n(), n(), n(), n()],
        },
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
    );
    let _ = k.channel_assign(BinaryOp::Add, &mut y, n(), n(), &x, act);
    let _ = k.resize(
        ResizeMode::Linear,
        CoordMode::AlignCorners,
        ResizeShape {
            blocks: n(),
            in_h: n(),
            in_w: n(),
            out_h: n(),
            out_w: n(),
        },
        Src::at(&x, n()),
        Dst::at(&mut y, n()),
    );
    let _ = k.upsample2x_nearest(n(), n(), n(), Src::at(&x, n()), Dst::at(&mut y, n()));
    let _ = nchw_to_nchw8c(&x, n(), n(), &mut y);
    let _ = nchw8c_to_nchw(&x, n(), n(), &mut y);
    let _ = pack_pointwise(&x, &x, n(), n(), &mut y);
    let _ = pack_depthwise(&x, &x, n(), n(), &mut y);
    let _ = pack_conv(&x, &x, n(), n(), n(), n(), &mut y);
    let _ = scale_packed_pointwise(&x, n(), n(), &x, &mut y);
    int8::wild(&mut n);
}

fuzz_target!(|input: Input| {
    if let Case::Int8(q) = &input.case {
        int8::check(q, input.seed, input.parts, input.short);
    }
    let mut rng = Rng::new(input.seed);
    let scalar = Kernels::with_isa(Isa::Scalar).unwrap();
    let best = Kernels::new();
    if let Some(prob) = build(&input.case, &mut rng) {
        let what = format!("{:?}", input.case);
        let mut want = prob.bufs.clone();
        (prob.call)(
            Exec {
                k: scalar,
                parts: None,
            },
            &mut want,
        )
        .unwrap_or_else(|e| panic!("{what}: scalar rejected valid arguments: {e}"));
        for k in simd_kernels() {
            let mut got = prob.bufs.clone();
            (prob.call)(Exec { k, parts: None }, &mut got)
                .unwrap_or_else(|e| panic!("{what}: {:?} rejected valid arguments: {e}", k.isa()));
            for &(i, terms) in &prob.outputs {
                let w = format!("{what} on {:?}: buffer {i}", k.isa());
                assert_close(&w, &got[i], &want[i], terms);
            }
        }
        if prob.splittable {
            let parts = (input.parts % 7) as usize + 1;
            for k in [scalar, best] {
                let mut whole = prob.bufs.clone();
                (prob.call)(Exec { k, parts: None }, &mut whole).unwrap();
                let mut split = prob.bufs.clone();
                (prob.call)(
                    Exec {
                        k,
                        parts: Some(parts),
                    },
                    &mut split,
                )
                .unwrap_or_else(|e| panic!("{what}: split in {parts} rejected: {e}"));
                for &(i, _) in &prob.outputs {
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert!(
                        bits(&whole[i]) == bits(&split[i]),
                        "{what}: {:?} split in {parts} differs from the whole layer (buffer {i})",
                        k.isa()
                    );
                }
            }
        }
        if let Some((which, by)) = input.short {
            if !prob.required.is_empty() {
                let i = prob.required[which as usize % prob.required.len()];
                let mut bufs = prob.bufs.clone();
                let len = bufs[i].len();
                if len > 0 {
                    let cut = (by as usize % len) + 1;
                    bufs[i].truncate(len - cut);
                    let before = bufs.clone();
                    let r = (prob.call)(
                        Exec {
                            k: best,
                            parts: None,
                        },
                        &mut bufs,
                    );
                    assert!(
                        r.is_err(),
                        "{what}: buffer {i} shortened by {cut} was accepted"
                    );
                    for (j, (a, b)) in bufs.iter().zip(&before).enumerate() {
                        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                        assert!(bits(a) == bits(b), "{what}: rejected call wrote buffer {j}");
                    }
                }
            }
        }
    }
    if let Some(bytes) = &input.wild {
        wild(bytes);
    }
});
