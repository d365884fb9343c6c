//! Int8 pointwise kernel: the scalar path against an exact integer formula (ONNX
//! QLinearConv), every SIMD path against the scalar path bit for bit, on odd shapes (channels
//! not multiples of 4 or 8, odd pixel counts), zero points 0/128/255, tiny and large scales,
//! extreme operands (the AVX2 `vpmaddubsw` saturation case), residuals, block offsets.

mod common;
use common::*;
use ghost_runtime::*;

/// Round half to even, the reference for every kernel's rounding.
fn rne(v: f32) -> f32 {
    v.round_ties_even()
}

/// Output and residual quantization of a case.
#[derive(Clone, Copy, Debug)]
struct Res {
    zp: u8,
    scale: f32,
    conv_scale: f32,
    out_zp: u8,
    off: usize,
}

#[derive(Debug)]
struct QPwCase {
    k: usize,
    n: usize,
    px: usize,
    x_off: usize,
    y_off: usize,
    x: Vec<u8>,
    /// Logical `[n][k]` weights.
    w: Vec<i8>,
    bias: Vec<i32>,
    scale: Vec<f32>,
    offset: f32,
    xzp: u8,
    zp: u8,
    min: u8,
    max: u8,
    res: Option<Res>,
    r: Vec<u8>,
}

fn pick_zp(rng: &mut Rng) -> u8 {
    match rng.range(0, 3) {
        0 => 0,
        1 => 128,
        2 => 255,
        _ => rng.range(0, 255) as u8,
    }
}

fn pick_scale(rng: &mut Rng) -> f32 {
    let base = (rng.f() + 1.5) * 0.5;
    match rng.range(0, 3) {
        0 => base * 1e-6,
        1 => base * 1e-3,
        2 => base * 0.02,
        _ => base * 40.0,
    }
}

impl QPwCase {
    fn random(rng: &mut Rng, kmax: usize, nmax: usize, pmax: usize) -> QPwCase {
        let (k, n, px) = (rng.range(1, kmax), rng.range(1, nmax), rng.range(1, pmax));
        let (x_off, y_off) = (rng.range(0, 2), rng.range(0, 2));
        let extreme = rng.range(0, 4) == 0;
        let xblocks = x_off + pad8(k) / 8 + rng.range(0, 1);
        let x: Vec<u8> = (0..xblocks * px * 8)
            .map(|_| if extreme { 255 } else { rng.next() as u8 })
            .collect();
        let w: Vec<i8> = (0..n * k)
            .map(|i| {
                if extreme {
                    if (i / 2) % 3 == 0 {
                        127
                    } else {
                        -128
                    }
                } else {
                    rng.next() as i8
                }
            })
            .collect();
        let bias: Vec<i32> = (0..n)
            .map(|_| (rng.next() % 400_001) as i32 - 200_000)
            .collect();
        let scale: Vec<f32> = (0..n).map(|_| pick_scale(rng)).collect();
        let zp = pick_zp(rng);
        let offset = [0.0, 0.0, (rng.f() - 0.5) * 300.0][rng.range(0, 2)];
        let (min, max) = match rng.range(0, 2) {
            0 => (0, 255),
            1 => (zp, 255),
            _ => (zp.saturating_sub(20), zp.saturating_add(30)),
        };
        let res = rng.bool().then(|| Res {
            zp: pick_zp(rng),
            scale: pick_scale(rng).min(3.0),
            conv_scale: pick_scale(rng).min(3.0),
            out_zp: pick_zp(rng),
            off: rng.range(0, 1),
        });
        let r = match res {
            Some(r) => (0..(r.off + pad8(n) / 8) * px * 8)
                .map(|_| rng.next() as u8)
                .collect(),
            None => vec![],
        };
        QPwCase {
            k,
            n,
            px,
            x_off,
            y_off,
            x,
            w,
            bias,
            scale,
            offset,
            xzp: pick_zp(rng),
            zp,
            min,
            max,
            res,
            r,
        }
    }

