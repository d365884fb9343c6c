//! Calibration: runs the f32 graph with the reference interpreter and records, for every f32
//! activation that gets a Q/DQ pair (graph inputs and node outputs), the range of values it
//! took, from which the activation's quantization range is chosen by one of three methods.
//!
//! - **min-max**: the observed minimum and maximum.
//! - **percentile p**: the `p`-th percentile of `|x|` as a symmetric clip `T`, intersected with
//!   the observed range (`[max(min, -T), min(max, T)]`).
//! - **entropy**: the clip `T` that minimizes the KL divergence between the histogram of `|x|`
//!   clipped at `T` and its quantized version (the TensorRT method), intersected likewise.
//!
//! Both histogram methods share one histogram of `|x|` per tensor with [`BINS`] bins over
//! `[0, M]`. When a later input exceeds `M`, `M` doubles (as often as needed) and pairs of bins
//! merge, which is exact: the histogram never needs a second pass over the data.
//!
//! Also recorded, for bias correction: the per-channel (axis 1) mean of every value a quantized
//! Conv or Gemm reads as its input.
//!
//! Deliberately not done here: per-channel activation ranges (ONNX QDQ activations are per
//! tensor in every peer), and moving-average min-max (ranges are of all inputs together).

use std::collections::HashMap;

use crate::interp::{run_all_values, InterpError};
use crate::ir::{DType, Graph, Tensor, ValueId};

/// Bins of the `|x|` histogram.
pub const BINS: usize = 2048;

/// How an activation's range is chosen from what calibration saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    MinMax,
    /// Percentile of `|x|`, in percent (e.g. 99.99).
    Percentile(f64),
    /// KL-divergence (entropy) calibration.
    Entropy,
}

impl Method {
    fn needs_histogram(self) -> bool {
        !matches!(self, Method::MinMax)
    }
}

/// Histogram of `|x|` over `[0, max]` with [`BINS`] bins that grows by doubling `max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub max: f32,
    pub counts: Vec<u64>,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            max: 0.0,
            counts: vec![0; BINS],
        }
    }

    /// Adds the finite values of `xs` (NaN and infinities are skipped).
    pub fn add(&mut self, xs: &[f32]) {
        let absmax = xs
            .iter()
            .filter(|x| x.is_finite())
            .fold(0f32, |m, x| m.max(x.abs()));
        if absmax == 0.0 && self.max == 0.0 {
            self.counts[0] += xs.iter().filter(|x| x.is_finite()).count() as u64;
            return;
        }
        if self.max == 0.0 {
            // First non-zero data: everything seen so far was exactly zero, in bin 0.
            self.max = absmax;
        }
        while absmax > self.max {
            self.double();
        }
        let per_bin = BINS as f32 / self.max;
        for x in xs.iter().filter(|x| x.is_finite()) {
            let b = ((x.abs() * per_bin) as usize).min(BINS - 1);
            self.counts[b] += 1;
        }
    }

    /// Doubles the covered range, merging bin pairs (exact).
    fn double(&mut self) {
        let mut merged = vec![0u64; BINS];
        for (i, c) in self.counts.iter().enumerate() {
            merged[i / 2] += c;
        }
        self.counts = merged;
        self.max *= 2.0;
    }

    fn width(&self) -> f32 {
        self.max / BINS as f32
    }

    /// The upper edge of the bin where the cumulative count first reaches `pct` percent.
    pub fn percentile(&self, pct: f64) -> f32 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let target = (pct / 100.0 * total as f64).ceil() as u64;
        let mut acc = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= target {
                return (i + 1) as f32 * self.width();
            }
        }
        self.max
    }

    /// The clip threshold minimizing KL(P || Q), where P is the histogram clipped at the
    /// threshold (outliers added to its last bin) and Q is P quantized to `levels` bins and
    /// expanded back over P's non-empty bins.
    pub fn entropy_threshold(&self, levels: usize) -> f32 {
        let last_nonzero = match self.counts.iter().rposition(|&c| c > 0) {
            Some(i) => i + 1,
            None => return 0.0,
        };
        if last_nonzero <= levels {
            return last_nonzero as f32 * self.width();
        }
        let mut best = (f64::INFINITY, last_nonzero);
        let mut p = vec![0f64; last_nonzero];
        let mut q = vec![0f64; last_nonzero];
        // Counts at and above bin i (integers: the running sum is exact).
        let mut outliers: u64 = self.counts[levels..].iter().sum();
        for i in levels..=last_nonzero {
            for (dst, &c) in p[..i].iter_mut().zip(&self.counts[..i]) {
                *dst = c as f64;
            }
            p[i - 1] += outliers as f64;
            // Quantize the first i bins (unclipped counts) into `levels` groups.
            q[..i].iter_mut().for_each(|v| *v = 0.0);
            for g in 0..levels {
                let start = g * i / levels;
                let end = ((g + 1) * i / levels).max(start + 1).min(i);
                let bins = &self.counts[start..end];
                let sum: u64 = bins.iter().sum();
                let nonzero = bins.iter().filter(|&&c| c > 0).count();
                if nonzero == 0 {
                    continue;
                }
                let each = sum as f64 / nonzero as f64;
                for (k, &c) in bins.iter().enumerate() {
                    if c > 0 {
                        q[start + k] = each;
                    }
                }
            }
            let kl = kl_divergence(&p[..i], &q[..i]);
            if kl < best.0 {
                best = (kl, i);
            }
            outliers -= self.counts.get(i).copied().unwrap_or(0);
        }
        best.1 as f32 * self.width()
    }
}

