#!/usr/bin/env python3
"""A full-size model zoo: does ghostc compile it, and how fast is it against ONNX Runtime?

Exports (once, cached in --dir) full-size models from torchvision, timm and ultralytics with
random weights and calibrated BatchNorm (tools/make_fixtures.py's randomize_and_calibrate; no
pretrained weights, nothing downloaded), then per model:
  1. `ghostc inspect`: compile status; when the model does not compile, the blocking ops
     (per-op counts from the "cannot lower" list, or the import error);
  2. with --time, for the models that compile: ghostc/ORT at 1 thread from one alternating run of
     bench/compare.py (--engines ghostc,ort; its output check against ORT is reported too).
Run the timing part alone on the machine; keep --only lists short so one invocation stays under
a few minutes.

Usage:
  python bench/zoo.py                          # export what is missing + compile status table
  python bench/zoo.py --time [--only a,b]      # + timing (rounds x runs chosen per model size)
  python bench/zoo.py --list                   # model names
Options: --dir DIR (default $GHOSTC_ZOO or /work/zoo), --ghostc BIN (default
$CARGO_TARGET_DIR/release/ghostc), --rounds R, --markdown.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable

# name -> (source, constructor argument, input size). Full-size, batch 1.
ZOO = collections.OrderedDict([
    ("tv_resnet18", ("torchvision", "resnet18", 224)),
    ("tv_mobilenet_v2", ("torchvision", "mobilenet_v2", 224)),
    ("tv_mobilenet_v3_large", ("torchvision", "mobilenet_v3_large", 224)),
    ("tv_shufflenet_v2_x1_0", ("torchvision", "shufflenet_v2_x1_0", 224)),
    ("tv_efficientnet_b0", ("torchvision", "efficientnet_b0", 224)),
    ("tv_regnet_y_400mf", ("torchvision", "regnet_y_400mf", 224)),
    ("tv_squeezenet1_1", ("torchvision", "squeezenet1_1", 224)),
    ("tv_mnasnet1_0", ("torchvision", "mnasnet1_0", 224)),
    ("tv_convnext_tiny", ("torchvision", "convnext_tiny", 224)),
    ("tv_lraspp_mobilenet_v3", ("torchvision-seg", "lraspp_mobilenet_v3_large", 224)),
    ("timm_ghostnet_100", ("timm", "ghostnet_100", 224)),
    ("timm_ghostnetv2_100", ("timm", "ghostnetv2_100", 224)),
    ("timm_ghostnetv2_130", ("timm", "ghostnetv2_130", 224)),
    ("timm_ghostnetv2_160", ("timm", "ghostnetv2_160", 224)),
    # GhostNetV3 as timm builds it for training (parallel conv/scale/BN branches) and after its
    # `convert_to_deploy` (one conv per branch set): ghostc must re-parameterize the first.
    ("timm_ghostnetv3_100", ("timm", "ghostnetv3_100", 224)),
    ("timm_ghostnetv3_100_deploy", ("timm-deploy", "ghostnetv3_100", 224)),
    ("timm_ghostnet_100_features", ("timm-features", "ghostnet_100", 224)),
    # GhostFaceNets-style: GhostNet-1.0 with per-channel PReLU, at face recognition's 112x112.
    ("timm_ghostnet_100_prelu_112", ("timm-prelu", "ghostnet_100", 112)),
    ("timm_tf_efficientnet_lite0", ("timm", "tf_efficientnet_lite0", 224)),
    ("timm_mobilenetv3_large_100", ("timm", "mobilenetv3_large_100", 224)),
    ("timm_resnet50d", ("timm", "resnet50d", 224)),
    ("yolov8n_ghost_decode", ("ultralytics", "decode", 640)),
    ("yolov8n_ghost_raw", ("ultralytics", "raw", 640)),
])


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------
def build(source, arg, size):
    import torch
    import torch.nn as nn
    if source == "torchvision":
        import torchvision
        return getattr(torchvision.models, arg)(weights=None)
    if source == "torchvision-seg":
        import torchvision

        class Out(nn.Module):  # the segmentation models return a dict
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x)["out"]
        return Out(getattr(torchvision.models.segmentation, arg)(weights=None,
                                                                  weights_backbone=None))
    if source in ("timm", "timm-deploy"):
        import timm
        return timm.create_model(arg, pretrained=False)
    if source == "timm-prelu":
        import timm
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        from make_fixtures import with_prelu
        return with_prelu(timm.create_model(arg, pretrained=False), (1, 3, size, size), seed=0)
    if source == "timm-features":
        import timm
        return timm.create_model(arg, pretrained=False, features_only=True, out_indices=(3, 4))
    if source == "ultralytics":
        return yolo_ghost(arg == "decode")
    raise ValueError(source)


def yolo_ghost(decode: bool):
    """ultralytics' yolov8-ghost.yaml at scale n, random weights (built from the config)."""
    import torch
    import torch.nn as nn
    from ultralytics.nn.tasks import DetectionModel
    m = DetectionModel("yolov8n-ghost.yaml", nc=80, verbose=False)
    head = m.model[-1]

    class Raw(nn.Module):
        """The three raw head outputs (cat of box and class logits per level), no decode."""
        def __init__(self, m):
            super().__init__()
            self.m = m
            head.forward = lambda xs: tuple(
                torch.cat((head.cv2[i](xs[i]), head.cv3[i](xs[i])), 1) for i in range(head.nl))

        def forward(self, x):
            return self.m(x)

    class Decode(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m
            head.export = True
            head.format = "onnx"

        def forward(self, x):
            y = self.m(x)
            return y[0] if isinstance(y, (list, tuple)) else y
    return Decode(m) if decode else Raw(m)


def export(name, path):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from make_fixtures import export_torchscript, randomize_and_calibrate
    source, arg, size = ZOO[name]
    torch.manual_seed(0)
    model = build(source, arg, size).eval()
    shape = (1, 3, size, size)
    # A model whose head (`classifier` or torchvision's `fc`) is one Linear gets it rescaled to
    # O(1) logits by the helper; elsewhere (Sequential heads, detectors, backbones) the wrapper
    # hides the head and only the BatchNorm is calibrated.
    head = getattr(model, "classifier", None) or getattr(model, "fc", None)
    calib = model if isinstance(head, torch.nn.Linear) else torch.nn.Sequential(model)
    randomize_and_calibrate(calib, shape, seed=0, n_batches=2, calib_batch=4)
    if source == "timm-deploy":
        model.convert_to_deploy()  # after calibration: the merge reads the calibrated BN
    model.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        y = model(x)
    n_out = len(y) if isinstance(y, (list, tuple)) else 1
    outs = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
    export_torchscript(model, x, Path(path), 17, False, output_names=outs)


# --------------------------------------------------------------------------------------------
# Status and timing
# --------------------------------------------------------------------------------------------
BLOCK_RE = re.compile(r"^\s+- '.*?' \((\w+)\): (.*)$")


def status(ghostc, path):
    """('yes', '') or ('NO', 'op xN (blocker), ...') from `ghostc inspect`."""
    p = subprocess.run([ghostc, "inspect", path], text=True, capture_output=True)
    out = p.stdout + p.stderr
    if p.returncode == 0 and "compiles: yes" in out:
        return "yes", ""
    ops = collections.OrderedDict()
    for line in out.splitlines():
        mm = BLOCK_RE.match(line)
        if mm:
            op, blocker = mm.group(1), mm.group(2).split("; supported")[0]
            key = (op, blocker[:60])
            ops[key] = ops.get(key, 0) + 1
    if ops:
        return "NO", "; ".join(f"{op} x{n} ({b})" for (op, b), n in ops.items())
    last = [l for l in out.splitlines() if l.strip()][-3:]
    return "NO", "import: " + " | ".join(l.strip()[:160] for l in last)


SUMMARY_RE = re.compile(r"^(ghostc|ort)\s+1\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.\-]+)\s+\S+\s+(\S+)")


def timing(path, rounds, workdir):
    """Run compare.py (ghostc vs ort, 1 thread); returns dict or an error string."""
    import onnxruntime as ort
    import time
    import numpy as np
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.zeros([d if isinstance(d, int) else 1 for d in inp.shape], np.float32)
    sess.run(None, {inp.name: x})
    t = time.perf_counter()
    sess.run(None, {inp.name: x})
    ms = (time.perf_counter() - t) * 1e3
    runs = max(5, min(200, int(2500 / max(ms, 0.1) / rounds)))  # ~2.5 s per engine per round
    cmd = [PY, os.path.join(ROOT, "bench", "compare.py"), path, "--engines", "ghostc,ort",
           "--rounds", str(rounds), "--runs", str(runs), "--warmup", "3", "--workdir", workdir]
    p = subprocess.run(cmd, text=True, capture_output=True)
    res = {"runs": runs}
    for line in p.stdout.splitlines():
        mm = SUMMARY_RE.match(line)
        if mm:
            res[mm.group(1)] = (float(mm.group(2)), float(mm.group(3)), mm.group(5))
    if "ghostc" not in res or "ort" not in res:
        tail = (p.stdout + p.stderr).strip().splitlines()[-4:]
        return "compare.py failed: " + " | ".join(tail)[:300]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.environ.get("GHOSTC_ZOO", "/work/zoo"))
    ap.add_argument("--ghostc", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "ghostc"))
    ap.add_argument("--only", default="", help="comma list of model names")
    ap.add_argument("--time", action="store_true", help="also time ghostc vs ORT (1 thread)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--export-one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.list:
        print("\n".join(ZOO))
        return
    if a.export_one:  # worker: one export per process (torch state does not leak across models)
        name, path = a.export_one.split("=", 1)
        export(name, path)
        return
    names = [n for n in a.only.split(",") if n] or list(ZOO)
    unknown = [n for n in names if n not in ZOO]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; --list shows the zoo")
    os.makedirs(a.dir, exist_ok=True)
    rows = []
    for name in names:
        path = os.path.join(a.dir, name + ".onnx")
        if not os.path.exists(path):
            p = subprocess.run([PY, os.path.abspath(__file__), "--export-one", f"{name}={path}"],
                               text=True, capture_output=True)
            if p.returncode != 0 or not os.path.exists(path):
                rows.append((name, "export failed", p.stderr.strip().splitlines()[-1][:200], "-"))
                print(rows[-1], flush=True)
                continue
        st, why = status(a.ghostc, path)
        tm = "-"
        if a.time and st == "yes":
            r = timing(path, a.rounds, os.path.join(a.dir, "work-" + name))
            if isinstance(r, str):
                tm = r
            else:
                g, o = r["ghostc"], r["ort"]
                tm = (f"{g[0] / o[0]:.2f} (ghostc {g[0]:.2f} p10 {g[1]:.2f} / ort {o[0]:.2f} p10 "
                      f"{o[1]:.2f} ms, {a.rounds}x{r['runs']}, output {g[2]})")
        rows.append((name, st, why, tm))
        print(" | ".join(rows[-1]), flush=True)
    print()
    hdr = ("model", "compiles", "blocking ops", "ghostc/ORT 1 thread (median)")
    if a.markdown:
        print("| " + " | ".join(hdr) + " |\n|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in rows:
            print(f"{r[0]:28s} {r[1]:4s} {r[3]}  {r[2]}")
    blocked = collections.Counter()
    for r in rows:
        if r[1] == "NO":
            blocked.update({mm.group(1) for mm in re.finditer(r"(?:^|; )(\w+) x\d+", r[2])})
    if blocked:
        print("\nops blocking the most models: " +
              ", ".join(f"{op} ({n})" for op, n in blocked.most_common()))


if __name__ == "__main__":
    main()
