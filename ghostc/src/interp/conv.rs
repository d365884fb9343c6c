//! Convolution and BatchNorm: direct loops, f32 accumulation.

use super::{float_tensor, floats, Result};
use crate::ir::{Conv, ConvTranspose, Tensor, TensorType};

/// Grouped 2-D convolution over NCHW, as ONNX Conv.
///
/// For each output plane the loop nest is `(input channel, ky, kx, output row, output column)`:
/// one weight is broadcast along a whole output row, reading an input row with stride
/// `strides[1]`. The column range whose taps fall inside the input is computed up front, so the
/// innermost loop has no bounds branches (padding contributes zeros and is simply skipped).
pub(super) fn conv(
    c: &Conv,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out: &TensorType,
) -> Result<Tensor> {
    let (xs, ws, os) = (x.shape(), w.shape(), &out.shape);
    let (batch, c_in, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (c_out, c_per_group, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
    let (oh, ow) = (os[2], os[3]);
    let out_per_group = c_out / c.group;
    let (x, w) = (floats(x)?, floats(w)?);
    let bias = bias.map(floats).transpose()?;
    let mut y = vec![0.0f32; batch * c_out * oh * ow];
    let [sy, sx] = c.strides;
    let [dy, dx] = c.dilations;
    let (pad_top, pad_left) = (c.pads[0] as isize, c.pads[1] as isize);
    for n in 0..batch {
        for oc in 0..c_out {
            let group = oc / out_per_group;
            let plane = &mut y[(n * c_out + oc) * oh * ow..][..oh * ow];
            for icg in 0..c_per_group {
                let ic = group * c_per_group + icg;
                let x_plane = &x[(n * c_in + ic) * h * wd..][..h * wd];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let weight = w[((oc * c_per_group + icg) * kh + ky) * kw + kx];
                        // Input column of output column `ox` is `ox * sx + col_offset`.
                        let col_offset = (kx * dx) as isize - pad_left;
                        let (ox_lo, ox_hi) = valid_range(col_offset, sx, wd, ow);
                        if ox_lo == ox_hi {
                            // Every tap of this kernel column falls in the padding.
                            continue;
                        }
                        for oy in 0..oh {
                            let iy = (oy * sy + ky * dy) as isize - pad_top;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let x_row = &x_plane[iy as usize * wd..][..wd];
                            let y_row = &mut plane[oy * ow..][..ow];
                            if sx == 1 {
                                let start = (ox_lo as isize + col_offset) as usize;
                                let src = &x_row[start..start + (ox_hi - ox_lo)];
                                for (acc, &v) in y_row[ox_lo..ox_hi].iter_mut().zip(src) {
                                    *acc += weight * v;
                                }
                            } else {
                                for (ox, acc) in
                                    y_row.iter_mut().enumerate().take(ox_hi).skip(ox_lo)
                                {
                                    *acc += weight
                                        * x_row[(ox as isize * sx as isize + col_offset) as usize];
                                }
                            }
                        }
                    }
                }
            }
            if let Some(b) = bias {
                plane.iter_mut().for_each(|v| *v += b[oc]);
            }
        }
    }
    Ok(float_tensor(out.clone(), y))
}

