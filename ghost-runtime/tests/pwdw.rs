//! The fused 1x1 + depthwise kernel against `pointwise` then `depthwise` on the same ISA, bit
//! for bit (the fused kernel streams the same tiles through a ring of bands), on odd shapes:
//! k 3 and 5, stride 1 and 2, symmetric and asymmetric padding, one band and many (the ring
//! wraps), channel counts that leave odd blocks, every activation pair; channel sums within
//! rounding of the depthwise's; the scalar ISA also against an f64 reference; `Par`'s split
//! by blocks bit for bit against the serial kernel, sums included; and the length checks.

mod common;
use common::*;
use ghost_runtime::*;

struct Case {
    kb: usize,
    nb: usize,
    sh: DepthwiseShape,
    pw: Vec<f32>,
    dw: Vec<f32>,
    x: Vec<f32>,
    pw_act: Activation,
    dw_act: Activation,
}

impl Case {
    #[allow(clippy::too_many_arguments)]
    fn random(
        rng: &mut Rng,
        kb: usize,
        nb: usize,
        h: usize,
        w: usize,
        k: usize,
        st: usize,
        pads: [usize; 4],
    ) -> Case {
        let (kp, np) = (kb * 8, nb * 8);
        let mut pw = vec![0.0; pointwise_packed_len(kp, np)];
        pack_pointwise(&rng.vec(kp * np), &rng.vec(np), kp, np, &mut pw).unwrap();
        let mut dw = vec![0.0; depthwise_packed_len(np, k)];
        pack_depthwise(&rng.vec(np * k * k), &rng.vec(np), np, k, &mut dw).unwrap();
        let sh = DepthwiseShape {
            blocks: nb,
            in_h: h,
            in_w: w,
            k,
            stride: st,
            pad_top: pads[0],
            pad_left: pads[1],
            pad_bottom: pads[2],
            pad_right: pads[3],
        };
        Case {
            kb,
            nb,
            sh,
            pw,
            dw,
            // One block of offset before the input (a view into a larger tensor).
            x: rng.vec((kb + 1) * h * w * 8),
            pw_act: rng.act(),
            dw_act: rng.act(),
        }
    }
    fn shape(&self) -> PwDwShape {
        PwDwShape {
            k_blocks: self.kb,
            dw: self.sh,
        }
    }
    fn out_len(&self) -> usize {
        self.nb * self.sh.out_h() * self.sh.out_w() * 8
    }
    /// `pointwise` then `depthwise`: output and channel sums.
    fn unfused(&self, k: Kernels) -> (Vec<f32>, Vec<f32>) {
        let hw = self.sh.in_h * self.sh.in_w;
        let mut mid = vec![0.0; self.nb * hw * 8];
        let ps = PointwiseShape {
            k_blocks: self.kb,
            n_blocks: self.nb,
            pixels: hw,
        };
        k.pointwise(
            &self.pw,
            ps,
            Src::at(&self.x, 1),
            Dst::new(&mut mid),
            Epilogue::act(self.pw_act),
        )
        .unwrap();
        let mut y = vec![0.0; self.out_len()];
        let mut sums = vec![0.0; self.nb * 8];
        let epi = Epilogue {
            activation: self.dw_act,
            residual: None,
            channel_sums: Some(&mut sums),
        };
        k.depthwise(&self.dw, self.sh, Src::new(&mid), Dst::new(&mut y), epi)
            .unwrap();
        (y, sums)
    }
    fn fused(&self, k: Kernels) -> (Vec<f32>, Vec<f32>) {
        self.fused_with(k, None)
    }
    /// Serially, or through `Par` over `fork` (every layer split).
    fn fused_with(&self, k: Kernels, fork: Option<&dyn Fork>) -> (Vec<f32>, Vec<f32>) {
        // Output blocks at offset 0 of a buffer 7 pixels longer, the tail a sentinel the kernel
        // must not write.
        let n = self.out_len();
        let mut y = vec![0.0; n + 8 * 7];
        y[n..].fill(-7.5);
        let mut sums = vec![0.0; self.nb * 8];
        let mut scratch = vec![f32::NAN; pwdw_scratch_len(self.shape())];
        let (src, dst) = (Src::at(&self.x, 1), Dst::new(&mut y));
        let (a1, a2) = (self.pw_act, self.dw_act);
        match fork {
            None => k.pointwise_depthwise(
                &self.pw,
                &self.dw,
                self.shape(),
                src,
                dst,
                a1,
                a2,
                Some(&mut sums),
                &mut scratch,
            ),
            Some(f) => Par::new(k, f).min_split_macs(0).pointwise_depthwise(
                &self.pw,
                &self.dw,
                self.shape(),
                src,
                dst,
                a1,
                a2,
                Some(&mut sums),
                &mut scratch,
            ),
        }
        .unwrap();
        assert!(
            y[n..].iter().all(|&v| v == -7.5),
            "wrote past its output blocks"
        );
        y.truncate(n);
        (y, sums)
    }
}

