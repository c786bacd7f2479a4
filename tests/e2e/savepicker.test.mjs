// "Save to…": where the browser has the File System Access save dialog, a receiver chooses
// once where a file goes, and every piece is written there at its offset as it arrives.
//
// Headless Chromium cannot show the dialog, so the page's `showSaveFilePicker` is replaced by
// one that answers with a file handle in the origin private file system (`picked/<name>`).
// Everything after the dialog is the real thing: the handle goes to the storage worker,
// which writes through the same FileSystemWritableFileStream a dialog's handle gives.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, waitHydrated, share, peerPage } from "./harness.mjs";

const MIB = 1024 * 1024;
let server, browser, dir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), "meshdrop-picker-"));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Stands in for the dialog: records each question, cancels when told to, and otherwise
 *  answers with a handle to `picked/<suggested name>` in this origin's private storage.
 *
 *  With `__answerMidWrite` set, the next answer comes only once a piece write has been posted to the
 *  storage worker, and holds the page's thread until the worker has surely done it. The
 *  page then learns of the choice before it learns that the write landed: the moment that
 *  once lost that piece from the chosen file. */
function fakeDialog() {
  window.__asked = [];
  window.__cancelNext = false;
  window.__answerMidWrite = false;
  let onWrite = null;
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (message, ...rest) {
    const posted = post.call(this, message, ...rest);
    if (message?.op === "write" && onWrite) {
      onWrite();
      onWrite = null;
    }
    return posted;
  };
  window.showSaveFilePicker = async ({ suggestedName }) => {
    window.__asked.push(suggestedName);
    if (window.__cancelNext) {
      window.__cancelNext = false;
      throw new DOMException("The user aborted a request.", "AbortError");
    }
    const root = await navigator.storage.getDirectory();
    const picked = await root.getDirectoryHandle("picked", { create: true });
    const handle = await picked.getFileHandle(suggestedName, { create: true });
    if (window.__answerMidWrite) {
      window.__answerMidWrite = false;
      await new Promise((resolve) => (onWrite = resolve));
      for (const until = performance.now() + 100; performance.now() < until; );
    }
    return handle;
  };
}

/** SHA-256 (hex) of `picked/<name>` as it is now, or null when it does not exist. */
async function pickedSha(page, name) {
  return page.evaluate(async (name) => {
    try {
      const root = await navigator.storage.getDirectory();
      const file = await (await (await root.getDirectoryHandle("picked")).getFileHandle(name)).getFile();
      const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
      return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    } catch {
      return null;
    }
  }, name);
}

const row = (page, i) => page.locator('[data-testid="file-row"]').nth(i);

test("a file chosen a place mid-download is written there and lands complete", { timeout: 300_000 }, async () => {
  const sizes = [64 * MIB + 4321, 3 * MIB];
  const names = ["big.bin", "small.bin"];
  const paths = names.map((name, i) => {
    const path = join(dir, name);
    writeFileSync(path, randomBytes(sizes[i]));
    return path;
  });
  const expected = paths.map(sha256);

  const seeder = await peerPage(browser, server.base);
  const link = await share(seeder.page, server.base, paths);
  assert.equal(await seeder.page.locator('[data-testid="save-to"]').count(), 0, "the sender saves nothing");

  const l = await peerPage(browser, server.base);
  await l.context.addInitScript(fakeDialog);
  await l.page.goto(link);
  await waitHydrated(l.page);
  const big = row(l.page, 0);
  await l.page.waitForFunction(
    () => Number(document.querySelector('[data-testid="file-row"]')?.dataset.have) > 0,
    null,
    { timeout: 60_000 },
  );

  // Cancelling the dialog changes nothing: the button stays, nothing is being written.
  await l.page.evaluate(() => (window.__cancelNext = true));
  await big.locator('[data-testid="save-to"]').click();
  await l.page.waitForFunction(() => window.__asked.length === 1);
  assert.equal(await big.locator('[data-testid="target"]').count(), 0);

  // Choosing a place mid-download, while a piece is on its way to disk: what is here (and
  // on its way) is copied, the rest follows.
  await l.page.evaluate(() => (window.__answerMidWrite = true));
  await big.locator('[data-testid="save-to"]').click();
  const haveAtPick = Number(await big.getAttribute("data-have"));
  assert.ok(haveAtPick < sizes[0], `picked at ${haveAtPick} of ${sizes[0]} bytes: mid-download`);
  await big.locator('[data-testid="target"][data-state="writing"]').waitFor();
  assert.equal(await big.locator('[data-testid="save-to"]').count(), 0, "asked once");
  assert.equal(await pickedSha(l.page, names[0]) === expected[0], false, "nothing is in place before the end");

  await l.page.waitForSelector('[data-phase="done"]', { timeout: 180_000 });
  await big.locator('[data-testid="target"][data-state="saved"]').waitFor({ timeout: 30_000 });
  assert.match(await big.locator('[data-testid="target"]').innerText(), /Saved as big\.bin/);
  assert.equal(await pickedSha(l.page, names[0]), expected[0], "the chosen file has the seeder's bytes");
  assert.deepEqual(await l.page.evaluate(() => window.__asked), [names[0], names[0]]);

  // A file that is already complete goes to its chosen place at once.
  const small = row(l.page, 1);
  await small.locator('[data-testid="save-to"]').click();
  await small.locator('[data-testid="target"][data-state="saved"]').waitFor({ timeout: 30_000 });
  assert.equal(await pickedSha(l.page, names[1]), expected[1]);

  // The "Save" link still works alongside.
  const [download] = await Promise.all([
    l.page.waitForEvent("download"),
    big.locator('[data-testid="save"]').click(),
  ]);
  const saved = join(dir, "via-link.bin");
  await download.saveAs(saved);
  assert.equal(sha256(saved), expected[0]);
  const log = await l.page.locator('[data-testid="log"]').evaluate((el) => el.textContent);
  assert.match(log, /saving big\.bin to big\.bin as it arrives/);
  assert.deepEqual(l.errors, []);
  assert.deepEqual(seeder.errors, []);
});
