#!/usr/bin/env bash
# ghost-runtime checks: host tests (all ISAs the CPU has), cross builds, aarch64 tests under
# qemu, Miri on the scalar path, fmt and clippy. Run from anywhere; needs the targets
# (rustup target add aarch64-unknown-linux-gnu thumbv7em-none-eabihf wasm32-unknown-unknown)
# and for the qemu step: apt-get install -y qemu-user gcc-aarch64-linux-gnu.
# Steps can be picked: ci.sh host cross qemu miri lint (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-rt}"
steps="${*:-host cross qemu miri lint}"
for step in $steps; do
  case "$step" in
    host)
      # Fail rather than skip if this machine should have AVX-512 (set GHOST_REQUIRE_ISA).
      cargo test -p ghost-runtime --release
      # Kernels::new() on AVX2 too (the per-family tests compare every path the CPU has).
      GHOST_FORCE_ISA=avx2 cargo test -p ghost-runtime --release --tests ;;
    cross)
      for t in thumbv7em-none-eabihf wasm32-unknown-unknown aarch64-unknown-linux-gnu; do
        cargo build -p ghost-runtime --no-default-features --target "$t"
      done ;;
    qemu)
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
      GHOST_REQUIRE_ISA=neon \
        cargo test -p ghost-runtime --release --target aarch64-unknown-linux-gnu --tests ;;
    miri)
      # Miri forces the scalar path (cfg(miri)); small test sizes keep it to a few minutes.
      MIRIFLAGS="-Zmiri-strict-provenance" GHOST_MIRI=1 \
        cargo +nightly miri test -p ghost-runtime --no-default-features --lib --tests ;;
    lint)
      cargo fmt -p ghost-runtime --check
      cargo clippy -p ghost-runtime --all-targets -- -D warnings
      cargo clippy -p ghost-runtime --no-default-features --target thumbv7em-none-eabihf -- -D warnings ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
