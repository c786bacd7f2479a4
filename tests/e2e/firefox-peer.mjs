// A Firefox ESR peer for the network lab, run inside a peer's network namespace:
//
//   ip netns exec md-LAB-pI node tests/e2e/firefox-peer.mjs <room link> <timeout ms>
//
// puppeteer-core drives Debian's firefox-esr over WebDriver BiDi through a WebSocket on the
// namespace's own loopback, which is why this runs inside the namespace rather than in the
// test process. It opens the link, waits until the download is done, and prints one JSON
// line: the SHA-256 of the bytes its Save link hands the person (Firefox has no save picker,
// so that is a Blob from OPFS or memory), the seconds it took, and the page's errors.
import puppeteer from "puppeteer-core";

const [link, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg || 120_000);
const origin = new URL(link).origin;

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
  headless: true,
  extraPrefsFirefox: {
    // The lab's origin is plain http on a private address: treat it as secure, as https
    // would be, so OPFS and SubtleCrypto exist.
    "dom.securecontext.allowlist": new URL(link).hostname,
    // Real host candidates instead of mDNS names, as a page granted the microphone gets.
    "media.peerconnection.ice.obfuscate_host_addresses": false,
    "permissions.default.microphone": 1,
    "permissions.default.camera": 1,
  },
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(String(e.message || e)));
  const started = Date.now();
  await page.goto(link);
  await page.waitForSelector('[data-hydrated="true"]', { timeout: 30_000 });
  await page.waitForSelector('[data-phase="done"]', { timeout }).catch(async (e) => {
    const panel = await page.$eval('[data-testid="transfer"]', (el) => el.textContent).catch(() => "(no panel)");
    throw new Error(`${e.message}\npanel: ${panel}`);
  });
  const seconds = (Date.now() - started) / 1000;
  // What the Save link would save: fetch its object URL and hash it in the page.
  const sha256 = await page.$eval('[data-testid="save"]', async (a) => {
    const bytes = await (await fetch(a.href)).arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  });
  console.log(JSON.stringify({ sha256, seconds, errors, origin }));
} finally {
  await browser.close();
}
