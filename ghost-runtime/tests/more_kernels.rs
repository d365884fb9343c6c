//! Stem/general conv, FC, SE, pooling, elementwise, resize and softmax: scalar path against
//! naive formulas, SIMD paths against the scalar path.

mod common;
use common::*;
use ghost_runtime::*;

/// Runs `f` for the scalar path and every SIMD path, comparing outputs with the scalar one.
fn each_isa(what: &str, k_terms: usize, f: impl Fn(Kernels) -> Vec<f32>) -> Vec<f32> {
    let want = f(scalar());
    for kern in simd_isas() {
        let got = f(kern);
        assert_close(&format!("{:?} {what}", kern.isa()), &got, &want, k_terms);
    }
    want
}

/// A batch split by images over a team gives the same bits as one image after another, each
/// part using its own scratch; errors of a part come back.
#[test]
fn par_images_splits_a_batch() {
    let mut rng = Rng::new(40);
    let x = rng.vec(7 * 5);
    let f = |xi: &[f32], yi: &mut [f32], s: &mut [f32]| -> Result<(), Error> {
        // Uses its scratch as a temporary, so a shared scratch would corrupt results.
        for (t, v) in s.iter_mut().zip(xi) {
            *t = v * 2.0;
        }
        yi[0] = s[..5].iter().sum();
        yi[1] = xi[0];
        Ok(())
    };
    let mut want = vec![0.0; 7 * 2];
    let mut scratch = vec![0.0; 5];
    par_images(&Serial, &x, 5, &mut want, 2, &mut scratch, 5, &f).unwrap();
    for fork in forks() {
        let mut got = vec![0.0; 7 * 2];
        let mut scratch = vec![0.0; 5 * fork.parts()];
        par_images(fork.as_ref(), &x, 5, &mut got, 2, &mut scratch, 5, &f).unwrap();
        assert!(bits(&got) == bits(&want), "{} parts", fork.parts());
        let mut short = vec![0.0; 5 * fork.parts() - 1];
        let err = par_images(fork.as_ref(), &x, 5, &mut got, 2, &mut short, 5, &f).unwrap_err();
        assert!(
            matches!(err, Error::Length { arg: "scratch", .. }),
            "{err:?}"
        );
        let failing = |xi: &[f32], _: &mut [f32], _: &mut [f32]| -> Result<(), Error> {
            if xi[0] == x[3 * 5] {
                Err(Error::Shape {
                    arg: "image 3",
                    detail: "refused",
                })
            } else {
                Ok(())
            }
        };
        let err =
            par_images(fork.as_ref(), &x, 5, &mut got, 2, &mut scratch, 5, &failing).unwrap_err();
        assert_eq!(
            err,
            Error::Shape {
                arg: "image 3",
                detail: "refused"
            }
        );
    }
}

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
                                let iy =
                                    (oy * shape.stride_h + ky) as isize - shape.pads[0] as isize;
                                let ix =
                                    (ox * shape.stride_w + kx) as isize - shape.pads[1] as isize;
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

fn random_fc(rng: &mut Rng, k: usize, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (kp, np) = (pad8(k), pad8(n));
    let mut w = vec![0.0; kp * np];
    let mut b = vec![0.0; np];
    for o in 0..n {
        for i in 0..k {
            w[o * kp + i] = rng.f();
        }
        b[o] = rng.f();
    }
    let mut packed = vec![0.0; pointwise_packed_len(kp, np)];
    pack_pointwise(&w, &b, kp, np, &mut packed).unwrap();
    (w, b, packed)
}

