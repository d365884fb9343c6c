//! Dense (stem) and general convolutions: every ISA against the naive formula; the general
//! conv against the depthwise and dense kernels.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn conv_dense_all_isas_match_formula() {
    let mut rng = Rng::new(10);
    for trial in 0..trials(40) {
        let layout = if rng.bool() {
            InputLayout::Nchw
        } else {
            InputLayout::Nchw8c
        };
        let cin = rng.range(1, 11);
        let cout = rng.range(1, 20);
        let (kh, kw) = (rng.range(1, 4), rng.range(1, 4));
        let shape = ConvShape {
            cin,
            layout,
            in_h: rng.range(kh, 17),
            in_w: rng.range(kw, 23),
            out_blocks: pad8(cout) / 8,
            kh,
            kw,
            stride_h: rng.range(1, 2),
            stride_w: rng.range(1, 2),
            pads: [
                rng.range(0, kh - 1),
                rng.range(0, kw - 1),
                rng.range(0, kh - 1),
                rng.range(0, kw - 1),
            ],
        };
        check_dense(&mut rng, trial, shape, cout);
    }
}

/// Runs the dense conv of `shape` (`cout` logical output channels, random weights, input and
/// activation) on every ISA against the f64 formula, and split over threads bit-identically.
fn check_dense(rng: &mut Rng, trial: usize, shape: ConvShape, cout: usize) {
    let (cin, kh, kw, layout) = (shape.cin, shape.kh, shape.kw, shape.layout);
    let taps = cin * kh * kw;
    let mut w = vec![0.0; pad8(cout) * taps];
    let mut b = vec![0.0; pad8(cout)];
    for o in 0..cout {
        for t in 0..taps {
            w[o * taps + t] = rng.f();
        }
        b[o] = rng.f();
    }
    let mut packed = vec![0.0; conv_packed_len(cin, pad8(cout), kh, kw)];
    pack_conv(&w, &b, cin, pad8(cout), kh, kw, &mut packed).unwrap();
    let ihw = shape.in_h * shape.in_w;
    let x = rng.vec(pad8(cin) * ihw);
    let xat = |c: usize, p: usize| match layout {
        InputLayout::Nchw => x[c * ihw + p],
        InputLayout::Nchw8c => x[at(ihw, c, p)],
    };
    let (oh, ow) = (shape.out_h(), shape.out_w());
    let ohw = oh * ow;
    let act = rng.act();
    let mut want = vec![0.0f64; cout * ohw];
    for o in 0..cout {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = b[o] as f64;
                for c in 0..cin {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * shape.stride_h + ky) as isize - shape.pads[0] as isize;
                            let ix = (ox * shape.stride_w + kx) as isize - shape.pads[1] as isize;
                            if iy < 0
                                || ix < 0
                                || iy as usize >= shape.in_h
                                || ix as usize >= shape.in_w
                            {
                                continue;
                            }
                            acc += w[o * taps + (c * kh + ky) * kw + kx] as f64
                                * xat(c, iy as usize * shape.in_w + ix as usize) as f64;
                        }
                    }
                }
                want[o * ohw + oy * ow + ox] = apply(act, acc);
            }
        }
    }
    let run = |kern: Kernels| {
        let mut y = vec![0.0; pad8(cout) * ohw];
        kern.conv(
            &packed,
            shape,
            Src::new(&x),
            Dst::new(&mut y),
            Epilogue::act(act),
        )
        .unwrap();
        y
    };
    let y = each_isa(&format!("conv {trial} {shape:?}"), taps, run);
    // Split by output rows over 2 threads and over 5 parts run in reverse: identical bits.
    for kern in std::iter::once(scalar()).chain(simd_isas()) {
        let want = run(kern);
        for fork in forks() {
            let mut got = vec![0.0; pad8(cout) * ohw];
            Par::new(kern, fork.as_ref())
                .min_split_macs(0)
                .conv(
                    &packed,
                    shape,
                    Src::new(&x),
                    Dst::new(&mut got),
                    Epilogue::act(act),
                )
                .unwrap();
            assert!(
                bits(&got) == bits(&want),
                "{:?} conv split in {} {shape:?}",
                kern.isa(),
                fork.parts()
            );
        }
    }
    let got: Vec<f32> = (0..cout)
        .flat_map(|o| (0..ohw).map(move |p| (o, p)))
        .map(|(o, p)| y[at(ohw, o, p)])
        .collect();
    assert_close64(&format!("conv {shape:?}"), &got, &want, taps);
}

