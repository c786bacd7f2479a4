// The swarm on shaped links: one seeder and three leechers, each behind its own 1 MB/s
// uplink with 20 ms one-way delay. Every leecher saves a byte-identical file, and the
// leechers' uplinks carry pieces too (the swarm spreads, not a star).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Lab, labSkip } from "../e2e/lab.mjs";
import { swarmRun, MB } from "./runs.mjs";

const skip = labSkip();
let lab;
after(async () => lab?.down());

test("1 seeder → 3 leechers on 1 MB/s, 20 ms links: byte-identical, pieces spread between leechers", { skip, timeout: 300_000 }, async () => {
  lab = await new Lab("swarm").up();
  for (const i of [1, 2, 3, 4]) await lab.peer(i, { rate: "1mbyte", delay: 20 });
  lab.origin = await lab.startServer();
  const bytes = 8 * 1024 * 1024;
  const r = await swarmRun(lab, { seed: 1, leechers: [2, 3, 4], bytes, timeoutMs: 240_000 });
  assert.deepEqual(r.identical, [true, true, true]);
  assert.deepEqual(r.errors, []);
  // The seeder cannot have sent everything to everyone: its uplink carried well under the
  // three copies a star would, and the leechers' uplinks carried the rest.
  const leecherUp = r.uplink[2] + r.uplink[3] + r.uplink[4];
  assert.ok(r.uplink[1] < 2 * bytes, `seeder sent ${(r.uplink[1] / MB).toFixed(1)} MB`);
  assert.ok(leecherUp > bytes, `leechers sent ${(leecherUp / MB).toFixed(1)} MB`);
  console.log(`# done in ${r.seconds.map((s) => s.toFixed(1)).join(", ")} s; uplinks (MB) seeder ${(r.uplink[1] / MB).toFixed(1)}, leechers ${[2, 3, 4].map((i) => (r.uplink[i] / MB).toFixed(1)).join(", ")}; CPU ${(r.cpuBusy * 100).toFixed(0)} %`);
});
