// Chromium and Firefox ESR in one room on lab links: a Chromium seeder, a Firefox leecher
// and a Chromium leecher. Every saved file is byte-identical; Firefox, which has no save
// picker, hands the person a Blob, and that Blob is what is hashed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { labSkip, withLab } from "../e2e/lab.mjs";
import { share, waitHydrated, waitPhase, saveDownload } from "../e2e/harness.mjs";
import { sha256 } from "./runs.mjs";

const run = promisify(execFile);
const FIREFOX_PEER = join(dirname(fileURLToPath(import.meta.url)), "..", "e2e", "firefox-peer.mjs");
const skip = labSkip();

test("a Chromium seeder, a Firefox ESR leecher and a Chromium leecher: every file byte-identical", { skip, timeout: 300_000 }, async () => {
  await withLab("xbrowser", async (lab) => {
    for (const i of [1, 2, 3]) await lab.peer(i, { rate: "2mbyte", delay: 20 });
    lab.origin = await lab.startServer();
    const file = join(lab.dir, "shared.bin");
    writeFileSync(file, randomBytes(6 * 1024 * 1024));
    const expected = sha256(file);
    const seeder = await lab.page(1);
    const link = await share(seeder.page, lab.origin, file);

    // Firefox runs in peer 2's namespace under its own driver (tests/e2e/firefox-peer.mjs).
    const firefox = run("ip", ["netns", "exec", lab.ns("p2"), process.execPath, FIREFOX_PEER, link, "180000"], { maxBuffer: 1 << 20 })
      .then(({ stdout }) => JSON.parse(stdout.trim().split("\n").at(-1)))
      .catch((e) => {
        throw new Error(`the Firefox peer failed: ${e.stderr || e.message}`);
      });
    const chromium = await lab.page(3);
    await chromium.page.goto(link);
    await waitHydrated(chromium.page);
    await waitPhase(chromium.page, "done", 180_000);
    const ff = await firefox;
    const saved = await saveDownload(chromium.page, join(lab.dir, "chromium.bin"));
    console.log(`# Firefox done in ${ff.seconds.toFixed(1)} s`);
    assert.equal(ff.sha256, expected, "the file Firefox saves");
    assert.deepEqual(ff.errors, []);
    assert.equal(sha256(saved), expected, "the file Chromium saves");
    assert.deepEqual([...seeder.errors, ...chromium.errors], []);
  });
});
