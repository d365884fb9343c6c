//! Resize: nearest vs. the dedicated 2x upsample, bilinear align-corners and half-pixel vs.
//! the formula, on every ISA.

mod common;
use common::*;
use ghost_runtime::*;

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

/// Bicubic on every ISA against an f64 formula (Keys' kernel, edge taps clamped or, with
/// `exclude_outside`, dropped and renormalized), up and down, odd sizes, every lane.
#[test]
fn resize_cubic_matches_the_keys_formula() {
    let mut rng = Rng::new(61);
    let keys = |t: f64, a: f64| {
        let t = t.abs();
        if t <= 1.0 {
            ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
        } else if t < 2.0 {
            ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
        } else {
            0.0
        }
    };
    for (h, w, oh, ow, a, exclude) in [
        (5, 3, 11, 7, -0.75, false),
        (6, 7, 4, 3, -0.5, true),
        (4, 4, 8, 8, -0.75, true),
    ] {
        let x = rng.vec(h * w * 8);
        let sh = ResizeShape {
            blocks: 1,
            in_h: h,
            in_w: w,
            out_h: oh,
            out_w: ow,
        };
        let mode = ResizeMode::Cubic {
            a: a as f32,
            exclude_outside: exclude,
        };
        let y = each_isa("resize cubic", 8, |kern| {
            let mut y = vec![0.0; oh * ow * 8];
            kern.resize(
                mode,
                CoordMode::HalfPixel,
                sh,
                Src::new(&x),
                Dst::new(&mut y),
            )
            .unwrap();
            y
        });
        let taps = |o: usize, n: usize, m: usize| -> Vec<(usize, f64)> {
            let f = (o as f64 + 0.5) * n as f64 / m as f64 - 0.5;
            let base = f.floor();
            let mut t: Vec<(usize, f64)> = (-1..3)
                .filter_map(|k| {
                    let pos = base as i64 + k;
                    let inside = (0..n as i64).contains(&pos);
                    (!exclude || inside).then(|| {
                        let wgt = keys(f - pos as f64, a);
                        (pos.clamp(0, n as i64 - 1) as usize, wgt)
                    })
                })
                .collect();
            if exclude {
                let total: f64 = t.iter().map(|p| p.1).sum();
                t.iter_mut().for_each(|p| p.1 /= total);
            }
            t
        };
        for oy in 0..oh {
            for ox in 0..ow {
                for l in 0..8 {
                    let mut want = 0.0;
                    for &(iy, wy) in &taps(oy, h, oh) {
                        for &(ix, wx) in &taps(ox, w, ow) {
                            want += wy * wx * x[(iy * w + ix) * 8 + l] as f64;
                        }
                    }
                    let got = y[(oy * ow + ox) * 8 + l];
                    assert!(
                        (got as f64 - want).abs() <= 2e-6,
                        "{h}x{w} -> {oh}x{ow} a={a} exclude={exclude} ({oy}, {ox}) lane {l}: \
                         {got} vs {want}"
                    );
                }
            }
        }
    }
}
