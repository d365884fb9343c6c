//! Softmax along one axis. The sum accumulates in f64.

use super::elementwise::max_nan;
use super::{float_tensor, floats, Result};
use crate::ir::Tensor;

/// Softmax along one axis (ONNX opset 13), shifted by the maximum for stability.
pub(super) fn softmax(axis: usize, x: &Tensor) -> Result<Tensor> {
    let shape = x.shape();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let xv = floats(x)?;
    let mut y = vec![0.0f32; xv.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let max = (0..n).map(|k| xv[at(k)]).fold(f32::NEG_INFINITY, max_nan);
            let sum: f64 = (0..n).map(|k| ((xv[at(k)] - max) as f64).exp()).sum();
            for k in 0..n {
                y[at(k)] = (((xv[at(k)] - max) as f64).exp() / sum) as f32;
            }
        }
    }
    Ok(float_tensor(x.ty.clone(), y))
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::{eval1, t};
    use crate::ir::Op;

    #[test]
    fn softmax_is_stable_and_normalized() {
        let x = t(&[2, 3], &[1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0]);
        let y = eval1(Op::Softmax { axis: 1 }, &[&x]);
        let v = y.as_f32().unwrap();
        let e = [1.0f64, 1.0f64.exp(), 2.0f64.exp()];
        let total: f64 = e.iter().sum();
        for k in 0..3 {
            assert!((v[k] as f64 - e[k] / total).abs() < 1e-7);
            assert!((v[3 + k] - 1.0 / 3.0).abs() < 1e-7);
        }
        // Along axis 0.
        let y = eval1(Op::Softmax { axis: 0 }, &[&t(&[2, 1], &[0.0, 0.0])]);
        assert_eq!(y.as_f32().unwrap(), [0.5, 0.5]);
    }
}
