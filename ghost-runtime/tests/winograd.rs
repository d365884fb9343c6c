//! Winograd 3x3 conv (`conv_winograd`): every ISA against the naive formula (in f64) on odd
//! shapes (odd and tiny H/W, channels not multiples of 8, every padding 0..2 per side,
//! residual, channel sums, several chunks), and splits over forks bit-identical to one call.

mod common;
use common::*;
use ghost_runtime::*;

struct Case {
    shape: WinogradShape,
    w: Vec<f32>,
    b: Vec<f32>,
    packed: Vec<f32>,
    x: Vec<f32>,
    r: Option<Vec<f32>>,
    act: Activation,
    sums: bool,
}

impl Case {
    fn new(rng: &mut Rng, shape: WinogradShape) -> Case {
        let lanes = shape.out_blocks * 8;
        let mut w = vec![0.0; lanes * shape.cin * 9];
        let mut b = vec![0.0; lanes];
        for o in 0..shape.cout {
            for t in 0..shape.cin * 9 {
                w[o * shape.cin * 9 + t] = rng.f();
            }
            b[o] = rng.f();
        }
        let mut packed = vec![f32::NAN; winograd_packed_len(&shape)];
        pack_conv_winograd(&w, &b, &shape, &mut packed).unwrap();
        // Padded input lanes hold garbage (finite): they must not leak into the result.
        let x = rng.vec(pad8(shape.cin) * shape.in_h * shape.in_w);
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

    fn random(rng: &mut Rng) -> Case {
        let pads = [0, 0, 0, 0].map(|_| rng.range(0, 2));
        let in_h = rng.range(1, 13).max(3 - (pads[0] + pads[2]).min(2));
        let in_w = rng.range(1, 19).max(3 - (pads[1] + pads[3]).min(2));
        let (cin, cout) = (rng.range(1, 40), rng.range(1, 70));
        let out_blocks = cout.div_ceil(8) + rng.range(0, 1);
        Case::new(
            rng,
            WinogradShape {
                cin,
                cout,
                out_blocks,
                in_h,
                in_w,
                pads,
            },
        )
    }

    /// Output and channel sums, through `f` with a scratch full of NaN.
    fn run(&self, f: impl FnOnce(Src, Dst, Epilogue, &mut [f32])) -> (Vec<f32>, Vec<f32>) {
        let ohw = self.shape.out_h() * self.shape.out_w();
        let mut y = vec![f32::NAN; self.shape.out_blocks * 8 * ohw];
        let mut sums = vec![0.5; self.shape.out_blocks * 8];
        let mut scratch = vec![f32::NAN; winograd_scratch_len(&self.shape)];
        let epi = Epilogue {
            activation: self.act,
            residual: self.r.as_deref().map(Src::new),
            channel_sums: self.sums.then_some(&mut sums[..]),
        };
        f(Src::new(&self.x), Dst::new(&mut y), epi, &mut scratch);
        (y, sums)
    }

    fn naive(&self) -> Vec<f64> {
        let sh = &self.shape;
        let (oh, ow) = (sh.out_h(), sh.out_w());
        let (ihw, ohw) = (sh.in_h * sh.in_w, oh * ow);
        let mut want = vec![0.0f64; sh.cout * ohw];
        for o in 0..sh.cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = self.b[o] as f64;
                    for ci in 0..sh.cin {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let iy = (oy + ky) as isize - sh.pads[0] as isize;
                                let ix = (ox + kx) as isize - sh.pads[1] as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy as usize >= sh.in_h
                                    || ix as usize >= sh.in_w
                                {
                                    continue;
                                }
                                let p = iy as usize * sh.in_w + ix as usize;
                                acc += self.w[((o * sh.cin + ci) * 3 + ky) * 3 + kx] as f64
                                    * self.x[at(ihw, ci, p)] as f64;
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

    fn check(&self, what: &str) {
        let sh = self.shape;
        let ohw = sh.out_h() * sh.out_w();
        // F(2x2, 3x3) adds each product through the transforms: up to 16 terms per input
        // channel reach an output (the direct method's 9), so the tolerance counts 16.
        let terms = sh.cin * 16;
        let want = self.naive();
        for kern in all_isas() {
            let what = format!("{:?} {what} {sh:?}", kern.isa());
            let (y, sums) =
                self.run(|s, d, e, t| kern.conv_winograd(&self.packed, sh, s, d, e, t).unwrap());
            check_conv_output(
                &what,
                (&y, self.sums.then_some(&sums[..])),
                &want,
                (sh.cout, sh.out_blocks, ohw),
                terms,
            );
            for fork in forks() {
                let (ys, ss) = self.run(|s, d, e, t| {
                    Par::new(kern, fork.as_ref())
                        .min_split_macs(0)
                        .conv_winograd(&self.packed, sh, s, d, e, t)
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
fn conv_winograd_all_isas_match_formula_and_split_bits() {
    let mut rng = Rng::new(41);
    for trial in 0..trials(50) {
        Case::random(&mut rng).check(&format!("trial {trial}"));
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "200 x 260 channels: hours under Miri; the random cases cover the code"
)]
fn conv_winograd_several_chunks() {
    // Wide enough that a chunk holds fewer tiles than the layer (88 tiles, chunks of 70).
    let mut rng = Rng::new(42);
    let shape = WinogradShape {
        cin: 200,
        cout: 260,
        out_blocks: 33,
        in_h: 15,
        in_w: 21,
        pads: [1, 1, 1, 1],
    };
    assert!(shape.chunk() < shape.tiles(), "{shape:?}: one chunk");
    Case::new(&mut rng, shape).check("chunks");
}

#[test]
fn conv_winograd_agrees_with_conv_grouped() {
    // The direct kernel on ResNet-like layers, through the same packing of the same weights.
    let mut rng = Rng::new(43);
    for &(c, hw) in &[(64, 14), (32, 7), (48, 9)] {
        let shape = WinogradShape {
            cin: c,
            cout: c,
            out_blocks: c / 8,
            in_h: hw,
            in_w: hw,
            pads: [1, 1, 1, 1],
        };
        let case = Case::new(&mut rng, shape);
        let gs = GroupedConvShape {
            cin: c,
            cout: c,
            groups: 1,
            out_blocks: c / 8,
            in_h: hw,
            in_w: hw,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pads: [1, 1, 1, 1],
        };
        let mut gp = vec![0.0; grouped_packed_len(&gs)];
        pack_conv_grouped(&case.w, &case.b, &gs, &mut gp).unwrap();
        let k = Kernels::new();
        let (y1, _) =
            case.run(|s, d, e, t| k.conv_winograd(&case.packed, shape, s, d, e, t).unwrap());
        let (y2, _) = case.run(|s, d, e, _| k.conv_grouped(&gp, gs, s, d, e).unwrap());
        assert_close(&format!("{c} @{hw}"), &y1, &y2, c * 16);
    }
}

#[test]
fn conv_winograd_rejects_bad_arguments() {
    let shape = WinogradShape {
        cin: 8,
        cout: 8,
        out_blocks: 1,
        in_h: 4,
        in_w: 4,
        pads: [1, 1, 1, 1],
    };
    let k = Kernels::new();
    let packed = vec![0.0; winograd_packed_len(&shape)];
    let x = vec![0.0; 128];
    let mut y = vec![0.0; 128];
    let mut scratch = vec![0.0; winograd_scratch_len(&shape) - 1];
    let err = k
        .conv_winograd(
            &packed,
            shape,
            Src::new(&x),
            Dst::new(&mut y),
            Epilogue::act(Activation::None),
            &mut scratch,
        )
        .unwrap_err();
    assert!(format!("{err}").contains("scratch"), "{err}");
    let bad = WinogradShape {
        pads: [3, 1, 1, 1],
        ..shape
    };
    let mut p2 = vec![0.0; winograd_packed_len(&bad)];
    let err = pack_conv_winograd(&vec![0.0; 8 * 8 * 9], &[0.0; 8], &bad, &mut p2).unwrap_err();
    assert!(format!("{err}").contains("pads"), "{err}");
}
