//! QDQ convolutions as `onnxruntime.quantization.quantize_static` writes them:
//! `QuantizeLinear -> DequantizeLinear` on the activation (shared with the previous quantized
//! conv when it reads that conv's output directly), a `DequantizeLinear` of constant `s8`
//! weights (per tensor, or per output channel on `axis = 0`), an optional `i32` bias behind
//! its own `DequantizeLinear` (scale `x_scale * w_scale[o]`, zero point 0), the f32 `Conv`,
//! an optional activation, then `QuantizeLinear -> DequantizeLinear` on the output.
//! Activations are `u8` or `s8`.
//!
//! Why: ghostc folds these chains into integer convolutions and lowers them to the int8
//! kernels (or an f32 fallback), checking every scale and zero point on import; some of the
//! time ([`Hostile`]) one parameter is made wrong or extreme (zero, negative, NaN, infinite,
//! subnormal, tiny or huge scales; zero points at the ends of their range; asymmetric or
//! mistyped weight zero points; per-channel lengths that do not match; bad axes; a
//! `DequantizeLinear` with no `QuantizeLinear` partner), which ghostc must reject with an
//! error or compile, never panic on.

use arbitrary::Arbitrary;
use ghostc::onnx::proto::tensor_proto::DataType;
use ghostc_testkit::onnx::raw_tensor;

use super::Gen;
use crate::onnx_build::{a_int, Act, V};

/// An invalid or extreme scale.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum BadScale {
    Zero,
    Negative,
    Nan,
    Inf,
    Subnormal,
    Tiny,
    Huge,
}

impl BadScale {
    fn get(self) -> f32 {
        match self {
            BadScale::Zero => 0.0,
            BadScale::Negative => -0.02,
            BadScale::Nan => f32::NAN,
            BadScale::Inf => f32::INFINITY,
            BadScale::Subnormal => f32::from_bits(3),
            BadScale::Tiny => 1e-37,
            BadScale::Huge => 3e38,
        }
    }
}

/// One thing made wrong or extreme in a quantized conv.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Hostile {
    XScale(BadScale),
    YScale(BadScale),
    /// Weight scale of channel `.1` (all of them for a per-tensor weight).
    WScale(BadScale, u8),
    BiasScale(BadScale),
    /// Activation zero points at the low (`false`) or high end of their type.
    XZpEnd(bool),
    YZpEnd(bool),
    /// A nonzero (asymmetric) weight zero point.
    WZp(i8),
    /// Weights at -128/127, input zero point at an end: the largest integer sums.
    Saturating,
    /// The activation reaches the conv through `Cast(to u8) -> DequantizeLinear`: a DQ
    /// without a QuantizeLinear partner.
    LonelyDq,
    /// Per-channel weight scales one longer (`true`) or shorter than the output channels.
    ScaleLen(bool),
    /// Per-channel weight zero point of another length than its scales.
    ZpLen,
    /// This `axis` on the weight's DequantizeLinear.
    Axis(i8),
    /// A `u8` weight zero point for `s8` weights.
    ZpType,
}

/// A quantized conv block.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct QConvDesc {
    /// 0, 1: pointwise; 2: depthwise 3x3; 3: depthwise 5x5; 4: dense 3x3; else grouped 3x3.
    kind: u8,
    cout: u8,
    stride2: bool,
    /// 0: none; 1: Relu; 2: Clip(0, 6); 3: HardSwish.
    act: u8,
    per_channel: bool,
    /// `s8` activations (else `u8`).
    s8: bool,
    /// 0: none; 1: quantized `i32` (quantize_static's); 2: quantized with another scale; 3: f32.
    bias: u8,
    x_scale: u8,
    y_scale: u8,
    hostile: Option<Hostile>,
}

/// Parameters of a quantized activation tensor.
#[derive(Clone, Debug)]
pub(super) struct QAct {
    /// The DequantizeLinear output holding the (dequantized) tensor.
    pub dq: String,
    pub scale: f32,
}

fn act_scale(sel: u8) -> f32 {
    [0.02, 0.0078125, 0.1, 1.7e-3][(sel % 4) as usize]
}

