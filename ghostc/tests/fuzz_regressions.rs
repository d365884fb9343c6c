//! One test per finding of the cargo-fuzz targets (`fuzz/README.md`), through the stable API
//! (no fuzzing machinery): the exact input, committed under `fuzz/regressions/` or built here,
//! and the behaviour required since the fix.

use ghost_runtime::*;

/// Shape parameters the `kernels` target's wild mode found overflowing the length checks of
/// ghost-runtime's safe API (`attempt to multiply with overflow` under overflow checks; in
/// release the product wrapped to a small length that short slices passed, after which the
/// kernel ran far outside them). Each must now be an `Err`.
#[test]
fn kernels_reject_shapes_whose_size_overflows() {
    let k = Kernels::new();
    let x = vec![0.5f32; 256];
    let mut y = vec![0.0f32; 256];
    let mut s = vec![0.0f32; 64];
    let mut scr = vec![0.0f32; 256];
    let big = (usize::MAX >> 3) + 1; // times 8 wraps to 0
    let huge = usize::MAX;
    let act = Activation::Relu;
    let epi = || Epilogue::act(Activation::None);

    assert!(k
        .pointwise(
            &x,
            PointwiseShape {
                k_blocks: 1,
                n_blocks: 1,
                pixels: big,
            },
            Src::new(&x),
            Dst::new(&mut y),
            epi(),
        )
        .is_err());
    assert!(k
        .pointwise(
            &x,
            PointwiseShape {
                k_blocks: big,
                n_blocks: 1,
                pixels: 1,
            },
            Src::new(&x),
            Dst::new(&mut y),
            epi(),
        )
        .is_err());
    assert!(k
        .pointwise(
            &x,
            PointwiseShape {
                k_blocks: 1,
                n_blocks: 1,
                pixels: 1,
            },
            Src::at(&x, huge),
            Dst::new(&mut y),
            epi(),
        )
        .is_err());
    assert!(k
        .depthwise(
            &x,
            DepthwiseShape::same(1, huge, 3, 3, 1),
            Src::new(&x),
            Dst::new(&mut y),
            epi(),
        )
        .is_err());
    assert!(k
        .depthwise(
            &x,
            DepthwiseShape::same(big, 1, 1, 3, 1),
            Src::new(&x),
            Dst::new(&mut y),
            epi(),
        )
        .is_err());
    assert!(k
        .ghost(
            &x,
            &x,
            GhostShape {
                k_blocks: 1,
                half_blocks: big,
                h: 1,
                w: 1,
            },
            Src::new(&x),
            Dst::new(&mut y),
            GhostEpilogue {
                primary: act,
                cheap: act,
                residual: None,
                channel_sums: Some(&mut s),
            },
            &mut scr,
        )
        .is_err());
    for (cin, in_h, kh, pads) in [
        (big, 1, 1, [0; 4]),
        (1, huge, 1, [0; 4]),
        (1, 1, 2, [1, 0, huge, 0]),
    ] {
        for layout in [InputLayout::Nchw, InputLayout::Nchw8c] {
            let shape = ConvShape {
                cin,
                layout,
                in_h,
                in_w: 1,
                out_blocks: 1,
                kh,
                kw: 1,
                stride_h: 1,
                stride_w: 1,
                pads,
            };
            let r = k.conv(&x, shape, Src::new(&x), Dst::new(&mut y), epi());
            assert!(r.is_err(), "{shape:?}");
        }
    }
    assert!(k
        .conv_general(
            &x,
            &x,
            GeneralConvShape {
                cin: 1,
                cout: 1,
                groups: 1,
                in_h: 1,
                in_w: 1,
                kh: big,
                kw: 8,
                stride: [1, 1],
                dilation: [huge, 1],
                pads: [0; 4],
            },
            Src::new(&x),
            Dst::new(&mut y),
            epi(),
        )
        .is_err());
    assert!(k.fc(&x, big, 1, &x, &mut y, act).is_err());
    assert!(k.fc(&x, 1, big, &x, &mut y, act).is_err());
    assert!(k
        .se_gate(
            &x,
            1.0,
            &x,
            &x,
            SeShape {
                c_blocks: big,
                r_blocks: 1,
            },
            SeActivations {
                inner: Activation::Relu,
                gate: Activation::Sigmoid,
            },
            &mut scr,
            &mut s,
        )
        .is_err());
    assert!(k.global_avg_pool(Src::new(&x), big, 1, &mut s).is_err());
    assert!(k
        .pool(
            PoolKind::Max,
            PoolShape {
                blocks: 1,
                in_h: huge,
                in_w: 1,
                kh: 1,
                kw: 1,
                stride: [1, 1],
                pads: [0, 0, huge, 0],
            },
            Src::new(&x),
            Dst::new(&mut y),
        )
        .is_err());
    assert!(k
        .channel_assign(BinaryOp::Add, &mut y, big, 1, &x, act)
        .is_err());
    assert!(k
        .resize(
            ResizeMode::Linear,
            CoordMode::HalfPixel,
            ResizeShape {
                blocks: 1,
                in_h: 1 << 40,
                in_w: 1 << 40,
                out_h: 1,
                out_w: 1,
            },
            Src::new(&x),
            Dst::new(&mut y),
        )
        .is_err());
    assert!(k
        .upsample2x_nearest(1, 1 << 62, 1, Src::new(&x), Dst::new(&mut y))
        .is_err());
    assert!(nchw_to_nchw8c(&x, big, 8, &mut y).is_err());
    assert!(nchw8c_to_nchw(&x, 1, big, &mut y).is_err());
    assert!(pack_pointwise(&x, &x, usize::MAX - 7, 8, &mut y).is_err());
    assert!(pack_depthwise(&x, &x, 8, 1 << 32, &mut y).is_err());
    assert!(pack_conv(&x, &x, big, 8, 1, 1, &mut y).is_err());
    assert!(scale_packed_pointwise(&x, usize::MAX - 7, 8, &x, &mut y).is_err());
}

