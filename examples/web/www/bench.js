// Speed comparison for bench.html (see there). Publishes the result as `window.benchResult`
// for bench/run.mjs.
import * as ort from "/ort/ort.wasm.min.mjs";

const runs = Number(new URLSearchParams(location.search).get("runs") ?? 30);
const status = (t) => (document.getElementById("status").textContent = t);

async function ghostc(kernels) {
  const bytes = await (await fetch(`pkg/ghostnet_${kernels}.wasm`)).arrayBuffer();
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const w = instance.exports;
  const text = () => new TextDecoder().decode(new Uint8Array(w.memory.buffer, w.message_ptr(), w.message_len()));
  w.describe();
  const about = text();
  return {
    name: `ghostc ${kernels}`,
    about,
    run: async (x) => {
      new Float32Array(w.memory.buffer, w.input_ptr(), x.length).set(x);
      if (w.run(x.length) !== 0) throw new Error(text());
      return Float32Array.from(new Float32Array(w.memory.buffer, w.output_ptr(), w.output_len()));
    },
  };
}

async function onnxruntime() {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.simd = true;
  ort.env.wasm.wasmPaths = "/ort/";
  const session = await ort.InferenceSession.create("bench/ghostnet_050.onnx", {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  return {
    name: "onnxruntime-web",
    about: `onnxruntime-web ${ort.env.versions?.web ?? ""}, wasm, 1 thread`,
    run: async (x) => {
      const out = await session.run({ input: new ort.Tensor("float32", x, [1, 3, 224, 224]) });
      return out.logits.data;
    },
  };
}

try {
  const engines = [await ghostc("simd128"), await ghostc("scalar"), await onnxruntime()];
  // A fixed pseudo-random input in [-1, 1).
  const x = new Float32Array(3 * 224 * 224);
  let seed = 12345;
  for (let i = 0; i < x.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    x[i] = seed / 2 ** 31 - 1;
  }
  const outputs = [];
  for (const e of engines) outputs.push(await e.run(x)); // also the warm-up
  for (const e of engines) await e.run(x);
  const ref = outputs[2];
  const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const diffs = outputs.slice(0, 2).map((o) => o.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i])), 0));
  // The project tolerance against ONNX Runtime (README: How it is checked).
  if (diffs.some((d) => !(d <= 1e-4 * scale + 1e-5))) {
    throw new Error(`ghostc differs from onnxruntime-web: max abs ${diffs.join(", ")} (max |logit| ${scale})`);
  }
  const times = engines.map(() => []);
  for (let r = 0; r < runs; r++) {
    status(`run ${r + 1}/${runs}`);
    for (let i = 0; i < engines.length; i++) {
      const t0 = performance.now();
      await engines[i].run(x);
      times[i].push(performance.now() - t0);
    }
  }
  const stats = times.map((t) => {
    const s = [...t].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)], p10: s[Math.floor(s.length / 10)] };
  });
  const result = {
    runs,
    crossOriginIsolated,
    userAgent: navigator.userAgent,
    scale,
    maxAbsDiffVsOrt: { simd128: diffs[0], scalar: diffs[1] },
    engines: engines.map((e, i) => ({ name: e.name, about: e.about, ...stats[i] })),
  };
  document.getElementById("results").innerHTML =
    "<tr><th>engine</th><th>median ms</th><th>p10 ms</th></tr>" +
    result.engines.map((e) => `<tr><td>${e.name}</td><td>${e.median.toFixed(2)}</td><td>${e.p10.toFixed(2)}</td></tr>`).join("");
  status(`done: ${runs} alternating runs; max |ghostc - ORT| ${diffs.map((d) => d.toExponential(1)).join(" / ")} (max |logit| ${scale.toFixed(2)})`);
  window.benchResult = result;
} catch (e) {
  status(`error: ${e.message}`);
  window.benchResult = { error: e.message };
}
