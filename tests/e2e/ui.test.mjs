// What a person sees, checked in Chromium over real WebRTC: the sender's hashing progress,
// the receiver's states in order (connecting, downloading, done), its speed and time left while
// it downloads, the peer list with each peer's pieces, and a mesh graph with one line per
// real connection. And the sender's tab asks before it closes while it holds the only
// complete copy, and stops asking once someone else has every piece.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, share, peerPage as harnessPeerPage } from "./harness.mjs";

// Large enough that the download lasts a few of the page's 250 ms updates.
const SIZE = 96 * 1024 * 1024;
let server, browser, dir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), "meshdrop-ui-"));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const peerPage = () => harnessPeerPage(browser, server.base);

/** Records every progress line, and each peer row's ↓ and ↑ rates, as the page shows them. */
function recordRates() {
  window.__lines = [];
  window.__peerRates = [];
  const keep = (list, text) => text && list[list.length - 1] !== text && list.push(text);
  setInterval(() => {
    keep(window.__lines, document.querySelector('[data-testid="progress"]')?.textContent);
    for (const row of document.querySelectorAll('[data-testid="peer"]')) {
      const cells = [...row.querySelectorAll("td")].map((td) => td.textContent);
      keep(window.__peerRates, `↓ ${cells[3]} ↑ ${cells[4]}`);
    }
  }, 20);
}

const MOVING = /[1-9][\d.]* [KMG]?i?B\/s/;

/** Records, from the first moment of the page, every phase the transfer panel shows (in
 *  order, without repeats), and every progress line and file row shown while downloading. */
function recordPanel() {
  window.__phases = [];
  window.__progress = [];
  window.__rows = [];
  const keep = (list, text) => text && list[list.length - 1] !== text && list.push(text);
  setInterval(() => {
    const phase = document.querySelector('[data-testid="phase"]')?.dataset.phase;
    keep(window.__phases, phase);
    if (phase !== "downloading") return;
    keep(window.__progress, document.querySelector('[data-testid="progress"]')?.textContent);
    keep(window.__rows, document.querySelector('[data-testid="file-row"]')?.textContent);
  }, 20);
}

/** Records every text the upload page's hashing status shows ("Hashing X of Y…"). */
function recordHashing() {
  window.__hashing = [];
  new MutationObserver(() => {
    const text = document.querySelector('[data-testid="hashing"] p')?.textContent;
    if (text && window.__hashing[window.__hashing.length - 1] !== text) window.__hashing.push(text);
  }).observe(document, { subtree: true, childList: true, characterData: true });
}

/** Closes `page` as a person closing the tab would (running `beforeunload`). Resolves to
 *  "asked" if the page asked first (the question is answered "stay"), or "closed". */
async function tryToClose(page) {
  // A page may only ask once it has been interacted with (Chromium's rule for the dialog).
  await page.locator('[data-testid="share-link"]').click();
  const outcome = new Promise((resolve) => {
    page.once("dialog", async (d) => {
      assert.equal(d.type(), "beforeunload");
      await d.dismiss();
      resolve("asked");
    });
    page.once("close", () => resolve("closed"));
  });
  await page.close({ runBeforeUnload: true });
  return Promise.race([outcome, new Promise((r) => setTimeout(() => r("neither within 10 s"), 10_000))]);
}

