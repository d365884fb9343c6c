//! Lowering on small hand-built graphs: which runtime calls a node becomes, what the epilogue
//! folding does, and (for the packed weights) the runtime run on them against the reference
//! interpreter.

use std::sync::Arc;

use ghost_runtime::{self as rt, Activation, BinaryOp, CoordMode, ResizeMode, SeActivations};

use super::*;
use crate::ir::{Conv, SqueezeExcite, Tensor, TensorType};

fn conv1x1() -> Conv {
    Conv {
        kernel: [1, 1],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
    }
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn constant(g: &mut Graph, name: &str, shape: Vec<usize>, seed: u32) -> ValueId {
    let n = shape.iter().product();
    let t = Tensor::from_f32(shape, values(n, seed)).expect("shape matches data");
    g.add_const(name, Arc::new(t))
}

/// `input [1, cin, h, w]` -> 1x1 conv with bias to `cout` channels; returns the graph and the
/// conv's output.
fn pointwise_graph(cin: usize, cout: usize, h: usize, w: usize) -> (Graph, ValueId) {
    let mut g = Graph::new();
    let x = g.add_input("x", TensorType::f32(vec![1, cin, h, w]));
    let wt = constant(&mut g, "w", vec![cout, cin, 1, 1], 1);
    let b = constant(&mut g, "b", vec![cout], 2);
    let (_, y) = g.add_node(
        "pw",
        Op::Conv(conv1x1()),
        vec![x, wt, b],
        vec![("y".into(), TensorType::f32(vec![1, cout, h, w]))],
    );
    (g, y[0])
}

fn kernels(p: &Program) -> Vec<&Kernel> {
    p.steps.iter().map(|s| &s.kernel).collect()
}

#[test]
fn pointwise_conv_is_one_call_whose_packed_weights_match_the_interpreter() {
    let (cin, cout, h, w) = (3, 5, 2, 3);
    let (mut g, y) = pointwise_graph(cin, cout, h, w);
    g.outputs.push(y);
    let p = lower(&g).unwrap();
    let ks = kernels(&p);
    assert_eq!(ks.len(), 3, "{p}");
    assert!(matches!(
        ks[0],
        Kernel::ToBlocked {
            channels: 3,
            pixels: 6,
            src: Loc::Input(0),
            ..
        }
    ));
    let Kernel::Pointwise {
        w: wr,
        w_scaled: None,
        shape,
        src,
        dst,
        epilogue,
    } = ks[1]
    else {
        panic!("expected a pointwise call: {p}");
    };
    assert_eq!(
        *shape,
        rt::PointwiseShape {
            k_blocks: 1,
            n_blocks: 1,
            pixels: 6
        }
    );
    assert_eq!(*epilogue, Epilogue::act(Activation::None));
    assert!(matches!(
        ks[2],
        Kernel::FromBlocked {
            dst: Loc::Output(0),
            ..
        }
    ));

    // Run the three calls on the runtime with the program's blob and compare with the
    // reference interpreter.
    let input = values(cin * h * w, 3);
    let blob = p.weights.as_f32();
    let mut xb = vec![0.0; 8 * h * w];
    rt::nchw_to_nchw8c(&input, cin, h * w, &mut xb).unwrap();
    let mut yb = vec![0.0; 8 * h * w];
    rt::Kernels::new()
        .pointwise(
            &blob[wr.offset..wr.offset + wr.len],
            *shape,
            rt::Src::at(&xb, src.block),
            rt::Dst::at(&mut yb, dst.block),
            rt::Epilogue::act(Activation::None),
        )
        .unwrap();
    let mut got = vec![0.0; cout * h * w];
    let Kernel::FromBlocked { phys, .. } = ks[2] else {
        unreachable!()
    };
    let lanes: Vec<u32> = phys.iter().map(|&l| l as u32).collect();
    rt::glue::gather_channels(&yb, &lanes, h * w, &mut got).unwrap();
    let x = Tensor::from_f32(vec![1, cin, h, w], input).unwrap();
    let want = crate::interp::run(&g, &[x]).unwrap();
    let want = want[0].as_f32().unwrap();
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-5, "{got:?} vs {want:?}");
    }
}

#[test]
fn one_pixel_pointwise_conv_runs_as_gemv() {
    let (mut g, y) = pointwise_graph(16, 4, 1, 1);
    g.outputs.push(y);
    let p = lower(&g).unwrap();
    assert!(
        matches!(
            kernels(&p)[1],
            Kernel::Fc {
                k_blocks: 2,
                n_blocks: 1,
                act: Activation::None,
                ..
            }
        ),
        "{p}"
    );
}

/// `pointwise_graph` followed by a squeeze-excite (`act` inside, `gate`), optionally followed
/// by another 1x1 conv reading the gated tensor.
fn se_graph(act: ir::Activation, gate: ir::Activation, then_conv: bool) -> Graph {
    se_graph_sized(act, gate, (4, 4), then_conv.then_some(8))
}

/// [`se_graph`] on `hw` pixels, the 1x1 conv after the SE (if any) with `next_cout` outputs.
fn se_graph_sized(
    act: ir::Activation,
    gate: ir::Activation,
    (h, w): (usize, usize),
    next_cout: Option<usize>,
) -> Graph {
    let (c, r) = (16, 4);
    let (mut g, y) = pointwise_graph(8, c, h, w);
    let params = [
        constant(&mut g, "w1", vec![r, c], 4),
        constant(&mut g, "b1", vec![r], 5),
        constant(&mut g, "w2", vec![c, r], 6),
        constant(&mut g, "b2", vec![c], 7),
    ];
    let (_, s) = g.add_node(
        "se",
        Op::SqueezeExcite(SqueezeExcite { act, gate }),
        [vec![y], params.to_vec()].concat(),
        vec![("s".into(), TensorType::f32(vec![1, c, h, w]))],
    );
    let mut out = s[0];
    if let Some(cout) = next_cout {
        let w3 = constant(&mut g, "w3", vec![cout, c, 1, 1], 8);
        let (_, z) = g.add_node(
            "pw2",
            Op::Conv(conv1x1()),
            vec![out, w3],
            vec![("z".into(), TensorType::f32(vec![1, cout, h, w]))],
        );
        out = z[0];
    }
    g.outputs.push(out);
    g
}

