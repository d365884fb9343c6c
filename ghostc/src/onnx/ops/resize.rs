//! Resize and Upsample -> `Op::Resize` with static output sizes.
//!
//! Opset notes: Resize-10 takes (X, scales) with asymmetric coordinates; from 11 it takes
//! (X, roi, scales, sizes) with `coordinate_transformation_mode` (default half_pixel) and
//! `nearest_mode` (default round_prefer_floor); 13 makes roi and scales optional; 18 adds
//! `axes`, `antialias` and `keep_aspect_ratio_policy`. Exactly one of scales and sizes must
//! be a (non-empty) constant. With scales, `size = floor(in * scale)` computed in f32 as ONNX
//! Runtime does; with sizes, the recorded scale is `out / in`. Upsample (deprecated) is a
//! Resize with asymmetric coordinates and floor rounding. `tf_crop_and_resize`,
//! `half_pixel_symmetric`, antialiasing and aspect-ratio policies other than `stretch` are
//! reported unsupported.

use super::{axes, Registry};
use crate::ir::{CoordTransform, NearestMode, Op, Resize, ResizeMode};
use crate::onnx::error::NodeError;
use crate::onnx::import::{ImportedNode, NodeCtx};

pub(super) fn register(reg: &mut Registry) {
    reg.add("Resize", resize);
    reg.add("Upsample", upsample);
}

fn mode(ctx: &NodeCtx<'_>) -> Result<ResizeMode, NodeError> {
    match ctx.attrs.string_or("mode", "nearest")?.as_str() {
        "nearest" => Ok(ResizeMode::Nearest),
        "linear" | "bilinear" => Ok(ResizeMode::Linear),
        "cubic" => Ok(ResizeMode::Cubic),
        other => Err(NodeError::unknown_value(
            "mode",
            other,
            &["nearest", "linear", "cubic"],
        )),
    }
}

/// Output sizes and per-axis scales from either scales or sizes over the whole rank.
fn sizes_and_scales(
    input: &[usize],
    scales: Option<Vec<f32>>,
    sizes: Option<Vec<i64>>,
) -> Result<(Vec<usize>, Vec<f32>), NodeError> {
    match (scales, sizes) {
        (Some(_), Some(_)) => Err(NodeError::Invalid(
            "both scales and sizes are given; exactly one is allowed".into(),
        )),
        (None, None) => Err(NodeError::Invalid(
            "neither scales nor sizes is given".into(),
        )),
        (Some(scales), None) => {
            let mut out = Vec::with_capacity(input.len());
            for (&d, &s) in input.iter().zip(&scales) {
                if !(s.is_finite() && s > 0.0) {
                    return Err(NodeError::Invalid(format!(
                        "scale {s} is not a positive finite number"
                    )));
                }
                let v = (s * d as f32).floor();
                if !(0.0..1e15).contains(&v) {
                    return Err(NodeError::Invalid(format!(
                        "scale {s} of a dim of {d} gives an unusable size"
                    )));
                }
                out.push(v as usize);
            }
            Ok((out, scales))
        }
        (None, Some(sizes)) => {
            let mut out = Vec::with_capacity(input.len());
            let mut scales = Vec::with_capacity(input.len());
            for (&d, &s) in input.iter().zip(&sizes) {
                let s = usize::try_from(s)
                    .map_err(|_| NodeError::Invalid(format!("negative output size {s}")))?;
                out.push(s);
                scales.push(if d == 0 { 1.0 } else { s as f32 / d as f32 });
            }
            Ok((out, scales))
        }
    }
}

