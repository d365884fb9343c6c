//! NCHW <-> NCHW8c conversion: padded lanes zero, round trip exact.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn layout_roundtrip() {
    let mut rng = Rng::new(1);
    for _ in 0..trials(20) {
        let (c, p) = (rng.range(1, 20), rng.range(1, 9));
        let x = rng.vec(c * p);
        let mut b = vec![f32::NAN; nchw8c_len(c, p)];
        nchw_to_nchw8c(&x, c, p, &mut b).unwrap();
        for cc in c..pad8(c) {
            for pp in 0..p {
                assert_eq!(b[at(p, cc, pp)], 0.0);
            }
        }
        for cc in 0..c {
            for pp in 0..p {
                assert_eq!(b[at(p, cc, pp)], x[cc * p + pp]);
            }
        }
        let mut y = vec![0.0; c * p];
        nchw8c_to_nchw(&b, c, p, &mut y).unwrap();
        assert_eq!(x, y);
    }
}
