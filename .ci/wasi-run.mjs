// Cargo runner for wasm32-wasip1 test binaries on node >= 20 (its built-in WASI preview1):
//   CARGO_TARGET_WASM32_WASIP1_RUNNER="node .ci/wasi-run.mjs" cargo test --target wasm32-wasip1
// Passes the arguments and environment through, lets the binary read the current directory,
// and exits with the binary's status. Nothing is downloaded.
import { readFile } from "node:fs/promises";
import process from "node:process";
import { WASI } from "node:wasi";

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: "preview1",
  args: [file, ...args],
  env: process.env,
  preopens: { ".": process.cwd(), "/": "/" },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
