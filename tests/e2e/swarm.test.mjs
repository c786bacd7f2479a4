// The product working end to end: one seeder shares a random 64 MiB file from /upload, three
// leechers open the link in their own browser contexts and download it over real WebRTC data
// channels on 127.0.0.1, verifying every piece. Each saved file must have the seeder's
// SHA-256, and each leecher must have received data from more than one peer.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, waitHydrated, share, peerPage as harnessPeerPage, waitPhase, saveDownload } from "./harness.mjs";

const SIZE = 64 * 1024 * 1024;
let server, browser, dir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), "meshdrop-swarm-"));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every page keeps the data channels it opens, so the test can check how they were opened. */
const RECORD_CHANNELS = `
  window.__channels = [];
  const create = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (...args) {
    const channel = create.apply(this, args);
    window.__channels.push(channel);
    return channel;
  };
`;

const peerPage = async () => {
  const p = await harnessPeerPage(browser, server.base);
  await p.context.addInitScript(RECORD_CHANNELS);
  return p;
};

/** How the page's open data channels were opened (one that never opened was replaced). */
function channels(page) {
  return page.evaluate(() =>
    window.__channels.filter((c) => c?.readyState === "open").map((c) => ({
      binaryType: c.binaryType,
      ordered: c.ordered,
      maxRetransmits: c.maxRetransmits,
      maxPacketLifeTime: c.maxPacketLifeTime,
    })),
  );
}

/** Waits for the transfer to finish; on timeout the panel's text explains what it was doing. */
const waitDone = (page, timeout) => waitPhase(page, "done", timeout);

/** Clicks the page's Save link and stores the download as `name` in the test's folder. */
const save = (page, name) => saveDownload(page, join(dir, name));

