//! The fused Ghost module with GhostNetV2's DFC gate in its epilogue: bit-identical to the
//! Ghost module followed by the stand-alone DFC gate, on odd shapes (2x, non-integer and 1x1
//! gates, rows wide enough to wrap the band ring), on every ISA and through thread splits; and
//! its argument checks.

mod common;
use common::*;
use ghost_runtime::*;

/// A random gate size for an `h x w` module: half (floor or ceil, as pooled 2x2 with or
/// without ceil mode), or anything from 1 to the module's size.
fn gate_size(rng: &mut Rng, n: usize) -> usize {
    match rng.range(0, 2) {
        0 => (n / 2).max(1),
        1 => n.div_ceil(2),
        _ => rng.range(1, n),
    }
}

fn gated_case(rng: &mut Rng, c: GhostCase) -> (GhostCase, Vec<f32>, usize, usize) {
    let mut c = c;
    c.sums = false;
    let (gh, gw) = (gate_size(rng, c.shape.h), gate_size(rng, c.shape.w));
    let gate = rng.vec(2 * c.shape.half_blocks * gh * gw * 8);
    (c, gate, gh, gw)
}

#[test]
fn gated_is_ghost_then_dfc_gate() {
    let mut rng = Rng::new(61);
    for _ in 0..trials(60) {
        let (c, gate, gh, gw) = {
            let c = GhostCase::random(&mut rng, 40, 30, 17);
            gated_case(&mut rng, c)
        };
        for kern in all_isas() {
            let want = c.run_ghost_then_gate(kern, &gate, gh, gw);
            let got = c.run_gated(kern, &gate, gh, gw);
            let what = format!(
                "{:?} {:?} gate {gh}x{gw} res={}",
                kern.isa(),
                c.shape,
                c.res.is_some()
            );
            assert!(bits(&got) == bits(&want), "{what}");
        }
        // The gate changes something (not a no-op).
        let plain = c.run(scalar()).0;
        assert!(bits(&plain) != bits(&c.run_gated(scalar(), &gate, gh, gw)));
    }
}

/// Wide rows: several bands, so the ring holding ungated x1 wraps.
#[test]
fn gated_wide_rows() {
    let mut rng = Rng::new(62);
    for _ in 0..trials(4) {
        let (h, w) = if cfg!(miri) {
            (25, 112)
        } else {
            (rng.range(25, 40), rng.range(75, 115))
        };
        let (c, gate, gh, gw) = {
            let c = GhostCase::random_hw(&mut rng, 12, 12, h, w);
            gated_case(&mut rng, c)
        };
        for kern in all_isas() {
            let want = c.run_ghost_then_gate(kern, &gate, gh, gw);
            let got = c.run_gated(kern, &gate, gh, gw);
            let what = format!("{:?} {:?} gate {gh}x{gw}", kern.isa(), c.shape);
            assert!(bits(&got) == bits(&want), "{what}");
        }
    }
}

#[test]
fn gated_par_is_bit_identical() {
    let mut rng = Rng::new(63);
    let forks = forks();
    for _ in 0..trials(20) {
        let (c, gate, gh, gw) = {
            let c = GhostCase::random(&mut rng, 30, 40, 20);
            gated_case(&mut rng, c)
        };
        let what = format!("gated ghost {:?} gate {gh}x{gw}", c.shape);
        assert_split_bits(&forks, &what, |e| {
            (c.run_gated(e, &gate, gh, gw), Vec::new())
        });
    }
}

#[test]
fn gated_checks_arguments() {
    let k = Kernels::new();
    let shape = GhostShape {
        k_blocks: 1,
        half_blocks: 2,
        h: 6,
        w: 5,
    };
    let pw = vec![0.0; pointwise_packed_len(8, 16)];
    let dw = vec![0.0; depthwise_packed_len(16, 3)];
    let x = vec![0.0; 6 * 5 * 8];
    let mut y = vec![0.0; 4 * 6 * 5 * 8];
    let mut sums = vec![0.0; 32];
    let run =
        |y: &mut [f32], g: &mut [f32], gh: usize, scratch: &mut [f32], sums: Option<&mut [f32]>| {
            k.ghost_gated(
                &pw,
                &dw,
                shape,
                Src::new(&x),
                Dst::new(y),
                GhostEpilogue {
                    primary: Activation::Relu,
                    cheap: Activation::None,
                    residual: None,
                    channel_sums: sums,
                },
                GhostGate {
                    gate: g,
                    gate_h: gh,
                    gate_w: 3,
                    coord: CoordMode::Asymmetric,
                    nearest: NearestMode::Floor,
                },
                scratch,
            )
        };
    let n = ghost_gated_scratch_len(shape);
    let mut g = vec![0.0; 4 * 3 * 3 * 8];
    let mut scratch = vec![0.0; n];
    assert!(run(&mut y, &mut g, 3, &mut scratch, None).is_ok());
    assert!(run(&mut y, &mut g[1..], 3, &mut scratch, None).is_err());
    assert!(run(&mut y, &mut g, 0, &mut scratch, None).is_err());
    assert!(run(&mut y, &mut g, 3, &mut scratch[1..], None).is_err());
    assert!(run(&mut y, &mut g, 3, &mut scratch, Some(&mut sums)).is_err());
    let mut y_short = vec![0.0; 4 * 6 * 5 * 8 - 1];
    assert!(run(&mut y_short, &mut g, 3, &mut scratch, None).is_err());
}
