//! The DFC gate kernel against an f64 scalar reference (sigmoid, PyTorch's nearest mapping
//! `floor(o * in / out)`, multiply) on odd shapes, every ISA; and its length checks.

mod common;
use common::*;
use ghost_runtime::*;

/// PyTorch `F.interpolate(mode='nearest')` source index: `floor(o * in / out)`.
fn src(o: usize, len_in: usize, len_out: usize) -> usize {
    ((o as f64 * len_in as f64 / len_out as f64).floor() as usize).min(len_in - 1)
}

#[test]
fn matches_reference() {
    let mut rng = Rng::new(51);
    // (channels, gate h, gate w, h, w): GhostNetV2's 2x and the last stage's 3 -> 7, a
    // non-integer 2x3 -> 5x6, channels not a multiple of 8, a 1x1 gate.
    for &(c, gh, gw, h, w) in &[
        (16usize, 4, 4, 8, 8),
        (24, 3, 3, 7, 7),
        (13, 2, 3, 5, 6),
        (8, 1, 1, 3, 2),
        (40, 14, 14, 28, 28),
    ] {
        let blocks = c.div_ceil(8);
        let g0 = rng.vec(blocks * gh * gw * 8);
        let y0 = rng.vec((1 + blocks) * h * w * 8);
        for kern in all_isas() {
            let mut g = g0.clone();
            let mut y = y0.clone();
            let shape = DfcShape {
                blocks,
                gate_h: gh,
                gate_w: gw,
                h,
                w,
                coord: CoordMode::Asymmetric,
                nearest: NearestMode::Floor,
            };
            kern.dfc_gate(&mut g, shape, Dst::at(&mut y, 1)).unwrap();
            let what = format!("{:?} c{c} {gh}x{gw} -> {h}x{w}", kern.isa());
            let (ghw, hw) = (gh * gw, h * w);
            // Block 0 of y is outside the view: untouched.
            assert!(bits(&y[..hw * 8]) == bits(&y0[..hw * 8]), "{what}");
            let mut want = Vec::new();
            let mut got = Vec::new();
            for ch in 0..blocks * 8 {
                for oy in 0..h {
                    for ox in 0..w {
                        let gv = g0[at(ghw, ch, src(oy, gh, h) * gw + src(ox, gw, w))] as f64;
                        let sig = 1.0 / (1.0 + (-gv).exp());
                        want.push(y0[hw * 8 + at(hw, ch, oy * w + ox)] as f64 * sig);
                        got.push(y[hw * 8 + at(hw, ch, oy * w + ox)]);
                    }
                }
            }
            assert_close64(&what, &got, &want, 4);
        }
    }
}

#[test]
fn lengths_are_checked() {
    let k = scalar();
    let shape = DfcShape {
        blocks: 2,
        gate_h: 3,
        gate_w: 3,
        h: 7,
        w: 7,
        coord: CoordMode::Asymmetric,
        nearest: NearestMode::Floor,
    };
    let mut g = vec![0.0; 2 * 9 * 8];
    let mut y = vec![0.0; 2 * 49 * 8];
    assert!(k.dfc_gate(&mut g, shape, Dst::new(&mut y)).is_ok());
    assert!(k.dfc_gate(&mut g[1..], shape, Dst::new(&mut y)).is_err());
    assert!(k.dfc_gate(&mut g, shape, Dst::new(&mut y[1..])).is_err());
    let empty = DfcShape { gate_w: 0, ..shape };
    assert!(k.dfc_gate(&mut g, empty, Dst::new(&mut y)).is_err());
}
