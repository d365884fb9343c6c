//! The general depthwise kernel (any kh x kw, stride, dilation, padding): scalar path vs. a
//! naive f64 NCHW formula on odd shapes, every SIMD path vs. the scalar path, the split
//! kernel vs. the serial one (identical bits), and its length checks.

mod common;
use common::*;
use ghost_runtime::*;

struct Case {
    c: usize,
    shape: DepthwiseGeneralShape,
    w: Vec<f32>,
    b: Vec<f32>,
    packed: Vec<f32>,
    x: Vec<f32>,
    x_off: usize,
    y_off: usize,
    res: Option<Vec<f32>>,
    sums: bool,
    act: Activation,
}

impl Case {
    /// A random layer; `square` forces a 3x3/5x5 stride-1/2 undilated one (the fast kernel).
    fn random(rng: &mut Rng, max_c: usize, max_hw: usize, square: bool) -> Case {
        let c = rng.range(1, max_c);
        let cp = pad8(c);
        let (kh, kw, stride, dilation) = if square {
            let k = [3, 5][rng.range(0, 1)];
            let s = rng.range(1, 2);
            (k, k, [s, s], [1, 1])
        } else {
            let (kh, kw) = match rng.range(0, 3) {
                0 => (1, rng.range(2, 9)),
                1 => (rng.range(2, 9), 1),
                2 => {
                    let k = rng.range(1, 9);
                    (k, k)
                }
                _ => (rng.range(1, 9), rng.range(1, 9)),
            };
            (
                kh,
                kw,
                [rng.range(1, 3), rng.range(1, 3)],
                [rng.range(1, 3), rng.range(1, 3)],
            )
        };
        let ext = |k: usize, d: usize| (k - 1) * d + 1;
        let (eh, ew) = (ext(kh, dilation[0]), ext(kw, dilation[1]));
        let mut pads = [0; 4];
        for (i, p) in pads.iter_mut().enumerate() {
            let e = if i % 2 == 0 { eh } else { ew };
            // Square layers keep padding below k (the fast kernel's domain); others may pad
            // past the kernel (rows/columns with no valid tap: bias only).
            *p = rng.range(0, if square { kh - 1 } else { e });
        }
        let mut shape = DepthwiseGeneralShape {
            blocks: cp / 8,
            in_h: rng.range(1, max_hw),
            in_w: rng.range(1, max_hw),
            kh,
            kw,
            stride,
            dilation,
            pads,
        };
        if rng.range(0, 3) == 0 && !square {
            shape = DepthwiseGeneralShape::same(cp / 8, shape.in_h, shape.in_w, kh, kw);
        }
        shape.in_h = shape
            .in_h
            .max(eh.saturating_sub(shape.pads[0] + shape.pads[2]));
        shape.in_w = shape
            .in_w
            .max(ew.saturating_sub(shape.pads[1] + shape.pads[3]));
        let taps = kh * kw;
        let mut w = vec![0.0; cp * taps];
        let mut b = vec![0.0; cp];
        for ch in 0..c {
            for t in 0..taps {
                w[ch * taps + t] = rng.f();
            }
            b[ch] = rng.f();
        }
        let mut packed = vec![0.0; depthwise_general_packed_len(cp, kh, kw)];
        pack_depthwise_general(&w, &b, cp, kh, kw, &mut packed).unwrap();
        let x_off = rng.range(0, 1);
        let x = rng.vec((x_off + cp / 8) * shape.in_h * shape.in_w * 8);
        let ohw = shape.out_h() * shape.out_w();
        let res = rng.bool().then(|| rng.vec(cp * ohw));
        Case {
            c,
            shape,
            w,
            b,
            packed,
            x,
            x_off,
            y_off: rng.range(0, 2),
            res,
            sums: rng.bool(),
            act: rng.act(),
        }
    }

    /// Runs the layer on the serial kernels (`general_only`: never the 3x3/5x5 kernel) or
    /// split over `fork`.
    fn run(&self, k: Kernels, fork: Option<&dyn Fork>, general_only: bool) -> (Vec<f32>, Vec<f32>) {
        let ohw = self.shape.out_h() * self.shape.out_w();
        let mut y = vec![7.0; (self.y_off + self.shape.blocks) * ohw * 8];
        let mut sums = vec![0.0; self.shape.blocks * 8];
        let epi = Epilogue {
            activation: self.act,
            residual: self.res.as_deref().map(Src::new),
            channel_sums: self.sums.then_some(&mut sums[..]),
        };
        let (x, dst) = (Src::at(&self.x, self.x_off), Dst::at(&mut y, self.y_off));
        match fork {
            Some(f) => Par::new(k, f).min_split_macs(0).depthwise_general(
                &self.packed,
                self.shape,
                x,
                dst,
                epi,
            ),
            None if general_only => k.depthwise_general_only(&self.packed, self.shape, x, dst, epi),
            None => k.depthwise_general(&self.packed, self.shape, x, dst, epi),
        }
        .unwrap();
        (y, sums)
    }