/// 2-D transposed convolution over NCHW, as ONNX ConvTranspose, then the bias and `t.act`.
///
/// Scatter form: input pixel `(iy, ix)` times tap `(ky, kx)` adds to output pixel
/// `(iy * sy + ky * dy - pad_top, ix * sx + kx * dx - pad_left)`; taps landing in the cropped
/// border are skipped. The column range is computed per tap, as in [`conv`].
pub(super) fn conv_transpose(
    t: &ConvTranspose,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out: &TensorType,
) -> Result<Tensor> {
    let c = &t.conv;
    let (xs, ws, os) = (x.shape(), w.shape(), &out.shape);
    let (batch, c_in, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (out_per_group, kh, kw) = (ws[1], ws[2], ws[3]);
    let (c_out, oh, ow) = (os[1], os[2], os[3]);
    let in_per_group = c_in / c.group;
    let (x, w) = (floats(x)?, floats(w)?);
    let bias = bias.map(floats).transpose()?;
    let mut y = vec![0.0f32; batch * c_out * oh * ow];
    let [sy, sx] = c.strides;
    let [dy, dx] = c.dilations;
    let (pad_top, pad_left) = (c.pads[0] as isize, c.pads[1] as isize);
    for n in 0..batch {
        for oc in 0..c_out {
            let (group, ocg) = (oc / out_per_group, oc % out_per_group);
            let plane = &mut y[(n * c_out + oc) * oh * ow..][..oh * ow];
            for icg in 0..in_per_group {
                let ic = group * in_per_group + icg;
                let x_plane = &x[(n * c_in + ic) * h * wd..][..h * wd];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let weight = w[((ic * out_per_group + ocg) * kh + ky) * kw + kx];
                        // Output column of input column `ix` is `ix * sx + col_offset`.
                        let col_offset = (kx * dx) as isize - pad_left;
                        let (ix_lo, ix_hi) = valid_range(col_offset, sx, ow, wd);
                        for iy in 0..h {
                            let oy = (iy * sy + ky * dy) as isize - pad_top;
                            if oy < 0 || oy >= oh as isize {
                                continue;
                            }
                            let x_row = &x_plane[iy * wd..][..wd];
                            let y_row = &mut plane[oy as usize * ow..][..ow];
                            for (ix, &v) in x_row.iter().enumerate().take(ix_hi).skip(ix_lo) {
                                y_row[(ix as isize * sx as isize + col_offset) as usize] +=
                                    weight * v;
                            }
                        }
                    }
                }
            }
            let b = bias.map_or(0.0, |b| b[oc]);
            for v in plane.iter_mut() {
                *v += b;
                if let Some(a) = &t.act {
                    *v = super::elementwise::activate(a, *v);
                }
            }
        }
    }
    Ok(float_tensor(out.clone(), y))
}

/// The output positions `[lo, hi)` (of `n_out`) whose input index `o * stride + offset` lies in
/// `[0, n_in)`.
fn valid_range(offset: isize, stride: usize, n_in: usize, n_out: usize) -> (usize, usize) {
    let stride = stride as isize;
    // Smallest o with o * stride + offset >= 0.
    let lo = if offset >= 0 {
        0
    } else {
        (-offset + stride - 1) / stride
    };
    // Largest o with o * stride + offset <= n_in - 1, plus one.
    let last = n_in as isize - 1 - offset;
    let hi = if last < 0 { 0 } else { last / stride + 1 };
    let hi = (hi as usize).min(n_out);
    let lo = (lo as usize).min(hi);
    (lo, hi)
}

