//! The fused ops the passes build (FusedConv, Ghost, SqueezeExcite, Linear): each is checked
//! as the plain ops it stands for, with its epilogue activations and optional residual.

use super::conv::conv_output;
use super::elementwise::check_activation;
use super::{
    expect_float, expect_rank, expect_shape, invalid, one, overflow, rank_err, InputFact, Outputs,
};
use crate::ir::{fmt_shape, Activation, DfcGate, FusedConv, Ghost, SqueezeExcite, TensorType};

pub(super) fn fused_conv(fused: &FusedConv, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1, 2])?;
    if let Some(act) = &fused.act {
        check_activation(act)?;
    }
    let out = conv_output(&fused.conv, inputs, 0, 1, Some(2))?;
    if fused.residual {
        expect_float(inputs, &[3])?;
        expect_shape(inputs, 3, &out, "residual")?;
    }
    one(inputs[0].ty.dtype, out)
}

pub(super) fn ghost(ghost: &Ghost, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1, 2, 3, 4])?;
    for act in [&ghost.primary_act, &ghost.cheap_act].into_iter().flatten() {
        check_activation(act)?;
    }
    let p = conv_output(&ghost.primary, inputs, 0, 1, Some(2))?;
    let p_ty = TensorType::new(inputs[0].ty.dtype, p.clone());
    let cheap_inputs = [
        InputFact {
            ty: &p_ty,
            value: None,
        },
        inputs[3],
        inputs[4],
    ];
    let q = conv_output(&ghost.cheap, &cheap_inputs, 0, 1, Some(2))
        .map_err(|e| invalid("ghost", format!("cheap conv: {e}")))?;
    if p[2..] != q[2..] {
        return Err(invalid(
            "ghost",
            format!(
                "primary output [{}] and cheap output [{}] differ spatially",
                fmt_shape(&p),
                fmt_shape(&q)
            ),
        ));
    }
    let channels = p[1].checked_add(q[1]).ok_or(overflow("ghost"))?;
    if ghost.out_channels == 0 || ghost.out_channels > channels {
        return Err(invalid(
            "ghost",
            format!(
                "out_channels {} not in 1..={channels} (primary {} + cheap {})",
                ghost.out_channels, p[1], q[1]
            ),
        ));
    }
    let out = vec![p[0], ghost.out_channels, p[2], p[3]];
    if ghost.residual {
        expect_float(inputs, &[5])?;
        expect_shape(inputs, 5, &out, "residual")?;
    }
    one(inputs[0].ty.dtype, out)
}

pub(super) fn squeeze_excite(se: &SqueezeExcite, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1, 2, 3, 4])?;
    check_activation(&se.act)?;
    check_activation(&se.gate)?;
    let x = &inputs[0].ty.shape;
    if x.len() < 3 {
        return Err(rank_err(0, ">= 3", x));
    }
    let c = x[1];
    let w1 = expect_rank(inputs, 1, 2)?;
    let r = w1[0];
    expect_shape(inputs, 1, &[r, c], "squeeze weight")?;
    expect_shape(inputs, 2, &[r], "squeeze bias")?;
    expect_shape(inputs, 3, &[c, r], "excite weight")?;
    expect_shape(inputs, 4, &[c], "excite bias")?;
    one(inputs[0].ty.dtype, x.to_vec())
}

