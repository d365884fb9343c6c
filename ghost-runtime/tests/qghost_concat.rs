//! Int8 depthwise conv writing a Ghost module's concatenation (`depthwise_u8_concat`): on
//! every path (dot-product and `f32` interiors, every ISA, thread splits) the bytes of the
//! scalar `depthwise_u8` followed by two scalar `concat_u8` calls (the input at channel 0, the
//! conv's output at channel `c`), which their own tests check against the ONNX formulas. Odd
//! channel counts (the second half at any lane of a block), widths from 1, 3x3 and 5x5, both
//! conversions requantizing or copying, the concatenation at a block offset of its buffer
//! (the blocks before it untouched), and the argument checks.

mod common;
use common::*;
use ghost_runtime::*;

#[derive(Debug)]
struct Case {
    c: usize,
    shape: DepthwiseShape,
    x: Vec<u8>,
    packed: Vec<u8>,
    xzp: u8,
    zp: u8,
    min: u8,
    max: u8,
    primary: U8Requant,
    cheap: U8Requant,
    out_off: usize,
}

fn params(rng: &mut Rng) -> (f32, u8) {
    let scale = [1e-3f32, 0.0137, 0.05, 0.5, 40.0][rng.range(0, 4)] * (1.0 + rng.f() * 0.3);
    let zp = [0u8, 128, 255, rng.range(0, 255) as u8][rng.range(0, 3)];
    (scale, zp)
}

impl Case {
    fn new(rng: &mut Rng, c: usize, h: usize, w: usize, k: usize) -> Case {
        let blocks = pad8(c) / 8;
        let shape = DepthwiseShape::same(blocks, h, w, k, 1);
        let x = (0..blocks * h * w * 8).map(|_| rng.next() as u8).collect();
        let cp = blocks * 8;
        let mut wt = vec![0i8; cp * k * k];
        for v in &mut wt[..c * k * k] {
            *v = rng.next() as i8;
        }
        let mut bias = vec![0i32; cp];
        let mut scale = vec![0f32; cp];
        for o in 0..c {
            bias[o] = (rng.next() % 60_001) as i32 - 30_000;
            scale[o] = (rng.f() + 1.5) * [1e-4, 1e-3, 0.01][rng.range(0, 2)];
        }
        let mut packed = vec![0u8; depthwise_u8_packed_len(cp, k)];
        pack_depthwise_u8(&wt, &bias, &scale, cp, k, &mut packed).unwrap();
        let (xs, xzp) = params(rng);
        let (ys, zp) = params(rng);
        let (min, max) = [(0, 255), (zp, 255)][rng.range(0, 1)];
        // The concatenation's parameters: sometimes the input's or the conv output's (a copy).
        let (cs, czp) = match rng.range(0, 3) {
            0 => (xs, xzp),
            1 => (ys, zp),
            _ => params(rng),
        };
        let r = |in_scale, in_zero_point| U8Requant {
            in_scale,
            in_zero_point,
            out_scale: cs,
            out_zero_point: czp,
        };
        Case {
            c,
            shape,
            x,
            packed,
            xzp,
            zp,
            min,
            max,
            primary: r(xs, xzp),
            cheap: r(ys, zp),
            out_off: rng.range(0, 1),
        }
    }

    /// The same case with the concatenation in the conv output's parameters (its half is
    /// then a copy: written in place when it starts on a block boundary).
    fn cheap_copied(mut self) -> Case {
        let (s, z) = (self.cheap.in_scale, self.cheap.in_zero_point);
        for r in [&mut self.primary, &mut self.cheap] {
            r.out_scale = s;
            r.out_zero_point = z;
        }
        self
    }

    fn pixels(&self) -> usize {
        self.shape.in_h * self.shape.in_w
    }

