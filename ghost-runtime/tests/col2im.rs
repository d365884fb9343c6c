//! The transposed convolution's gather (`col2im`) against a scatter-form f64 reference on odd
//! shapes (kernels, strides, dilations and crops of every size, outputs the crop clips), and
//! its argument checks.

mod common;
use common::*;
use ghost_runtime::*;

/// `out[b][oy][ox][l]` by scattering every column entry to the output pixel it reaches.
fn scatter(cols: &[f32], s: &ConvTransposeShape) -> Vec<f64> {
    let mut out = vec![0.0f64; s.out_len()];
    let in_px = s.in_h * s.in_w;
    for ky in 0..s.kh {
        for kx in 0..s.kw {
            for b in 0..s.blocks {
                let tap = (ky * s.kw + kx) * s.blocks + b;
                for iy in 0..s.in_h {
                    for ix in 0..s.in_w {
                        let oy =
                            (iy * s.stride_h + ky * s.dilation_h) as isize - s.pad_top as isize;
                        let ox =
                            (ix * s.stride_w + kx * s.dilation_w) as isize - s.pad_left as isize;
                        if oy < 0 || ox < 0 || oy >= s.out_h as isize || ox >= s.out_w as isize {
                            continue;
                        }
                        for l in 0..8 {
                            let v = cols[((tap * in_px) + iy * s.in_w + ix) * 8 + l];
                            let o = ((b * s.out_h + oy as usize) * s.out_w + ox as usize) * 8 + l;
                            out[o] += v as f64;
                        }
                    }
                }
            }
        }
    }
    out
}

fn random_shape(rng: &mut Rng) -> ConvTransposeShape {
    let (kh, kw) = (rng.range(1, 5), rng.range(1, 5));
    let (stride_h, stride_w) = (rng.range(1, 3), rng.range(1, 3));
    let (dilation_h, dilation_w) = (rng.range(1, 2), rng.range(1, 2));
    let (in_h, in_w) = (rng.range(1, 9), rng.range(1, 9));
    let full = |i: usize, s: usize, k: usize, d: usize| (i - 1) * s + (k - 1) * d + 1;
    let (fh, fw) = (
        full(in_h, stride_h, kh, dilation_h),
        full(in_w, stride_w, kw, dilation_w),
    );
    // Crop up to two rows/columns per side, keeping at least one; output_padding may add one.
    let (pt, pb) = (rng.range(0, 2).min(fh - 1), rng.range(0, 2));
    let (pl, pr) = (rng.range(0, 2).min(fw - 1), rng.range(0, 2));
    let out_h = (fh - pt).saturating_sub(pb).max(1) + rng.range(0, stride_h - 1);
    let out_w = (fw - pl).saturating_sub(pr).max(1) + rng.range(0, stride_w - 1);
    ConvTransposeShape {
        blocks: rng.range(1, 3),
        in_h,
        in_w,
        out_h,
        out_w,
        kh,
        kw,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        pad_top: pt,
        pad_left: pl,
    }
}

#[test]
fn col2im_matches_the_scatter_formula_on_odd_shapes() {
    let mut rng = Rng::new(0xC012);
    for case in 0..300 {
        let s = random_shape(&mut rng);
        let cols = rng.vec(s.cols_len());
        let mut got = vec![f32::NAN; s.out_len() + 5];
        col2im(&cols, &s, &mut got).unwrap();
        let want = scatter(&cols, &s);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "case {case} {s:?}: [{i}] {g} vs {w}"
            );
        }
        // Nothing past the output is written.
        assert!(got[s.out_len()..].iter().all(|v| v.is_nan()), "case {case}");
    }
}

#[test]
fn col2im_rejects_short_buffers_and_zero_strides() {
    let s = ConvTransposeShape {
        blocks: 2,
        in_h: 3,
        in_w: 4,
        out_h: 6,
        out_w: 8,
        kh: 2,
        kw: 2,
        stride_h: 2,
        stride_w: 2,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: 0,
    };
    let cols = vec![0.0; s.cols_len()];
    let mut dst = vec![0.0; s.out_len()];
    assert!(col2im(&cols, &s, &mut dst).is_ok());
    assert!(col2im(&cols[1..], &s, &mut dst).is_err());
    assert!(col2im(&cols, &s, &mut dst[1..]).is_err());
    let zero = ConvTransposeShape { stride_w: 0, ..s };
    assert!(col2im(&cols, &zero, &mut dst).is_err());
}

/// The fused form on every ISA gives, bit for bit, what the gather followed by the per-channel
/// step and the unary function gives on the whole output; the bias length is checked.
#[test]
fn col2im_fused_equals_gather_then_bias_and_activation() {
    let mut rng = Rng::new(0xC013);
    let posts = [
        None,
        Some(glue::Unary::Tanh),
        Some(glue::Unary::Sigmoid),
        Some(glue::Unary::LeakyRelu { alpha: 0.1 }),
    ];
    for k in all_isas() {
        for case in 0..60 {
            let s = random_shape(&mut rng);
            let cols = rng.vec(s.cols_len());
            let bias = rng.vec(s.blocks * 8);
            let (act, post) = (rng.act(), posts[case % posts.len()]);
            let mut want = vec![f32::NAN; s.out_len()];
            col2im(&cols, &s, &mut want).unwrap();
            k.channel_assign(
                BinaryOp::Add,
                &mut want,
                s.blocks,
                s.out_h * s.out_w,
                &bias,
                act,
            )
            .unwrap();
            if let Some(f) = post {
                glue::unary(k, f, &mut want);
            }
            let mut got = vec![f32::NAN; s.out_len() + 3];
            col2im_fused(k, &cols, &s, &mut got, &bias, act, post).unwrap();
            assert_eq!(
                bits(&got[..s.out_len()]),
                bits(&want),
                "{:?} case {case} {s:?} {act:?} {post:?}",
                k.isa()
            );
            assert!(got[s.out_len()..].iter().all(|v| v.is_nan()), "case {case}");
            let short = col2im_fused(k, &cols, &s, &mut got, &bias[1..], act, post);
            assert!(short.is_err(), "case {case}: short bias accepted");
        }
    }
}