#[test]
fn se_squeeze_moves_into_the_producers_epilogue() {
    let p = lower(&se_graph(
        ir::Activation::Silu,
        ir::Activation::Sigmoid,
        false,
    ))
    .unwrap();
    let ks = kernels(&p);
    // input conversion, clear sums, conv (+ sums), gate, scale in place, output conversion.
    assert_eq!(ks.len(), 6, "{p}");
    let Kernel::Zero {
        dst: cleared,
        len: 16,
    } = ks[1]
    else {
        panic!("expected the sums cleared first: {p}");
    };
    let Kernel::Pointwise { epilogue, .. } = ks[2] else {
        panic!("{p}")
    };
    assert_eq!(epilogue.channel_sums, Some(*cleared));
    let Kernel::SeGate {
        inv_pixels,
        acts,
        sums,
        gate,
        ..
    } = ks[3]
    else {
        panic!("{p}")
    };
    let silu_sigmoid = SeActivations {
        inner: Activation::Silu,
        gate: Activation::Sigmoid,
    };
    assert_eq!(
        (*inv_pixels, *acts, *sums),
        (1.0 / 16.0, silu_sigmoid, *cleared)
    );
    // Nothing else reads the conv's output: the gate scales it where it is.
    let Kernel::Pointwise { dst: conv_out, .. } = ks[2] else {
        panic!("{p}")
    };
    assert!(
        matches!(ks[4], Kernel::ChannelAssign { op: BinaryOp::Mul, x, v: VecSrc::Arena(g), .. } if g == gate && *x == conv_out.loc),
        "{p}"
    );
    assert_eq!(ks[2].label(), "pointwise+pool");
}

#[test]
fn se_gate_folds_into_the_next_1x1_convs_weights() {
    let p = lower(&se_graph(
        ir::Activation::Relu,
        ir::Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        true,
    ))
    .unwrap();
    let ks = kernels(&p);
    let Some(Kernel::SeGate { acts, gate, .. }) =
        ks.iter().find(|k| matches!(k, Kernel::SeGate { .. }))
    else {
        panic!("{p}")
    };
    assert_eq!(
        *acts,
        SeActivations {
            inner: Activation::Relu,
            gate: Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5
            }
        }
    );
    // No per-channel multiply: the second conv reads scaled weights from the arena.
    assert!(
        !ks.iter().any(|k| matches!(k, Kernel::ChannelAssign { .. })),
        "{p}"
    );
    let Some(Kernel::ScalePacked { scale, dst, .. }) =
        ks.iter().find(|k| matches!(k, Kernel::ScalePacked { .. }))
    else {
        panic!("{p}")
    };
    assert_eq!(scale, gate);
    let last_conv = ks
        .iter()
        .rev()
        .find(|k| matches!(k, Kernel::Pointwise { .. }));
    assert!(
        matches!(last_conv, Some(Kernel::Pointwise { w_scaled: Some(l), .. }) if l == dst),
        "{p}"
    );
    assert_eq!(last_conv.unwrap().label(), "pointwise+se");
}

