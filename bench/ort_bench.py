"""Times ONNX Runtime on a model, single- or multi-threaded, the way bench/compare.sh does.

Usage: python bench/ort_bench.py MODEL.onnx [--threads N] [--runs N] [--batch N]
Prints one line: engine, threads, median and p10 latency (ms).
"""
import argparse
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--no-nchwc", action="store_true", help="disable layout optimizations")
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if a.no_nchwc
                                   else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [a.batch if not isinstance(d, int) else d for d in inp.shape]
    shape[0] = a.batch
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    for _ in range(10):
        sess.run(None, {inp.name: x})
    times = []
    for _ in range(a.runs):
        t = time.perf_counter()
        sess.run(None, {inp.name: x})
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(f"onnxruntime {ort.__version__} threads {a.threads} batch {a.batch}: "
          f"median {times[len(times) // 2]:.3f} ms  p10 {times[len(times) // 10]:.3f} ms")


if __name__ == "__main__":
    main()
