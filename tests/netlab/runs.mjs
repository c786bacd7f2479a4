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

/** Shares a random file of `bytes` from peer `seed`, opens the link in every peer of
 *  `leechers` at once and waits until all are done. Returns each leecher's seconds from
 *  opening the link to done, the saved files' check, every uplink's bytes and series, and
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
  for (const i of [seed, ...leechers]) before[i] = (await lab.stats(i)).bytes;
  const tracker = trackLinks(lab, [seed, ...leechers]);
  const started = Date.now();
  const done = pages.map(async (p) => {
    await p.page.goto(link);
    await waitHydrated(p.page);
    await waitPhase(p.page, "done", timeoutMs);
    p.seconds = (Date.now() - started) / 1000;
  });
  if (during) await during({ seeder, pages, link, started });
  await Promise.all(done);
  const { series, cpuBusy } = await tracker.stop();
  const uplink = {};
  for (const i of [seed, ...leechers]) uplink[i] = (await lab.stats(i)).bytes - before[i];
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
    series,
    cpuBusy,
    errors,
    seeder,
    pages,
    panels: async () => Promise.all(pages.map((p) => panelText(p.page))),
  };
}
