#!/usr/bin/env bash
# Builds the Cortex-M firmware, runs it under QEMU (mps2-an386, Cortex-M4F) and checks that every
# prediction equals PyTorch's; then prints the flash/RAM table of the linked ELF.
# Needs: rustup target thumbv7em-none-eabihf, qemu-system-arm (Debian package), python3.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet
elf="${CARGO_TARGET_DIR:-target}/thumbv7em-none-eabihf/release/digits-cortex-m"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
timeout 300 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic -monitor none \
  -serial none -semihosting-config enable=on,target=native -kernel "$elf" >"$log" || status=$?
head -n 3 "$log"; echo "..."; tail -n 5 "$log"
images=$(grep -c '^image ' "$log" || true)
mismatch=$(grep '^image ' "$log" | awk '$4 != $6' | wc -l)
if [ "$status" -ne 0 ] || [ "$images" -ne 360 ] || [ "$mismatch" -ne 0 ] \
  || ! grep -qx "agreement with PyTorch 360/360" "$log"; then
  echo "error: cortex-m: exit $status, $images images, $mismatch predictions differ from PyTorch" >&2
  exit 1
fi
stack=$(sed -n 's/^stack high-water mark \([0-9]*\) bytes$/\1/p' "$log")
python3 memory_report.py "$elf" "$stack"
