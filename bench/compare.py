#!/usr/bin/env python3
"""Side-by-side latency of ghostc-generated code and peer CPU engines on the same ONNX file.

Engines: ghostc (generated crate, built in release via the ghostc CLI), ONNX Runtime (the
reference), OpenVINO (f32), ncnn (pnnx conversion, fp16/bf16 off) and tract (bench/tract/).
Every engine gets the same input; each output is checked against ONNX Runtime
(max|y-ref| <= 1e-4*max|ref| + 1e-5). Timing alternates engines for R rounds; each round runs
every engine in a fresh process pinned with taskset (N timed runs after warm-up) and takes its
median. Reported per engine: median of round medians, median of round p10s, ratio ghostc / engine
(lower is better for ghostc) and % of roofline (MACs / latency vs the FMA peak per core that
ghostc's runner measures on this machine, `peak_gmacs=` on its bench line).

Usage:
  python bench/compare.py [MODEL.onnx] [--rounds 5] [--runs 200] [--threads 1[,2]]
                          [--engines ghostc,ort,openvino,ncnn,tract] [--core 1]
                          [--no-fuse LIST] [--int8]
--int8: MODEL is a QDQ file (`ghostc quantize`, `quantize_static`); every engine runs that same
file (ORT and OpenVINO with their int8 kernels) and outputs agree within one quantization step
of the output. See bench/README.md.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "fixtures/full/ghostnet_100_224_op17/model.onnx")
PEAK_RE = re.compile(r"peak_gmacs=([0-9.]+)")
ALL_ENGINES = ["ghostc", "ort", "openvino", "ncnn", "tract"]
LINE_RE = re.compile(r"median\s+([0-9.]+)\s*ms.*?p10\s+([0-9.]+)\s*ms")


# --------------------------------------------------------------------------------------------
# Workers: one engine, one process. `compare.py --worker ENGINE ...` prints `median X ms p10 Y ms`
# and, with --out, writes the engine's output for the input as .npy.
# --------------------------------------------------------------------------------------------
def _time_loop(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        fn()
        t.append((time.perf_counter() - s) * 1e3)
    t.sort()
    return t[len(t) // 2], t[len(t) // 10]


def worker(a):
    x = np.load(a.input)
    if a.worker == "ort":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        feed = {name: x}
        run = lambda: sess.run(None, feed)[0]
    elif a.worker == "openvino":
        import openvino as ov
        core = ov.Core()
        cfg = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
               "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(a.threads)}
        compiled = core.compile_model(a.model, "CPU", cfg)
        if a.verbose:
            for k in ["INFERENCE_PRECISION_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
                      "PERFORMANCE_HINT"]:
                print(f"  openvino {k} = {compiled.get_property(k)}", file=sys.stderr)
        req = compiled.create_infer_request()
        req.set_input_tensor(ov.Tensor(np.ascontiguousarray(x), shared_memory=True))

        def run():
            req.infer()
            return req.get_output_tensor(0).data
    elif a.worker == "ncnn":
        import ncnn
        net = ncnn.Net()
        net.opt.num_threads = a.threads
        net.opt.use_fp16_packed = False
        net.opt.use_fp16_storage = False
        net.opt.use_fp16_arithmetic = False
        net.opt.use_bf16_storage = False
        net.opt.use_vulkan_compute = False
        assert net.load_param(a.ncnn_param) == 0 and net.load_model(a.ncnn_bin) == 0
        # ncnn has no batch dimension: a batch is run as one extraction per image.
        mats = [ncnn.Mat(np.ascontiguousarray(x[i])).clone() for i in range(x.shape[0])]

        def run():
            ys = []
            for mat in mats:
                with net.create_extractor() as ex:
                    ex.input("in0", mat)
                    _, out = ex.extract("out0")
                    ys.append(np.array(out))
            return np.stack(ys)
    else:
        raise SystemExit(f"unknown worker {a.worker}")
    y = np.asarray(run()).copy()
    if a.out:
        np.save(a.out, y.astype(np.float32))
    if a.runs > 0:
        med, p10 = _time_loop(run, a.runs, a.warmup)
        print(f"median {med:.3f} ms p10 {p10:.3f} ms")


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------
def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def count_macs(model_path, batch):
    """Multiply-adds of Conv / ConvTranspose / Gemm / MatMul from ONNX shape inference (None if
    unknown); a ConvTranspose counts every input pixel times every tap, as ghostc does."""
    import onnx
    from onnx import shape_inference
    m = shape_inference.infer_shapes(onnx.load(model_path))
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else batch
                for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for init in m.graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for n in m.graph.node:
        try:
            if n.op_type == "Conv":
                w = shapes[n.input[1]]
                y = shapes[n.output[0]]
                total += int(np.prod(y)) * int(np.prod(w[1:]))
            elif n.op_type == "ConvTranspose":
                x = shapes[n.input[0]]
                w = shapes[n.input[1]]
                total += int(np.prod(x)) * int(np.prod(w[1:]))
            elif n.op_type in ("Gemm", "MatMul"):
                a_ = shapes[n.input[0]]
                y = shapes[n.output[0]]
                total += int(np.prod(y)) * a_[-1]
        except KeyError:
            return None
    return total


# Output tolerance of an int8 (QDQ) model: one quantization step of its output (set by --int8).
INT8_STEP = None


def output_step(model):
    """The scale of the DequantizeLinear that produces the (first) graph output of a QDQ model."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(model, load_external_data=False)
    inits = {i.name: i for i in m.graph.initializer}
    out = m.graph.output[0].name
    for n in m.graph.node:
        if n.output and n.output[0] == out and n.op_type == "DequantizeLinear":
            return float(numpy_helper.to_array(inits[n.input[1]]).reshape(-1)[0])
    sys.exit(f"--int8: {model}'s output is not produced by a DequantizeLinear")


