//! The randomized pointwise, depthwise and Ghost cases: a random problem, the kernel call
//! (serial or split over a fork, through [`Exec`]), a naive NCHW formula, and the logical
//! outputs. The kernel family tests and the split tests (`par.rs`) share them.

use super::*;
use ghost_runtime::*;

/// The serial kernels or the same kernels split over a fork: the cases run through either.
#[derive(Clone, Copy)]
pub enum Exec<'a> {
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

/// A random pointwise problem with logical sizes and everything the epilogue can do.
pub struct PwCase {
    pub k: usize,
    pub n: usize,
    pub px: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub packed: Vec<f32>,
    pub x: Vec<f32>,
    pub x_off: usize,
    pub y_off: usize,
    pub y_blocks: usize,
    pub res: Option<(Vec<f32>, usize)>,
    pub sums: bool,
    pub act: Activation,
}

impl PwCase {
    pub fn random(rng: &mut Rng, max_k: usize, max_n: usize, max_px: usize) -> PwCase {
        let (k, n, px) = (
            rng.range(1, max_k),
            rng.range(1, max_n),
            rng.range(1, max_px),
        );
        let (kp, np) = (pad8(k), pad8(n));
        let (w, b, packed) = random_fc(rng, k, n);
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

    pub fn shape(&self) -> PointwiseShape {
        PointwiseShape {
            k_blocks: pad8(self.k) / 8,
            n_blocks: pad8(self.n) / 8,
            pixels: self.px,
        }
    }

    /// Output tensor and sums from the kernel under test.
    pub fn run<'a>(&self, kern: impl Into<Exec<'a>>) -> (Vec<f32>, Vec<f32>) {
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
    pub fn naive(&self) -> (Vec<f64>, Vec<f64>) {
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

    pub fn logical(&self, y: &[f32]) -> Vec<f32> {
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

pub struct DwCase {
    pub c: usize,
    pub shape: DepthwiseShape,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub packed: Vec<f32>,
    pub x: Vec<f32>,
    pub x_off: usize,
    pub y_off: usize,
    pub res: Option<Vec<f32>>,
    pub sums: bool,
    pub act: Activation,
}

impl DwCase {
    pub fn random(rng: &mut Rng, max_c: usize, max_hw: usize) -> DwCase {
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

    pub fn run<'a>(&self, kern: impl Into<Exec<'a>>) -> (Vec<f32>, Vec<f32>) {
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

    pub fn naive(&self) -> (Vec<f64>, Vec<f64>) {
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

    pub fn logical(&self, y: &[f32]) -> Vec<f32> {
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

pub struct GhostCase {
    pub k: usize,
    pub c1: usize,
    pub shape: GhostShape,
    pub pw: PwCase,
    pub dw_w: Vec<f32>,
    pub dw_b: Vec<f32>,
    pub dw_packed: Vec<f32>,
    pub x_off: usize,
    pub y_off: usize,
    pub res: Option<Vec<f32>>,
    pub sums: bool,
    pub cheap: Activation,
}

impl GhostCase {
    pub fn random(rng: &mut Rng, max_k: usize, max_c: usize, max_hw: usize) -> GhostCase {
        let (h, w) = (rng.range(1, max_hw), rng.range(1, max_hw));
        GhostCase::random_hw(rng, max_k, max_c, h, w)
    }

    pub fn random_hw(rng: &mut Rng, max_k: usize, max_c: usize, h: usize, w: usize) -> GhostCase {
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

    pub fn run<'a>(&self, kern: impl Into<Exec<'a>>) -> (Vec<f32>, Vec<f32>) {
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

    /// The DFC gate shape of a gated run of this module: the `floor(h / 2) x floor(w / 2)`
    /// gate of GhostNetV2's 2x2 pool (at least 1x1), PyTorch's nearest mapping.
    pub fn gate_shape(&self) -> DfcShape {
        let (h, w) = (self.shape.h, self.shape.w);
        DfcShape {
            blocks: 2 * self.shape.half_blocks,
            gate_h: (h / 2).max(1),
            gate_w: (w / 2).max(1),
            h,
            w,
            coord: CoordMode::Asymmetric,
            nearest: NearestMode::Floor,
        }
    }

    /// `ghost_gated` with gate `g` (copied: the kernel overwrites it with its sigmoid); no
    /// channel sums (the second output is empty).
    pub fn run_gated<'a>(&self, kern: impl Into<Exec<'a>>, g: &[f32]) -> (Vec<f32>, Vec<f32>) {
        self.run_gated_in(kern, &mut g.to_vec(), false)
    }

    /// `ghost_gated` with `gate` in place (`activated`: it holds its sigmoid already).
    pub fn run_gated_in<'a>(
        &self,
        kern: impl Into<Exec<'a>>,
        gate: &mut [f32],
        activated: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let kern = kern.into();
        let hw = self.shape.h * self.shape.w;
        let nb = self.shape.half_blocks;
        let mut y = vec![7.0; (self.y_off + 2 * nb) * hw * 8];
        let mut scratch = vec![f32::NAN; ghost_gated_scratch_len(self.shape)];
        exec!(
            kern,
            ghost_gated(
                &self.pw.packed,
                &self.dw_packed,
                self.shape,
                Src::at(&self.pw.x, self.x_off),
                Dst::at(&mut y, self.y_off),
                GhostEpilogue {
                    primary: self.pw.act,
                    cheap: self.cheap,
                    residual: self.res.as_deref().map(Src::new),
                    channel_sums: None,
                },
                GhostGate {
                    gate,
                    shape: self.gate_shape(),
                    activated,
                },
                &mut scratch,
            )
        )
        .unwrap();
        (y, Vec::new())
    }

    /// x1 = act1(pw(x)), x2 = act2(dw3x3(x1)), out = [x1; x2] + res, in logical order
    /// (x1 channels then x2 channels).
    pub fn naive(&self) -> Vec<f64> {
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

    pub fn logical(&self, y: &[f32]) -> Vec<f32> {
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

pub fn clone_pw(c: &PwCase) -> PwCase {
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

/// Splitting a layer over threads changes who computes each value, never how: for every ISA
/// and every fork of `forks()`, `run` on the split kernels (every layer split, however small)
/// gives the bits of `run` on the serial ones, outputs and channel sums alike.
pub fn assert_split_bits(
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
