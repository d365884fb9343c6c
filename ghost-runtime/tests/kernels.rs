//! Each kernel: scalar path vs. a naive NCHW formula, every SIMD path vs. the scalar path,
//! on randomized shapes (channels not multiples of 8, width 1, odd sizes, all epilogues,
//! block offsets).

mod common;
use common::*;
use ghost_runtime::*;

/// The serial kernels or the same kernels split over a fork: the cases run through either.
#[derive(Clone, Copy)]
enum Exec<'a> {
    Serial(Kernels),
    Par(Par<'a>),
}

impl From<Kernels> for Exec<'_> {
    fn from(k: Kernels) -> Self {
        Exec::Serial(k)
    }
}

impl<'a> From<Par<'a>> for Exec<'a> {
    fn from(p: Par<'a>) -> Self {
        Exec::Par(p)
    }
}

/// `exec!(e, kernel(args..))` calls the kernel on whichever `Exec` it is.
macro_rules! exec {
    ($e:expr, $kernel:ident($($arg:expr),* $(,)?)) => {
        match $e {
            Exec::Serial(k) => k.$kernel($($arg),*),
            Exec::Par(p) => p.$kernel($($arg),*),
        }
    };
}

#[test]
fn required_isas_are_exercised() {
    // CI sets GHOST_REQUIRE_ISA=avx512 (or avx2, neon) so a missing path fails instead of
    // silently testing only the scalar code.
    if let Ok(req) = std::env::var("GHOST_REQUIRE_ISA") {
        for name in req.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let isa = Isa::from_name(name).unwrap_or_else(|| panic!("unknown ISA {name}"));
            let mut need = vec![isa];
            if isa == Isa::Avx512 {
                need.push(Isa::Avx2);
            }
            for isa in need {
                assert!(
                    simd_isas().iter().any(|k| k.isa() == isa),
                    "GHOST_REQUIRE_ISA asks for {isa:?}, which this machine/build cannot run"
                );
            }
        }
    }
}

#[test]
fn layout_roundtrip() {
    let mut rng = Rng::new(1);
    for _ in 0..trials(20) {
        let (c, p) = (rng.range(1, 20), rng.range(1, 9));
        let x = rng.vec(c * p);
        let mut b = vec![f32::NAN; nchw8c_len(c, p)];
        nchw_to_nchw8c(&x, c, p, &mut b).unwrap();
        for cc in c..pad8(c) {
            for pp in 0..p {
                assert_eq!(b[at(p, cc, pp)], 0.0);
            }
        }
        for cc in 0..c {
            for pp in 0..p {
                assert_eq!(b[at(p, cc, pp)], x[cc * p + pp]);
            }
        }
        let mut y = vec![0.0; c * p];
        nchw8c_to_nchw(&b, c, p, &mut y).unwrap();
        assert_eq!(x, y);
    }
}

/// A random pointwise problem with logical sizes and everything the epilogue can do.
struct PwCase {
    k: usize,
    n: usize,
    px: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    packed: Vec<f32>,
    x: Vec<f32>,
    x_off: usize,
    y_off: usize,
    y_blocks: usize,
    res: Option<(Vec<f32>, usize)>,
    sums: bool,
    act: Activation,
}

impl PwCase {
    fn random(rng: &mut Rng, max_k: usize, max_n: usize, max_px: usize) -> PwCase {
        let (k, n, px) = (
            rng.range(1, max_k),
            rng.range(1, max_n),
            rng.range(1, max_px),
        );
        let (kp, np) = (pad8(k), pad8(n));
        let mut w = vec![0.0; np * kp];
        let mut b = vec![0.0; np];
        for o in 0..n {
            for i in 0..k {
                w[o * kp + i] = rng.f();
            }
            b[o] = rng.f();
        }
        let mut packed = vec![0.0; pointwise_packed_len(kp, np)];
        pack_pointwise(&w, &b, kp, np, &mut packed).unwrap();
        let x_off = rng.range(0, 2);
        let x = rng.vec((x_off + kp / 8) * px * 8);
        let y_off = rng.range(0, 2);
        let y_blocks = y_off + np / 8 + rng.range(0, 1);
        let res = rng.bool().then(|| {
            let off = rng.range(0, 1);
            (rng.vec((off + np / 8) * px * 8), off)
        });
        PwCase {
            k,
            n,
            px,
            w,
            b,
            packed,
            x,
            x_off,
            y_off,
            y_blocks,
            res,
            sums: rng.bool(),
            act: rng.act(),
        }
    }

