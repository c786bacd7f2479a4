// Shared by the browser tests: start the built server (dist/server) on a free port with its
// own data directory, and launch Debian's Chromium through playwright-core.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts dist/server with the embedded defaults (SQLite in a temp dir) unless env overrides. */
export async function startServer(env = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "meshdrop-e2e-"));
  const logs = [];
  const base = `http://127.0.0.1:${port}`;
  const launch = async () => {
    const child = spawn(join(ROOT, "dist", "server"), [], {
      cwd: join(ROOT, "dist"),
      env: { ...process.env, IP: "127.0.0.1", PORT: String(port), MESHDROP_DATA_DIR: dataDir, RUST_LOG: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (d) => logs.push(d.toString()));
    child.stderr.on("data", (d) => logs.push(d.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited early:\n${logs.join("")}`);
      try {
        if ((await fetch(`${base}/healthz`)).ok) break;
      } catch {}
      if (Date.now() > deadline) throw new Error(`server did not start:\n${logs.join("")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return child;
  };
  const kill = async (child) => {
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
  };
  let child = await launch();
  return {
    base,
    logs,
    /** Stops the server and starts it again on the same port and data (as a deploy does),
     *  `downMs` later. */
    async restart(downMs = 0) {
      await kill(child);
      await new Promise((r) => setTimeout(r, downMs));
      child = await launch();
    },
    async stop() {
      await kill(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** DATABASE_URL (a fresh database) and REDIS_URL for the Postgres and Redis that
 *  scripts/test.sh started; under CI they must be there. */
export function testServices() {
  const admin = process.env.MESHDROP_TEST_POSTGRES;
  const redis = process.env.MESHDROP_TEST_REDIS;
  if (!admin || !redis) {
    if (process.env.CI) throw new Error("MESHDROP_TEST_POSTGRES and MESHDROP_TEST_REDIS must be set (scripts/test.sh)");
    return {};
  }
  const name = `meshdrop_e2e_${process.pid}_${Date.now()}`;
  execFileSync("psql", [admin, "-q", "-c", `CREATE DATABASE ${name}`]);
  return { DATABASE_URL: admin.replace(/\/[^/]*$/, `/${name}`), REDIS_URL: redis };
}

/** Starts Chromium through `launch`, once more if it crashed while starting: Debian's
 *  Chromium now and then dies (SIGSEGV) before its first page under a loaded machine, when
 *  nothing of meshdrop has run yet. Any later failure, or a second crash, stands. */
async function startChromium(launch) {
  try {
    return await launch();
  } catch (e) {
    if (!/has been closed|signal=SIG/.test(e.message)) throw e;
    console.error(`# Chromium crashed while starting (${e.message.split("\n")[0]}); starting it again`);
    return launch();
  }
}

export async function launchBrowser() {
  return startChromium(() =>
    chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: BROWSER_ARGS }),
  );
}

/** A fresh browser context whose page errors fail the test. */
export async function newPage(browser, origin) {
  const context = await browser.newContext();
  if (origin) await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  return { context, page, errors };
}

/** A context that may use real host candidates on loopback (camera and microphone granted,
 *  so no mDNS obfuscation) and accepts downloads; its page errors are collected. */
export async function peerPage(browser, origin) {
  const context = await browser.newContext({ acceptDownloads: true });
  await context.grantPermissions(["camera", "microphone"], { origin });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  return { context, page, errors };
}

/** Waits until the Dioxus app has hydrated (a client-only effect marks the shell). */
export async function waitHydrated(page) {
  await page.waitForSelector('[data-hydrated="true"]', { timeout: 30_000 });
}

/** The transfer panel's text and log lines, for assertion messages. */
export async function panelText(page) {
  return page
    .locator('[data-testid="transfer"]')
    .evaluate((el) => el.textContent + " | log: " + [...el.querySelectorAll("li")].map((l) => l.textContent).join(" | "))
    .catch(() => "(no panel)");
}

/** Waits for the transfer to reach `phase` (a `data-phase` value); on timeout the error
 *  carries the panel's text, which says what the page was doing. */
export async function waitPhase(page, phase, timeout) {
  try {
    await page.waitForSelector(`[data-phase="${phase}"]`, { timeout });
  } catch (e) {
    throw new Error(`${e.message}\npanel: ${await panelText(page)}`);
  }
}

/** Clicks the page's Save link and stores the download at `path`. */
export async function saveDownload(page, path) {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="save"]')]);
  await download.saveAs(path);
  return path;
}

/** Shares `files` (a path or paths) from `page` through `${base}/upload`: returns the room
 *  link once the page is seeding. */
export async function share(page, base, files) {
  await page.goto(`${base}/upload`);
  await waitHydrated(page);
  await page.setInputFiles('[data-testid="file-input"]', files);
  const link = await page.locator('[data-testid="share-link"]').inputValue({ timeout: 60_000 });
  await page.waitForSelector('[data-phase="seeding"]');
  return link;
}

export const BROWSER_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
  "--allow-loopback-in-peer-connection",
];

/** A browser with an on-disk profile (storage survives quitting it), allowed to use WebRTC
 *  on loopback for `origin` (or each of several origins). `args` are added to the launch
 *  flags. Returns its one page. */
export async function launchProfile(profileDir, origin, { args = [] } = {}) {
  const context = await startChromium(() =>
    chromium.launchPersistentContext(profileDir, {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: [...BROWSER_ARGS, ...args],
      acceptDownloads: true,
    }),
  );
  for (const o of [origin].flat()) await context.grantPermissions(["camera", "microphone"], { origin: o });
  const page = context.pages()[0] || (await context.newPage());
  return { context, page };
}

/** Peak resident memory (VmHWM, bytes) of the largest renderer process of the browser that
 *  uses `profileDir` (Chromium passes --user-data-dir on to every child process), since the
 *  kernel's counter was last reset. Chromium resets it itself about once a minute (seen here:
 *  a renderer's VmHWM fell from 317 to 209 MiB at 60 s and again at 120 s), so over a longer
 *  run only `trackRendererPeak` gives the true peak. */
export function rendererPeakRss(profileDir) {
  let peak = 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // Zygote-forked children rewrite their title: one space-separated string, not NULs.
      const args = readFileSync(`/proc/${name}/cmdline`, "utf8").split(/[\0 ]/);
      if (!args.includes("--type=renderer") || !args.includes(`--user-data-dir=${profileDir}`)) continue;
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${name}/status`, "utf8"));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {}
  }
  if (!peak) throw new Error(`no renderer process for ${profileDir}`);
  return peak;
}

/** Follows `rendererPeakRss` every `everyMs` until `stop()`, which returns the largest value
 *  seen: the peak over the whole run, across Chromium's resets of the counter. */
export function trackRendererPeak(profileDir, everyMs = 250) {
  let peak = 0;
  const started = Date.now();
  const tracker = {
    /** Seconds from the start of tracking to the sample where the peak was first seen. */
    peakAtSecs: 0,
    /** The largest value seen so far; tracking goes on. */
    get peak() {
      sample();
      return peak;
    },
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
  const sample = () => {
    try {
      const now = rendererPeakRss(profileDir);
      if (now > peak) {
        peak = now;
        tracker.peakAtSecs = (Date.now() - started) / 1000;
      }
    } catch {}
  };
  const timer = setInterval(sample, everyMs);
  return tracker;
}

/** CPU time (ms) used so far by the Chromium processes running on this machine, summed over
 *  their threads from `/proc/<pid>/task/<tid>/stat` (utime + stime, 100 ticks a second).
 *  Subtract two readings to see what a step cost. Threads of a process or Worker that ends
 *  in between are lost, so read before closing pages. */
export function chromiumCpuMs() {
  let ticks = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("chromium")) continue;
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        // Fields after the command name (which may contain spaces): utime is the 12th.
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ticks += Number(fields[11]) + Number(fields[12]);
      }
    } catch {}
  }
  return ticks * 10;
}
