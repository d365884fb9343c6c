//! Resize: nearest, n-linear and cubic, with the ONNX coordinate transforms.
//!
//! Every mode is separable, so the output is computed one axis at a time: for each output
//! coordinate of an axis, a short list of (input coordinate, weight) taps. Coordinates are
//! computed in f32 as ONNX Runtime does, including its shortcut that an axis with scale 1 maps
//! output coordinate `i` to input coordinate `i`.

use super::shape::{gather_data, per_axis_map};
use super::{floats, Result};
use crate::ir::{CoordTransform, NearestMode, Resize, ResizeMode, Tensor, TensorType};

pub(super) fn resize(r: &Resize, x: &Tensor, out: &TensorType) -> Result<Tensor> {
    let in_shape = x.shape();
    if r.mode == ResizeMode::Nearest {
        let source: Vec<Vec<Option<usize>>> = (0..in_shape.len())
            .map(|d| {
                (0..out.shape[d])
                    .map(|i| Some(nearest_index(r, d, i, in_shape[d], out.shape[d])))
                    .collect()
            })
            .collect();
        let idx = per_axis_map(in_shape, &out.shape, &source);
        return Ok(Tensor {
            ty: out.clone(),
            data: gather_data(&x.data, &idx, 0.0),
        });
    }
    let mut shape = in_shape.to_vec();
    let mut data = floats(x)?.to_vec();
    for d in 0..shape.len() {
        let taps: Vec<Vec<(usize, f32)>> = (0..out.shape[d])
            .map(|i| interpolation_taps(r, d, i, shape[d], out.shape[d]))
            .collect();
        let identity =
            shape[d] == out.shape[d] && taps.iter().enumerate().all(|(i, t)| t[..] == [(i, 1.0)]);
        if identity {
            continue;
        }
        let outer: usize = shape[..d].iter().product();
        let inner: usize = shape[d + 1..].iter().product();
        let n_in = shape[d];
        let mut next = vec![0.0f32; outer * taps.len() * inner];
        for o in 0..outer {
            for (i, tap) in taps.iter().enumerate() {
                let dst = &mut next[(o * taps.len() + i) * inner..][..inner];
                for &(src, w) in tap {
                    let row = &data[(o * n_in + src) * inner..][..inner];
                    dst.iter_mut().zip(row).for_each(|(acc, &v)| *acc += w * v);
                }
            }
        }
        shape[d] = out.shape[d];
        data = next;
    }
    Ok(Tensor {
        ty: out.clone(),
        data: crate::ir::Data::F32(data),
    })
}