/// The gate goes into the next 1x1 conv's weights only when scaling its `n_pad` weights per
/// input channel costs less than scaling the `h * w` activations (0.23 against 0.20 ns a
/// float, `se::SCALE_WEIGHT_PS`): at 4x4 (16 pixels) 8 outputs fold, 16 do not; at 8x8, 16 do.
#[test]
fn se_gate_folds_into_weights_only_when_that_costs_less_than_scaling_activations() {
    for (hw, cout, fold) in [
        ((4, 4), 8, true),
        ((4, 4), 16, false),
        ((4, 4), 12, false), // 12 outputs pack as 16
        ((8, 8), 16, true),
        ((8, 8), 64, false),
        ((2, 2), 8, false),
    ] {
        let g = se_graph_sized(
            ir::Activation::Relu,
            ir::Activation::Sigmoid,
            hw,
            Some(cout),
        );
        let p = lower(&g).unwrap();
        let ks = kernels(&p);
        let scaled = ks
            .iter()
            .filter(|k| matches!(k, Kernel::ScalePacked { .. }))
            .count();
        let multiplied = ks
            .iter()
            .filter(|k| {
                matches!(
                    k,
                    Kernel::ChannelAssign {
                        op: BinaryOp::Mul,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(
            (scaled, multiplied),
            if fold { (1, 0) } else { (0, 1) },
            "{hw:?} -> {cout}: {p}"
        );
        let Some(Kernel::Pointwise { w_scaled, .. }) = ks
            .iter()
            .rev()
            .find(|k| matches!(k, Kernel::Pointwise { .. }))
        else {
            panic!("{p}")
        };
        assert_eq!(w_scaled.is_some(), fold, "{hw:?} -> {cout}: {p}");
        // Unfolded, the gate scales the first conv's output in place: no copy.
        assert!(
            !ks.iter().any(|k| matches!(k, Kernel::Copy { .. })),
            "{hw:?} -> {cout}: {p}"
        );
    }
}

/// When the SE input is read elsewhere too (here: it is also a model output), the gate
/// scales a copy.
#[test]
fn se_gate_scales_a_copy_when_its_input_is_read_elsewhere() {
    let mut g = se_graph_sized(
        ir::Activation::Relu,
        ir::Activation::Sigmoid,
        (2, 2),
        Some(8),
    );
    let pw = g.topo_order().unwrap().into_iter();
    let pw = pw.filter(|&n| g.node(n).name == "pw").collect::<Vec<_>>();
    let conv_out = g.node(pw[0]).outputs[0];
    g.outputs.push(conv_out);
    let p = lower(&g).unwrap();
    let ks = kernels(&p);
    let copy = ks
        .iter()
        .position(|k| matches!(k, Kernel::Copy { .. }))
        .unwrap_or_else(|| panic!("expected a copy: {p}"));
    let Kernel::Copy { dst, .. } = ks[copy] else {
        unreachable!()
    };
    assert!(
        matches!(ks[copy + 1], Kernel::ChannelAssign { op: BinaryOp::Mul, x, .. } if x == dst),
        "{p}"
    );
}

#[test]
fn sub_and_div_by_constants_become_add_and_mul_of_folded_vectors() {
    for (op, want_op, want) in [
        (ir::BinaryOp::Sub, BinaryOp::Add, [-2.0, 4.0]),
        (ir::BinaryOp::Div, BinaryOp::Mul, [0.5, -0.25]),
    ] {
        let mut g = Graph::new();
        let x = g.add_input("x", TensorType::f32(vec![1, 2, 3, 3]));
        let t = Tensor::from_f32(vec![2, 1, 1], vec![2.0, -4.0]).unwrap();
        let c = g.add_const("c", Arc::new(t));
        let (_, y) = g.add_node(
            "op",
            Op::Binary(op),
            vec![x, c],
            vec![("y".into(), TensorType::f32(vec![1, 2, 3, 3]))],
        );
        g.outputs.push(y[0]);
        let p = lower(&g).unwrap();
        let Some(Kernel::ChannelAssign {
            op: got_op,
            v: VecSrc::Blob(r),
            act: Activation::None,
            ..
        }) = kernels(&p)
            .into_iter()
            .find(|k| matches!(k, Kernel::ChannelAssign { .. }))
        else {
            panic!("{p}")
        };
        assert_eq!(*got_op, want_op);
        let blob = p.weights.as_f32();
        assert_eq!(blob[r.offset..r.offset + 2], want, "{op:?}");
        // Padding lanes are zero.
        assert!(blob[r.offset + 2..r.offset + 8].iter().all(|&v| v == 0.0));
    }
}

fn resize_graph(mode: ir::ResizeMode, coord: ir::CoordTransform) -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", TensorType::f32(vec![1, 3, 4, 4]));
    let (_, y) = g.add_node(
        "up",
        Op::Resize(ir::Resize {
            sizes: vec![1, 3, 8, 8],
            mode,
            coord,
            nearest: ir::NearestMode::Floor,
            scales: vec![1.0, 1.0, 2.0, 2.0],
            cubic_coeff_a: -0.75,
            exclude_outside: false,
        }),
        vec![x],
        vec![("y".into(), TensorType::f32(vec![1, 3, 8, 8]))],
    );
    g.outputs.push(y[0]);
    g
}

#[test]
fn resize_modes_map_to_the_runtimes_and_others_are_reported() {
    let p = lower(&resize_graph(
        ir::ResizeMode::Linear,
        ir::CoordTransform::AlignCorners,
    ))
    .unwrap();
    assert!(matches!(
        kernels(&p)[1],
        Kernel::Resize {
            mode: ResizeMode::Linear,
            coord: CoordMode::AlignCorners,
            shape: rt::ResizeShape {
                blocks: 1,
                in_h: 4,
                in_w: 4,
                out_h: 8,
                out_w: 8
            },
            ..
        }
    ));
    let p = lower(&resize_graph(
        ir::ResizeMode::Nearest,
        ir::CoordTransform::Asymmetric,
    ))
    .unwrap();
    assert!(matches!(
        kernels(&p)[1],
        Kernel::Resize {
            mode: ResizeMode::Nearest(rt::NearestMode::Floor),
            coord: CoordMode::Asymmetric,
            ..
        }
    ));
    let p = lower(&resize_graph(
        ir::ResizeMode::Nearest,
        ir::CoordTransform::HalfPixel,
    ))
    .unwrap();
    assert!(matches!(
        kernels(&p)[1],
        Kernel::Resize {
            mode: ResizeMode::Nearest(rt::NearestMode::Floor),
            coord: CoordMode::HalfPixel,
            ..
        }
    ));
    let err = lower(&resize_graph(
        ir::ResizeMode::Linear,
        ir::CoordTransform::TfHalfPixelForNearest,
    ))
    .unwrap_err();
    let LowerError::Unsupported(list) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(list.len(), 1, "{err}");
    assert_eq!(
        list[0].to_string(),
        "'up' (resize): linear with coordinate_transformation_mode tf_half_pixel_for_nearest; \
         supported: nearest (any nearest_mode), linear or cubic, with half_pixel, \
         pytorch_half_pixel, align_corners or asymmetric"
    );
}

/// Nearest resizes with every rounding, bicubic ones with PyTorch's and ONNX's default
/// coefficient (with and without `exclude_outside`) and bilinear ones, in every coordinate
/// mode, up and down and by non-integral factors given as sizes, run on the runtime with the
/// lowered shape: the interpreter's values (nearest bit for bit). Scales that are not
/// `out / in` (a fractional scale whose size was floored) are reported instead of computed
/// with another scale.
#[test]
fn resizes_of_every_mode_match_the_interpreter_and_odd_scales_are_reported() {
    use ir::{CoordTransform as C, NearestMode as N, ResizeMode as M};
    let (ch, ih, iw) = (5, 6, 7);
    let modes = [
        (M::Nearest, N::RoundPreferFloor, -0.75, false),
        (M::Nearest, N::RoundPreferCeil, -0.75, false),
        (M::Nearest, N::Floor, -0.75, false),
        (M::Nearest, N::Ceil, -0.75, false),
        (M::Linear, N::Floor, -0.75, false),
        (M::Cubic, N::Floor, -0.75, false),
        (M::Cubic, N::Floor, -0.5, true),
    ];
    let coords = [
        C::HalfPixel,
        C::PytorchHalfPixel,
        C::AlignCorners,
        C::Asymmetric,
    ];
    for (oh, ow) in [(12, 14), (9, 10), (4, 3)] {
        for (mode, nearest, a, exclude_outside) in modes {
            for coord in coords {
                let mut g = Graph::new();
                let x = g.add_input("x", TensorType::f32(vec![1, ch, ih, iw]));
                let (_, y) = g.add_node(
                    "rs",
                    Op::Resize(ir::Resize {
                        sizes: vec![1, ch, oh, ow],
                        mode,
                        coord,
                        nearest,
                        scales: vec![1.0, 1.0, oh as f32 / ih as f32, ow as f32 / iw as f32],
                        cubic_coeff_a: a,
                        exclude_outside,
                    }),
                    vec![x],
                    vec![("y".into(), TensorType::f32(vec![1, ch, oh, ow]))],
                );
                g.outputs.push(y[0]);
                let p = lower(&g).unwrap();
                let Some(&Kernel::Resize {
                    mode: m,
                    coord: c,
                    shape,
                    ..
                }) = kernels(&p)
                    .into_iter()
                    .find(|k| matches!(k, Kernel::Resize { .. }))
                else {
                    panic!("{p}")
                };
                let input = values(ch * ih * iw, 31);
                let mut xb = vec![0.0; 8 * ih * iw];
                rt::nchw_to_nchw8c(&input, ch, ih * iw, &mut xb).unwrap();
                let mut yb = vec![0.0; 8 * oh * ow];
                rt::Kernels::new()
                    .resize(m, c, shape, rt::Src::at(&xb, 0), rt::Dst::at(&mut yb, 0))
                    .unwrap();
                let mut got = vec![0.0; ch * oh * ow];
                let lanes: Vec<u32> = (0..ch as u32).collect();
                rt::glue::gather_channels(&yb, &lanes, oh * ow, &mut got).unwrap();
                let xt = Tensor::from_f32(vec![1, ch, ih, iw], input).unwrap();
                let want = crate::interp::run(&g, &[xt]).unwrap();
                let want = want[0].as_f32().unwrap();
                let what = format!("{mode:?} {nearest:?} a={a} {coord:?} {ih}x{iw} -> {oh}x{ow}");
                if mode == M::Nearest {
                    assert_eq!(got, want, "{what}");
                }
                for (g, w) in got.iter().zip(want) {
                    assert!((g - w).abs() <= 1e-5, "{what}: {g} vs {w}");
                }
            }
        }
    }
    // Scale 1.5 on 7 columns gives 10 (10.5 floored); the runtime would use 10 / 7.
    let mut g = Graph::new();
    let x = g.add_input("x", TensorType::f32(vec![1, 3, 4, 7]));
    let (_, y) = g.add_node(
        "rs",
        Op::Resize(ir::Resize {
            sizes: vec![1, 3, 6, 10],
            mode: ir::ResizeMode::Linear,
            coord: C::HalfPixel,
            nearest: N::Floor,
            scales: vec![1.0, 1.0, 1.5, 1.5],
            cubic_coeff_a: -0.75,
            exclude_outside: false,
        }),
        vec![x],
        vec![("y".into(), TensorType::f32(vec![1, 3, 6, 10]))],
    );
    g.outputs.push(y[0]);
    let err = lower(&g).unwrap_err().to_string();
    assert!(err.contains("scales [1.5, 1.5] for 4x7 -> 6x10"), "{err}");
}

/// An SE whose inner activation or gate has no epilogue form is reported, not miscompiled
/// (`fuse_squeeze_excite` does not build one; a graph could still hold it).
#[test]
fn se_with_an_activation_se_gate_cannot_apply_is_unsupported() {
    for (act, gate) in [
        (ir::Activation::Tanh, ir::Activation::Sigmoid),
        (
            ir::Activation::Relu,
            ir::Activation::LeakyRelu { alpha: 0.1 },
        ),
    ] {
        match lower(&se_graph(act, gate, false)).unwrap_err() {
            LowerError::Unsupported(u) => {
                assert_eq!(u.len(), 1);
                assert_eq!(
                    (u[0].node.as_str(), u[0].op.as_str()),
                    ("se", "squeeze_excite")
                );
            }
            e => panic!("{e}"),
        }
    }
}

#[test]
fn buffers_live_from_first_to_last_use_and_live_ones_never_share_memory() {
    let p = lower(&se_graph(
        ir::Activation::Relu,
        ir::Activation::Sigmoid,
        true,
    ))
    .unwrap();
    let sizes: Vec<usize> = p.buffers.iter().map(|b| b.len).collect();
    let live = arena::liveness(&p.steps, &sizes);
    for (i, iv) in live.iter().enumerate() {
        let users: Vec<usize> = (0..p.steps.len())
            .filter(|&s| p.steps[s].kernel.locs().contains(&Loc::Buf(i)))
            .collect();
        assert_eq!(
            (iv.first, iv.last),
            (users[0], *users.last().unwrap()),
            "buf{i}"
        );
    }
    for (i, a) in live.iter().enumerate() {
        for (j, b) in live.iter().enumerate().skip(i + 1) {
            let (ra, rb) = (p.buffers[i], p.buffers[j]);
            let time = a.first <= b.last && b.first <= a.last;
            let space = ra.offset < rb.offset + rb.len && rb.offset < ra.offset + ra.len;
            assert!(
                !(time && space),
                "buf{i} and buf{j} overlap while both live"
            );
        }
    }
}

#[test]
fn a_fused_steps_onnx_nodes_are_listed_in_graph_order() {
    let (mut g, y) = pointwise_graph(8, 8, 4, 4);
    let (_, z) = g.add_node(
        "relu",
        Op::Activation(ir::Activation::Relu),
        vec![y],
        vec![("z".into(), TensorType::f32(vec![1, 8, 4, 4]))],
    );
    g.outputs.push(z[0]);
    crate::passes::optimize(&mut g, &crate::passes::PassOptions::default()).unwrap();
    let p = lower(&g).unwrap();
    let conv = p
        .steps
        .iter()
        .find(|s| matches!(s.kernel, Kernel::Pointwise { .. }))
        .expect("one pointwise step");
    // The fused node is named after the Relu it absorbed the conv into; the list follows the
    // graph.
    assert_eq!(conv.nodes, ["pw", "relu"], "{p}");
}

#[test]
fn other_depthwise_shapes_run_depthwise_general_and_match_the_interpreter() {
    // 11 channels (two blocks, padded lanes), a 3x2 kernel with stride (2, 1), dilation (2, 1)
    // and asymmetric padding: none of it fits the 3x3/5x5 kernel.
    let (c, h, w) = (11, 9, 7);
    let conv = Conv {
        kernel: [3, 2],
        strides: [2, 1],
        pads: [2, 1, 1, 0],
        dilations: [2, 1],
        group: c,
    };
    let (oh, ow) = ((h + 3 - 5) / 2 + 1, w + 1 - 2 + 1);
    let mut g = Graph::new();
    let x = g.add_input("x", TensorType::f32(vec![1, c, h, w]));
    let wt = constant(&mut g, "w", vec![c, 1, 3, 2], 4);
    let b = constant(&mut g, "b", vec![c], 5);
    let (_, y) = g.add_node(
        "dw",
        Op::Conv(conv),
        vec![x, wt, b],
        vec![("y".into(), TensorType::f32(vec![1, c, oh, ow]))],
    );
    g.outputs.push(y[0]);
    let p = lower(&g).unwrap();
    let ks = kernels(&p);
    assert_eq!(ks.len(), 3, "{p}");
    let Kernel::DepthwiseGeneral {
        w: wr,
        shape,
        epilogue,
        ..
    } = ks[1]
    else {
        panic!("expected a depthwise_general call: {p}");
    };
    assert_eq!(
        *shape,
        rt::DepthwiseGeneralShape {
            blocks: 2,
            in_h: h,
            in_w: w,
            kh: 3,
            kw: 2,
            stride: [2, 1],
            dilation: [2, 1],
            pads: [2, 1, 1, 0],
        }
    );
    assert_eq!((shape.out_h(), shape.out_w()), (oh, ow));
    assert_eq!(*epilogue, Epilogue::act(Activation::None));

    let input = values(c * h * w, 6);
    let blob = p.weights.as_f32();
    let mut xb = vec![0.0; 16 * h * w];
    rt::nchw_to_nchw8c(&input, c, h * w, &mut xb).unwrap();
    let mut yb = vec![0.0; 16 * oh * ow];
    rt::Kernels::new()
        .depthwise_general(
            &blob[wr.offset..wr.offset + wr.len],
            *shape,
            rt::Src::at(&xb, 0),
            rt::Dst::at(&mut yb, 0),
            rt::Epilogue::act(Activation::None),
        )
        .unwrap();
    let mut got = vec![0.0; c * oh * ow];
    let lanes: Vec<u32> = (0..c as u32).collect();
    rt::glue::gather_channels(&yb, &lanes, oh * ow, &mut got).unwrap();
    let x = Tensor::from_f32(vec![1, c, h, w], input).unwrap();
    let want = crate::interp::run(&g, &[x]).unwrap();
    let want = want[0].as_f32().unwrap();
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-5, "{got:?} vs {want:?}");
    }
}

#[test]
fn grouped_convs_run_conv_grouped_and_match_the_interpreter() {
    // 12 groups of 2 -> 3 channels (not block-aligned), dilation (1, 2), stride (1, 2),
    // asymmetric padding, an odd image; then a 4-group conv of 6 channels per group.
    for (cin, cout, group, dil, st) in [(24, 36, 12, [1, 2], [1, 2]), (24, 24, 4, [1, 1], [2, 2])] {
        let (h, w) = (9, 11);
        let conv = Conv {
            kernel: [3, 3],
            strides: st,
            pads: [1, 2, 0, 1],
            dilations: dil,
            group,
        };
        let oh = (h + 1 - (2 * dil[0] + 1)) / st[0] + 1;
        let ow = (w + 3 - (2 * dil[1] + 1)) / st[1] + 1;
        let mut g = Graph::new();
        let x = g.add_input("x", TensorType::f32(vec![1, cin, h, w]));
        let wt = constant(&mut g, "w", vec![cout, cin / group, 3, 3], 7);
        let b = constant(&mut g, "b", vec![cout], 8);
        let (_, y) = g.add_node(
            "gconv",
            Op::Conv(conv),
            vec![x, wt, b],
            vec![("y".into(), TensorType::f32(vec![1, cout, oh, ow]))],
        );
        g.outputs.push(y[0]);
        let p = lower(&g).unwrap();
        let ks = kernels(&p);
        assert_eq!(ks.len(), 3, "{p}");
        let Kernel::ConvGrouped { w: wr, shape, .. } = ks[1] else {
            panic!("expected a conv_grouped call: {p}");
        };
        assert_eq!(
            (shape.groups, shape.out_h(), shape.out_w()),
            (group, oh, ow)
        );
        let input = values(cin * h * w, 9);
        let blob = p.weights.as_f32();
        let mut xb = vec![0.0; cin.div_ceil(8) * 8 * h * w];
        rt::nchw_to_nchw8c(&input, cin, h * w, &mut xb).unwrap();
        let mut yb = vec![0.0; cout.div_ceil(8) * 8 * oh * ow];
        rt::Kernels::new()
            .conv_grouped(
                &blob[wr.offset..wr.offset + wr.len],
                *shape,
                rt::Src::at(&xb, 0),
                rt::Dst::at(&mut yb, 0),
                rt::Epilogue::act(Activation::None),
            )
            .unwrap();
        let mut got = vec![0.0; cout * oh * ow];
        let lanes: Vec<u32> = (0..cout as u32).collect();
        rt::glue::gather_channels(&yb, &lanes, oh * ow, &mut got).unwrap();
        let x = Tensor::from_f32(vec![1, cin, h, w], input).unwrap();
        let want = crate::interp::run(&g, &[x]).unwrap();
        let want = want[0].as_f32().unwrap();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() <= 1e-4, "{got:?} vs {want:?}");
        }
    }
}