function sha256(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

test("1 seeder and 3 leechers: byte-identical files, each from several peers", { timeout: 300_000 }, async () => {
  const file = join(dir, "random.bin");
  writeFileSync(file, randomBytes(SIZE));
  const expected = sha256(file);

  const seeder = await peerPage();
  const workers = [];
  seeder.page.on("worker", (w) => workers.push(w.url()));
  await seeder.page.goto(`${server.base}/upload`);
  await waitHydrated(seeder.page);
  await seeder.page.setInputFiles('[data-testid="file-input"]', file);
  const link = await seeder.page
    .locator('[data-testid="share-link"]')
    .inputValue({ timeout: 60_000 });
  assert.match(link, /\/room\/[A-Za-z0-9_-]{22}$/);
  assert.ok(workers.some((u) => u.includes("hash-worker")), `hashed off the main thread: ${workers}`);
  await seeder.page.waitForSelector('[data-phase="seeding"]');

  const leechers = [];
  for (let i = 0; i < 3; i++) {
    const l = await peerPage();
    await l.page.goto(link);
    await waitHydrated(l.page);
    leechers.push(l);
  }

  const started = Date.now();
  const results = await Promise.all(
    leechers.map(async (l, i) => {
      await waitDone(l.page, 240_000);
      const sources = await l.page.$$eval('[data-testid="peer"]', (rows) =>
        rows.map((r) => Number(r.dataset.received)).filter((n) => n > 0).length,
      );
      const saved = await save(l.page, `leecher-${i}.bin`);
      return { hash: sha256(saved), sources, errors: l.errors };
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  console.log(`3 leechers × 64 MiB in ${seconds.toFixed(1)} s`);
  for (const [i, r] of results.entries()) {
    assert.equal(r.hash, expected, `leecher ${i} saved a different file`);
    assert.ok(r.sources > 1, `leecher ${i} received from ${r.sources} peer(s)`);
    assert.deepEqual(r.errors, [], `leecher ${i} page errors`);
  }
  assert.deepEqual(seeder.errors, []);
  // Binary, ordered, reliable channels, one per peer; the seeder's send buffer never held
  // more than its high-water mark (8 MiB, far from Chromium's 16 MiB) right after a send.
  const seen = await channels(seeder.page);
  assert.equal(seen.length, 3, `one open channel per leecher: ${JSON.stringify(seen)}`);
  for (const c of seen) {
    assert.deepEqual(c, { binaryType: "arraybuffer", ordered: true, maxRetransmits: null, maxPacketLifeTime: null });
  }
  const peak = Number(await seeder.page.locator('[data-testid="transfer"]').getAttribute("data-channel-peak"));
  assert.ok(peak > 0, "the seeder's channels buffered data");
  assert.ok(peak <= 8 * 1024 * 1024, `the shell saw ${peak} bytes buffered`);

  // Re-seeding: the seeder leaves; a late leecher completes from the three leechers alone.
  // One of them now serves corrupted blocks (test-only switch): the late leecher must
  // detect it, ban it, and still save the right bytes.
  await seeder.context.close();
  const corrupt = leechers[0];
  await corrupt.page.goto(`${link}#corrupt`);
  await corrupt.page.reload(); // a fragment change alone does not reload the page
  await waitHydrated(corrupt.page);
  await waitDone(corrupt.page, 120_000);
  const late = await peerPage();
  await late.page.goto(link);
  await waitHydrated(late.page);
  await waitDone(late.page, 120_000);
  const saved = await save(late.page, "late.bin");
  assert.equal(sha256(saved), expected, "the late leecher saved a different file");
  const log = await late.page.$$eval('[data-testid="log"] li', (items) => items.map((i) => i.textContent));
  assert.ok(
    log.some((line) => line.includes("banned peer")),
    `the corrupting peer was not banned; log: ${log.join(" | ")}`,
  );
});

test("backpressure: a full send buffer pauses the channel and bufferedamountlow resumes it", { timeout: 180_000 }, async () => {
  // The seeder's channels pause at 512 KiB here (test-only `#smallbuffer`; normally 8 MiB,
  // which the receivers' requests never fill), so every block goes through the pause and
  // resume path: queued while the channel is full, sent after `bufferedamountlow`.
  const file = join(dir, "backpressure.bin");
  writeFileSync(file, randomBytes(24 * 1024 * 1024));
  const expected = sha256(file);
  const seeder = await peerPage();
  await seeder.page.goto(`${server.base}/upload#smallbuffer`);
  await waitHydrated(seeder.page);
  await seeder.page.setInputFiles('[data-testid="file-input"]', file);
  const link = await seeder.page.locator('[data-testid="share-link"]').inputValue({ timeout: 60_000 });
  const leecher = await peerPage();
  await leecher.page.goto(link);
  await waitHydrated(leecher.page);
  await waitDone(leecher.page, 120_000);
  const saved = await save(leecher.page, "backpressure-saved.bin");
  assert.equal(sha256(saved), expected, "queued frames were lost or reordered");

  const panel = seeder.page.locator('[data-testid="transfer"]');
  const count = async (name) => Number(await panel.getAttribute(`data-channel-${name}`));
  const [pauses, resumes, peak] = [await count("pauses"), await count("resumes"), await count("peak")];
  console.log(`backpressure: ${pauses} pauses, ${resumes} resumes, peak ${peak} bytes buffered`);
  assert.ok(pauses >= 10, `the channel paused only ${pauses} times`);
  // One channel: every pause but possibly the last was followed by a resume.
  assert.ok(resumes >= pauses - 1, `${pauses} pauses but ${resumes} resumes`);
  assert.ok(peak > 256 * 1024 && peak <= 512 * 1024, `the shell saw ${peak} bytes buffered`);
  const wasted = Number(await leecher.page.locator('[data-testid="transfer"]').getAttribute("data-wasted"));
  assert.equal(wasted, 0, "no block was received twice");
  assert.deepEqual(seeder.errors, []);
  assert.deepEqual(leecher.errors, []);
  await seeder.context.close();
  await leecher.context.close();
});

test("after a server restart the seeder reconnects, and a newcomer still downloads from it", { timeout: 180_000 }, async () => {
  const file = join(dir, "restart.bin");
  writeFileSync(file, randomBytes(8 * 1024 * 1024));
  const expected = sha256(file);
  const seeder = await peerPage();
  const link = await share(seeder.page, server.base, file);

  // A deploy: the server is down for two seconds, then back on the same port and data.
  await server.restart(2_000);
  // The seeder saw its socket close, asked for a fresh ticket until the server answered,
  // and is in the room again, still seeding.
  await seeder.page
    .locator('[data-testid="log"] li', { hasText: "reconnected to the server" })
    .waitFor({ state: "attached", timeout: 60_000 });
  await seeder.page.waitForSelector('[data-phase="seeding"]');

  const leecher = await peerPage();
  await leecher.page.goto(link);
  await waitHydrated(leecher.page);
  await waitDone(leecher.page, 120_000);
  const saved = await save(leecher.page, "restart-saved.bin");
  assert.equal(sha256(saved), expected);
  // While the server was down the seeder's requests failed: those errors, and only those.
  const unexpected = seeder.errors.filter(
    (e) => !/ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|Failed to load resource/.test(e),
  );
  assert.deepEqual(unexpected, []);
  assert.deepEqual(leecher.errors, []);
  await seeder.context.close();
  await leecher.context.close();
});

// Tickets last 24 hours; this server's last 4 s (MESHDROP_TICKET_TTL_SECS). Each tab sends
// the hub a fresh ticket before its socket's expires (after three quarters of it), so the
// socket, the peer id and the peer connections stay: newcomers find the seeder long after
// its first ticket expired, and nobody reconnects.
test("a tab renews its ticket before it expires and stays in the room with the same connections", { timeout: 180_000 }, async () => {
  const short = await startServer({ MESHDROP_TICKET_TTL_SECS: "4" });
  const pages = [];
  try {
    const open = async () => {
      const p = await harnessPeerPage(browser, short.base);
      pages.push(p);
      return p;
    };
    const renewed = (page, atLeast) =>
      page.waitForFunction((n) => Number(document.querySelector('[data-testid="transfer"]')?.dataset.renewed) >= n, atLeast, {
        timeout: 60_000,
      });
    const logText = (page) => page.locator('[data-testid="transfer"]').evaluate((el) => el.textContent);
    const file = join(dir, "renew.bin");
    writeFileSync(file, randomBytes(8 * 1024 * 1024));
    const seeder = await open();
    const link = await share(seeder.page, short.base, file);
    // Three renewals: past the first ticket's expiry twice over.
    await renewed(seeder.page, 3);

    const leecher = await open();
    await leecher.page.goto(link);
    await waitHydrated(leecher.page);
    await waitDone(leecher.page, 120_000);
    assert.equal(sha256(await save(leecher.page, "renew-saved.bin")), sha256(file));
    await renewed(leecher.page, 2);
    const late = await open();
    await late.page.goto(link);
    await waitHydrated(late.page);
    await waitDone(late.page, 120_000);
    assert.equal(sha256(await save(late.page, "renew-late.bin")), sha256(file));
    await renewed(seeder.page, 6);
    for (const p of [seeder, leecher, late]) {
      const log = await logText(p.page);
      assert.doesNotMatch(log, /ticket expired|reconnect/, log);
    }
    for (const p of pages) assert.deepEqual(p.errors, []);
  } finally {
    for (const p of pages) await p.context.close();
    await short.stop();
  }
});

test("a shared file changed on disk stops the sharer with the reason, instead of failing every request", { timeout: 120_000 }, async () => {
  const file = join(dir, "changing.bin");
  writeFileSync(file, randomBytes(4 * 1024 * 1024));
  const seeder = await peerPage();
  const link = await share(seeder.page, server.base, file);
  // Edited after it was hashed: the browser refuses to read the changed file.
  writeFileSync(file, randomBytes(4 * 1024 * 1024));
  const leecher = await peerPage();
  await leecher.page.goto(link);
  await seeder.page.waitForSelector('[data-phase="stopped"]', { timeout: 60_000 });
  const phase = await seeder.page.locator('[data-testid="transfer"]').innerText();
  assert.match(phase, /could not read changing\.bin .*changed, moved or deleted/s, phase);
  // The receiver is not fooled: it has no other source, so it cannot be done.
  assert.notEqual(await leecher.page.locator('[data-testid="phase"]').getAttribute("data-phase"), "done");
  assert.deepEqual(leecher.errors, []);
  await seeder.context.close();
  await leecher.context.close();
});