    fn packed(&self) -> Vec<u8> {
        let (kp, np) = (pad8(self.k), pad8(self.n));
        let mut w = vec![0i8; kp * np];
        for o in 0..self.n {
            for i in 0..self.k {
                w[o * kp + i] = self.w[o * self.k + i];
            }
        }
        let mut b = vec![0i32; np];
        b[..self.n].copy_from_slice(&self.bias);
        let mut s = vec![0f32; np];
        s[..self.n].copy_from_slice(&self.scale);
        let mut packed = vec![0u8; pointwise_u8_packed_len(kp, np)];
        pack_pointwise_u8(&w, &b, &s, self.xzp, kp, np, &mut packed).unwrap();
        packed
    }

    fn shape(&self) -> PointwiseShape {
        PointwiseShape {
            k_blocks: pad8(self.k) / 8,
            n_blocks: pad8(self.n) / 8,
            pixels: self.px,
        }
    }

    fn requant(&self) -> Requant<'_> {
        Requant {
            zero_point: self.zp,
            min: self.min,
            max: self.max,
            offset: self.offset,
            residual: self.res.map(|r| QResidual {
                src: Src::at(&self.r, r.off),
                zero_point: r.zp,
                scale: r.scale,
                conv_scale: r.conv_scale,
                out_zero_point: r.out_zp,
            }),
        }
    }

    fn out_len(&self) -> usize {
        (self.y_off + pad8(self.n) / 8 + 1) * self.px * 8
    }

    fn run(&self, k: Kernels) -> Vec<u8> {
        let mut y = vec![7u8; self.out_len()];
        k.pointwise_u8(
            &self.packed(),
            self.shape(),
            Src::at(&self.x, self.x_off),
            Dst::at(&mut y, self.y_off),
            self.requant(),
        )
        .unwrap();
        y
    }

    fn run_par(&self, fork: &dyn Fork) -> Vec<u8> {
        let mut y = vec![7u8; self.out_len()];
        Par::new(Kernels::new(), fork)
            .min_split_macs(0)
            .pointwise_u8(
                &self.packed(),
                self.shape(),
                Src::at(&self.x, self.x_off),
                Dst::at(&mut y, self.y_off),
                self.requant(),
            )
            .unwrap();
        y
    }

    /// The exact formula, channel `o` of pixel `p`.
    fn want(&self, o: usize, p: usize) -> u8 {
        let mut acc = self.bias[o] as i64;
        for i in 0..self.k {
            let xv = self.x[at(self.px, (self.x_off * 8) + i, p)] as i64 - self.xzp as i64;
            acc += xv * self.w[o * self.k + i] as i64;
        }
        let f = (acc as i32 as f32) * self.scale[o] + self.offset;
        let lo = self.min as f32 - self.zp as f32;
        let hi = self.max as f32 - self.zp as f32;
        let q = rne(f.max(lo).min(hi)) + self.zp as f32;
        match self.res {
            None => q as u8,
            Some(r) => {
                let rv = self.r[at(self.px, r.off * 8 + o, p)] as f32;
                let v = (q - self.zp as f32) * r.conv_scale + (rv - r.zp as f32) * r.scale;
                let lo = -(r.out_zp as f32);
                let hi = 255.0 - r.out_zp as f32;
                (rne(v.max(lo).min(hi)) + r.out_zp as f32) as u8
            }
        }
    }
}

#[test]
fn pointwise_u8_scalar_matches_formula() {
    let mut rng = Rng::new(21);
    for _ in 0..trials(80) {
        let c = QPwCase::random(&mut rng, 40, 40, 23);
        let y = c.run(scalar());
        for (i, v) in y.iter().enumerate() {
            let blk = i / (c.px * 8);
            let (ch, p) = ((blk - c.y_off.min(blk)) * 8 + i % 8, (i / 8) % c.px);
            if blk < c.y_off || blk >= c.y_off + pad8(c.n) / 8 {
                assert_eq!(*v, 7, "untouched block {blk}");
            } else if ch < c.n {
                assert_eq!(*v, c.want(ch, p), "channel {ch} pixel {p} of {c:?}");
            }
        }
    }
}

