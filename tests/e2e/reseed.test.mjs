// A finished download keeps sharing. When a receiver's selection completes, its storage
// worker closes the files so the browser can hand them over for saving; block requests from
// other peers keep arriving meanwhile. This test makes that race happen every time: the
// receiver's request to close its files is held back (in the page, before it reaches the
// worker) until a request to read a block has been sent, and then both go, close first.
// The finished tab must serve that block and every later one, so that newcomers complete
// from finished receivers alone once the sharer has left.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, waitHydrated, share, peerPage, panelText as panel, waitPhase, saveDownload } from "./harness.mjs";

const MIB = 1024 * 1024;
let server, browser, dir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), "meshdrop-reseed-"));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Runs in the page before its scripts: the storage worker's `finish` (close the files) is
 *  held until the page posts a `read`, then posted just ahead of it, so the worker meets a
 *  read of a file it has just closed. Counts what it did in `window.__close`. After 90 s
 *  without a read the close goes alone (and the test, finding no read behind it, fails). */
function holdCloseUntilRead() {
  window.__close = { held: 0, readsBehind: 0, timedOut: 0 };
  let held = null;
  const post = Worker.prototype.postMessage;
  const release = () => {
    const [worker, args] = held;
    held = null;
    post.apply(worker, args);
  };
  Worker.prototype.postMessage = function (message, ...rest) {
    if (message?.op === "finish" && !held) {
      held = [this, [message, ...rest]];
      window.__close.held++;
      const mine = held;
      setTimeout(() => {
        if (held === mine) {
          window.__close.timedOut++;
          release();
        }
      }, 90_000);
      return;
    }
    if (message?.op === "read" && held) {
      release();
      window.__close.readsBehind++;
    }
    return post.call(this, message, ...rest);
  };
}

async function phase(page) {
  return page.locator('[data-testid="phase"]').getAttribute("data-phase");
}

const save = (page, name) => saveDownload(page, join(dir, name));

/** How many peers this page received data from. */
function sources(page) {
  return page.$$eval('[data-testid="peer"]', (rows) => rows.filter((r) => Number(r.dataset.received) > 0).length);
}

test("a finished tab serves the blocks asked for while its files close, and newcomers complete from finished tabs alone", { timeout: 300_000 }, async () => {
  const file = join(dir, "reseed.bin");
  writeFileSync(file, randomBytes(16 * MIB));
  const expected = sha256(file);
  const pages = [];
  const open = async (init) => {
    const p = await peerPage(browser, server.base);
    if (init) await p.context.addInitScript(init);
    pages.push(p);
    return p;
  };
  try {
    const seeder = await open();
    const link = await share(seeder.page, server.base, file);

    // The first receiver downloads everything, then its close is held back.
    const first = await open(holdCloseUntilRead);
    await first.page.goto(link);
    await waitHydrated(first.page);
    await first.page.waitForFunction(() => window.__close?.held === 1, null, { timeout: 120_000 });
    await waitPhase(first.page, "finishing", 10_000);

    // The sharer leaves; a second receiver can only ask the first one, whose files close
    // right before its first block request reaches the storage worker.
    await seeder.context.close();
    const second = await open();
    await second.page.goto(link);
    await waitHydrated(second.page);
    await waitPhase(second.page, "done", 120_000);
    const close = await first.page.evaluate(() => window.__close);
    assert.deepEqual(close, { held: 1, readsBehind: 1, timedOut: 0 }, "a read reached the worker right behind the close");
    await waitPhase(first.page, "done", 30_000);
    const firstLog = await panel(first.page);
    assert.doesNotMatch(firstLog, /no longer sharing|could not read/, firstLog);
    assert.equal(sha256(await save(first.page, "first.bin")), expected, "the first receiver saved a different file");
    assert.equal(sha256(await save(second.page, "second.bin")), expected, "the second receiver saved a different file");

    // Both receivers are finished (one has saved its file): a newcomer gets everything from
    // them, and from both.
    const late = await open();
    await late.page.goto(link);
    await waitHydrated(late.page);
    await waitPhase(late.page, "done", 120_000);
    assert.equal(sha256(await save(late.page, "late.bin")), expected, "the late receiver saved a different file");
    assert.equal(await sources(late.page), 2, `the late receiver got data from both finished tabs: ${await panel(late.page)}`);
    for (const p of [first, second]) {
      assert.equal(await phase(p.page), "done", await panel(p.page));
    }
    for (const p of pages) assert.deepEqual(p.errors, []);
  } finally {
    for (const p of pages) await p.context.close().catch(() => {});
  }
});
