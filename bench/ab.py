#!/usr/bin/env python3
"""Alternating A/B of compiled runners (`ghostc bench ... --name X` or `ghostc compile`).

    python3 bench/ab.py ROUNDS RUNS RUNNER...

Each round runs every runner once as `taskset -c 1 RUNNER --bench RUNS` (the order reversed
every other round, so drift and the second core's load fall on all of them alike), parses its
`median_us=` and `p10_us=`, and prints the round. At the end: per runner the median of the round
medians, the median p10 and the ratio to the first runner. Copy the runners into one
directory first: a rebuild replaces the binary a later round would run.
"""
import os
import re
import statistics
import subprocess
import sys


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds, runs, bins = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    med = {b: [] for b in bins}
    p10 = {b: [] for b in bins}
    for r in range(rounds):
        for b in bins if r % 2 == 0 else bins[::-1]:
            out = subprocess.run(["taskset", "-c", "1", b, "--bench", runs],
                                 capture_output=True, text=True, env=os.environ).stdout
            m, q = re.search(r"median_us=([0-9.]+)", out), re.search(r"p10_us=([0-9.]+)", out)
            if not m:
                sys.exit(f"{b}: no median_us= in its output:\n{out}")
            med[b].append(float(m.group(1)) / 1000)
            p10[b].append(float(q.group(1)) / 1000 if q else float("nan"))
        print(f"round {r + 1}: " + "  ".join(f"{os.path.basename(b)} {med[b][-1]:.3f}" for b in bins),
              flush=True)
    base = statistics.median(med[bins[0]])
    for b in bins:
        m = statistics.median(med[b])
        print(f"{os.path.basename(b):20s} median {m:.3f} ms  p10 {statistics.median(p10[b]):.3f}"
              f"  ratio to first {m / base:.3f}")


if __name__ == "__main__":
    main()
