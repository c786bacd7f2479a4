// Peers behind NATs. Port-preserving ("cone") NATs let ICE punch a direct path; two
// symmetric NATs (a fresh random port per destination) cannot, and need the TURN relay
// whose credentials the server mints. Without a relay the page must say why a peer is
// unreachable instead of stalling. Each test runs in a lab of its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Lab, labSkip } from "../e2e/lab.mjs";
import { swarmRun } from "./runs.mjs";

const skip = labSkip();
const BYTES = 2 * 1024 * 1024;
const LINK = { rate: "4mbyte", delay: 10 };

/** The path each of the page's peer rows shows: `{ [peer id]: "direct" | "relayed" | … }`. */
async function paths(page) {
  return page.$$eval('[data-testid="peer"]', (rows) => Object.fromEntries(rows.map((r) => [r.dataset.peer, r.dataset.path])));
}

/** Waits until every peer row of `page` shows a settled path; returns them. */
async function settledPaths(page, count, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await paths(page);
    const values = Object.values(p);
    if (values.length >= count && values.every((v) => v === "direct" || v === "relayed")) return p;
    if (Date.now() > deadline) throw new Error(`paths did not settle: ${JSON.stringify(p)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function withLab(name, body) {
  const lab = await new Lab(name).up();
  try {
    await body(lab);
  } finally {
    await lab.down();
  }
}

test("two peers behind port-preserving NATs connect directly", { skip, timeout: 180_000 }, () =>
  withLab("natcone", async (lab) => {
    await lab.peer(1, { ...LINK, nat: "cone" });
    await lab.peer(2, { ...LINK, nat: "cone" });
    await lab.turn();
    lab.origin = await lab.startServer();
    const r = await swarmRun(lab, { seed: 1, leechers: [2], bytes: BYTES, timeoutMs: 120_000 });
    assert.deepEqual(r.identical, [true]);
    assert.deepEqual(Object.values(await settledPaths(r.pages[0].page, 1)), ["direct"]);
  }));

test("two peers behind symmetric NATs connect through the TURN relay the server hands out", { skip, timeout: 180_000 }, () =>
  withLab("natsym", async (lab) => {
    await lab.peer(1, { ...LINK, nat: "symmetric" });
    await lab.peer(2, { ...LINK, nat: "symmetric" });
    await lab.turn();
    lab.origin = await lab.startServer();
    const r = await swarmRun(lab, { seed: 1, leechers: [2], bytes: BYTES, timeoutMs: 120_000 });
    assert.deepEqual(r.identical, [true]);
    assert.deepEqual(Object.values(await settledPaths(r.pages[0].page, 1)), ["relayed"]);
    assert.deepEqual(Object.values(await settledPaths(r.seeder.page, 1)), ["relayed"]);
  }));

test("without a relay, two symmetric-NAT peers are told there is no path, within a bounded time", { skip, timeout: 180_000 }, () =>
  withLab("natnone", async (lab) => {
    await lab.peer(1, { ...LINK, nat: "symmetric" });
    await lab.peer(2, { ...LINK, nat: "symmetric" });
    await lab.turn(); // STUN only: the server is configured without TURN
    lab.origin = await lab.startServer({}, { relay: false });
    const { share, waitHydrated } = await import("../e2e/harness.mjs");
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const file = join(lab.dir, "f.bin");
    writeFileSync(file, Buffer.alloc(BYTES, 1));
    const seeder = await lab.page(1);
    const link = await share(seeder.page, lab.origin, file);
    const leecher = await lab.page(2);
    const opened = Date.now();
    await leecher.page.goto(link);
    await waitHydrated(leecher.page);
    const notice = leecher.page.locator('[data-testid="no-path"]');
    await notice.waitFor({ timeout: 60_000 });
    const text = await notice.textContent();
    console.log(`# told after ${((Date.now() - opened) / 1000).toFixed(1)} s: ${text}`);
    assert.match(text, /no direct path to peer \d+; this server offers no relay/);
  }));

test("a mixed room (one pair relayed, the rest direct) completes everywhere", { skip, timeout: 240_000 }, () =>
  withLab("natmix", async (lab) => {
    await lab.peer(1, { ...LINK }); // the seeder: no NAT
    await lab.peer(2, { ...LINK, nat: "symmetric" });
    await lab.peer(3, { ...LINK, nat: "symmetric" });
    await lab.peer(4, { ...LINK }); // no NAT either
    await lab.turn();
    lab.origin = await lab.startServer();
    const r = await swarmRun(lab, { seed: 1, leechers: [2, 3, 4], bytes: BYTES, timeoutMs: 180_000 });
    assert.deepEqual(r.identical, [true, true, true]);
    // The two symmetric peers reach each other only through the relay; everyone reaches
    // the two peers without NAT directly.
    const p2 = await settledPaths(r.pages[0].page, 3);
    assert.equal(Object.values(p2).filter((v) => v === "relayed").length, 1, JSON.stringify(p2));
    const p4 = await settledPaths(r.pages[2].page, 3);
    assert.ok(Object.values(p4).every((v) => v === "direct"), JSON.stringify(p4));
  }));