#[test]
fn dense_3x3_stride_1_convs_run_winograd_and_match_the_interpreter() {
    // 40 -> 36 channels (not block-aligned), asymmetric padding, an odd image: Winograd;
    // with the switch off, or 8 input channels, the direct kernel. A ReLU first, so the conv
    // reads NCHW8c (a dense conv reading the model input alone reads it as NCHW).
    let (cin, cout, h, w) = (40, 36, 9, 11);
    let pads = [1, 2, 0, 1];
    let (oh, ow) = (h + 1 - 2, w + 3 - 2);
    let graph = |cin: usize| {
        let mut g = Graph::new();
        let x = g.add_input("x", TensorType::f32(vec![1, cin, h, w]));
        let (_, r) = g.add_node(
            "relu",
            Op::Activation(ir::Activation::Relu),
            vec![x],
            vec![("r".into(), TensorType::f32(vec![1, cin, h, w]))],
        );
        let wt = constant(&mut g, "w", vec![cout, cin, 3, 3], 7);
        let b = constant(&mut g, "b", vec![cout], 8);
        let conv = Conv {
            kernel: [3, 3],
            strides: [1, 1],
            pads,
            dilations: [1, 1],
            group: 1,
        };
        let (_, y) = g.add_node(
            "conv",
            Op::Conv(conv),
            vec![r[0], wt, b],
            vec![("y".into(), TensorType::f32(vec![1, cout, oh, ow]))],
        );
        g.outputs.push(y[0]);
        g
    };
    let kinds = |p: &Program| -> Vec<String> { p.steps.iter().map(|s| s.kernel.label()).collect() };
    let g = graph(cin);
    let off = lower_with(&g, LowerOptions { winograd: false }).unwrap();
    assert!(kinds(&off).contains(&"conv-grouped".to_string()), "{off}");
    let few = lower(&graph(8)).unwrap();
    assert!(kinds(&few).contains(&"conv-grouped".to_string()), "{few}");
    let p = lower(&g).unwrap();
    assert!(!kinds(&p).contains(&"conv-grouped".to_string()), "{p}");
    let Some((wr, shape, sb)) = p.steps.iter().find_map(|s| match &s.kernel {
        Kernel::ConvWinograd {
            w,
            shape,
            scratch: Loc::Buf(sb),
            ..
        } => Some((*w, *shape, *sb)),
        _ => None,
    }) else {
        panic!("expected a conv_winograd call: {p}");
    };
    assert_eq!((shape.out_h(), shape.out_w(), shape.pads), (oh, ow, pads));
    assert!(p.buffers[sb].len >= rt::winograd_scratch_len(&shape), "{p}");
    let input = values(cin * h * w, 9);
    let relu: Vec<f32> = input.iter().map(|v| v.max(0.0)).collect();
    let blob = p.weights.as_f32();
    let mut xb = vec![0.0; cin.div_ceil(8) * 8 * h * w];
    rt::nchw_to_nchw8c(&relu, cin, h * w, &mut xb).unwrap();
    let mut yb = vec![0.0; cout.div_ceil(8) * 8 * oh * ow];
    let mut scratch = vec![f32::NAN; rt::winograd_scratch_len(&shape)];
    rt::Kernels::new()
        .conv_winograd(
            &blob[wr.offset..wr.offset + wr.len],
            shape,
            rt::Src::at(&xb, 0),
            rt::Dst::at(&mut yb, 0),
            rt::Epilogue::act(Activation::None),
            &mut scratch,
        )
        .unwrap();
    let mut got = vec![0.0; cout * oh * ow];
    let lanes: Vec<u32> = (0..cout as u32).collect();
    rt::glue::gather_channels(&yb, &lanes, oh * ow, &mut got).unwrap();
    let x = Tensor::from_f32(vec![1, cin, h, w], input).unwrap();
    let want = crate::interp::run(&g, &[x]).unwrap();
    let want = want[0].as_f32().unwrap();
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b} (scale {scale})");
    }
}