/// KL(P || Q) of two unnormalized histograms; bins where P is 0 contribute nothing, bins where
/// P > 0 but Q is 0 get a small Q (so a threshold that drops mass is penalized, not infinite).
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let ps: f64 = p.iter().sum();
    let qs: f64 = q.iter().sum();
    if ps == 0.0 || qs == 0.0 {
        return f64::INFINITY;
    }
    p.iter()
        .zip(q)
        .filter(|(&a, _)| a > 0.0)
        .map(|(&a, &b)| {
            let pa = a / ps;
            let qb = (b / qs).max(1e-12);
            pa * (pa / qb).ln()
        })
        .sum()
}

/// What calibration saw of one f32 value.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    pub min: f32,
    pub max: f32,
    pub hist: Option<Histogram>,
}

impl TensorStats {
    fn new(with_hist: bool) -> Self {
        TensorStats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hist: with_hist.then(Histogram::new),
        }
    }

    fn add(&mut self, xs: &[f32]) {
        for &x in xs.iter().filter(|x| x.is_finite()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        if let Some(h) = &mut self.hist {
            h.add(xs);
        }
    }

    /// The chosen real range `[lo, hi]`, always containing 0 (so that 0 is exact).
    pub fn range(&self, method: Method, signed: bool) -> (f32, f32) {
        if self.min > self.max {
            return (0.0, 0.0); // nothing finite seen
        }
        let (lo, hi) = (self.min.min(0.0), self.max.max(0.0));
        let clip = match (method, &self.hist) {
            (Method::MinMax, _) | (_, None) => return (lo, hi),
            (Method::Percentile(p), Some(h)) => h.percentile(p),
            (Method::Entropy, Some(h)) => {
                // Levels available on the side that holds the data.
                let levels = if lo < 0.0 || signed { 128 } else { 256 };
                h.entropy_threshold(levels)
            }
        };
        (lo.max(-clip), hi.min(clip))
    }
}

/// Per-channel running mean of a value along axis 1 (all other axes averaged).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelMean {
    sums: Vec<f64>,
    count: u64,
}

impl ChannelMean {
    pub fn mean(&self) -> Vec<f32> {
        let n = self.count.max(1) as f64;
        self.sums.iter().map(|s| (s / n) as f32).collect()
    }
}

