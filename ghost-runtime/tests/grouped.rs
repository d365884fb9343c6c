//! Grouped convolution (`conv_grouped`): every ISA against the naive formula (in f64) on odd
//! shapes (odd H/W, channels per group not multiples of 8, strides, dilations, asymmetric
//! padding, residual and channel sums), and splits over forks bit-identical to one call.

mod common;
use common::*;
use ghost_runtime::*;

struct Case {
    shape: GroupedConvShape,
    w: Vec<f32>,
    b: Vec<f32>,
    packed: Vec<f32>,
    x: Vec<f32>,
    r: Option<Vec<f32>>,
    act: Activation,
    sums: bool,
}

impl Case {
    fn random(rng: &mut Rng, trial: usize) -> Case {
        // Groups and channels per group: mostly block-aligned RegNet-like groups, sometimes
        // odd ones (3, 5, 12 channels per group) and dense convs, some with 4 to 8 output
        // blocks (the AVX-512 path's 4-block tiles, then a pair, then single blocks).
        let (groups, cig, cog) = match trial % 6 {
            0 => (rng.range(1, 6), 8, 8),
            1 => (rng.range(1, 3), 16, 16),
            2 => (rng.range(1, 5), rng.range(1, 13), rng.range(1, 13)),
            3 => (1, rng.range(1, 20), rng.range(1, 20)),
            5 => (1, rng.range(1, 20), rng.range(25, 65)),
            _ => (rng.range(2, 9), rng.range(1, 5), rng.range(1, 5)),
        };
        let (kh, kw) = (rng.range(1, 4), rng.range(1, 4));
        let dilation = [rng.range(1, 2), rng.range(1, 2)];
        let ext = |k: usize, d: usize| d * (k - 1) + 1;
        let pads = [
            rng.range(0, kh),
            rng.range(0, kw),
            rng.range(0, kh),
            rng.range(0, kw),
        ];
        let in_h = rng
            .range(1, 19)
            .max(ext(kh, dilation[0]).saturating_sub(pads[0] + pads[2]));
        let in_w = rng
            .range(1, 37)
            .max(ext(kw, dilation[1]).saturating_sub(pads[1] + pads[3]));
        let (cin, cout) = (groups * cig, groups * cog);
        let shape = GroupedConvShape {
            cin,
            cout,
            groups,
            out_blocks: cout.div_ceil(8),
            in_h,
            in_w,
            kh,
            kw,
            stride: [rng.range(1, 2), rng.range(1, 3)],
            dilation,
            pads,
        };
        let lanes = pad8(cout);
        let taps = cig * kh * kw;
        let mut w = vec![0.0; lanes * taps];
        let mut b = vec![0.0; lanes];
        for o in 0..cout {
            for t in 0..taps {
                w[o * taps + t] = rng.f();
            }
            b[o] = rng.f();
        }
        let mut packed = vec![0.0; grouped_packed_len(&shape)];
        pack_conv_grouped(&w, &b, &shape, &mut packed).unwrap();
        let ihw = in_h * in_w;
        // Padded input lanes hold garbage (finite): they must not leak into the result.
        let x = rng.vec(pad8(cin) * ihw);
        let ohw = shape.out_h() * shape.out_w();
        let r = rng.bool().then(|| rng.vec(lanes * ohw));
        Case {
            shape,
            w,
            b,
            packed,
            x,
            r,
            act: rng.act(),
            sums: rng.bool(),
        }
    }

    /// Output and channel sums.
    fn run(&self, f: impl FnOnce(Src, Dst, Epilogue)) -> (Vec<f32>, Vec<f32>) {
        let ohw = self.shape.out_h() * self.shape.out_w();
        let mut y = vec![f32::NAN; self.shape.out_blocks * 8 * ohw];
        let mut sums = vec![0.5; self.shape.out_blocks * 8];
        let epi = Epilogue {
            activation: self.act,
            residual: self.r.as_deref().map(Src::new),
            channel_sums: self.sums.then_some(&mut sums[..]),
        };
        f(Src::new(&self.x), Dst::new(&mut y), epi);
        (y, sums)
    }

    fn naive(&self) -> Vec<f64> {
        let sh = &self.shape;
        let (cig, cog) = (sh.cin / sh.groups, sh.cout / sh.groups);
        let (oh, ow) = (sh.out_h(), sh.out_w());
        let (ihw, ohw) = (sh.in_h * sh.in_w, oh * ow);
        let mut want = vec![0.0f64; sh.cout * ohw];
        for o in 0..sh.cout {
            let g = o / cog;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = self.b[o] as f64;
                    for ci in 0..cig {
                        for ky in 0..sh.kh {
                            for kx in 0..sh.kw {
                                let iy = (oy * sh.stride[0] + ky * sh.dilation[0]) as isize
                                    - sh.pads[0] as isize;
                                let ix = (ox * sh.stride[1] + kx * sh.dilation[1]) as isize
                                    - sh.pads[1] as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy as usize >= sh.in_h
                                    || ix as usize >= sh.in_w
                                {
                                    continue;
                                }
                                let p = iy as usize * sh.in_w + ix as usize;
                                acc += self.w[((o * cig + ci) * sh.kh + ky) * sh.kw + kx] as f64
                                    * self.x[at(ihw, g * cig + ci, p)] as f64;
                            }
                        }
                    }
                    let p = oy * ow + ox;
                    let mut v = apply(self.act, acc);
                    if let Some(r) = &self.r {
                        v += r[at(ohw, o, p)] as f64;
                    }
                    want[o * ohw + p] = v;
                }
            }
        }
        want
    }
}