test("the room page shows states, speed, time left, peers and the mesh; the only seeder asks before closing", { timeout: 300_000 }, async () => {
  const file = join(dir, "random.bin");
  writeFileSync(file, randomBytes(SIZE));

  const seeder = await peerPage();
  await seeder.context.addInitScript(recordHashing);
  await seeder.context.addInitScript(recordRates);
  const link = await share(seeder.page, server.base, file);
  // The hashing status moved through the file before the link came.
  const hashing = await seeder.page.evaluate(() => window.__hashing);
  const partway = hashing.filter((text) => {
    const [, done, total] = /^Hashing (.+) of (.+)…$/.exec(text) || [];
    return done && done !== "0 B" && done !== total;
  });
  assert.ok(partway.length > 0, `no progress while hashing: ${hashing.join(" | ")}`);

  // Nobody else has the file yet: closing the tab asks first, and staying keeps seeding.
  assert.equal(await tryToClose(seeder.page), "asked", "the only seeder closed without asking");
  assert.equal(seeder.page.isClosed(), false);
  await seeder.page.waitForSelector('[data-phase="seeding"]');
  // The site's own links leave the same way: in-app navigation would unmount the page and
  // stop sharing without asking. "Open room" opens the room in a new tab.
  const openRoom = seeder.page.getByRole("link", { name: "Open room" });
  assert.equal(await openRoom.getAttribute("target"), "_blank", "Open room replaces the sharing page");
  const askedOnLeaving = new Promise((resolve) => {
    seeder.page.once("dialog", async (d) => {
      resolve(d.type());
      await d.dismiss();
    });
  });
  await seeder.page.click('header a[href="/"]', { noWaitAfter: true });
  assert.equal(
    await Promise.race([askedOnLeaving, new Promise((r) => setTimeout(() => r("not asked within 10 s"), 10_000))]),
    "beforeunload",
    "the header's link left the only seeder's page without asking",
  );
  await seeder.page.waitForSelector('[data-phase="seeding"]');
  assert.equal(new URL(seeder.page.url()).pathname, "/upload");

  const leechers = [];
  for (let i = 0; i < 2; i++) {
    const l = await peerPage();
    await l.context.addInitScript(recordPanel);
    await l.context.addInitScript(recordRates);
    leechers.push(l);
  }
  await Promise.all(leechers.map((l) => l.page.goto(link)));

  // Mid-download, the mesh has a line for every peer in the peer list, and the list shows
  // how many pieces each peer has out of the room's total.
  const [first] = leechers;
  await first.page.waitForSelector('[data-phase="downloading"]', { timeout: 60_000 });
  await first.page.waitForFunction(() => document.querySelectorAll('[data-testid="peer"]').length === 2, null, {
    timeout: 60_000,
  });
  const mid = await first.page.evaluate(() => ({
    lines: document.querySelectorAll('[data-testid="mesh"] line').length,
    rows: [...document.querySelectorAll('[data-testid="peer"] td:nth-child(2)')].map((td) => td.textContent),
  }));
  assert.equal(mid.lines, 2, "one mesh line per connection (the seeder and the other leecher)");
  for (const cell of mid.rows) assert.match(cell, /^\d+\/\d+$/, `pieces column: ${cell}`);

  for (const l of leechers) await l.page.waitForSelector('[data-phase="done"]', { timeout: 240_000 });

  for (const [i, l] of leechers.entries()) {
    const seen = await l.page.evaluate(() => ({ phases: window.__phases, progress: window.__progress, rows: window.__rows }));
    // The states come in order. Two short ones may show or be too brief to see: "hashes"
    // (checking the file list with a peer) before downloading, and "finishing" (writing
    // the last pieces to disk) before done.
    const order = seen.phases.filter((p) => p !== "hashes" && p !== "finishing");
    assert.deepEqual(order, ["connecting", "downloading", "done"], `leecher ${i} phases: ${seen.phases}`);
    assert.ok(
      seen.progress.some((line) => /↓ [1-9][\d.]* [KMG]?i?B\/s/.test(line)),
      `leecher ${i} never showed a download speed: ${seen.progress.slice(0, 5).join(" | ")}`,
    );
    assert.ok(
      seen.progress.some((line) => /about \d+:\d\d left/.test(line)),
      `leecher ${i} never showed the time left: ${seen.progress.slice(0, 5).join(" | ")}`,
    );
    // The file's own row: its share, speed and time left.
    assert.ok(
      seen.rows.some((text) => /\d+% · [1-9][\d.]* [KMG]?i?B\/s · \d+:\d\d left/.test(text)),
      `leecher ${i} file row never showed speed and time left: ${seen.rows.slice(0, 5).join(" | ")}`,
    );
    // Done: the other leecher shows up with every piece (once its last HAVEs arrive), drawn
    // as complete in the mesh. (The sender super-seeds: it shows only the pieces it has
    // revealed so far, as a super-seeding BitTorrent client does.)
    const showsComplete = () => {
      const rows = [...document.querySelectorAll('[data-testid="peer"] td:nth-child(2)')].map((td) => td.textContent);
      const full = rows.filter((cell) => {
        const [have, total] = cell.split("/").map(Number);
        return total > 0 && have === total;
      }).length;
      const complete = [...document.querySelectorAll('[data-testid="mesh"] circle')].filter(
        (c) => c.getAttribute("fill") === "#059669",
      ).length;
      return { rows, full, complete, save: document.querySelectorAll('[data-testid="save"]').length };
    };
    await l.page
      .waitForFunction(`(${showsComplete})().full >= 1`, null, { timeout: 10_000 })
      .catch(() => {});
    const end = await l.page.evaluate(`(${showsComplete})()`);
    assert.ok(end.full >= 1, `leecher ${i} peer list shows nobody complete: ${end.rows}`);
    assert.equal(end.complete, end.full, "complete peers are drawn as complete in the mesh");
    assert.equal(end.save, 1, "the file can be saved");
  }

  // The sharer saw its upload speed and both downloaders, each with the rate it was sent;
  // each downloader saw the rate it received from its peers.
  const sharer = await seeder.page.evaluate(() => ({ lines: window.__lines, rates: window.__peerRates }));
  assert.ok(
    sharer.lines.some((line) => new RegExp(`↑ ${MOVING.source}`).test(line)),
    `the sharer never showed an upload speed: ${sharer.lines.slice(0, 5).join(" | ")}`,
  );
  assert.ok(
    sharer.rates.some((r) => new RegExp(`↑ ${MOVING.source}$`).test(r)),
    `the sharer's peer list never showed a rate sent: ${sharer.rates.slice(0, 5).join(" | ")}`,
  );
  await seeder.page.locator('[data-testid="transfer"] p', { hasText: /^2 connected of 2 other peer\(s\) in the room/ }).waitFor({ timeout: 10_000 });
  for (const [i, l] of leechers.entries()) {
    const rates = await l.page.evaluate(() => window.__peerRates);
    assert.ok(
      rates.some((r) => new RegExp(`^↓ ${MOVING.source}`).test(r)),
      `leecher ${i}'s peer list never showed a rate received: ${rates.slice(0, 5).join(" | ")}`,
    );
  }

  // Others now hold every piece: the sender's tab closes without asking.
  await seeder.page.waitForFunction(
    () => [...document.querySelectorAll('[data-testid="peer"] td:nth-child(2)')].some((td) => {
      const [have, total] = td.textContent.split("/").map(Number);
      return total > 0 && have === total;
    }),
    null,
    { timeout: 30_000 },
  );
  assert.equal(await tryToClose(seeder.page), "closed", "the seeder asked although others have the file");
  for (const l of leechers) assert.deepEqual(l.errors, []);
  assert.deepEqual(seeder.errors, []);
});