fn zp_bytes(zp: &[i32], s8: bool) -> (DataType, Vec<u8>) {
    let ty = if s8 { DataType::Int8 } else { DataType::Uint8 };
    (ty, zp.iter().map(|&z| z as u8).collect())
}

impl Gen<'_> {
    /// A constant: initializer or Constant node.
    fn qconst(&mut self, prefix: &str, ty: DataType, dims: &[usize], raw: Vec<u8>) -> String {
        let name = self.b.fresh(prefix);
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        self.b.param(raw_tensor(&name, ty, &dims, raw))
    }

    fn f32s(&mut self, dims: &[usize], v: &[f32]) -> String {
        let raw = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        self.qconst("qs", DataType::Float, dims, raw)
    }

    /// `QuantizeLinear` of `x` (f32) with `(scale, zp)`, then its `DequantizeLinear`.
    fn qdq(&mut self, x: &V, scale: f32, zp: i32, s8: bool) -> QAct {
        let s = self.f32s(&[], &[scale]);
        let (ty, z) = zp_bytes(&[zp], s8);
        let z = self.qconst("qz", ty, &[], z);
        let q = self.b.node_ty(
            "QuantizeLinear",
            &[&x.name, &s, &z],
            vec![],
            x.shape.clone(),
            ty,
        );
        let d = self.b.node(
            "DequantizeLinear",
            &[&q.name, &s, &z],
            vec![],
            x.shape.clone(),
        );
        QAct { dq: d.name, scale }
    }

    /// The quantized conv of `d` on `x`; its output is the f32 `DequantizeLinear` value.
    pub(super) fn qconv(&mut self, x: &V, d: QConvDesc) -> V {
        let cin = x.c();
        let h = d.hostile;
        let (k, group, cout) = match d.kind % 6 {
            0 | 1 => (1, 1, super::ch(d.cout)),
            2 => (3, cin, cin),
            3 => (5, cin, cin),
            4 => (3, 1, super::ch(d.cout)),
            _ => {
                let g = if cin.is_multiple_of(2) { 2 } else { 1 };
                (3, g, g * super::ch(d.cout / 2))
            }
        };
        let stride = if d.stride2 && k > 1 && x.h() >= 2 && x.w() >= 2 {
            2
        } else {
            1
        };
        let (lo, hi) = if d.s8 { (-128, 127) } else { (0, 255) };
        let mid = if d.s8 { 0 } else { 128 };
        // The input: reuse the previous quantized conv's QDQ output, or quantize here.
        let mut xs = act_scale(d.x_scale);
        let xz = match h {
            Some(Hostile::XZpEnd(high)) => [lo, hi][high as usize],
            Some(Hostile::Saturating) => lo,
            _ => mid,
        };
        if let Some(Hostile::XScale(b)) = h {
            xs = b.get();
        }
        let reuse = self.qtail.as_ref().filter(|t| t.dq == x.name).cloned();
        let xin = match (reuse, h) {
            (_, Some(Hostile::LonelyDq)) => {
                let c = self.b.node_ty(
                    "Cast",
                    &[&x.name],
                    vec![a_int("to", DataType::Uint8 as i64)],
                    x.shape.clone(),
                    DataType::Uint8,
                );
                let s = self.f32s(&[], &[xs]);
                let z = self.qconst("qz", DataType::Uint8, &[], vec![128]);
                self.b
                    .node(
                        "DequantizeLinear",
                        &[&c.name, &s, &z],
                        vec![],
                        x.shape.clone(),
                    )
                    .name
            }
            (Some(t), _) => {
                xs = t.scale;
                t.dq
            }
            (None, _) => self.qdq(x, xs, xz, d.s8).dq,
        };
        // Weights: s8, per tensor or per output channel (axis 0).
        let cig = cin / group;
        let n = cout * cig * k * k;
        let w: Vec<u8> = (0..n)
            .map(|i| match h {
                Some(Hostile::Saturating) => [127i8, -128][(i / 2) % 2] as u8,
                _ => (self.b.f() * 127.0) as i8 as u8,
            })
            .collect();
        let w = self.qconst("qw", DataType::Int8, &[cout, cig, k, k], w);
        let nsc = match (d.per_channel, h) {
            (true, Some(Hostile::ScaleLen(longer))) => {
                if longer {
                    cout + 1
                } else {
                    cout.saturating_sub(1).max(1)
                }
            }
            (true, _) => cout,
            (false, _) => 1,
        };
        let mut ws: Vec<f32> = (0..nsc)
            .map(|_| 0.002 + (self.b.f() + 1.0) * 0.004)
            .collect();
        if let Some(Hostile::WScale(b, c)) = h {
            let i = c as usize % nsc;
            ws[i] = b.get();
        }
        let wdims: &[usize] = if d.per_channel { &[nsc] } else { &[] };
        let wsn = self.f32s(wdims, &ws);
        let nzp = match h {
            Some(Hostile::ZpLen) if d.per_channel => nsc + 1,
            _ => nsc,
        };
        let wz = match h {
            Some(Hostile::WZp(z)) => z as i32,
            _ => 0,
        };
        let (zty, zraw) = zp_bytes(&vec![wz; nzp], true);
        let zty = match h {
            Some(Hostile::ZpType) => DataType::Uint8,
            _ => zty,
        };
        let zdims = if d.per_channel { vec![nzp] } else { vec![] };
        let wzn = self.qconst("qz", zty, &zdims, zraw);
        let mut attrs = vec![];
        match h {
            Some(Hostile::Axis(a)) => attrs.push(a_int("axis", a as i64)),
            _ if d.per_channel => attrs.push(a_int("axis", 0)),
            _ => {}
        }
        let wd = self.b.node(
            "DequantizeLinear",
            &[&w, &wsn, &wzn],
            attrs,
            vec![cout, cig, k, k],
        );
        // Bias.
        let bias = match d.bias % 4 {
            0 => None,
            3 => Some(self.b.weights(&[cout], -0.2, 0.4)),
            b => {
                let mut bs: Vec<f32> = (0..cout).map(|o| xs * ws[o.min(nsc - 1)]).collect();
                if b == 2 {
                    bs.iter_mut().for_each(|s| *s *= 1.5);
                }
                if let Some(Hostile::BiasScale(bad)) = h {
                    bs[0] = bad.get();
                }
                let per = d.per_channel || b == 2;
                let bs = if per { bs } else { bs[..1].to_vec() };
                let dims: &[usize] = if per { &[cout] } else { &[] };
                let bsn = self.f32s(dims, &bs);
                let raw: Vec<u8> = (0..cout)
                    .flat_map(|_| (((self.b.f()) * 4000.0) as i32).to_le_bytes())
                    .collect();
                let bq = self.qconst("qb", DataType::Int32, &[cout], raw);
                let nz = if per { cout } else { 1 };
                let bz = self.qconst("qz", DataType::Int32, dims, vec![0; 4 * nz]);
                let attrs = if per { vec![a_int("axis", 0)] } else { vec![] };
                Some(
                    self.b
                        .node("DequantizeLinear", &[&bq, &bsn, &bz], attrs, vec![cout])
                        .name,
                )
            }
        };
        let xv = V {
            name: xin,
            shape: x.shape.clone(),
        };
        let p = k / 2;
        let y = self.b.conv_with(
            &xv,
            &wd.name,
            bias.as_deref(),
            cout,
            k,
            stride,
            group,
            [p; 4],
            1,
        );
        let act_sel = (d.act % 4) as usize;
        let act = [Act::None, Act::Relu, Act::Clip(0.0, 6.0), Act::HardSwish][act_sel];
        let y = self.b.act(&y, act);
        let mut ys = act_scale(d.y_scale) * 2.0;
        if let Some(Hostile::YScale(b)) = h {
            ys = b.get();
        }
        let yz = match h {
            Some(Hostile::YZpEnd(high)) => [lo, hi][high as usize],
            _ if act_sel != 0 && !d.s8 => 0,
            _ => mid,
        };
        let out = self.qdq(&y, ys, yz, d.s8);
        let v = V {
            name: out.dq.clone(),
            shape: y.shape.clone(),
        };
        self.qtail = Some(out);
        v
    }
}
