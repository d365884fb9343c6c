#!/usr/bin/env python3
"""Per-step A/B of profiling runners (the `NAME_profile` binary `ghostc bench --profile` builds).

    python3 bench/profile_ab.py ROUNDS PROFILE_RUNNER...

Runs `taskset -c 1 RUNNER --profile 300` ROUNDS times per runner, alternating (order reversed
every other round), and takes each step's median over the rounds. Prints the steps whose
medians differ by more than 3 % (and 0.3 us) between runners, then the sums per kind of step
(the first two words of its description) and the totals. One profile can move a single step
by 10 % on a shared machine, and builds differing only in code layout moved single steps by up
to 7 % (bench/README.md), so compare kinds and totals before single steps.
"""
import collections
import re
import statistics
import subprocess
import sys

STEP = re.compile(r"\s*(\d+)\s+(.*?)\s{2,}(\d+)\s+([\d.]+)\s")


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds, bins = int(sys.argv[1]), sys.argv[2:]
    res = {b: collections.defaultdict(list) for b in bins}
    names = {}
    for r in range(rounds):
        for b in bins if r % 2 == 0 else bins[::-1]:
            out = subprocess.run(["taskset", "-c", "1", b, "--profile", "300"],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                m = STEP.match(line)
                if m:
                    res[b][int(m.group(1))].append(float(m.group(4)))
                    names[int(m.group(1))] = m.group(2)
    med = {b: {k: statistics.median(v) for k, v in res[b].items()} for b in bins}
    steps = sorted(med[bins[0]])
    for k in steps:
        vals = [med[b].get(k, float("nan")) for b in bins]
        if max(vals) > 0.3 and (max(vals) - min(vals)) / max(vals) > 0.03:
            print(f"{k:4d} {names[k][:55]:55s} " + " ".join(f"{v:6.1f}" for v in vals))
    kinds = collections.defaultdict(lambda: [0.0] * len(bins))
    for k in steps:
        kind = " ".join(names[k].split()[:2])
        for i, b in enumerate(bins):
            kinds[kind][i] += med[b].get(k, 0.0)
    for kind, v in sorted(kinds.items(), key=lambda x: -x[1][0]):
        print(f"{kind:30s} " + " ".join(f"{x:7.1f}" for x in v))
    print("total (us)                     " + " ".join(f"{sum(med[b].values()):7.1f}" for b in bins))


if __name__ == "__main__":
    main()