    fn shape(&self) -> PointwiseShape {
        PointwiseShape {
            k_blocks: pad8(self.k) / 8,
            n_blocks: pad8(self.n) / 8,
            pixels: self.px,
        }
    }

    /// Output tensor and sums from the kernel under test.
    fn run<'a>(&self, kern: impl Into<Exec<'a>>) -> (Vec<f32>, Vec<f32>) {
        let kern = kern.into();
        let mut y = vec![7.0; self.y_blocks * self.px * 8];
        let mut sums = vec![0.0; pad8(self.n)];
        exec!(
            kern,
            pointwise(
                &self.packed,
                self.shape(),
                Src::at(&self.x, self.x_off),
                Dst::at(&mut y, self.y_off),
                Epilogue {
                    activation: self.act,
                    residual: self.res.as_ref().map(|(r, o)| Src::at(r, *o)),
                    channel_sums: self.sums.then_some(&mut sums[..]),
                },
            )
        )
        .unwrap();
        (y, sums)
    }

    /// Naive formula: (logical outputs in kernel-order, sums).
    fn naive(&self) -> (Vec<f64>, Vec<f64>) {
        let kp = pad8(self.k);
        let px = self.px;
        let mut out = Vec::new();
        let mut sums = vec![0.0; self.n];
        for o in 0..self.n {
            for p in 0..px {
                let mut acc = self.b[o] as f64;
                for i in 0..self.k {
                    acc += self.w[o * kp + i] as f64
                        * self.x[self.x_off * px * 8 + at(px, i, p)] as f64;
                }
                let mut v = apply(self.act, acc);
                if let Some((r, off)) = &self.res {
                    v += r[off * px * 8 + at(px, o, p)] as f64;
                }
                sums[o] += v;
                out.push(v);
            }
        }
        (out, sums)
    }

    fn logical(&self, y: &[f32]) -> Vec<f32> {
        let px = self.px;
        let mut out = Vec::new();
        for o in 0..self.n {
            for p in 0..px {
                out.push(y[self.y_off * px * 8 + at(px, o, p)]);
            }
        }
        out
    }
}

#[test]
fn pointwise_scalar_matches_formula() {
    let mut rng = Rng::new(2);
    for _ in 0..trials(60) {
        let c = PwCase::random(&mut rng, 40, 40, 20);
        let (y, sums) = c.run(scalar());
        let (want, want_sums) = c.naive();
        assert_close64("pointwise", &c.logical(&y), &want, c.k);
        // Blocks outside the written range are untouched.
        for (i, v) in y.iter().enumerate() {
            let blk = i / (c.px * 8);
            if blk < c.y_off || blk >= c.y_off + pad8(c.n) / 8 {
                assert_eq!(*v, 7.0);
            }
        }
        if c.sums {
            assert_close64("sums", &sums[..c.n], &want_sums, c.k * c.px);
        }
    }
}

#[test]
fn pointwise_simd_matches_scalar() {
    let mut rng = Rng::new(3);
    for _ in 0..trials(80) {
        let c = PwCase::random(&mut rng, 70, 70, 40);
        let (y0, s0) = c.run(scalar());
        for kern in simd_isas() {
            let (y, s) = c.run(kern);
            assert_close(&format!("{:?} pointwise", kern.isa()), &y, &y0, c.k);
            assert_close(&format!("{:?} sums", kern.isa()), &s, &s0, c.k * c.px);
        }
    }
}

#[test]
fn pointwise_rejects_short_slices() {
    let k = scalar();
    let packed = vec![0.0; pointwise_packed_len(8, 8)];
    let x = vec![0.0; 8 * 4];
    let mut y = vec![0.0; 8 * 3];
    let err = k
        .pointwise(
            &packed,
            PointwiseShape {
                k_blocks: 1,
                n_blocks: 1,
                pixels: 4,
            },
            Src::new(&x),
            Dst::new(&mut y),
            Epilogue::act(Activation::None),
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::Length {
            arg: "output",
            expected: 32,
            actual: 24
        }
    );
}