#[test]
fn fc_matches_formula() {
    let mut rng = Rng::new(12);
    for _ in 0..trials(30) {
        let (k, n) = (rng.range(1, 100), rng.range(1, 100));
        let (w, b, packed) = random_fc(&mut rng, k, n);
        let mut x = rng.vec(pad8(k));
        x[k..].iter_mut().for_each(|v| *v = 0.0);
        let act = rng.act();
        let y = each_isa("fc", k, |kern| {
            let mut y = vec![0.0; pad8(n)];
            kern.fc(&packed, pad8(k) / 8, pad8(n) / 8, &x, &mut y, act)
                .unwrap();
            for fork in forks() {
                let mut got = vec![0.0; pad8(n)];
                Par::new(kern, fork.as_ref())
                    .min_split_macs(0)
                    .fc(&packed, pad8(k) / 8, pad8(n) / 8, &x, &mut got, act)
                    .unwrap();
                assert!(
                    bits(&got) == bits(&y),
                    "fc {k}->{n} in {} parts",
                    fork.parts()
                );
            }
            y
        });
        let want: Vec<f64> = (0..n)
            .map(|o| {
                let acc: f64 = (0..k)
                    .map(|i| w[o * pad8(k) + i] as f64 * x[i] as f64)
                    .sum();
                apply(act, acc + b[o] as f64)
            })
            .collect();
        assert_close64("fc", &y[..n], &want, k);
    }
}

#[test]
fn se_gate_and_weight_folding() {
    let mut rng = Rng::new(13);
    let (c, r, px) = (20, 6, 49);
    let (w1, b1, p1) = random_fc(&mut rng, c, r);
    let (w2, b2, p2) = random_fc(&mut rng, r, c);
    let mut sums = rng.vec(pad8(c));
    sums[c..].iter_mut().for_each(|v| *v = 0.0);
    for gate_fn in [
        Gate::Sigmoid,
        Gate::Act(Activation::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        }),
    ] {
        let g = each_isa("se", c, |kern| {
            let mut scratch = vec![0.0; pad8(c) + pad8(r)];
            let mut gate = vec![0.0; pad8(c)];
            kern.se_gate(
                &sums,
                1.0 / px as f32,
                &p1,
                &p2,
                SeShape {
                    c_blocks: pad8(c) / 8,
                    r_blocks: pad8(r) / 8,
                },
                gate_fn,
                &mut scratch,
                &mut gate,
            )
            .unwrap();
            gate
        });
        let mid: Vec<f64> = (0..r)
            .map(|j| {
                let a: f64 = (0..c)
                    .map(|i| w1[j * pad8(c) + i] as f64 * sums[i] as f64 / px as f64)
                    .sum();
                (a + b1[j] as f64).max(0.0)
            })
            .collect();
        for i in 0..c {
            let z: f64 = (0..r)
                .map(|j| w2[i * pad8(r) + j] as f64 * mid[j])
                .sum::<f64>()
                + b2[i] as f64;
            let want = match gate_fn {
                Gate::Sigmoid => 1.0 / (1.0 + (-z).exp()),
                Gate::Act(a) => apply(a, z),
            };
            assert_close64("se gate", &[g[i]], &[want], c);
        }
    }
    // Folding a gate into the next 1x1 equals gating its input.
    let (k, n, px) = (20, 13, 10);
    let (_, _, packed) = random_fc(&mut rng, k, n);
    let s = rng.vec(pad8(k));
    let x = rng.vec(pad8(k) * px);
    let mut scaled = vec![0.0; packed.len()];
    scale_packed_pointwise(&packed, pad8(k), pad8(n), &s, &mut scaled).unwrap();
    let shape = PointwiseShape {
        k_blocks: pad8(k) / 8,
        n_blocks: pad8(n) / 8,
        pixels: px,
    };
    let mut gated = x.clone();
    let kern = Kernels::new();
    kern.channel_assign(
        BinaryOp::Mul,
        &mut gated,
        pad8(k) / 8,
        px,
        &s,
        Activation::None,
    )
    .unwrap();
    let (mut y1, mut y2) = (vec![0.0; pad8(n) * px], vec![0.0; pad8(n) * px]);
    kern.pointwise(
        &scaled,
        shape,
        Src::new(&x),
        Dst::new(&mut y1),
        Epilogue::act(Activation::Relu),
    )
    .unwrap();
    kern.pointwise(
        &packed,
        shape,
        Src::new(&gated),
        Dst::new(&mut y2),
        Epilogue::act(Activation::Relu),
    )
    .unwrap();
    assert_close("folded SE", &y1, &y2, k);
}

