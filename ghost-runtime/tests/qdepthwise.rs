//! Int8 depthwise kernel: the scalar path against the exact integer formula (ONNX QLinearConv,
//! group = C, padding holds the zero point), every SIMD path and every thread split against
//! the scalar path bit for bit (with and without the dot-product interiors of AVX-512 VNNI +
//! VBMI); odd channel counts and sizes, 3x3/5x5, stride 1/2, asymmetric
//! padding, zero points 0/128/255, tiny and large scales, residuals.

mod common;
use common::*;
use ghost_runtime::*;

#[derive(Debug)]
struct Case {
    c: usize,
    shape: DepthwiseShape,
    x: Vec<u8>,
    w: Vec<i8>,
    bias: Vec<i32>,
    scale: Vec<f32>,
    offset: f32,
    xzp: u8,
    zp: u8,
    min: u8,
    max: u8,
    /// (residual, its zp, scale, conv_scale, out zp)
    res: Option<(Vec<u8>, u8, f32, f32, u8)>,
    x_off: usize,
    y_off: usize,
}

fn pick_zp(rng: &mut Rng) -> u8 {
    [0, 128, 255, rng.range(0, 255) as u8][rng.range(0, 3)]
}

fn pick_scale(rng: &mut Rng) -> f32 {
    let base = (rng.f() + 1.5) * 0.5;
    [base * 1e-6, base * 1e-3, base * 0.01, base * 40.0][rng.range(0, 3)]
}

impl Case {
    fn random(rng: &mut Rng, cmax: usize, hmax: usize) -> Case {
        let c = rng.range(1, cmax);
        let k = if rng.bool() { 3 } else { 5 };
        let stride = rng.range(1, 2);
        let (in_h, in_w) = (rng.range(1, hmax), rng.range(1, hmax));
        let pads = [0, 1, 2, 3, 4];
        let mut shape = DepthwiseShape {
            blocks: pad8(c) / 8,
            in_h,
            in_w,
            k,
            stride,
            pad_top: pads[rng.range(0, k / 2 + 1)],
            pad_left: pads[rng.range(0, k / 2 + 1)],
            pad_bottom: pads[rng.range(0, k / 2 + 1)],
            pad_right: pads[rng.range(0, k / 2 + 1)],
        };
        if in_h + shape.pad_top + shape.pad_bottom < k {
            shape.pad_bottom = k - 1;
            shape.pad_top = k - 1;
        }
        if in_w + shape.pad_left + shape.pad_right < k {
            shape.pad_left = k - 1;
            shape.pad_right = k - 1;
        }
        let x_off = rng.range(0, 1);
        let extreme = rng.range(0, 4) == 0;
        let x = (0..(x_off + shape.blocks) * in_h * in_w * 8)
            .map(|_| if extreme { 255 } else { rng.next() as u8 })
            .collect();
        let w = (0..c * k * k)
            .map(|_| if extreme { -128 } else { rng.next() as i8 })
            .collect();
        let zp = pick_zp(rng);
        let (min, max) = [
            (0, 255),
            (zp, 255),
            (zp.saturating_sub(9), zp.saturating_add(40)),
        ][rng.range(0, 2)];
        let ohw = shape.out_h() * shape.out_w();
        let res = rng.bool().then(|| {
            (
                (0..shape.blocks * ohw * 8)
                    .map(|_| rng.next() as u8)
                    .collect(),
                pick_zp(rng),
                pick_scale(rng).min(2.0),
                pick_scale(rng).min(2.0),
                pick_zp(rng),
            )
        });
        Case {
            c,
            shape,
            x,
            w,
            // Small biases start the kernel's f32 sum; large ones (past 2^24 - 2^21, in some
            // block) are added in i32.
            bias: {
                let span = [60_001, 60_001, 1 << 27][rng.range(0, 2)];
                (0..c)
                    .map(|_| (rng.next() % span) as i32 - (span / 2) as i32)
                    .collect()
            },
            scale: (0..c).map(|_| pick_scale(rng)).collect(),
            offset: [0.0, 0.0, (rng.f() - 0.5) * 300.0][rng.range(0, 2)],
            xzp: if extreme { 0 } else { pick_zp(rng) },
            zp,
            min,
            max,
            res,
            x_off,
            y_off: rng.range(0, 1),
        }
    }

    fn packed(&self) -> Vec<u8> {
        let (cp, kk) = (pad8(self.c), self.shape.k * self.shape.k);
        let mut w = vec![0i8; cp * kk];
        w[..self.c * kk].copy_from_slice(&self.w);
        let mut b = vec![0i32; cp];
        b[..self.c].copy_from_slice(&self.bias);
        let mut s = vec![0f32; cp];
        s[..self.c].copy_from_slice(&self.scale);
        let mut p = vec![0u8; depthwise_u8_packed_len(cp, self.shape.k)];
        pack_depthwise_u8(&w, &b, &s, cp, self.shape.k, &mut p).unwrap();
        p
    }