struct DwCase {
    c: usize,
    shape: DepthwiseShape,
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

impl DwCase {
    fn random(rng: &mut Rng, max_c: usize, max_hw: usize) -> DwCase {
        let c = rng.range(1, max_c);
        let k = if rng.bool() { 3 } else { 5 };
        let stride = rng.range(1, 2);
        let cp = pad8(c);
        let mut shape = DepthwiseShape {
            blocks: cp / 8,
            in_h: rng.range(1, max_hw),
            in_w: rng.range(1, max_hw),
            k,
            stride,
            pad_top: rng.range(0, k - 1),
            pad_left: rng.range(0, k - 1),
            pad_bottom: rng.range(0, k - 1),
            pad_right: rng.range(0, k - 1),
        };
        if rng.range(0, 2) == 0 {
            shape = DepthwiseShape::same(cp / 8, shape.in_h, shape.in_w, k, stride);
        }
        shape.in_h = shape
            .in_h
            .max(k.saturating_sub(shape.pad_top + shape.pad_bottom));
        shape.in_w = shape
            .in_w
            .max(k.saturating_sub(shape.pad_left + shape.pad_right));
        let mut w = vec![0.0; cp * k * k];
        let mut b = vec![0.0; cp];
        for ch in 0..c {
            for t in 0..k * k {
                w[ch * k * k + t] = rng.f();
            }
            b[ch] = rng.f();
        }
        let mut packed = vec![0.0; depthwise_packed_len(cp, k)];
        pack_depthwise(&w, &b, cp, k, &mut packed).unwrap();
        let x_off = rng.range(0, 1);
        let x = rng.vec((x_off + cp / 8) * shape.in_h * shape.in_w * 8);
        let ohw = shape.out_h() * shape.out_w();
        let res = rng.bool().then(|| rng.vec(cp * ohw));
        DwCase {
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

    fn run<'a>(&self, kern: impl Into<Exec<'a>>) -> (Vec<f32>, Vec<f32>) {
        let kern = kern.into();
        let ohw = self.shape.out_h() * self.shape.out_w();
        let mut y = vec![7.0; (self.y_off + self.shape.blocks) * ohw * 8];
        let mut sums = vec![0.0; self.shape.blocks * 8];
        exec!(
            kern,
            depthwise(
                &self.packed,
                self.shape,
                Src::at(&self.x, self.x_off),
                Dst::at(&mut y, self.y_off),
                Epilogue {
                    activation: self.act,
                    residual: self.res.as_deref().map(Src::new),
                    channel_sums: self.sums.then_some(&mut sums[..]),
                },
            )
        )
        .unwrap();
        (y, sums)
    }

    fn naive(&self) -> (Vec<f64>, Vec<f64>) {
        let s = self.shape;
        let (oh, ow) = (s.out_h(), s.out_w());
        let ihw = s.in_h * s.in_w;
        let k = s.k;
        let mut out = Vec::new();
        let mut sums = vec![0.0; self.c];
        for ch in 0..self.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = self.b[ch] as f64;
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * s.stride + ky) as isize - s.pad_top as isize;
                            let ix = (ox * s.stride + kx) as isize - s.pad_left as isize;
                            if iy < 0 || ix < 0 || iy as usize >= s.in_h || ix as usize >= s.in_w {
                                continue;
                            }
                            let p = iy as usize * s.in_w + ix as usize;
                            acc += self.w[ch * k * k + ky * k + kx] as f64
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
}

#[test]
fn depthwise_scalar_matches_formula() {
    let mut rng = Rng::new(4);
    for _ in 0..trials(80) {
        let c = DwCase::random(&mut rng, 20, 13);
        let (y, sums) = c.run(scalar());
        let (want, want_sums) = c.naive();
        assert_close64(
            &format!("depthwise {:?}", c.shape),
            &c.logical(&y),
            &want,
            25,
        );
        if c.sums {
            let ohw = c.shape.out_h() * c.shape.out_w();
            assert_close64("sums", &sums[..c.c], &want_sums, 25 * ohw);
        }
    }
}

#[test]
fn depthwise_simd_matches_scalar() {
    let mut rng = Rng::new(5);
    for _ in 0..trials(80) {
        let c = DwCase::random(&mut rng, 20, 24);
        let (y0, s0) = c.run(scalar());
        for kern in simd_isas() {
            let (y, s) = c.run(kern);
            let what = format!("{:?} depthwise {:?}", kern.isa(), c.shape);
            assert_close(&what, &y, &y0, 25);
            assert_close(&what, &s, &s0, 25 * y.len());
        }
    }
}

struct GhostCase {
    k: usize,
    c1: usize,
    shape: GhostShape,
    pw: PwCase,
    dw_w: Vec<f32>,
    dw_b: Vec<f32>,
    dw_packed: Vec<f32>,
    x_off: usize,
    y_off: usize,
    res: Option<Vec<f32>>,
    sums: bool,
    cheap: Activation,
}

impl GhostCase {
    fn random(rng: &mut Rng, max_k: usize, max_c: usize, max_hw: usize) -> GhostCase {
        let (h, w) = (rng.range(1, max_hw), rng.range(1, max_hw));
        GhostCase::random_hw(rng, max_k, max_c, h, w)
    }

