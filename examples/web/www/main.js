// The page's logic: loads the compiled model (pkg/digits_simd128.wasm, or digits_scalar.wasm
// with ?kernels=scalar), turns a drawn digit into the model's input, runs it, and runs the
// embedded test set. The module's exports are documented in ../src/lib.rs.

const MEAN = 0.3053833842277527; // examples/digits/data/meta.json: normalization
const STD = 0.32365167140960693;

const kernels = new URLSearchParams(location.search).get("kernels") === "scalar" ? "scalar" : "simd128";
const bytes = await (await fetch(`pkg/digits_${kernels}.wasm`)).arrayBuffer();
const { instance } = await WebAssembly.instantiate(bytes, {});
const wasm = instance.exports;

const $ = (id) => document.getElementById(id);
const text = () =>
  new TextDecoder().decode(new Uint8Array(wasm.memory.buffer, wasm.message_ptr(), wasm.message_len()));

/// Runs the model on `x` (any length); returns the logits, or throws the runtime's error text.
function infer(x) {
  if (x) {
    if (x.length > wasm.input_capacity()) throw new Error(`input of ${x.length} floats is larger than the buffer`);
    new Float32Array(wasm.memory.buffer, wasm.input_ptr(), x.length).set(x);
  }
  const len = x ? x.length : wasm.input_len();
  if (wasm.run(len) !== 0) throw new Error(text());
  return Float32Array.from(new Float32Array(wasm.memory.buffer, wasm.output_ptr(), wasm.output_len()));
}

const argmax = (v) => v.reduce((b, x, i) => (x > v[b] ? i : b), 0);
function softmax(v) {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

wasm.describe();
$("about").textContent = `This page runs ${kernels} kernels: ${text()}.`;

// --- Drawing -------------------------------------------------------------------------------
const pad = $("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
function clear() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  $("prediction").textContent = "";
  showBars(null);
}
clear();
ctx.lineWidth = 22;
ctx.lineCap = "round";
ctx.lineJoin = "round";
ctx.strokeStyle = "#fff";
let drawing = false;
const at = (e) => {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
};
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  const [x, y] = at(e);
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x, y);
  ctx.stroke();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const [x, y] = at(e);
  ctx.lineTo(x, y);
  ctx.stroke();
});
const finish = () => {
  if (!drawing) return;
  drawing = false;
  classifyDrawing();
};
pad.addEventListener("pointerup", finish);
pad.addEventListener("pointercancel", finish);
$("clear").addEventListener("click", clear);

/// Canvas -> model input the way the training data was made (UCI optdigits, then
/// tools/train_digits.py): the digit's bounding box scaled into a 32x32 bitmap, ink counted in
/// 4x4 blocks (8x8 values 0..16), divided by 16, bilinear 8x8 -> 32x32 (align_corners=False),
/// normalized with the training mean and std. Returns null for an empty canvas.
function preprocess() {
  const { data, width, height } = ctx.getImageData(0, 0, pad.width, pad.height);
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      if (data[(y * width + x) * 4] > 127) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
  if (x1 < 0) return null;
  const side = Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const small = document.createElement("canvas");
  small.width = small.height = 32;
  const s = small.getContext("2d", { willReadFrequently: true });
  s.fillStyle = "#000";
  s.fillRect(0, 0, 32, 32);
  const w = (32 * (x1 - x0 + 1)) / side, h = (32 * (y1 - y0 + 1)) / side;
  s.drawImage(pad, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (32 - w) / 2, (32 - h) / 2, w, h);
  const bits = s.getImageData(0, 0, 32, 32).data;
  const counts = new Float32Array(64);
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 32; x++) if (bits[(y * 32 + x) * 4] > 127) counts[(y >> 2) * 8 + (x >> 2)] += 1;
  const out = new Float32Array(32 * 32);
  const src = (d) => Math.max((d + 0.5) * (8 / 32) - 0.5, 0);
  for (let y = 0; y < 32; y++) {
    const fy = src(y), y0i = Math.floor(fy), y1i = Math.min(y0i + 1, 7), wy = fy - y0i;
    for (let x = 0; x < 32; x++) {
      const fx = src(x), x0i = Math.floor(fx), x1i = Math.min(x0i + 1, 7), wx = fx - x0i;
      const v = (r, c) => counts[r * 8 + c] / 16;
      const top = v(y0i, x0i) * (1 - wx) + v(y0i, x1i) * wx;
      const bottom = v(y1i, x0i) * (1 - wx) + v(y1i, x1i) * wx;
      out[y * 32 + x] = (top * (1 - wy) + bottom * wy - MEAN) / STD;
    }
  }
  return out;
}

function showBars(probs) {
  const bars = $("bars");
  bars.replaceChildren();
  const top = probs ? argmax(probs) : -1;
  for (let c = 0; c < 10; c++) {
    const p = probs ? probs[c] : 0;
    const label = document.createElement("span");
    label.textContent = c;
    const track = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = c === top ? "bar top" : "bar";
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    bar.dataset.digit = c;
    track.append(bar);
    const value = document.createElement("span");
    value.textContent = probs ? `${(100 * p).toFixed(1)} %` : "";
    bars.append(label, track, value);
  }
}
showBars(null);

function classifyDrawing() {
  const x = preprocess();
  if (!x) return;
  try {
    const logits = infer(x);
    $("prediction").textContent = argmax(logits);
    showBars(softmax(Array.from(logits)));
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = e.message;
  }
}

$("bad").addEventListener("click", () => {
  try {
    infer(new Float32Array(wasm.input_len() - 24));
    $("error").textContent = "unexpected: the wrong-length input ran";
  } catch (e) {
    $("error").textContent = `error: ${e.message}`;
  }
});

// --- Test set ------------------------------------------------------------------------------
$("testset").addEventListener("click", () => {
  const n = wasm.test_count();
  let correct = 0, agree = 0;
  const times = [];
  const rows = ["<tr><th>image</th><th>label</th><th>predicted</th><th>PyTorch</th><th>ms</th></tr>"];
  try {
    for (let i = 0; i < n; i++) {
      wasm.load_test_image(i);
      const t0 = performance.now();
      const logits = infer(null);
      const ms = performance.now() - t0;
      times.push(ms);
      const pred = argmax(logits), label = wasm.test_label(i), torch = wasm.test_torch_pred(i);
      correct += pred === label;
      agree += pred === torch;
      rows.push(`<tr><td>${i}</td><td>${label}</td><td>${pred}</td><td>${torch}</td><td>${ms.toFixed(3)}</td></tr>`);
    }
  } catch (e) {
    $("error").textContent = e.message;
    return;
  }
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  $("summary").textContent =
    `accuracy ${correct}/${n} (${((100 * correct) / n).toFixed(2)} %), ` +
    `agreement with PyTorch ${agree}/${n}, latency per image: median ${q(0.5).toFixed(3)} ms, ` +
    `p10 ${q(0.1).toFixed(3)} ms (${kernels})`;
  $("summary").dataset.correct = correct;
  $("summary").dataset.agree = agree;
  $("summary").dataset.total = n;
  $("per-image").innerHTML = rows.join("");
});
document.body.dataset.ready = "1";
