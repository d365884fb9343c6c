//! The ceiling the kernels are measured against: one core's peak multiply-adds per second with
//! the widest vector the kernels use (512-bit zmm on x86_64 with AVX-512F, where the pointwise
//! GEMM runs that wide, else 256-bit ymm; 128-bit q registers on aarch64), measured on the spot. Used by the generated runners' `--bench` and `--profile` output and by
//! `ghostc bench` for "% of peak" and "% of roofline".
//!
//! The measurement runs independent FMA chains (enough of them to cover the FMA latency times
//! the number of FMA pipes), a few milliseconds per repetition, and keeps the best repetition:
//! on a shared core, time slices lost to other processes only ever make a repetition slower.
//! Run it on the core the model runs on (`taskset -c C`).

/// Multiply-adds per FMA instruction at the width the kernels use (x86_64: see [`lanes`]).
#[cfg(target_arch = "aarch64")]
const LANES: usize = 4;

/// Independent accumulator chains per repetition.
#[cfg(target_arch = "x86_64")]
const CHAINS: usize = 12;
#[cfg(target_arch = "aarch64")]
const CHAINS: usize = 16;
/// Nothing is measured elsewhere ([`supported`] is false).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const CHAINS: usize = 0;

/// This core's peak in GMAC/s (10^9 multiply-adds per second) with 512-bit FMAs on x86_64 with
/// AVX-512F (the pointwise kernels' width there), 256-bit FMAs with AVX2+FMA only, or NEON on
/// aarch64: the best of 7 repetitions of about 2 ms each (12 M FMAs on x86_64). `None` on
/// other targets or when the CPU lacks FMA.
///
/// Zen 4 gives about 2 FMA pipes x 8 lanes per cycle at either width (a zmm FMA takes both
/// halves of a pipe). Intel cores with two 512-bit FMA units reach twice their ymm rate with
/// zmm (an Intel Sapphire Rapids guest: 123 against 66 GMAC/s).
///
/// ```no_run
/// if let Some(peak) = ghost_runtime::peak::peak_gmacs() {
///     println!("one core: {peak:.1} GMAC/s");
/// }
/// ```
pub fn peak_gmacs() -> Option<f64> {
    peak_gmacs_with(7, 1_000_000)
}

/// [`peak_gmacs`] with `reps` repetitions of `iters` iterations (each iteration is one FMA per
/// chain).
pub fn peak_gmacs_with(reps: usize, iters: usize) -> Option<f64> {
    if !supported() {
        return None;
    }
    let iters = iters.max(1);
    best_rate(reps, iters * CHAINS * lanes(), || {
        chains(core::hint::black_box(iters), core::hint::black_box(0.5)).to_bits()
    })
}

/// The best of `reps` runs of `run`, in 10^9 multiply-adds per second for `macs` per run;
/// `None` if no run took measurable time. `run`'s result is kept alive so its work happens.
fn best_rate(reps: usize, macs: usize, mut run: impl FnMut() -> u32) -> Option<f64> {
    let mut best = 0.0f64;
    for _ in 0..reps.max(1) {
        let t = std::time::Instant::now();
        let sink = run();
        let s = t.elapsed().as_secs_f64();
        core::hint::black_box(sink);
        if s > 0.0 {
            best = best.max(macs as f64 / s / 1e9);
        }
    }
    (best > 0.0).then_some(best)
}

/// Lanes per FMA of [`chains`]: 16 when it runs zmm FMAs.
#[cfg(target_arch = "x86_64")]
fn lanes() -> usize {
    if zmm() {
        16
    } else {
        8
    }
}

#[cfg(target_arch = "aarch64")]
fn lanes() -> usize {
    LANES
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn lanes() -> usize {
    0
}

/// The pointwise kernels run zmm FMAs on CPUs with AVX-512F and VL (`Isa::Avx512`).
#[cfg(target_arch = "x86_64")]
fn zmm() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
}

#[cfg(target_arch = "x86_64")]
fn supported() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "aarch64")]
fn supported() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn supported() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn chains(n: usize, x: f32) -> f32 {
    use core::arch::x86_64::*;
    #[target_feature(enable = "avx2,fma")]
    fn ymm(n: usize, x: f32) -> f32 {
        let m = _mm256_set1_ps(0.999_9);
        let a = _mm256_set1_ps(x);
        let mut acc = [_mm256_set1_ps(x); CHAINS];
        for _ in 0..n {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, m, a);
            }
        }
        let mut s = _mm256_setzero_ps();
        for v in acc {
            s = _mm256_add_ps(s, v);
        }
        _mm256_cvtss_f32(s)
    }
    #[target_feature(enable = "avx2,fma,avx512f")]
    fn zmm(n: usize, x: f32) -> f32 {
        let m = _mm512_set1_ps(0.999_9);
        let a = _mm512_set1_ps(x);
        let mut acc = [_mm512_set1_ps(x); CHAINS];
        for _ in 0..n {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, m, a);
            }
        }
        let mut s = _mm512_setzero_ps();
        for v in acc {
            s = _mm512_add_ps(s, v);
        }
        _mm512_reduce_add_ps(s)
    }
    if self::zmm() {
        // SAFETY: `zmm()` found AVX-512F on this CPU (and `supported()` AVX2 and FMA).
        unsafe { zmm(n, x) }
    } else {
        // SAFETY: only called after `supported()` found AVX2 and FMA on this CPU.
        unsafe { ymm(n, x) }
    }
}

