//! The DFL kernel against the formula (softmax over each side's bins, then the weighted sum)
//! in f64, on every ISA, on pixel counts around the 8-pixel gather and odd group/bin counts.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn dfl_matches_the_softmax_expectation() {
    let mut rng = Rng::new(41);
    for &(groups, bins, pixels) in &[(4, 16, 13), (1, 3, 1), (3, 5, 8), (9, 2, 17), (4, 16, 7)] {
        // Logits on a scale where the softmax is neither flat nor one-hot.
        let x: Vec<f32> = rng
            .vec(pad8(groups * bins) * pixels)
            .iter()
            .map(|v| 4.0 * v)
            .collect();
        let w: Vec<f32> = (0..bins).map(|k| k as f32 + 0.25 * rng.f()).collect();
        let mut want = vec![0.0f64; pad8(groups) * pixels];
        for g in 0..groups {
            for p in 0..pixels {
                let v: Vec<f64> = (0..bins)
                    .map(|k| x[at(pixels, g * bins + k, p)] as f64)
                    .collect();
                let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = v.iter().map(|&t| (t - m).exp()).collect();
                let s: f64 = e.iter().sum();
                want[at(pixels, g, p)] =
                    e.iter().zip(&w).map(|(e, &w)| e * w as f64).sum::<f64>() / s;
            }
        }
        let shape = DflShape {
            groups,
            bins,
            pixels,
        };
        for kern in all_isas() {
            // Stale values in the padding lanes must be overwritten with zeros.
            let mut y = vec![f32::NAN; pad8(groups) * pixels];
            kern.dfl(shape, &w, &x, &mut y).unwrap();
            assert_close64(
                &format!("{:?} dfl {groups}x{bins} @{pixels}", kern.isa()),
                &y,
                &want,
                4 * bins,
            );
        }
    }
}

#[test]
fn dfl_rejects_short_buffers() {
    let k = scalar();
    let shape = DflShape {
        groups: 4,
        bins: 16,
        pixels: 3,
    };
    let (w, x, mut y) = (vec![0.0; 16], vec![0.0; 64 * 3], vec![0.0; 8 * 3]);
    assert!(k.dfl(shape, &w, &x, &mut y).is_ok());
    assert!(k.dfl(shape, &w[..15], &x, &mut y).is_err());
    assert!(k.dfl(shape, &w, &x[..64 * 3 - 1], &mut y).is_err());
    assert!(k.dfl(shape, &w, &x, &mut y[..23]).is_err());
}
