//! Fused Ghost module (1x1 primary + 3x3 depthwise cheap half): scalar path vs. the naive
//! two-conv formula, every SIMD path vs. the scalar path, including rows wide enough to wrap
//! the band ring buffer.

mod common;
use common::*;

#[test]
fn ghost_scalar_matches_formula() {
    let mut rng = Rng::new(6);
    for _ in 0..trials(40) {
        let c = GhostCase::random(&mut rng, 30, 20, 14);
        let (y, sums) = c.run(scalar());
        let want = c.naive();
        let what = format!(
            "ghost {:?} res={} c1={} k={}",
            c.shape,
            c.res.is_some(),
            c.c1,
            c.k
        );
        assert_close64(&what, &c.logical(&y), &want, 9 * c.k);
        if c.sums {
            let hw = c.shape.h * c.shape.w;
            let cp = pad8(c.c1);
            for half in 0..2 {
                for ch in 0..c.c1 {
                    let s: f64 = want[(half * c.c1 + ch) * hw..][..hw].iter().sum();
                    assert_close64(&what, &[sums[half * cp + ch]], &[s], 9 * c.k * hw);
                }
            }
        }
    }
}

#[test]
fn ghost_simd_matches_scalar() {
    let mut rng = Rng::new(7);
    for _ in 0..trials(50) {
        let c = GhostCase::random(&mut rng, 50, 40, 30);
        let (y0, s0) = c.run(scalar());
        for kern in simd_isas() {
            let (y, s) = c.run(kern);
            let what = format!("{:?} ghost {:?}", kern.isa(), c.shape);
            assert_close(&what, &y, &y0, 9 * c.k);
            assert_close(&what, &s, &s0, 9 * c.k * y.len());
        }
    }
}

/// Wide rows make bands of 2-3 rows, so the residual ring buffer wraps several times.
#[test]
fn ghost_wide_rows_use_several_bands() {
    let mut rng = Rng::new(8);
    for _ in 0..trials(6) {
        // Bands hold ~896 pixels (8 rows at w = 112), so these heights give 3-6 bands and the
        // 3-slot ring wraps. Under Miri: the smallest shape that still wraps it (4 bands).
        let (h, w, max_c) = if cfg!(miri) {
            (25, 112, 8)
        } else {
            (rng.range(25, 45), rng.range(75, 120), 12)
        };
        let c = GhostCase::random_hw(&mut rng, max_c, max_c, h, w);
        let (y0, s0) = c.run(scalar());
        let want = c.naive();
        let what = format!("ghost {:?} res={}", c.shape, c.res.is_some());
        assert_close64(&what, &c.logical(&y0), &want, 9 * c.k);
        for kern in simd_isas() {
            let (y, s) = c.run(kern);
            assert_close(&format!("{:?} {what}", kern.isa()), &y, &y0, 9 * c.k);
            assert_close(
                &format!("{:?} {what}", kern.isa()),
                &s,
                &s0,
                9 * c.k * y.len(),
            );
        }
    }
}