    fn random_hw(rng: &mut Rng, max_k: usize, max_c: usize, h: usize, w: usize) -> GhostCase {
        let mut pw = PwCase::random(rng, max_k, max_c, 1);
        pw.px = h * w;
        let (k, c1) = (pw.k, pw.n);
        let (kp, cp) = (pad8(k), pad8(c1));
        pw.x = rng.vec((pw.x_off + kp / 8) * h * w * 8);
        let mut dw_w = vec![0.0; cp * 9];
        let mut dw_b = vec![0.0; cp];
        for ch in 0..c1 {
            for t in 0..9 {
                dw_w[ch * 9 + t] = rng.f();
            }
            dw_b[ch] = rng.f();
        }
        let mut dw_packed = vec![0.0; depthwise_packed_len(cp, 3)];
        pack_depthwise(&dw_w, &dw_b, cp, 3, &mut dw_packed).unwrap();
        let res = rng.bool().then(|| rng.vec(2 * cp * h * w));
        GhostCase {
            k,
            c1,
            shape: GhostShape {
                k_blocks: kp / 8,
                half_blocks: cp / 8,
                h,
                w,
            },
            x_off: pw.x_off,
            y_off: rng.range(0, 1),
            pw,
            dw_w,
            dw_b,
            dw_packed,
            res,
            sums: rng.bool(),
            cheap: rng.act(),
        }
    }

    fn run<'a>(&self, kern: impl Into<Exec<'a>>) -> (Vec<f32>, Vec<f32>) {
        let kern = kern.into();
        let hw = self.shape.h * self.shape.w;
        let nb = self.shape.half_blocks;
        let mut y = vec![7.0; (self.y_off + 2 * nb) * hw * 8];
        let mut sums = vec![0.0; 2 * nb * 8];
        let mut scratch = vec![f32::NAN; ghost_scratch_len(self.shape)];
        exec!(
            kern,
            ghost(
                &self.pw.packed,
                &self.dw_packed,
                self.shape,
                Src::at(&self.pw.x, self.x_off),
                Dst::at(&mut y, self.y_off),
                GhostEpilogue {
                    primary: self.pw.act,
                    cheap: self.cheap,
                    residual: self.res.as_deref().map(Src::new),
                    channel_sums: self.sums.then_some(&mut sums[..]),
                },
                &mut scratch,
            )
        )
        .unwrap();
        (y, sums)
    }