/// The gate is inferred as the plain ops it stands for (pool, convs, activation, resize) at
/// the pooled resolution; its resized shape must be `y`'s, channels included.
pub(super) fn dfc_gate(dfc: &DfcGate, inputs: &[InputFact<'_>]) -> Outputs {
    let all: Vec<usize> = (0..inputs.len()).collect();
    expect_float(inputs, &all)?;
    check_activation(&dfc.gate)?;
    let dtype = inputs[1].ty.dtype;
    let mut a = super::pool::pool(&dfc.pool, &inputs[1..2])?.remove(0);
    for (i, conv) in dfc.convs.iter().enumerate() {
        let conv_inputs = [
            InputFact {
                ty: &a,
                value: None,
            },
            inputs[2 + 2 * i],
            inputs[3 + 2 * i],
        ];
        let shape = conv_output(conv, &conv_inputs, 0, 1, Some(2))
            .map_err(|e| invalid("dfc_gate", format!("conv {i}: {e}")))?;
        a = TensorType::new(dtype, shape);
    }
    let gate = [InputFact {
        ty: &a,
        value: None,
    }];
    let resized = super::resize::resize(&dfc.resize, &gate)?.remove(0);
    expect_shape(inputs, 0, &resized.shape, "gated tensor")?;
    one(inputs[0].ty.dtype, inputs[0].ty.shape.clone())
}

pub(super) fn linear(act: Option<&Activation>, inputs: &[InputFact<'_>]) -> Outputs {
    expect_float(inputs, &[0, 1, 2])?;
    if let Some(act) = act {
        check_activation(act)?;
    }
    let x = expect_rank(inputs, 0, 2)?;
    let w = expect_rank(inputs, 1, 2)?;
    if w[1] != x[1] {
        return Err(invalid(
            "linear",
            format!(
                "x [{}] and weight [{}] disagree on K",
                fmt_shape(x),
                fmt_shape(w)
            ),
        ));
    }
    expect_shape(inputs, 2, &[w[0]], "bias")?;
    one(inputs[0].ty.dtype, vec![x[0], w[0]])
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{conv, f32t, run, shape_of};
    use super::*;
    use crate::ir::Op;

    #[test]
    fn fused_ops() {
        let fused = Op::FusedConv(crate::ir::FusedConv {
            conv: conv(1, 1, 0, 1, 1),
            act: None,
            residual: true,
        });
        let x = f32t(&[1, 8, 4, 4]);
        let tys = [
            x.clone(),
            f32t(&[16, 8, 1, 1]),
            f32t(&[16]),
            f32t(&[1, 16, 4, 4]),
        ];
        assert_eq!(shape_of(&fused, &tys), [1, 16, 4, 4]);
        assert!(run(&fused, &tys[..3]).is_err());
        let bad_res = [
            x.clone(),
            f32t(&[16, 8, 1, 1]),
            f32t(&[16]),
            f32t(&[1, 8, 4, 4]),
        ];
        assert!(run(&fused, &bad_res).is_err());

        let ghost = |out_channels| {
            Op::Ghost(Ghost {
                primary: conv(1, 1, 0, 1, 1),
                primary_act: Some(Activation::Relu),
                cheap: conv(3, 1, 1, 1, 8),
                cheap_act: Some(Activation::Relu),
                out_channels,
                residual: false,
            })
        };
        let tys = [
            x.clone(),
            f32t(&[8, 8, 1, 1]),
            f32t(&[8]),
            f32t(&[8, 1, 3, 3]),
            f32t(&[8]),
        ];
        assert_eq!(shape_of(&ghost(12), &tys), [1, 12, 4, 4]);
        assert!(run(&ghost(17), &tys).is_err());
        assert!(run(&ghost(0), &tys).is_err());

        let se = Op::SqueezeExcite(SqueezeExcite {
            act: Activation::Relu,
            gate: Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
        });
        let tys = [
            x.clone(),
            f32t(&[2, 8]),
            f32t(&[2]),
            f32t(&[8, 2]),
            f32t(&[8]),
        ];
        assert_eq!(shape_of(&se, &tys), [1, 8, 4, 4]);
        let bad = [x, f32t(&[2, 8]), f32t(&[2]), f32t(&[2, 8]), f32t(&[8])];
        assert!(run(&se, &bad).is_err());

        let lin = Op::Linear { act: None };
        assert_eq!(
            shape_of(&lin, &[f32t(&[2, 960]), f32t(&[10, 960]), f32t(&[10])]),
            [2, 10]
        );
        assert!(run(&lin, &[f32t(&[2, 960]), f32t(&[10, 96]), f32t(&[10])]).is_err());
    }
}