/// Empty images left `blocks` / `channels` unbounded by the slices, so these calls looped
/// about 2^64 times over nothing (a fuzzer timeout). They must return at once.
#[test]
fn kernels_with_empty_images_return_at_once() {
    let k = Kernels::new();
    let x = vec![0.5f32; 64];
    let mut y = vec![0.0f32; 64];
    let start = std::time::Instant::now();
    assert!(k
        .upsample2x_nearest(1 << 31, 1 << 61, 0, Src::new(&x), Dst::new(&mut y))
        .is_err());
    assert!(nchw_to_nchw8c(&x, usize::MAX - 7, 0, &mut y).is_ok());
    assert!(nchw8c_to_nchw(&x, usize::MAX - 7, 0, &mut y).is_ok());
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

/// `kernels` crash-a89b3942fdb86f75944e285ce33a6e016a04cb97 (run #7): `resize` with no
/// channel blocks, whose slices therefore bound no extent, multiplied `in_h * in_w` before its
/// block loop (`attempt to multiply with overflow` under overflow checks); `pool` had the same
/// product. Zero blocks of any extent must be an empty call. Only a build with overflow checks
/// can fail this (release wraps the unused product): CI runs this file in the dev profile.
#[test]
fn zero_blocks_of_an_overflowing_extent_is_an_empty_call() {
    let huge = usize::MAX / 3;
    let mut none: [f32; 0] = [];
    for k in Isa::ALL.iter().filter_map(|&isa| Kernels::with_isa(isa)) {
        for mode in [ResizeMode::Linear, ResizeMode::Nearest(NearestMode::Floor)] {
            let sh = ResizeShape {
                blocks: 0,
                in_h: huge,
                in_w: huge,
                out_h: huge,
                out_w: 7,
            };
            k.resize(
                mode,
                CoordMode::HalfPixel,
                sh,
                Src::new(&[]),
                Dst::new(&mut none),
            )
            .unwrap();
        }
        for kind in [
            PoolKind::Max,
            PoolKind::Avg {
                count_include_pad: true,
            },
        ] {
            let sh = PoolShape {
                blocks: 0,
                in_h: huge,
                in_w: huge,
                kh: 1,
                kw: 1,
                stride: [1, 1],
                pads: [0; 4],
            };
            k.pool(kind, sh, Src::new(&[]), Dst::new(&mut none))
                .unwrap();
        }
    }
}

/// `kernels` crash-6c3066523c5de3c523f68f27126833672a8c9498: `se_gate` with a short `reduce`
/// (or `expand`) weight returned `Err` only after writing the pooled means into `scratch`,
/// against the contract that an error means nothing was written.
#[test]
fn se_gate_rejects_short_weights_before_writing() {
    let k = Kernels::new();
    let (cb, rb) = (8, 4);
    let (c, r) = (cb * 8, rb * 8);
    let sums = vec![1.0f32; c];
    let reduce = vec![0.1f32; pointwise_packed_len(c, r)];
    let expand = vec![0.1f32; pointwise_packed_len(r, c)];
    let shape = SeShape {
        c_blocks: cb,
        r_blocks: rb,
    };
    for (short_reduce, short_expand) in [(true, false), (false, true)] {
        let red = &reduce[..reduce.len() - usize::from(short_reduce)];
        let exp = &expand[..expand.len() - usize::from(short_expand)];
        let mut scratch = vec![7.0f32; c + r];
        let mut gate = vec![7.0f32; c];
        let err = k
            .se_gate(
                &sums,
                0.5,
                red,
                exp,
                shape,
                SeActivations {
                    inner: Activation::Silu,
                    gate: Activation::Sigmoid,
                },
                &mut scratch,
                &mut gate,
            )
            .unwrap_err();
        let arg = if short_reduce { "reduce" } else { "expand" };
        assert!(
            matches!(err, Error::Length { arg: a, .. } if a == arg),
            "{err:?}"
        );
        assert!(scratch.iter().all(|&v| v == 7.0), "scratch was written");
        assert!(gate.iter().all(|&v| v == 7.0), "gate was written");
    }
}

/// Runs the parts one after another, last first, on the calling thread.
struct Reverse(usize);

impl Fork for Reverse {
    fn parts(&self) -> usize {
        self.0
    }
    fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        for i in (0..self.0).rev() {
            f(i);
        }
    }
}

