#!/usr/bin/env python3
"""ONNX Runtime goldens for pooling with ceil_mode=1 (ghostc-cli/tests/data/pool_ceil/).

A two-output model over x [1, 12, 8, 8] (12 channels: the second channel block is half padding):
    mx = MaxPool(x, kernel 3x3, stride 2, ceil_mode 1)                            -> [1, 12, 4, 4]
    av = AveragePool(x, kernel 3x3, stride 2, pads 1, ceil_mode 1,
                     count_include_pad 0)                                        -> [1, 12, 5, 5]
(floor mode would give 3x3 and 4x4: the last window of each row hangs over the edge).
Writes model.onnx, input.npy, expected.npy (mx) and expected_1.npy (av), from ORT with all graph
optimizations off and on (they must agree), 1 thread.

Usage: /work/pyenv/bin/python tools/make_pool_ceil.py
"""
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

OUT = Path(__file__).resolve().parent.parent / "ghostc-cli" / "tests" / "data" / "pool_ceil"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 8, 8])
    mx = helper.make_tensor_value_info("mx", TensorProto.FLOAT, [1, 12, 4, 4])
    av = helper.make_tensor_value_info("av", TensorProto.FLOAT, [1, 12, 5, 5])
    nodes = [
        helper.make_node("MaxPool", ["x"], ["mx"], name="max_ceil", kernel_shape=[3, 3],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("AveragePool", ["x"], ["av"], name="avg_ceil", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=0),
    ]
    graph = helper.make_graph(nodes, "pool_ceil", [x], [mx, av])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="tools/make_pool_ceil.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = OUT / "model.onnx"
    onnx.save(model, str(path))
    xs = np.random.default_rng(17).standard_normal((1, 12, 8, 8)).astype(np.float32)
    outs = []
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.graph_optimization_level = level
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, {"x": xs}))
    for a, b in zip(*outs):
        assert np.array_equal(a, b), "ORT optimized and unoptimized disagree"
    np.save(OUT / "input.npy", xs)
    for i, y in enumerate(outs[1]):
        np.save(OUT / ("expected.npy" if i == 0 else f"expected_{i}.npy"), y.astype(np.float32))
        print(f"output {i}: {list(y.shape)}")


if __name__ == "__main__":
    main()