/// Why calibration failed.
#[derive(thiserror::Error, Debug)]
pub enum CalibrateError {
    /// The input does not have the graph input's shape.
    #[error("input '{name}': expected shape [{expected}], got [{actual}]")]
    Shape {
        name: String,
        expected: String,
        actual: String,
    },
    /// The f32 interpreter failed (the source names the node).
    #[error("the interpreter")]
    Interp(#[from] InterpError),
}

/// Runs every node of `graph` on one input and returns every value (constants excluded), by
/// value index. The graph must have exactly one input, of `input`'s type.
pub fn run_all(graph: &Graph, input: &Tensor) -> Result<Vec<Option<Tensor>>, CalibrateError> {
    let v_in = graph.inputs[0];
    let want = &graph.value(v_in).ty;
    if input.ty != *want {
        return Err(CalibrateError::Shape {
            name: graph.value(v_in).name.clone(),
            expected: crate::ir::fmt_shape(&want.shape),
            actual: crate::ir::fmt_shape(input.shape()),
        });
    }
    Ok(run_all_values(graph, std::slice::from_ref(input))?)
}

/// Accumulates, over calibration inputs, the range of the activations that get a Q/DQ pair and
/// the per-channel means of the values bias correction reads (both chosen from the graph before
/// calibration starts, see [`super::calibrator`]).
pub struct Calibrator {
    method: Method,
    /// Values whose range is recorded (sorted, deduplicated).
    ranges_of: Vec<ValueId>,
    /// Values whose per-channel mean is recorded (sorted, deduplicated).
    means_of: Vec<ValueId>,
    pub(crate) stats: HashMap<ValueId, TensorStats>,
    pub(crate) means: HashMap<ValueId, ChannelMean>,
    pub(crate) inputs_seen: usize,
}

fn sorted(vs: impl IntoIterator<Item = ValueId>) -> Vec<ValueId> {
    let mut v: Vec<ValueId> = vs.into_iter().collect();
    v.sort_by_key(|v| v.index());
    v.dedup();
    v
}

impl Calibrator {
    /// Records the range of each value of `ranges_of` and the per-channel (axis 1) mean of
    /// each value of `means_of`.
    pub fn new(
        method: Method,
        ranges_of: impl IntoIterator<Item = ValueId>,
        means_of: impl IntoIterator<Item = ValueId>,
    ) -> Self {
        Calibrator {
            method,
            ranges_of: sorted(ranges_of),
            means_of: sorted(means_of),
            stats: HashMap::new(),
            means: HashMap::new(),
            inputs_seen: 0,
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// How many inputs have been observed.
    pub fn inputs_seen(&self) -> usize {
        self.inputs_seen
    }

    /// Runs `graph` on one input and records the ranges and means asked for.
    pub fn observe(&mut self, graph: &Graph, input: &Tensor) -> Result<(), CalibrateError> {
        let values = run_all(graph, input)?;
        let with_hist = self.method.needs_histogram();
        for &v in &self.ranges_of {
            let Some(Some(t)) = values.get(v.index()) else {
                continue;
            };
            if t.dtype() != DType::F32 {
                continue;
            }
            let Some(xs) = t.as_f32() else { continue };
            self.stats
                .entry(v)
                .or_insert_with(|| TensorStats::new(with_hist))
                .add(xs);
        }
        for &v in &self.means_of {
            let Some(Some(t)) = values.get(v.index()) else {
                continue;
            };
            let (Some(xs), Some(&c)) = (t.as_f32(), t.shape().get(1)) else {
                continue;
            };
            let inner: usize = t.shape()[2..].iter().product();
            let outer = t.shape()[0];
            let m = self.means.entry(v).or_insert_with(|| ChannelMean {
                sums: vec![0.0; c],
                count: 0,
            });
            for o in 0..outer {
                for ch in 0..c {
                    let base = (o * c + ch) * inner;
                    m.sums[ch] += xs[base..base + inner]
                        .iter()
                        .map(|&x| x as f64)
                        .sum::<f64>();
                }
            }
            m.count += (outer * inner) as u64;
        }
        self.inputs_seen += 1;
        Ok(())
    }

    /// The statistics of value `v`, when calibration saw it.
    pub fn stats(&self, v: ValueId) -> Option<&TensorStats> {
        self.stats.get(&v)
    }

    /// The per-channel mean of value `v` (recorded for Conv and Gemm inputs).
    pub fn channel_mean(&self, v: ValueId) -> Option<Vec<f32>> {
        self.means.get(&v).map(ChannelMean::mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_merges_bins_exactly() {
        let mut h = Histogram::new();
        h.add(&[1.0, 0.5, -0.25]);
        assert_eq!(h.max, 1.0);
        h.add(&[3.5]);
        assert_eq!(h.max, 4.0);
        assert_eq!(h.counts.iter().sum::<u64>(), 4);
        // 0.25 -> bin 128 of 2048 over [0,4]; 0.5 -> 256; 1.0 -> 511 (the last bin of [0,1],
        // 2047, merged twice).
        assert_eq!(h.counts[128], 1);
        assert_eq!(h.counts[256], 1);
        assert_eq!(
            h.counts[511], 1,
            "1.0 was in the last bin of [0,1]: 2047/4 = 511"
        );
        assert_eq!(h.counts[1792], 1);
    }

    #[test]
    fn percentile_clips_the_outlier() {
        let mut xs: Vec<f32> = (0..10_000).map(|i| (i % 100) as f32 / 100.0).collect();
        xs.push(100.0);
        let mut s = TensorStats::new(true);
        s.add(&xs);
        assert_eq!(s.range(Method::MinMax, false), (0.0, 100.0));
        let (lo, hi) = s.range(Method::Percentile(99.9), false);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.95 && hi < 1.2, "percentile range {hi}");
    }

    #[test]
    fn entropy_clips_a_long_tail_but_keeps_a_uniform_range() {
        // Uniform on [0, 1]: nothing to clip.
        let xs: Vec<f32> = (0..50_000).map(|i| i as f32 / 50_000.0).collect();
        let mut s = TensorStats::new(true);
        s.add(&xs);
        let (_, hi) = s.range(Method::Entropy, false);
        assert!(hi > 0.95, "uniform: {hi}");
        // Laplacian-like tail with rare huge values: the clip sits well below the max.
        let mut t: Vec<f32> = (1..50_000).map(|i| -(i as f32 / 50_000.0).ln()).collect();
        t.push(60.0);
        let mut s = TensorStats::new(true);
        s.add(&t);
        let (_, hi) = s.range(Method::Entropy, false);
        assert!(hi < 30.0 && hi > 3.0, "tail clipped: {hi}");
    }

    #[test]
    fn range_always_contains_zero() {
        let mut s = TensorStats::new(false);
        s.add(&[2.0, 3.0]);
        assert_eq!(s.range(Method::MinMax, false), (0.0, 3.0));
        let mut s = TensorStats::new(false);
        s.add(&[-3.0, -2.0]);
        assert_eq!(s.range(Method::MinMax, true), (-3.0, 0.0));
    }
}