/// The RGB stem's specialized path (NCHW input, 3 channels, 3x3 stride 2): odd and even
/// sizes, every padding up to 2 (so left and right borders of 0-2 columns, and images whose
/// interior is shorter than one column tile; widths up to 80 for the 16-column tiles of the
/// two-block wide path and its 4- and 1-column tails), 1-3 output blocks.
#[test]
fn conv_stem_nchw_3x3_s2_matches_formula() {
    let mut rng = Rng::new(11);
    for trial in 0..trials(40) {
        let cout = rng.range(1, 24);
        let shape = ConvShape {
            cin: 3,
            layout: InputLayout::Nchw,
            in_h: rng.range(3, 21),
            in_w: rng.range(3, 81),
            out_blocks: pad8(cout) / 8,
            kh: 3,
            kw: 3,
            stride_h: 2,
            stride_w: 2,
            pads: [
                rng.range(0, 2),
                rng.range(0, 2),
                rng.range(0, 2),
                rng.range(0, 2),
            ],
        };
        check_dense(&mut rng, trial, shape, cout);
    }
}

#[test]
fn conv_general_matches_depthwise_and_dense() {
    let mut rng = Rng::new(11);
    // groups == channels: the depthwise kernel.
    let (c, h, w) = (11, 9, 7);
    let cp = pad8(c);
    let wts = rng.vec(c * 9);
    let bias = rng.vec(c);
    let mut wpad = vec![0.0; cp * 9];
    wpad[..c * 9].copy_from_slice(&wts);
    let mut bpad = vec![0.0; cp];
    bpad[..c].copy_from_slice(&bias);
    let mut dwp = vec![0.0; depthwise_packed_len(cp, 3)];
    pack_depthwise(&wpad, &bpad, cp, 3, &mut dwp).unwrap();
    let x = rng.vec(cp * h * w);
    let mut y_dw = vec![0.0; cp * h * w];
    let dws = DepthwiseShape::same(cp / 8, h, w, 3, 2);
    let mut y_dw2 = vec![0.0; cp * dws.out_h() * dws.out_w()];
    scalar()
        .depthwise(
            &dwp,
            dws,
            Src::new(&x),
            Dst::new(&mut y_dw2),
            Epilogue::act(Activation::Relu),
        )
        .unwrap();
    let gs = GeneralConvShape {
        cin: c,
        cout: c,
        groups: c,
        in_h: h,
        in_w: w,
        kh: 3,
        kw: 3,
        stride: [2, 2],
        dilation: [1, 1],
        pads: [1, 1, 1, 1],
    };
    assert_eq!((gs.out_h(), gs.out_w()), (dws.out_h(), dws.out_w()));
    scalar()
        .conv_general(
            &wts,
            &bias,
            gs,
            Src::new(&x),
            Dst::new(&mut y_dw),
            Epilogue::act(Activation::Relu),
        )
        .unwrap();
    let n = cp * gs.out_h() * gs.out_w();
    // Padded lanes: conv_general writes 0, depthwise writes act(0 + 0) = 0 too.
    assert_close("conv_general vs depthwise", &y_dw[..n], &y_dw2, 9);

    // groups == 1, dilation 2 against a direct formula.
    let gs = GeneralConvShape {
        cin: 5,
        cout: 6,
        groups: 1,
        in_h: 8,
        in_w: 9,
        kh: 3,
        kw: 2,
        stride: [1, 2],
        dilation: [2, 1],
        pads: [2, 0, 1, 1],
    };
    let wts = rng.vec(6 * 5 * 6);
    let bias = rng.vec(6);
    let x = rng.vec(8 * 72);
    let mut y = vec![0.0; 8 * gs.out_h() * gs.out_w()];
    scalar()
        .conv_general(
            &wts,
            &bias,
            gs,
            Src::new(&x),
            Dst::new(&mut y),
            Epilogue::act(Activation::None),
        )
        .unwrap();
    let (oh, ow) = (gs.out_h(), gs.out_w());
    for o in 0..6 {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias[o] as f64;
                for ci in 0..5 {
                    for ky in 0..3 {
                        for kx in 0..2 {
                            let iy = (oy + 2 * ky) as isize - 2;
                            let ix = (2 * ox + kx) as isize;
                            if !(0..8).contains(&iy) || ix >= 9 {
                                continue;
                            }
                            acc += wts[((o * 5 + ci) * 3 + ky) * 2 + kx] as f64
                                * x[at(72, ci, iy as usize * 9 + ix as usize)] as f64;
                        }
                    }
                }
                assert_close64(
                    "conv_general",
                    &[y[at(oh * ow, o, oy * ow + ox)]],
                    &[acc],
                    30,
                );
            }
        }
    }
}