    fn naive(&self) -> (Vec<f64>, Vec<f64>) {
        let s = self.shape;
        let (oh, ow) = (s.out_h(), s.out_w());
        let ihw = s.in_h * s.in_w;
        let taps = s.kh * s.kw;
        let mut out = Vec::new();
        let mut sums = vec![0.0; self.c];
        for ch in 0..self.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = self.b[ch] as f64;
                    for ky in 0..s.kh {
                        for kx in 0..s.kw {
                            let iy = (oy * s.stride[0] + ky * s.dilation[0]) as isize
                                - s.pads[0] as isize;
                            let ix = (ox * s.stride[1] + kx * s.dilation[1]) as isize
                                - s.pads[1] as isize;
                            if iy < 0 || ix < 0 || iy as usize >= s.in_h || ix as usize >= s.in_w {
                                continue;
                            }
                            let p = iy as usize * s.in_w + ix as usize;
                            acc += self.w[ch * taps + ky * s.kw + kx] as f64
                                * self.x[self.x_off * ihw * 8 + at(ihw, ch, p)] as f64;
                        }
                    }
                    let mut v = apply(self.act, acc);
                    if let Some(r) = &self.res {
                        v += r[at(oh * ow, ch, oy * ow + ox)] as f64;
                    }
                    sums[ch] += v;
                    out.push(v);
                }
            }
        }
        (out, sums)
    }

    fn logical(&self, y: &[f32]) -> Vec<f32> {
        let ohw = self.shape.out_h() * self.shape.out_w();
        let mut out = Vec::new();
        for ch in 0..self.c {
            for p in 0..ohw {
                out.push(y[self.y_off * ohw * 8 + at(ohw, ch, p)]);
            }
        }
        out
    }

    fn taps(&self) -> usize {
        self.shape.kh * self.shape.kw + 1
    }
}

#[test]
fn scalar_matches_formula() {
    let mut rng = Rng::new(41);
    for i in 0..trials(300) {
        let c = Case::random(&mut rng, 20, 15, i % 5 == 0);
        for general_only in [false, true] {
            let (y, sums) = c.run(scalar(), None, general_only);
            let (want, want_sums) = c.naive();
            let what = format!("{:?} general_only={general_only}", c.shape);
            assert_close64(&what, &c.logical(&y), &want, c.taps());
            if c.sums {
                let ohw = c.shape.out_h() * c.shape.out_w();
                assert_close64(&what, &sums[..c.c], &want_sums, c.taps() * ohw);
            }
            // Blocks before the output offset and padded lanes' neighbours are untouched.
            let ohw8 = c.shape.out_h() * c.shape.out_w() * 8;
            assert!(y[..c.y_off * ohw8].iter().all(|&v| v == 7.0), "{what}");
        }
    }
}

#[test]
fn simd_matches_scalar() {
    let mut rng = Rng::new(42);
    for i in 0..trials(300) {
        let c = Case::random(&mut rng, 24, 30, i % 5 == 0);
        for general_only in [false, true] {
            let (y0, s0) = c.run(scalar(), None, general_only);
            for kern in simd_isas() {
                let (y, s) = c.run(kern, None, general_only);
                let what = format!("{:?} {:?} general_only={general_only}", kern.isa(), c.shape);
                assert_close(&what, &y, &y0, c.taps());
                assert_close(&what, &s, &s0, c.taps() * y.len());
            }
        }
    }
}

#[test]
fn par_is_bit_identical() {
    let mut rng = Rng::new(43);
    let forks = forks();
    for i in 0..trials(60) {
        let c = Case::random(&mut rng, 40, 24, i % 4 == 0);
        for kern in all_isas() {
            let (y0, s0) = c.run(kern, None, false);
            for f in &forks {
                let (y, s) = c.run(kern, Some(f.as_ref()), false);
                let at = format!("{:?} {:?}, {} parts", c.shape, kern.isa(), f.parts());
                assert!(bits(&y) == bits(&y0), "output of {at}");
                assert!(bits(&s) == bits(&s0), "channel sums of {at}");
            }
        }
    }
}