fn resize(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    let input = &ctx.input_ty(0)?.shape;
    let rank = input.len();
    let mode = mode(ctx)?;
    let (scales_in, sizes_in) = if ctx.opset < 11 {
        ctx.check_inputs(2, 2)?;
        (
            ctx.const_input(1, "the resize scales")?
                .map(|t| t.to_f32_vec()),
            None,
        )
    } else {
        ctx.check_inputs(1, 4)?;
        let scales = ctx
            .const_input(2, "the resize scales")?
            .map(|t| t.to_f32_vec())
            .filter(|v| !v.is_empty());
        let sizes = ctx
            .const_ints(3, "the resize sizes")?
            .filter(|v| !v.is_empty());
        (scales, sizes)
    };
    if ctx.attrs.int_or("antialias", 0)? != 0 {
        return Err(NodeError::Unsupported("Resize with antialias = 1".into()));
    }
    let policy = ctx.attrs.string_or("keep_aspect_ratio_policy", "stretch")?;
    if policy != "stretch" && sizes_in.is_some() {
        return Err(NodeError::Unsupported(format!(
            "Resize with keep_aspect_ratio_policy = '{policy}'"
        )));
    }
    // Spread per-axis values given for a subset of axes (opset 18) over the full rank.
    let axes_given = match ctx.attrs.ints("axes")? {
        Some(a) if ctx.opset >= 18 => Some(axes("axis", a, rank)?),
        _ => None,
    };
    let n = axes_given.as_ref().map_or(rank, Vec::len);
    for (what, len) in [
        ("scales", scales_in.as_ref().map(Vec::len)),
        ("sizes", sizes_in.as_ref().map(Vec::len)),
    ] {
        if let Some(len) = len {
            if len != n {
                return Err(NodeError::Invalid(format!("{len} {what} for {n} axes")));
            }
        }
    }
    let spread_f = |v: Vec<f32>| match &axes_given {
        None => v,
        Some(ax) => {
            let mut full = vec![1.0; rank];
            for (&a, x) in ax.iter().zip(v) {
                full[a] = x;
            }
            full
        }
    };
    let spread_i = |v: Vec<i64>| match &axes_given {
        None => v,
        Some(ax) => {
            let mut full: Vec<i64> = input.iter().map(|&d| d as i64).collect();
            for (&a, x) in ax.iter().zip(v) {
                full[a] = x;
            }
            full
        }
    };
    let (sizes, scales) = sizes_and_scales(input, scales_in.map(spread_f), sizes_in.map(spread_i))?;
    let coord = if ctx.opset < 11 {
        CoordTransform::Asymmetric
    } else {
        match ctx
            .attrs
            .string_or("coordinate_transformation_mode", "half_pixel")?
            .as_str()
        {
            "half_pixel" => CoordTransform::HalfPixel,
            "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
            "align_corners" => CoordTransform::AlignCorners,
            "asymmetric" => CoordTransform::Asymmetric,
            "tf_half_pixel_for_nearest" => CoordTransform::TfHalfPixelForNearest,
            // ONNX modes ghostc lacks: listed with the unsupported nodes.
            other @ ("tf_crop_and_resize" | "half_pixel_symmetric") => {
                return Err(NodeError::Unsupported(format!(
                    "Resize with coordinate_transformation_mode = '{other}'"
                )))
            }
            other => {
                return Err(NodeError::unknown_value(
                    "coordinate_transformation_mode",
                    other,
                    &[
                        "half_pixel",
                        "pytorch_half_pixel",
                        "align_corners",
                        "asymmetric",
                        "tf_half_pixel_for_nearest",
                    ],
                ))
            }
        }
    };
    let nearest = if ctx.opset < 11 {
        NearestMode::Floor
    } else {
        match ctx
            .attrs
            .string_or("nearest_mode", "round_prefer_floor")?
            .as_str()
        {
            "round_prefer_floor" => NearestMode::RoundPreferFloor,
            "round_prefer_ceil" => NearestMode::RoundPreferCeil,
            "floor" => NearestMode::Floor,
            "ceil" => NearestMode::Ceil,
            other => {
                return Err(NodeError::unknown_value(
                    "nearest_mode",
                    other,
                    &["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"],
                ))
            }
        }
    };
    let op = Resize {
        sizes,
        mode,
        coord,
        nearest,
        scales,
        cubic_coeff_a: ctx.attrs.float_or("cubic_coeff_a", -0.75)?,
        exclude_outside: ctx.attrs.bool_or("exclude_outside", false)?,
    };
    Ok(ImportedNode::Op {
        op: Op::Resize(op),
        inputs: vec![ctx.input(0)?],
    })
}

fn upsample(ctx: &NodeCtx<'_>) -> Result<ImportedNode, NodeError> {
    let input = &ctx.input_ty(0)?.shape;
    let mode = mode(ctx)?;
    if mode == ResizeMode::Cubic {
        return Err(NodeError::BadAttribute {
            attr: "mode".into(),
            detail: "Upsample supports nearest and linear only".into(),
        });
    }
    ctx.check_inputs(1, 2)?;
    let scales = match ctx.const_input(1, "the upsample scales")? {
        Some(t) => t.to_f32_vec(),
        None => ctx
            .attrs
            .floats("scales")?
            .ok_or(NodeError::MissingAttribute {
                attr: "scales".into(),
            })?
            .to_vec(),
    };
    if scales.len() != input.len() {
        return Err(NodeError::Invalid(format!(
            "{} scales for rank {}",
            scales.len(),
            input.len()
        )));
    }
    let (sizes, scales) = sizes_and_scales(input, Some(scales), None)?;
    let op = Resize {
        sizes,
        mode,
        coord: CoordTransform::Asymmetric,
        nearest: NearestMode::Floor,
        scales,
        cubic_coeff_a: -0.75,
        exclude_outside: false,
    };
    Ok(ImportedNode::Op {
        op: Op::Resize(op),
        inputs: vec![ctx.input(0)?],
    })
}