#[test]
fn conv_grouped_all_isas_match_formula_and_split_bits() {
    let mut rng = Rng::new(31);
    for trial in 0..trials(60) {
        let c = Case::random(&mut rng, trial);
        let sh = c.shape;
        let ohw = sh.out_h() * sh.out_w();
        let terms = sh.cin / sh.groups * sh.kh * sh.kw;
        let want = c.naive();
        for kern in all_isas() {
            let what = format!("{:?} trial {trial} {sh:?}", kern.isa());
            let (y, sums) = c.run(|s, d, e| kern.conv_grouped(&c.packed, sh, s, d, e).unwrap());
            check_conv_output(
                &what,
                (&y, c.sums.then_some(&sums[..])),
                &want,
                (sh.cout, sh.out_blocks, ohw),
                terms,
            );
            for fork in forks() {
                let (ys, ss) = c.run(|s, d, e| {
                    Par::new(kern, fork.as_ref())
                        .min_split_macs(0)
                        .conv_grouped(&c.packed, sh, s, d, e)
                        .unwrap()
                });
                assert!(
                    bits(&ys) == bits(&y) && bits(&ss) == bits(&sums),
                    "{what}: split in {} parts differs",
                    fork.parts()
                );
            }
        }
    }
}

#[test]
fn conv_grouped_agrees_with_conv_general() {
    // The scalar fallback the planner used before, on RegNet-like layers, and dense ones on
    // the map widths the row is split for exactly (7 = 4 + 3, 13 = 6 + 4 + 3, 14 = 6 + 4 + 4,
    // 27 = 6 * 4 + 3) or in overlapping tiles (5).
    let mut rng = Rng::new(32);
    for &(groups, cig, hw, stride) in &[
        (6, 8, 15, 1),
        (13, 8, 14, 2),
        (3, 24, 7, 1),
        (9, 16, 9, 2),
        (1, 32, 7, 1),
        (1, 24, 13, 1),
        (1, 40, 14, 1),
        (1, 16, 27, 1),
        (1, 16, 5, 1),
        (1, 16, 27, 2),
    ] {
        let c = groups * cig;
        let shape = GroupedConvShape {
            cin: c,
            cout: c,
            groups,
            out_blocks: c.div_ceil(8),
            in_h: hw,
            in_w: hw,
            kh: 3,
            kw: 3,
            stride: [stride, stride],
            dilation: [1, 1],
            pads: [1, 1, 1, 1],
        };
        let w = rng.vec(c * cig * 9);
        let b = rng.vec(c);
        let mut packed = vec![0.0; grouped_packed_len(&shape)];
        pack_conv_grouped(&w, &b, &shape, &mut packed).unwrap();
        let x = rng.vec(pad8(c) * hw * hw);
        let ohw = shape.out_h() * shape.out_w();
        let k = Kernels::new();
        let mut y1 = vec![0.0; pad8(c) * ohw];
        let mut y2 = vec![0.0; pad8(c) * ohw];
        k.conv_grouped(
            &packed,
            shape,
            Src::new(&x),
            Dst::new(&mut y1),
            Epilogue::act(Activation::Relu),
        )
        .unwrap();
        let gs = GeneralConvShape {
            cin: c,
            cout: c,
            groups,
            in_h: hw,
            in_w: hw,
            kh: 3,
            kw: 3,
            stride: [stride, stride],
            dilation: [1, 1],
            pads: [1, 1, 1, 1],
        };
        k.conv_general(
            &w,
            &b,
            gs,
            Src::new(&x),
            Dst::new(&mut y2),
            Epilogue::act(Activation::Relu),
        )
        .unwrap();
        assert_close("grouped vs general", &y1, &y2, cig * 9);
    }
}

#[test]
fn conv_grouped_rejects_bad_shapes() {
    let shape = GroupedConvShape {
        cin: 12,
        cout: 16,
        groups: 3,
        out_blocks: 2,
        in_h: 5,
        in_w: 5,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        dilation: [1, 1],
        pads: [1, 1, 1, 1],
    };
    // 16 output channels are not divisible into 3 groups.
    let mut packed = vec![0.0; 4096];
    assert!(pack_conv_grouped(&[0.0; 16 * 4 * 9], &[0.0; 16], &shape, &mut packed).is_err());
    let ok = GroupedConvShape { groups: 4, ..shape };
    let len = grouped_packed_len(&ok);
    let x = vec![0.0; 16 * 25];
    let mut y = vec![0.0; 16 * 25];
    let r = Kernels::new().conv_grouped(
        &vec![0.0; len - 1],
        ok,
        Src::new(&x),
        Dst::new(&mut y),
        Epilogue::act(Activation::None),
    );
    assert!(r.is_err(), "short packed weights accepted");
    let r = Kernels::new().conv_grouped(
        &vec![0.0; len],
        ok,
        Src::new(&x[..16 * 24]),
        Dst::new(&mut y),
        Epilogue::act(Activation::None),
    );
    assert!(r.is_err(), "short input accepted");
}
