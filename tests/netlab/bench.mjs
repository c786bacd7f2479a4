// The network lab's benchmarks (docs/benchmarks.md): meshdrop on shaped links, each figure a
// ratio against a bound or a baseline measured in the same run.
//
//   L1  1 seeder → 1 leecher, 4 MB/s uplinks, 20 ms: meshdrop's rate against the link and a
//       raw data channel blast on the same link; again with 1 % loss and 50 ms.
//   L3  1 seeder → 8 leechers, 1 MB/s uplinks: T/T*.
//   L4  a 1 MB/s seeder with 4 MB/s leechers: T/T*.
//   L2  1 seeder → 3 leechers, 2 MB/s uplinks, 20 ms: T/T*, and WebTorrent's in the same lab.
//
// T* = max(F/u_seed, N·F/(u_seed + Σ u_leechers)); T is the last leecher's time from opening
// the link to a verified, complete file. LAB_SCALE=smoke (CI) shrinks sizes and rates so the
// runs stay link-bound on two cores; full is scripts/bench.sh lab.
import { labAvailability, withLab } from "../e2e/lab.mjs";
import { swarmRun, swarmBound, MB } from "./runs.mjs";
import { rawBlast } from "./blast.mjs";
import { webtorrentRun } from "./webtorrent.mjs";

const SMOKE = (process.env.LAB_SCALE || "smoke") === "smoke";
const MiB = 1024 * 1024;
const only = (process.env.LAB_ROWS || "L1,L2,L3,L4").split(",");

const avail = labAvailability();
if (!avail.ok) {
  if (process.env.CI) throw new Error(avail.reason);
  console.log(`# lab benchmarks skipped: ${avail.reason}`);
  process.exit(0);
}

const rows = [];
const pct = (x) => `${(x * 100).toFixed(0)} %`;

/** How busy each uplink was while the swarm ran: bytes ÷ (rate × the last leecher's time). */
function utilisation(r, rates) {
  return Object.entries(r.uplink)
    .map(([i, bytes]) => `${i === "1" ? "s" : `l${Number(i) - 1}`} ${pct(bytes / (rates[i] * r.last))}`)
    .join(" ");
}

async function swarmRow(name, { leechers, seedRate, leechRate, delay, bytes, goal, webtorrent = false }) {
  const rate = (r) => `${r / MB}mbyte`;
  return withLab(name.toLowerCase(), async (lab) => {
    const peers = Array.from({ length: leechers + 1 }, (_, k) => k + 1);
    const rates = {};
    for (const i of peers) {
      rates[i] = i === 1 ? seedRate : leechRate;
      await lab.peer(i, { rate: rate(rates[i]), delay });
    }
    lab.origin = await lab.startServer();
    const r = await swarmRun(lab, { seed: 1, leechers: peers.slice(1), bytes, timeoutMs: 1_800_000, save: false });
    const bound = swarmBound(bytes, seedRate, peers.slice(1).map(() => leechRate));
    const total = Object.values(r.uplink).reduce((a, b) => a + b, 0);
    const ratio = r.last / bound;
    const sum = (k) => Object.values(r.counters).reduce((a, c) => a + c[k], 0);
    const pieceBytes = sum("uploaded");
    rows.push(
      `| ${name}: 1 → ${leechers}, ${bytes / MiB} MiB, uplinks ${seedRate / MB} / ${leechRate / MB} MB/s, ${delay} ms | ${bound.toFixed(1)} | ${r.last.toFixed(1)} | **${ratio.toFixed(2)}** | ≤ ${goal} | seeder sent ${(r.uplink[1] / bytes).toFixed(2)} copies on the wire (${(r.counters[1].uploaded / bytes).toFixed(2)} as piece data); all uplinks ${(total / (leechers * bytes)).toFixed(2)}× what was delivered (piece data ${(pieceBytes / (leechers * bytes)).toFixed(2)}×; duplicates ${(sum("wasted") / MB).toFixed(1)} MB, stalls ${sum("stalls")}, endgame requests ${sum("endgame")}); ${Object.values(r.drops).reduce((a, b) => a + b, 0)} packets dropped at the bottlenecks; busy ${utilisation(r, rates)} | ${pct(r.cpuBusy)} |`,
    );
    console.log(rows.at(-1));
    if (webtorrent) {
      // The same lab, links and file size: WebTorrent 3.0.21 with its rarest-first picker.
      const w = await webtorrentRun(lab, { seed: 1, leechers: peers.slice(1), bytes });
      const wtotal = Object.values(w.uplink).reduce((a, b) => a + b, 0);
      rows.push(
        `| ${name} WebTorrent 3.0.21, rarest first, same lab | ${bound.toFixed(1)} | ${w.last.toFixed(1)} | **${(w.last / bound).toFixed(2)}**; meshdrop **${(w.last / r.last).toFixed(2)}×** faster | meshdrop ≥ 2× faster | seeder sent ${(w.uplink[1] / bytes).toFixed(2)} copies on the wire; all uplinks ${(wtotal / (leechers * bytes)).toFixed(2)}× what was delivered; busy ${utilisation(w, rates)} | ${pct(w.cpuBusy)} |`,
      );
      console.log(rows.at(-1));
    }
    return r;
  });
}