/// `n` values in `[-0.5, 0.5)`, the same for the same seed.
fn data(n: usize, seed: u64) -> Vec<f32> {
    ghostc_testkit::Rng::new(seed).vec(n, -0.5, 0.5)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// `kernels` crash-402f3468f7de8aa21f7f550374b30af64fcaf0ed: a Ghost module with channel sums
/// (2 half blocks, 4 input blocks, 2x116 pixels, HardSwish, residual) split by `Par` into 4
/// parts gave channel sums that differed in the last bits from the whole layer: the 1x1 summed
/// each tile's rows in registers before adding them to memory, and the tile height depends on
/// how many blocks a share has. `Par` promises bit-identical results for any part count.
#[test]
fn split_layers_with_channel_sums_are_bit_identical() {
    let isas = [Kernels::with_isa(Isa::Scalar).unwrap(), Kernels::new()];
    let act = Activation::HardSwish;
    // Ghost module, as in the crash.
    let (kb, nb, h, w) = (4, 2, 2, 116);
    let hw = h * w;
    let mut pw = vec![0.0; pointwise_packed_len(kb * 8, nb * 8)];
    pack_pointwise(
        &data(kb * nb * 64, 1),
        &data(nb * 8, 2),
        kb * 8,
        nb * 8,
        &mut pw,
    )
    .unwrap();
    let mut dw = vec![0.0; depthwise_packed_len(nb * 8, 3)];
    pack_depthwise(&data(nb * 72, 3), &data(nb * 8, 4), nb * 8, 3, &mut dw).unwrap();
    let x = data((1 + kb) * hw * 8, 5);
    let res = data((1 + 2 * nb) * hw * 8, 6);
    let shape = GhostShape {
        k_blocks: kb,
        half_blocks: nb,
        h,
        w,
    };
    let ghost = |par: Option<Par<'_>>, k: Kernels| {
        let mut y = vec![7.0; (1 + 2 * nb) * hw * 8];
        let mut sums = vec![0.0; 2 * nb * 8];
        let mut scratch = vec![0.0; ghost_scratch_len(shape)];
        let epi = GhostEpilogue {
            primary: act,
            cheap: act,
            residual: Some(Src::at(&res, 1)),
            channel_sums: Some(&mut sums),
        };
        let (src, dst) = (Src::at(&x, 1), Dst::at(&mut y, 1));
        match par {
            Some(p) => p.ghost(&pw, &dw, shape, src, dst, epi, &mut scratch),
            None => k.ghost(&pw, &dw, shape, src, dst, epi, &mut scratch),
        }
        .unwrap();
        (y, sums)
    };
    // A pointwise layer with sums, split by output blocks.
    let (pk, pn, px) = (4, 7, 200);
    let mut pp = vec![0.0; pointwise_packed_len(pk * 8, pn * 8)];
    pack_pointwise(
        &data(pk * pn * 64, 7),
        &data(pn * 8, 8),
        pk * 8,
        pn * 8,
        &mut pp,
    )
    .unwrap();
    let px_in = data(pk * px * 8, 9);
    let pointwise = |par: Option<Par<'_>>, k: Kernels| {
        let mut y = vec![7.0; pn * px * 8];
        let mut sums = vec![0.0; pn * 8];
        let shape = PointwiseShape {
            k_blocks: pk,
            n_blocks: pn,
            pixels: px,
        };
        let epi = Epilogue {
            activation: act,
            residual: None,
            channel_sums: Some(&mut sums),
        };
        let (src, dst) = (Src::new(&px_in), Dst::new(&mut y));
        match par {
            Some(p) => p.pointwise(&pp, shape, src, dst, epi),
            None => k.pointwise(&pp, shape, src, dst, epi),
        }
        .unwrap();
        (y, sums)
    };
    for k in isas {
        let (gy, gs) = ghost(None, k);
        let (py, ps) = pointwise(None, k);
        for parts in 2..=7 {
            let fork = Reverse(parts);
            let (y, s) = ghost(Some(Par::new(k, &fork)), k);
            assert!(
                bits(&y) == bits(&gy),
                "{:?} ghost output, {parts} parts",
                k.isa()
            );
            assert!(
                bits(&s) == bits(&gs),
                "{:?} ghost sums, {parts} parts",
                k.isa()
            );
            let (y, s) = pointwise(Some(Par::new(k, &fork)), k);
            assert!(
                bits(&y) == bits(&py),
                "{:?} pointwise output, {parts} parts",
                k.isa()
            );
            assert!(
                bits(&s) == bits(&ps),
                "{:?} pointwise sums, {parts} parts",
                k.isa()
            );
        }
    }
}

