#!/usr/bin/env python3
"""Writes GhostNet-1.0 / -0.5 (timm's `ghostnet_100` architecture: full cfgs, 1000 classes) as
ONNX with random weights and BatchNorm statistics, for the browser speed comparison: no torch
needed, only `onnx` and `numpy`.

usage: make_ghostnet.py OUT.onnx [--width 0.5] [--size 224]

The graph is what timm's TorchScript export of GhostNet v1 contains: stem conv+BN+ReLU, Ghost
bottlenecks (primary 1x1 conv + BN (+ReLU), cheap depthwise 3x3 + BN (+ReLU), Concat, Slice;
depthwise stride-2 conv + BN; squeeze-and-excitation with GlobalAveragePool, two 1x1 convs,
ReLU, HardSigmoid(1/6, 0.5), Mul; conv shortcut or identity; Add), the 1x1 conv to 960*width,
GlobalAveragePool, conv_head 1x1 to 1280 + ReLU, Flatten, Gemm to 1000 classes. Input `input`
[1, 3, size, size], output `logits` [1, 1000]. Random weights are He-scaled so activations stay
in a sane range through the 16 blocks.
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CFGS = [  # kernel, expansion, out channels, SE ratio, stride (timm ghostnet.py)
    [[3, 16, 16, 0, 1]],
    [[3, 48, 24, 0, 2]],
    [[3, 72, 24, 0, 1]],
    [[5, 72, 40, 0.25, 2]],
    [[5, 120, 40, 0.25, 1]],
    [[3, 240, 80, 0, 2]],
    [[3, 200, 80, 0, 1], [3, 184, 80, 0, 1], [3, 184, 80, 0, 1], [3, 480, 112, 0.25, 1],
     [3, 672, 112, 0.25, 1]],
    [[5, 672, 160, 0.25, 2]],
    [[5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1], [5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1]],
]


def divisible(v, d=4):
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


class Graph:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, what):
        self.n += 1
        return f"{what}_{self.n}"

    def const(self, what, array):
        n = self.name(what)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, groups=1, bias=False):
        fan_in = cin // groups * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // groups, k, k)).astype(np.float32)
        inputs = [x, self.const("w", w)]
        if bias:
            inputs.append(self.const("b", self.rng.normal(0, 0.1, cout).astype(np.float32)))
        return self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[k // 2] * 4, group=groups)

    def bn(self, x, c):
        r = self.rng
        params = [r.uniform(0.5, 1.0, c), r.normal(0, 0.1, c), r.normal(0, 0.1, c), r.uniform(0.5, 1.5, c)]
        return self.node("BatchNormalization", [x] + [self.const("bn", p.astype(np.float32)) for p in params],
                         epsilon=1e-5)

    def conv_bn(self, x, cin, cout, k, stride=1, groups=1, relu=False):
        y = self.bn(self.conv(x, cin, cout, k, stride, groups), cout)
        return self.node("Relu", [y]) if relu else y

    def ghost(self, x, cin, cout, relu):
        init = -(-cout // 2)
        x1 = self.conv_bn(x, cin, init, 1, relu=relu)
        x2 = self.conv_bn(x1, init, init, 3, groups=init, relu=relu)
        cat = self.node("Concat", [x1, x2], axis=1)
        i64 = lambda v: self.const("i", np.array(v, dtype=np.int64))
        return self.node("Slice", [cat, i64([0]), i64([cout]), i64([1])])

    def se(self, x, c, ratio):
        rd = divisible(c * ratio, 4)
        s = self.node("GlobalAveragePool", [x])
        s = self.node("Relu", [self.conv(s, c, rd, 1, bias=True)])
        s = self.conv(s, rd, c, 1, bias=True)
        s = self.node("HardSigmoid", [s], alpha=1.0 / 6.0, beta=0.5)
        return self.node("Mul", [x, s])

    def bottleneck(self, x, cin, mid, cout, k, stride, se):
        y = self.ghost(x, cin, mid, relu=True)
        if stride > 1:
            y = self.conv_bn(y, mid, mid, k, stride, groups=mid)
        if se:
            y = self.se(y, mid, se)
        y = self.ghost(y, mid, cout, relu=False)
        if cin == cout and stride == 1:
            short = x
        else:
            short = self.conv_bn(x, cin, cin, k, stride, groups=cin)
            short = self.conv_bn(short, cin, cout, 1)
        return self.node("Add", [y, short])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    g = Graph(a.seed)
    c = divisible(16 * a.width, 4)
    x = g.conv_bn("input", 3, c, 3, 2, relu=True)
    for stage in CFGS:
        for k, exp, out, se, s in stage:
            mid, out = divisible(exp * a.width, 4), divisible(out * a.width, 4)
            x = g.bottleneck(x, c, mid, out, k, s, se)
            c = out
    head_in = divisible(960 * a.width, 4)
    x = g.conv_bn(x, c, head_in, 1, relu=True)
    x = g.node("GlobalAveragePool", [x])
    x = g.node("Relu", [g.conv(x, head_in, 1280, 1, bias=True)])
    x = g.node("Flatten", [x], axis=1)
    w = g.rng.normal(0, np.sqrt(1.0 / 1280), (1000, 1280)).astype(np.float32)
    b = np.zeros(1000, np.float32)
    g.nodes.append(helper.make_node("Gemm", [x, g.const("fc_w", w), g.const("fc_b", b)], ["logits"],
                                    name="classifier", transB=1))
    graph = helper.make_graph(
        g.nodes, f"ghostnet_w{a.width}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, a.size, a.size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_ghostnet.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, a.out)
    params = sum(int(np.prod(t.dims)) for t in g.inits)
    print(f"wrote {a.out}: {len(g.nodes)} nodes, {params / 1e6:.2f} M parameters")


if __name__ == "__main__":
    main()