    /// x1 = act1(pw(x)), x2 = act2(dw3x3(x1)), out = [x1; x2] + res, in logical order
    /// (x1 channels then x2 channels).
    fn naive(&self) -> Vec<f64> {
        let (h, w) = (self.shape.h, self.shape.w);
        let hw = h * w;
        let cp = pad8(self.c1);
        let mut pw_only = PwCase {
            ..clone_pw(&self.pw)
        };
        pw_only.res = None;
        let (x1, _) = pw_only.naive();
        let mut out = Vec::new();
        for ch in 0..self.c1 {
            for p in 0..hw {
                let mut v = x1[ch * hw + p];
                if let Some(r) = &self.res {
                    v += r[at(hw, ch, p)] as f64;
                }
                out.push(v);
            }
        }
        for ch in 0..self.c1 {
            for y in 0..h {
                for x in 0..w {
                    let mut acc = self.dw_b[ch] as f64;
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (y as isize + ky - 1, x as isize + kx - 1);
                            if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                                continue;
                            }
                            acc += self.dw_w[ch * 9 + (ky * 3 + kx) as usize] as f64
                                * x1[ch * hw + iy as usize * w + ix as usize];
                        }
                    }
                    let mut v = apply(self.cheap, acc);
                    if let Some(r) = &self.res {
                        v += r[at(hw, cp + ch, y * w + x)] as f64;
                    }
                    out.push(v);
                }
            }
        }
        out
    }

    fn logical(&self, y: &[f32]) -> Vec<f32> {
        let hw = self.shape.h * self.shape.w;
        let cp = pad8(self.c1);
        let base = &y[self.y_off * hw * 8..];
        let mut out = Vec::new();
        for half in 0..2 {
            for ch in 0..self.c1 {
                for p in 0..hw {
                    out.push(base[at(hw, half * cp + ch, p)]);
                }
            }
        }
        out
    }
}

fn clone_pw(c: &PwCase) -> PwCase {
    PwCase {
        k: c.k,
        n: c.n,
        px: c.px,
        w: c.w.clone(),
        b: c.b.clone(),
        packed: c.packed.clone(),
        x: c.x.clone(),
        x_off: c.x_off,
        y_off: c.y_off,
        y_blocks: c.y_blocks,
        res: c.res.clone(),
        sums: c.sums,
        act: c.act,
    }
}

#[test]
fn ghost_scalar_matches_formula() {
    let mut rng = Rng::new(6);
    for _ in 0..trials(40) {
        let c = GhostCase::random(&mut rng, 30, 20, 14);
        let (y, sums) = c.run(scalar());
        let want = c.naive();
        let what = format!(
            "ghost {:?} res={} c1={} k={}",
            c.shape,
            c.res.is_some(),
            c.c1,
            c.k
        );
        assert_close64(&what, &c.logical(&y), &want, 9 * c.k);
        if c.sums {
            let hw = c.shape.h * c.shape.w;
            let cp = pad8(c.c1);
            for half in 0..2 {
                for ch in 0..c.c1 {
                    let s: f64 = want[(half * c.c1 + ch) * hw..][..hw].iter().sum();
                    assert_close64(&what, &[sums[half * cp + ch]], &[s], 9 * c.k * hw);
                }
            }
        }
    }
}

#[test]
fn ghost_simd_matches_scalar() {
    let mut rng = Rng::new(7);
    for _ in 0..trials(50) {
        let c = GhostCase::random(&mut rng, 50, 40, 30);
        let (y0, s0) = c.run(scalar());
        for kern in simd_isas() {
            let (y, s) = c.run(kern);
            let what = format!("{:?} ghost {:?}", kern.isa(), c.shape);
            assert_close(&what, &y, &y0, 9 * c.k);
            assert_close(&what, &s, &s0, 9 * c.k * y.len());
        }
    }
}

/// Wide rows make bands of 2-3 rows, so the residual ring buffer wraps several times.
#[test]
fn ghost_wide_rows_use_several_bands() {
    let mut rng = Rng::new(8);
    for _ in 0..trials(6) {
        // Bands hold ~896 pixels (8 rows at w = 112), so these heights give 3-6 bands and the
        // 3-slot ring wraps. Under Miri: the smallest shape that still wraps it (4 bands).
        let (h, w, max_c) = if cfg!(miri) {
            (25, 112, 8)
        } else {
            (rng.range(25, 45), rng.range(75, 120), 12)
        };
        let c = GhostCase::random_hw(&mut rng, max_c, max_c, h, w);
        let (y0, s0) = c.run(scalar());
        let want = c.naive();
        let what = format!("ghost {:?} res={}", c.shape, c.res.is_some());
        assert_close64(&what, &c.logical(&y0), &want, 9 * c.k);
        for kern in simd_isas() {
            let (y, s) = c.run(kern);
            assert_close(&format!("{:?} {what}", kern.isa()), &y, &y0, 9 * c.k);
            assert_close(
                &format!("{:?} {what}", kern.isa()),
                &s,
                &s0,
                9 * c.k * y.len(),
            );
        }
    }
}