/// `structured` crash-7a3b5eb47dd7c26bfcaec8acd7e64b303215906e
/// (`fuzz/regressions/structured-7a3b5eb4-channel-multiplier.onnx`): a grouped conv with
/// `group == cin == 2` and 36 outputs (a depthwise conv with channel multiplier 18) was given
/// its input's 2-channel layout, so lowering the Ghost module it feeds indexed past the layout
/// (`index out of bounds: the len is 2 but the index is 2` in `permute_matrix`). The model must
/// go through import, every pass and lowering without a panic, and compile.
#[test]
fn conv_with_channel_multiplier_gets_its_own_layout() {
    compile(include_bytes!(
        "../../fuzz/regressions/structured-7a3b5eb4-channel-multiplier.onnx"
    ));
}

/// Import (every pass verified), lowering and code generation of a model, as the fuzz
/// pipeline runs them: each step must succeed and the generated source parse.
fn compile(bytes: &[u8]) -> ghostc::plan::program::Program {
    use ghostc::codegen::emit::{emit, WeightsPath};
    use ghostc::onnx::{import_bytes, ImportOptions};
    use ghostc::passes::{optimize, PassOptions};

    let mut g = import_bytes(bytes, None, &ImportOptions::default()).unwrap();
    let opts = PassOptions {
        verify_each: true,
        ..PassOptions::default()
    };
    optimize(&mut g, &opts).unwrap();
    let program = ghostc::plan::lower::lower(&g).unwrap();
    let source = emit(
        &program,
        &WeightsPath::Relative("model.weights".into()),
        &"0".repeat(64),
    )
    .unwrap();
    syn::parse_file(&source).unwrap();
    program
}

