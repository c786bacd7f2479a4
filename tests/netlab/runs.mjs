// Runs shared by the lab's tests and benchmarks: a swarm from one seeder to N leechers, each
// in its own namespace behind its own shaped uplink.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { share, waitHydrated, waitPhase, saveDownload, panelText } from "../e2e/harness.mjs";
import { trackLinks } from "../e2e/lab.mjs";

export const MB = 1_000_000;

export function sha256(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** The lower bound on the last leecher's time for one seeder and N leechers (seconds):
 *  T* = max(F / u_seed, N·F / (u_seed + Σ u_leechers)), rates in bytes per second. */
export function swarmBound(bytes, seedRate, leecherRates) {
  const n = leecherRates.length;
  const total = seedRate + leecherRates.reduce((a, b) => a + b, 0);
  return Math.max(bytes / seedRate, (n * bytes) / total);
}

/** The transfer panel's counters (bytes received and uploaded as piece data, duplicate
 *  bytes, stalls, endgame requests). */
export function pageCounters(page) {
  return page
    .locator('[data-testid="transfer"]')
    .evaluate((el) => {
      const n = (k) => Number(el.dataset[k] || 0);
      return { received: n("received"), uploaded: n("uploaded"), wasted: n("wasted"), stalls: n("stalls"), endgame: n("endgame") };
    }, null, { timeout: 5_000 })
    // A page the run closed on purpose (a peer that left) has no counters.
    .catch(() => ({ received: 0, uploaded: 0, wasted: 0, stalls: 0, endgame: 0, closed: true }));
}

/** Shares a random file of `bytes` from peer `seed`, opens the link in every peer of
 *  `leechers` at once and waits until all are done. Returns each leecher's seconds from
 *  opening the link to done, the saved files' check, every uplink's bytes, packets dropped at
 *  its bottleneck queue and byte series, the pages' counters, and
 *  the machine's CPU. */
export async function swarmRun(lab, { seed, leechers, bytes, timeoutMs, save = true, during }) {
  const file = join(lab.dir, "shared.bin");
  writeFileSync(file, randomBytes(bytes));
  const expected = sha256(file);
  const seeder = await lab.page(seed);
  const link = await share(seeder.page, lab.origin, file);
  const pages = [];
  for (const i of leechers) pages.push({ i, ...(await lab.page(i)) });
  const before = {};
  for (const i of [seed, ...leechers]) before[i] = await lab.stats(i);
  const tracker = trackLinks(lab, [seed, ...leechers]);
  const started = Date.now();
  const done = pages.map(async (p) => {
    await p.page.goto(link);
    await waitHydrated(p.page);
    await waitPhase(p.page, "done", timeoutMs);
    p.seconds = (Date.now() - started) / 1000;
  });
  // A leecher that fails while `during` still runs must fail the run here, not as an
  // unhandled rejection attributed to whatever test runs at the time.
  const all = Promise.all(done);
  all.catch(() => {});
  let tracked;
  try {
    if (during) await during({ seeder, pages, link, started });
    await all;
  } finally {
    // Always: a sampling loop left running would keep the test process alive.
    tracked = await tracker.stop();
  }
  const { series, cpuBusy } = tracked;
  const counters = {};
  for (const p of [{ i: seed, ...seeder }, ...pages]) counters[p.i] = await pageCounters(p.page);
  const uplink = {};
  const drops = {};
  for (const i of [seed, ...leechers]) {
    const now = await lab.stats(i);
    uplink[i] = now.bytes - before[i].bytes;
    drops[i] = now.drops - before[i].drops;
  }
  const identical = [];
  if (save) {
    for (const p of pages) {
      const out = await saveDownload(p.page, join(lab.dir, `got-${p.i}.bin`));
      identical.push(sha256(out) === expected);
    }
  }
  const errors = [seeder, ...pages].flatMap((p) => p.errors);
  return {
    link,
    seconds: pages.map((p) => p.seconds),
    last: Math.max(...pages.map((p) => p.seconds)),
    identical,
    uplink,
    drops,
    series,
    counters,
    cpuBusy,
    errors,
    seeder,
    pages,
    panels: async () => Promise.all(pages.map((p) => panelText(p.page))),
  };
}
