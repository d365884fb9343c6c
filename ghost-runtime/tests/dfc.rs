//! The DFC gate kernel against an f64 scalar reference (sigmoid, PyTorch's nearest mapping
//! `floor(o * in / out)`, multiply) on odd shapes, every ISA; and its length checks. The gated
//! Ghost module against the plain module followed by that reference, on odd shapes with one
//! and several bands, with and without residual, and bit for bit against `ghost` + `dfc_gate`.

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
    // non-integer 2x3 -> 5x6, channels not a multiple of 8, a 1x1 gate, rows wider than the
    // kernel's 64-column chunk (two chunks, the second a partial one).
    for &(c, gh, gw, h, w) in &[
        (16usize, 4, 4, 8, 8),
        (24, 3, 3, 7, 7),
        (13, 2, 3, 5, 6),
        (8, 1, 1, 3, 2),
        (40, 14, 14, 28, 28),
        (11, 3, 47, 5, 93),
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

/// `sigmoid(g)` nearest-upsampled times `y`, in f64, over NCHW8c `y` of `blocks` blocks
/// (in `y`'s own NCHW8c order).
fn gate_reference(y: &[f32], g: &[f32], sh: DfcShape) -> Vec<f64> {
    let (ghw, hw) = (sh.gate_h * sh.gate_w, sh.h * sh.w);
    let mut out = vec![0.0; sh.blocks * hw * 8];
    for ch in 0..sh.blocks * 8 {
        for oy in 0..sh.h {
            for ox in 0..sh.w {
                let gy = src(oy, sh.gate_h, sh.h);
                let gx = src(ox, sh.gate_w, sh.w);
                let gv = g[at(ghw, ch, gy * sh.gate_w + gx)] as f64;
                let sig = 1.0 / (1.0 + (-gv).exp());
                let i = at(hw, ch, oy * sh.w + ox);
                out[i] = y[i] as f64 * sig;
            }
        }
    }
    out
}

#[test]
fn gated_ghost_matches_ghost_then_gate() {
    let mut rng = Rng::new(53);
    // (h, w): one band (7x9, 1x1, 2x3), two bands (121x9, 45x31), three and more (57x41,
    // 200x5); channels drawn at random (not multiples of 8 most of the time).
    for &(h, w) in &[
        (7usize, 9usize),
        (1, 1),
        (2, 3),
        (121, 9),
        (45, 31),
        (57, 41),
        (200, 5),
    ] {
        for trial in 0..3 {
            let mut c = GhostCase::random_hw(&mut rng, 20, 20, h, w);
            c.sums = false;
            if trial == 0 {
                c.res = None;
            }
            let sh = c.gate_shape();
            let g = rng.vec(sh.blocks * sh.gate_h * sh.gate_w * 8);
            let hw = h * w;
            for kern in all_isas() {
                let what = format!(
                    "{:?} ghost {:?} res={} gate {}x{}",
                    kern.isa(),
                    c.shape,
                    c.res.is_some(),
                    sh.gate_h,
                    sh.gate_w
                );
                let (plain, _) = c.run(kern);
                let (got, _) = c.run_gated(kern, &g);
                let base = c.y_off * hw * 8;
                assert!(
                    bits(&got[..base]) == bits(&plain[..base]),
                    "{what}: blocks outside the view"
                );
                let want = gate_reference(&plain[base..], &g, sh);
                assert_close64(&what, &got[base..], &want, 4);
                // The same bits as the unfused pair of kernels.
                let mut y = plain.clone();
                let mut g2 = g.clone();
                kern.dfc_gate(&mut g2, sh, Dst::at(&mut y, c.y_off))
                    .unwrap();
                assert!(bits(&got) == bits(&y), "{what}: ghost + dfc_gate bits");
                // A gate that holds its sigmoid already (as the gate conv's epilogue leaves
                // it): the same bits, and the gate is left alone.
                let mut gs = g.clone();
                c.run_gated_in(kern, &mut gs, false);
                let sig = gs.clone();
                let (again, _) = c.run_gated_in(kern, &mut gs, true);
                assert!(bits(&again) == bits(&got), "{what}: activated gate bits");
                assert!(bits(&gs) == bits(&sig), "{what}: activated gate written");
            }
        }
    }
}

#[test]
fn gated_ghost_checks_its_gate() {
    let mut rng = Rng::new(54);
    let mut c = GhostCase::random_hw(&mut rng, 8, 8, 6, 6);
    c.res = None;
    let k = scalar();
    let sh = c.gate_shape();
    let glen = sh.blocks * sh.gate_h * sh.gate_w * 8;
    let hw = 36;
    let nb = c.shape.half_blocks;
    let full = ghost_gated_scratch_len(c.shape);
    let run_with = |gate: &mut [f32], shape: DfcShape, sums: Option<&mut [f32]>, sl: usize| {
        let mut y = vec![0.0; (c.y_off + 2 * nb) * hw * 8];
        let mut scratch = vec![0.0; sl];
        k.ghost_gated(
            &c.pw.packed,
            &c.dw_packed,
            c.shape,
            Src::at(&c.pw.x, c.x_off),
            Dst::at(&mut y, c.y_off),
            GhostEpilogue {
                primary: c.pw.act,
                cheap: c.cheap,
                residual: None,
                channel_sums: sums,
            },
            GhostGate {
                gate,
                shape,
                activated: false,
            },
            &mut scratch,
        )
    };
    let run = |gate: &mut [f32], shape: DfcShape, sums: Option<&mut [f32]>| {
        run_with(gate, shape, sums, full)
    };
    let mut g = vec![0.0; glen];
    assert!(run(&mut g, sh, None).is_ok());
    let err = run_with(&mut g, sh, None, full - 1).unwrap_err();
    assert!(format!("{err}").contains("scratch"), "short scratch: {err}");
    assert!(run(&mut g[1..], sh, None).is_err(), "short gate");
    let wrong = DfcShape { h: 5, ..sh };
    assert!(run(&mut g, wrong, None).is_err(), "gate for another h");
    let wrong = DfcShape {
        blocks: sh.blocks - 1,
        ..sh
    };
    assert!(
        run(&mut g, wrong, None).is_err(),
        "gate for half the blocks"
    );
    let mut sums = vec![0.0; 2 * nb * 8];
    assert!(run(&mut g, sh, Some(&mut sums)).is_err(), "channel sums");
}
