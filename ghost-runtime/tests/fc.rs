//! Fully connected layer: every ISA (serial and split) against the naive formula.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn fc_matches_formula() {
    let mut rng = Rng::new(12);
    for _ in 0..trials(30) {
        let (k, n) = (rng.range(1, 100), rng.range(1, 100));
        let (w, b, packed) = random_fc(&mut rng, k, n);
        let mut x = rng.vec(pad8(k));
        x[k..].iter_mut().for_each(|v| *v = 0.0);
        let act = rng.act();
        let y = each_isa("fc", k, |kern| {
            let mut y = vec![0.0; pad8(n)];
            kern.fc(&packed, pad8(k) / 8, pad8(n) / 8, &x, &mut y, act)
                .unwrap();
            for fork in forks() {
                let mut got = vec![0.0; pad8(n)];
                Par::new(kern, fork.as_ref())
                    .min_split_macs(0)
                    .fc(&packed, pad8(k) / 8, pad8(n) / 8, &x, &mut got, act)
                    .unwrap();
                assert!(
                    bits(&got) == bits(&y),
                    "fc {k}->{n} in {} parts",
                    fork.parts()
                );
            }
            y
        });
        let want: Vec<f64> = (0..n)
            .map(|o| {
                let acc: f64 = (0..k)
                    .map(|i| w[o * pad8(k) + i] as f64 * x[i] as f64)
                    .sum();
                apply(act, acc + b[o] as f64)
            })
            .collect();
        assert_close64("fc", &y[..n], &want, k);
    }
}