#[test]
fn conv_transpose_is_a_taps_gemm_and_a_gather_with_bias_matching_the_interpreter() {
    // 11 -> 13 channels (neither block-aligned), kernel 3x2, strides (2, 3), dilations (1, 2),
    // pads cropping every side differently, output_padding on rows; a ReLU before it (so it
    // reads NCHW8c) and a fused HardSwish.
    let (cin, cout, h, w) = (11, 13, 5, 4);
    let t = ir::ConvTranspose {
        conv: Conv {
            kernel: [3, 2],
            strides: [2, 3],
            pads: [1, 0, 2, 1],
            dilations: [1, 2],
            group: 1,
        },
        output_padding: [1, 0],
        act: Some(ir::Activation::HardSwish),
    };
    // (5 - 1) * 2 + 2 + 1 + 1 - 3 = 9 rows, (4 - 1) * 3 + 2 + 1 - 1 = 11 columns.
    let (oh, ow) = (9, 11);
    let mut g = Graph::new();
    let x = g.add_input("x", TensorType::f32(vec![1, cin, h, w]));
    let (_, r) = g.add_node(
        "relu",
        Op::Activation(ir::Activation::Relu),
        vec![x],
        vec![("r".into(), TensorType::f32(vec![1, cin, h, w]))],
    );
    let wt = constant(&mut g, "w", vec![cin, cout, 3, 2], 17);
    let b = constant(&mut g, "b", vec![cout], 18);
    let (_, y) = g.add_node(
        "up",
        Op::ConvTranspose(t),
        vec![r[0], wt, b],
        vec![("y".into(), TensorType::f32(vec![1, cout, oh, ow]))],
    );
    g.outputs.push(y[0]);
    let p = lower(&g).unwrap();
    let steps: Vec<&Kernel> = p
        .steps
        .iter()
        .filter(|s| s.nodes.iter().any(|n| n == "up"))
        .map(|s| &s.kernel)
        .collect();
    let [Kernel::Pointwise {
        w: wr,
        shape: pw,
        epilogue,
        ..
    }, Kernel::Col2Im {
        shape,
        bias,
        act,
        post: None,
        ..
    }] = steps[..]
    else {
        panic!("expected GEMM, then gather with bias and activation: {p}");
    };
    assert_eq!((pw.k_blocks, pw.n_blocks, pw.pixels), (2, 6 * 2, h * w));
    assert_eq!(*epilogue, Epilogue::act(Activation::None));
    assert_eq!((shape.out_h, shape.out_w, shape.blocks), (oh, ow, 2));
    assert_eq!(*act, Activation::HardSwish);
    let macs: u64 = p.steps.iter().map(|s| s.macs).sum();
    assert_eq!(macs, (h * w * cin * cout * 6) as u64);

    let input = values(cin * h * w, 19);
    let relu: Vec<f32> = input.iter().map(|v| v.max(0.0)).collect();
    let blob = p.weights.as_f32();
    let mut xb = vec![0.0; 16 * h * w];
    rt::nchw_to_nchw8c(&relu, cin, h * w, &mut xb).unwrap();
    let k = rt::Kernels::new();
    let mut cols = vec![f32::NAN; shape.cols_len()];
    k.pointwise(
        &blob[wr.offset..wr.offset + wr.len],
        *pw,
        rt::Src::at(&xb, 0),
        rt::Dst::at(&mut cols, 0),
        rt::Epilogue::act(Activation::None),
    )
    .unwrap();
    let mut yb = vec![f32::NAN; shape.out_len()];
    let bv = &blob[bias.offset..bias.offset + bias.len];
    rt::col2im_fused(k, &cols, shape, &mut yb, bv, *act, None).unwrap();
    let mut got = vec![0.0; cout * oh * ow];
    let lanes: Vec<u32> = (0..cout as u32).collect();
    rt::glue::gather_channels(&yb, &lanes, oh * ow, &mut got).unwrap();
    let x = Tensor::from_f32(vec![1, cin, h, w], input).unwrap();
    let want = crate::interp::run(&g, &[x]).unwrap();
    let want = want[0].as_f32().unwrap();
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b} (scale {scale})");
    }
    // The padding lanes of the second block are zero (the GEMM's padded rows are).
    let second = &yb[oh * ow * 8..];
    assert!(second
        .chunks(8)
        .all(|px| px[cout - 8..].iter().all(|&v| v == 0.0)));
}

