#!/usr/bin/env bash
# Builds the page's two WebAssembly modules into www/pkg/: digits_simd128.wasm (ghost-runtime's
# SIMD128 kernels) and digits_scalar.wasm (its scalar kernels). Needs the wasm32-unknown-unknown
# rustup target. GHOST_WEB_MODEL / GHOST_WEB_SHAPE (see build.rs) compile another model, and
# GHOST_WEB_NAME names its files (default digits).
set -euo pipefail
cd "$(dirname "$0")"
target="${CARGO_TARGET_DIR:-$PWD/target}"
name="${GHOST_WEB_NAME:-digits}"
mkdir -p www/pkg
for kernels in simd128 scalar; do
  flags=""
  # SIMD128 without the scalar kernels (ghost-runtime/src/isa.rs): a third less code.
  [ "$kernels" = simd128 ] && flags="-C target-feature=+simd128 --cfg ghost_runtime_simd_only"
  # One target dir: the flags only apply to the wasm target, so ghostc (a build dependency,
  # built for the host) is compiled once; the small wasm crates are rebuilt per variant.
  RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target" cargo build --release --quiet
  cp "$target/wasm32-unknown-unknown/release/digits_web.wasm" "www/pkg/${name}_$kernels.wasm"
done
ls -l www/pkg/${name}_*.wasm
