//! The seeded generator for test data: Marsaglia's xorshift64 (shifts 13, 7, 17). Not for
//! statistics; for weights, inputs and shapes that are the same on every run and platform.
//!
//! ghost-runtime's tests and `ghost-bench` use their own copy of this generator
//! (`ghost-runtime/tests/common/rng.rs`): the runtime has no dependencies, not even for tests.

/// A xorshift64 generator. The state is never 0.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included: the seed is scrambled and made odd).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[lo, hi]` (inclusive).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// Uniform in `[lo, hi)` on a grid of 2^24 steps.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    /// Uniform in `[-1, 1)`.
    pub fn f(&mut self) -> f32 {
        self.uniform(-1.0, 1.0)
    }

    /// `n` values uniform in `[lo, hi)`.
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    /// `n` bytes (bits 32..40 of each draw).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 32) as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_values_and_ranges_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = Rng::new(0);
        let mut seen = [false; 4];
        for _ in 0..1000 {
            let v = r.f();
            assert!((-1.0..1.0).contains(&v), "{v}");
            let u = r.uniform(0.5, 2.0);
            assert!((0.5..2.0).contains(&u), "{u}");
            seen[r.range(3, 6) - 3] = true;
        }
        assert_eq!(seen, [true; 4], "range(3, 6) hits both ends");
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn f_is_the_classic_formula() {
        // `((x >> 40) / 2^23) - 1`, the formula the suites used before sharing this type.
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        for _ in 0..1000 {
            let x = b.next_u64();
            let want = ((x >> 40) as f32 / (1u64 << 23) as f32) - 1.0;
            assert_eq!(a.f().to_bits(), want.to_bits());
        }
    }
}