#[test]
fn pooling_matches_formula() {
    let mut rng = Rng::new(14);
    for _ in 0..trials(30) {
        let c = rng.range(1, 17);
        let cp = pad8(c);
        let (kh, kw) = (rng.range(1, 3), rng.range(1, 3));
        let sh = PoolShape {
            blocks: cp / 8,
            in_h: rng.range(kh, 11),
            in_w: rng.range(kw, 11),
            kh,
            kw,
            stride: [rng.range(1, 2), rng.range(1, 2)],
            pads: [
                rng.range(0, kh - 1),
                rng.range(0, kw - 1),
                rng.range(0, kh - 1),
                rng.range(0, kw - 1),
            ],
        };
        let ihw = sh.in_h * sh.in_w;
        let x = rng.vec(cp * ihw);
        let (oh, ow) = (sh.out_h(), sh.out_w());
        for kind in [
            PoolKind::Max,
            PoolKind::Avg {
                count_include_pad: false,
            },
            PoolKind::Avg {
                count_include_pad: true,
            },
        ] {
            let y = each_isa("pool", kh * kw, |kern| {
                let mut y = vec![0.0; cp * oh * ow];
                kern.pool(kind, sh, Src::new(&x), Dst::new(&mut y)).unwrap();
                y
            });
            for ch in 0..c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut vals = Vec::new();
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * sh.stride[0] + ky) as isize - sh.pads[0] as isize;
                                let ix = (ox * sh.stride[1] + kx) as isize - sh.pads[1] as isize;
                                if iy >= 0
                                    && ix >= 0
                                    && (iy as usize) < sh.in_h
                                    && (ix as usize) < sh.in_w
                                {
                                    vals.push(
                                        x[at(ihw, ch, iy as usize * sh.in_w + ix as usize)] as f64,
                                    );
                                }
                            }
                        }
                        let want = match kind {
                            PoolKind::Max => vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                            PoolKind::Avg { count_include_pad } => {
                                let n = if count_include_pad {
                                    kh * kw
                                } else {
                                    vals.len()
                                };
                                vals.iter().sum::<f64>() / n as f64
                            }
                        };
                        assert_close64(
                            "pool",
                            &[y[at(oh * ow, ch, oy * ow + ox)]],
                            &[want],
                            kh * kw,
                        );
                    }
                }
            }
        }
        let g = each_isa("gap", ihw, |kern| {
            let mut g = vec![0.0; cp];
            kern.global_avg_pool(Src::new(&x), cp / 8, ihw, &mut g)
                .unwrap();
            g
        });
        for ch in 0..c {
            let m: f64 = (0..ihw).map(|p| x[at(ihw, ch, p)] as f64).sum::<f64>() / ihw as f64;
            assert_close64("gap", &[g[ch]], &[m], ihw);
        }
    }
}

#[test]
fn eltwise_matches_formula() {
    let mut rng = Rng::new(15);
    let (blocks, px) = (3, 7);
    let a = rng.vec(blocks * px * 8);
    let b = rng.vec(blocks * px * 8);
    let v = rng.vec(blocks * 8);
    for op in [BinaryOp::Add, BinaryOp::Mul] {
        let f = |x: f32, y: f32| match op {
            BinaryOp::Add => x + y,
            BinaryOp::Mul => x * y,
        };
        let y = each_isa("binary", 1, |kern| {
            let mut y = vec![0.0; a.len()];
            kern.binary(op, &a, &b, &mut y, Activation::Relu).unwrap();
            y
        });
        let want: Vec<f32> = a.iter().zip(&b).map(|(&x, &z)| f(x, z).max(0.0)).collect();
        assert_close("binary", &y, &want, 1);
        let y2 = each_isa("binary_assign", 1, |kern| {
            let mut y = a.clone();
            kern.binary_assign(op, &mut y, &b, Activation::Relu)
                .unwrap();
            y
        });
        assert_close("binary_assign", &y2, &want, 1);
        let y3 = each_isa("channel", 1, |kern| {
            let mut y = a.clone();
            kern.channel_assign(op, &mut y, blocks, px, &v, Activation::None)
                .unwrap();
            y
        });
        for (i, (&got, &x)) in y3.iter().zip(&a).enumerate() {
            let c = (i / (px * 8)) * 8 + i % 8;
            assert_close("channel", &[got], &[f(x, v[c])], 1);
        }
    }
}