def check(name, y, ref):
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    r = np.asarray(ref, dtype=np.float32).reshape(-1)
    if y.size != r.size:
        return False, f"{name}: size {y.size} != reference {r.size}"
    err = float(np.max(np.abs(y - r)))
    tol = 1e-4 * float(np.max(np.abs(r))) + 1e-5
    if INT8_STEP is not None:
        tol = INT8_STEP * 1.001
    ok = err <= tol
    return ok, (f"{name:9s} max|y-ref| = {err:.3e}  tol = {tol:.3e}  "
                f"{'OK' if ok else 'MISMATCH'}  (argmax {int(np.argmax(y))} vs {int(np.argmax(r))})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=200, help="timed runs per engine per round")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", default="1", help="comma list, e.g. 1,2")
    ap.add_argument("--engines", default=",".join(ALL_ENGINES))
    ap.add_argument("--core", type=int, default=int(os.environ.get("CORE", 1)),
                    help="core for 1-thread runs (2-thread runs use cores 0,1)")
    ap.add_argument("--batch", type=int, default=None,
                    help="run at this batch: a copy of the model with input/output dim 0 set to it "
                         "is written to the work dir and used by every engine (needs a graph "
                         "without a baked-in batch, e.g. Flatten rather than Reshape(1,-1))")
    ap.add_argument("--no-fuse", default=None, metavar="LIST",
                    help="passed to `ghostc compile --no-fuse` (e.g. dfc: ghostc before a fusion)")
    ap.add_argument("--macs", type=float, default=None, help="override the MAC count")
    ap.add_argument("--workdir", default=None, help="keep build products here (default: temp)")
    ap.add_argument("--tract-bin", default=None,
                    help="prebuilt bench/tract binary (default: build it, CARGO_TARGET_DIR="
                         "$TRACT_TARGET_DIR or /work/target-tract)")
    ap.add_argument("--markdown", action="store_true", help="print the final table as markdown")
    ap.add_argument("--int8", action="store_true",
                    help="a QDQ model: outputs agree within one step of the output's scale")
    # worker mode
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--ncnn-param", help=argparse.SUPPRESS)
    ap.add_argument("--ncnn-bin", help=argparse.SUPPRESS)
    ap.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.threads = int(a.threads)
        return worker(a)

    model = orig_model = os.path.abspath(a.model)
    if a.int8:
        global INT8_STEP
        INT8_STEP = output_step(model)
        print(f"int8: outputs must agree within one step ({INT8_STEP:.4g}) of ONNX Runtime's")
    engines = [e for e in a.engines.split(",") if e]
    threads_list = [int(t) for t in a.threads.split(",")]
    work = a.workdir or tempfile.mkdtemp(prefix="ghostc-compare-")
    os.makedirs(work, exist_ok=True)
    py = sys.executable
    me = os.path.abspath(__file__)

    # ---- input and reference ----
    import onnx
    m = onnx.load(model, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    gin = [i for i in m.graph.input if i.name not in inits][0]
    d0 = gin.type.tensor_type.shape.dim[0]
    if a.batch is not None and not (d0.HasField("dim_value") and d0.dim_value == a.batch):
        m = onnx.load(model)
        for vi in [i for i in m.graph.input if i.name not in inits] + list(m.graph.output):
            vi.type.tensor_type.shape.dim[0].Clear()
            vi.type.tensor_type.shape.dim[0].dim_value = a.batch
        del m.graph.value_info[:]
        model = os.path.join(work, f"model_b{a.batch}.onnx")
        onnx.save(m, model)
        gin = [i for i in m.graph.input if i.name not in inits][0]
        print(f"batch {a.batch}: rewrote input/output dim 0 -> {model}")
    shape = [d.dim_value if d.HasField("dim_value") else (a.batch or 1)
             for d in gin.type.tensor_type.shape.dim]
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    xin = os.path.join(work, "x.npy")
    np.save(xin, x)
    x.tofile(os.path.join(work, "x.f32"))
    macs = a.macs or count_macs(model, shape[0])
    load = open("/proc/loadavg").read().split()[:3]
    print(f"model: {model}\ninput: {gin.name} {shape}   MACs: "
          f"{macs / 1e6 if macs else float('nan'):.2f} M   cores: {os.cpu_count()}   "
          f"load: {' '.join(load)}   work: {work}")

    def wcmd(engine, threads, runs, out=None, extra=()):
        c = [py, me, model, "--worker", engine, "--input", xin, "--threads", str(threads),
             "--runs", str(runs), "--warmup", str(a.warmup)] + list(extra)
        if out:
            c += ["--out", out]
        return c

    ref_path = os.path.join(work, "ref.npy")
    sh(wcmd("ort", 1, 0, ref_path))
    ref = np.load(ref_path)

    # ---- build / prepare each engine; cmd(threads) -> argv that prints median/p10 ----
    runners = {}      # engine -> function(threads) -> argv
    status = {}       # engine -> text
    agree = {}
    ncnn_extra = ()

    def prep_ghostc():
        env = dict(os.environ)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ghostc-cli", "--manifest-path",
                        os.path.join(ROOT, "Cargo.toml")], check=True)
        tdir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        gen = os.path.join(work, "gen")
        if os.path.exists(gen):
            shutil.rmtree(gen)
        no_fuse = ["--no-fuse", a.no_fuse] if a.no_fuse else []
        sh([os.path.join(tdir, "release", "ghostc"), "compile", model, "--out", gen, "--name", "gen"]
           + no_fuse)
        env["CARGO_TARGET_DIR"] = os.path.join(work, "target-gen")
        subprocess.run(["cargo", "build", "--release", "-q", "--offline", "--manifest-path",
                        os.path.join(gen, "Cargo.toml")], check=True, env=env)
        binp = os.path.join(work, "target-gen", "release", "gen")
        out = os.path.join(work, "y_ghostc.npy")
        sh([binp, xin, out])
        # The multi-threaded runs must agree too (a batch is split by images, one image layer
        # by layer): checked here, reported as the ghostc@T rows of the agreement list.
        for t in threads_list:
            if t > 1:
                out_t = os.path.join(work, f"y_ghostc_t{t}.npy")
                sh([binp, "--threads", str(t), xin, out_t])
                ok, msg = check(f"ghostc@{t}", np.load(out_t), ref)
                agree[f"ghostc@{t}"] = "OK" if ok else "MISMATCH"
                print(msg)
        runners["ghostc"] = lambda t, r: [binp, "--threads", str(t), "--bench", str(r)]
        return np.load(out)

    def prep_ort():
        runners["ort"] = lambda t, r: wcmd("ort", t, r)
        return ref

    def prep_openvino():
        out = os.path.join(work, "y_openvino.npy")
        p = sh(wcmd("openvino", 1, 0, out, ["--verbose"]))
        print(p.stderr.strip())
        runners["openvino"] = lambda t, r: wcmd("openvino", t, r)
        return np.load(out)

    def prep_ncnn():
        nonlocal ncnn_extra
        d = os.path.join(work, "ncnn")
        os.makedirs(d, exist_ok=True)
        src = os.path.join(d, "model.onnx")
        shutil.copy(orig_model, src)  # converted at batch 1: ncnn runs a batch image by image
        pnnx = shutil.which("pnnx", path=os.path.dirname(py) + os.pathsep + os.environ["PATH"])
        inshape = "[" + ",".join(str(s) for s in [1] + shape[1:]) + "]"
        sh([pnnx, "model.onnx", f"inputshape={inshape}", "fp16=0"], cwd=d)
        ncnn_extra = ("--ncnn-param", os.path.join(d, "model.ncnn.param"),
                      "--ncnn-bin", os.path.join(d, "model.ncnn.bin"))
        out = os.path.join(work, "y_ncnn.npy")
        sh(wcmd("ncnn", 1, 0, out, ncnn_extra))
        runners["ncnn"] = lambda t, r: wcmd("ncnn", t, r, extra=ncnn_extra)
        return np.load(out)

    def prep_tract():
        binp = a.tract_bin
        if not binp:
            tdir = os.environ.get("TRACT_TARGET_DIR", "/work/target-tract")
            env = dict(os.environ, CARGO_TARGET_DIR=tdir)
            subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path",
                            os.path.join(ROOT, "bench", "tract", "Cargo.toml")], check=True, env=env)
            binp = os.path.join(tdir, "release", "tract-bench")
        out = os.path.join(work, "y_tract.f32")
        dims = ",".join(str(s) for s in shape)
        sh([binp, model, os.path.join(work, "x.f32"), out, dims])
        runners["tract"] = lambda t, r: [binp, model, os.path.join(work, "x.f32"),
                                         os.path.join(work, "y_tract_bench.f32"), dims,
                                         "--bench", str(r), "--warmup", str(a.warmup)]
        return np.fromfile(out, dtype=np.float32)

    preps = {"ghostc": prep_ghostc, "ort": prep_ort, "openvino": prep_openvino,
             "ncnn": prep_ncnn, "tract": prep_tract}
    rule = "one output step" if INT8_STEP is not None else "1e-4*max|ref| + 1e-5"
    print(f"\n== output agreement vs ONNX Runtime (max|y-ref| <= {rule}) ==")
    for e in engines:
        try:
            y = preps[e]()
            ok, msg = check(e, y, ref)
            agree[e] = "OK" if ok else "MISMATCH"
            print(msg)
        except Exception as ex:  # an engine that does not work is reported, not fatal
            err = getattr(ex, "stderr", "") or ""
            status[e] = f"unavailable: {type(ex).__name__}: {str(ex)[:200]} {err[-300:]}"
            print(f"{e:9s} {status[e]}")
            runners.pop(e, None)
    live = [e for e in engines if e in runners]

    # ---- timing: alternate engines, rotate the order each round ----
    results = {}  # (engine, threads) -> list of (median, p10)
    peaks = []  # per-core FMA peaks (MAC/s) reported by ghostc's runner
    for threads in threads_list:
        cpus = str(a.core) if threads == 1 else ",".join(str(c) for c in range(threads))
        print(f"\n== timing: {threads} thread(s), taskset -c {cpus}, {a.rounds} rounds x "
              f"{a.runs} runs ==")
        for r in range(a.rounds):
            order = live[r % len(live):] + live[:r % len(live)]
            line = []
            for e in order:
                if threads > 1 and e == "tract":
                    continue  # single-threaded engine: the 1-thread row stands for it
                p = subprocess.run(["taskset", "-c", cpus] + runners[e](threads, a.runs),
                                   text=True, capture_output=True)
                mm = LINE_RE.search(p.stdout)
                if p.returncode != 0 or not mm:
                    line.append(f"{e} FAILED")
                    print(p.stdout[-300:], p.stderr[-500:], file=sys.stderr)
                    continue
                med, p10 = float(mm.group(1)), float(mm.group(2))
                results.setdefault((e, threads), []).append((med, p10))
                pk = PEAK_RE.search(p.stdout)
                if pk:
                    peaks.append(float(pk.group(1)) * 1e9)
                line.append(f"{e} {med:.3f}")
            print(f"round {r + 1}: " + "  ".join(line) + " ms", flush=True)

    # ---- summary ----
    # The roofline: the per-core FMA peak ghostc's runner measured in this run (median).
    peak = statistics.median(peaks) if peaks else None
    load = open("/proc/loadavg").read().split()[:3]
    print(f"\n== summary (batch {shape[0]}, {time.strftime('%Y-%m-%d %H:%M')}, load average at end: "
          f"{' '.join(load)}) ==")
    rows = []
    verdicts = []
    for threads in threads_list:
        g = results.get(("ghostc", threads))
        g1med = statistics.median(m for m, _ in g) if g else None
        peers = [(statistics.median(m for m, _ in results[(e, threads)]), e)
                 for e in engines if e != "ghostc" and (e, threads) in results]
        if g1med and peers:
            best, be = min(peers)
            verdicts.append(f"{threads} thread(s): ghostc {g1med:.3f} ms, best peer {be} "
                            f"{best:.3f} ms: ghostc/best = {g1med / best:.3f}, throughput "
                            f"{best / g1med:.2f}x ({shape[0] / g1med * 1e3:.0f} vs "
                            f"{shape[0] / best * 1e3:.0f} img/s)")
        for e in engines:
            rs = results.get((e, threads))
            if not rs:
                if e in live and threads > 1 and e == "tract":
                    rows.append((e, threads, None, None, None, None, agree.get(e, "-"),
                                 "single-threaded: see 1-thread row"))
                elif e not in live:
                    rows.append((e, threads, None, None, None, None, "-", status.get(e, "")))
                continue
            med = statistics.median(m for m, _ in rs)
            p10 = statistics.median(p for _, p in rs)
            ratio = (g1med / med) if g1med else None
            roof = (macs / (med * 1e-3) / (peak * threads) * 100) if macs and peak else None
            ok = agree.get(e, "-") if e != "ghostc" or threads == 1 else agree.get(f"ghostc@{threads}", "-")
            rows.append((e, threads, med, p10, ratio, roof, ok,
                         f"{len(rs)} rounds, {shape[0] / med * 1e3:.0f} img/s"))
    hdr = ["engine", "threads", "median ms", "p10 ms", "ghostc/engine", "% roofline",
           "output", "notes"]
    fmt = lambda v, f: "-" if v is None else f.format(v)
    table = [[r[0], str(r[1]), fmt(r[2], "{:.3f}"), fmt(r[3], "{:.3f}"), fmt(r[4], "{:.3f}"),
              fmt(r[5], "{:.1f}"), r[6], r[7]] for r in rows]
    if a.markdown:
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        for t in table:
            print("| " + " | ".join(t) + " |")
    else:
        w = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(hdr)]
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
        for t in table:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(t)))
    print("ghostc/engine: ghostc's median at the same thread count over the engine's (< 1: ghostc "
          "faster). % roofline: MACs / latency vs the measured peak per core x threads ("
          + (f"{peak / 1e9:.1f} GMAC/s" if peak else "not measured: ghostc did not run") + ").")
    for v in verdicts:
        print(v)


if __name__ == "__main__":
    main()