#[cfg(target_arch = "aarch64")]
fn chains(n: usize, x: f32) -> f32 {
    use core::arch::aarch64::*;
    #[target_feature(enable = "neon")]
    fn body(n: usize, x: f32) -> f32 {
        let m = vdupq_n_f32(0.999_9);
        let a = vdupq_n_f32(x);
        let mut acc = [vdupq_n_f32(x); CHAINS];
        for _ in 0..n {
            for v in acc.iter_mut() {
                *v = vfmaq_f32(a, *v, m);
            }
        }
        let mut s = vdupq_n_f32(0.0);
        for v in acc {
            s = vaddq_f32(s, v);
        }
        vgetq_lane_f32::<0>(s)
    }
    // SAFETY: only called after `supported()` found NEON on this CPU.
    unsafe { body(n, x) }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn chains(_n: usize, x: f32) -> f32 {
    x
}

/// This core's int8 peak in GMAC/s (`u8 * s8` multiply-adds): 16 independent chains of
/// 512-bit `vpdpbusd` (64 multiply-adds each, the instruction of the int8 kernels on CPUs with
/// AVX-512 VNNI), the best of 7 repetitions of about 1 M instructions each. `None` without
/// AVX-512 VNNI (the AVX2, NEON and wasm int8 paths have no single-instruction peak measured
/// here). The int8 steps of `--profile` are reported against it.
///
/// Zen 5 (an EPYC guest): 541 GMAC/s, 4.0x its f32 [`peak_gmacs`].
pub fn peak_int8_gmacs() -> Option<f64> {
    peak_int8_gmacs_with(7, 62_500)
}

/// [`peak_int8_gmacs`] with `reps` repetitions of `iters` iterations (one `vpdpbusd` per
/// chain each).
pub fn peak_int8_gmacs_with(reps: usize, iters: usize) -> Option<f64> {
    // The int8 kernels' `Vnni` path: AVX-512F/VL/BW/VNNI (never true off x86_64).
    if !crate::isa::x86_vnni() {
        return None;
    }
    const INT8_CHAINS: usize = 16;
    let iters = iters.max(1);
    best_rate(reps, iters * INT8_CHAINS * 64, || {
        int8_chains::<INT8_CHAINS>(core::hint::black_box(iters), core::hint::black_box(3)) as u32
    })
}

#[cfg(target_arch = "x86_64")]
fn int8_chains<const N: usize>(n: usize, x: i32) -> i32 {
    use core::arch::x86_64::*;
    #[target_feature(enable = "avx2,avx512f,avx512vl,avx512bw,avx512vnni")]
    fn body<const N: usize>(n: usize, x: i32) -> i32 {
        let a = _mm512_set1_epi32(0x0101_0101);
        let b = _mm512_set1_epi32(x);
        let mut acc = [_mm512_set1_epi32(x); N];
        for _ in 0..n {
            for v in acc.iter_mut() {
                *v = _mm512_dpbusd_epi32(*v, a, b);
            }
        }
        let mut s = _mm512_setzero_si512();
        for v in acc {
            s = _mm512_add_epi32(s, v);
        }
        _mm512_reduce_add_epi32(s)
    }
    // SAFETY: only called after `x86_vnni()` found AVX-512F/VL/BW/VNNI on this CPU.
    unsafe { body::<N>(n, x) }
}

#[cfg(not(target_arch = "x86_64"))]
fn int8_chains<const N: usize>(_n: usize, x: i32) -> i32 {
    x
}

#[cfg(all(test, not(miri)))]
mod tests {
    #[test]
    fn int8_peak_is_positive_and_finite_when_measured() {
        if let Some(p) = super::peak_int8_gmacs_with(2, 10_000) {
            assert!(p.is_finite() && p > 0.0, "{p}");
        }
    }

    #[test]
    fn peak_is_positive_and_finite_when_measured() {
        if let Some(p) = super::peak_gmacs_with(2, 10_000) {
            assert!(p.is_finite() && p > 0.0, "{p}");
        }
    }
}