#[test]
fn resize_modes() {
    let mut rng = Rng::new(16);
    let (blocks, h, w) = (2, 5, 3);
    let x = rng.vec(blocks * h * w * 8);
    // 2x nearest (asymmetric, floor) equals the dedicated upsample.
    let sh = ResizeShape {
        blocks,
        in_h: h,
        in_w: w,
        out_h: 2 * h,
        out_w: 2 * w,
    };
    let y = each_isa("resize nearest", 1, |kern| {
        let mut y = vec![0.0; blocks * 4 * h * w * 8];
        kern.resize(
            ResizeMode::Nearest(NearestMode::Floor),
            CoordMode::Asymmetric,
            sh,
            Src::new(&x),
            Dst::new(&mut y),
        )
        .unwrap();
        y
    });
    let mut y2 = vec![0.0; y.len()];
    scalar()
        .upsample2x_nearest(blocks, h, w, Src::new(&x), Dst::new(&mut y2))
        .unwrap();
    assert_eq!(y, y2);
    // Bilinear align_corners 1x3 -> 1x5 is exact interpolation.
    let x = [0.0f32, 2.0, 6.0];
    let mut xb = vec![0.0; 3 * 8];
    for (p, &v) in x.iter().enumerate() {
        xb[p * 8] = v;
    }
    let sh = ResizeShape {
        blocks: 1,
        in_h: 1,
        in_w: 3,
        out_h: 1,
        out_w: 5,
    };
    let y = each_isa("resize linear", 4, |kern| {
        let mut y = vec![0.0; 5 * 8];
        kern.resize(
            ResizeMode::Linear,
            CoordMode::AlignCorners,
            sh,
            Src::new(&xb),
            Dst::new(&mut y),
        )
        .unwrap();
        y
    });
    let got: Vec<f32> = (0..5).map(|p| y[p * 8]).collect();
    assert_close("linear", &got, &[0.0, 1.0, 2.0, 4.0, 6.0], 4);
    // Half-pixel bilinear 2x on random data vs formula.
    let (h, w) = (3, 4);
    let x = rng.vec(h * w * 8);
    let sh = ResizeShape {
        blocks: 1,
        in_h: h,
        in_w: w,
        out_h: 2 * h,
        out_w: 2 * w,
    };
    let y = each_isa("resize half-pixel", 4, |kern| {
        let mut y = vec![0.0; 4 * h * w * 8];
        kern.resize(
            ResizeMode::Linear,
            CoordMode::HalfPixel,
            sh,
            Src::new(&x),
            Dst::new(&mut y),
        )
        .unwrap();
        y
    });
    let coord = |o: usize, n: usize| {
        let f = ((o as f64 + 0.5) / 2.0 - 0.5).max(0.0);
        let i0 = (f.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        (i0, i1, if i0 == n - 1 { 0.0 } else { f - f.floor() })
    };
    for oy in 0..2 * h {
        for ox in 0..2 * w {
            let (y0, y1, ty) = coord(oy, h);
            let (x0, x1, tx) = coord(ox, w);
            let p = |iy: usize, ix: usize| x[(iy * w + ix) * 8 + 3] as f64;
            let want = (1.0 - ty) * ((1.0 - tx) * p(y0, x0) + tx * p(y0, x1))
                + ty * ((1.0 - tx) * p(y1, x0) + tx * p(y1, x1));
            assert_close64("half-pixel", &[y[(oy * 2 * w + ox) * 8 + 3]], &[want], 4);
        }
    }
}

#[test]
fn softmax_and_exp() {
    for i in (-870..=880).step_by(if cfg!(miri) { 97 } else { 1 }) {
        let x = i as f32 / 10.0;
        let want = (x as f64).exp();
        let got = expf(x) as f64;
        assert!(
            (got - want).abs() <= 4e-7 * want,
            "expf({x}) = {got}, want {want}"
        );
    }
    let mut rng = Rng::new(17);
    let x: Vec<f32> = (0..1000).map(|_| rng.f() * 20.0).collect();
    let mut y = vec![0.0; 1000];
    Kernels::new().softmax(&x, &mut y).unwrap();
    let max = x.iter().cloned().fold(f32::MIN, f32::max) as f64;
    let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
    let want: Vec<f64> = x.iter().map(|&v| (v as f64 - max).exp() / sum).collect();
    assert_close64("softmax", &y, &want, 1000);
}

/// NaN passes through every epilogue activation on every ISA, as ONNX Runtime's Relu, Clip and
/// HardSigmoid do; infinities saturate.
#[test]
fn activations_propagate_nan_on_every_isa() {
    let acts = [
        Activation::Relu,
        Activation::Clamp { lo: 0.0, hi: 6.0 },
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Activation::HardSwish,
    ];
    let x = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1.0,
        -1.0,
        f32::NAN,
        0.5,
        -0.5,
    ];
    let zero = [0.0f32; 8];
    for isa in Isa::ALL {
        let Some(k) = Kernels::with_isa(isa) else {
            continue;
        };
        for act in acts {
            let mut out = [0.0f32; 8];
            k.binary(BinaryOp::Add, &x, &zero, &mut out, act).unwrap();
            assert!(
                out[0].is_nan() && out[5].is_nan(),
                "{isa:?} {act:?}: {out:?}"
            );
            assert!(
                out[1..5].iter().all(|v| !v.is_nan()) || act == Activation::HardSwish,
                "{isa:?} {act:?}: {out:?}"
            );
        }
    }
}