/// Input coordinate (possibly fractional, possibly outside the input) that output coordinate
/// `i` of axis `d` samples.
fn original_coordinate(r: &Resize, d: usize, i: usize, n_in: usize, n_out: usize) -> f32 {
    let (x, scale) = (i as f32, r.scales[d]);
    if scale == 1.0 {
        return x;
    }
    let (len_in, len_out) = (n_in as f32, n_out as f32);
    match r.coord {
        CoordTransform::HalfPixel => (x + 0.5) / scale - 0.5,
        CoordTransform::PytorchHalfPixel => {
            if n_out > 1 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        CoordTransform::AlignCorners => {
            if n_out == 1 {
                0.0
            } else {
                x * (len_in - 1.0) / (len_out - 1.0)
            }
        }
        CoordTransform::Asymmetric => x / scale,
        CoordTransform::TfHalfPixelForNearest => (x + 0.5) / scale,
    }
}

fn nearest_index(r: &Resize, d: usize, i: usize, n_in: usize, n_out: usize) -> usize {
    if r.scales[d] == 1.0 {
        return i.min(n_in.saturating_sub(1));
    }
    let x = original_coordinate(r, d, i, n_in, n_out);
    let is_half = x == x.floor() + 0.5;
    let rounded = match r.nearest {
        NearestMode::RoundPreferFloor if is_half => x.floor(),
        NearestMode::RoundPreferCeil if is_half => x.ceil(),
        NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => x.round(),
        NearestMode::Floor => x.floor(),
        NearestMode::Ceil => x.ceil(),
    };
    (rounded.max(0.0) as usize).min(n_in.saturating_sub(1))
}

/// Linear or cubic taps for output coordinate `i` of axis `d`.
fn interpolation_taps(
    r: &Resize,
    d: usize,
    i: usize,
    n_in: usize,
    n_out: usize,
) -> Vec<(usize, f32)> {
    let x = original_coordinate(r, d, i, n_in, n_out);
    let last = n_in as f32 - 1.0;
    if r.mode == ResizeMode::Linear {
        // Clamp into the input, then blend the two neighbours (one when they coincide).
        let x = x.clamp(0.0, last);
        let x1 = (x as usize).min(n_in - 1);
        let x2 = (x1 + 1).min(n_in - 1);
        if x1 == x2 {
            return vec![(x1, 1.0)];
        }
        let (w2, w1) = ((x - x1 as f32).abs(), (x - x2 as f32).abs());
        return [(x1, w1), (x2, w2)]
            .into_iter()
            .filter(|&(_, w)| w != 0.0)
            .collect();
    }
    // Cubic: four taps around floor(x), Keys kernel with parameter a; out-of-range taps read the
    // edge, or with exclude_outside are dropped and the rest renormalized.
    let base = x.floor();
    let s = x - base;
    let a = r.cubic_coeff_a;
    let coeffs = [
        ((a * (s + 1.0) - 5.0 * a) * (s + 1.0) + 8.0 * a) * (s + 1.0) - 4.0 * a,
        ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
        ((a + 2.0) * (1.0 - s) - (a + 3.0)) * (1.0 - s) * (1.0 - s) + 1.0,
        ((a * (2.0 - s) - 5.0 * a) * (2.0 - s) + 8.0 * a) * (2.0 - s) - 4.0 * a,
    ];
    let mut taps = Vec::with_capacity(4);
    for (k, &c) in coeffs.iter().enumerate() {
        let pos = base as i64 - 1 + k as i64;
        let inside = (0..n_in as i64).contains(&pos);
        if r.exclude_outside && !inside {
            continue;
        }
        taps.push((pos.clamp(0, n_in as i64 - 1) as usize, c));
    }
    if r.exclude_outside {
        let total: f32 = taps.iter().map(|t| t.1).sum();
        taps.iter_mut().for_each(|t| t.1 /= total);
    }
    taps
}

// Expected values are kept digit for digit as published (ONNX docs) or printed (ONNX Runtime).
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod tests {
    use crate::interp::eval_op;
    use crate::interp::test_util::t;
    use crate::ir::{CoordTransform, NearestMode, Op, Resize, ResizeMode, Tensor};

    fn resize(
        x: &Tensor,
        sizes: &[usize],
        scales: &[f32],
        mode: ResizeMode,
        coord: CoordTransform,
        nearest: NearestMode,
    ) -> Vec<f32> {
        let op = Op::Resize(Resize {
            sizes: sizes.to_vec(),
            mode,
            coord,
            nearest,
            scales: scales.to_vec(),
            cubic_coeff_a: -0.75,
            exclude_outside: false,
        });
        eval_op(&op, &[x])
            .unwrap()
            .remove(0)
            .as_f32()
            .unwrap()
            .to_vec()
    }

    fn assert_close(actual: &[f32], expected: &[f32]) {
        assert_eq!(actual.len(), expected.len());
        for (k, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() < 1e-5, "element {k}: {a} vs {e}\n{actual:?}");
        }
    }

    // Expected values below are the ONNX operator docs' Resize examples.

    #[test]
    fn upsample_scales_nearest() {
        let x = t(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let y = resize(
            &x,
            &[1, 1, 4, 6],
            &[1.0, 1.0, 2.0, 3.0],
            ResizeMode::Nearest,
            CoordTransform::HalfPixel,
            NearestMode::RoundPreferFloor,
        );
        let row = |a: f32, b: f32| [a, a, a, b, b, b];
        let expected: Vec<f32> =
            [row(1.0, 2.0), row(1.0, 2.0), row(3.0, 4.0), row(3.0, 4.0)].concat();
        assert_eq!(y, expected);
    }

    #[test]
    fn downsample_scales_nearest_and_linear() {
        let x = t(&[1, 1, 2, 4], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let y = resize(
            &x,
            &[1, 1, 1, 2],
            &[1.0, 1.0, 0.6, 0.6],
            ResizeMode::Nearest,
            CoordTransform::HalfPixel,
            NearestMode::RoundPreferFloor,
        );
        assert_eq!(y, [1.0, 3.0]);
        let y = resize(
            &x,
            &[1, 1, 1, 2],
            &[1.0, 1.0, 0.6, 0.6],
            ResizeMode::Linear,
            CoordTransform::HalfPixel,
            NearestMode::RoundPreferFloor,
        );
        assert_close(&y, &[2.6666665, 4.3333331]);
    }

    #[test]
    fn upsample_scales_linear() {
        let x = t(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let y = resize(
            &x,
            &[1, 1, 4, 4],
            &[1.0, 1.0, 2.0, 2.0],
            ResizeMode::Linear,
            CoordTransform::HalfPixel,
            NearestMode::RoundPreferFloor,
        );
        #[rustfmt::skip]
        assert_close(&y, &[
            1.0, 1.25, 1.75, 2.0,
            1.5, 1.75, 2.25, 2.5,
            2.5, 2.75, 3.25, 3.5,
            3.0, 3.25, 3.75, 4.0,
        ]);
        let y = resize(
            &x,
            &[1, 1, 4, 4],
            &[1.0, 1.0, 2.0, 2.0],
            ResizeMode::Linear,
            CoordTransform::AlignCorners,
            NearestMode::RoundPreferFloor,
        );
        #[rustfmt::skip]
        assert_close(&y, &[
            1.0, 1.3333333, 1.6666667, 2.0,
            1.6666666, 2.0, 2.3333333, 2.6666665,
            2.3333333, 2.6666665, 3.0, 3.3333333,
            3.0, 3.3333333, 3.6666667, 4.0,
        ]);
    }

    #[test]
    fn upsample_sizes_nearest_modes() {
        let x = t(
            &[1, 1, 4, 4],
            &(1..=16).map(|v| v as f32).collect::<Vec<_>>(),
        );
        let scales = [1.0, 1.0, 2.0, 2.0];
        // resize_upsample_sizes_nearest_ceil_half_pixel
        let y = resize(
            &x,
            &[1, 1, 8, 8],
            &scales,
            ResizeMode::Nearest,
            CoordTransform::HalfPixel,
            NearestMode::Ceil,
        );
        assert_eq!(&y[..8], [1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0]);
        assert_eq!(&y[8..16], [5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 8.0]);
        assert_eq!(&y[56..], [13.0, 14.0, 14.0, 15.0, 15.0, 16.0, 16.0, 16.0]);
        // resize_upsample_sizes_nearest_floor_align_corners
        let y = resize(
            &x,
            &[1, 1, 8, 8],
            &scales,
            ResizeMode::Nearest,
            CoordTransform::AlignCorners,
            NearestMode::Floor,
        );
        assert_eq!(&y[..8], [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0]);
        assert_eq!(&y[56..], [13.0, 13.0, 13.0, 14.0, 14.0, 15.0, 15.0, 16.0]);
        // resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric
        let y = resize(
            &x,
            &[1, 1, 8, 8],
            &scales,
            ResizeMode::Nearest,
            CoordTransform::Asymmetric,
            NearestMode::RoundPreferCeil,
        );
        assert_eq!(&y[..8], [1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0]);
    }

    #[test]
    fn upsample_scales_cubic() {
        let x = t(
            &[1, 1, 4, 4],
            &(1..=16).map(|v| v as f32).collect::<Vec<_>>(),
        );
        let y = resize(
            &x,
            &[1, 1, 8, 8],
            &[1.0, 1.0, 2.0, 2.0],
            ResizeMode::Cubic,
            CoordTransform::HalfPixel,
            NearestMode::RoundPreferFloor,
        );
        assert_close(
            &y[..8],
            &[
                0.47265625, 0.76953125, 1.24609375, 1.875, 2.28125, 2.91015625, 3.38671875,
                3.68359375,
            ],
        );
        assert_close(
            &y[56..],
            &[
                13.31640625,
                13.61328125,
                14.08984375,
                14.71875,
                15.125,
                15.75390625,
                16.23046875,
                16.52734375,
            ],
        );
    }

    #[test]
    fn integer_nearest_resize() {
        let x = Tensor::from_i64(vec![1, 2], vec![5, 7]).unwrap();
        let op = Op::Resize(Resize {
            sizes: vec![1, 4],
            mode: ResizeMode::Nearest,
            coord: CoordTransform::Asymmetric,
            nearest: NearestMode::Floor,
            scales: vec![1.0, 2.0],
            cubic_coeff_a: -0.75,
            exclude_outside: false,
        });
        assert_eq!(
            eval_op(&op, &[&x]).unwrap()[0].as_i64().unwrap(),
            [5, 5, 7, 7]
        );
    }

    /// Values produced by ONNX Runtime 1.31 (CPU, opset 19) for the same inputs, where the
    /// operator docs have no example.
    #[test]
    fn matches_onnx_runtime() {
        let x = t(
            &[1, 1, 3, 4],
            &(1..=12).map(|v| v as f32).collect::<Vec<_>>(),
        );
        let sizes_scales = |sizes: [usize; 4]| {
            sizes
                .iter()
                .zip([1usize, 1, 3, 4])
                .map(|(&o, i)| o as f32 / i as f32)
                .collect::<Vec<_>>()
        };
        let run = |sizes: [usize; 4],
                   mode,
                   coord,
                   nearest,
                   a: f32,
                   exclude_outside,
                   scales: Option<Vec<f32>>| {
            let op = Op::Resize(Resize {
                sizes: sizes.to_vec(),
                mode,
                coord,
                nearest,
                scales: scales.unwrap_or_else(|| sizes_scales(sizes)),
                cubic_coeff_a: a,
                exclude_outside,
            });
            eval_op(&op, &[&x])
                .unwrap()
                .remove(0)
                .as_f32()
                .unwrap()
                .to_vec()
        };
        use CoordTransform::*;
        use ResizeMode::*;
        let floor = NearestMode::RoundPreferFloor;
        assert_close(
            &run(
                [1, 1, 1, 3],
                Nearest,
                PytorchHalfPixel,
                NearestMode::Ceil,
                -0.75,
                false,
                None,
            ),
            &[2.0, 3.0, 4.0],
        );
        assert_close(
            &run(
                [1, 1, 1, 3],
                Linear,
                PytorchHalfPixel,
                floor,
                -0.75,
                false,
                None,
            ),
            &[1.1666667, 2.5, 3.8333333],
        );
        assert_close(
            &run([1, 1, 2, 3], Cubic, HalfPixel, floor, -0.5, true, None),
            &[
                1.7743772, 3.1715329, 4.5686884, 8.4313126, 9.8284674, 11.2256241,
            ],
        );
        #[rustfmt::skip]
        assert_close(&run([1, 1, 5, 7], Cubic, AlignCorners, floor, -0.75, false, None), &[
            1.0, 1.40625, 2.0, 2.5, 3.0, 3.59375, 4.0,
            2.625, 3.03125, 3.625, 4.125, 4.625, 5.21875, 5.625,
            5.0, 5.40625, 6.0, 6.5, 7.0, 7.59375, 8.0,
            7.375, 7.78125, 8.375, 8.875, 9.375, 9.96875, 10.375,
            9.0, 9.40625, 10.0, 10.5, 11.0, 11.59375, 12.0,
        ]);
        // Scales given (output 4x3 = floor(3 * 1.5) x floor(4 * 0.75)).
        #[rustfmt::skip]
        assert_close(&run([1, 1, 4, 3], Linear, Asymmetric, floor, -0.75, false, Some(vec![1.0, 1.0, 1.5, 0.75])), &[
            1.0, 2.3333335, 3.6666667,
            3.6666667, 5.0, 6.3333335,
            6.3333335, 7.6666665, 9.0,
            9.0, 10.333334, 11.666667,
        ]);
        // Linear interpolation along the channel axis too (n-linear).
        let c = t(&[1, 2, 1, 2], &[0.0, 1.0, 2.0, 3.0]);
        let op = Op::Resize(Resize {
            sizes: vec![1, 3, 1, 2],
            mode: Linear,
            coord: HalfPixel,
            nearest: floor,
            scales: vec![1.0, 1.5, 1.0, 1.0],
            cubic_coeff_a: -0.75,
            exclude_outside: false,
        });
        assert_close(
            eval_op(&op, &[&c]).unwrap()[0].as_f32().unwrap(),
            &[0.0, 1.0, 1.0, 2.0, 2.0, 3.0],
        );
    }
}
