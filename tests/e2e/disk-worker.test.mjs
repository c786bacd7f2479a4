// The storage worker (assets/disk-worker.js, as the release bundle serves it) answers every
// request in whatever state its files are: open, closed for saving, never opened. Requests
// it cannot serve get a clear error, never a crash, and it keeps serving the ones after.
// Each case here is a request a page could send after its state moved on.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, launchBrowser, newPage } from "./harness.mjs";

const ASSETS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "public", "assets");
let server, browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the storage worker serves reads of closed files and answers impossible requests with a clear error", { timeout: 60_000 }, async () => {
  const name = readdirSync(ASSETS).find((f) => /^disk-worker.*\.js$/.test(f));
  assert.ok(name, `the bundle serves the storage worker (${ASSETS})`);
  const { context, page, errors } = await newPage(browser);
  try {
    await page.goto(`${server.base}/`);
    const answers = await page.evaluate(async (url) => {
      const worker = new Worker(url);
      let id = 0;
      const call = (op, args = {}) =>
        new Promise((resolve) => {
          const mine = ++id;
          const listen = (e) => {
            if (e.data.id !== mine) return;
            worker.removeEventListener("message", listen);
            resolve(e.data);
          };
          worker.addEventListener("message", listen);
          worker.postMessage({ id: mine, op, ...args });
        });
      const bytes = (n, fill) => new Uint8Array(n).fill(fill);
      const text = (answer) => answer.error ?? (answer.data ? [...answer.data].join(",") : "ok");
      const out = {};
      out.beforeOpen = text(await call("read", { file: 0, at: 0, len: 4 }));
      out.open = text(await call("open", { dir: "contract-test", sizes: [8, 4] }));
      out.write = text(await call("write", { file: 0, at: 2, data: bytes(3, 7) }));
      out.readOpen = text(await call("read", { file: 0, at: 1, len: 5 }));
      out.outside = text(await call("read", { file: 0, at: 6, len: 4 }));
      out.noFile = text(await call("read", { file: 5, at: 0, len: 1 }));
      out.notNumber = text(await call("read", { file: "0", at: 0, len: 1 }));
      out.unknown = text(await call("format"));
      out.badWrite = text(await call("write", { file: 0, at: 0, data: "hello" }));
      // Close for saving, then everything a peer may still ask for.
      const finished = await call("finish", { count: 2, commit: [] });
      out.finish = finished.error ?? `${finished.files.length} files, ${finished.files[0].size} bytes`;
      out.readClosed = text(await call("read", { file: 0, at: 1, len: 5 }));
      out.writeClosed = text(await call("write", { file: 0, at: 0, data: bytes(1, 1) }));
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array([0, 0, 7, 7, 7, 0, 0, 0])));
      const checked = await call("verify", { spans: new Float64Array([0, 0, 8]), hashes: digest });
      out.verifyClosed = checked.error ?? [...checked.ok].join(",");
      out.finishAgain = text(await call("finish", { count: 2, commit: [] }));
      // Reopened (another file ticked): reads go through the handles again.
      out.reopen = text(await call("open", { dir: "contract-test", sizes: [8, 4] }));
      out.readReopened = text(await call("read", { file: 0, at: 1, len: 5 }));
      await call("finish", { count: 2, commit: [] });
      out.remove = text(await call("remove", { dir: "contract-test" }));
      worker.terminate();
      return out;
    }, `${server.base}/assets/${name}`);
    assert.deepEqual(answers, {
      beforeOpen: "no room's files are open in this tab",
      open: "ok",
      write: "7,7,7", // the written bytes come back, for the page to reuse the buffer
      readOpen: "0,7,7,7,0",
      outside: "bytes 6..10 are outside file 0 (8 bytes)",
      noFile: "there is no file 5 in this room",
      notNumber: "there is no file 0 in this room",
      unknown: "unknown operation format",
      badWrite: "write needs bytes",
      finish: "2 files, 8 bytes",
      readClosed: "0,7,7,7,0",
      writeClosed: "file 0 is closed for writing (the download finished)",
      verifyClosed: "1",
      finishAgain: "ok",
      reopen: "ok",
      readReopened: "0,7,7,7,0",
      remove: "ok",
    });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
