#!/usr/bin/env python3
"""Time `ghostc quantize` against ONNX Runtime's quantize_static on the same f32 model.

    taskset -c 1 /work/pyenv/bin/python bench/quantize_time.py MODEL.onnx --ghostc target/release/ghostc \
        [--n 64] [--rounds 3] [--out-dir /tmp/qt]

Both calibrate on N standard-normal inputs with min-max ranges, per-channel s8 weights and u8
activations, QDQ format, and write a model; each round runs both (order alternating), one
process each, wall time including model load and write. Prints median and p10 per tool and
the ratio of medians. The written files (ghostc.onnx, ort.onnx) are kept in --out-dir for
accuracy checks (tools/make_quantize_fixture.py --measure).
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ORT_SNIPPET = r"""
import sys, numpy as np
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static, CalibrationMethod)
import onnx
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
inp = onnx.load(src, load_external_data=False).graph.input[0]
shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
rng = np.random.default_rng(1)
class R(CalibrationDataReader):
    def __init__(self):
        self.k = 0
    def get_next(self):
        if self.k == n:
            return None
        self.k += 1
        return {inp.name: rng.standard_normal(shape).astype(np.float32)}
quantize_static(src, dst, R(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax)
"""


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ghostc", default="target/release/ghostc")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/quantize_time"))
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tools = {
        "ghostc": [args.ghostc, "quantize", args.model, "--random", str(args.n), "--out",
                   str(args.out_dir / "ghostc.onnx"), "--no-report"],
        "ort": [sys.executable, "-c", ORT_SNIPPET, args.model, str(args.out_dir / "ort.onnx"),
                str(args.n)],
    }
    times = {k: [] for k in tools}
    for r in range(args.rounds):
        order = list(tools) if r % 2 == 0 else list(reversed(tools))
        for k in order:
            times[k].append(timed(tools[k]))
    for k, ts in times.items():
        ts.sort()
        p10 = ts[max(0, int(0.1 * (len(ts) - 1)))]
        print(f"{k:7s} median {statistics.median(ts):7.2f} s  p10 {p10:7.2f} s  runs {len(ts)}  "
              f"all {' '.join(f'{t:.2f}' for t in ts)}")
    print(f"ghostc/ort median ratio {statistics.median(times['ghostc']) / statistics.median(times['ort']):.3f}")


if __name__ == "__main__":
    main()
