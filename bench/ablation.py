#!/usr/bin/env python3
"""Fusion ablation: what each ghostc fusion buys, measured side by side.

Builds the model with every fusion on and once per fusion switched off (`--no-fuse bn`, `act`,
`ghost`, `residual`, `se`, `linear`, `branches`, `dfc`, `winograd` (the Winograd 3x3 kernel
choice), and `all`) through `ghostc bench --runs 0`
(one shared cargo target dir, so ghost-runtime is built once), checks each variant's output
against ONNX Runtime on the same input (max|y-ref| <= 1e-4*max|ref| + 1e-5), then times the
variants alternating in rounds (the order rotates every round), each run a fresh process pinned
with `taskset -c CORE` (`NAME --bench N`: N timed runs after the first run and 5 warm-up runs).

Reported per variant: median over rounds of each round's median, the same for p10, the ratio to
the all-fusions-on build (median over rounds of the per-round ratio, so both sides of a ratio
come from the same round; above 1 = slower without that fusion), the same ratio of p10s (steadier
on a busy machine, where preemption inflates medians), kernel steps, scratch bytes, and the
output check. A fusion that does not apply to the model (e.g. `branches` or `dfc` on GhostNet v1)
yields the same program as the baseline: same steps and scratch, ratio about 1.

Usage:
  python bench/ablation.py [MODEL.onnx] [--rounds 5] [--runs 200] [--core 1]
                           [--threads 1 [--cores 0,1]] [--variants bn,act,...]
                           [--workdir DIR] [--ghostc PATH] [--markdown]
See bench/README.md.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "fixtures/full/ghostnet_100_224_op17/model.onnx")
FUSIONS = ["bn", "act", "ghost", "residual", "se", "linear", "branches", "dfc", "winograd", "all"]
BASE = "all-on"


def fields(line):
    """key=value tokens of a line; `binary=` (the last field of `bench:`) runs to the end."""
    out = {}
    if " binary=" in line:
        line, out["binary"] = line.split(" binary=", 1)
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def run(cmd, **kw):
    p = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout


def model_input(model, batch):
    import onnx
    m = onnx.load(model, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    gin = [i for i in m.graph.input if i.name not in inits][0]
    shape = [d.dim_value if d.HasField("dim_value") else batch
             for d in gin.type.tensor_type.shape.dim]
    return gin.name, shape


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=200, help="timed runs per variant per round")
    ap.add_argument("--core", type=int, default=int(os.environ.get("CORE", 1)),
                    help="core every timed run is pinned to")
    ap.add_argument("--threads", type=int, default=1,
                    help="runner threads (--threads T); pin to as many cores with --cores")
    ap.add_argument("--cores", default=None,
                    help="taskset core list for the timed runs (default: --core)")
    ap.add_argument("--variants", default=",".join(FUSIONS),
                    help="fusions to switch off one at a time (the all-on build always runs)")
    ap.add_argument("--workdir", default=None,
                    help="keep crates, binaries and the shared target dir here (default: temp)")
    ap.add_argument("--ghostc", default=None, help="prebuilt ghostc (default: cargo build it)")
    ap.add_argument("--markdown", action="store_true", help="only print the table as markdown")
    a = ap.parse_args()

    model = os.path.abspath(a.model)
    work = os.path.abspath(a.workdir or tempfile.mkdtemp(prefix="ghostc-ablation-"))
    os.makedirs(work, exist_ok=True)
    variants = [BASE] + [v for v in a.variants.split(",") if v and v != BASE]
    for v in variants[1:]:
        if v not in FUSIONS:
            sys.exit(f"unknown fusion {v!r}: expected one of {', '.join(FUSIONS)}")

    ghostc = a.ghostc
    if not ghostc:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ghostc-cli", "--manifest-path",
                        os.path.join(ROOT, "Cargo.toml")], check=True)
        tdir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        ghostc = os.path.join(tdir, "release", "ghostc")

    # ---- input and ONNX Runtime reference ----
    name, shape = model_input(model, 1)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    xin = os.path.join(work, "x.npy")
    np.save(xin, x)
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(
        None, {name: x})[0].astype(np.float32)
    tol = 1e-4 * float(np.max(np.abs(ref))) + 1e-5
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"model: {model}\ninput: {name} {shape}   cores: {os.cpu_count()}   load: {load}   "
          f"work: {work}", file=sys.stderr)

    # ---- build every variant (sequentially: cargo uses both cores) ----
    info = {}
    for v in variants:
        crate = "abl_" + ("all_on" if v == BASE else v)
        cmd = [ghostc, "bench", model, "--runs", "0", "--name", crate,
               "--keep", os.path.join(work, crate), "--target-dir", os.path.join(work, "target")]
        if v != BASE:
            cmd += ["--no-fuse", v]
        t0 = time.time()
        out = run(cmd)
        line = [l for l in out.splitlines() if l.startswith("bench: ")][-1]
        f = fields(line[len("bench: "):])
        y_path = os.path.join(work, f"y_{crate}.npy")
        run([f["binary"], xin, y_path])
        y = np.load(y_path).astype(np.float32)
        err = float(np.max(np.abs(y.reshape(-1) - ref.reshape(-1)))) \
            if y.size == ref.size else float("inf")
        info[v] = dict(binary=f["binary"], steps=int(f["steps"]),
                       scratch=int(f["scratch_bytes"]), err=err, ok=err <= tol)
        print(f"built {v:9s} in {time.time() - t0:5.1f} s: {f['steps']:>4} steps, scratch "
              f"{int(f['scratch_bytes']):>9} B, max|y-ref| {err:.3e} (tol {tol:.3e}) "
              f"{'OK' if err <= tol else 'MISMATCH'}", file=sys.stderr)

    # ---- timing: alternate variants, rotate the order each round ----
    times = {v: [] for v in variants}  # (median_us, p10_us) per round
    ratios = {v: [] for v in variants}
    ratios10 = {v: [] for v in variants}
    cores = a.cores or str(a.core)
    print(f"timing: {a.rounds} rounds x {a.runs} runs, {a.threads} thread(s), taskset -c {cores}",
          file=sys.stderr)
    for r in range(a.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        got = {}
        for v in order:
            out = run(["taskset", "-c", cores, info[v]["binary"], "--threads", str(a.threads),
                       "--bench", str(a.runs)])
            f = fields(out.strip().split("|", 1)[-1])
            got[v] = (float(f["median_us"]), float(f["p10_us"]))
            times[v].append(got[v])
        for v in variants:
            ratios[v].append(got[v][0] / got[BASE][0])
            ratios10[v].append(got[v][1] / got[BASE][1])
        print(f"round {r + 1}: " + "  ".join(f"{v} {got[v][0] / 1e3:.3f}" for v in variants)
              + " ms", file=sys.stderr, flush=True)

    # ---- table ----
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    hdr = ["variant", "median ms", "p10 ms", "ratio vs all-on", "p10 ratio", "kernel steps",
           "scratch bytes", "output vs ORT"]
    rows = []
    for v in variants:
        med = statistics.median(m for m, _ in times[v]) / 1e3
        p10 = statistics.median(p for _, p in times[v]) / 1e3
        i = info[v]
        label = "all fusions on" if v == BASE else f"--no-fuse {v}"
        rows.append([label, f"{med:.3f}", f"{p10:.3f}", f"{statistics.median(ratios[v]):.3f}",
                     f"{statistics.median(ratios10[v]):.3f}", str(i["steps"]), str(i["scratch"]),
                     f"{'OK' if i['ok'] else 'MISMATCH'} ({i['err']:.1e})"])
    if not a.markdown:
        shown = os.path.relpath(model, ROOT) if model.startswith(ROOT + os.sep) else model
        print(f"\nmodel {shown}, {a.rounds} rounds x {a.runs} runs, "
              f"{a.threads} thread(s), taskset -c {cores}, {time.strftime('%Y-%m-%d %H:%M')}, load average at end: "
              f"{load}; output tolerance {tol:.2e} (1e-4*max|ref| + 1e-5)\n")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if not all(info[v]["ok"] for v in variants):
        sys.exit(1)


if __name__ == "__main__":
    main()
