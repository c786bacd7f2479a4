// WebTorrent 3 in the network lab: the same swarm as `swarmRun` (one seeder, N leechers, each
// in its namespace behind its shaped uplink), with WebTorrent's browser build and a
// WebSocket tracker in the wan namespace. Leechers use `strategy: 'rarest'`, WebTorrent's
// best setting for a swarm (its default order is sequential).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVER_IP, trackLinks } from "../e2e/lab.mjs";
import { seedTorrent, addTorrent } from "../e2e/webtorrent-page.mjs";

const E2E = join(dirname(fileURLToPath(import.meta.url)), "..", "e2e");
const WEBTORRENT_JS = readFileSync(join(E2E, "node_modules", "webtorrent", "dist", "webtorrent.min.js"));
const TRACKER_PORT = 8000;

/** Starts the tracker in the lab's wan namespace; resolves once it listens. */
function startTracker(lab) {
  const child = spawn("ip", ["netns", "exec", lab.ns("wan"), process.execPath, join(E2E, "lab-tracker.mjs"), SERVER_IP, String(TRACKER_PORT)], { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the tracker did not start within 10 s")), 10_000);
    child.stdout.on("data", (d) => {
      if (String(d).includes("listening")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => reject(new Error(`the tracker exited (${code})`)));
  });
}

/** A lab page of the meshdrop origin with WebTorrent's build loaded as `window.WebTorrent`. */
async function webtorrentPage(lab, i) {
  const p = await lab.page(i);
  await p.page.route("**/__bench/webtorrent.min.js", (route) => route.fulfill({ body: WEBTORRENT_JS, contentType: "text/javascript" }));
  await p.page.goto(`${lab.origin}/`);
  await p.page.evaluate(async () => {
    window.WebTorrent = (await import("/__bench/webtorrent.min.js")).default;
  });
  return p;
}

/** Seeds a random file of `bytes` from peer `seed` (hashing excluded from the time) and adds
 *  its magnet link in every peer of `leechers` at once; returns each leecher's seconds and
 *  the last, every uplink's bytes, and the machine's CPU. */
export async function webtorrentRun(lab, { seed, leechers, bytes }) {
  const tracker = await startTracker(lab);
  try {
    const file = join(lab.dir, "wt.bin");
    writeFileSync(file, randomBytes(bytes));
    const announce = `ws://${SERVER_IP}:${TRACKER_PORT}`;
    const options = { tracker: { rtcConfig: { iceServers: [] } } };
    const seeder = await webtorrentPage(lab, seed);
    await seeder.page.evaluate(() => {
      const input = document.createElement("input");
      input.type = "file";
      input.id = "wt-file";
      input.hidden = true;
      document.body.append(input);
    });
    await seeder.page.setInputFiles("#wt-file", file);
    const magnet = await seeder.page.evaluate(seedTorrent, { announce, options });
    const pages = [];
    for (const i of leechers) pages.push({ i, ...(await webtorrentPage(lab, i)) });
    const before = {};
    for (const i of [seed, ...leechers]) before[i] = (await lab.stats(i)).bytes;
    const links = trackLinks(lab, [seed, ...leechers]);
    const started = Date.now();
    let seconds;
    let tracked;
    try {
      seconds = await Promise.all(
        pages.map((p) =>
          p.page
            .evaluate(addTorrent, { magnet, announce, options, strategy: "rarest" })
            .then(() => (Date.now() - started) / 1000),
        ),
      );
    } finally {
      tracked = await links.stop();
    }
    const uplink = {};
    for (const i of [seed, ...leechers]) uplink[i] = (await lab.stats(i)).bytes - before[i];
    return { seconds, last: Math.max(...seconds), uplink, cpuBusy: tracked.cpuBusy };
  } finally {
    tracker.kill();
  }
}
