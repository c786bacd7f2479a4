// The lab's own instruments, checked before any figure made with them is trusted: the
// delay line adds the delay, jitter and loss it is set to, and tbf delivers its rate. Each
// measurement has a baseline path through the same lab in the same run.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Lab, labSkip } from "../e2e/lab.mjs";

const run = promisify(execFile);
const skip = labSkip();
let lab;

before(async () => {
  if (skip) return;
  lab = await new Lab("emu").up();
  await lab.peer(1, {}); // where every measurement starts
  await lab.peer(2, { delay: 20 });
  await lab.peer(3, { delay: 20, jitter: 5 });
  await lab.peer(4, { loss: 0.05 });
  await lab.peer(5, { rate: "4mbyte", delay: 20 });
  await lab.peer(6, {}); // the baseline: no delay line at all
});
after(async () => lab?.down());

/** Round trips (ms) of `count` pings from peer 1 to peer `to`, `intervalS` apart. */
async function pings(to, count, intervalS) {
  const { stdout } = await run("ip", ["netns", "exec", lab.ns("p1"), "ping", "-n", "-c", String(count), "-i", String(intervalS), "-W", "2", `10.237.${to}.2`], { maxBuffer: 1 << 24 }).catch((e) => e);
  const rtts = [...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return { rtts, sent: count };
}

/** Peer `i`'s delay-line counters once they include `packets` packets (the line writes them
 *  once a second). */
async function settledEmu(i, packets) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { emu } = await lab.stats(i);
    if (emu && emu.packets >= packets) return emu;
    if (Date.now() > deadline) throw new Error(`the delay line counted ${emu?.packets} of ${packets} packets`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

test("the delay line adds its one-way delay, within a millisecond", { skip, timeout: 60_000 }, async () => {
  // Only the reply crosses a delay line (peer 2's uplink); the baseline is the same path to
  // peer 6, which has none.
  const base = await pings(6, 300, 0.01);
  const delayed = await pings(2, 300, 0.01);
  assert.equal(delayed.rtts.length, 300);
  const added = median(delayed.rtts) - median(base.rtts);
  const emu = (await lab.stats(2)).emu;
  console.log(`# 20 ms set: ${added.toFixed(2)} ms added (round trip median ${median(delayed.rtts).toFixed(2)} ms against ${median(base.rtts).toFixed(2)} ms without the line, max ${Math.max(...delayed.rtts).toFixed(2)}); released ${emu.late_us_mean} µs late on average (max ${emu.late_us_max} µs)`);
  assert.ok(added >= 19.9 && added < 21, `${added} ms added for 20 ms set`);
});

test("jitter spreads the delay uniformly over its range", { skip, timeout: 60_000 }, async () => {
  // 100 ms apart: wider than the range, so no packet is held back to keep the order.
  const { rtts } = await pings(3, 200, 0.1);
  assert.equal(rtts.length, 200);
  const sorted = [...rtts].sort((a, b) => a - b);
  const lo = sorted[0], p99 = sorted[Math.floor(0.99 * sorted.length) - 1], m = mean(rtts);
  const late = sorted.filter((x) => x > 26);
  const emu = (await lab.stats(3)).emu;
  console.log(`# 20 ± 5 ms set: round trips ${lo.toFixed(2)} ms up to ${p99.toFixed(2)} ms at the 99th percentile, mean ${m.toFixed(2)}; ${late.length} of ${rtts.length} later than 26 ms (${late.map((x) => x.toFixed(1)).join(", ") || "none"}); the line's latest release ${(emu.late_us_max / 1000).toFixed(1)} ms after due`);
  // A loaded two-core machine now and then delays one packet (the scheduler, not the line's
  // setting); the percentiles and the mean must still show the set distribution.
  assert.ok(lo >= 15 && p99 < 26, `${lo}..${p99}`);
  // Uniform over ±5 ms: standard error of a 200-sample mean is 0.2 ms.
  assert.ok(Math.abs(m - 20) < 1, `mean ${m}`);
  assert.ok(lo < 17 && p99 > 23, `spread ${lo}..${p99} should cover most of the range`);
});

test("the delay line drops at its loss rate", { skip, timeout: 60_000 }, async () => {
  const n = 2000;
  const { rtts } = await pings(4, n, 0.002);
  const loss = 1 - rtts.length / n;
  const emu = await settledEmu(4, n);
  console.log(`# 5 % set: ${(loss * 100).toFixed(2)} % of ${n} round trips lost; the line dropped ${emu.dropped} of ${emu.packets}`);
  // Binomial at n = 2000, p = 0.05: standard deviation 0.49 %; 4 sigma either side.
  assert.ok(Math.abs(loss - 0.05) < 0.02, `loss ${loss}`);
  assert.equal(emu.dropped, n - rtts.length);
});

test("a shaped link delivers its rate through the delay line, at a stated CPU cost", { skip, timeout: 120_000 }, async () => {
  // 16 MB over TCP from peer 5 (4 MB/s uplink, 20 ms) to peer 1: the bulk of the packets
  // cross tbf and the delay line.
  const bytes = 16_000_000;
  writeFileSync(join(lab.dir, "blob"), Buffer.alloc(bytes, 7));
  const server = spawn("ip", ["netns", "exec", lab.ns("p5"), "python3", "-m", "http.server", "8000", "--bind", "10.237.5.2", "--directory", lab.dir], { stdio: "ignore" });
  try {
    const url = "http://10.237.5.2:8000/blob";
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await run("ip", ["netns", "exec", lab.ns("p1"), "curl", "-sfI", "-m", "1", url]);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const before = (await lab.stats(5)).emu;
    const t0 = Date.now();
    const { stdout } = await run("ip", ["netns", "exec", lab.ns("p1"), "curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url]);
    const seconds = (Date.now() - t0) / 1000;
    const after = await settledEmu(5, before.packets + Math.floor(bytes / 1500));
    const rate = Number(stdout);
    const packets = after.packets - before.packets;
    const cpuMs = after.cpu_ms - before.cpu_ms;
    console.log(`# 4 MB/s set: TCP moved ${(rate / 1e6).toFixed(2)} MB/s (${((rate / 4e6) * 100).toFixed(0)} % of the rate) in ${seconds.toFixed(1)} s; the delay line handled ${packets} packets at ${((cpuMs * 1000) / Math.max(1, packets)).toFixed(1)} µs of CPU each (${((cpuMs / 1000 / seconds) * 100).toFixed(1)} % of a core)`);
    assert.ok(rate > 0.85 * 4e6 && rate < 1.02 * 4e6, `TCP rate ${rate}`);
    assert.ok(packets > bytes / 1500 / 2, `${packets} packets crossed the line`);
  } finally {
    server.kill();
  }
});
