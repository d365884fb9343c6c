#!/usr/bin/env python3
"""Train a small GhostNet on scikit-learn's digits and export the demo data for ghostc.

Usage (from the repo root):
    /work/pyenv/bin/python tools/train_digits.py
    /work/pyenv/bin/python tools/train_digits.py --calibration-only   # calibration/ alone

Writes examples/digits/data/:
    digits.onnx        TorchScript exporter, opset 17, dynamic batch, input "input" [N,1,32,32]
    test_images.npy    float32 [N,1,32,32], already normalized (held-out split)
    test_labels.npy    int64 [N]
    torch_logits.npy   float32 [N,10], PyTorch eval mode
    calibration/train_sample.npy
                       float32 [64,1,32,32], normalized training images (a seeded sample of
                       the training split) that build.rs calibrates the int8 build on
    ort_logits.npy     float32 [N,10], ONNX Runtime
    meta.json          accuracies, normalization, recipe, versions

Data: sklearn.datasets.load_digits (1797 8x8 grey images, 0..16, shipped with scikit-learn,
no download). Images are scaled to [0,1], bilinearly upsampled to 32x32 and normalized with
the training-set mean/std. Stratified 80/20 split, seeded. Pinned versions: tools/requirements.txt.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import onnx
import onnxruntime as ort
import sklearn
import timm
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from timm.layers import Linear
from timm.models.ghostnet import GhostNet

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "digits" / "data"

SEED = 0
RES = 32
EPOCHS = 30
BATCH = 64
LR = 3e-3
WEIGHT_DECAY = 1e-2
WIDTH = 0.5
HEAD = 128
MAX_SHIFT = 2  # random translation (pixels at 32x32) for augmentation
CALIB_COUNT = 64  # training images the int8 build is calibrated on (never test images)

# Reduced timm GhostNet cfg (k, exp, c, se_ratio, stride): same block kinds as ghostnet_100,
# four stride-2 stages (total stride 32 -> 1x1 final map at 32x32).
CFGS = [
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


def build_model() -> nn.Module:
    m = GhostNet(CFGS, num_classes=10, width=WIDTH, in_chans=1, drop_rate=0.2)
    # timm hard-codes a 1280-wide conv_head; use a narrower one to keep the ONNX file small
    m.conv_head = nn.Conv2d(m.num_features, HEAD, 1, 1, 0, bias=True)
    m.head_hidden_size = HEAD
    m.classifier = Linear(HEAD, 10)
    return m


def prepare():
    d = load_digits()
    x = d.images.astype(np.float32) / 16.0  # [N,8,8] in [0,1]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=SEED)

    def up(a):
        t = torch.from_numpy(a)[:, None]
        return F.interpolate(t, size=(RES, RES), mode="bilinear", align_corners=False)

    x_tr, x_te = up(x_tr), up(x_te)
    mean = float(x_tr.mean())
    std = float(x_tr.std())
    x_tr = (x_tr - mean) / std
    x_te = (x_te - mean) / std
    return x_tr, torch.from_numpy(y_tr), x_te, torch.from_numpy(y_te), mean, std


def random_shift(x: torch.Tensor, g: torch.Generator, fill: float) -> torch.Tensor:
    n = x.shape[0]
    p = MAX_SHIFT
    padded = F.pad(x, (p, p, p, p), value=fill)
    dx = torch.randint(0, 2 * p + 1, (n,), generator=g)
    dy = torch.randint(0, 2 * p + 1, (n,), generator=g)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + RES, dx[i]:dx[i] + RES]
    return out


def write_calibration(x_tr: torch.Tensor) -> None:
    """A seeded sample of the (normalized, un-augmented) training split: the int8 build is
    calibrated on images the model was trained on, and evaluated on the held-out test set."""
    pick = np.random.default_rng(SEED).choice(len(x_tr), CALIB_COUNT, replace=False)
    pick.sort()
    calib = np.ascontiguousarray(x_tr.numpy()[pick].astype(np.float32))
    (OUT / "calibration").mkdir(parents=True, exist_ok=True)
    np.save(OUT / "calibration" / "train_sample.npy", calib)


def main():
    if "--calibration-only" in sys.argv[1:]:
        OUT.mkdir(parents=True, exist_ok=True)
        write_calibration(prepare()[0])
        return 0
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    # 1 thread: reproducible, and much faster than 2 threads on a busy 2-core machine
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "1")))
    OUT.mkdir(parents=True, exist_ok=True)

    x_tr, y_tr, x_te, y_te, mean, std = prepare()
    background = (0.0 - mean) / std  # normalized value of an empty (0) pixel
    model = build_model()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = (len(x_tr) + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=EPOCHS * steps_per_epoch)
    g = torch.Generator().manual_seed(SEED)

    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(x_tr), generator=g)
        tot, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(x_tr), BATCH):
            idx = perm[i:i + BATCH]
            xb = random_shift(x_tr[idx], g, background)
            yb = y_tr[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb, label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            tot += len(idx)
        if epoch % 5 == 4 or epoch == EPOCHS - 1:
            model.eval()
            with torch.no_grad():
                acc = float((model(x_te).argmax(1) == y_te).float().mean())
            print(f"epoch {epoch + 1:3d}  loss {loss_sum / tot:.4f}  train acc {correct / tot:.4f}  "
                  f"test acc {acc:.4f}  ({time.time() - t0:.0f}s)", flush=True)
    train_time = time.time() - t0

    model.eval()
    with torch.no_grad():
        torch_logits = model(x_te).numpy().astype(np.float32)
    torch_acc = float((torch_logits.argmax(1) == y_te.numpy()).mean())

    onnx_path = OUT / "digits.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x_te[:1],), str(onnx_path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(str(onnx_path), full_check=True)
    mp = onnx.load(str(onnx_path))
    op_types = sorted({n.op_type for n in mp.graph.node})

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    x_np = np.ascontiguousarray(x_te.numpy().astype(np.float32))
    ort_logits = sess.run(None, {"input": x_np})[0].astype(np.float32)
    ort_acc = float((ort_logits.argmax(1) == y_te.numpy()).mean())
    diff = float(np.abs(ort_logits - torch_logits).max())

    np.save(OUT / "test_images.npy", x_np)
    np.save(OUT / "test_labels.npy", np.ascontiguousarray(y_te.numpy().astype(np.int64)))
    np.save(OUT / "torch_logits.npy", np.ascontiguousarray(torch_logits))
    np.save(OUT / "ort_logits.npy", np.ascontiguousarray(ort_logits))
    write_calibration(x_tr)

    meta = {
        "model": "timm GhostNet (reduced cfgs, width 0.5, in_chans=1, conv_head 128, 10 classes)",
        "onnx": "digits.onnx",
        "exporter": "torchscript",
        "opset": 17,
        "dynamic_batch": True,
        "input_name": "input",
        "input_shape": ["batch", 1, RES, RES],
        "output_name": "logits",
        "op_types": op_types,
        "num_params": n_params,
        "onnx_bytes": onnx_path.stat().st_size,
        "test_count": int(len(y_te)),
        "train_count": int(len(y_tr)),
        "torch_accuracy": torch_acc,
        "ort_accuracy": ort_acc,
        "ort_vs_torch_max_abs": diff,
        "argmax_agreement": float((ort_logits.argmax(1) == torch_logits.argmax(1)).mean()),
        "normalization": {
            "steps": "x = digits.images / 16 (float32, [0,1]); bilinear resize 8x8 -> 32x32 "
                     "(torch F.interpolate, align_corners=False); x = (x - mean) / std",
            "mean": mean,
            "std": std,
            "note": "test_images.npy is already normalized",
        },
        "recipe": {
            "dataset": "sklearn.datasets.load_digits",
            "split": "train_test_split(test_size=0.2, stratify=y, random_state=0)",
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "optimizer": f"AdamW(lr={LR}, weight_decay={WEIGHT_DECAY})",
            "schedule": "OneCycleLR",
            "loss": "cross_entropy(label_smoothing=0.05)",
            "augmentation": f"random translation up to +-{MAX_SHIFT} px (background fill)",
            "dropout": 0.2,
            "seed": SEED,
            "threads": torch.get_num_threads(),
            "train_seconds": round(train_time, 1),
        },
        "versions": {"torch": torch.__version__, "timm": timm.__version__,
                     "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                     "scikit-learn": sklearn.__version__, "numpy": np.__version__},
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"torch acc {torch_acc:.4f}  ort acc {ort_acc:.4f}  |ort-torch| {diff:.2e}  "
          f"onnx {onnx_path.stat().st_size / 1e6:.2f} MB  params {n_params}  "
          f"train {train_time:.0f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
