#!/usr/bin/env python3
"""Generate ONNX fixtures + golden outputs for ghostc.

Usage (from the repo root):
    /work/pyenv/bin/python tools/make_fixtures.py            # committed fixtures in fixtures/
    /work/pyenv/bin/python tools/make_fixtures.py --full     # additionally fixtures/full/ (gitignored)
    /work/pyenv/bin/python tools/make_fixtures.py --only NAME [--only NAME2] [--out DIR]
    /work/pyenv/bin/python tools/make_fixtures.py --index    # manifest.json + OPS.md only
    /work/pyenv/bin/python tools/make_fixtures.py --quant    # quantized fixtures, fixtures/quant/

Every fixture is a GhostNet-family CNN (one RegNetY: grouped convs) with random (seeded) weights, randomized BatchNorm
affine parameters (gamma, beta) and *calibrated* BatchNorm running statistics (train-mode
forward passes over random batches with cumulative averaging, momentum=None), so the running
mean/var are non-trivial and BN folding in the compiler is really exercised, while the
activations stay O(1).

Per fixture, fixtures/<name>/ holds:
    model.onnx (+ model.onnx.data for dynamo exports, weights as external data)
    input.npy     float32, C order, concrete shape
    expected.npy  ONNX Runtime output (default graph optimizations, 1 thread); for a model with
                  several outputs the first, then expected_1.npy, expected_2.npy, ...
    torch.npy     PyTorch eval-mode output (torch_1.npy, ... likewise)
    meta.json     description + measured ORT-vs-torch differences
plus fixtures/manifest.json and fixtures/OPS.md (op types per fixture).

Pinned versions: see tools/requirements.txt.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import onnx
import onnxruntime as ort
import timm
from timm.layers import Linear
from timm.models.ghostnet import GhostBottleneck, GhostModule, GhostModuleV2, GhostModuleV3, GhostNet
from timm.models._efficientnet_blocks import SqueezeExcite

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

torch.set_num_threads(1)  # bit-for-bit reproducibility of the torch reference


# ----------------------------------------------------------------------------------------------
# Reduced timm GhostNet configuration.
#
# Same block kinds as timm's full GhostNet (k, exp, c, se_ratio, stride): identity shortcut,
# strided conv shortcut, stride-1 conv shortcut (channel change), SE blocks, 3x3 and 5x5
# depthwise, four stride-2 stages (total stride 32) -- just fewer / narrower blocks.
# ----------------------------------------------------------------------------------------------
SMALL_CFGS = [
    [[3, 16, 16, 0, 1]],
    [[3, 48, 24, 0, 2]],
    [[3, 72, 24, 0, 1]],
    [[5, 72, 40, 0.25, 2]],
    [[3, 96, 48, 0.25, 1]],
    [[3, 128, 64, 0, 2]],
    [[5, 160, 64, 0.25, 1]],
    [[5, 144, 80, 0.25, 2],
     [5, 160, 80, 0, 1]],
]
SMALL_HEAD = 128  # timm hard-codes 1280; we replace conv_head/classifier to keep files small


def timm_small_features(width: float, out_indices=(2, 3)) -> nn.Module:
    """A timm `features_only` GhostNet backbone (FeatureListNet) over SMALL_CFGS: one output per
    `out_indices` entry (at 64x64 and width 0.5: 20 channels @ 8x8 and 32 channels @ 4x4)."""
    from timm.models._builder import build_model_with_cfg
    return build_model_with_cfg(GhostNet, "ghostnet_100", False,
                                feature_cfg=dict(flatten_sequential=True), cfgs=SMALL_CFGS,
                                width=width, features_only=True, out_indices=out_indices)


def timm_small_ghostnet(version: str, width: float, num_classes: int = 10,
                        head_hidden: int | None = SMALL_HEAD) -> nn.Module:
    m = GhostNet(SMALL_CFGS, num_classes=num_classes, width=width, version=version)
    if head_hidden is not None:
        m.conv_head = nn.Conv2d(m.num_features, head_hidden, 1, 1, 0, bias=True)
        m.head_hidden_size = head_hidden
        m.classifier = Linear(head_hidden, num_classes)
    return m


# ----------------------------------------------------------------------------------------------
# "Original Huawei code style" GhostNet, written for this project.
# Characteristics that matter for the exporter output:
#   * SE block with nn.Linear layers on a flattened (view) tensor, hard sigmoid written as
#     clamp(x + 3, 0, 6) / 6 (and relu6(x+3)/6 in the head gate),
#   * GhostModule returning torch.cat([x1, x2], dim=1)[:, :self.oup, :, :] (Concat -> Slice),
#     with odd channel counts so that the Slice really drops a channel,
#   * head: avg-pool -> x.view(x.size(0), -1) -> Linear -> BatchNorm1d -> ReLU -> Dropout -> Linear.
# ----------------------------------------------------------------------------------------------
def hsig_clamp(x):
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


class HwSqueezeExcite(nn.Module):
    def __init__(self, chs, reduction=4):
        super().__init__()
        hidden = max(8, chs // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(chs, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, chs),
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.pool(x).view(b, c)
        y = hsig_clamp(self.fc(y)).view(b, c, 1, 1)
        return x * y


class HwGhostModule(nn.Module):
    def __init__(self, inp, oup, kernel_size=1, ratio=2, dw_size=3, stride=1, relu=True):
        super().__init__()
        self.oup = oup
        init_channels = math.ceil(oup / ratio)
        new_channels = init_channels * (ratio - 1)
        act = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.primary_conv = nn.Sequential(
            nn.Conv2d(inp, init_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(init_channels),
            act,
        )
        act2 = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init_channels, new_channels, dw_size, 1, dw_size // 2,
                      groups=init_channels, bias=False),
            nn.BatchNorm2d(new_channels),
            act2,
        )

    def forward(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)
        return out[:, :self.oup, :, :]


class HwBottleneck(nn.Module):
    def __init__(self, inp, hidden, oup, k, stride, use_se):
        super().__init__()
        self.stride = stride
        self.ghost1 = HwGhostModule(inp, hidden, relu=True)
        if stride > 1:
            self.dw = nn.Sequential(
                nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden),
            )
        else:
            self.dw = None
        self.se = HwSqueezeExcite(hidden) if use_se else None
        self.ghost2 = HwGhostModule(hidden, oup, relu=False)
        if stride == 1 and inp == oup:
            self.shortcut = None
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inp, inp, k, stride, k // 2, groups=inp, bias=False),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            )

    def forward(self, x):
        residual = x if self.shortcut is None else self.shortcut(x)
        x = self.ghost1(x)
        if self.dw is not None:
            x = self.dw(x)
        if self.se is not None:
            x = self.se(x)
        x = self.ghost2(x)
        return x + residual


class HwGhostNet(nn.Module):
    # (k, hidden, out, se, stride); odd channel counts on purpose (Slice after Concat cuts 1 ch)
    CFG = [
        (3, 16, 16, False, 1),
        (3, 45, 23, False, 2),
        (3, 69, 23, False, 1),
        (5, 71, 41, True, 2),
        (3, 121, 47, True, 1),
        (3, 127, 63, False, 2),
        (5, 189, 95, True, 2),
    ]

    def __init__(self, num_classes=10, dropout=0.2, head_hidden=128):
        super().__init__()
        self.dropout = dropout
        self.conv_stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = nn.ReLU(inplace=True)
        layers = []
        inp = 16
        for k, hid, out, se, s in self.CFG:
            layers.append(HwBottleneck(inp, hid, out, k, s, se))
            inp = out
        self.blocks = nn.Sequential(*layers)
        self.conv_last = nn.Sequential(
            nn.Conv2d(inp, 189, 1, 1, 0, bias=False),
            nn.BatchNorm2d(189),
            nn.ReLU(inplace=True),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(189, head_hidden)
        self.bn_head = nn.BatchNorm1d(head_hidden)
        self.act2 = nn.ReLU(inplace=True)
        self.classifier = nn.Linear(head_hidden, num_classes)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        x = self.conv_last(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        x = self.act2(self.bn_head(self.fc1(x)))
        if self.dropout > 0.0:
            x = F.dropout(x, p=self.dropout, training=self.training)
        return self.classifier(x)


# ----------------------------------------------------------------------------------------------
# Randomization / calibration
# ----------------------------------------------------------------------------------------------
def randomize_and_calibrate(model: nn.Module, in_shape, seed: int, n_batches: int = 6,
                            calib_batch: int = 16) -> nn.Module:
    """Random BN gamma/beta + BN running stats from train-mode passes (cumulative average)."""
    g = torch.Generator().manual_seed(seed + 1000)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        with torch.no_grad():
            bn.weight.copy_(torch.empty_like(bn.weight).uniform_(0.5, 1.5, generator=g))
            bn.bias.copy_(torch.randn(bn.bias.shape, generator=g) * 0.2)
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average
    model.train()
    for m in model.modules():  # dropout is irrelevant for statistics; keep it off
        if isinstance(m, nn.Dropout):
            m.eval()
    drop = getattr(model, "drop_rate", None)
    if drop is not None:
        model.drop_rate = 0.0
    hw_drop = getattr(model, "dropout", None)
    if isinstance(hw_drop, float):
        model.dropout = 0.0
    with torch.no_grad():
        for _ in range(n_batches):
            x = torch.randn((calib_batch,) + tuple(in_shape[1:]), generator=g)
            model(x)
    for bn in bns:
        bn.momentum = 0.1
    if drop is not None:
        model.drop_rate = drop
    if isinstance(hw_drop, float):
        model.dropout = hw_drop
    model.eval()
    head = getattr(model, "classifier", None)
    if head is None:
        head = getattr(model, "fc", None)  # torchvision's name
    if head is None:  # a features_only backbone: no logits to rescale
        return model
    if isinstance(head, nn.Sequential):  # torchvision's EfficientNet: Dropout, Linear
        head = head[-1]
    # Rescale the final Linear so the logits have std ~1 on random inputs (O(1) outputs).
    with torch.no_grad():
        x = torch.randn((calib_batch,) + tuple(in_shape[1:]), generator=g)
        std = float(model(x).std())
        head.weight.mul_(1.0 / std)
        head.bias.mul_(1.0 / std)
    return model


# ----------------------------------------------------------------------------------------------
# Exporters
# ----------------------------------------------------------------------------------------------
def export_torchscript(model, x, path: Path, opset: int, dynamic_batch: bool,
                       output_names=(OUTPUT_NAME,), **extra):
    kwargs = dict(extra)
    if dynamic_batch:
        kwargs["dynamic_axes"] = {n: {0: "batch"} for n in (INPUT_NAME, *output_names)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=list(output_names), **kwargs)
    if kwargs.get("export_modules_as_functions"):
        canonicalize_functions(path)


def canonicalize_functions(path: Path):
    """Make TorchScript exports with model-local functions byte-for-byte reproducible.

    With export_modules_as_functions the exporter picks the function body from whichever module
    instance it meets first in an internal (pointer-keyed) map, so the body's internal value names
    and the numbering of variants (GhostModule vs GhostModule.1) change from run to run. The
    semantics do not. We rename function-internal values/nodes canonically, order the variants of
    each base name by their canonical body, rename call sites (and the call-site output values
    that embed the function name) accordingly, and sort the function list.
    """
    mp = onnx.load(str(path))
    for fn in mp.functions:
        ren = {}
        for i, n in enumerate(fn.input):
            ren[n] = f"x{i}"
        for i, n in enumerate(fn.output):
            ren[n] = f"y{i}"
        k = 0
        for node in fn.node:
            for o in node.output:
                if o and o not in ren:
                    ren[o] = f"t{k}"
                    k += 1
        for i, node in enumerate(fn.node):
            node.name = f"n{i}_{node.op_type}"
            for j, v in enumerate(node.input):
                if v:
                    node.input[j] = ren.get(v, v)
            for j, v in enumerate(node.output):
                if v:
                    node.output[j] = ren[v]
        for j, v in enumerate(fn.input):
            fn.input[j] = ren[v]
        for j, v in enumerate(fn.output):
            fn.output[j] = ren[v]
    # attribute parameters: rename to a0, a1, ... in order of first reference in the body
    # (their exporter names embed callee variant names and their order varies from run to run)
    attr_maps = {}
    for fn in mp.functions:
        amap = {}
        for node in fn.node:
            for at in node.attribute:
                if at.ref_attr_name and at.ref_attr_name not in amap:
                    amap[at.ref_attr_name] = f"a{len(amap)}"
        for name in sorted(fn.attribute):
            if name not in amap:
                amap[name] = f"a{len(amap)}"
        attr_maps[(fn.domain, fn.name)] = amap
    for fn in mp.functions:
        amap = attr_maps[(fn.domain, fn.name)]
        for node in fn.node:
            for at in node.attribute:
                if at.ref_attr_name:
                    at.ref_attr_name = amap[at.ref_attr_name]
        new_attrs = sorted(amap[n] for n in fn.attribute)
        del fn.attribute[:]
        fn.attribute.extend(new_attrs)
        assert len(fn.attribute_proto) == 0
    for nodes in [mp.graph.node] + [fn.node for fn in mp.functions]:
        for node in nodes:
            amap = attr_maps.get((node.domain, node.op_type))
            if amap is None:
                continue
            ats = []
            for at in node.attribute:
                c = onnx.AttributeProto()
                c.CopyFrom(at)
                c.name = amap[at.name]
                ats.append(c)
            ats.sort(key=lambda x: x.name)
            del node.attribute[:]
            node.attribute.extend(ats)

    # variant numbering, callees before callers so a caller's body key sees final callee names
    local = {(f.domain, f.name): f for f in mp.functions}
    depth_cache = {}

    def depth(f):
        key = (f.domain, f.name)
        if key not in depth_cache:
            callees = [local[(n.domain, n.op_type)] for n in f.node
                       if (n.domain, n.op_type) in local]
            depth_cache[key] = 1 + max((depth(c) for c in callees), default=-1)
        return depth_cache[key]

    groups = {}
    for fn in mp.functions:
        base = fn.name.split(".")[0]
        groups.setdefault((fn.domain, base), []).append(fn)
    for fns in groups.values():
        for f in fns:
            depth(f)

    def body_key(f):
        g = onnx.FunctionProto()
        g.CopyFrom(f)
        g.name = ""
        return g.SerializeToString(deterministic=True)

    name_map = {}  # original (domain, name) -> final name
    for (domain, base), fns in sorted(groups.items(),
                                      key=lambda kv: max(depth_cache[(f.domain, f.name)]
                                                         for f in kv[1])):
        group_map = {}
        for i, f in enumerate(sorted(fns, key=body_key)):
            group_map[(domain, f.name)] = base if i == 0 else f"{base}.{i}"
        for fn in mp.functions:  # rename call sites inside bodies (each node once)
            for node in fn.node:
                if (node.domain, node.op_type) in group_map:
                    node.op_type = group_map[(node.domain, node.op_type)]
        for f in fns:
            f.name = group_map[(domain, f.name)]
        name_map.update(group_map)

    values = {}
    for node in mp.graph.node:
        key = (node.domain, node.op_type)
        if key in name_map and name_map[key] != node.op_type:
            old, new = node.op_type, name_map[key]
            node.op_type = new
            if node.name.endswith("/" + old):
                node.name = node.name[: -len(old)] + new
            for o in node.output:
                if f"/{old}_output_" in o:
                    values[o] = o.replace(f"/{old}_output_", f"/{new}_output_")
    for node in mp.graph.node:
        for j, v in enumerate(node.input):
            node.input[j] = values.get(v, v)
        for j, v in enumerate(node.output):
            node.output[j] = values.get(v, v)
    for o in mp.graph.output:
        o.name = values.get(o.name, o.name)
    for vi in mp.graph.value_info:
        vi.name = values.get(vi.name, vi.name)
    for fn in mp.functions:  # node names last: they embed (final) op types
        for i, node in enumerate(fn.node):
            node.name = f"n{i}_{node.op_type}"
    fns = sorted(mp.functions, key=lambda f: (f.domain, f.name))
    del mp.functions[:]
    mp.functions.extend(fns)
    onnx.save(mp, str(path))


def export_dynamo(model, x, path: Path, opset: int, dynamic_batch: bool, optimize: bool = True,
                  strip_node_metadata: bool = False):
    kwargs = {}
    if dynamic_batch:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset,
                                 input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                 optimize=optimize, **kwargs)
    # force weights into model.onnx.data (the Rust loader must handle external data)
    prog.save(str(path), external_data=True)
    if strip_node_metadata:
        # The dynamo exporter attaches metadata_props (stack traces, fx nodes) to every node;
        # drop them to keep the committed file small. Only model.onnx is rewritten; the
        # external data file and its offsets are untouched.
        mp = onnx.load(str(path), load_external_data=False)
        for n in mp.graph.node:
            del n.metadata_props[:]
        onnx.save(mp, str(path))


# ----------------------------------------------------------------------------------------------
# Fixture table
# ----------------------------------------------------------------------------------------------
# GhostNetV3 training form in the spelling of the original Huawei code, written for this
# project on top of timm's GhostModuleV3 parameters. What matters for the exporter output:
#   * sums start from Python integers: `x1 = scale_out + identity_out` with absent branches as 0,
#     so TorchScript emits Add(branch, 0) (or folds 0 + 0 away), then `x1 += conv_i(x)`;
#   * a BN-only identity branch on the primary conv when in == init channels (stride 1), and
#     a scale branch (1x1 depthwise) plus a BN identity on the cheap op;
#   * the DFC gate divides by a scale of 1.0 before the sigmoid and resizes to out.shape[-2:].
# ----------------------------------------------------------------------------------------------
def hw_v3_forward(self, x):
    identity_out = 0
    if getattr(self, "hw_primary_skip", None) is not None:
        identity_out = self.hw_primary_skip(x)
    scale_out = 0
    x1 = scale_out + identity_out
    for conv in self.primary_rpr_conv:
        x1 += conv(x)
    x1 = self.primary_activation(x1)
    x2 = self.cheap_rpr_scale(x1) + self.cheap_rpr_skip(x1)
    for conv in self.cheap_rpr_conv:
        x2 += conv(x1)
    x2 = self.cheap_activation(x2)
    out = torch.cat([x1, x2], dim=1)
    if self.mode not in ["shortcut"]:
        return out
    res = self.short_conv(F.avg_pool2d(x, kernel_size=2, stride=2))
    return out[:, :self.out_chs, :, :] * F.interpolate(self.gate_fn(res / 1.0),
                                                       size=out.shape[-2:], mode="nearest")


def hw_style_v3(width: float) -> nn.Module:
    m = timm_small_ghostnet("v3", width)
    for mod in m.modules():
        if isinstance(mod, GhostModuleV3):
            conv0 = mod.primary_rpr_conv[0].conv
            if conv0.in_channels == conv0.out_channels and conv0.stride == (1, 1):
                mod.hw_primary_skip = nn.BatchNorm2d(conv0.in_channels)
            mod.forward = hw_v3_forward.__get__(mod)
    return m


def tv_regnety_small() -> nn.Module:
    """torchvision RegNetY (SE, grouped 3x3 convs) at reduced depth and width: stages of 24, 48
    and 96 channels with group widths 8, 16 and 24 (1, 2 and 3 output blocks per group)."""
    from torchvision.models.regnet import BlockParams, RegNet
    bp = BlockParams(depths=[1, 2, 2], widths=[24, 48, 96], group_widths=[8, 16, 24],
                     bottleneck_multipliers=[1.0, 1.0, 1.0], strides=[2, 2, 2], se_ratio=0.25)
    return RegNet(bp, num_classes=10)


# ----------------------------------------------------------------------------------------------
# ultralytics' GhostNet YOLO (yolov8-ghost.yaml) built from its config with random weights.
# GhostConv there is a 1x1 or 3x3 (stride 1 or 2) primary conv + a 5x5 depthwise cheap op, both
# Conv+BN+SiLU; C3Ghost/GhostBottleneck add residuals. `raw` returns the three per-level head
# maps (cat of box-distribution and class logits) instead of the decoded [1, 4 + nc, anchors].
# ----------------------------------------------------------------------------------------------
def yolo_ghost(decode: bool, width: float = 0.25, max_channels: int = 1024, nc: int = 80):
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load
    cfg = yaml_model_load("yolov8n-ghost.yaml")
    cfg["scales"] = {"z": [0.33, width, max_channels]}
    cfg["scale"] = "z"
    m = DetectionModel(cfg, nc=nc, verbose=False)
    head = m.model[-1]
    if decode:
        head.export = True
        head.format = "onnx"
    else:
        head.forward = lambda xs: tuple(
            torch.cat((head.cv2[i](xs[i]), head.cv3[i](xs[i])), 1) for i in range(head.nl))

    class Yolo(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, x):
            y = self.m(x)
            return y[0] if decode and isinstance(y, (list, tuple)) else y
    return Yolo()


def _v1(width, head=SMALL_HEAD):
    return lambda: timm_small_ghostnet("v1", width, head_hidden=head)


SPECS = [
    dict(name="ts11_v1_w050_32x32_b1", build=_v1(0.5), arch="timm-ghostnet-v1-small",
         width=0.5, exporter="torchscript", opset=11, res=(32, 32), batch=1, dyn=False, seed=11,
         notes="timm GhostNet class with reduced cfgs (same block kinds as ghostnet_100); "
               "conv_head reduced to 128. TorchScript folds eval BN into Conv."),
    dict(name="ts13_v1_w100_48x48_b2_nofold", build=_v1(1.0), arch="timm-ghostnet-v1-small",
         width=1.0, exporter="torchscript", opset=13, res=(48, 48), batch=2, dyn=False, seed=13,
         export_options=dict(do_constant_folding=False),
         notes="do_constant_folding=False: BatchNormalization nodes are NOT folded into Conv by "
               "the exporter (the compiler must fold them), Slice params come via Unsqueeze/Constant."),
    dict(name="ts17_v1_w130_40x56_b1", build=_v1(1.3), arch="timm-ghostnet-v1-small",
         width=1.3, exporter="torchscript", opset=17, res=(40, 56), batch=1, dyn=False, seed=17,
         notes="non-square, non-multiple-of-32 input (40x56 -> 2x2 final map); "
               "conv_head reduced to 128."),
    dict(name="ts17_features_w050_64x64_b1", build=lambda: timm_small_features(0.5, (2, 3)),
         arch="timm-ghostnet-v1-small-features", width=0.5, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=1713, output_names=["feat_s8", "feat_s16"],
         notes="timm features_only GhostNet backbone (FeatureListNet, out_indices (2, 3)) over "
               "the reduced cfgs: two outputs, [1, 20, 8, 8] (20 channels: padded lanes) and "
               "[1, 32, 4, 4]; goldens expected.npy and expected_1.npy."),
    dict(name="ts17_v1_w050_64x64_dynbatch_b3", build=_v1(0.5), arch="timm-ghostnet-v1-small",
         width=0.5, exporter="torchscript", opset=17, res=(64, 64), batch=3, dyn=True, seed=170,
         notes="dynamic batch via dynamic_axes (input/output dim 0 = 'batch'), run with batch 3."),
    dict(name="ts17_v1_w050_32x32_functions_b1", build=_v1(0.5), arch="timm-ghostnet-v1-small",
         width=0.5, exporter="torchscript", opset=17, res=(32, 32), batch=1, dyn=False, seed=171,
         export_options=dict(export_modules_as_functions={GhostModule, SqueezeExcite}),
         notes="export_modules_as_functions={GhostModule, SqueezeExcite}: model-local ONNX "
               "functions (domains timm.models.*), weights passed as function inputs, two "
               "GhostModule variants, call-site attributes referenced inside the bodies via "
               "ref_attr_name (e.g. inferred::Conv_group). Function-internal names canonicalized "
               "after export for reproducibility."),
    dict(name="ts17_v1_w050_32x32_nestedfunctions_b1", build=_v1(0.5), arch="timm-ghostnet-v1-small",
         width=0.5, exporter="torchscript", opset=17, res=(32, 32), batch=1, dyn=False, seed=174,
         export_options=dict(export_modules_as_functions={GhostBottleneck, GhostModule,
                                                          SqueezeExcite}),
         notes="export_modules_as_functions={GhostBottleneck, GhostModule, SqueezeExcite}: "
               "NESTED model-local functions (GhostBottleneck.* bodies call GhostModule.* and "
               "SqueezeExcite), with ref_attr_name attributes. Function-internal names "
               "canonicalized after export for reproducibility."),
    dict(name="ts17_v2_w100_72x88_b1", build=lambda: timm_small_ghostnet("v2", 1.0),
         arch="timm-ghostnetv2-small", width=1.0, exporter="torchscript", opset=17,
         res=(72, 88), batch=1, dyn=False, seed=172,
         notes="GhostNetV2 (DFC attention: AvgPool 2x2 + (1,5)/(5,1) depthwise + sigmoid + "
               "nearest interpolate back to the feature size, e.g. 2x3 -> 5x6, a non-integer "
               "scale). Reduced cfgs, conv_head 128."),
    dict(name="ts17_v3deploy_w050_64x64_b1", build=lambda: timm_small_ghostnet("v3", 0.5),
         arch="timm-ghostnetv3-small", width=0.5, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=173, reparam=True,
         notes="GhostNetV3, BN stats calibrated on the multi-branch training form, then "
               "model.convert_to_deploy() (branches fused into single convs with bias) "
               "before export -- the form a user would deploy."),
    dict(name="ts17_v3train_w100_64x64_b1", build=lambda: timm_small_ghostnet("v3", 1.0),
         arch="timm-ghostnetv3-small", width=1.0, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=175,
         notes="GhostNetV3 training form (no convert_to_deploy), TorchScript: every branch sum "
               "starts with Add(branch, Constant 0) from timm's `x1 = 0; x1 += conv(x)`, plus "
               "scale (1x1 depthwise) and BN-only identity branches; DFC gates."),
    dict(name="ts13_v3train_hwstyle_w100_56x56_b1", build=lambda: hw_style_v3(1.0),
         arch="huawei-style-ghostnetv3-small", width=1.0, exporter="torchscript", opset=13,
         res=(56, 56), batch=1, dyn=False, seed=176,
         notes="GhostNetV3 training form in the original Huawei code's spelling (own forward on "
               "timm's modules): sums from `scale_out + identity_out` with integer zeros, a "
               "BN-only primary identity branch where in == init channels, DFC gate divided by "
               "a 1.0 scale before the sigmoid. 56x56: the last DFC maps a 1x1 gate onto 2x2."),
    dict(name="ts11_v3deploy_w100_48x48_b1", build=lambda: timm_small_ghostnet("v3", 1.0),
         arch="timm-ghostnetv3-small", width=1.0, exporter="torchscript", opset=11,
         res=(48, 48), batch=1, dyn=False, seed=177, reparam=True,
         notes="GhostNetV3 deploy form (convert_to_deploy after BN calibration), TorchScript "
               "opset 11."),
    dict(name="dynamo18_v3train_w100_64x64_b1", build=lambda: timm_small_ghostnet("v3", 1.0),
         arch="timm-ghostnetv3-small", width=1.0, exporter="dynamo", opset=18, res=(64, 64),
         batch=1, dyn=False, seed=184, export_options=dict(strip_node_metadata=True),
         notes="GhostNetV3 training form, dynamo exporter (its optimizer drops the Add(x, 0)); "
               "external data; node metadata stripped."),
    dict(name="dynamo18_v3deploy_w100_64x64_b1", build=lambda: timm_small_ghostnet("v3", 1.0),
         arch="timm-ghostnetv3-small", width=1.0, exporter="dynamo", opset=18, res=(64, 64),
         batch=1, dyn=False, seed=185, reparam=True,
         export_options=dict(strip_node_metadata=True),
         notes="GhostNetV3 deploy form, dynamo exporter; external data; node metadata stripped."),
    dict(name="dynamo18_v2_w100_72x88_b1", build=lambda: timm_small_ghostnet("v2", 1.0),
         arch="timm-ghostnetv2-small", width=1.0, exporter="dynamo", opset=18, res=(72, 88),
         batch=1, dyn=False, seed=186, export_options=dict(strip_node_metadata=True),
         notes="GhostNetV2, dynamo exporter: DFC gates with Resize sizes as constants, 2x3 -> "
               "5x6 and the other non-integer scales of 72x88; external data."),
    dict(name="ts17_v2_w100_48x48_functions_b1", build=lambda: timm_small_ghostnet("v2", 1.0),
         arch="timm-ghostnetv2-small", width=1.0, exporter="torchscript", opset=17,
         res=(48, 48), batch=1, dyn=False, seed=178,
         export_options=dict(export_modules_as_functions={GhostModuleV2}),
         notes="GhostNetV2 with GhostModuleV2 exported as model-local functions: the DFC branch "
               "lives inside the function bodies. Function-internal names canonicalized."),
    dict(name="ts11_huawei_48x48_b1", build=lambda: HwGhostNet(), arch="huawei-style-ghostnet",
         width=1.0, exporter="torchscript", opset=11, res=(48, 48), batch=1, dyn=False, seed=111,
         notes="own module in the original Huawei code style: Linear-SE with clamp(x+3,0,6)/6, "
               "cat()[:, :oup] with odd channel counts (Slice really cuts), view(x.size(0),-1), "
               "Linear -> BatchNorm1d -> ReLU -> Dropout -> Linear head."),
    dict(name="ts13_huawei_40x40_dynbatch_b3", build=lambda: HwGhostNet(),
         arch="huawei-style-ghostnet", width=1.0, exporter="torchscript", opset=13, res=(40, 40),
         batch=3, dyn=True, seed=131,
         notes="Huawei-style module, dynamic batch (dynamic_axes), run with batch 3: the "
               "view(b, c) reshapes become Shape->Gather->Unsqueeze->Concat->Reshape chains."),
    dict(name="dynamo18_v1_w100_64x64_b2", build=_v1(1.0), arch="timm-ghostnet-v1-small",
         width=1.0, exporter="dynamo", opset=18, res=(64, 64), batch=2, dyn=False, seed=18,
         notes="torch.export-based exporter (optimize=True: BN folded into Conv by onnxscript "
               "rewriter), weights forced to external data (model.onnx.data); tiny tensors stay "
               "inline; nodes carry bulky metadata_props (stack traces)."),
    dict(name="dynamo18_v1_w050_32x32_noopt_b1", build=_v1(0.5), arch="timm-ghostnet-v1-small",
         width=0.5, exporter="dynamo", opset=18, res=(32, 32), batch=1, dyn=False, seed=181,
         export_options=dict(optimize=False, strip_node_metadata=True),
         notes="torch.export-based exporter with optimize=False: raw graph with "
               "BatchNormalization, CastLike, Expand, Shape, Identity nodes; external data. "
               "Node metadata_props stripped after export (size)."),
    dict(name="dynamo20_v1_w050_48x48_dynbatch_b3", build=_v1(0.5), arch="timm-ghostnet-v1-small",
         width=0.5, exporter="dynamo", opset=20, res=(48, 48), batch=3, dyn=True, seed=20,
         notes="torch.export-based exporter at its default opset (20), dynamic batch via "
               "dynamic_shapes, run with batch 3; external data."),
    dict(name="dynamo18_v3train_w050_64x64_b1", build=lambda: timm_small_ghostnet("v3", 0.5),
         arch="timm-ghostnetv3-small", width=0.5, exporter="dynamo", opset=18, res=(64, 64),
         batch=1, dyn=False, seed=183, export_options=dict(strip_node_metadata=True),
         notes="GhostNetV3 exported WITHOUT reparameterization (eval mode, multi-branch "
               "conv+BN sums as trained) -- what a user gets when forgetting convert_to_deploy(); "
               "parallel branches + standalone BN (skip branch) remain. External data; node "
               "metadata_props stripped after export (size)."),
]

SPECS += [
    dict(name="ts17_regnety_w24_56x56_b1", build=tv_regnety_small, arch="torchvision-regnety-small",
         width=1.0, exporter="torchscript", opset=17, res=(56, 56), batch=1, dyn=False, seed=1761,
         notes="torchvision RegNetY (SqueezeExcitation, grouped 3x3 convs with group widths 8, 16 "
               "and 24), depths [1, 2, 2], widths [24, 48, 96]: the grouped-conv kernel's fixture "
               "(stride-2 grouped convs at 28 -> 14, 14 -> 7, 7 -> 4)."),
    dict(name="ts17_yolo8ghost_raw_w0125_64x64_b1",
         build=lambda: yolo_ghost(False, width=0.125, max_channels=256, nc=4),
         arch="ultralytics-yolov8-ghost", width=0.125, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=801, output_names=["p3", "p4", "p5"],
         notes="ultralytics yolov8-ghost.yaml (GhostConv: 3x3 s2 / 1x1 primary + 5x5 depthwise "
               "cheap op, C3Ghost residuals, SiLU) at width 0.125, 4 classes, random weights, "
               "calibrated BN; raw head: three per-level maps [1, 64 + 4, h, w], no decode."),
    dict(name="ts17_yolo8ghost_decode_w0125_64x64_b1",
         build=lambda: yolo_ghost(True, width=0.125, max_channels=256, nc=4),
         arch="ultralytics-yolov8-ghost", width=0.125, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=806,
         notes="the same detector exported with its decode head as ultralytics exports it: "
               "per-level maps flattened and concatenated along the anchors (Concat axis 2), "
               "DFL (Reshape, Transpose, Softmax over 16 bins, 1x1 conv, Reshape), box "
               "corners from a constant anchor grid (Slice, Sub, Add, Div, Concat), times a "
               "per-anchor stride constant; output [1, 4 + 4, 84]."),
]

def tf_efficientnet_lite_small():
    """timm's tf_efficientnet_lite0 recipe (pad_type='same': Conv2dSame pads with F.pad, so the
    export has a zero Pad before every strided conv, asymmetric on even sizes; ReLU6; TF BN eps)
    at channel multiplier 0.25 and depth multiplier 0.34, 10 classes."""
    from timm.models.efficientnet import _gen_efficientnet_lite
    return _gen_efficientnet_lite("tf_efficientnet_lite0", channel_multiplier=0.25,
                                  depth_multiplier=0.34, bn_eps=1e-3, pad_type="same",
                                  num_classes=10)


SPECS += [
    dict(name="ts17_tfefflite_w025_64x64_b1", build=tf_efficientnet_lite_small,
         arch="timm-tf_efficientnet_lite-small", width=0.25, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=802,
         notes="timm tf_efficientnet_lite0 recipe (TF 'SAME' padding = Pad before strided "
               "convs, ReLU6) at channel multiplier 0.25, depth 0.34, 10 classes."),
]

def tv_efficientnet_b0_small():
    """torchvision's efficientnet_b0 recipe (MBConv with SqueezeExcitation: SiLU between the two
    1x1 convs, Sigmoid gate; SiLU activations) at width multiplier 0.25 and depth multiplier
    0.34 (one or two blocks per stage), 10 classes."""
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
    setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=0.25,
                                               depth_mult=0.34)
    # No stochastic depth: it is the identity in eval mode, and off it keeps the BN
    # calibration passes deterministic.
    return EfficientNet(setting, dropout=0.2, stochastic_depth_prob=0.0, num_classes=10,
                        last_channel=last_channel)


SPECS += [
    dict(name="ts17_tveffb0_w025_64x64_b1", build=tv_efficientnet_b0_small,
         arch="torchvision-efficientnet_b0-small", width=0.25, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=803,
         notes="torchvision efficientnet_b0 recipe (SE with SiLU between its FCs, exported as "
               "Mul(x, Sigmoid(x)), and a Sigmoid gate) at width multiplier 0.25, depth 0.34, "
               "10 classes: the SiLU-inside SE fixture."),
]

def tv_shufflenet_v2_small() -> nn.Module:
    """torchvision ShuffleNetV2 (channel split by chunk, branch concat, channel shuffle as
    view -> transpose -> view) with stages of 2, 2 and 2 blocks and 24/48/96/192/256 channels
    (x0.5's stage widths), 10 classes."""
    from torchvision.models.shufflenetv2 import ShuffleNetV2
    return ShuffleNetV2([2, 2, 2], [24, 48, 96, 192, 256], num_classes=10)


SPECS += [
    dict(name="ts17_shufflenetv2_w050_64x64_b1", build=tv_shufflenet_v2_small,
         arch="torchvision-shufflenet_v2-small", width=0.5, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=804,
         notes="torchvision ShuffleNetV2 at x0.5's widths with 2 blocks per stage, 10 classes: "
               "the channel shuffle (Reshape to rank 5, Transpose, Reshape) after every block's "
               "Concat, and the Slices of the channel split reading the shuffled tensor."),
    dict(name="dynamo18_shufflenetv2_w050_48x48_b2", build=tv_shufflenet_v2_small,
         arch="torchvision-shufflenet_v2-small", width=0.5, exporter="dynamo", opset=18,
         res=(48, 48), batch=2, dyn=False, seed=805,
         export_options=dict(strip_node_metadata=True),
         notes="the same ShuffleNetV2 through the dynamo exporter (its Split and Reshape "
               "spellings), batch 2."),
]

def tv_convnext_small() -> nn.Module:
    """torchvision ConvNeXt (stem 4x4 s4 + LayerNorm2d; blocks of depthwise 7x7, then
    channels-last LayerNorm, Linear 4x, GELU, Linear, layer scale, residual; LayerNorm2d +
    2x2 s2 downsampling) with stages of 24/48/96 channels and 2 blocks each, 10 classes. The
    LayerNorm weights and biases and the layer scales (1e-6 at init, which would hide every
    block) are random."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    model = ConvNeXt([CNBlockConfig(24, 48, 2), CNBlockConfig(48, 96, 2),
                      CNBlockConfig(96, None, 2)], num_classes=10)
    g = torch.Generator().manual_seed(77)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(torch.empty_like(p).uniform_(0.3, 1.0, generator=g))
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.empty_like(m.weight).uniform_(0.5, 1.5, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model


SPECS += [
    dict(name="ts17_convnext_c24_64x64_b1", build=tv_convnext_small,
         arch="torchvision-convnext-small", width=0.25, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=807,
         notes="torchvision ConvNeXt at 24/48/96 channels, 2 blocks per stage, 10 classes: "
               "LayerNormalization between Transposes (channels-last), MatMul + Add Linears, "
               "GELU as Div/Erf/Add/Mul/Mul, layer-scale Mul, 4x4 s4 stem, 2x2 s2 downsampling."),
    dict(name="dynamo18_convnext_c24_48x48_b2", build=tv_convnext_small,
         arch="torchvision-convnext-small", width=0.25, exporter="dynamo", opset=18,
         res=(48, 48), batch=2, dyn=False, seed=808,
         export_options=dict(strip_node_metadata=True),
         notes="the same ConvNeXt through the dynamo exporter, batch 2."),
    dict(name="ts17_ghostfacenet_prelu_w050_64x64_b1", build=lambda: ghostfacenet_small(),
         arch="timm-ghostfacenet-style-small", width=0.5, exporter="torchscript", opset=17,
         res=(64, 64), batch=1, dyn=False, seed=1790,
         notes="GhostFaceNets-style: the reduced timm GhostNet with every ReLU replaced by a "
               "PReLU, per channel (slope [C, 1, 1], random slopes in [-0.5, 0.75]) except "
               "inside the SE blocks (one shared slope, [1]): PRelu nodes after convs, "
               "depthwise convs and in the Ghost modules (which therefore do not fuse)."),
    dict(name="ts17_pixelshuffle_sr_32x32_b2", build=lambda: pixel_shuffle_sr(),
         arch="ghost-pixelshuffle-upsampler", width=1.0, exporter="torchscript", opset=17,
         res=(32, 32), batch=2, dyn=False, seed=1791,
         notes="a small super-resolution head on a Ghost module: two PixelShuffle(2) branches "
               "(DepthToSpace, CRD mode), 12 -> 3 channels (one padded block) and 32 -> 8 "
               "channels, summed; output [2, 3, 64, 64]."),
    dict(name="ts17_unet_convtranspose_24x32_b2", build=lambda: unet_convtranspose(),
         arch="ghost-unet-convtranspose", width=1.0, exporter="torchscript", opset=17,
         res=(24, 32), batch=2, dyn=False, seed=1792,
         notes="a small U-Net on Ghost modules with ConvTranspose upsampling: k2 s2 (no bias) "
               "+ BatchNorm + ReLU plus a bicubic x2 Resize (PyTorch's a = -0.75) of half the encoder's "
               "channels, concatenated with the skip; k4 s2 p1 with bias + Mish "
               "(Softplus, Tanh, Mul before opset 18); "
               "k3 s2 p1 output_padding 1 + Tanh; a k3x2 stride (1, 2) dilation (2, 1) one "
               "with pads cropping rows only; output [2, 3, 96, 256]."),
    dict(name="dynamo18_unet_convtranspose_24x32_b1", build=lambda: unet_convtranspose(),
         arch="ghost-unet-convtranspose", width=1.0, exporter="dynamo", opset=18,
         res=(24, 32), batch=1, dyn=False, seed=1793,
         export_options=dict(strip_node_metadata=True),
         notes="the same U-Net through the dynamo exporter (Mish as one node)."),
]


class UnetConvTranspose(nn.Module):
    """Stem, two Ghost stages (the second at half resolution), then ConvTranspose upsampling
    in the forms decoders use (see the fixture notes)."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        self.enc1 = HwGhostModule(16, 24)
        self.down = nn.Sequential(nn.Conv2d(24, 40, 3, 2, 1, bias=False), nn.BatchNorm2d(40),
                                  nn.ReLU(inplace=True))
        self.enc2 = HwGhostModule(40, 40)
        self.up1 = nn.Sequential(nn.ConvTranspose2d(40, 20, 2, 2, bias=False),
                                 nn.BatchNorm2d(20), nn.ReLU(inplace=True))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(44, 17, 4, 2, 1), nn.Mish())
        self.up3 = nn.Sequential(nn.ConvTranspose2d(17, 9, 3, 2, 1, output_padding=1),
                                 nn.Tanh())
        self.head = nn.ConvTranspose2d(9, 3, (3, 2), (1, 2), (2, 0), dilation=(2, 1))

    def forward(self, x):
        s = self.enc1(self.stem(x))
        e = self.enc2(self.down(s))
        # A bicubic x2 of half the encoder's channels beside the learned upsampling.
        y = self.up1(e) + F.interpolate(e[:, :20], scale_factor=2, mode="bicubic",
                                        align_corners=False)
        y = self.up3(self.up2(torch.cat([y, s], dim=1)))
        return self.head(y)