    fn ohw(&self) -> usize {
        self.shape.out_h() * self.shape.out_w()
    }

    fn requant(&self) -> Requant<'_> {
        Requant {
            zero_point: self.zp,
            min: self.min,
            max: self.max,
            offset: self.offset,
            residual: self.res.as_ref().map(|(r, zr, sr, sc, zo)| QResidual {
                src: Src::new(r),
                zero_point: *zr,
                scale: *sr,
                conv_scale: *sc,
                out_zero_point: *zo,
            }),
        }
    }

    fn run_with(&self, f: impl FnOnce(&[u8], Src<'_, u8>, Dst<'_, u8>, Requant<'_>)) -> Vec<u8> {
        let mut y = vec![7u8; (self.y_off + self.shape.blocks) * self.ohw() * 8];
        f(
            &self.packed(),
            Src::at(&self.x, self.x_off),
            Dst::at(&mut y, self.y_off),
            self.requant(),
        );
        y
    }

    fn run(&self, k: Kernels) -> Vec<u8> {
        self.run_with(|p, x, y, rq| k.depthwise_u8(p, self.shape, self.xzp, x, y, rq).unwrap())
    }

    /// [`Case::run`] with the interiors in `f32` multiply-adds even where the CPU has the
    /// dot-product path (AVX-512 VNNI + VBMI).
    fn run_fma(&self, k: Kernels) -> Vec<u8> {
        self.run_with(|p, x, y, rq| {
            k.depthwise_u8_with(false, p, self.shape, self.xzp, x, y, rq)
                .unwrap()
        })
    }

    fn want(&self, ch: usize, oy: usize, ox: usize) -> u8 {
        let sh = &self.shape;
        let (ihw, k) = (sh.in_h * sh.in_w, sh.k);
        let mut acc = self.bias[ch] as i64;
        for ky in 0..k {
            for kx in 0..k {
                let iy = (oy * sh.stride + ky) as i64 - sh.pad_top as i64;
                let ix = (ox * sh.stride + kx) as i64 - sh.pad_left as i64;
                let xv = if iy < 0 || ix < 0 || iy >= sh.in_h as i64 || ix >= sh.in_w as i64 {
                    self.xzp as i64
                } else {
                    self.x[at(
                        ihw,
                        self.x_off * 8 + ch,
                        iy as usize * sh.in_w + ix as usize,
                    )] as i64
                };
                acc += (xv - self.xzp as i64) * self.w[ch * k * k + ky * k + kx] as i64;
            }
        }
        let f = (acc as i32 as f32) * self.scale[ch] + self.offset;
        let (lo, hi) = (
            self.min as f32 - self.zp as f32,
            self.max as f32 - self.zp as f32,
        );
        let q = f.max(lo).min(hi).round_ties_even();
        match &self.res {
            None => (q + self.zp as f32) as u8,
            Some((r, zr, sr, sc, zo)) => {
                let rv = r[at(self.ohw(), ch, oy * sh.out_w() + ox)] as f32;
                let v = q * sc + (rv - *zr as f32) * sr;
                let v = v
                    .max(-(*zo as f32))
                    .min(255.0 - *zo as f32)
                    .round_ties_even();
                (v + *zo as f32) as u8
            }
        }
    }
}

#[test]
fn depthwise_u8_scalar_matches_formula() {
    let mut rng = Rng::new(31);
    for _ in 0..trials(120) {
        check_formula(&Case::random(&mut rng, 20, 13));
    }
}

/// An offset without a residual, on a row wide enough for whole chunks of 4 and 8 columns
/// (the packed 4-pixel store must fall back to single pixels without inventing a residual):
/// every path against the formula. Small enough for Miri.
#[test]
fn depthwise_u8_offset_without_residual() {
    let mut rng = Rng::new(37);
    let mut c = Case::random(&mut rng, 1, 1);
    c.c = 9;
    c.shape = DepthwiseShape::same(2, 3, 14, 3, 1);
    c.x = (0..(c.x_off + 2) * 3 * 14 * 8)
        .map(|_| rng.next() as u8)
        .collect();
    c.w = (0..9 * 9).map(|_| rng.next() as i8).collect();
    c.bias = (0..9).map(|_| rng.next() as i32 >> 20).collect();
    c.scale = vec![0.01; 9];
    c.offset = 41.5;
    c.res = None;
    check_formula(&c);
    let want = c.run(scalar());
    for kern in int8_isas() {
        assert_eq!(c.run(kern), want, "{:?}", kern.isa());
        assert_eq!(c.run_fma(kern), want, "{:?} f32 interiors", kern.isa());
    }
}