/// Found while adding QDQ convs with hostile parameters to the `codegen` generator
/// (`fuzz/src/gen/quant.rs`: a subnormal output scale); input
/// `fuzz/regressions/qdq-subnormal-output-scale.onnx`, a 1x1 and a depthwise 3x3 QDQ conv
/// whose output scales are 4e-45. Every scale is positive and finite, so import accepts the
/// model, but the requantization scale `x_scale * w_scale / y_scale` is infinite: the int8
/// packers refused it and lowering failed with "the runtime rejected packed weights ... this
/// is a ghostc bug". Both convs must now run as the f32 fallback (which saturates, as ONNX
/// Runtime does) and the model compile.
#[test]
fn qconv_whose_requant_scale_overflows_falls_back_to_f32() {
    let program = compile(include_bytes!(
        "../../fuzz/regressions/qdq-subnormal-output-scale.onnx"
    ));
    let whats: Vec<&str> = program.steps.iter().map(|s| s.what.as_str()).collect();
    assert!(
        !whats
            .iter()
            .any(|w| w.starts_with("int8 pointwise") || w.starts_with("int8 depthwise")),
        "no conv may use an int8 kernel: {whats:?}"
    );
    assert!(
        whats.iter().filter(|w| w.contains("int8 fallback")).count() >= 2,
        "both convs run as the f32 fallback: {whats:?}"
    );
}

/// `kernels` crash-286c57fa9a4f178adde35994d20de61fb399410b (run #9): `conv_general` with a
/// dilation near `usize::MAX / 2` over small slices computed `kx * dilation` (`attempt to
/// multiply with overflow` under overflow checks; release wrapped it to a tap inside the
/// image and returned a wrong value). Shapes whose tap positions do not fit are errors now.
#[test]
fn conv_general_rejects_dilations_that_overflow_the_tap_positions() {
    let x = [0.5f32; 8];
    let (w, b) = ([1.0f32; 3], [0.0f32; 1]);
    for k in Isa::ALL.iter().filter_map(|&isa| Kernels::with_isa(isa)) {
        for dilation in [[1, usize::MAX / 2 + 1], [usize::MAX / 2 + 1, 1]] {
            let (kh, kw) = if dilation[0] > 1 { (3, 1) } else { (1, 3) };
            let sh = GeneralConvShape {
                cin: 1,
                cout: 1,
                groups: 1,
                in_h: 1,
                in_w: 1,
                kh,
                kw,
                stride: [1, 1],
                dilation,
                pads: [0; 4],
            };
            let mut y = [7.0f32; 8];
            let r = k.conv_general(
                &w,
                &b,
                sh,
                Src::new(&x),
                Dst::new(&mut y),
                Epilogue::act(Activation::None),
            );
            assert!(r.is_err(), "{:?} {dilation:?}: {r:?}", k.isa());
            assert_eq!(y, [7.0; 8], "nothing written");
        }
    }
}
