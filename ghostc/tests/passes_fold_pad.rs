//! fold_pad: a zero Pad before convs becomes their padding (checked through the interpreter);
//! other pads stay.

mod passes_common;

use ghostc::ir::{Graph, Op, Pad, PadMode};
use ghostc::passes::FoldPad;
use passes_common::*;

fn pad(
    g: &mut Graph,
    x: ghostc::ir::ValueId,
    pads: [i64; 8],
    mode: PadMode,
    value: f32,
) -> ghostc::ir::ValueId {
    node(
        g,
        Op::Pad(Pad {
            pads: pads.to_vec(),
            mode,
            value,
        }),
        &[x],
    )
}

const PASS: FoldPad = FoldPad { enabled: true };

#[test]
fn asymmetric_zero_pad_folds_into_a_strided_conv_and_a_depthwise_conv() {
    let mut rng = Rng::new(1);
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 5, 9, 8]);
    // TF "SAME" for a 3x3 stride-2 conv on an even size: 0 before, 1 after.
    let p = pad(&mut g, x, [0, 0, 0, 0, 0, 0, 1, 1], PadMode::Constant, 0.0);
    let y = conv(&mut g, &mut rng, p, 7, 3, 2, 1, true);
    let p2 = pad(&mut g, y, [0, 0, 2, 1, 0, 0, 0, 3], PadMode::Constant, 0.0);
    let a = conv(&mut g, &mut rng, p2, 7, 3, 1, 7, true);
    let b = conv(&mut g, &mut rng, p2, 4, 1, 1, 1, false);
    g.outputs.push(a);
    g.outputs.push(b);
    let (after, changed) = check_pass(&g, &PASS, 2);
    assert!(changed);
    assert_eq!(count(&after, "pad"), 0, "\n{after}");
}

#[test]
fn other_pads_and_readers_stay() {
    let mut rng = Rng::new(3);
    for (pads, mode, value) in [
        ([0, 0, 1, 1, 0, 0, 1, 1], PadMode::Reflect, 0.0),
        ([0, 0, 1, 1, 0, 0, 1, 1], PadMode::Edge, 0.0),
        ([0, 0, 1, 1, 0, 0, 1, 1], PadMode::Constant, 0.5),
        ([0, 1, 0, 0, 0, 0, 0, 0], PadMode::Constant, 0.0),
        ([0, 0, -1, 0, 0, 0, 1, 1], PadMode::Constant, 0.0),
    ] {
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[1, 4, 6, 6]);
        let p = pad(&mut g, x, pads, mode, value);
        let y = conv(&mut g, &mut rng, p, 4, 3, 1, 1, true);
        g.outputs.push(y);
        assert_unchanged(&g, &PASS);
    }
    // A reader that is not a conv keeps the Pad for every reader.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 4, 6, 6]);
    let p = pad(&mut g, x, [0, 0, 1, 1, 0, 0, 1, 1], PadMode::Constant, 0.0);
    let y = conv(&mut g, &mut rng, p, 4, 3, 1, 1, true);
    let z = relu(&mut g, p);
    g.outputs.push(y);
    g.outputs.push(z);
    assert_unchanged(&g, &PASS);
}