/// A random stride-1 `1xK` / `Kx1` layer (the line kernels' domain for K = 3, 5, 7; other K
/// and a stride across the lines exercise the checks that route them): tiny to medium sizes
/// so every tile width (1..8, exact divisors, overlapping last tiles) and line remainder
/// appears, with any padding along the kernel's axis.
fn line_case(rng: &mut Rng) -> Case {
    let mut c = Case::random(rng, 20, 4, false);
    let k = [3, 5, 7, 3, 5, 7, 2, 4][rng.range(0, 7)];
    let horizontal = rng.bool();
    let (kh, kw) = if horizontal { (1, k) } else { (k, 1) };
    let across = [1, 1, 1, 2][rng.range(0, 3)];
    let n = [1, 2, 3, 4, 5, 7, 9, 12, 14, 17, 28][rng.range(0, 10)];
    // Line counts: every tile height 1..8 and longer lines with remainders (the `Kx1`
    // tiles span 3, 4, 7 or 8 columns).
    let m = [1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 16, 17, 21][rng.range(0, 12)];
    let (p0, p1) = (rng.range(0, k), rng.range(0, k));
    let (in_h, in_w) = if horizontal { (m, n) } else { (n, m) };
    let cp = pad8(c.c);
    c.shape = DepthwiseGeneralShape {
        blocks: cp / 8,
        in_h,
        in_w: in_w.max(k.saturating_sub(p0 + p1)),
        kh,
        kw,
        stride: if horizontal { [across, 1] } else { [1, across] },
        dilation: [1, 1],
        pads: if horizontal {
            [0, p0, 0, p1]
        } else {
            [p0, 0, p1, 0]
        },
    };
    if !horizontal {
        c.shape.in_h = in_h.max(k.saturating_sub(p0 + p1));
        c.shape.in_w = in_w;
    }
    c.w = vec![0.0; cp * k];
    c.b = vec![0.0; cp];
    for ch in 0..c.c {
        for t in 0..k {
            c.w[ch * k + t] = rng.f();
        }
        c.b[ch] = rng.f();
    }
    c.packed = vec![0.0; depthwise_general_packed_len(cp, kh, kw)];
    pack_depthwise_general(&c.w, &c.b, cp, kh, kw, &mut c.packed).unwrap();
    c.x = rng.vec((c.x_off + cp / 8) * c.shape.in_h * c.shape.in_w * 8);
    let ohw = c.shape.out_h() * c.shape.out_w();
    c.res = rng.bool().then(|| rng.vec(cp * ohw));
    c
}

/// The line kernels (`1xK`, `Kx1`, stride 1 along the kernel): scalar against the formula,
/// every SIMD path against scalar, every split against the serial bits.
#[test]
fn line_kernels() {
    let mut rng = Rng::new(45);
    let forks = forks();
    for i in 0..trials(400) {
        let c = line_case(&mut rng);
        let (y0, s0) = c.run(scalar(), None, false);
        let (want, want_sums) = c.naive();
        let what = format!("{:?}", c.shape);
        assert_close64(&what, &c.logical(&y0), &want, c.taps());
        if c.sums {
            let ohw = c.shape.out_h() * c.shape.out_w();
            assert_close64(&what, &s0[..c.c], &want_sums, c.taps() * ohw);
        }
        for kern in simd_isas() {
            let (y, s) = c.run(kern, None, false);
            let what = format!("{:?} {what}", kern.isa());
            assert_close(&what, &y, &y0, c.taps());
            assert_close(&what, &s, &s0, c.taps() * y.len());
        }
        if i % 4 == 0 {
            for kern in all_isas() {
                let (y1, s1) = c.run(kern, None, false);
                for f in &forks {
                    let (y, s) = c.run(kern, Some(f.as_ref()), false);
                    let at = format!("{what} {:?}, {} parts", kern.isa(), f.parts());
                    assert!(bits(&y) == bits(&y1), "output of {at}");
                    assert!(bits(&s) == bits(&s1), "channel sums of {at}");
                }
            }
        }
    }
}

/// Sigmoid, SiLU and GELU epilogues (with AVX-512 on pairs of vectors, 16 lanes at a time:
/// `ActV::apply_tile_wide`) give the same bits as the layer without activation followed by
/// the elementwise `transcendental` kernel, on every path: the line kernels, the general
/// tiles and the 3x3/5x5 kernel.
#[test]
fn logistic_epilogue_equals_elementwise() {
    let mut rng = Rng::new(46);
    for i in 0..trials(240) {
        let mut c = match i % 3 {
            0 => line_case(&mut rng),
            1 => Case::random(&mut rng, 40, 20, false),
            _ => Case::random(&mut rng, 40, 20, true),
        };
        c.res = None;
        let (act, f) = [
            (Activation::Silu, Transcendental::Silu),
            (Activation::Sigmoid, Transcendental::Sigmoid),
            (Activation::Gelu, Transcendental::Gelu),
        ][i / 3 % 3];
        let from = c.y_off * c.shape.out_h() * c.shape.out_w() * 8;
        for kern in all_isas() {
            for general_only in [false, true] {
                c.act = Activation::None;
                let (mut want, _) = c.run(kern, None, general_only);
                kern.transcendental(f, &mut want[from..]);
                c.act = act;
                let (y, _) = c.run(kern, None, general_only);
                assert!(
                    bits(&y) == bits(&want),
                    "{:?} {act:?} {:?} general_only={general_only}",
                    kern.isa(),
                    c.shape
                );
            }
        }
    }
}