#[test]
fn quantize_dequantize_lower_to_u8_buffers_and_qoperator_ops_are_listed() {
    use crate::ir::{BinaryOp, DType, QBinary, QBinaryForm, QuantParams};
    let mut g = ir::Graph::new();
    let x = g.add_input("x", TensorType::f32(vec![1, 8, 4, 4]));
    let q = QuantParams::per_tensor(DType::I8, 0.1, -3);
    let (_, xq) = g.add_node(
        "q",
        Op::Quantize(q.clone()),
        vec![x],
        vec![("xq".into(), TensorType::new(DType::I8, vec![1, 8, 4, 4]))],
    );
    let (_, y) = g.add_node(
        "dq",
        Op::Dequantize(q.clone()),
        vec![xq[0]],
        vec![("y".into(), TensorType::f32(vec![1, 8, 4, 4]))],
    );
    g.outputs.push(y[0]);
    let p = lower(&g).unwrap();
    let kernels: Vec<&Kernel> = p.steps.iter().map(|s| &s.kernel).collect();
    // i8 is stored as q + 128: zero point -3 becomes 125; 8 channels x 16 pixels = 128 bytes,
    // 32 floats of arena.
    assert!(matches!(
        kernels[1],
        Kernel::Quantize {
            blocks: 1,
            pixels: 16,
            zero_point: 125,
            ..
        }
    ));
    assert!(matches!(
        kernels[2],
        Kernel::Dequantize {
            blocks: 1,
            pixels: 16,
            zero_point: 125,
            ..
        }
    ));
    let u8_lens: Vec<usize> = p.buffers.iter().filter(|b| b.u8).map(|b| b.len).collect();
    assert_eq!(u8_lens, [32]);

    // A QOperator-only op (QLinearAdd) has no kernel yet: listed, not lowered.
    g.add_node(
        "qadd",
        Op::QBinary(QBinary {
            op: BinaryOp::Add,
            a: q.clone(),
            b: q.clone(),
            y: q,
            form: QBinaryForm::Ratio,
        }),
        vec![xq[0], xq[0]],
        vec![("z".into(), TensorType::new(DType::I8, vec![1, 8, 4, 4]))],
    );
    match lower(&g).unwrap_err() {
        LowerError::Unsupported(u) => {
            assert_eq!(u.len(), 1);
            assert_eq!((u[0].node.as_str(), u[0].op.as_str()), ("qadd", "qadd"));
        }
        e => panic!("{e}"),
    }
}

