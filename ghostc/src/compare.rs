//! Output comparison with a tolerance relative to the output's scale, as every check in the
//! project uses it: `max |y - ref| <= rtol * max |ref| + atol` (defaults 1e-4 and 1e-5).
//! NaN equals NaN at the same position; a NaN on one side only is a mismatch.

/// Differences between an output and its reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diff {
    /// Largest absolute difference.
    pub max_abs: f32,
    /// `max_abs / max |ref|`: the difference relative to the output's scale.
    pub max_rel: f32,
    /// Largest distance in units in the last place between corresponding floats.
    pub max_ulp: u64,
    /// `max |ref|`.
    pub ref_scale: f32,
    /// Elements compared.
    pub count: usize,
    /// Positions where exactly one side is NaN, or the lengths differ.
    pub mismatched: usize,
}

impl Diff {
    /// Whether the output is within `rtol * max|ref| + atol`.
    pub fn within(&self, rtol: f32, atol: f32) -> bool {
        self.mismatched == 0 && self.max_abs <= rtol * self.ref_scale + atol
    }

    /// The project's default tolerance.
    pub fn ok(&self) -> bool {
        self.within(1e-4, 1e-5)
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max abs {:.3e}, max rel {:.3e} (of max |ref| {:.3e}), max ULP {}, {} values{}",
            self.max_abs,
            self.max_rel,
            self.ref_scale,
            self.max_ulp,
            self.count,
            if self.mismatched > 0 {
                format!(", {} NaN/length mismatches", self.mismatched)
            } else {
                String::new()
            }
        )
    }
}

/// Maps a float to an integer whose order matches the float order, for ULP distances.
fn ordered(x: f32) -> i64 {
    let b = x.to_bits() as i32;
    (if b < 0 { i32::MIN - b } else { b }) as i64
}

/// Compares `actual` against `expected`.
pub fn compare(actual: &[f32], expected: &[f32]) -> Diff {
    let mut d = Diff {
        max_abs: 0.0,
        max_rel: 0.0,
        max_ulp: 0,
        ref_scale: 0.0,
        count: actual.len().min(expected.len()),
        mismatched: 0,
    };
    d.mismatched += actual.len().abs_diff(expected.len());
    for (&a, &e) in actual.iter().zip(expected) {
        if e.is_finite() {
            d.ref_scale = d.ref_scale.max(e.abs());
        }
        match (a.is_nan(), e.is_nan()) {
            (true, true) => continue,
            (true, false) | (false, true) => {
                d.mismatched += 1;
                continue;
            }
            _ => {}
        }
        if a == e {
            continue;
        }
        let diff = (a - e).abs();
        if diff.is_nan() {
            // inf - inf of the same sign is handled by a == e; opposite infinities differ.
            d.mismatched += 1;
            continue;
        }
        d.max_abs = d.max_abs.max(diff);
        d.max_ulp = d.max_ulp.max(ordered(a).abs_diff(ordered(e)));
    }
    d.max_rel = if d.ref_scale > 0.0 {
        d.max_abs / d.ref_scale
    } else {
        d.max_abs
    };
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_relative_to_scale() {
        let d = compare(&[100.0, 0.0], &[100.005, 0.0]);
        assert!(d.ok(), "{d}");
        let d = compare(&[1.0, 0.0], &[1.001, 0.0]);
        assert!(!d.ok(), "{d}");
        assert_eq!(
            compare(&[1.0], &[f32::from_bits(1.0f32.to_bits() + 3)]).max_ulp,
            3
        );
        assert_eq!(compare(&[-0.0], &[0.0]).max_ulp, 0);
    }

    #[test]
    fn nan_positions_must_agree() {
        assert!(compare(&[f32::NAN, 1.0], &[f32::NAN, 1.0]).ok());
        assert!(!compare(&[f32::NAN, 1.0], &[0.0, 1.0]).ok());
        assert!(!compare(&[1.0], &[1.0, 2.0]).ok());
        assert!(!compare(&[f32::INFINITY], &[f32::NEG_INFINITY]).ok());
    }
}
