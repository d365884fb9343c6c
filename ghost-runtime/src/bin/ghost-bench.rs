//! Micro-benchmark: measures this core's FMA peak, then GMAC/s of each kernel on GhostNet-1.0
//! 224x224 layer shapes, as medians over interleaved repetitions.
//!
//! Run pinned: `taskset -c 1 cargo run --release -p ghost-runtime --bin ghost-bench`.
//! `GHOST_FORCE_ISA=avx2` benchmarks another path. Options (`--help`): `--quick` (7
//! repetitions), `--reps N`, `--filter SUBSTRING` (name or id; repeatable, any match),
//! `--only ID[,ID..]` (exact ids), `--list` (cases without timing), `--json` (one JSON
//! document on stdout instead of the table; read by `bench/layers.py`), `--misalign`.
//! Every buffer starts on a 64-byte boundary (as generated code's weight blob); `--misalign`
//! shifts them by 16 bytes, where glibc puts a large `Vec<f32>`.

use ghost_runtime::*;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Seconds of CPU time consumed by this thread (Linux), so time slices lost to other
/// processes on a shared core do not count; wall-clock elsewhere.
#[cfg(target_os = "linux")]
fn now() -> f64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer with the C layout of `struct timespec` on 64-bit
    // Linux.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

#[cfg(not(target_os = "linux"))]
fn now() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_secs_f64()
}

// The tests' generator (one copy in the runtime; it has no dependencies to share it through).
#[allow(dead_code)]
#[path = "../../tests/common/rng.rs"]
mod rng;
use rng::Rng;

/// Bytes past a 64-byte boundary at which every benchmark buffer starts: 0 by default (like
/// generated code's weight blob, and ONNX Runtime's buffers); `--misalign` sets 16, where a
/// plain `Vec<f32>` of 128 KiB or more lands with glibc's allocator (mmap chunk header), so
/// every other 32-byte vector spans two cache lines.
static SKEW_BYTES: AtomicUsize = AtomicUsize::new(0);

/// `len` floats starting `SKEW_BYTES` past a 64-byte boundary.
struct Buf {
    v: AlignedScratch,
    off: usize,
    len: usize,
}

impl Buf {
    /// Zeroed, `SKEW_BYTES` past a 64-byte boundary; from 2 MiB on, on transparent huge pages
    /// as a generated model's arena is (`AlignedScratch`), so layers with large tensors see
    /// the TLB reach they have inside a model (EfficientNet-B0's 16->96 expansion at 112x112
    /// with its depthwise: 18.7-19.6 GMAC/s on 4 KiB pages, 21.0-22.4 on 2 MiB pages).
    fn zeros(len: usize) -> Buf {
        let v = AlignedScratch::new(len + 32);
        let off = SKEW_BYTES.load(Ordering::Relaxed) / 4;
        Buf { v, off, len }
    }
    fn from(data: Vec<f32>) -> Buf {
        let mut b = Buf::zeros(data.len());
        b.m().copy_from_slice(&data);
        b
    }
    fn s(&self) -> &[f32] {
        &self.v.as_slice()[self.off..self.off + self.len]
    }
    fn m(&mut self) -> &mut [f32] {
        &mut self.v.as_mut_slice()[self.off..self.off + self.len]
    }
}

/// Peak multiply-adds per second of one core at the width the f32 kernels multiply-add in
/// (zmm with AVX-512F, else ymm): one repetition of [`ghost_runtime::peak::peak_gmacs_with`].
fn peak_gmacs() -> f64 {
    ghost_runtime::peak::peak_gmacs_with(1, 2_000_000).unwrap_or(f64::NAN)
}

/// Int8 peak ([`ghost_runtime::peak::peak_int8_gmacs_with`], one repetition); NaN without
/// AVX-512 VNNI.
fn peak_int8_gmacs() -> f64 {
    ghost_runtime::peak::peak_int8_gmacs_with(1, 1_000_000).unwrap_or(f64::NAN)
}

/// A 64-byte-aligned byte buffer of `len` bytes: the vector and the offset of the view.
fn aligned_bytes(len: usize, mut fill: impl FnMut() -> u8) -> (Vec<u8>, usize) {
    let mut v = vec![0u8; len + 64];
    let o = v.as_ptr().align_offset(64);
    for b in &mut v[o..o + len] {
        *b = fill();
    }
    (v, o)
}