/// The SE gate and the gate folding split across parts give the serial bits.
#[test]
fn se_gate_and_folding_split_match_serial() {
    let mut rng = Rng::new(41);
    for _ in 0..trials(10) {
        let (c, r) = (rng.range(40, 300), rng.range(8, 80));
        let (cb, rb) = (pad8(c) / 8, pad8(r) / 8);
        let (_, _, reduce) = random_fc(&mut rng, c, r);
        let (_, _, expand) = random_fc(&mut rng, r, c);
        let sums = rng.vec(cb * 8);
        let gate_fn = if rng.bool() {
            Gate::Sigmoid
        } else {
            Gate::Act(Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            })
        };
        let n = rng.range(1, 200);
        let (_, _, packed) = random_fc(&mut rng, c, n);
        for kern in std::iter::once(scalar()).chain(simd_isas()) {
            let shape = SeShape {
                c_blocks: cb,
                r_blocks: rb,
            };
            let mut scratch = vec![0.0; (cb + rb) * 8];
            let mut want = vec![0.0; cb * 8];
            kern.se_gate(
                &sums,
                0.1,
                &reduce,
                &expand,
                shape,
                gate_fn,
                &mut scratch,
                &mut want,
            )
            .unwrap();
            let mut folded = vec![0.0; packed.len()];
            scale_packed_pointwise(&packed, cb * 8, pad8(n), &want, &mut folded).unwrap();
            for fork in forks() {
                let p = Par::new(kern, fork.as_ref()).min_split_macs(0);
                let mut got = vec![0.0; cb * 8];
                p.se_gate(
                    &sums,
                    0.1,
                    &reduce,
                    &expand,
                    shape,
                    gate_fn,
                    &mut scratch,
                    &mut got,
                )
                .unwrap();
                assert!(
                    bits(&got) == bits(&want),
                    "se gate {c}->{r} in {}",
                    fork.parts()
                );
                let mut f2 = vec![f32::NAN; packed.len()];
                p.scale_packed_pointwise(&packed, cb * 8, pad8(n), &got, &mut f2)
                    .unwrap();
                assert!(
                    bits(&f2) == bits(&folded),
                    "folding {c}->{n} in {}",
                    fork.parts()
                );
                let err = p
                    .scale_packed_pointwise(&packed, cb * 8, pad8(n), &got[1..], &mut f2)
                    .unwrap_err();
                assert!(matches!(err, Error::Length { arg: "scale", .. }), "{err:?}");
            }
        }
    }
}