def unet_convtranspose() -> nn.Module:
    return UnetConvTranspose()


class PixelShuffleSr(nn.Module):
    """Stem, a Huawei-style Ghost module, then two x2 upsampling branches by PixelShuffle."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        self.ghost = HwGhostModule(16, 24)
        self.rgb = nn.Sequential(nn.Conv2d(24, 12, 3, 1, 1), nn.PixelShuffle(2))
        self.feat = nn.Sequential(nn.Conv2d(24, 32, 1), nn.PixelShuffle(2), nn.ReLU(),
                                  nn.Conv2d(8, 3, 3, 1, 1))

    def forward(self, x):
        y = self.ghost(self.stem(x))
        return self.rgb(y) + self.feat(y)


def pixel_shuffle_sr() -> nn.Module:
    return PixelShuffleSr()


def ghostfacenet_small() -> nn.Module:
    """`timm_small_ghostnet("v1", 0.5)` with PReLU activations, as GhostFaceNets use
    (`with_prelu`)."""
    return with_prelu(timm_small_ghostnet("v1", 0.5), (1, 3, 64, 64), seed=1790)


def with_prelu(m: nn.Module, in_shape, seed: int) -> nn.Module:
    """`m` with each ReLU replaced by `nn.PReLU(C)` for the channel count it sees, and by
    `nn.PReLU()` (one slope) inside squeeze-excite blocks. Slopes are random in [-0.5, 0.75]
    (PyTorch initializes them all to 0.25, which would not tell the channels apart)."""
    from timm.models._efficientnet_blocks import SqueezeExcite
    seen = {}

    def record(mod, inp, out):  # returns None: a hook's return value would replace `out`
        seen.setdefault(mod, inp[0].shape[1])

    hooks = [mod.register_forward_hook(record) for mod in m.modules() if isinstance(mod, nn.ReLU)]
    m.eval()
    with torch.no_grad():
        m(torch.zeros(in_shape))
    for h in hooks:
        h.remove()
    in_se = {id(mod) for se in m.modules() if isinstance(se, SqueezeExcite)
             for mod in se.modules()}
    g = torch.Generator().manual_seed(seed)
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU) and child in seen:
                n = 1 if id(child) in in_se else seen[child]
                p = nn.PReLU(n)
                with torch.no_grad():
                    p.weight.copy_(torch.empty(n).uniform_(-0.5, 0.75, generator=g))
                setattr(parent, name, p)
    return m


FULL_SPECS = [
    dict(name="ghostnet_100_224_op17", build=lambda: timm.create_model("ghostnet_100", pretrained=False,
                                                                       num_classes=1000),
         arch="timm-ghostnet_100", width=1.0, exporter="torchscript", opset=17, res=(224, 224),
         batch=1, dyn=False, seed=224, num_classes=1000, full=True,
         notes="full-size timm ghostnet_100, 1000 classes, random weights + calibrated BN."),
    dict(name="ghostnet_100_224_op17_dynbatch",
         build=lambda: timm.create_model("ghostnet_100", pretrained=False, num_classes=1000),
         arch="timm-ghostnet_100", width=1.0, exporter="torchscript", opset=17, res=(224, 224),
         batch=2, dyn=True, seed=225, num_classes=1000, full=True,
         notes="full-size timm ghostnet_100 with a dynamic batch (bench/soak)."),
]


# ----------------------------------------------------------------------------------------------
# Quantized fixtures (fixtures/quant/, own manifest: the planner does not lower them yet).
#
# The f32 model (timm GhostNet v1 reduced, calibrated BN) is exported with TorchScript (which
# folds eval BN into the convs), then quantized by ONNX Runtime's quantize_static with 32
# random calibration images: QDQ with per-channel s8 weights and u8 or s8 activations, QDQ
# per-tensor, QDQ at opset 21 (version-converted before quantization) and one QOperator export.
# The golden is ORT's output on the quantized model (default optimizations, 1 thread).
# ----------------------------------------------------------------------------------------------
QUANT_SPECS = [
    dict(name="qdq_u8s8_perchannel_v1_w100_48x48_op13", width=1.0, res=(48, 48), opset=13,
         seed=1301, fmt="QDQ", act="QUInt8", per_channel=True,
         notes="QDQ, u8 activations, per-channel s8 weights (quantize_static defaults + "
               "per_channel=True)."),
    dict(name="qdq_s8s8_perchannel_v1_w050_32x32_op17", width=0.5, res=(32, 32), opset=17,
         seed=1701, fmt="QDQ", act="QInt8", per_channel=True,
         notes="QDQ, s8 activations (QuantType.QInt8, symmetric), per-channel s8 weights."),
    dict(name="qdq_u8s8_pertensor_v1_w050_32x32_op17", width=0.5, res=(32, 32), opset=17,
         seed=1702, fmt="QDQ", act="QUInt8", per_channel=False,
         notes="QDQ, u8 activations, per-tensor s8 weights."),
    dict(name="qdq_u8s8_perchannel_v1_w050_32x32_op21", width=0.5, res=(32, 32), opset=21,
         seed=2101, fmt="QDQ", act="QUInt8", per_channel=True,
         notes="QDQ at opset 21: exported at opset 17, onnx.version_converter to 21, then "
               "quantized; u8 activations, per-channel s8 weights."),
    dict(name="qop_u8s8_perchannel_v1_w050_32x32_op13", width=0.5, res=(32, 32), opset=13,
         seed=1302, fmt="QOperator", act="QUInt8", per_channel=True,
         notes="QOperator form: QLinearConv, QLinearMatMul/QGemm, com.microsoft QLinearAdd, "
               "QLinearMul, QLinearGlobalAveragePool, QLinearConcat..."),
]


def fresh_fixture_dir(out_root: Path, name: str, seed: int) -> Path:
    """An empty out_root/name, with torch and numpy seeded."""
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    return out


def make_quant_fixture(spec: dict, out_root: Path) -> dict:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    name, seed = spec["name"], spec["seed"]
    out = fresh_fixture_dir(out_root, name, seed)
    model = timm_small_ghostnet("v1", spec["width"])
    h, w = spec["res"]
    in_shape = (4, 3, h, w)  # batch 4: 40 logits for the step statistics
    randomize_and_calibrate(model, in_shape, seed)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal(in_shape).astype(np.float32))
    with torch.no_grad():
        y_torch = model(x).numpy().astype(np.float32)
    f32_path = out / "f32.onnx"
    export_opset = min(spec["opset"], 17)
    export_torchscript(model, x, f32_path, export_opset, False)
    if spec["opset"] != export_opset:
        from onnx import version_converter
        converted = version_converter.convert_version(onnx.load(str(f32_path)), spec["opset"])
        onnx.save(converted, str(f32_path))
    y_f32 = run_ort(f32_path, x.numpy(), optimized=True)

    rng = np.random.default_rng(seed + 7)
    calib = [rng.standard_normal(in_shape).astype(np.float32) for _ in range(32)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            v = next(self.it, None)
            return None if v is None else {INPUT_NAME: v}

    onnx_path = out / "model.onnx"
    quantize_static(str(f32_path), str(onnx_path), Reader(),
                    quant_format=getattr(QuantFormat, spec["fmt"]),
                    per_channel=spec["per_channel"],
                    activation_type=getattr(QuantType, spec["act"]),
                    weight_type=QuantType.QInt8)
    f32_path.unlink()
    onnx.checker.check_model(str(onnx_path))
    mp = onnx.load(str(onnx_path))
    opset = {(o.domain or "ai.onnx"): o.version for o in mp.opset_import}
    ops, _ = collect_ops(mp)
    xn = x.numpy()
    y_ort = run_ort(onnx_path, xn, optimized=True).astype(np.float32)
    y_ort_noopt = run_ort(onnx_path, xn, optimized=False).astype(np.float32)
    # The scale of the graph output: the last DequantizeLinear's (QDQ), or the scale the final
    # DequantizeLinear after the QOperator graph uses.
    producers = {o: n for n in mp.graph.node for o in n.output}
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in mp.graph.initializer}
    out_node = producers[mp.graph.output[0].name]
    assert out_node.op_type == "DequantizeLinear", out_node.op_type
    out_scale = float(inits[out_node.input[1]])
    np.save(out / "input.npy", np.ascontiguousarray(xn))
    np.save(out / "expected.npy", np.ascontiguousarray(y_ort))
    np.save(out / "expected_noopt.npy", np.ascontiguousarray(y_ort_noopt))
    np.save(out / "torch.npy", np.ascontiguousarray(y_torch))
    steps = lambda a, b: np.round(np.abs(a - b) / out_scale).astype(int)
    files = sorted(p.name for p in out.iterdir())
    meta = {
        "name": name,
        "format": spec["fmt"],
        "opset": opset.get("ai.onnx"),
        "opset_imports": opset,
        "activation_type": spec["act"],
        "weight_type": "QInt8",
        "per_channel": spec["per_channel"],
        "arch": "timm-ghostnet-v1-small",
        "width": spec["width"],
        "input_name": mp.graph.input[0].name,
        "input_shape": list(in_shape),
        "output_shape": list(y_ort.shape),
        "output_scale": out_scale,
        "ort_opt_vs_noopt_steps_max": int(steps(y_ort, y_ort_noopt).max()),
        "ort_vs_f32_ort_max_abs": float(np.abs(y_ort - y_f32).max()),
        "ort_vs_torch_max_abs": float(np.abs(y_ort - y_torch).max()),
        "torch_output_max_abs": float(np.abs(y_torch).max()),
        "op_counts": {(f"{d}::{o}" if d != "ai.onnx" else o): c for (d, o), c in sorted(ops.items())},
        "versions": {"torch": torch.__version__, "timm": timm.__version__,
                     "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "seed": seed,
        "files": files,
        "sha256": {f: sha256(out / f) for f in files},
        "notes": spec["notes"],
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum((out / f).stat().st_size for f in files)
    print(f"{name:44s} opset {meta['opset']:>2} out scale {out_scale:.4g} "
          f"|ort-f32| {meta['ort_vs_f32_ort_max_abs']:.3g} opt-vs-noopt "
          f"{meta['ort_opt_vs_noopt_steps_max']} steps  {size/1e6:.2f} MB", flush=True)
    return meta


# ----------------------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def collect_ops(model_proto: onnx.ModelProto):
    ops = Counter()

    def walk(graph):
        for n in graph.node:
            ops[(n.domain or "ai.onnx", n.op_type)] += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        walk(sg)

    walk(model_proto.graph)
    fn_ops = Counter()
    for fn in model_proto.functions:
        for n in fn.node:
            fn_ops[(n.domain or "ai.onnx", n.op_type)] += 1
    return ops, fn_ops


def run_ort(path: Path, x: np.ndarray, optimized: bool) -> np.ndarray:
    return run_ort_all(path, x, optimized)[0]


def run_ort_all(path: Path, x: np.ndarray, optimized: bool) -> list[np.ndarray]:
    """Every output of the model, in graph order."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def make_fixture(spec: dict, out_root: Path) -> dict:
    name, seed = spec["name"], spec["seed"]
    out = fresh_fixture_dir(out_root, name, seed)
    model = spec["build"]()
    h, w = spec["res"]
    in_shape = (spec["batch"], 3, h, w)
    randomize_and_calibrate(model, in_shape, seed)

    notes = [spec["notes"]]
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal(in_shape).astype(np.float32))
    if spec.get("reparam"):
        with torch.no_grad():
            before = model(x).numpy()
        model.convert_to_deploy()
        model.eval()
        with torch.no_grad():
            after = model(x).numpy()
        d = float(np.abs(before - after).max())
        notes.append(f"torch output change from reparameterization: max abs {d:.3g}")
    with torch.no_grad():
        y = model(x)
    ys_torch = [t.numpy().astype(np.float32) for t in (y if isinstance(y, (list, tuple)) else [y])]
    y_torch = ys_torch[0]
    output_names = spec.get("output_names", [OUTPUT_NAME])
    n_params = sum(p.numel() for p in model.parameters())

    onnx_path = out / "model.onnx"
    export_options = dict(spec.get("export_options", {}))
    if spec["exporter"] == "torchscript":
        export_torchscript(model, x, onnx_path, spec["opset"], spec["dyn"],
                           output_names=output_names, **export_options)
    else:
        export_dynamo(model, x, onnx_path, spec["opset"], spec["dyn"], **export_options)
    export_options = {k: (sorted(f"{c.__module__}.{c.__name__}" for c in v)
                          if isinstance(v, (set, list, tuple)) else v)
                      for k, v in export_options.items()}

    onnx.checker.check_model(str(onnx_path), full_check=True)
    mp = onnx.load(str(onnx_path), load_external_data=False)
    opset = {(o.domain or "ai.onnx"): o.version for o in mp.opset_import}
    ops, fn_ops = collect_ops(mp)
    n_ext = sum(1 for t in mp.graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL)
    n_init = len(mp.graph.initializer)

    xn = x.numpy()
    ys_ort = [y.astype(np.float32) for y in run_ort_all(onnx_path, xn, optimized=True)]
    ys_ort_noopt = [y.astype(np.float32) for y in run_ort_all(onnx_path, xn, optimized=False)]
    assert len(ys_ort) == len(ys_torch) == len(output_names), "output count mismatch"
    y_ort = ys_ort[0]
    np.save(out / "input.npy", np.ascontiguousarray(xn))
    for i, (yo, yt) in enumerate(zip(ys_ort, ys_torch)):
        suffix = "" if i == 0 else f"_{i}"
        np.save(out / f"expected{suffix}.npy", np.ascontiguousarray(yo))
        np.save(out / f"torch{suffix}.npy", np.ascontiguousarray(yt))

    diff = max(float(np.abs(yo - yt).max()) for yo, yt in zip(ys_ort, ys_torch))
    scale = max(float(np.abs(yt).max()) for yt in ys_torch)
    diff_noopt = max(float(np.abs(a - b).max()) for a, b in zip(ys_ort, ys_ort_noopt))

    # dynamic batch sanity: also run a different batch size through ORT
    if spec["dyn"]:
        x1 = xn[:1]
        y1 = run_ort(onnx_path, np.ascontiguousarray(x1), optimized=True)
        notes.append(f"ORT batch-1 run vs row 0 of batch-{spec['batch']} run: "
                     f"max abs {float(np.abs(y1 - y_ort[:1]).max()):.3g}")

    files = sorted(p.name for p in out.iterdir())
    meta = {
        "name": name,
        "exporter": spec["exporter"],
        "opset": opset.get("ai.onnx"),
        "opset_imports": opset,
        "arch": spec["arch"],
        "width": spec["width"],
        "resolution": [h, w],
        "batch": spec["batch"],
        "dynamic_batch": spec["dyn"],
        "export_options": export_options,
        "input_name": mp.graph.input[0].name,
        "input_shape": list(in_shape),
        "output_name": mp.graph.output[0].name,
        "output_shape": list(y_ort.shape),
        **({"output_names": [o.name for o in mp.graph.output],
            "output_shapes": [list(y.shape) for y in ys_ort]} if len(ys_ort) > 1 else {}),
        "num_classes": spec.get("num_classes", 10),
        "num_params": n_params,
        "ort_vs_torch_max_abs": diff,
        "ort_vs_torch_max_rel": diff / scale if scale > 0 else None,
        "torch_output_max_abs": scale,
        "torch_output_std": float(y_torch.std()),
        "ort_opt_vs_noopt_max_abs": diff_noopt,
        "external_data": n_ext > 0,
        "initializers": n_init,
        "external_initializers": n_ext,
        "model_local_functions": [f"{f.domain}::{f.name}" for f in mp.functions],
        "op_types": sorted({f"{d}::{o}" if d != "ai.onnx" else o for (d, o) in ops}),
        "op_counts": {(f"{d}::{o}" if d != "ai.onnx" else o): c for (d, o), c in sorted(ops.items())},
        "function_op_types": sorted({f"{d}::{o}" if d != "ai.onnx" else o for (d, o) in fn_ops}),
        "versions": {"torch": torch.__version__, "timm": timm.__version__,
                     "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "seed": seed,
        "files": files,
        "sha256": {f: sha256(out / f) for f in files},
        "notes": " ".join(notes),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum((out / f).stat().st_size for f in files) + (out / "meta.json").stat().st_size
    print(f"{name:40s} {spec['exporter']:11s} opset {meta['opset']:>2}  in {list(in_shape)} "
          f"out {list(y_ort.shape)}  |ort-torch| {diff:.2e} (max|y| {scale:.2f})  "
          f"ext {n_ext}/{n_init}  fns {len(mp.functions)}  {size/1e6:.2f} MB", flush=True)
    return meta


def write_ops_md(metas, path: Path):
    lines = ["# ONNX op types per fixture", "",
             "Generated by `tools/make_fixtures.py` (do not edit by hand).", "",
             "| fixture | exporter | opset | op types (sorted) |", "|---|---|---|---|"]
    union = Counter()
    for m in metas:
        ops = m["op_types"]
        if m["function_op_types"]:
            ops = ops + [f"(in functions: {', '.join(m['function_op_types'])})"]
        lines.append(f"| {m['name']} | {m['exporter']} | {m['opset']} | {', '.join(ops)} |")
        for o in set(m["op_types"]) | set(m["function_op_types"]):
            union[o] += 1
    lines += ["", "## Union (op type: number of fixtures using it)", ""]
    for o, c in sorted(union.items()):
        lines.append(f"- `{o}`: {c}")
    lines += ["", "## Node counts per fixture", ""]
    for m in metas:
        lines.append(f"- **{m['name']}**: " + ", ".join(f"{k}x{v}" for k, v in m["op_counts"].items()))
    path.write_text("\n".join(lines) + "\n")


def main():
    # The TorchScript exporter keeps export_modules_as_functions type names in a Python set of
    # strings, so function numbering (GhostModule vs GhostModule.1) depends on string hashing.
    # Re-exec with a fixed hash seed to make every output byte-for-byte reproducible.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="also write fixtures/full/ (gitignored)")
    ap.add_argument("--only", action="append", default=[], help="only these fixture names")
    ap.add_argument("--out", type=Path, default=FIXTURES,
                    help="write the fixtures here instead of fixtures/ (with --only)")
    ap.add_argument("--quant", action="store_true",
                    help="only the quantized fixtures (fixtures/quant/, with --only to pick)")
    ap.add_argument("--index", action="store_true",
                    help="only rewrite fixtures/manifest.json and OPS.md from the fixtures' "
                         "meta.json files (after adding fixtures with --only)")
    args = ap.parse_args()
    if args.out != FIXTURES and not args.only:
        ap.error("--out needs --only (manifest.json and OPS.md describe fixtures/)")

    if args.quant:
        root = FIXTURES / "quant"
        root.mkdir(exist_ok=True)
        qspecs = [s for s in QUANT_SPECS if not args.only or s["name"] in args.only]
        for s in qspecs:
            make_quant_fixture(s, root)
        metas = [json.loads((root / s["name"] / "meta.json").read_text())
                 for s in QUANT_SPECS if (root / s["name"] / "meta.json").exists()]
        (root / "manifest.json").write_text(json.dumps(
            {"generator": "tools/make_fixtures.py --quant",
             "fixtures": [{k: m[k] for k in ("name", "format", "opset", "activation_type",
                                             "per_channel", "input_shape", "output_shape",
                                             "output_scale")}
                          | {"path": f"fixtures/quant/{m['name']}"} for m in metas]},
            indent=2) + "\n")
        return

    specs = [s for s in SPECS if not args.only or s["name"] in args.only]
    metas = []
    if args.index:
        metas = [json.loads((FIXTURES / s["name"] / "meta.json").read_text()) for s in SPECS]
    else:
        for spec in specs:
            metas.append(make_fixture(spec, args.out))

    if not args.only:
        manifest = {
            "generator": "tools/make_fixtures.py",
            "versions": metas[0]["versions"] if metas else {},
            "fixtures": [{k: m[k] for k in ("name", "exporter", "opset", "arch", "width",
                                            "input_shape", "output_shape", "dynamic_batch",
                                            "external_data")}
                         | {k: m[k] for k in ("output_names", "output_shapes") if k in m}
                         | {"path": f"fixtures/{m['name']}"} for m in metas],
        }
        (FIXTURES / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        write_ops_md(metas, FIXTURES / "OPS.md")

    if args.full:
        full_root = FIXTURES / "full"
        full_root.mkdir(exist_ok=True)
        for s in FULL_SPECS:
            if not args.only or s["name"] in args.only:
                make_fixture(s, full_root)
        full_metas = [json.loads((full_root / s["name"] / "meta.json").read_text())
                      for s in FULL_SPECS if (full_root / s["name"] / "meta.json").exists()]
        (full_root / "manifest.json").write_text(json.dumps(
            {"fixtures": [{"name": m["name"], "path": f"fixtures/full/{m['name']}"}
                          for m in full_metas]}, indent=2) + "\n")
        write_ops_md(full_metas, full_root / "OPS.md")


if __name__ == "__main__":
    main()
