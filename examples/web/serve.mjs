// Static file server for www/ (no dependencies): `node serve.mjs [PORT]`, default 8000.
// Imported by the browser test too (`serve(port)` resolves to the listening server).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("./www/", import.meta.url));
const ort = fileURLToPath(new URL("./node_modules/onnxruntime-web/dist/", import.meta.url));
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".json": "application/json",
};

export function serve(port) {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const rel = normalize(path === "/" ? "/index.html" : path).replace(/^(\.\.[/\\])+/, "");
    // onnxruntime-web (npm) for the speed comparison of bench.html.
    const file = rel.startsWith("/ort/") ? join(ort, rel.slice(5)) : join(root, rel);
    try {
      const body = await readFile(file);
      res.writeHead(200, {
        "content-type": types[extname(file)] ?? "application/octet-stream",
        // Cross-origin isolation: performance.now() then resolves 5 us instead of 100 us.
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-embedder-policy": "require-corp",
      });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 8000);
  await serve(port);
  console.log(`serving ${root} at http://127.0.0.1:${port}/`);
}
