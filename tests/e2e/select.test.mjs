// Multi-file rooms: a receiver downloads one file of three and nothing of the others, then
// ticks a second file and gets that one too, and the choice survives a reload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, waitHydrated, share, peerPage as harnessPeerPage } from "./harness.mjs";

const MIB = 1024 * 1024;
const SIZES = [24 * MIB, 6 * MIB + 12345, 16 * MIB];
let server, browser, dir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), "meshdrop-select-"));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const peerPage = () => harnessPeerPage(browser, server.base);

const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");

async function counters(page) {
  return page.locator('[data-testid="transfer"]').evaluate((el) => ({
    bytes: Number(el.dataset.bytes),
    received: Number(el.dataset.received),
  }));
}

/** Saves file `index` through its "Save" link and returns the SHA-256 of what was saved. */
async function save(page, index, name) {
  const row = page.locator('[data-testid="file-row"]').nth(index);
  const [download] = await Promise.all([page.waitForEvent("download"), row.locator('[data-testid="save"]').click()]);
  const path = join(dir, name);
  await download.saveAs(path);
  return sha256(path);
}

test("a receiver downloads only the files it selects, and can add one later", { timeout: 300_000 }, async () => {
  const paths = SIZES.map((size, i) => {
    const path = join(dir, `file-${i}.bin`);
    writeFileSync(path, randomBytes(size));
    return path;
  });
  const expected = paths.map(sha256);
  const seeder = await peerPage();
  const link = await share(seeder.page, server.base, paths);
  assert.equal(await seeder.page.locator('[data-testid="select-file"]').count(), 0, "the sender has nothing to choose");

  // A link for the second file only: it alone is ticked, downloaded and offered.
  const l = await peerPage();
  await l.page.goto(`${link}#files=1`);
  await waitHydrated(l.page);
  await l.page.waitForSelector('[data-phase="done"]', { timeout: 120_000 });
  const boxes = l.page.locator('[data-testid="select-file"]');
  assert.equal(await boxes.count(), 3);
  assert.deepEqual(
    await l.page.$$eval('[data-testid="file-row"]', (rows) => rows.map((r) => r.dataset.selected)),
    ["false", "true", "false"],
  );
  const first = await counters(l.page);
  assert.equal(first.bytes, SIZES[1], "the progress counts the selected file");
  // Pieces never span files, so only the second file's bytes (and no other's) came in.
  const only = (received, size) => received >= size && received < size + 2 * MIB;
  assert.ok(only(first.received, SIZES[1]), `received ${first.received} bytes for a ${SIZES[1]}-byte file`);
  assert.equal(await l.page.locator('[data-testid="save"]').count(), 1, "only the selected file can be saved");
  assert.equal(await save(l.page, 1, "one.bin"), expected[1]);

  // Ticking the third file fetches it (the finished file is reopened for writing), and the
  // address remembers the choice.
  await boxes.nth(2).check();
  await l.page.waitForFunction(() => location.hash === "#files=1,2");
  await l.page.waitForFunction(
    (want) => {
      const el = document.querySelector('[data-testid="transfer"]');
      return Number(el.dataset.bytes) === want && document.querySelector('[data-phase="done"]');
    },
    SIZES[1] + SIZES[2],
    { timeout: 120_000 },
  );
  const second = await counters(l.page);
  const both = SIZES[1] + SIZES[2];
  assert.ok(only(second.received, both), `received ${second.received} bytes, want the third file and no more`);
  assert.equal(await save(l.page, 2, "three.bin"), expected[2]);
  assert.equal(await save(l.page, 1, "one-again.bin"), expected[1], "the first file is intact");

  // A reload keeps the selection. Saving marked the room's cache for removal at the next
  // start, which happens unless the old page still held the room when the new one started:
  // either way the two selected files, and only they, are back (from the cache or peers).
  await l.page.reload();
  await waitHydrated(l.page);
  await l.page.waitForSelector('[data-phase="done"]', { timeout: 120_000 });
  assert.deepEqual(
    await l.page.$$eval('[data-testid="file-row"]', (rows) => rows.map((r) => r.dataset.selected)),
    ["false", "true", "true"],
  );
  const again = await l.page.locator('[data-testid="transfer"]').evaluate((el) => ({
    bytes: Number(el.dataset.bytes),
    restored: Number(el.dataset.restored),
    received: Number(el.dataset.received),
  }));
  assert.equal(again.bytes, both, "the two selected files are complete");
  assert.ok(again.received < both + 2 * MIB, `after the reload received ${again.received} bytes, want at most ${both}`);
  assert.ok(again.received + again.restored >= both, `${JSON.stringify(again)}: the files came from somewhere`);
  assert.equal(await l.page.locator('[data-testid="save"]').count(), 2);
  assert.deepEqual(l.errors, []);
  assert.deepEqual(seeder.errors, []);
});

