// Runs bench.html in Debian's headless Chromium and prints the speed table (markdown) and the
// wasm sizes. Needs `npm ci`, the model (`bench/make_ghostnet.py www/bench/ghostnet_050.onnx`)
// and its modules (`GHOST_WEB_MODEL=$PWD/www/bench/ghostnet_050.onnx GHOST_WEB_NAME=ghostnet
// ./build.sh`). usage: node bench/run.mjs [RUNS]
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { serve } from "../serve.mjs";
import { launchChromium } from "../test/chromium.mjs";

const runs = Number(process.argv[2] ?? 30);

/// Bytes per section kind of a wasm module.
function sections(file) {
  const b = readFileSync(new URL(`../${file}`, import.meta.url));
  const names = { 1: "type", 2: "import", 3: "function", 5: "memory", 6: "global", 7: "export", 10: "code", 11: "data" };
  const out = { total: b.length };
  let p = 8;
  const leb = () => {
    let v = 0, shift = 0, byte;
    do { byte = b[p++]; v += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
    return v;
  };
  while (p < b.length) {
    const id = b[p++];
    const len = leb();
    const key = names[id] ?? (id === 0 ? "custom" : `section ${id}`);
    out[key] = (out[key] ?? 0) + len;
    p += len;
  }
  return out;
}

const server = await serve(0);
const { browser, close } = await launchChromium();
let result;
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`page: ${m.text()}`));
  await page.goto(`http://127.0.0.1:${server.address().port}/bench.html?runs=${runs}`);
  await page.waitForFunction(() => window.benchResult, { timeout: 20 * 60 * 1000, polling: 1000 });
  result = await page.evaluate(() => window.benchResult);
} finally {
  await close();
  server.close();
}
if (result.error) {
  console.error(`error: ${result.error}`);
  process.exit(1);
}
const [simd, scalar, ortWeb] = result.engines;
console.log(`${result.userAgent}; crossOriginIsolated ${result.crossOriginIsolated}; load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log(`${runs} alternating runs per engine, batch 1, 1 thread; max |ghostc - ORT| simd128 ${result.maxAbsDiffVsOrt.simd128.toExponential(2)}, scalar ${result.maxAbsDiffVsOrt.scalar.toExponential(2)} (max |logit| ${result.scale.toFixed(3)})\n`);
console.log("| engine | median ms | p10 ms | vs ghostc SIMD128 |");
console.log("|---|---:|---:|---:|");
for (const e of result.engines) {
  console.log(`| ${e.name} | ${e.median.toFixed(2)} | ${e.p10.toFixed(2)} | ${(e.median / simd.median).toFixed(2)}x |`);
}
console.log(`\nSIMD128 speed-up over scalar: ${(scalar.median / simd.median).toFixed(2)}x (target >= 2.5x)`);
console.log(`ghostc SIMD128 / onnxruntime-web latency: ${(simd.median / ortWeb.median).toFixed(2)} (target <= 0.6)`);
const weights = Number(/(\d+) weight bytes/.exec(simd.about)?.[1] ?? 0);
for (const k of ["simd128", "scalar"]) {
  const s = sections(`www/pkg/ghostnet_${k}.wasm`);
  console.log(`ghostnet_${k}.wasm: ${s.total} bytes; code section ${s.code}, data section ${s.data} (weights ${weights}), without weights ${s.total - weights}`);
}
const ortWasm = sections("node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm");
console.log(`onnxruntime-web's ort-wasm-simd-threaded.wasm: ${ortWasm.total} bytes; code section ${ortWasm.code}`);
