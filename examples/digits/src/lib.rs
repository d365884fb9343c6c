//! The digits demo: a small GhostNet trained in PyTorch on scikit-learn's handwritten digits
//! (`tools/train_digits.py`), exported to ONNX, compiled to Rust by `build.rs` through
//! `ghostc::Builder`, and run here on the held-out test set, which is embedded in the binary
//! with `include_bytes!`. The crate depends on `ghost-runtime` alone.
//!
//! Two builds of the same network: [`Model`] is the f32 export, [`int8::Model`] the same
//! network quantized by `build.rs` at build time (`ghostc::quantize`, calibrated on 64
//! training images) and compiled from the QDQ file it wrote.
//!
//! [`evaluate`] runs a compiled model on every test image and compares it with PyTorch's
//! (f32) logits for the same images, [`benchmark`] times it; `src/main.rs` prints both for
//! both builds, `tests/` asserts the comparisons.

use std::time::Instant;

use ghost_runtime::CompiledModel;

include!(concat!(env!("OUT_DIR"), "/model.rs"));

/// The int8 build: s8 per-channel weights, u8 activations, int8 kernels; f32 in and out.
pub mod int8 {
    include!(concat!(env!("OUT_DIR"), "/model_int8.rs"));
}

/// The embedded test set: normalized images `[N, 1, 32, 32]`, labels `[N]`, and PyTorch's
/// logits `[N, 10]` (eval mode) for the same images.
pub struct TestSet {
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    pub torch_logits: Vec<f32>,
}

