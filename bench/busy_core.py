#!/usr/bin/env python3
"""Two threads against one when the other core is busy (issue 16).

Runs a ghostc runner binary (from `ghostc bench --keep DIR --target-dir T`, or `ghostc compile`
+ cargo build) in three configurations, alternating, for several rounds:

  1T        --threads 1 pinned to core B (the free core),
  2T        --threads 2 pinned to cores A,B (the team may fall back to serial),
  2T-fixed  --threads 2 --fixed-team (the team splits every job, the old behaviour),

first with core A quiet, then with a competing busy loop pinned to core A. Prints per
configuration the median over rounds of the runner's median and p10 latency, and the ratios
to 1T (< 1: two threads pay). Needs `taskset` and at least two cores.

    python bench/busy_core.py --runner /tmp/g100/target/release/ghostc_bench --rounds 5
"""

import argparse
import re
import statistics
import subprocess
import sys

CONFIGS = {
    "1T": (["--threads", "1"], "B"),
    "2T": (["--threads", "2"], "AB"),
    "2T-fixed": (["--threads", "2", "--fixed-team"], "AB"),
}


def run(runner, args, cores, runs):
    out = subprocess.run(
        ["taskset", "-c", cores, runner, *args, "--bench", str(runs)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kv = dict(re.findall(r"(\w+)=([\d.]+)", out.strip().splitlines()[-1]))
    return float(kv["median_us"]), float(kv["p10_us"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", required=True, help="a ghostc runner binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=200, help="timed runs per --bench call")
    ap.add_argument("--core-a", default="0", help="the core the competing load takes")
    ap.add_argument("--core-b", default="1", help="the free core")
    o = ap.parse_args()
    cores = {"A": o.core_a, "B": o.core_b, "AB": f"{o.core_a},{o.core_b}"}

    for load in ["quiet", "busy"]:
        hog = None
        if load == "busy":
            hog = subprocess.Popen(["taskset", "-c", o.core_a, "sh", "-c", "while :; do :; done"])
        try:
            res = {c: [] for c in CONFIGS}
            for _ in range(o.rounds):
                for name, (args, where) in CONFIGS.items():
                    res[name].append(run(o.runner, args, cores[where], o.runs))
        finally:
            if hog:
                hog.kill()
                hog.wait()
        print(f"## core {o.core_a} {load}" + (" (busy loop pinned there)" if hog else ""))
        print("| config | median us | p10 us | median / 1T | p10 / 1T |")
        print("|---|---|---|---|---|")
        base = [statistics.median(x[i] for x in res["1T"]) for i in (0, 1)]
        for name in CONFIGS:
            med = [statistics.median(x[i] for x in res[name]) for i in (0, 1)]
            print(f"| {name} | {med[0]:.0f} | {med[1]:.0f} | {med[0] / base[0]:.3f} | "
                  f"{med[1] / base[1]:.3f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
