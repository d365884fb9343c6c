#!/usr/bin/env python3
"""Fixture for `ghostc quantize` (fixtures/quantize/), and ORT accuracy of a ghostc QDQ model.

    /work/pyenv/bin/python tools/make_quantize_fixture.py [--ghostc target/release/ghostc]
    /work/pyenv/bin/python tools/make_quantize_fixture.py --measure F32.onnx QDQ.onnx [--n 500]

Fixture mode: quantizes a committed f32 GhostNet fixture (ts13_v1_w100_48x48_b2_nofold: BN
not folded by the exporter, static batch 2) with `ghostc quantize --random 16`, then runs the
written QDQ file in ONNX Runtime (1 thread; all optimizations, which fuse DQ-Conv-Q into
QLinearConv, and none) on 8 random images, and writes:

    fixtures/quantize/ghostc_qdq_v1_w100_48x48_b2/
        model.onnx          the QDQ model ghostc wrote (f32 source: ../../<f32 fixture>)
        input.npy           [8, 3, 48, 48] float32
        expected.npy        ORT (ORT_ENABLE_ALL) on model.onnx, [8, 10]
        expected_noopt.npy  ORT (ORT_DISABLE_ALL) on model.onnx
        f32.npy             ORT on the f32 model, same inputs
        meta.json           command, output scale/zero point (of the last DequantizeLinear), versions

The Rust test (ghostc/tests/quantize_ort.rs) runs ghostc's interpreter on model.onnx and
checks it against expected.npy within 1 quantization step of the output, without Python.

Measure mode: top-1 agreement and logit error (relative to each row's f32 logit range) of
the QDQ model against the f32 model in ORT on N standard-normal inputs (numpy seed 12345,
not the inputs ghostc calibrated on).
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
SRC = "fixtures/ts13_v1_w100_48x48_b2_nofold"
NAME = "ghostc_qdq_v1_w100_48x48_b2"


def session(path, optimized):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_batched(sess, x):
    inp = sess.get_inputs()[0]
    b = inp.shape[0] if isinstance(inp.shape[0], int) else 1
    outs = [sess.run(None, {inp.name: x[i:i + b]})[0] for i in range(0, len(x), b)]
    return np.concatenate(outs).astype(np.float32)


def output_qparams(model_path):
    m = onnx.load(str(model_path))
    out = m.graph.output[0].name
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and n.output[0] == out:
            return float(inits[n.input[1]]), int(inits[n.input[2]])
    raise SystemExit(f"{model_path}: output {out} is not produced by a DequantizeLinear")


def measure(f32_path, qdq_path, n, seed):
    fs, qs = session(f32_path, True), session(qdq_path, True)
    shape = [d if isinstance(d, int) else 1 for d in fs.get_inputs()[0].shape]
    b = shape[0]
    rng = np.random.default_rng(seed)
    agree = rows = 0
    mean_rel = []
    max_rel = 0.0
    for _ in range(0, n, b):
        x = rng.standard_normal(shape).astype(np.float32)
        yf, yq = run_batched(fs, x), run_batched(qs, x)
        for rf, rq in zip(yf.reshape(len(yf), -1), yq.reshape(len(yq), -1)):
            r = float(rf.max() - rf.min()) or 1.0
            d = np.abs(rf - rq) / r
            mean_rel.append(float(d.mean()))
            max_rel = max(max_rel, float(d.max()))
            agree += int(rf.argmax() == rq.argmax())
            rows += 1
    print(json.dumps({"inputs": rows, "top1_agreement_percent": 100.0 * agree / rows,
                      "mean_logit_err_rel_range": float(np.mean(mean_rel)),
                      "max_logit_err_rel_range": max_rel, "ort": ort.__version__}, indent=2))


def make_fixture(ghostc):
    src = ROOT / SRC / "model.onnx"
    out = ROOT / "fixtures/quantize" / NAME
    out.mkdir(parents=True, exist_ok=True)
    model = out / "model.onnx"
    cmd = [str(ghostc), "quantize", str(src), "--random", "16", "--seed", "1",
           "--out", str(model), "--no-report"]
    subprocess.run(cmd, check=True)
    x = np.random.default_rng(4848).standard_normal((8, 3, 48, 48)).astype(np.float32)
    y = run_batched(session(model, True), x)
    y_noopt = run_batched(session(model, False), x)
    y_f32 = run_batched(session(src, True), x)
    np.save(out / "input.npy", x)
    np.save(out / "expected.npy", y)
    np.save(out / "expected_noopt.npy", y_noopt)
    np.save(out / "f32.npy", y_f32)
    scale, zp = output_qparams(model)
    steps = np.abs(y - y_noopt) / scale
    meta = {
        "source": SRC,
        "command": "ghostc quantize <source>/model.onnx --random 16 --seed 1 --out model.onnx",
        "input_shape": list(x.shape),
        "output_scale": scale,
        "output_zero_point": zp,
        "ort_opt_vs_noopt_max_steps": float(steps.max()),
        "top1_agreement_with_f32": float((y.argmax(1) == y_f32.argmax(1)).mean()),
        "versions": {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
                     "numpy": np.__version__},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ghostc", type=Path, default=ROOT / "target/release/ghostc")
    ap.add_argument("--measure", nargs=2, metavar=("F32", "QDQ"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=12345)
    args = ap.parse_args()
    if args.measure:
        measure(args.measure[0], args.measure[1], args.n, args.seed)
    else:
        make_fixture(args.ghostc)


if __name__ == "__main__":
    sys.exit(main())