/// A dequantized model output of whole blocks at one pixel ([1, 16]) is written straight into
/// the output by its dequantization; 10 channels (a partial block) or the value read by a
/// second output keep the gather step.
#[test]
fn dequantized_output_of_whole_blocks_is_written_in_place() {
    use crate::ir::{DType, QuantParams};
    let plan = |c: usize, twice: bool| {
        let mut g = ir::Graph::new();
        let x = g.add_input("x", TensorType::f32(vec![1, c]));
        let q = QuantParams::per_tensor(DType::U8, 0.1, 7);
        let (_, xq) = g.add_node(
            "q",
            Op::Quantize(q.clone()),
            vec![x],
            vec![("xq".into(), TensorType::new(DType::U8, vec![1, c]))],
        );
        let (_, y) = g.add_node(
            "dq",
            Op::Dequantize(q),
            vec![xq[0]],
            vec![("y".into(), TensorType::f32(vec![1, c]))],
        );
        g.outputs.push(y[0]);
        if twice {
            g.outputs.push(y[0]);
        }
        lower(&g).unwrap()
    };
    let p = plan(16, false);
    let last = &p.steps.last().unwrap().kernel;
    assert!(
        matches!(
            last,
            Kernel::Dequantize {
                dst: Loc::Output(0),
                blocks: 2,
                ..
            }
        ),
        "{last:?}"
    );
    assert!(!p
        .steps
        .iter()
        .any(|s| matches!(s.kernel, Kernel::FromBlocked { .. })));
    for (c, twice) in [(10, false), (16, true)] {
        let p = plan(c, twice);
        let gathers = p
            .steps
            .iter()
            .filter(|s| matches!(s.kernel, Kernel::FromBlocked { .. }))
            .count();
        assert_eq!(
            gathers,
            if twice { 2 } else { 1 },
            "{c} channels, twice {twice}"
        );
    }
}

