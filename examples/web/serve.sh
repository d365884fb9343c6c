#!/usr/bin/env bash
# Builds the page's WebAssembly modules and serves the page at http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh
exec node serve.mjs "${1:-8000}"