/// (k_blocks, blocks, h, w, k, stride, pads [top, left, bottom, right]).
type Geometry = (usize, usize, usize, usize, usize, usize, [usize; 4]);

const GEOMETRIES: &[Geometry] = &[
    // EfficientNet-B0's 16 -> 96 at 112 with a 3x3 s2, scaled down: many bands.
    (2, 3, 37, 64, 3, 2, [1, 1, 1, 1]),
    (2, 3, 36, 64, 3, 2, [1, 1, 1, 1]),
    // 3x3 s1 and 5x5 s1/s2, odd sizes, several bands.
    (3, 2, 29, 40, 3, 1, [1, 1, 1, 1]),
    (1, 2, 23, 70, 5, 1, [2, 2, 2, 2]),
    (1, 5, 31, 66, 5, 2, [2, 2, 2, 2]),
    // TF "SAME" padding (zero on top/left, one below/right) for a stride-2 3x3.
    (2, 1, 20, 48, 3, 2, [0, 0, 1, 1]),
    // One band (the whole image), tiny images, a band of exactly k rows.
    (1, 1, 7, 9, 3, 1, [1, 1, 1, 1]),
    (2, 3, 5, 5, 5, 2, [2, 2, 2, 2]),
    (1, 1, 3, 3, 3, 2, [1, 1, 1, 1]),
    (1, 2, 12, 200, 5, 1, [2, 2, 2, 2]),
];