// Changing the selection while the finished files are being closed, or reopened, used to
// race with it: a file ticked during the close had its pieces written to closed files ("could
// not write to disk"), and a file ticked and unticked during the reopen left the page on
// "Downloading" for good. The test-only `slowclose` switch makes closing and reopening take
// 2 s longer in the storage worker, so the clicks land inside them every time.
test("changing the selection while the files close or reopen waits for that, then applies", { timeout: 300_000 }, async () => {
  const paths = SIZES.map((size, i) => {
    const path = join(dir, `race-${i}.bin`);
    writeFileSync(path, randomBytes(size));
    return path;
  });
  const expected = paths.map(sha256);
  const seeder = await peerPage();
  const link = await share(seeder.page, server.base, paths);

  const l = await peerPage();
  await l.page.goto(`${link}#files=1&slowclose`);
  await waitHydrated(l.page);
  // `data-closing`: the storage worker is closing (or reopening) the files right now.
  const closing = '[data-testid="transfer"][data-closing="true"]';
  await l.page.waitForSelector(closing, { timeout: 120_000 });
  // Reads the phase and clicks in one go, so the click is known to land in that phase.
  const clickIn = (index) =>
    l.page.evaluate((i) => {
      const phase = document.querySelector('[data-testid="phase"]').dataset.phase;
      document.querySelectorAll('[data-testid="select-file"]')[i].click();
      return phase;
    }, index);
  assert.equal(await clickIn(2), "finishing", "the third file was ticked while the second was being closed");
  await l.page.waitForFunction(() => document.querySelector('[data-testid="transfer"]').dataset.selectionsQueued === "1");
  await l.page.waitForFunction(() => location.hash === "#files=1,2&slowclose");
  const both = SIZES[1] + SIZES[2];
  await l.page.waitForFunction(
    (want) => {
      const el = document.querySelector('[data-testid="transfer"]');
      return Number(el.dataset.bytes) === want && document.querySelector('[data-phase="done"]');
    },
    both,
    { timeout: 120_000 },
  );
  const done = await counters(l.page);
  assert.equal(await save(l.page, 1, "race-one.bin"), expected[1]);
  assert.equal(await save(l.page, 2, "race-three.bin"), expected[2]);

  // Ticked, then unticked while the files reopen: the page comes back to done with the same
  // two files, and nothing of the first file was asked for.
  assert.equal(await clickIn(0), "done");
  await l.page.waitForSelector(closing);
  assert.equal(await clickIn(0), "downloading", "unticked while the files were being reopened");
  // The untick waited for the reopen.
  await l.page.waitForFunction(() => document.querySelector('[data-testid="transfer"]').dataset.selectionsQueued === "2");
  await l.page.waitForSelector('[data-phase="done"]', { timeout: 30_000 });
  const after = await counters(l.page);
  assert.equal(after.bytes, both);
  assert.equal(after.received, done.received, "nothing more was downloaded");
  assert.equal(await l.page.locator('[data-testid="save"]').count(), 2);
  assert.equal(await save(l.page, 2, "race-three-again.bin"), expected[2]);
  const log = await l.page.locator('[data-testid="transfer"]').innerText();
  assert.doesNotMatch(log, /could not/, "no write, close or reopen failed");
  assert.deepEqual(l.errors, []);
  assert.deepEqual(seeder.errors, []);
});