/// Splitting a layer over threads changes who computes each value, never how: for every ISA
/// and every fork of `forks()`, `run` on the split kernels (every layer split, however small)
/// gives the bits of `run` on the serial ones, outputs and channel sums alike.
fn assert_split_bits(
    forks: &[Box<dyn Fork>],
    what: &str,
    run: impl for<'a> Fn(Exec<'a>) -> (Vec<f32>, Vec<f32>),
) {
    for kern in all_isas() {
        let (y0, s0) = run(kern.into());
        for f in forks {
            let (y, s) = run(Par::new(kern, f.as_ref()).min_split_macs(0).into());
            let at = format!("{what}, {:?}, {} parts", kern.isa(), f.parts());
            assert!(bits(&y) == bits(&y0), "output of {at}");
            assert!(bits(&s) == bits(&s0), "channel sums of {at}");
        }
    }
}

#[test]
fn pointwise_par_is_bit_identical() {
    let mut rng = Rng::new(31);
    let forks = forks();
    for _ in 0..trials(40) {
        let c = PwCase::random(&mut rng, 70, 140, 60);
        let what = format!("pointwise {:?}", c.shape());
        assert_split_bits(&forks, &what, |e| c.run(e));
    }
}

#[test]
fn depthwise_par_is_bit_identical() {
    let mut rng = Rng::new(32);
    let forks = forks();
    for _ in 0..trials(40) {
        let c = DwCase::random(&mut rng, 40, 24);
        let what = format!("depthwise {:?}", c.shape);
        assert_split_bits(&forks, &what, |e| c.run(e));
    }
}

#[test]
fn ghost_par_is_bit_identical() {
    let mut rng = Rng::new(33);
    let forks = forks();
    for _ in 0..trials(30) {
        let c = GhostCase::random(&mut rng, 50, 60, 30);
        let what = format!("ghost {:?} res={}", c.shape, c.res.is_some());
        assert_split_bits(&forks, &what, |e| c.run(e));
    }
}

/// Length errors come back from the split kernels exactly as from the serial ones, before
/// any part runs.
#[test]
fn par_checks_lengths_before_splitting() {
    let k = scalar();
    let team = Reverse(2);
    let p = Par::new(k, &team);
    let packed = vec![0.0; pointwise_packed_len(8, 16)];
    let x = vec![0.0; 8 * 10];
    let mut y = vec![5.0; 16 * 10 - 1];
    let err = p
        .pointwise(
            &packed,
            PointwiseShape {
                k_blocks: 1,
                n_blocks: 2,
                pixels: 10,
            },
            Src::new(&x),
            Dst::new(&mut y),
            Epilogue::act(Activation::None),
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::Length {
            arg: "output",
            expected: 160,
            actual: 159
        }
    );
    assert!(y.iter().all(|&v| v == 5.0), "nothing written");
}

/// Layers below `MIN_SPLIT_MACS` run whole on the caller: a fork that records its calls
/// sees none for a small layer and one for a large one.
#[test]
fn small_layers_are_not_split() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counting(AtomicUsize);
    impl Fork for Counting {
        fn parts(&self) -> usize {
            2
        }
        fn run(&self, f: &(dyn Fn(usize) + Sync)) {
            self.0.fetch_add(1, Ordering::Relaxed);
            f(0);
            f(1);
        }
    }
    let fork = Counting(AtomicUsize::new(0));
    let k = scalar();
    let run = |pixels: usize| {
        let packed = vec![0.5; pointwise_packed_len(64, 64)];
        let x = vec![1.0; 64 * pixels];
        let mut y = vec![0.0; 64 * pixels];
        Par::new(k, &fork)
            .pointwise(
                &packed,
                PointwiseShape {
                    k_blocks: 8,
                    n_blocks: 8,
                    pixels,
                },
                Src::new(&x),
                Dst::new(&mut y),
                Epilogue::act(Activation::None),
            )
            .unwrap();
        assert!(y.iter().all(|&v| v == 32.5), "every output computed");
    };
    run(MIN_SPLIT_MACS / 4096 - 1);
    assert_eq!(fork.0.load(Ordering::Relaxed), 0, "small layer was split");
    run(MIN_SPLIT_MACS / 4096 + 1);
    assert_eq!(
        fork.0.load(Ordering::Relaxed),
        1,
        "large layer was not split"
    );
}