#[test]
fn fused_equals_pointwise_then_depthwise() {
    let mut rng = Rng::new(97);
    for &(kb, nb, h, w, k, st, pads) in GEOMETRIES {
        for _ in 0..trials(2) {
            let c = Case::random(&mut rng, kb, nb, h, w, k, st, pads);
            for kern in all_isas() {
                let (want, want_sums) = c.unfused(kern);
                let (got, got_sums) = c.fused(kern);
                let what = format!(
                    "{:?} {kb}->{nb} blocks {h}x{w} k{k} s{st} pads {pads:?} {:?}/{:?}",
                    kern.isa(),
                    c.pw_act,
                    c.dw_act
                );
                assert_eq!(bits(&got), bits(&want), "{what}: output");
                // The sums add the same values in another grouping.
                let n = (c.sh.out_h() * c.sh.out_w()) as f32;
                for (g, w) in got_sums.iter().zip(&want_sums) {
                    assert!(
                        (g - w).abs() <= 1e-5 * n * (1.0 + w.abs() / n),
                        "{what}: sums {g} vs {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn par_split_is_bit_identical() {
    let mut rng = Rng::new(41);
    for &(kb, nb, h, w, k, st, pads) in GEOMETRIES {
        let c = Case::random(&mut rng, kb, nb, h, w, k, st, pads);
        for kern in all_isas() {
            let (want, want_sums) = c.fused(kern);
            for fork in forks() {
                let (got, got_sums) = c.fused_with(kern, Some(fork.as_ref()));
                let what = format!(
                    "{:?} {kb}->{nb} {h}x{w} k{k} s{st}, {} parts",
                    kern.isa(),
                    fork.parts()
                );
                assert_eq!(bits(&got), bits(&want), "{what}: output");
                assert_eq!(bits(&got_sums), bits(&want_sums), "{what}: sums");
            }
        }
    }
}

/// f64 reference of the expansion + depthwise, from the unpacked weights.
#[test]
fn scalar_matches_f64_reference() {
    let mut rng = Rng::new(5);
    let (kb, nb, h, w, k, st) = (2usize, 2usize, 13usize, 11usize, 3usize, 2usize);
    let (kp, np) = (kb * 8, nb * 8);
    let (wp, bp) = (rng.vec(kp * np), rng.vec(np));
    let (wd, bd) = (rng.vec(np * k * k), rng.vec(np));
    let mut pw = vec![0.0; pointwise_packed_len(kp, np)];
    pack_pointwise(&wp, &bp, kp, np, &mut pw).unwrap();
    let mut dw = vec![0.0; depthwise_packed_len(np, k)];
    pack_depthwise(&wd, &bd, np, k, &mut dw).unwrap();
    let x = rng.vec(kb * h * w * 8);
    let sh = DepthwiseShape::same(nb, h, w, k, st);
    let (oh, ow) = (sh.out_h(), sh.out_w());
    let mut y = vec![0.0; nb * oh * ow * 8];
    let shape = PwDwShape {
        k_blocks: kb,
        dw: sh,
    };
    let mut scratch = vec![0.0; pwdw_scratch_len(shape)];
    let (a1, a2) = (Activation::Relu, Activation::Silu);
    scalar()
        .pointwise_depthwise(
            &pw,
            &dw,
            shape,
            Src::new(&x),
            Dst::new(&mut y),
            a1,
            a2,
            None,
            &mut scratch,
        )
        .unwrap();
    let mid = |c: usize, iy: usize, ix: usize| -> f64 {
        let mut v = bp[c] as f64;
        for i in 0..kp {
            v += wp[c * kp + i] as f64 * x[at(h * w, i, iy * w + ix)] as f64;
        }
        apply(a1, v)
    };
    let mut want = vec![0.0f64; y.len()];
    for c in 0..np {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut v = bd[c] as f64;
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (oy * st + ky) as isize - 1;
                        let ix = (ox * st + kx) as isize - 1;
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            v += wd[c * k * k + ky * k + kx] as f64
                                * mid(c, iy as usize, ix as usize);
                        }
                    }
                }
                want[at(oh * ow, c, oy * ow + ox)] = apply(a2, v);
            }
        }
    }
    assert_close64("pointwise_depthwise (scalar)", &y, &want, kp + k * k);
}

#[test]
fn lengths_are_checked() {
    let mut rng = Rng::new(3);
    let c = Case::random(&mut rng, 1, 2, 9, 9, 3, 1, [1, 1, 1, 1]);
    let k = scalar();
    let run = |pw: &[f32], x: &[f32], y: &mut [f32], scratch: &mut [f32]| {
        k.pointwise_depthwise(
            pw,
            &c.dw,
            c.shape(),
            Src::new(x),
            Dst::new(y),
            Activation::None,
            Activation::None,
            None,
            scratch,
        )
    };
    let mut y = vec![0.0; c.out_len()];
    let mut scratch = vec![0.0; pwdw_scratch_len(c.shape())];
    let x = &c.x[..9 * 9 * 8];
    assert!(run(&c.pw, x, &mut y, &mut scratch).is_ok());
    assert!(
        run(&c.pw[1..], x, &mut y, &mut scratch).is_err(),
        "short pw weights"
    );
    assert!(
        run(&c.pw, &x[1..], &mut y, &mut scratch).is_err(),
        "short input"
    );
    let n = y.len();
    assert!(
        run(&c.pw, x, &mut y[..n - 1], &mut scratch).is_err(),
        "short output"
    );
    let m = scratch.len();
    assert!(
        run(&c.pw, x, &mut y, &mut scratch[..m - 1]).is_err(),
        "short scratch"
    );
    let mut bad = c.shape();
    bad.dw.k = 4;
    let e = k.pointwise_depthwise(
        &c.pw,
        &c.dw,
        bad,
        Src::new(x),
        Dst::new(&mut y),
        Activation::None,
        Activation::None,
        None,
        &mut scratch,
    );
    assert!(e.is_err(), "k = 4");
}