impl TestSet {
    pub fn load() -> Result<TestSet, String> {
        let (shape, images) = npy::read_f32(include_bytes!("../data/test_images.npy"))?;
        let (lshape, labels) = npy::read_i64(include_bytes!("../data/test_labels.npy"))?;
        let (tshape, torch_logits) = npy::read_f32(include_bytes!("../data/torch_logits.npy"))?;
        let n = lshape.first().copied().unwrap_or(0);
        let per_image: usize = shape.iter().skip(1).product();
        if shape.first() != Some(&n)
            || per_image != Model::INPUT_LEN
            || tshape != [n, Model::OUTPUT_LEN]
        {
            return Err(format!("test set shapes {shape:?} {lshape:?} {tshape:?} do not fit the model's {:?} -> {:?}", Model::INPUT_SHAPE, Model::OUTPUT_SHAPE));
        }
        Ok(TestSet {
            images,
            labels,
            torch_logits,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// How the compiled model compares with PyTorch on the test set.
#[derive(Debug)]
pub struct Report {
    pub images: usize,
    /// Correct predictions of the compiled model.
    pub correct: usize,
    /// Correct predictions of PyTorch (from its logits).
    pub torch_correct: usize,
    /// Images where the compiled model and PyTorch predict the same class.
    pub agree: usize,
    /// Largest |logit - PyTorch logit| over the whole set.
    pub max_abs_diff: f32,
}

/// Batch size of [`evaluate`] and of the throughput measurement.
pub const BATCH: usize = 32;

/// Index of the largest value (the first one on ties, as numpy's argmax).
pub fn argmax(xs: &[f32]) -> usize {
    xs.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > xs[best] { i } else { best })
}

/// Runs the model over all images in batches of [`BATCH`] (its batch is dynamic).
fn run_set<M: CompiledModel>(
    model: &M,
    images: &[f32],
    logits: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), ghost_runtime::Error> {
    for (x, y) in images
        .chunks(BATCH * M::INPUT_LEN)
        .zip(logits.chunks_mut(BATCH * M::OUTPUT_LEN))
    {
        model.run(x, y, scratch)?;
    }
    Ok(())
}

/// Runs `model` on every test image and compares with PyTorch.
pub fn evaluate<M: CompiledModel>(
    model: &M,
    set: &TestSet,
) -> Result<Report, ghost_runtime::Error> {
    let mut scratch = vec![0.0; M::SCRATCH_LEN];
    let mut logits = vec![0.0; set.len() * M::OUTPUT_LEN];
    run_set(model, &set.images, &mut logits, &mut scratch)?;
    let mut r = Report {
        images: set.len(),
        correct: 0,
        torch_correct: 0,
        agree: 0,
        max_abs_diff: 0.0,
    };
    let rows = logits
        .chunks(M::OUTPUT_LEN)
        .zip(set.torch_logits.chunks(M::OUTPUT_LEN));
    for ((ours, theirs), &label) in rows.zip(&set.labels) {
        let (p, t) = (argmax(ours), argmax(theirs));
        r.correct += usize::from(p as i64 == label);
        r.torch_correct += usize::from(t as i64 == label);
        r.agree += usize::from(p == t);
        r.max_abs_diff = ours
            .iter()
            .zip(theirs)
            .fold(r.max_abs_diff, |m, (a, b)| m.max((a - b).abs()));
    }
    Ok(r)
}

/// Speed of the compiled model.
#[derive(Debug)]
pub struct Timing {
    /// Median seconds of one single-image `run`.
    pub latency: f64,
    /// Images per second running batches of [`BATCH`] (median batch time).
    pub throughput: f64,
    /// The kernels `Model::new()` picked for this CPU.
    pub isa: &'static str,
}

/// Times `model` over `latency_runs` single-image runs (cycling through the set) and batches of [`BATCH`]
/// (passes over the set for at least `seconds`, at least one pass). Both are medians, which
/// measure the code rather than the machine's load: on a busy machine a long pass is
/// preempted far more often than a short run.
pub fn benchmark<M: CompiledModel>(
    model: &M,
    set: &TestSet,
    latency_runs: usize,
    seconds: f64,
) -> Result<Timing, ghost_runtime::Error> {
    let mut scratch = vec![0.0; M::SCRATCH_LEN];
    let mut one = vec![0.0; M::OUTPUT_LEN];
    let mut times = Vec::with_capacity(latency_runs);
    for (_, x) in (0..latency_runs).zip(set.images.chunks(M::INPUT_LEN).cycle()) {
        let t = Instant::now();
        model.run(x, &mut one, &mut scratch)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let latency = median(&mut times);

    let batch = BATCH.clamp(1, set.len().max(1));
    let mut logits = vec![0.0; batch * M::OUTPUT_LEN];
    let (start, mut batches) = (Instant::now(), Vec::new());
    while !set.is_empty() && (batches.is_empty() || start.elapsed().as_secs_f64() < seconds) {
        for x in set.images.chunks_exact(batch * M::INPUT_LEN) {
            let t = Instant::now();
            model.run(x, &mut logits, &mut scratch)?;
            batches.push(t.elapsed().as_secs_f64());
        }
    }
    let throughput = batch as f64 / median(&mut batches);
    Ok(Timing {
        latency,
        throughput,
        isa: model_isa(),
    })
}

/// The median (upper middle) of `xs`, 0 when empty. Medians keep the numbers stable on a busy
/// machine.
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// Name of the ISA `ghost_runtime::Kernels::new()` picks on this CPU.
pub fn model_isa() -> &'static str {
    ghost_runtime::Kernels::new().isa().name()
}

/// A minimal `.npy` reader for the embedded files: format 1.0-3.0, little-endian `<f4` or
/// `<i8`, C order.
pub mod npy {
    fn parse<'a>(bytes: &'a [u8], descr: &str) -> Result<(Vec<usize>, &'a [u8]), String> {
        let bad = |what: &str| format!(".npy: {what}");
        let rest = bytes
            .strip_prefix(b"\x93NUMPY")
            .ok_or_else(|| bad("bad magic"))?;
        let (len, header_at) = match rest {
            [1, _, a, b, ..] => (u16::from_le_bytes([*a, *b]) as usize, 4),
            [2 | 3, _, a, b, c, d, ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, 6),
            _ => return Err(bad("unsupported version or truncated")),
        };
        let header = rest
            .get(header_at..header_at + len)
            .ok_or_else(|| bad("truncated header"))?;
        let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
        if !header.contains(&format!("'descr': '{descr}'"))
            || !header.contains("'fortran_order': False")
        {
            return Err(bad(&format!("expected C-order {descr}, found {header}")));
        }
        let dims = header
            .split("'shape': (")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .ok_or_else(|| bad("no shape"))?;
        let shape: Vec<usize> = dims
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| d.parse().map_err(|_| bad("bad shape")))
            .collect::<Result<_, _>>()?;
        let data = &rest[header_at + len..];
        let elem = if descr == "<f4" { 4 } else { 8 };
        if data.len() != shape.iter().product::<usize>() * elem {
            return Err(bad("data length does not match the shape"));
        }
        Ok((shape, data))
    }

    pub fn read_f32(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
        let (shape, data) = parse(bytes, "<f4")?;
        Ok((
            shape,
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    pub fn read_i64(bytes: &[u8]) -> Result<(Vec<usize>, Vec<i64>), String> {
        let (shape, data) = parse(bytes, "<i8")?;
        Ok((
            shape,
            data.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ))
    }
}
