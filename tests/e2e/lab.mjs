// The network lab from node: namespaces through scripts/netlab.sh, the release server and
// coturn in the "wan" namespace, one Chromium per peer namespace (docs/netlab.md).
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { BROWSER_ARGS } from "./harness.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const NETLAB = join(ROOT, "scripts", "netlab.sh");
const run = promisify(execFile);

/** The server's address inside the lab. */
export const SERVER_IP = "10.237.0.1";
export const ORIGIN = `http://${SERVER_IP}:8080`;

/** Whether the lab can run here: `{ ok: true }` or `{ ok: false, reason }` (one line). */
export function labAvailability() {
  try {
    execFileSync("bash", [NETLAB, "check"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e.stdout || e.message).trim() };
  }
}

/** Under CI the lab must run (a skip there would hide a broken lab); elsewhere a test that
 *  needs it is skipped with the reason. Returns the `skip` option for node:test. */
export function labSkip() {
  const { ok, reason } = labAvailability();
  if (ok) return false;
  if (process.env.CI) throw new Error(reason);
  return reason;
}

/** Fraction of the machine's CPU time that was busy between two `cpuSample()`s. */
export function cpuSample() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  return { idle, total: f.reduce((a, b) => a + b, 0) };
}
export function busyBetween(a, b) {
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}

// Labs this process has up: removed on Ctrl-C or SIGTERM too, not only by the tests' own
// `down()` (a killed run's lab would also be removed by the next `up` of the same name).
const activeLabs = new Set();
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    for (const name of activeLabs) {
      try {
        execFileSync("bash", [NETLAB, "down", name], { stdio: "ignore", timeout: 30_000 });
      } catch {}
    }
    process.exit(130);
  });
}

export class Lab {
  /** `name`: 1-8 of [a-z0-9], unique among labs running at once. */
  constructor(name) {
    this.name = name;
    this.browsers = [];
    this.server = null;
    this.dir = mkdtempSync(join(tmpdir(), `meshdrop-lab-${name}-`));
  }

  ns(kind) {
    return `md-${this.name}-${kind}`;
  }

  async netlab(...args) {
    try {
      return (await run("bash", [NETLAB, ...args.map(String)], { encoding: "utf8" })).stdout;
    } catch (e) {
      throw new Error(`netlab.sh ${args.join(" ")}: ${e.stderr || e.message}`);
    }
  }

  async up() {
    activeLabs.add(this.name);
    await this.netlab("up", this.name);
    return this;
  }

  /** Peer `i` (1..200) with its uplink shaped: `{ rate: "2mbyte", delay: 20, jitter, loss,
   *  queue, nat: "none" | "cone" | "symmetric" }`. */
  async peer(i, settings = {}) {
    const kv = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
    await this.netlab("peer", this.name, i, ...kv);
  }

  /** Starts coturn in the wan namespace; returns its shared secret. */
  async turn() {
    this.turnSecret = randomBytes(24).toString("hex");
    await this.netlab("turn", this.name, this.turnSecret);
    return this.turnSecret;
  }

  /** Cuts (`false`) or restores (`true`) peer `i`'s link. */
  async link(i, up) {
    await this.netlab("link", this.name, i, up ? "up" : "down");
  }

  /** Peer `i`'s uplink counters: `{ bytes, packets, drops, emu }` (emu: the delay line's own). */
  async stats(i) {
    const s = JSON.parse(await this.netlab("stats", this.name, i));
    const tc = s.tc[0] || {};
    return { bytes: tc.bytes || 0, packets: tc.packets || 0, drops: tc.drops || 0, emu: s.emu };
  }

  /** Runs dist/server in the wan namespace on ORIGIN. With coturn running (`turn()`), the
   *  page gets it as STUN and TURN; `{ relay: false }` hands out STUN only, as a server
   *  with no TURN configured does. `env` adds to or overrides the server's environment. */
  async startServer(env = {}, { relay = true } = {}) {
    const dataDir = join(this.dir, "server");
    const logs = [];
    const ice = {};
    if (this.turnSecret) {
      ice.MESHDROP_STUN_URLS = `stun:${SERVER_IP}:3478`;
      if (relay) {
        ice.MESHDROP_TURN_URLS = `turn:${SERVER_IP}:3478?transport=udp`;
        ice.MESHDROP_TURN_SECRET = this.turnSecret;
      }
    }
    const child = spawn("ip", ["netns", "exec", this.ns("wan"), join(ROOT, "dist", "server")], {
      cwd: join(ROOT, "dist"),
      env: {
        ...process.env,
        IP: SERVER_IP,
        PORT: "8080",
        MESHDROP_PUBLIC_URL: ORIGIN,
        MESHDROP_DATA_DIR: dataDir,
        RUST_LOG: "info",
        ...ice,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (d) => logs.push(d.toString()));
    child.stderr.on("data", (d) => logs.push(d.toString()));
    this.server = { child, logs };
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited early:\n${logs.join("")}`);
      try {
        await run("ip", ["netns", "exec", this.ns("wan"), "curl", "-sf", "-m", "1", `${ORIGIN}/healthz`]);
        return ORIGIN;
      } catch {}
      if (Date.now() > deadline) throw new Error(`server did not start:\n${logs.join("")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A headless Chromium whose network is peer `i`'s namespace (the driver stays outside:
   *  only the browser's network namespace changes, so the CDP pipe keeps working). */
  async browser(i) {
    const browser = await chromium.launch({
      executablePath: join(ROOT, "tests", "netlab", "chromium-in-netns.sh"),
      env: { ...process.env, MESHDROP_NETNS: this.ns(`p${i}`) },
      // The lab's origin is plain http on a private address: treat it as secure, as https
      // would be, so OPFS and SubtleCrypto exist.
      args: [...BROWSER_ARGS, `--unsafely-treat-insecure-origin-as-secure=${ORIGIN}`],
    });
    this.browsers.push(browser);
    return browser;
  }

  /** A page in peer `i`'s browser that may use host candidates (camera and microphone
   *  granted, so no mDNS names) and accepts downloads; page errors are collected. */
  async page(i) {
    const browser = await this.browser(i);
    const context = await browser.newContext({ acceptDownloads: true });
    await context.grantPermissions(["camera", "microphone"], { origin: ORIGIN });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    return { browser, context, page, errors };
  }

  /** Closes the browsers, stops everything in the namespaces and removes them. */
  async down() {
    await Promise.allSettled(this.browsers.map((b) => b.close()));
    this.browsers = [];
    await this.netlab("down", this.name).catch((e) => console.error(`# ${e.message}`));
    activeLabs.delete(this.name);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `body(lab)` in a fresh lab named `name`, always tearing it down. */
export async function withLab(name, body) {
  const lab = await new Lab(name).up();
  try {
    return await body(lab);
  } finally {
    await lab.down();
  }
}

/** Samples every peer's uplink bytes every `everyMs` until `stop()`: returns per-peer series
 *  `[{ t, bytes }]` and the machine's CPU busy fraction over the whole run. */
export function trackLinks(lab, peers, everyMs = 500) {
  const series = Object.fromEntries(peers.map((i) => [i, []]));
  const started = Date.now();
  const cpu0 = cpuSample();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = (Date.now() - started) / 1000;
      await Promise.all(
        peers.map(async (i) => {
          try {
            series[i].push({ t, bytes: (await lab.stats(i)).bytes });
          } catch {}
        }),
      );
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { series, cpuBusy: busyBetween(cpu0, cpuSample()) };
    },
  };
}
