//! Depthwise kernel (3x3, 5x5, stride 1 and 2, any padding): scalar path vs. a naive NCHW
//! formula, every SIMD path vs. the scalar path.

mod common;
use common::*;

#[test]
fn depthwise_scalar_matches_formula() {
    let mut rng = Rng::new(4);
    for _ in 0..trials(80) {
        let c = DwCase::random(&mut rng, 20, 13);
        let (y, sums) = c.run(scalar());
        let (want, want_sums) = c.naive();
        assert_close64(
            &format!("depthwise {:?}", c.shape),
            &c.logical(&y),
            &want,
            25,
        );
        if c.sums {
            let ohw = c.shape.out_h() * c.shape.out_w();
            assert_close64("sums", &sums[..c.c], &want_sums, 25 * ohw);
        }
    }
}

#[test]
fn depthwise_simd_matches_scalar() {
    let mut rng = Rng::new(5);
    for _ in 0..trials(80) {
        let c = DwCase::random(&mut rng, 20, 24);
        let (y0, s0) = c.run(scalar());
        for kern in simd_isas() {
            let (y, s) = c.run(kern);
            let what = format!("{:?} depthwise {:?}", kern.isa(), c.shape);
            assert_close(&what, &y, &y0, 25);
            assert_close(&what, &s, &s0, 25 * y.len());
        }
    }
}
