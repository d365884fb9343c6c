//! The runtime's copy of the test generator (xorshift64; the same algorithm, seeding and
//! `f()` as `ghostc_testkit::Rng`, which the runtime cannot depend on). Used by the tests and,
//! through `#[path]`, by `ghost-bench`.

use ghost_runtime::Activation;

pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    pub fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
    pub fn act(&mut self) -> Activation {
        match self.range(0, 8) {
            0 => Activation::None,
            1 => Activation::Relu,
            2 => Activation::Clamp { lo: -0.3, hi: 0.4 },
            3 => Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            4 => Activation::HardSwish,
            5 => Activation::Sigmoid,
            6 => Activation::Silu,
            7 => Activation::Mish,
            _ => Activation::Gelu,
        }
    }
}
