// Debian's headless Chromium through puppeteer-core (no browser download), with a fresh
// profile and no background traffic. `CHROMIUM` overrides /usr/bin/chromium.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

/// Returns { browser, close }; `close()` also deletes the profile.
export async function launchChromium() {
  const profile = await mkdtemp(join(tmpdir(), "ghostc-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const close = async () => {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  };
  return { browser, close };
}
