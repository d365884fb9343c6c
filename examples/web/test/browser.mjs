// Browser test of the digits page in Debian's headless Chromium (puppeteer-core, no browser
// download): draws digits with the mouse on the canvas and checks the predicted class, runs the
// embedded test set and checks the accuracy and the agreement with PyTorch that the page
// reports, checks that a wrong-length input shows the runtime's length error as text, for both
// the SIMD128 and the scalar module. Saves a screenshot outside the repository
// ($GHOST_WEB_SCREENSHOT, default $TMPDIR/ghostc-web.png). Needs `./build.sh` first.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "../serve.mjs";
import { launchChromium } from "./chromium.mjs";

const screenshot = process.env.GHOST_WEB_SCREENSHOT ?? join(tmpdir(), "ghostc-web.png");
let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
};

// Strokes on the 280x280 canvas, in canvas pixels: each digit is a list of polylines.
const ellipse = (cx, cy, rx, ry) =>
  Array.from({ length: 41 }, (_, i) => [cx + rx * Math.sin((i * Math.PI) / 20), cy - ry * Math.cos((i * Math.PI) / 20)]);
const DIGITS = {
  0: [ellipse(140, 140, 70, 105)],
  1: [[[150, 30], [150, 250]], [[150, 30], [110, 75]]],
  // UCI 7s are narrow, with a crossbar.
  7: [[[90, 40], [200, 40], [170, 140], [120, 250]], [[110, 145], [210, 145]]],
  4: [[[150, 30], [60, 170], [220, 170]], [[170, 90], [170, 260]]],
};

const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}/`;
const { browser, close } = await launchChromium();
try {
  for (const kernels of (process.env.KERNELS ?? "simd128,scalar").split(",")) {
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 900 });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${base}?kernels=${kernels}`);
    await page.waitForSelector("body[data-ready='1']", { timeout: 30000 });
    const about = await page.$eval("#about", (e) => e.textContent);
    check(about.includes(`kernels ${kernels}`), `${kernels}: page loaded (${about})`);

    const box = await (await page.$("#pad")).boundingBox();
    for (const [digit, strokes] of Object.entries(DIGITS)) {
      await page.click("#clear");
      for (const line of strokes) {
        const pt = ([x, y]) => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280];
        await page.mouse.move(...pt(line[0]));
        await page.mouse.down();
        for (let i = 1; i < line.length; i++) await page.mouse.move(...pt(line[i]), { steps: 8 });
        await page.mouse.up();
      }
      const shown = await page.$eval("#prediction", (e) => e.textContent);
      const bars = await page.$$eval("#bars .bar", (bs) => bs.map((b) => parseFloat(b.style.width)));
      check(shown === digit, `${kernels}: drawn ${digit}, page predicts ${shown} (bar ${bars[Number(shown)]} %)`);
      check(Math.abs(bars.reduce((a, b) => a + b, 0) - 100) < 0.5, `${kernels}: ten probability bars sum to 100 %`);
    }

    await page.click("#bad");
    const error = await page.$eval("#error", (e) => e.textContent);
    check(/input/.test(error) && /1024/.test(error) && /1000/.test(error), `${kernels}: wrong-length input shows "${error}"`);

    await page.click("#testset");
    await page.waitForFunction(() => document.querySelector("#summary").dataset.total, { timeout: 120000 });
    const s = await page.$eval("#summary", (e) => ({ ...e.dataset, text: e.textContent }));
    console.log(`     ${kernels}: ${s.text}`);
    check(Number(s.total) === 360 && s.agree === s.total, `${kernels}: all ${s.total} predictions equal PyTorch's`);
    check(Number(s.correct) === 357, `${kernels}: accuracy ${s.correct}/${s.total} (PyTorch: 357/360)`);
    check(errors.length === 0, `${kernels}: no page errors ${errors.join("; ")}`);
    if (kernels === "simd128") {
      await page.screenshot({ path: screenshot, fullPage: true });
      console.log(`     screenshot: ${screenshot}`);
    }
    await page.close();
  }
} finally {
  await close();
  server.close();
}
if (failures) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
