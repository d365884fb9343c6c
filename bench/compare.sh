#!/usr/bin/env bash
# Side-by-side latency of ghostc-generated code and ONNX Runtime on the same ONNX file,
# single-threaded, pinned to one core, alternating engines for ROUNDS rounds; prints each
# round's medians and the median of the per-round ratios.
#
# Usage: bench/compare.sh MODEL.onnx [ROUNDS] [RUNS]
# Needs: a Python with onnxruntime (PYTHON, default /work/pyenv/bin/python; see
# tools/requirements.txt), taskset. The multi-engine harness (OpenVINO, ncnn, tract, 2 threads,
# batch 8, output checks) is bench/compare.py; see bench/README.md.
set -euo pipefail
model=${1:?usage: bench/compare.sh MODEL.onnx [ROUNDS] [RUNS]}
rounds=${2:-5}
runs=${3:-200}
python=${PYTHON:-/work/pyenv/bin/python}
core=${CORE:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release -q -p ghostc-cli --manifest-path "$root/Cargo.toml"
ghostc="${CARGO_TARGET_DIR:-$root/target}/release/ghostc"
"$ghostc" compile "$model" --out "$work/gen" --name gen
CARGO_TARGET_DIR="$work/target" cargo build --release -q --offline --manifest-path "$work/gen/Cargo.toml"
bin="$work/target/release/gen"

echo "model: $model  ($(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg))"
ratios=()
for r in $(seq "$rounds"); do
  g=$(taskset -c "$core" "$bin" --bench "$runs" | sed -E 's/.*median ([0-9.]+) ms.*/\1/')
  o=$(taskset -c "$core" "$python" "$root/bench/ort_bench.py" "$model" --threads 1 --runs "$runs" | sed -E 's/.*median ([0-9.]+) ms.*/\1/')
  ratio=$(awk -v a="$g" -v b="$o" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  echo "round $r: ghostc $g ms   onnxruntime $o ms   ratio $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median ratio ghostc / onnxruntime (1 thread): $median"