    fn requant(&self) -> Requant<'static> {
        Requant {
            zero_point: self.zp,
            min: self.min,
            max: self.max,
            offset: 0.0,
            residual: None,
        }
    }

    fn concat(&self) -> GhostConcatU8 {
        GhostConcatU8 {
            channels: self.c,
            primary: self.primary,
            cheap: self.cheap,
        }
    }

    /// The concatenation's buffer (its blocks after `out_off` others), filled with 7s.
    fn buffer(&self) -> Vec<u8> {
        vec![7u8; (self.out_off + (2 * self.c).div_ceil(8)) * self.pixels() * 8]
    }

    /// Scalar `depthwise_u8`, then `concat_u8` of the input and of the conv's output.
    fn reference(&self) -> Vec<u8> {
        let k = scalar();
        let mut y = vec![0u8; self.shape.blocks * self.pixels() * 8];
        k.depthwise_u8(
            &self.packed,
            self.shape,
            self.xzp,
            Src::new(&self.x),
            Dst::new(&mut y),
            self.requant(),
        )
        .unwrap();
        let mut out = self.buffer();
        for (src, offset, r) in [(&self.x, 0, self.primary), (&y, self.c, self.cheap)] {
            let shape = ConcatU8Shape {
                pixels: self.pixels(),
                channels: self.c,
                channel_offset: offset,
                out_channels: 2 * self.c,
            };
            k.concat_u8(shape, r, Src::new(src), Dst::at(&mut out, self.out_off))
                .unwrap();
        }
        out
    }

    /// A line buffer of `lines` lines, or as `depthwise_u8_concat_buffer_len` asks.
    fn lines(&self, lines: Option<usize>) -> Vec<u8> {
        let len = match lines {
            Some(n) => n * 8 * self.shape.in_w,
            None => depthwise_u8_concat_buffer_len(&self.shape, &self.concat()),
        };
        vec![0u8; len]
    }

    fn fused(&self, k: Kernels, dot: bool, lines: Option<usize>) -> Vec<u8> {
        let mut out = self.buffer();
        k.depthwise_u8_concat_with(
            dot,
            &self.packed,
            self.shape,
            self.xzp,
            Src::new(&self.x),
            Dst::at(&mut out, self.out_off),
            self.requant(),
            self.concat(),
            &mut self.lines(lines),
        )
        .unwrap();
        out
    }

    fn par(&self, fork: &dyn Fork, lines: Option<usize>) -> Vec<u8> {
        let mut out = self.buffer();
        Par::new(Kernels::new(), fork)
            .min_split_macs(0)
            .depthwise_u8_concat(
                &self.packed,
                self.shape,
                self.xzp,
                Src::new(&self.x),
                Dst::at(&mut out, self.out_off),
                self.requant(),
                self.concat(),
                &mut self.lines(lines),
            )
            .unwrap();
        out
    }
}

#[test]
fn depthwise_u8_concat_matches_depthwise_then_concat_on_every_path() {
    let mut rng = Rng::new(77);
    let mut cases = Vec::new();
    for _ in 0..trials(60) {
        let c = rng.range(1, 44);
        let k = if rng.bool() { 3 } else { 5 };
        let (h, w) = (rng.range(1, 13), rng.range(1, 21));
        cases.push(Case::new(&mut rng, c, h, w, k));
    }
    // GhostNet-1.0's cheap operations (the second half at lanes 4 of a block: 12, 20, 36, 92),
    // too slow under Miri.
    if !cfg!(miri) {
        for (c, hw) in [(8, 112), (12, 56), (36, 56), (20, 28), (92, 14), (80, 7)] {
            cases.push(Case::new(&mut rng, c, hw, hw, 3));
            cases.push(Case::new(&mut rng, c, hw, hw, 3).cheap_copied());
        }
        for c in [8, 16, 24] {
            cases.push(Case::new(&mut rng, c, 9, 7, 5).cheap_copied());
        }
    }
    for case in &cases {
        let want = case.reference();
        let what = format!("c {} {:?}", case.c, case.shape);
        for kern in int8_isas() {
            assert_eq!(
                case.fused(kern, true, None),
                want,
                "{:?} {what}",
                kern.isa()
            );
            let fma = case.fused(kern, false, None);
            assert_eq!(fma, want, "{:?} f32 interiors {what}", kern.isa());
        }
        // The smallest buffer (one line: groups of one line of one block) and a few lines.
        for lines in [1, 3] {
            let got = case.fused(Kernels::new(), true, Some(lines));
            assert_eq!(got, want, "{lines} lines {what}");
        }
        for fork in forks() {
            for lines in [None, Some(2), Some(16)] {
                let got = case.par(fork.as_ref(), lines);
                assert_eq!(got, want, "{} parts, {lines:?} lines {what}", fork.parts());
            }
        }
    }
}