/// Inference-mode BatchNormalization over axis 1:
/// `y = (x - mean) / sqrt(var + epsilon) * scale + bias`.
pub(super) fn batch_norm(
    epsilon: f32,
    x: &Tensor,
    scale: &Tensor,
    bias: &Tensor,
    mean: &Tensor,
    var: &Tensor,
) -> Result<Tensor> {
    let shape = x.shape();
    let (batch, channels) = (shape[0], shape[1]);
    let inner: usize = shape[2..].iter().product();
    let (xv, scale, bias, mean, var) = (
        floats(x)?,
        floats(scale)?,
        floats(bias)?,
        floats(mean)?,
        floats(var)?,
    );
    let mut y = Vec::with_capacity(xv.len());
    for n in 0..batch {
        for c in 0..channels {
            let inv_std = 1.0 / (var[c] + epsilon).sqrt();
            let plane = &xv[(n * channels + c) * inner..][..inner];
            y.extend(
                plane
                    .iter()
                    .map(|&v| (v - mean[c]) * inv_std * scale[c] + bias[c]),
            );
        }
    }
    Ok(float_tensor(x.ty.clone(), y))
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::{eval1, t};
    use crate::ir::{BatchNorm, Conv, Op};

    fn conv_op(k: usize, s: usize, p: usize, d: usize, g: usize) -> Op {
        Op::Conv(Conv {
            kernel: [k, k],
            strides: [s, s],
            pads: [p; 4],
            dilations: [d, d],
            group: g,
        })
    }
    fn seq(n: usize) -> Vec<f32> {
        (1..=n).map(|v| v as f32).collect()
    }
    #[test]
    fn conv_3x3_by_hand() {
        // x = 1..9 in a 3x3 plane, all-ones 3x3 kernel, pad 1: each output sums its neighbourhood.
        let x = t(&[1, 1, 3, 3], &seq(9));
        let w = t(&[1, 1, 3, 3], &[1.0; 9]);
        let y = eval1(conv_op(3, 1, 1, 1, 1), &[&x, &w]);
        assert_eq!(
            y.as_f32().unwrap(),
            [12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]
        );
        // No padding, bias 0.5: the single full sum.
        let y = eval1(conv_op(3, 1, 0, 1, 1), &[&x, &w, &t(&[1], &[0.5])]);
        assert_eq!(y.shape(), [1, 1, 1, 1]);
        assert_eq!(y.as_f32().unwrap(), [45.5]);
        // Stride 2, pad 1: the four corners of the padded sum above.
        let y = eval1(conv_op(3, 2, 1, 1, 1), &[&x, &w]);
        assert_eq!(y.as_f32().unwrap(), [12.0, 16.0, 24.0, 28.0]);
    }

    #[test]
    fn conv_weights_are_not_flipped() {
        // Cross-correlation: kernel with a single 1 at (0, 0) and pad 1 shifts the image down-right.
        let x = t(&[1, 1, 3, 3], &seq(9));
        let mut k = [0.0; 9];
        k[0] = 1.0;
        let y = eval1(conv_op(3, 1, 1, 1, 1), &[&x, &t(&[1, 1, 3, 3], &k)]);
        assert_eq!(
            y.as_f32().unwrap(),
            [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 4.0, 5.0]
        );
    }

    #[test]
    fn conv_dilation_and_asymmetric_pads() {
        // 5x5 input 1..25, 2x2 ones kernel with dilation 2: x[i][j]+x[i][j+2]+x[i+2][j]+x[i+2][j+2].
        let x = t(&[1, 1, 5, 5], &seq(25));
        let w = t(&[1, 1, 2, 2], &[1.0; 4]);
        let op = Op::Conv(Conv {
            kernel: [2, 2],
            strides: [1, 1],
            pads: [0; 4],
            dilations: [2, 2],
            group: 1,
        });
        let y = eval1(op, &[&x, &w]);
        assert_eq!(y.shape(), [1, 1, 3, 3]);
        // (1 + 3 + 11 + 13) = 28, then +1 per column and +5 per row.
        assert_eq!(
            y.as_f32().unwrap(),
            [28.0, 32.0, 36.0, 48.0, 52.0, 56.0, 68.0, 72.0, 76.0]
        );
        // 1x1 kernel, pads top 1 left 0 bottom 0 right 1: the image shifted down, zero column right.
        let x = t(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let op = Op::Conv(Conv {
            kernel: [1, 1],
            strides: [1, 1],
            pads: [1, 0, 0, 1],
            dilations: [1, 1],
            group: 1,
        });
        let y = eval1(op, &[&x, &t(&[1, 1, 1, 1], &[2.0])]);
        assert_eq!(y.shape(), [1, 1, 3, 3]);
        assert_eq!(
            y.as_f32().unwrap(),
            [0.0, 0.0, 0.0, 2.0, 4.0, 0.0, 6.0, 8.0, 0.0]
        );
    }

    #[test]
    fn grouped_and_depthwise_conv() {
        // 4 input channels, 2 groups, 1x1: out0 = x0 + 2*x1, out1 = 3*x2 + 4*x3.
        let x = t(&[1, 4, 1, 2], &[1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0]);
        let w = t(&[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]);
        let y = eval1(conv_op(1, 1, 0, 1, 2), &[&x, &w]);
        assert_eq!(y.as_f32().unwrap(), [5.0, 50.0, 25.0, 250.0]);
        // Depthwise: each channel scaled by its own weight, batch of 2.
        let x = t(&[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]);
        let w = t(&[2, 1, 1, 1], &[10.0, 100.0]);
        let y = eval1(conv_op(1, 1, 0, 1, 2), &[&x, &w, &t(&[2], &[1.0, 2.0])]);
        assert_eq!(y.as_f32().unwrap(), [11.0, 202.0, 31.0, 402.0]);
    }

    #[test]
    fn conv_stride_with_padding_matches_naive() {
        // Compare the range-clipped loops against a naive per-tap bounds check.
        let (h, w, k, s, p, d) = (7usize, 6usize, 3usize, 2usize, 2usize, 2usize);
        let xv: Vec<f32> = (0..2 * h * w)
            .map(|i| ((i * 7919) % 13) as f32 - 6.0)
            .collect();
        let wv: Vec<f32> = (0..3 * 2 * k * k)
            .map(|i| ((i * 31) % 5) as f32 - 2.0)
            .collect();
        let x = t(&[1, 2, h, w], &xv);
        let wt = t(&[3, 2, k, k], &wv);
        let y = eval1(conv_op(k, s, p, d, 1), &[&x, &wt]);
        let (oh, ow) = (y.shape()[2], y.shape()[3]);
        let mut expected = vec![0.0f32; 3 * oh * ow];
        for oc in 0..3 {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0;
                    for ic in 0..2 {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky * d) as isize - p as isize;
                                let ix = (ox * s + kx * d) as isize - p as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    acc += wv[((oc * 2 + ic) * k + ky) * k + kx]
                                        * xv[(ic * h + iy as usize) * w + ix as usize];
                                }
                            }
                        }
                    }
                    expected[(oc * oh + oy) * ow + ox] = acc;
                }
            }
        }
        assert_eq!(y.as_f32().unwrap(), &expected[..]);
    }

    #[test]
    fn kernel_larger_than_input() {
        // 5x5 kernel, pad 2, on a 1x1 plane (GhostNet's last stages at small resolutions): only
        // the centre tap sees data. Also with stride 2 and on a 1x2 plane.
        let mut k = [0.0; 25];
        k[12] = 3.0;
        k[13] = 5.0;
        let w = t(&[1, 1, 5, 5], &k);
        let y = eval1(conv_op(5, 1, 2, 1, 1), &[&t(&[1, 1, 1, 1], &[2.0]), &w]);
        assert_eq!(y.as_f32().unwrap(), [6.0]);
        let y = eval1(conv_op(5, 2, 2, 1, 1), &[&t(&[1, 1, 1, 1], &[2.0]), &w]);
        assert_eq!(y.as_f32().unwrap(), [6.0]);
        let y = eval1(
            conv_op(5, 1, 2, 1, 1),
            &[&t(&[1, 1, 1, 2], &[2.0, 10.0]), &w],
        );
        assert_eq!(y.as_f32().unwrap(), [56.0, 30.0]);
        // Padding wider than the kernel reach: outputs at the rim see only padding.
        let y = eval1(
            conv_op(1, 1, 2, 1, 1),
            &[&t(&[1, 1, 1, 1], &[2.0]), &t(&[1, 1, 1, 1], &[1.0])],
        );
        assert_eq!(y.shape(), [1, 1, 5, 5]);
        assert_eq!(y.as_f32().unwrap().iter().sum::<f32>(), 2.0);
    }

    #[test]
    fn batch_norm_by_hand() {
        let x = t(&[1, 2, 1, 2], &[1.0, 3.0, 10.0, 20.0]);
        let scale = t(&[2], &[2.0, 1.0]);
        let bias = t(&[2], &[0.5, 0.0]);
        let mean = t(&[2], &[1.0, 10.0]);
        let var = t(&[2], &[4.0, 100.0]);
        let y = eval1(
            Op::BatchNorm(BatchNorm { epsilon: 0.0 }),
            &[&x, &scale, &bias, &mean, &var],
        );
        // ch0: (x - 1) / 2 * 2 + 0.5; ch1: (x - 10) / 10.
        assert_eq!(y.as_f32().unwrap(), [0.5, 2.5, 0.0, 1.0]);
    }
}