/// Int8 depthwise, as [`dw_case`] in `f32`; `fma`: interiors in `f32` multiply-adds even where
/// the CPU has the dot-product path.
fn dwq_case(
    k: Kernels,
    rng: &mut Rng,
    (blocks, hw, ks, st): (usize, usize, usize, usize),
    fma: bool,
) -> Case {
    let cp = blocks * 8;
    let w: Vec<i8> = (0..cp * ks * ks).map(|_| rng.next() as i8).collect();
    let b: Vec<i32> = (0..cp).map(|_| (rng.next() >> 52) as i32).collect();
    let sc: Vec<f32> = (0..cp).map(|_| 1e-3 * (1.5 + rng.f())).collect();
    let plen = depthwise_u8_packed_len(cp, ks);
    let (mut packed, po) = aligned_bytes(plen, || 0);
    pack_depthwise_u8(&w, &b, &sc, cp, ks, &mut packed[po..po + plen]).unwrap();
    let shape = DepthwiseShape::same(blocks, hw, hw, ks, st);
    let xl = cp * hw * hw;
    let (x, xo) = aligned_bytes(xl, || rng.next() as u8);
    let ohw = shape.out_h() * shape.out_w();
    let (mut y, yo) = aligned_bytes(cp * ohw, || 0);
    let tag = if fma { "-fma" } else { "" };
    Case {
        id: format!("dwq{ks}-s{st}-c{cp}-{hw}{tag}"),
        name: format!("dw u8 {ks}x{ks} s{st} c{cp:<3} @{hw}{tag}"),
        kind: "depthwise_u8",
        params: format!(r#"{{"c":{cp},"h":{hw},"w":{hw},"k":{ks},"stride":{st}}}"#),
        work: (ks * ks * cp * ohw) as f64,
        unit: "MAC",
        run: Box::new(move || {
            k.depthwise_u8_with(
                !fma,
                &packed[po..po + plen],
                shape,
                128,
                Src::new(&x[xo..xo + xl]),
                Dst::new(&mut y[yo..yo + cp * ohw]),
                Requant::new(5),
            )
            .unwrap();
            black_box(&mut y);
        }),
    }
}

/// An int8 Ghost module's cheap operation and concatenation on `c` channels at `hw x hw`
/// (GhostNet-1.0's shapes: a 3x3 depthwise conv with ReLU, both halves requantized into the
/// concatenation's scale): `fused`, one `depthwise_u8_concat` call; else the
/// `depthwise_u8` step and the two `concat_u8` steps it replaces (work: the concatenation's
/// bytes).
fn ghostq_case(k: Kernels, rng: &mut Rng, c: usize, hw: usize, fused: bool, direct: bool) -> Case {
    let blocks = c.div_ceil(8);
    let cp = blocks * 8;
    let w: Vec<i8> = (0..cp * 9).map(|_| rng.next() as i8).collect();
    let b: Vec<i32> = (0..cp).map(|_| (rng.next() >> 52) as i32).collect();
    let sc: Vec<f32> = (0..cp).map(|_| 1e-3 * (1.5 + rng.f())).collect();
    let plen = depthwise_u8_packed_len(cp, 3);
    let (mut packed, po) = aligned_bytes(plen, || 0);
    pack_depthwise_u8(&w, &b, &sc, cp, 3, &mut packed[po..po + plen]).unwrap();
    let shape = DepthwiseShape::same(blocks, hw, hw, 3, 1);
    let xl = cp * hw * hw;
    let (x, xo) = aligned_bytes(xl, || rng.next() as u8);
    let (mut y, yo) = aligned_bytes(xl, || 0);
    let out_len = (2 * c).div_ceil(8) * 8 * hw * hw;
    let (mut cat, co) = aligned_bytes(out_len, || 0);
    let g = GhostConcatU8 {
        channels: c,
        primary: U8Requant {
            in_scale: 0.0411,
            in_zero_point: 0,
            out_scale: 0.0507,
            out_zero_point: 0,
        },
        cheap: U8Requant {
            in_scale: if direct { 0.0507 } else { 0.0377 },
            in_zero_point: 0,
            out_scale: 0.0507,
            out_zero_point: 0,
        },
    };
    let mut lines = vec![0u8; depthwise_u8_concat_buffer_len(&shape, &g)];
    let (tag, how) = match (fused, direct) {
        (true, false) => ("", "fused"),
        (false, false) => ("-sep", "dw + 2 concats"),
        (true, true) => ("-inplace", "fused, in place"),
        (false, true) => ("-inplace-sep", "dw in place + concat"),
    };
    Case {
        id: format!("ghostq-c{c}-{hw}{tag}"),
        name: format!("ghost u8 dw3 + concat c{c:<3} @{hw} {how}"),
        kind: "depthwise_u8_concat",
        params: format!(r#"{{"c":{c},"h":{hw},"w":{hw}}}"#),
        work: out_len as f64,
        unit: "B",
        run: Box::new(move || {
            let p = &packed[po..po + plen];
            let (xs, cs) = (Src::new(&x[xo..xo + xl]), &mut cat[co..co + out_len]);
            if fused {
                let (rq, l) = (Requant::relu(0), &mut lines[..]);
                k.depthwise_u8_concat(p, shape, 0, xs, Dst::new(cs), rq, g, l)
                    .unwrap();
            } else {
                let ys = &mut y[yo..yo + xl];
                if direct {
                    // The conv writes its half of the concatenation (block-aligned).
                    let d = Dst::at(cs, c / 8);
                    k.depthwise_u8(p, shape, 0, xs, d, Requant::relu(0))
                        .unwrap();
                } else {
                    k.depthwise_u8(p, shape, 0, xs, Dst::new(ys), Requant::relu(0))
                        .unwrap();
                }
                let halves = [(&x[xo..xo + xl], 0, g.primary), (&*ys, c, g.cheap)];
                for (src, offset, r) in halves.into_iter().take(if direct { 1 } else { 2 }) {
                    let sh = ConcatU8Shape {
                        pixels: hw * hw,
                        channels: c,
                        channel_offset: offset,
                        out_channels: 2 * c,
                    };
                    k.concat_u8(sh, r, Src::new(src), Dst::new(cs)).unwrap();
                }
            }
            black_box(&mut cat);
        }),
    }
}

/// The int8 elementwise steps of a QDQ GhostNet-1.0 on `blocks` blocks of `side x side`:
/// the residual add, the SE channel scaling, the stem's quantization (f32 -> u8), the SE
/// squeeze (global average pool, in input bytes per second) and the second half of a Ghost
/// module's concatenation at a channel offset inside a block (`c/2 - 4` channels at
/// `c/2 - 4`), copied and requantized (in input bytes per second).
fn eltq_cases(k: Kernels, rng: &mut Rng, blocks: usize, side: usize) -> Vec<Case> {
    let pixels = side * side;
    let len = blocks * 8 * pixels;
    let (a, ao) = aligned_bytes(len, || rng.next() as u8);
    let (b, bo) = aligned_bytes(len, || rng.next() as u8);
    let (g, go) = aligned_bytes(blocks * 8, || rng.next() as u8);
    let (x, xo) = aligned_bytes(len, || rng.next() as u8);
    let f = Buf::from((0..len).map(|_| 4.0 * rng.f() - 1.0).collect());
    let (mut y1, y1o) = aligned_bytes(len, || 0);
    let (mut y2, y2o) = aligned_bytes(len, || 0);
    let (mut y3, y3o) = aligned_bytes(len, || 0);
    let p = U8BinaryParams {
        a: (0.0635, 123),
        b: (0.0215, 2),
        y: (0.0507, 126),
    };
    let q = U8BinaryParams {
        a: (0.0545, 108),
        b: (0.0021, 0),
        y: (0.0507, 126),
    };
    let c = blocks * 8;
    let params = format!(r#"{{"c":{c},"h":{side},"w":{side}}}"#);
    let (px, pxo) = aligned_bytes(len, || rng.next() as u8);
    let mut py = vec![0u8; blocks * 8];
    let pool = PoolU8Params {
        scale: 0.0213 / pixels as f32,
        in_zero_point: 3,
        out_zero_point: 120,
    };
    let half = c / 2 - 4;
    let cat = ConcatU8Shape {
        pixels,
        channels: half,
        channel_offset: half,
        out_channels: 2 * half,
    };
    let (cx, cxo) = aligned_bytes(half.div_ceil(8) * 8 * pixels, || rng.next() as u8);
    let cx = std::rc::Rc::new((cx, cxo));
    let out_len = (2 * half).div_ceil(8) * 8 * pixels;
    let cat_cases = [false, true].map(|requantized| {
        let (cx, mut cy) = (cx.clone(), vec![0u8; out_len]);
        let r = U8Requant {
            in_scale: if requantized { 0.0411 } else { 0.0507 },
            in_zero_point: if requantized { 117 } else { 126 },
            out_scale: 0.0507,
            out_zero_point: 126,
        };
        let (tag, how) = if requantized {
            ("q", "requant")
        } else {
            ("", "copy")
        };
        Case {
            id: format!("qcat{tag}-c{c}-{side}"),
            name: format!("concat u8 {how} c{half}@{half} @{side}"),
            kind: "concat_u8",
            params: params.clone(),
            work: (half * pixels) as f64,
            unit: "B",
            run: Box::new(move || {
                let (x, xo) = &*cx;
                k.concat_u8(
                    cat,
                    r,
                    Src::new(&x[*xo..*xo + half.div_ceil(8) * 8 * pixels]),
                    Dst::new(&mut cy),
                )
                .unwrap();
                black_box(&mut cy);
            }),
        }
    });
    let mut cases = vec![
        Case {
            id: format!("qgap-c{c}-{side}"),
            name: format!("avgpool u8 c{c:<3} @{side}"),
            kind: "global_avgpool_u8",
            params: params.clone(),
            work: len as f64,
            unit: "B",
            run: Box::new(move || {
                k.global_avgpool_u8(pool, blocks, pixels, &px[pxo..pxo + len], &mut py)
                    .unwrap();
                black_box(&mut py);
            }),
        },
        Case {
            id: format!("qadd-c{c}-{side}"),
            name: format!("add u8 c{c:<3} @{side}"),
            kind: "add_u8",
            params: params.clone(),
            work: len as f64,
            unit: "B",
            run: Box::new(move || {
                k.add_u8(
                    p,
                    len,
                    &a[ao..ao + len],
                    &b[bo..bo + len],
                    &mut y1[y1o..y1o + len],
                )
                .unwrap();
                black_box(&mut y1);
            }),
        },
        Case {
            id: format!("qscale-c{c}-{side}"),
            name: format!("scale u8 c{c:<3} @{side}"),
            kind: "scale_channels_u8",
            params: params.clone(),
            work: len as f64,
            unit: "B",
            run: Box::new(move || {
                k.scale_channels_u8(
                    q,
                    blocks,
                    pixels,
                    &x[xo..xo + len],
                    &g[go..go + blocks * 8],
                    &mut y2[y2o..y2o + len],
                )
                .unwrap();
                black_box(&mut y2);
            }),
        },
        Case {
            id: format!("quant-c{c}-{side}"),
            name: format!("quantize u8 c{c:<3} @{side}"),
            kind: "quantize_u8",
            params,
            work: len as f64,
            unit: "B",
            run: Box::new(move || {
                k.quantize_u8(
                    blocks,
                    pixels,
                    0.0373,
                    128,
                    Src::new(f.s()),
                    Dst::new(&mut y3[y3o..y3o + len]),
                )
                .unwrap();
                black_box(&mut y3);
            }),
        },
    ];
    cases.extend(cat_cases);
    cases
}

/// Int8 1x1 conv `kp -> np` over a `side x side` image (random `u8`/`s8` data, ReLU
/// requantization), as [`pw_case`] does in `f32`.
fn pwq_case(k: Kernels, rng: &mut Rng, kp: usize, np: usize, side: usize) -> Case {
    let hw = side * side;
    let w: Vec<i8> = (0..kp * np).map(|_| rng.next() as i8).collect();
    let b: Vec<i32> = (0..np).map(|_| (rng.next() >> 50) as i32).collect();
    let sc: Vec<f32> = (0..np).map(|_| 1e-4 * (1.5 + rng.f())).collect();
    let mut packed = vec![0u8; pointwise_u8_packed_len(kp, np) + 64];
    let po = packed.as_ptr().align_offset(64);
    let len = pointwise_u8_packed_len(kp, np);
    pack_pointwise_u8(&w, &b, &sc, 128, kp, np, &mut packed[po..po + len]).unwrap();
    let mut x = vec![0u8; kp * hw + 64];
    let xo = x.as_ptr().align_offset(64);
    for v in &mut x[xo..xo + kp * hw] {
        *v = rng.next() as u8;
    }
    let mut y = vec![0u8; np * hw + 64];
    let yo = y.as_ptr().align_offset(64);
    let shape = PointwiseShape {
        k_blocks: kp / 8,
        n_blocks: np / 8,
        pixels: hw,
    };
    Case {
        id: format!("pwq-{kp}-{np}-{side}"),
        name: format!("pw u8 {kp:>3}->{np:<3} @{hw}"),
        kind: "pointwise_u8",
        params: format!(r#"{{"k":{kp},"n":{np},"h":{side},"w":{side},"act":"relu"}}"#),
        work: (kp * np * hw) as f64,
        unit: "MAC",
        run: Box::new(move || {
            k.pointwise_u8(
                &packed[po..po + len],
                shape,
                Src::new(&x[xo..xo + kp * hw]),
                Dst::new(&mut y[yo..yo + np * hw]),
                Requant::relu(3),
            )
            .unwrap();
            black_box(&mut y);
        }),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A benchmark case: a closure doing `work` multiply-adds (or weight bytes, for GEMV) per
/// call. `id` is a stable machine name (`--only`); `kind` and `params` (a JSON object) describe
/// the layer for `--json` consumers such as `bench/layers.py`.
struct Case {
    id: String,
    name: String,
    kind: &'static str,
    params: String,
    work: f64,
    unit: &'static str,
    run: Box<dyn FnMut()>,
}

fn act_name(act: Activation) -> &'static str {
    match act {
        Activation::None => "none",
        Activation::Relu => "relu",
        Activation::Sigmoid => "sigmoid",
        Activation::Silu => "silu",
        Activation::Gelu => "gelu",
        Activation::Mish => "mish",
        _ => "other",
    }
}

/// 1x1 conv `kp -> np` over a `side x side` image.
fn pw_case(k: Kernels, rng: &mut Rng, kp: usize, np: usize, side: usize, act: Activation) -> Case {
    pw_case_with(k, rng, kp, np, side, act, false)
}

/// [`pw_case`] with its weights out of the core's caches, as in a whole model, where ~20 MB
/// of weights pass between two uses of a layer's: each call takes the next of enough weight
/// copies to fill 8 MiB, so the weights come from L3 or memory. Small images (GhostNetV2's
/// DFC gate 1x1s at 3x3 and 7x7) are bound by that stream.
fn pw_cold_case(k: Kernels, rng: &mut Rng, kp: usize, np: usize, side: usize) -> Case {
    pw_case_with(k, rng, kp, np, side, Activation::Relu, true)
}

fn pw_case_with(
    k: Kernels,
    rng: &mut Rng,
    kp: usize,
    np: usize,
    side: usize,
    act: Activation,
    cold: bool,
) -> Case {
    let hw = side * side;
    let len = pointwise_packed_len(kp, np);
    let copies = if cold { (8 << 20) / (4 * len) + 1 } else { 1 };
    let (w, b) = (rng.vec(kp * np), rng.vec(np));
    let packed: Vec<Buf> = (0..copies)
        .map(|_| {
            let mut p = Buf::zeros(len);
            pack_pointwise(&w, &b, kp, np, p.m()).unwrap();
            p
        })
        .collect();
    let x = Buf::from(rng.vec(kp * hw));
    let mut y = Buf::zeros(np * hw);
    let shape = PointwiseShape {
        k_blocks: kp / 8,
        n_blocks: np / 8,
        pixels: hw,
    };
    // ReLU cases keep their original ids (bench/layers.py and older tables use them).
    let (id_act, name_act) = match act {
        Activation::Relu => (String::new(), String::new()),
        a => (format!("-{}", act_name(a)), format!(" {}", act_name(a))),
    };
    let (id_pre, name_cold, param_cold) = if cold {
        ("pwc", " cold", r#","cold_weights":true"#)
    } else {
        ("pw", "", "")
    };
    let mut next = 0;
    Case {
        id: format!("{id_pre}-{kp}-{np}-{side}{id_act}"),
        name: format!("pw {kp:>3}->{np:<3} @{hw}{name_act}{name_cold}"),
        kind: "pointwise",
        params: format!(
            r#"{{"k":{kp},"n":{np},"h":{side},"w":{side},"act":"{}"{param_cold}}}"#,
            act_name(act)
        ),
        work: (kp * np * hw) as f64,
        unit: "MAC",
        run: Box::new(move || {
            next = (next + 1) % copies;
            k.pointwise(
                packed[next].s(),
                shape,
                Src::new(x.s()),
                Dst::new(y.m()),
                Epilogue::act(act),
            )
            .unwrap();
            black_box(&mut y);
        }),
    }
}

/// An expansion 1x1 and the depthwise after it, both with `act` (EfficientNet: SiLU;
/// MobileNetV2: ReLU6, timed as ReLU), `kp -> np` at `side x side`, `ks x ks` stride `st`:
/// fused ([`Kernels::pointwise_depthwise`], the expanded tensor in a ring of row bands) or as
/// the two kernels one after the other (the expanded tensor written whole and read back).
/// Work: both layers' MACs.
#[allow(clippy::too_many_arguments)]
fn pwdw_case(
    k: Kernels,
    rng: &mut Rng,
    kp: usize,
    np: usize,
    side: usize,
    ks: usize,
    st: usize,
    act: Activation,
    fused: bool,
) -> Case {
    let hw = side * side;
    let mut pw = Buf::zeros(pointwise_packed_len(kp, np));
    pack_pointwise(&rng.vec(kp * np), &rng.vec(np), kp, np, pw.m()).unwrap();
    let mut dw = Buf::zeros(depthwise_packed_len(np, ks));
    pack_depthwise(&rng.vec(np * ks * ks), &rng.vec(np), np, ks, dw.m()).unwrap();
    let sh = DepthwiseShape::same(np / 8, side, side, ks, st);
    let ohw = sh.out_h() * sh.out_w();
    let x = Buf::from(rng.vec(kp * hw));
    let mut y = Buf::zeros(np * ohw);
    let shape = PwDwShape {
        k_blocks: kp / 8,
        dw: sh,
    };
    let mut mid = Buf::zeros(if fused {
        pwdw_scratch_len(shape)
    } else {
        np * hw
    });
    let (tag, id) = if fused {
        ("fused", "f")
    } else {
        ("pw+dw", "u")
    };
    let an = act_name(act);
    Case {
        id: format!("pwdw{ks}-s{st}-{kp}-{np}-{side}-{an}-{id}"),
        name: format!("{tag} {kp}->{np} @{side} dw{ks} s{st} {an}"),
        kind: "pointwise_depthwise",
        params: format!(
            r#"{{"k":{kp},"n":{np},"h":{side},"w":{side},"dw_k":{ks},"stride":{st},"act":"{an}","fused":{fused}}}"#
        ),
        work: (kp * np * hw + np * ks * ks * ohw) as f64,
        unit: "MAC",
        run: Box::new(move || {
            if fused {
                k.pointwise_depthwise(
                    pw.s(),
                    dw.s(),
                    shape,
                    Src::new(x.s()),
                    Dst::new(y.m()),
                    act,
                    act,
                    None,
                    mid.m(),
                )
                .unwrap();
            } else {
                let ps = PointwiseShape {
                    k_blocks: kp / 8,
                    n_blocks: np / 8,
                    pixels: hw,
                };
                k.pointwise(
                    pw.s(),
                    ps,
                    Src::new(x.s()),
                    Dst::new(mid.m()),
                    Epilogue::act(act),
                )
                .unwrap();
                k.depthwise(
                    dw.s(),
                    sh,
                    Src::new(mid.s()),
                    Dst::new(y.m()),
                    Epilogue::act(act),
                )
                .unwrap();
            }
            black_box(&mut y);
        }),
    }
}

fn dw_case(k: Kernels, rng: &mut Rng, blocks: usize, hw: usize, ks: usize, st: usize) -> Case {
    dw_case_act(k, rng, (blocks, hw, ks, st), Activation::None)
}

/// [`dw_case`] with `act` in the epilogue; with an activation the layer also accumulates its
/// channel sums (the squeeze of the SE block that follows EfficientNet's depthwise layers).
fn dw_case_act(
    k: Kernels,
    rng: &mut Rng,
    (blocks, hw, ks, st): (usize, usize, usize, usize),
    act: Activation,
) -> Case {
    let cp = blocks * 8;
    let mut packed = Buf::zeros(depthwise_packed_len(cp, ks));
    pack_depthwise(&rng.vec(cp * ks * ks), &rng.vec(cp), cp, ks, packed.m()).unwrap();
    let shape = DepthwiseShape::same(blocks, hw, hw, ks, st);
    let x = Buf::from(rng.vec(cp * hw * hw));
    let ohw = shape.out_h() * shape.out_w();
    let mut y = Buf::zeros(cp * ohw);
    let (tag, act_name) = match act {
        Activation::None => ("", "none"),
        Activation::Silu => ("-silu", "silu"),
        _ => ("-act", "other"),
    };
    let sums = act != Activation::None;
    let mut sum = Buf::zeros(cp);
    Case {
        id: format!("dw{ks}-s{st}-c{cp}-{hw}{tag}"),
        name: format!("dw{ks}x{ks} s{st} c{cp:<3} @{hw}{tag}"),
        kind: "depthwise",
        params: format!(
            r#"{{"c":{cp},"h":{hw},"w":{hw},"k":{ks},"stride":{st},"pad":{},"oh":{},"ow":{},"act":"{act_name}","channel_sums":{sums}}}"#,
            ks / 2,
            shape.out_h(),
            shape.out_w()
        ),
        work: (ks * ks * cp * ohw) as f64,
        unit: "MAC",
        run: Box::new(move || {
            let epilogue = Epilogue {
                activation: act,
                residual: None,
                channel_sums: if sums { Some(sum.m()) } else { None },
            };
            k.depthwise(
                packed.s(),
                shape,
                Src::new(x.s()),
                Dst::new(y.m()),
                epilogue,
            )
            .unwrap();
            black_box(&mut y);
        }),
    }
}

/// General depthwise `kh x kw` (stride `st`, dilation `dil`, "same" padding) over a
/// `hw x hw` image with `act` in its epilogue (the DFC gate's 5x1 ends in a sigmoid);
/// `general_only` skips the 3x3/5x5 kernel (to compare the two).
#[allow(clippy::too_many_arguments)]
fn dwg_case(
    k: Kernels,
    rng: &mut Rng,
    blocks: usize,
    hw: usize,
    (kh, kw): (usize, usize),
    st: usize,
    dil: usize,
    general_only: bool,
    act: Activation,
) -> Case {
    let cp = blocks * 8;
    let mut packed = Buf::zeros(depthwise_general_packed_len(cp, kh, kw));
    pack_depthwise_general(&rng.vec(cp * kh * kw), &rng.vec(cp), cp, kh, kw, packed.m()).unwrap();
    let (ph, pw) = (dil * (kh - 1) / 2, dil * (kw - 1) / 2);
    let shape = DepthwiseGeneralShape {
        stride: [st, st],
        dilation: [dil, dil],
        pads: [ph, pw, ph, pw],
        ..DepthwiseGeneralShape::same(blocks, hw, hw, kh, kw)
    };
    let x = Buf::from(rng.vec(cp * hw * hw));
    let ohw = shape.out_h() * shape.out_w();
    let mut y = Buf::zeros(cp * ohw);
    let tag = if general_only { "g" } else { "" };
    let act_tag = match act {
        Activation::None => "",
        Activation::Sigmoid => "-sig",
        _ => "-act",
    };
    Case {
        id: format!("dwg{kh}x{kw}-s{st}-d{dil}-c{cp}-{hw}{tag}{act_tag}"),
        name: format!(
            "dw{kh}x{kw}{}{} c{cp:<3} @{hw}{}{act_tag}",
            if st > 1 {
                format!(" s{st}")
            } else {
                String::new()
            },
            if dil > 1 {
                format!(" d{dil}")
            } else {
                String::new()
            },
            if general_only { " gen" } else { "" }
        ),
        kind: "depthwise_general",
        params: format!(
            r#"{{"c":{cp},"h":{hw},"w":{hw},"kh":{kh},"kw":{kw},"stride":{st},"dilation":{dil},"oh":{},"ow":{},"act":"{act:?}","general_only":{general_only}}}"#,
            shape.out_h(),
            shape.out_w()
        ),
        work: (kh * kw * cp * ohw) as f64,
        unit: "MAC",
        run: Box::new(move || {
            let f = if general_only {
                Kernels::depthwise_general_only
            } else {
                Kernels::depthwise_general
            };
            f(
                k,
                packed.s(),
                shape,
                Src::new(x.s()),
                Dst::new(y.m()),
                Epilogue::act(act),
            )
            .unwrap();
            black_box(&mut y);
        }),
    }
}

/// A Ghost module; `gated` adds GhostNetV2's DFC gate (quarter resolution, nearest x2).
fn ghost_case(
    k: Kernels,
    rng: &mut Rng,
    (kp, nb, hw, res): (usize, usize, usize, bool),
    gated: bool,
) -> Case {
    let np = nb * 8;
    let mut pw = Buf::zeros(pointwise_packed_len(kp, np));
    pack_pointwise(&rng.vec(kp * np), &rng.vec(np), kp, np, pw.m()).unwrap();
    let mut dw = Buf::zeros(depthwise_packed_len(np, 3));
    pack_depthwise(&rng.vec(np * 9), &rng.vec(np), np, 3, dw.m()).unwrap();
    let shape = GhostShape {
        k_blocks: kp / 8,
        half_blocks: nb,
        h: hw,
        w: hw,
    };
    let x = Buf::from(rng.vec(kp * hw * hw));
    let r = Buf::from(rng.vec(2 * np * hw * hw));
    let mut y = Buf::zeros(2 * np * hw * hw);
    let mut scratch = Buf::zeros(if gated {
        ghost_gated_scratch_len(shape)
    } else {
        ghost_scratch_len(shape)
    });
    let gh = hw.div_ceil(2);
    let gate_shape = DfcShape {
        blocks: 2 * nb,
        gate_h: gh,
        gate_w: gh,
        h: hw,
        w: hw,
        coord: CoordMode::Asymmetric,
        nearest: NearestMode::Floor,
    };
    let mut gate = Buf::from(rng.vec(2 * np * gh * gh));
    let (primary, cheap) = if res {
        (Activation::None, Activation::None)
    } else {
        (Activation::Relu, Activation::Relu)
    };
    Case {
        id: format!(
            "ghost-{kp}-{np}-{hw}{}{}",
            if res { "-res" } else { "" },
            if gated { "-dfc" } else { "" }
        ),
        name: format!(
            "ghost {kp:>3}->{np}+{np}{}{} @{hw}",
            if res { " +res" } else { "" },
            if gated { " +dfc" } else { "" }
        ),
        kind: "ghost",
        params: format!(
            r#"{{"k":{kp},"half":{np},"h":{hw},"w":{hw},"primary":"{}","cheap":"{}","residual":{res},"dfc_gate":{gated}}}"#,
            act_name(primary),
            act_name(cheap)
        ),
        work: ((kp + 9) * np * hw * hw) as f64,
        unit: "MAC",
        run: Box::new(move || {
            let epilogue = GhostEpilogue {
                primary,
                cheap,
                residual: res.then(|| Src::new(r.s())),
                channel_sums: None,
            };
            let (xs, ys) = (Src::new(x.s()), Dst::new(y.m()));
            if gated {
                // As ghostc emits it: the gate conv's epilogue took the sigmoid.
                let gate = GhostGate {
                    gate: gate.m(),
                    shape: gate_shape,
                    activated: true,
                };
                k.ghost_gated(pw.s(), dw.s(), shape, xs, ys, epilogue, gate, scratch.m())
            } else {
                k.ghost(pw.s(), dw.s(), shape, xs, ys, epilogue, scratch.m())
            }
            .unwrap();
            black_box(&mut y);
        }),
    }
}

fn stem_case(k: Kernels, rng: &mut Rng, cold: bool) -> Case {
    let mut packed = Buf::zeros(conv_packed_len(3, 16, 3, 3));
    pack_conv(&rng.vec(16 * 27), &rng.vec(16), 3, 16, 3, 3, packed.m()).unwrap();
    let shape = ConvShape {
        cin: 3,
        layout: InputLayout::Nchw,
        in_h: 224,
        in_w: 224,
        out_blocks: 2,
        kh: 3,
        kw: 3,
        stride_h: 2,
        stride_w: 2,
        pads: [1, 1, 1, 1],
    };
    // Cold: each call takes the next of 48 input and output buffers (about 29 + 38 MB, more
    // than this machine's L3), as in a model whose other layers evict the image and the
    // stem's output between runs.
    let copies = if cold { 48 } else { 1 };
    let x: Vec<Buf> = (0..copies)
        .map(|_| Buf::from(rng.vec(3 * 224 * 224)))
        .collect();
    let mut y: Vec<Buf> = (0..copies).map(|_| Buf::zeros(16 * 112 * 112)).collect();
    let mut next = 0;
    Case {
        id: format!("stem-3-16-224{}", if cold { "-cold" } else { "" }),
        name: format!("stem 3x3 s2 3->16 @224{}", if cold { " cold" } else { "" }),
        kind: "conv",
        params: r#"{"cin":3,"cout":16,"h":224,"w":224,"k":3,"stride":2,"pad":1,"act":"relu"}"#
            .into(),
        work: (27 * 16 * 112 * 112) as f64,
        unit: "MAC",
        run: Box::new(move || {
            k.conv(
                packed.s(),
                shape,
                Src::new(x[next].s()),
                Dst::new(y[next].m()),
                Epilogue::act(Activation::Relu),
            )
            .unwrap();
            black_box(&mut y[next]);
            next = (next + 1) % copies;
        }),
    }
}

/// Which kernel a 3x3 conv case runs.
#[derive(Clone, Copy, PartialEq)]
enum ConvImpl {
    /// `conv_grouped` (register-tiled NCHW8c).
    Grouped,
    /// `conv_general` (the scalar fallback), for the before/after ratio.
    General,
    /// `conv` with NCHW8c input (dense only).
    Dense,
    /// `conv_winograd` (dense, stride 1 only); its rate counts the direct method's MACs.
    Winograd,
}

/// A 3x3 conv `c -> c` (pad 1) with `groups` groups over a `hw x hw` NCHW8c image (ReLU).
fn gconv_case(
    k: Kernels,
    rng: &mut Rng,
    (cin, cout, groups): (usize, usize, usize),
    hw: usize,
    st: usize,
    imp: ConvImpl,
) -> Case {
    let shape = GroupedConvShape {
        cin,
        cout,
        groups,
        out_blocks: cout.div_ceil(8),
        in_h: hw,
        in_w: hw,
        kh: 3,
        kw: 3,
        stride: [st, st],
        dilation: [1, 1],
        pads: [1, 1, 1, 1],
    };
    let lanes = cout.div_ceil(8) * 8;
    let cig = cin / groups;
    let w = rng.vec(lanes * cig * 9);
    let b = rng.vec(lanes);
    let x = Buf::from(rng.vec(cin.div_ceil(8) * 8 * hw * hw));
    let (oh, ow) = (shape.out_h(), shape.out_w());
    let mut y = Buf::zeros(lanes * oh * ow);
    let (tag, kind) = match imp {
        ConvImpl::Grouped => ("", "conv_grouped"),
        ConvImpl::General => (" gen", "conv_general"),
        ConvImpl::Dense => (" old", "conv"),
        ConvImpl::Winograd => (" wino", "conv_winograd"),
    };
    let id = format!(
        "gconv-{cin}-{cout}-g{groups}-{hw}-s{st}{}",
        tag.replace(' ', "-")
    );
    let name = if groups > 1 {
        format!("g3x3 s{st} c{cin} g{groups} @{hw}{tag}")
    } else {
        format!("3x3 s{st} {cin}->{cout} @{hw}{tag}")
    };
    let params = format!(
        r#"{{"cin":{cin},"cout":{cout},"groups":{groups},"h":{hw},"w":{hw},"k":3,"stride":{st},"pad":1,"act":"relu","impl":"{kind}"}}"#
    );
    let work = (cig * 9 * cout * oh * ow) as f64;
    let epi = || Epilogue::act(Activation::Relu);
    let run: Box<dyn FnMut()> = match imp {
        ConvImpl::Grouped => {
            let mut packed = Buf::zeros(grouped_packed_len(&shape));
            pack_conv_grouped(&w, &b, &shape, packed.m()).unwrap();
            Box::new(move || {
                k.conv_grouped(packed.s(), shape, Src::new(x.s()), Dst::new(y.m()), epi())
                    .unwrap();
                black_box(&mut y);
            })
        }
        ConvImpl::General => {
            let gs = GeneralConvShape {
                cin,
                cout,
                groups,
                in_h: hw,
                in_w: hw,
                kh: 3,
                kw: 3,
                stride: [st, st],
                dilation: [1, 1],
                pads: [1, 1, 1, 1],
            };
            let (w, b) = (
                Buf::from(w[..cout * cig * 9].to_vec()),
                Buf::from(b[..cout].to_vec()),
            );
            Box::new(move || {
                k.conv_general(w.s(), b.s(), gs, Src::new(x.s()), Dst::new(y.m()), epi())
                    .unwrap();
                black_box(&mut y);
            })
        }
        ConvImpl::Dense => {
            assert_eq!(groups, 1, "the dense kernel has no groups");
            let mut packed = Buf::zeros(conv_packed_len(cin, lanes, 3, 3));
            pack_conv(&w, &b, cin, lanes, 3, 3, packed.m()).unwrap();
            let cs = ConvShape {
                cin,
                layout: InputLayout::Nchw8c,
                in_h: hw,
                in_w: hw,
                out_blocks: lanes / 8,
                kh: 3,
                kw: 3,
                stride_h: st,
                stride_w: st,
                pads: [1, 1, 1, 1],
            };
            Box::new(move || {
                k.conv(packed.s(), cs, Src::new(x.s()), Dst::new(y.m()), epi())
                    .unwrap();
                black_box(&mut y);
            })
        }
        ConvImpl::Winograd => {
            assert!(groups == 1 && st == 1, "Winograd: dense, stride 1");
            let ws = WinogradShape {
                cin,
                cout,
                out_blocks: lanes / 8,
                in_h: hw,
                in_w: hw,
                pads: [1, 1, 1, 1],
            };
            let mut packed = Buf::zeros(winograd_packed_len(&ws));
            pack_conv_winograd(&w, &b, &ws, packed.m()).unwrap();
            let mut scratch = Buf::zeros(winograd_scratch_len(&ws));
            Box::new(move || {
                k.conv_winograd(
                    packed.s(),
                    ws,
                    Src::new(x.s()),
                    Dst::new(y.m()),
                    epi(),
                    scratch.m(),
                )
                .unwrap();
                black_box(&mut y);
            })
        }
    };
    Case {
        id,
        name,
        kind,
        params,
        work,
        unit: "MAC",
        run,
    }
}

fn fc_case(k: Kernels, rng: &mut Rng, kp: usize, np: usize) -> Case {
    let mut packed = Buf::zeros(pointwise_packed_len(kp, np));
    pack_pointwise(&rng.vec(kp * np), &rng.vec(np), kp, np, packed.m()).unwrap();
    let x = Buf::from(rng.vec(kp));
    let mut y = Buf::zeros(np);
    Case {
        id: format!("fc-{kp}-{np}"),
        name: format!("fc {kp}->{np}"),
        kind: "fc",
        params: format!(r#"{{"k":{kp},"n":{np},"act":"relu"}}"#),
        work: (kp * np * 4) as f64,
        unit: "B",
        run: Box::new(move || {
            k.fc(packed.s(), kp / 8, np / 8, x.s(), y.m(), Activation::Relu)
                .unwrap();
            black_box(&mut y);
        }),
    }
}

/// Sum of `v` with 8 independent ymm accumulators (AVX2), so only the load stream limits it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn read_sum_avx2(v: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 8];
    let chunks = v.chunks_exact(64);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: c has 64 floats, j*8 + 8 <= 64.
            *acc = _mm256_add_ps(*acc, unsafe { _mm256_loadu_ps(c.as_ptr().add(j * 8)) });
        }
    }
    let mut out = [0.0f32; 8];
    let mut t = acc[0];
    for a in &acc[1..] {
        t = _mm256_add_ps(t, *a);
    }
    // SAFETY: out has 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), t) };
    out.iter().sum::<f32>() + rest
}

/// Sum of `v`: the AVX2 loop where the CPU has it, else 8 scalar lanes.
fn read_sum(v: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 detected.
        return unsafe { read_sum_avx2(v) };
    }
    let mut acc = [0.0f32; 8];
    for c in v.chunks_exact(8) {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum()
}

/// Read bandwidth of a buffer as large as the `kp x np` FC's packed weights: the ceiling the
/// FC rows are compared with (the same buffer re-read each call, as the FC re-reads its
/// weights, so both come from the same cache level).
fn read_case(rng: &mut Rng, kp: usize, np: usize) -> Case {
    let len = pointwise_packed_len(kp, np);
    let x = Buf::from(rng.vec(len));
    Case {
        id: format!("read-{kp}-{np}"),
        name: format!("read bw (fc {kp}->{np})"),
        kind: "read",
        params: format!(r#"{{"bytes":{}}}"#, len * 4),
        work: (len * 4) as f64,
        unit: "B",
        run: Box::new(move || {
            black_box(read_sum(black_box(x.s())));
        }),
    }
}

/// Channel LayerNorm (ConvNeXt's `LayerNorm2d`) of `c` channels over `pixels` pixels, in bytes
/// read and written per second (`src` and `dst`; `gamma` and `beta` are noise), and a copy of
/// the same bytes from `src` to `dst` (`copy_from_slice`, glibc's `memcpy`): the kernel streams
/// memory, so the copy is its ceiling. Both reuse their buffers every call, as a model's arena
/// does between layers (2.4 MB at ConvNeXt-T's sizes: L2 or L3, not DRAM).
fn cnorm_cases(k: Kernels, rng: &mut Rng, c: usize, pixels: usize) -> [Case; 2] {
    let cp = c.div_ceil(8) * 8;
    let len = cp * pixels;
    let x = std::rc::Rc::new(Buf::from(rng.vec(len)));
    let (g, b) = (Buf::from(rng.vec(cp)), Buf::from(rng.vec(cp)));
    let (mut y, mut y2) = (Buf::zeros(len), Buf::zeros(len));
    let shape = ChannelNormShape {
        channels: c,
        pixels,
        eps: 1e-6,
    };
    let params = format!(r#"{{"c":{c},"pixels":{pixels}}}"#);
    let bytes = (2 * 4 * len) as f64;
    let x2 = x.clone();
    [
        Case {
            id: format!("cnorm-{c}-{pixels}"),
            name: format!("cnorm {c} @{pixels}"),
            kind: "channel_norm",
            params: params.clone(),
            work: bytes,
            unit: "B",
            run: Box::new(move || {
                k.channel_norm(shape, g.s(), b.s(), x.s(), y.m()).unwrap();
                black_box(&mut y);
            }),
        },
        Case {
            id: format!("copy-{c}-{pixels}"),
            name: format!("copy (cnorm {c} @{pixels})"),
            kind: "copy",
            params,
            work: bytes,
            unit: "B",
            run: Box::new(move || {
                y2.m().copy_from_slice(black_box(x2.s()));
                black_box(&mut y2);
            }),
        },
    ]
}

const USAGE: &str = "\
usage: ghost-bench [--quick | --reps N] [--filter S].. [--only ID[,ID..]] [--list] [--json] [--misalign]
  --quick         7 repetitions instead of 21
  --reps N        N repetitions (medians over them)
  --filter S      keep cases whose name or id contains S (repeatable: any match)
  --only IDS      keep exactly these case ids (comma-separated; see --list)
  --list          print the cases (id, name, work) without timing
  --json          print one JSON document instead of the table
  --misalign      start every buffer 16 bytes past a 64-byte boundary (default: on it)
  --int8          instead of the default cases: int8 and f32 pointwise on five GhostNet
                  shapes, alternating, with the int8 (vpdpbusd) peak; medians, p10s, ratios";

/// Command-line options.
struct Opts {
    reps: usize,
    filters: Vec<String>,
    only: Option<Vec<String>>,
    list: bool,
    json: bool,
    misalign: bool,
    int8: bool,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        reps: 21,
        filters: Vec::new(),
        only: None,
        list: false,
        json: false,
        misalign: false,
        int8: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => o.reps = 7,
            "--reps" => {
                let v = value("--reps")?;
                o.reps = match v.parse() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--reps: expected a positive integer, got {v:?}")),
                };
            }
            "--filter" => o.filters.push(value("--filter")?),
            "--only" => {
                let v = value("--only")?;
                o.only
                    .get_or_insert_with(Vec::new)
                    .extend(v.split(',').filter(|s| !s.is_empty()).map(String::from));
            }
            "--list" => o.list = true,
            "--json" => o.json = true,
            "--misalign" => o.misalign = true,
            "--int8" => o.int8 = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    Ok(o)
}

/// A JSON number, or `null` when not finite.
fn jnum(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// A JSON string literal.
fn jstr(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn jlist(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|&x| jnum(x)).collect();
    format!("[{}]", items.join(","))
}

/// The fields every `--json` case object starts with.
fn jcase_head(c: &Case) -> String {
    format!(
        r#""id":{},"name":{},"kind":{},"params":{},"unit":{},"work":{}"#,
        jstr(&c.id),
        jstr(&c.name),
        jstr(c.kind),
        c.params,
        jstr(c.unit),
        jnum(c.work)
    )
}

/// `(K_pad, N_pad, H = W)` of the `--int8` comparison.
const INT8_SHAPES: &[(usize, usize, usize)] = &[
    (16, 16, 112),
    (24, 72, 56),
    (40, 120, 28),
    (80, 200, 14),
    (160, 960, 7),
];

/// `(blocks, H = W, k, stride)` of the `--int8` depthwise comparison.
const INT8_DW_SHAPES: &[(usize, usize, usize, usize)] = &[
    (5, 56, 3, 1),
    (60, 7, 3, 1),
    (30, 14, 3, 1),
    (6, 112, 3, 2),
    (10, 56, 5, 2),
];

/// 10th percentile (nearest rank) of `v`.
fn p10(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[(v.len() - 1) / 10]
}

/// The `--int8` table: cases come in (f32, int8) pairs timed alternately in every repetition.
fn int8_report(cases: &[Case], samples: &[Vec<f64>], peak: f64, peaks8: &mut [f64], k: Kernels) {
    let peak8 = median(peaks8);
    println!(
        "isa {:?}, int8 path {}; thread CPU time; peaks (median of {}): f32 {peak:.1} GMAC/s \
         (12 FMA chains, zmm with AVX-512F), int8 {peak8:.1} GMAC/s (16 zmm vpdpbusd chains), ratio {:.2}",
        k.isa(),
        k.int8_path(),
        peaks8.len(),
        peak8 / peak
    );
    println!(
        "| shape | f32 us med / p10 | f32 GMAC/s | f32 % peak | int8 us med / p10 | int8 GMAC/s \
         | int8 % int8 peak | int8/f32 time med | p10 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // The conv cases come first, in (f32, int8) pairs; the elementwise ones (bytes) after.
    let convs = cases.iter().take_while(|c| c.unit == "MAC").count() / 2 * 2;
    for (pair, s) in cases[..convs].chunks(2).zip(samples.chunks(2)) {
        let (f, q) = (&pair[0], &pair[1]);
        let (fm, fp) = (median(&mut s[0].clone()), p10(&mut s[0].clone()));
        let (qm, qp) = (median(&mut s[1].clone()), p10(&mut s[1].clone()));
        println!(
            "| {} | {:.1} / {:.1} | {:.1} | {:.0} % | {:.1} / {:.1} | {:.1} | {:.0} % | {:.2} | {:.2} |",
            f.name.trim(),
            fm * 1e6,
            fp * 1e6,
            f.work / fm / 1e9,
            100.0 * f.work / fm / 1e9 / peak,
            qm * 1e6,
            qp * 1e6,
            q.work / qm / 1e9,
            100.0 * q.work / qm / 1e9 / peak8,
            qm / fm,
            qp / fp
        );
    }
    if convs < cases.len() {
        println!("\n| int8 elementwise | us med / p10 | GB/s (output bytes) |\n|---|---|---|");
    }
    for (c, s) in cases[convs..].iter().zip(&samples[convs..]) {
        let (m, p) = (median(&mut s.clone()), p10(&mut s.clone()));
        println!(
            "| {} | {:.1} / {:.1} | {:.2} |",
            c.name.trim(),
            m * 1e6,
            p * 1e6,
            c.work / m / 1e9
        );
    }
}

/// The measured bandwidth (GB/s) of the case `id` (`read-SHAPE`, `copy-SHAPE`), if it ran.
fn bandwidth_of(cases: &[Case], results: &[(f64, f64)], id: &str) -> Option<f64> {
    cases
        .iter()
        .zip(results)
        .find(|(c, _)| c.id == id)
        .map(|(_, &(_, g))| g)
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ghost-bench: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if opts.misalign {
        SKEW_BYTES.store(16, Ordering::Relaxed);
    }
    let skew = SKEW_BYTES.load(Ordering::Relaxed);
    let k = Kernels::new();
    let mut rng = Rng::new(1);
    if !opts.json {
        println!("isa: {:?}", k.isa());
    }
    let mut cases: Vec<Case> = Vec::new();
    // (K_pad, N_pad, H = W) of GhostNet-1.0's primary 1x1s (ghost halves padded to 8).
    let pw_shapes: &[(usize, usize, usize)] = &[
        (16, 8, 112),
        (16, 24, 112),
        (48, 16, 56),
        (24, 40, 56),
        (80, 16, 56),
        (80, 24, 28),
        (40, 64, 28),
        (128, 24, 28),
        (40, 120, 28),
        (240, 40, 14),
        (80, 104, 14),
        (208, 40, 14),
        (80, 240, 14),
        (480, 56, 14),
        (112, 336, 14),
        (672, 56, 14),
        (160, 480, 7),
        (960, 80, 7),
        (160, 960, 7),
    ];
    for &(kp, np, side) in pw_shapes {
        cases.push(pw_case(k, &mut rng, kp, np, side, Activation::Relu));
    }
    // Wide 1x1s with many input channels (ConvNeXt-T's MLPs, ResNet-50's bottlenecks): one
    // pixel tile reads K / 8 input blocks far apart (88-96 % of peak without cache blocking
    // on Zen 5 with AVX-512; a drop here is the first sign of a tile living in stack memory).
    for &(kp, np, side) in &[
        (96, 384, 56),
        (384, 96, 56),
        (768, 192, 28),
        (384, 1536, 14),
        (1536, 384, 14),
        (3072, 768, 7),
        (256, 64, 56),
        (1024, 256, 14),
    ] {
        cases.push(pw_case(k, &mut rng, kp, np, side, Activation::None));
    }
    // ConvNeXt-T's expansions end in GELU (fused in the epilogue): what it costs beside `none`.
    for &(kp, np, side) in &[(96, 384, 56), (384, 1536, 14)] {
        cases.push(pw_case(k, &mut rng, kp, np, side, Activation::Gelu));
    }
    // GhostNetV2's DFC gate 1x1s (at a quarter of the resolution: few pixels per weight)
    // with their weights out of cache, as between two inferences.
    for &(kp, np, side) in &[(160, 960, 3), (112, 672, 7), (80, 480, 7), (24, 72, 28)] {
        cases.push(pw_cold_case(k, &mut rng, kp, np, side));
        cases.push(pw_case(k, &mut rng, kp, np, side, Activation::Relu));
    }
    // EfficientNet-B0's expansion + depthwise pairs at high resolution (SiLU), and the first
    // with ReLU (MobileNetV2's), fused and not.
    let silu = Activation::Silu;
    for &(kp, np, side, ks, st, act) in &[
        (16, 96, 112, 3, 2, silu),
        (24, 144, 56, 3, 1, silu),
        (24, 144, 56, 5, 2, silu),
        (16, 96, 112, 3, 2, Activation::Relu),
    ] {
        for fused in [false, true] {
            cases.push(pwdw_case(k, &mut rng, kp, np, side, ks, st, act, fused));
        }
    }
    // EfficientNet-B0's expansion 1x1s, where SiLU follows the conv (issue 13): the same
    // shape without an activation beside each, so the table shows what the SiLU costs.
    for &(kp, np, side) in &[(16, 96, 112), (24, 144, 56), (40, 240, 28), (112, 672, 14)] {
        cases.push(pw_case(k, &mut rng, kp, np, side, Activation::Silu));
        cases.push(pw_case(k, &mut rng, kp, np, side, Activation::None));
    }
    // Fused Ghost modules: (K_pad, half blocks, H=W, residual).
    for &(kp, nb, hw, res) in &[
        (16, 1, 112, false),
        (16, 1, 112, true),
        (16, 3, 112, false),
        (24, 5, 56, false),
        (80, 2, 56, true),
        (40, 8, 28, false),
        (128, 3, 28, true),
        (80, 13, 14, false),
        (208, 5, 14, true),
        (112, 42, 14, false),
        (672, 7, 14, true),
        (160, 60, 7, false),
        (960, 10, 7, true),
    ] {
        cases.push(ghost_case(k, &mut rng, (kp, nb, hw, res), false));
    }
    // GhostNetV2's gated modules (the first of each stage's DFC blocks).
    for &m in &[
        (24, 5, 56, false),
        (40, 15, 28, false),
        (112, 42, 14, false),
        (160, 60, 7, false),
    ] {
        cases.push(ghost_case(k, &mut rng, m, true));
    }
    // Depthwise: cheap 3x3 s1 ops and the stride-2 bottleneck convs.
    for &(blocks, hw, ks, st) in &[
        (3, 112, 3, 1),
        (5, 56, 3, 1),
        (8, 28, 3, 1),
        (30, 14, 3, 1),
        (60, 7, 3, 1),
        (6, 112, 3, 2),
        (10, 56, 5, 2),
        (30, 28, 3, 2),
        (84, 14, 5, 2),
    ] {
        cases.push(dw_case(k, &mut rng, blocks, hw, ks, st));
    }
    // EfficientNet-B0's depthwise layers (SiLU, channel sums for the SE squeeze), each beside
    // the same layer without an activation.
    for &shape in &[
        (4, 112, 3, 1),
        (18, 56, 3, 1),
        (30, 28, 5, 1),
        (60, 14, 3, 1),
        (84, 14, 5, 1),
        (144, 7, 5, 1),
        (144, 7, 3, 1),
        (12, 112, 3, 2),
    ] {
        cases.push(dw_case_act(k, &mut rng, shape, Activation::None));
        cases.push(dw_case_act(k, &mut rng, shape, Activation::Silu));
    }
    // (Its 5x5 s2 c672 @14 without activation is above.)
    cases.push(dw_case_act(k, &mut rng, (84, 14, 5, 2), Activation::Silu));
    // General depthwise. GhostNetV2's DFC attention: 1x5 then 5x1 at the quarter-resolution
    // sizes of ghostnetv2_100 at 224 (channels = the Ghost module's output, unpadded: all are
    // multiples of 8).
    // 56 and 4 are the quarter resolutions of 112x112 inputs and of 7x7 ones pooled with
    // ceil (issue 12's range).
    for &(c, hw) in &[
        (48, 56),
        (72, 28),
        (120, 14),
        (240, 14),
        (200, 7),
        (184, 7),
        (480, 7),
        (672, 7),
        (960, 4),
        (960, 3),
    ] {
        for ks in [(1, 5), (5, 1)] {
            cases.push(dwg_case(
                k,
                &mut rng,
                c / 8,
                hw,
                ks,
                1,
                1,
                false,
                Activation::None,
            ));
        }
    }
    // The DFC gate's 5x1 as the model runs it: the sigmoid in its epilogue.
    for &(c, hw) in &[(72, 28), (240, 14), (672, 7), (960, 3)] {
        cases.push(dwg_case(
            k,
            &mut rng,
            c / 8,
            hw,
            (5, 1),
            1,
            1,
            false,
            Activation::Sigmoid,
        ));
    }
    // Large kernels and dilation.
    for &(blocks, hw, ks, dil) in &[
        (15, 28, (7, 7), 1),
        (30, 14, (7, 7), 1),
        (15, 28, (9, 9), 1),
        (30, 14, (9, 9), 1),
        (15, 28, (3, 3), 2),
        (30, 14, (3, 3), 2),
    ] {
        cases.push(dwg_case(
            k,
            &mut rng,
            blocks,
            hw,
            ks,
            1,
            dil,
            false,
            Activation::None,
        ));
    }
    // The 3x3/5x5 register kernel against the general one on the same layers.
    for &(blocks, hw, ks, st) in &[
        (8, 28, 3, 1),
        (30, 14, 3, 1),
        (60, 7, 3, 1),
        (6, 112, 3, 2),
        (30, 28, 3, 2),
        (10, 28, 5, 1),
        (10, 56, 5, 2),
        (84, 14, 5, 2),
    ] {
        for general_only in [false, true] {
            cases.push(dwg_case(
                k,
                &mut rng,
                blocks,
                hw,
                (ks, ks),
                st,
                1,
                general_only,
                Activation::None,
            ));
        }
    }
    cases.push(stem_case(k, &mut rng, false));
    cases.push(stem_case(k, &mut rng, true));
    // Grouped 3x3 convs of RegNetY-400MF at 224 (group width 8; the first block of a stage
    // has stride 2) and of a 16-channel-group RegNetY-800MF stage, and against the scalar
    // fallback on two of them.
    for &(c, g, hw, st) in &[
        (48, 6, 112, 2),
        (48, 6, 56, 1),
        (104, 13, 28, 1),
        (208, 26, 14, 1),
        (440, 55, 7, 1),
        (144, 9, 28, 1),
    ] {
        cases.push(gconv_case(
            k,
            &mut rng,
            (c, c, g),
            hw,
            st,
            ConvImpl::Grouped,
        ));
    }
    for &(c, g, hw) in &[(104, 13, 28), (440, 55, 7)] {
        cases.push(gconv_case(k, &mut rng, (c, c, g), hw, 1, ConvImpl::General));
    }
    // Dense 3x3 on NCHW8c (ResNet18 at 224, a YOLO neck at 640/16): `conv_grouped` against
    // the older direct kernel `conv` and (stride 1) Winograd on the same layers.
    for &(ci, co, hw, st) in &[
        (64, 64, 56, 1),
        (64, 128, 56, 2),
        (128, 128, 28, 1),
        (256, 256, 14, 1),
        (512, 512, 7, 1),
        (128, 128, 40, 1),
        (32, 32, 56, 1),
        (16, 32, 56, 1),
        (16, 64, 55, 1),
        (32, 128, 27, 1),
        (48, 192, 13, 1),
        (64, 64, 80, 1),
    ] {
        for imp in [ConvImpl::Grouped, ConvImpl::Dense, ConvImpl::Winograd] {
            if imp != ConvImpl::Winograd || st == 1 {
                cases.push(gconv_case(k, &mut rng, (ci, co, 1), hw, st, imp));
            }
        }
    }
    cases.push(fc_case(k, &mut rng, 960, 1280));
    cases.push(fc_case(k, &mut rng, 1280, 1000));
    cases.push(read_case(&mut rng, 960, 1280));
    cases.push(read_case(&mut rng, 1280, 1000));
    // ConvNeXt-T's LayerNorms (one per block, at each stage's size) beside a copy of the same
    // bytes; their own generator, so the cases above keep their data.
    let mut cn_rng = Rng::new(7);
    for &(c, px) in &[(96, 3136), (192, 784), (384, 196), (768, 49)] {
        cases.extend(cnorm_cases(k, &mut cn_rng, c, px));
    }
    // The int8 depthwise with and without the dot-product interiors (AVX-512 VNNI + VBMI).
    for &shape in INT8_DW_SHAPES {
        for fma in [true, false] {
            cases.push(dwq_case(k, &mut rng, shape, fma));
        }
    }
    if opts.int8 {
        cases.clear();
        for &(kp, np, side) in INT8_SHAPES {
            cases.push(pw_case(k, &mut rng, kp, np, side, Activation::Relu));
            cases.push(pwq_case(k, &mut rng, kp, np, side));
        }
        for &(blocks, hw, ks, st) in INT8_DW_SHAPES {
            cases.push(dw_case(k, &mut rng, blocks, hw, ks, st));
            cases.push(dwq_case(k, &mut rng, (blocks, hw, ks, st), false));
        }
        for (blocks, side) in [(2, 112), (84, 14)] {
            cases.extend(eltq_cases(k, &mut rng, blocks, side));
        }
        for (c, hw) in [(24, 112), (36, 56), (120, 28), (92, 14), (480, 7)] {
            for fused in [true, false] {
                cases.push(ghostq_case(k, &mut rng, c, hw, fused, false));
            }
        }
        for (c, hw) in [(24, 112), (480, 7)] {
            for fused in [true, false] {
                cases.push(ghostq_case(k, &mut rng, c, hw, fused, true));
            }
        }
    }
    // Selection. Every case is still constructed (same rng stream and allocations whatever
    // is selected); `--filter` keeps substring matches of the name or id, `--only` exact ids.
    if !opts.filters.is_empty() {
        cases.retain(|c| {
            opts.filters
                .iter()
                .any(|f| c.name.contains(f.as_str()) || c.id.contains(f.as_str()))
        });
    }
    if let Some(only) = &opts.only {
        if let Some(bad) = only.iter().find(|id| !cases.iter().any(|c| &c.id == *id)) {
            eprintln!("ghost-bench: no case with id {bad:?} (see --list)");
            std::process::exit(2);
        }
        cases.retain(|c| only.contains(&c.id));
    }
    if opts.list {
        if opts.json {
            let items: Vec<String> = cases
                .iter()
                .map(|c| format!("{{{}}}", jcase_head(c)))
                .collect();
            println!(
                "{{\"isa\":{},\"cases\":[\n{}\n]}}",
                jstr(&format!("{:?}", k.isa())),
                items.join(",\n")
            );
        } else {
            for c in &cases {
                println!("{:<24} {:<28} {:>12} {}", c.id, c.name, c.work, c.unit);
            }
        }
        return;
    }
    let reps = opts.reps;
    let target = 0.004; // seconds per timed sample
    let mut peaks = Vec::new();
    // Seconds per call, one per repetition.
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    // Calibrate iteration counts.
    let mut iters = Vec::new();
    for c in cases.iter_mut() {
        (c.run)();
        let t = now();
        (c.run)();
        let dt = (now() - t).max(1e-7);
        iters.push(((target / dt) as usize).max(1));
    }
    let mut peaks8 = Vec::new();
    for _ in 0..reps {
        peaks.push(peak_gmacs());
        if opts.int8 {
            peaks8.push(peak_int8_gmacs());
        }
        for (i, c) in cases.iter_mut().enumerate() {
            let t = now();
            for _ in 0..iters[i] {
                (c.run)();
            }
            samples[i].push((now() - t) / iters[i] as f64);
        }
    }
    let peak_samples = peaks.clone();
    let peak = median(&mut peaks);
    // Per case: (median seconds per call, G/s at that time). With an odd number of
    // repetitions this is the median of the per-repetition G/s.
    let results: Vec<(f64, f64)> = cases
        .iter()
        .zip(samples.iter())
        .map(|(c, s)| {
            let t = median(&mut s.clone());
            (t, c.work / t / 1e9)
        })
        .collect();
    if opts.int8 {
        int8_report(&cases, &samples, peak, &mut peaks8, k);
        return;
    }
    if opts.json {
        let items: Vec<String> = cases
            .iter()
            .zip(&results)
            .zip(samples.iter().zip(&iters))
            .map(|((c, &(t, g)), (s, &it))| {
                let pct = if c.unit == "MAC" {
                    jnum(100.0 * g / peak)
                } else {
                    "null".into()
                };
                format!(
                    r#"{{{},"iters":{it},"median_s":{},"median_gps":{},"pct_peak":{pct},"samples_s":{}}}"#,
                    jcase_head(c),
                    jnum(t),
                    jnum(g),
                    jlist(s)
                )
            })
            .collect();
        println!(
            "{{\"isa\":{},\"timing\":\"thread_cpu\",\"buffer_skew_bytes\":{skew},\"reps\":{reps},\"peak_gmacs\":{},\"peak_samples\":{},\"cases\":[\n{}\n]}}",
            jstr(&format!("{:?}", k.isa())),
            jnum(peak),
            jlist(&peak_samples),
            items.join(",\n")
        );
        return;
    }
    println!(
        "timing: thread CPU time; buffers {skew} B past 64-byte boundaries; peak (12 FMA chains, \
         zmm with AVX-512F): {peak:.1} GMAC/s (median of {reps})"
    );
    println!("{:<28} {:>10} {:>8}", "kernel", "G/s", "% peak");
    for (c, &(_, g)) in cases.iter().zip(&results) {
        if c.unit == "MAC" {
            println!("{:<28} {:>10.1} {:>7.0}%", c.name, g, 100.0 * g / peak);
        } else if let Some(bw) = (c.kind == "fc")
            .then(|| bandwidth_of(&cases, &results, &format!("read-{}", &c.id["fc-".len()..])))
            .flatten()
        {
            println!(
                "{:<28} {:>8.1}GB/s {:>5.0}% of read bw",
                c.name,
                g,
                100.0 * g / bw
            );
        } else if let Some(bw) = (c.kind == "channel_norm")
            .then(|| {
                bandwidth_of(
                    &cases,
                    &results,
                    &format!("copy-{}", &c.id["cnorm-".len()..]),
                )
            })
            .flatten()
        {
            println!(
                "{:<28} {:>8.1}GB/s {:>5.0}% of copy",
                c.name,
                g,
                100.0 * g / bw
            );
        } else {
            println!("{:<28} {:>8.1}GB/s", c.name, g);
        }
    }
}