/// One pixel (an SE block's convs, a classifier head): the kernels' one-pixel path, with odd
/// input block counts, pairs and single blocks, residuals and offsets, against the formula and
/// every path against the scalar one.
#[test]
fn pointwise_u8_one_pixel_matches_formula_on_every_path() {
    let mut rng = Rng::new(24);
    for t in 0..trials(60) {
        let c = QPwCase::random(&mut rng, [24, 90, 200][t % 3], 90, 1);
        assert_eq!(c.px, 1);
        let y = c.run(scalar());
        for (i, v) in y.iter().enumerate() {
            let blk = i / 8;
            let ch = (blk - c.y_off.min(blk)) * 8 + i % 8;
            if blk < c.y_off || blk >= c.y_off + pad8(c.n) / 8 {
                assert_eq!(*v, 7, "untouched block {blk}");
            } else if ch < c.n {
                assert_eq!(*v, c.want(ch, 0), "channel {ch} of {c:?}");
            }
        }
        for kern in int8_isas() {
            assert_eq!(
                c.run(kern),
                y,
                "{:?} ({}) {c:?}",
                kern.isa(),
                kern.int8_path()
            );
        }
    }
}

#[test]
fn pointwise_u8_simd_matches_scalar_bitwise() {
    let mut rng = Rng::new(22);
    let mut cases: Vec<QPwCase> = (0..trials(120))
        .map(|_| QPwCase::random(&mut rng, 70, 80, 40))
        .collect();
    // GhostNet-like widths with long K (960) and many pixels.
    for (k, n, px) in [
        (960, 80, 13),
        (160, 200, 29),
        (16, 16, 97),
        (960, 240, 1),
        (240, 960, 1),
        (24, 20, 1),
    ] {
        let mut c = QPwCase::random(&mut rng, 8, 8, 8);
        c.k = k;
        c.n = n;
        c.px = px;
        c.x_off = 0;
        c.y_off = 0;
        c.res = None;
        c.x = (0..pad8(k) * px).map(|_| rng.next() as u8).collect();
        c.w = (0..n * k).map(|_| rng.next() as i8).collect();
        c.bias = (0..n).map(|_| rng.next() as i32 >> 12).collect();
        c.scale = (0..n).map(|_| pick_scale(&mut rng)).collect();
        cases.push(c);
    }
    for c in &cases {
        let y0 = c.run(scalar());
        for kern in int8_isas() {
            assert_eq!(
                c.run(kern),
                y0,
                "{:?} ({}) k={} n={} px={}",
                kern.isa(),
                kern.int8_path(),
                c.k,
                c.n,
                c.px
            );
        }
    }
}

#[test]
fn pointwise_u8_par_is_bit_identical() {
    let mut rng = Rng::new(23);
    for _ in 0..trials(30) {
        let c = QPwCase::random(&mut rng, 40, 80, 60);
        let want = c.run(Kernels::new());
        for fork in forks() {
            assert_eq!(c.run_par(fork.as_ref()), want, "{} parts", fork.parts());
        }
    }
}

#[test]
fn pointwise_u8_rejects_bad_arguments() {
    let k = scalar();
    let packed = vec![0u8; pointwise_u8_packed_len(8, 8)];
    let x = vec![0u8; 8 * 4];
    let mut y = vec![0u8; 8 * 3];
    let shape = PointwiseShape {
        k_blocks: 1,
        n_blocks: 1,
        pixels: 4,
    };
    let err = k
        .pointwise_u8(
            &packed,
            shape,
            Src::new(&x),
            Dst::new(&mut y),
            Requant::new(0),
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
    let mut y = vec![0u8; 32];
    let bad = Requant {
        min: 9,
        max: 8,
        ..Requant::new(0)
    };
    assert!(k
        .pointwise_u8(&packed, shape, Src::new(&x), Dst::new(&mut y), bad)
        .is_err());
    let nan_offset = Requant {
        offset: f32::NAN,
        ..Requant::new(0)
    };
    assert!(matches!(
        k.pointwise_u8(&packed, shape, Src::new(&x), Dst::new(&mut y), nan_offset),
        Err(Error::Shape {
            arg: "requant.offset",
            ..
        })
    ));
    let mut out = vec![0u8; pointwise_u8_packed_len(8, 8)];
    let err = pack_pointwise_u8(&[0; 64], &[0; 8], &[f32::NAN; 8], 0, 8, 8, &mut out);
    assert!(matches!(err, Err(Error::Shape { arg: "scale", .. })));
}
