//! Windowed max/average pooling and global average pooling against the naive formula.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn pooling_matches_formula() {
    let mut rng = Rng::new(14);
    for _ in 0..trials(90) {
        let c = rng.range(1, 17);
        let cp = pad8(c);
        // Square 2x2 and 3x3 windows half the time: they have a straight-line path for the
        // pixels whose window lies inside the image (the others take the clipped path).
        let (kh, kw) = if rng.bool() {
            let k = rng.range(2, 3);
            (k, k)
        } else {
            (rng.range(1, 3), rng.range(1, 3))
        };
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