/// An int8 concatenation lowers as a QConcat (one `concat_u8` step per input, a copy where the
/// parameters agree, the second input at channel offset 5); a plain Concat of int8 tensors is
/// reported with its data type instead of reaching the f32 lane remap.
#[test]
fn int8_concat_lowers_as_qconcat_and_a_plain_one_is_reported() {
    use crate::ir::{DType, QuantParams};
    let q = QuantParams::per_tensor(DType::U8, 0.1, 3);
    let q2 = QuantParams::per_tensor(DType::U8, 0.2, 0);
    let build = |op: Op| {
        let mut g = ir::Graph::new();
        let x = g.add_input("x", TensorType::f32(vec![1, 5, 4, 4]));
        let (_, xq) = g.add_node(
            "q",
            Op::Quantize(q.clone()),
            vec![x],
            vec![("xq".into(), TensorType::new(DType::U8, vec![1, 5, 4, 4]))],
        );
        let (_, c) = g.add_node(
            "cat",
            op,
            vec![xq[0], xq[0]],
            vec![("c".into(), TensorType::new(DType::U8, vec![1, 10, 4, 4]))],
        );
        let (_, y) = g.add_node(
            "dq",
            Op::Dequantize(q2.clone()),
            vec![c[0]],
            vec![("y".into(), TensorType::f32(vec![1, 10, 4, 4]))],
        );
        g.outputs.push(y[0]);
        g
    };
    let g = build(Op::QConcat {
        axis: 1,
        x: vec![q.clone(), q2.clone()],
        y: q2.clone(),
    });
    let p = lower(&g).unwrap();
    let cats: Vec<_> = p
        .steps
        .iter()
        .filter_map(|s| match &s.kernel {
            Kernel::ConcatU8 { shape, requant, .. } => {
                Some((shape.channel_offset, requant.is_identity()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(cats, [(0, false), (5, true)]);
    match lower(&build(Op::Concat { axis: 1 })).unwrap_err() {
        LowerError::Unsupported(u) => {
            assert_eq!(u.len(), 1);
            assert!(u[0].blocker.contains("u8"), "{}", u[0].blocker);
        }
        e => panic!("{e}"),
    }
}

/// A QConcat input with the output's quantization parameters, at a channel offset on a block
/// boundary and otherwise read only by int8 convs, is written in place by its producer (no
/// copy step; the conv's destination is the concatenation's buffer at that block); a
/// requantized input keeps its `concat_u8` step, and so does an identity input that another
/// kind of op also reads.
#[test]
fn int8_concat_inputs_with_its_parameters_are_written_in_place() {
    use crate::ir::{DType, QuantParams};
    let qx = QuantParams::per_tensor(DType::U8, 0.1, 3);
    let qa = QuantParams::per_tensor(DType::U8, 0.05, 7);
    let qb = QuantParams::per_tensor(DType::U8, 0.07, 2);
    // `cat` has the parameters of input `same` (0 or 1); `extra` also dequantizes that input
    // into a second model output.
    let build = |same: usize, extra: bool| {
        let mut g = ir::Graph::new();
        let x = g.add_input("x", TensorType::f32(vec![1, 8, 4, 4]));
        let (_, xq) = g.add_node(
            "q",
            Op::Quantize(qx.clone()),
            vec![x],
            vec![("xq".into(), TensorType::new(DType::U8, vec![1, 8, 4, 4]))],
        );
        let mut halves = Vec::new();
        for (i, q) in [&qa, &qb].into_iter().enumerate() {
            let w = Tensor::new(
                DType::I8,
                vec![8, 8, 1, 1],
                ir::Data::I64((0..64).map(|j| (j * 7 + i as i64 * 3) % 11 - 5).collect()),
            )
            .unwrap();
            let w = g.add_const(format!("w{i}"), Arc::new(w));
            let conv = ir::QConv {
                conv: ir::Conv {
                    kernel: [1, 1],
                    strides: [1, 1],
                    pads: [0; 4],
                    dilations: [1, 1],
                    group: 1,
                },
                x: qx.clone(),
                w: QuantParams::per_tensor(DType::I8, 0.01, 0),
                y: q.clone(),
                act: None,
            };
            let (_, h) = g.add_node(
                format!("conv{i}"),
                Op::QConv(conv),
                vec![xq[0], w],
                vec![(
                    format!("h{i}"),
                    TensorType::new(DType::U8, vec![1, 8, 4, 4]),
                )],
            );
            halves.push(h[0]);
        }
        let qy = [&qa, &qb][same].clone();
        let (_, c) = g.add_node(
            "cat",
            Op::QConcat {
                axis: 1,
                x: vec![qa.clone(), qb.clone()],
                y: qy.clone(),
            },
            halves.clone(),
            vec![("c".into(), TensorType::new(DType::U8, vec![1, 16, 4, 4]))],
        );
        for (name, v, q) in [("dq", c[0], &qy), ("dq2", halves[same], &qy)]
            .into_iter()
            .take(1 + extra as usize)
        {
            let (_, y) = g.add_node(
                name,
                Op::Dequantize(q.clone()),
                vec![v],
                vec![(
                    format!("{name}_y"),
                    TensorType::f32(vec![1, 16 / (1 + (v != c[0]) as usize), 4, 4]),
                )],
            );
            g.outputs.push(y[0]);
        }
        g
    };
    for (same, extra) in [(0, false), (1, false), (1, true)] {
        let p = lower(&build(same, extra)).unwrap();
        let cats: Vec<_> = p
            .steps
            .iter()
            .filter_map(|s| match &s.kernel {
                Kernel::ConcatU8 {
                    shape,
                    requant,
                    dst,
                    ..
                } => Some((shape.channel_offset, requant.is_identity(), *dst)),
                _ => None,
            })
            .collect();
        let convs: Vec<View> = p
            .steps
            .iter()
            .filter_map(|s| match &s.kernel {
                Kernel::PointwiseU8 { dst, .. } => Some(*dst),
                _ => None,
            })
            .collect();
        let other = 1 - same;
        if extra {
            // Copied as before: both inputs have a step, both convs their own buffers.
            assert_eq!(cats.len(), 2, "{cats:?}");
            assert!(convs.iter().all(|v| v.block == 0 && v.loc != cats[0].2));
            continue;
        }
        assert_eq!(cats.len(), 1, "{same}: {cats:?}");
        let (offset, identity, cat_buf) = cats[0];
        assert_eq!((offset, identity), (8 * other, false));
        assert_eq!(convs[same], View::at(cat_buf, same), "{same}");
        assert_ne!(convs[other].loc, cat_buf);
    }
}

/// A dense QConv reading a quantized model input (the stem) lowers to `quantize_padded_u8`
/// then `stem_u8`, with planes padded for its pads and stride; the same conv behind anything
/// else than the input's Quantize runs as the f32 fallback.
#[test]
fn int8_stem_reads_padded_planes_of_the_quantized_input() {
    use crate::ir::{DType, QuantParams};
    let qx = QuantParams::per_tensor(DType::U8, 0.1, 3);
    let qy = QuantParams::per_tensor(DType::U8, 0.05, 0);
    let build = |behind_relu: bool| {
        let mut g = ir::Graph::new();
        let x = g.add_input("x", TensorType::f32(vec![1, 3, 9, 10]));
        let x = if behind_relu {
            let (_, r) = g.add_node(
                "relu",
                Op::Activation(ir::Activation::Relu),
                vec![x],
                vec![("r".into(), TensorType::f32(vec![1, 3, 9, 10]))],
            );
            r[0]
        } else {
            x
        };
        let (_, xq) = g.add_node(
            "q",
            Op::Quantize(qx.clone()),
            vec![x],
            vec![("xq".into(), TensorType::new(DType::U8, vec![1, 3, 9, 10]))],
        );
        let w = Tensor::new(
            DType::I8,
            vec![12, 3, 3, 3],
            ir::Data::I64((0..324).map(|j| (j * 5) % 13 - 6).collect()),
        )
        .unwrap();
        let w = g.add_const("w", Arc::new(w));
        let conv = ir::QConv {
            conv: ir::Conv {
                kernel: [3, 3],
                strides: [2, 2],
                pads: [1, 1, 0, 1],
                dilations: [1, 1],
                group: 1,
            },
            x: qx.clone(),
            w: QuantParams::per_tensor(DType::I8, 0.01, 0),
            y: qy.clone(),
            act: Some(ir::Activation::Relu),
        };
        // (9 + 1 + 0 - 3) / 2 + 1 = 4 rows, (10 + 2 - 3) / 2 + 1 = 5 columns.
        let (_, h) = g.add_node(
            "stem",
            Op::QConv(conv),
            vec![xq[0], w],
            vec![("h".into(), TensorType::new(DType::U8, vec![1, 12, 4, 5]))],
        );
        let (_, y) = g.add_node(
            "dq",
            Op::Dequantize(qy.clone()),
            vec![h[0]],
            vec![("y".into(), TensorType::f32(vec![1, 12, 4, 5]))],
        );
        g.outputs.push(y[0]);
        g
    };
    let p = lower(&build(false)).unwrap();
    let kinds: Vec<String> = p.steps.iter().map(|s| s.kernel.label()).collect();
    assert_eq!(kinds[..2], ["quantize-padded", "stem-u8"], "{kinds:?}");
    let (padded, stem) = (&p.steps[0].kernel, &p.steps[1].kernel);
    let Kernel::QuantizePadded {
        chw,
        hp,
        wp,
        top,
        left,
        dst,
        ..
    } = padded
    else {
        unreachable!()
    };
    // 10 rows (9 + 1 on top); 12 columns: the last column's 4-byte group reads to 2 * 4 + 4.
    assert_eq!((*chw, *hp, *wp, *top, *left), ((3, 9, 10), 10, 12, 1, 1));
    let Kernel::StemU8 {
        shape,
        src,
        requant,
        ..
    } = stem
    else {
        unreachable!()
    };
    assert_eq!(src, dst);
    assert_eq!(
        (
            shape.c_in,
            shape.hp,
            shape.wp,
            shape.k,
            shape.stride,
            shape.c_out,
            shape.oh,
            shape.ow
        ),
        (3, 10, 12, 3, 2, 12, 4, 5)
    );
    assert_eq!(
        requant.min, requant.zero_point,
        "the ReLU is the lower bound"
    );
    assert!(p.steps[1].macs > 0);
    // Behind a ReLU the Quantize does not read the model input: the f32 fallback as before.
    let p = lower(&build(true)).unwrap();
    let kinds: Vec<String> = p.steps.iter().map(|s| s.kernel.label()).collect();
    assert!(!kinds.iter().any(|k| k == "stem-u8"), "{kinds:?}");
    assert!(
        p.steps.iter().any(|s| s.what.starts_with(quant::FALLBACK)),
        "{kinds:?}"
    );
}
