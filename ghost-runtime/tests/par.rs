//! Split kernels (`Par`, `par_images`): every split gives the serial bits, length errors come
//! back before any part runs, and small layers are not split.

mod common;
use common::*;
use ghost_runtime::*;

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

#[test]
fn gated_ghost_and_dfc_gate_par_are_bit_identical() {
    let mut rng = Rng::new(34);
    let forks = forks();
    for t in 0..trials(30) {
        // Some tall cases with one block per half, so 2 and 3 parts split by rows.
        let mut c = if t % 3 == 0 {
            let (h, w) = (rng.range(8, 60), rng.range(8, 40));
            GhostCase::random_hw(&mut rng, 20, 8, h, w)
        } else {
            GhostCase::random(&mut rng, 50, 60, 30)
        };
        c.sums = false;
        let sh = c.gate_shape();
        let g = rng.vec(sh.blocks * sh.gate_h * sh.gate_w * 8);
        let what = format!("gated ghost {:?} res={}", c.shape, c.res.is_some());
        assert_split_bits(&forks, &what, |e| c.run_gated(e, &g));
        // A gate taken as already activated (any values do for the splits' bits).
        assert_split_bits(&forks, &format!("{what} activated"), |e| {
            c.run_gated_in(e, &mut g.clone(), true)
        });
        let y0 = rng.vec(sh.blocks * sh.h * sh.w * 8);
        assert_split_bits(&forks, &format!("dfc_gate {sh:?}"), |e| {
            let (mut y, mut g) = (y0.clone(), g.clone());
            match e {
                Exec::Serial(k) => k.dfc_gate(&mut g, sh, Dst::new(&mut y)),
                Exec::Par(p) => p.dfc_gate(&mut g, sh, Dst::new(&mut y)),
            }
            .unwrap();
            (y, g)
        });
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
        let acts = SeActivations {
            inner: if rng.bool() {
                Activation::Relu
            } else {
                Activation::Silu
            },
            gate: if rng.bool() {
                Activation::Sigmoid
            } else {
                Activation::HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                }
            },
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
                acts,
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
                    acts,
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

/// Two inputs and two outputs of different per-image sizes: each image sees its own slice of
/// every tensor, whatever the split; mismatched image counts are refused before any part runs.
#[test]
fn par_images_io_splits_every_tensor_by_image() {
    let mut rng = Rng::new(41);
    let (a, b) = (rng.vec(6 * 3), rng.vec(6 * 2));
    let f = |x: &[&[f32]; 2], y: &mut [&mut [f32]; 2], s: &mut [f32]| -> Result<(), Error> {
        s[0] = x[0].iter().sum::<f32>();
        y[0][0] = s[0] * x[1][0];
        y[1].copy_from_slice(&[x[1][1], x[0][2], s[0]]);
        Ok(())
    };
    let want: (Vec<f32>, Vec<f32>) = {
        let (mut p, mut q) = (vec![0.0; 6], vec![0.0; 6 * 3]);
        for i in 0..6 {
            let sum: f32 = a[i * 3..i * 3 + 3].iter().sum();
            p[i] = sum * b[i * 2];
            q[i * 3..i * 3 + 3].copy_from_slice(&[b[i * 2 + 1], a[i * 3 + 2], sum]);
        }
        (p, q)
    };
    for fork in forks() {
        let (mut p, mut q) = (vec![0.0; 6], vec![0.0; 6 * 3]);
        let mut scratch = vec![0.0; 4 * fork.parts()];
        par_images_io(
            fork.as_ref(),
            [&a, &b],
            [3, 2],
            [&mut p, &mut q],
            [1, 3],
            &mut scratch,
            4,
            &f,
        )
        .unwrap();
        assert!(
            bits(&p) == bits(&want.0) && bits(&q) == bits(&want.1),
            "{} parts",
            fork.parts()
        );
        let err = par_images_io(
            fork.as_ref(),
            [&a, &b[..10]],
            [3, 2],
            [&mut p, &mut q],
            [1, 3],
            &mut scratch,
            4,
            &f,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Shape { arg: "inputs", .. }), "{err:?}");
        let err = par_images_io(
            fork.as_ref(),
            [&a, &b],
            [3, 2],
            [&mut p, &mut q[..17]],
            [1, 3],
            &mut scratch,
            4,
            &f,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Length { arg: "outputs", .. }),
            "{err:?}"
        );
    }
}
