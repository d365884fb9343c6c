//! channel_shuffle: ShuffleNet's Reshape -> Transpose -> Reshape becomes one op (checked
//! through the interpreter, and against the permutation written out); near misses stay.

mod passes_common;

use ghostc::ir::{Graph, Op, Tensor};
use ghostc::passes::ChannelShuffle;
use passes_common::*;

fn shuffle(
    g: &mut Graph,
    x: ghostc::ir::ValueId,
    split: &[usize],
    perm: &[usize],
) -> ghostc::ir::ValueId {
    let back = g.value(x).ty.shape.clone();
    let r = reshape(g, x, split);
    let t = node(
        g,
        Op::Transpose {
            perm: perm.to_vec(),
        },
        &[r],
    );
    reshape(g, t, &back)
}

#[test]
fn rank5_and_rank4_spellings_become_one_op() {
    for (groups, split) in [(2, vec![1, 2, 6, 3, 5]), (3, vec![1, 3, 4, 15])] {
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[1, 12, 3, 5]);
        let r = relu(&mut g, x);
        let perm: Vec<usize> = [0, 2, 1].into_iter().chain(3..split.len()).collect();
        let y = shuffle(&mut g, r, &split, &perm);
        g.outputs.push(y);
        let (after, changed) = check_pass(&g, &ChannelShuffle, 5);
        assert!(changed);
        assert_eq!(count(&after, "channel_shuffle"), 1, "\n{after}");
        assert_eq!(
            count(&after, "transpose") + count(&after, "reshape"),
            0,
            "\n{after}"
        );
        // Output channel i * groups + j is input channel j * (C / groups) + i.
        let data: Vec<f32> = (0..12 * 15).map(|v| v as f32).collect();
        let t = Tensor::from_f32(vec![1, 12, 3, 5], data.clone()).unwrap();
        let got = run(&after, &[t])[0].to_f32_vec();
        for o in 0..12 {
            let src = (o % groups) * (12 / groups) + o / groups;
            assert_eq!(
                got[o * 15..(o + 1) * 15],
                data[src * 15..(src + 1) * 15],
                "channel {o}"
            );
        }
    }
}

#[test]
fn other_permutations_and_shared_intermediates_stay() {
    // Transposing the pixel axes too, a reshape that does not restore the shape, a transpose
    // of channels with pixels, and an intermediate with a second reader are not channel
    // shuffles.
    for (split, perm, back) in [
        (vec![1, 2, 6, 3, 5], vec![0, 2, 1, 4, 3], vec![1, 12, 5, 3]),
        (vec![1, 2, 6, 3, 5], vec![0, 2, 1, 3, 4], vec![1, 12, 15]),
        (vec![1, 12, 15, 1], vec![0, 2, 1, 3], vec![1, 12, 3, 5]),
    ] {
        let mut g = Graph::new();
        let x = input(&mut g, "x", &[1, 12, 3, 5]);
        let r = reshape(&mut g, x, &split);
        let t = node(&mut g, Op::Transpose { perm }, &[r]);
        let y = reshape(&mut g, t, &back);
        g.outputs.push(y);
        assert_unchanged(&g, &ChannelShuffle);
    }
    let mut g = Graph::new();
    let x = input(&mut g, "x", &[1, 12, 3, 5]);
    let r = reshape(&mut g, x, &[1, 2, 6, 3, 5]);
    let t = node(
        &mut g,
        Op::Transpose {
            perm: vec![0, 2, 1, 3, 4],
        },
        &[r],
    );
    let y = reshape(&mut g, t, &[1, 12, 3, 5]);
    g.outputs.push(y);
    g.outputs.push(t);
    assert_unchanged(&g, &ChannelShuffle);
}