#[test]
fn depthwise_u8_concat_rejects_what_it_cannot_write() {
    let mut rng = Rng::new(5);
    let case = Case::new(&mut rng, 12, 5, 6, 3);
    let run = |shape: DepthwiseShape, g: GhostConcatU8, rq: Requant<'_>, out: &mut [u8]| {
        reject(&case, shape, g, rq, out, &mut [0u8; 48])
    };
    let mut out = case.buffer();
    let g = case.concat();
    // Stride 2 (the input and output sizes differ).
    let s2 = DepthwiseShape::same(2, 5, 6, 3, 2);
    assert!(run(s2, g, case.requant(), &mut out).contains("shape"));
    // Channels that do not fill exactly `blocks` blocks.
    let g8 = GhostConcatU8 { channels: 8, ..g };
    assert!(run(case.shape, g8, case.requant(), &mut out).contains("concat.channels"));
    // A residual.
    let r = vec![0u8; case.x.len()];
    let rq = Requant {
        residual: Some(QResidual {
            src: Src::new(&r),
            zero_point: 0,
            scale: 1.0,
            conv_scale: 1.0,
            out_zero_point: 0,
        }),
        ..case.requant()
    };
    assert!(run(case.shape, g, rq, &mut out).contains("requant.residual"));
    // Different output parameters for the two halves; a zero scale.
    let mut bad = g;
    bad.cheap.out_zero_point = bad.primary.out_zero_point.wrapping_add(1);
    assert!(run(case.shape, bad, case.requant(), &mut out).contains("concat.cheap"));
    let mut bad = g;
    bad.primary.in_scale = 0.0;
    assert!(run(case.shape, bad, case.requant(), &mut out).contains("concat.primary.in_scale"));
    // An output one byte short of 3 blocks (24 channels) of 30 pixels.
    let mut short = vec![0u8; 3 * 30 * 8 - 1];
    assert!(run(case.shape, g, case.requant(), &mut short).contains("output"));
    // A line buffer shorter than a line (6 pixels), unless the conv writes in place.
    let short = reject(
        &case,
        case.shape,
        g,
        case.requant(),
        &mut out,
        &mut [0u8; 47],
    );
    assert!(short.contains("buffer"), "{short}");
    let in_place = Case::new(&mut rng, 16, 5, 6, 3).cheap_copied();
    let mut out = in_place.buffer();
    in_place_ok(&in_place, &mut out);
}

/// A conv writing in place needs no line buffer.
fn in_place_ok(case: &Case, out: &mut [u8]) {
    assert_eq!(
        depthwise_u8_concat_buffer_len(&case.shape, &case.concat()),
        0
    );
    Kernels::new()
        .depthwise_u8_concat(
            &case.packed,
            case.shape,
            case.xzp,
            Src::new(&case.x),
            Dst::at(out, case.out_off),
            case.requant(),
            case.concat(),
            &mut [],
        )
        .unwrap();
    assert_eq!(*out, case.reference()[..]);
}

/// The error of a call that must fail.
fn reject(
    case: &Case,
    shape: DepthwiseShape,
    g: GhostConcatU8,
    rq: Requant<'_>,
    out: &mut [u8],
    lines: &mut [u8],
) -> String {
    Kernels::new()
        .depthwise_u8_concat(
            &case.packed,
            shape,
            case.xzp,
            Src::new(&case.x),
            Dst::new(out),
            rq,
            g,
            lines,
        )
        .unwrap_err()
        .to_string()
}