async function linkRow(name, { rate, delay, loss, bytes, goal }) {
  return withLab(name.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 8), async (lab) => {
    await lab.peer(1, { rate: `${rate / MB}mbyte`, delay, loss });
    await lab.peer(2, { rate: `${rate / MB}mbyte`, delay, loss });
    lab.origin = await lab.startServer();
    const blast = await rawBlast(lab, 1, 2, bytes);
    const r = await swarmRun(lab, { seed: 1, leechers: [2], bytes, timeoutMs: 1_800_000, save: false });
    const mesh = bytes / r.last;
    const raw = bytes / blast.seconds;
    rows.push(
      `| ${name}: 1 → 1, ${bytes / MiB} MiB, ${rate / MB} MB/s, ${delay} ms${loss ? `, ${loss * 100} % loss` : ""} | link ${(rate / MB).toFixed(2)} MB/s | meshdrop ${(mesh / MB).toFixed(2)} MB/s (${pct(mesh / rate)} of the link); blast ${(raw / MB).toFixed(2)} MB/s (${pct(raw / rate)}) | **${(mesh / raw).toFixed(2)}** of the blast | ≥ ${goal} | one channel, no swarm | ${pct(r.cpuBusy)} |`,
    );
    console.log(rows.at(-1));
  });
}

// The lossy L1 runs at about 0.15 MB/s (one congestion-controlled flow at 1 % loss and
// 100 ms round trips), so it is a quarter of L1's size.
const scale = SMOKE
  ? { l1: 4 * MiB, l1Lossy: 1 * MiB, l2: 8 * MiB, l2Rate: 1 * MB, l3: 2 * MiB, l3Rate: 0.25 * MB, l4: 4 * MiB }
  : { l1: 64 * MiB, l1Lossy: 16 * MiB, l2: 256 * MiB, l2Rate: 2 * MB, l3: 64 * MiB, l3Rate: 1 * MB, l4: 64 * MiB };

console.log(`# lab benchmarks, ${SMOKE ? "smoke" : "full"} size`);
if (only.includes("L1")) {
  await linkRow("L1", { rate: 4 * MB, delay: 20, loss: 0, bytes: scale.l1, goal: 0.95 });
  await linkRow("L1 lossy", { rate: 4 * MB, delay: 50, loss: 0.01, bytes: scale.l1Lossy, goal: 0.9 });
}
if (only.includes("L2")) {
  await swarmRow("L2", { leechers: 3, seedRate: scale.l2Rate, leechRate: scale.l2Rate, delay: 20, bytes: scale.l2, goal: 1.1, webtorrent: true });
}
if (only.includes("L3")) {
  await swarmRow("L3", { leechers: 8, seedRate: scale.l3Rate, leechRate: scale.l3Rate, delay: 20, bytes: scale.l3, goal: 1.15 });
}
if (only.includes("L4")) {
  await swarmRow("L4", { leechers: 3, seedRate: 1 * MB, leechRate: 4 * MB, delay: 20, bytes: scale.l4, goal: 1.1 });
}
console.log("\n| row | bound (s) | figures | ratio | goal | notes | CPU |\n|---|---|---|---|---|---|---|");
for (const r of rows) console.log(r);
