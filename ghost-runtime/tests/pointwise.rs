//! Pointwise (1x1) kernel: scalar path vs. a naive NCHW formula, every SIMD path vs. the
//! scalar path, on randomized shapes (channels not multiples of 8, all epilogues, block
//! offsets); short slices are errors.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn pointwise_scalar_matches_formula() {
    let mut rng = Rng::new(2);
    for _ in 0..trials(60) {
        let c = PwCase::random(&mut rng, 40, 40, 20);
        let (y, sums) = c.run(scalar());
        let (want, want_sums) = c.naive();
        assert_close64("pointwise", &c.logical(&y), &want, c.k);
        // Blocks outside the written range are untouched.
        for (i, v) in y.iter().enumerate() {
            let blk = i / (c.px * 8);
            if blk < c.y_off || blk >= c.y_off + pad8(c.n) / 8 {
                assert_eq!(*v, 7.0);
            }
        }
        if c.sums {
            assert_close64("sums", &sums[..c.n], &want_sums, c.k * c.px);
        }
    }
}

#[test]
fn pointwise_simd_matches_scalar() {
    let mut rng = Rng::new(3);
    for _ in 0..trials(80) {
        let c = PwCase::random(&mut rng, 70, 70, 40);
        let (y0, s0) = c.run(scalar());
        for kern in simd_isas() {
            let (y, s) = c.run(kern);
            assert_close(&format!("{:?} pointwise", kern.isa()), &y, &y0, c.k);
            assert_close(&format!("{:?} sums", kern.isa()), &s, &s0, c.k * c.px);
        }
    }
}

/// With AVX-512 the SiLU, sigmoid and GELU epilogues run on zmm registers (two blocks at once),
/// on AVX2 on blocks: the same arithmetic per lane, so the same bits (odd block counts mix
/// both).
#[test]
fn pointwise_logistic_on_zmm_equals_blocks() {
    let (Some(wide), Some(narrow)) = (Kernels::with_isa(Isa::Avx512), Kernels::with_isa(Isa::Avx2))
    else {
        return;
    };
    let mut rng = Rng::new(31);
    for t in 0..trials(60) {
        let mut c = PwCase::random(&mut rng, 70, 70, 40);
        c.act = [Activation::Silu, Activation::Sigmoid, Activation::Gelu][t % 3];
        // Outputs only: the pooled sums add rows in tiles of another height on each path.
        let (a, _) = c.run(wide);
        let (b, _) = c.run(narrow);
        assert!(
            bits(&a) == bits(&b),
            "{:?} k={} n={} px={}",
            c.act,
            c.k,
            c.n,
            c.px
        );
    }
}

#[test]
fn pointwise_rejects_short_slices() {
    let k = scalar();
    let packed = vec![0.0; pointwise_packed_len(8, 8)];
    let x = vec![0.0; 8 * 4];
    let mut y = vec![0.0; 8 * 3];
    let err = k
        .pointwise(
            &packed,
            PointwiseShape {
                k_blocks: 1,
                n_blocks: 1,
                pixels: 4,
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
            expected: 32,
            actual: 24
        }
    );
}