/// The scalar path's output of `c` against [`Case::want`], and the bytes outside it untouched.
fn check_formula(c: &Case) {
    let y = c.run(scalar());
    let (ow, ohw) = (c.shape.out_w(), c.ohw());
    for (i, v) in y.iter().enumerate() {
        let blk = i / (ohw * 8);
        if blk < c.y_off {
            assert_eq!(*v, 7);
            continue;
        }
        let ch = (blk - c.y_off) * 8 + i % 8;
        let p = (i / 8) % ohw;
        if ch < c.c {
            assert_eq!(
                *v,
                c.want(ch, p / ow, p % ow),
                "ch {ch} pixel {p} of {:?}",
                c.shape
            );
        }
    }
}

#[test]
fn depthwise_u8_simd_and_par_match_scalar_bitwise() {
    let mut rng = Rng::new(32);
    let mut cases: Vec<Case> = (0..trials(150))
        .map(|_| Case::random(&mut rng, 40, 30))
        .collect();
    // GhostNet's shapes; too slow under Miri, where the random cases (interior chunks of 8, 4
    // and 1 columns, borders, both strides and sizes) cover the same code.
    let real: &[(usize, usize, usize, usize)] = if cfg!(miri) {
        &[]
    } else {
        &[
            (24, 56, 3, 1),
            (40, 28, 5, 2),
            (480, 7, 3, 1),
            (48, 112, 3, 2),
        ]
    };
    for &(c, hw, k, st) in real {
        let mut cs = Case::random(&mut rng, 1, 1);
        cs.c = c;
        cs.shape = DepthwiseShape::same(pad8(c) / 8, hw, hw, k, st);
        cs.x = (0..(cs.x_off + cs.shape.blocks) * hw * hw * 8)
            .map(|_| rng.next() as u8)
            .collect();
        cs.w = (0..c * k * k).map(|_| rng.next() as i8).collect();
        cs.bias = (0..c).map(|_| rng.next() as i32 >> 16).collect();
        cs.scale = (0..c).map(|_| pick_scale(&mut rng)).collect();
        cs.res = None;
        cases.push(cs);
    }
    for c in &cases {
        let want = c.run(scalar());
        for kern in int8_isas() {
            assert_eq!(c.run(kern), want, "{:?} {:?}", kern.isa(), c.shape);
            let fma = c.run_fma(kern);
            assert_eq!(fma, want, "{:?} f32 interiors {:?}", kern.isa(), c.shape);
        }
        for fork in forks() {
            let got = c.run_with(|p, x, y, rq| {
                Par::new(Kernels::new(), fork.as_ref())
                    .min_split_macs(0)
                    .depthwise_u8(p, c.shape, c.xzp, x, y, rq)
                    .unwrap()
            });
            assert_eq!(got, want, "{} parts {:?}", fork.parts(), c.shape);
        }
    }
}

#[test]
fn depthwise_u8_rejects_bad_arguments() {
    let shape = DepthwiseShape::same(1, 4, 4, 3, 1);
    let p = vec![0u8; depthwise_u8_packed_len(8, 3)];
    let x = vec![0u8; 128];
    let mut y = vec![0u8; 127];
    let err = scalar()
        .depthwise_u8(
            &p,
            shape,
            0,
            Src::new(&x),
            Dst::new(&mut y),
            Requant::new(0),
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::Length {
            arg: "output",
            expected: 128,
            actual: 127
        }
    );
    let bad = DepthwiseShape { k: 4, ..shape };
    let mut y = vec![0u8; 128];
    assert!(scalar()
        .depthwise_u8(&p, bad, 0, Src::new(&x), Dst::new(&mut y), Requant::new(0))
        .is_err());
}

/// A bias too large for `f32` is added to the exact integer sum, not rounded first: bias
/// `2^24 + 1` (rounds to `2^24` in `f32`) plus a sum of 1 is `2^24 + 2` exactly; scaled by
/// `2^-25` that is just above the tie 0.5 and rounds to 1 (the rounded bias would give 0.5,
/// which rounds to 0).
#[test]
fn depthwise_u8_adds_a_large_bias_exactly() {
    let (c, hw) = (8, 16);
    let shape = DepthwiseShape::same(1, hw, hw, 3, 1);
    let mut w = vec![0i8; c * 9];
    for ch in 0..c {
        w[ch * 9 + 4] = 1;
    }
    let bias = vec![(1 << 24) + 1; c];
    // 2^-25 from its bits: `powi` need not be exact (Miri perturbs its result, which made this
    // test fail there now and then).
    let scale = vec![f32::from_bits((127 - 25) << 23); c];
    let mut packed = vec![0u8; depthwise_u8_packed_len(c, 3)];
    pack_depthwise_u8(&w, &bias, &scale, c, 3, &mut packed).unwrap();
    let x = vec![1u8; c * hw * hw];
    let mut kernels = int8_isas();
    kernels.push(scalar());
    for k in kernels {
        let mut y = vec![7u8; c * hw * hw];
        k.depthwise_u8(
            &packed,
            shape,
            0,
            Src::new(&x),
            Dst::new(&mut y),
            Requant::new(0),
        )
        .unwrap();
        assert!(y.iter().all(|v| *v == 1), "{:?}: {:?}", k.isa(), &y[..16]);
    }
}