/// The GhostNetV2 DFC shapes (1x5 then 5x1, "same" padding) on every path, against the
/// formula.
#[test]
fn dfc_shapes_match_formula() {
    let mut rng = Rng::new(44);
    for &(c, hw) in &[(72, 28), (120, 14), (200, 7), (960, 3)] {
        for (kh, kw) in [(1, 5), (5, 1)] {
            let mut case = Case::random(&mut rng, 8, 4, false);
            case.c = c;
            case.shape = DepthwiseGeneralShape::same(c / 8, hw, hw, kh, kw);
            case.w = rng.vec(c * kh * kw);
            case.b = rng.vec(c);
            case.packed = vec![0.0; depthwise_general_packed_len(c, kh, kw)];
            pack_depthwise_general(&case.w, &case.b, c, kh, kw, &mut case.packed).unwrap();
            case.x_off = 0;
            case.x = rng.vec(c * hw * hw);
            case.res = None;
            let (want, _) = case.naive();
            for kern in all_isas() {
                let (y, _) = case.run(kern, None, false);
                let what = format!("{:?} {:?}", kern.isa(), case.shape);
                assert_close64(&what, &case.logical(&y), &want, case.taps());
            }
        }
    }
}

#[test]
fn lengths_are_checked() {
    let k = scalar();
    let shape = DepthwiseGeneralShape::same(2, 5, 6, 1, 5);
    let packed = vec![0.0; depthwise_general_packed_len(16, 1, 5)];
    let x = vec![0.0; 16 * 30];
    let mut y = vec![0.0; 16 * 30];
    let run = |packed: &[f32], x: &[f32], y: &mut [f32], shape| {
        k.depthwise_general(
            packed,
            shape,
            Src::new(x),
            Dst::new(y),
            Epilogue::act(Activation::None),
        )
    };
    assert!(run(&packed, &x, &mut y, shape).is_ok());
    assert!(run(&packed[1..], &x, &mut y, shape).is_err());
    assert!(run(&packed, &x[1..], &mut y, shape).is_err());
    assert!(run(&packed, &x, &mut y[1..], shape).is_err());
    let bad = [
        DepthwiseGeneralShape { kw: 0, ..shape },
        DepthwiseGeneralShape {
            stride: [1, 0],
            ..shape
        },
        DepthwiseGeneralShape {
            dilation: [0, 1],
            ..shape
        },
        // The padded width (6) is narrower than the dilated kernel (1 + 4*2 = 9).
        DepthwiseGeneralShape {
            dilation: [1, 2],
            pads: [0; 4],
            ..shape
        },
    ];
    for sh in bad {
        assert!(run(&packed, &x, &mut y, sh).is_err(), "{sh:?}");
    }
}

/// Every path of the kernel (the 3x3/5x5 kernel, the general tiles at column strides 1, 2
/// and 3, the line kernels) runs on a thread with a 256 KiB stack and gives the bits it gives
/// on the main thread. Debug builds once inlined every tile instance into one frame per ISA:
/// about 2.2 MiB of stack for a 3x2 layer, which overflowed a test thread's 2 MiB (the
/// process aborts, so this test fails by crashing); see ghost-runtime/build.rs.
#[test]
#[cfg_attr(target_os = "wasi", ignore = "wasm32-wasip1 has no threads")]
fn runs_on_a_small_stack() {
    let mut rng = Rng::new(46);
    let mut cases: Vec<Case> = (0..trials(24))
        .map(|i| Case::random(&mut rng, 20, 15, i % 3 == 0))
        .collect();
    cases.extend((0..trials(12)).map(|_| line_case(&mut rng)));
    let want: Vec<_> = cases
        .iter()
        .map(|c| {
            let runs = all_isas().into_iter();
            runs.map(|k| [false, true].map(|g| c.run(k, None, g).0))
                .collect::<Vec<_>>()
        })
        .collect();
    std::thread::scope(|sc| {
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn_scoped(sc, || {
                for (c, want) in cases.iter().zip(&want) {
                    for (k, want) in all_isas().into_iter().zip(want) {
                        for (g, want) in [false, true].into_iter().zip(want) {
                            let y = c.run(k, None, g).0;
                            let what = format!("{:?} {:?} general_only={g}", k.isa(), c.shape);
                            assert!(bits(&y) == bits(want), "{what}");
                        }
                    }
                }
            })
            .unwrap()
            .join()
            .unwrap();
    });
}
