// Accounts in Chromium: sign in through a fake GitHub, share a file, find the room in
// /rooms and close it. A page that has the room open is told, and the link answers 410
// Gone. The server keeps its rooms in the real Postgres and its sessions in the real Redis
// that scripts/test.sh started.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { startServer, launchBrowser, newPage, peerPage, waitHydrated, testServices } from "./harness.mjs";
import { startFakeGithub } from "./fake-oauth.mjs";
import { createRequire } from "node:module";

const QR_DECODER = createRequire(import.meta.url).resolve("jsqr");

let server, browser, github;
before(async () => {
  github = await startFakeGithub();
  const services = testServices();
  server = { ...(await startServer({ ...github.env, ...services })), services };
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await github?.close();
});

test("sign in, create a room, see it in /rooms, revoke it, the link is gone", async () => {
  const { context, page, errors } = await newPage(browser, server.base);
  // Ada's tab shares the file with another browser context over loopback.
  await context.grantPermissions(["camera", "microphone"], { origin: server.base });
  // Signed out, /rooms sends the browser to sign in first.
  await page.goto(`${server.base}/rooms`);
  assert.equal(new URL(page.url()).pathname, "/signin");
  await waitHydrated(page);
  await page.click('[data-testid="signin-github"]');
  // The fake provider approves at once; the callback lands back on /rooms.
  await page.waitForURL(`${server.base}/rooms`, { timeout: 15_000 });
  await waitHydrated(page);
  await page.locator('[data-testid="no-rooms"]').waitFor();
  await page.locator('[data-testid="nav-account"]', { hasText: "Ada Lovelace" }).waitFor();

  // A room created while signed in belongs to Ada.
  await page.goto(`${server.base}/upload`);
  await waitHydrated(page);
  await page.setInputFiles('[data-testid="file-input"]', {
    name: "minutes.txt",
    mimeType: "text/plain",
    buffer: Buffer.from("meeting minutes\n".repeat(1000)),
  });
  const linkInput = page.locator('[data-testid="share-link"]');
  await linkInput.waitFor({ timeout: 15_000 });
  const link = await linkInput.inputValue();
  const id = link.split("/").pop();

  // Someone downloads the whole file while Ada's tab shares it.
  const finished = await peerPage(browser, server.base);
  await finished.page.goto(link);
  await finished.page.waitForSelector('[data-phase="done"]', { timeout: 60_000 });

  // Ada manages her rooms in another tab; the first keeps sharing.
  const manager = await page.context().newPage();
  manager.on("pageerror", (e) => errors.push(e.message));
  // The finished download reports itself (once per ticket) and both tabs are in the room:
  // the listing shows 1 completed and 2 online. The report may land just after the page
  // says done, so the listing is loaded again until it is counted.
  const card = manager.locator(`[data-testid="my-room"][data-room="${id}"]`);
  const fact = (testid) => card.locator(`[data-testid="${testid}"]`).innerText();
  for (let tries = 0; ; tries++) {
    await manager.goto(`${server.base}/rooms`);
    await waitHydrated(manager);
    await card.waitFor();
    if ((await fact("my-room-completed")) === "1" || tries === 20) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(await fact("my-room-completed"), "1", "the finished download is counted");
  assert.equal(await fact("my-room-online"), "2", "the sharer and the downloader are online");
  assert.equal(await fact("my-room-size"), "15.6 KiB");
  assert.equal(await card.locator('[data-testid="my-room-title"]').innerText(), "minutes.txt");
  assert.equal(await card.locator('[data-testid="my-room-link"]').innerText(), link);
  // Created now, expiring after the default week.
  const utc = async (testid) => Date.parse((await card.locator(`[data-testid="${testid}"]`).innerText()).replace(" UTC", "Z").replace(" ", "T"));
  const created = await utc("my-room-created");
  assert.ok(Math.abs(created - Date.now()) < 5 * 60_000, "created just now");
  assert.equal((await utc("my-room-expires")) - created, 7 * 24 * 3600 * 1000);
  // The copy button puts the link on the clipboard.
  await manager.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.base });
  await card.locator('[data-testid="copy-link"]').click();
  await card.locator('[data-testid="copy-link"]', { hasText: "Copied!" }).waitFor();
  assert.equal(await manager.evaluate(() => navigator.clipboard.readText()), link);
  // The QR code, drawn and read back by a QR decoder, is the link.
  await card.locator('[data-testid="my-room-show-qr"]').click();
  await manager.addScriptTag({ path: QR_DECODER });
  const decoded = await card.locator(".qr svg").evaluate(async (svg) => {
    const image = new Image();
    image.src = "data:image/svg+xml;base64," + btoa(new XMLSerializer().serializeToString(svg));
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 400;
    const g = canvas.getContext("2d");
    g.fillStyle = "#fff";
    g.fillRect(0, 0, 400, 400);
    g.drawImage(image, 20, 20, 360, 360);
    return window.jsQR(g.getImageData(0, 0, 400, 400).data, 400, 400)?.data;
  });
  assert.equal(decoded, link);

  // Move its expiry to 30 days from now.
  await card.locator('[data-testid="my-room-expiry-choice"]').selectOption("720");
  const setAt = Date.now();
  await card.locator('[data-testid="my-room-set-expiry"]').click();
  await manager.waitForFunction(
    ([id, from]) => {
      const text = document.querySelector(`[data-room="${id}"] [data-testid="my-room-expires"]`)?.innerText;
      const at = text && Date.parse(text.replace(" UTC", "Z").replace(" ", "T"));
      return at && Math.abs(at - (from + 720 * 3600 * 1000)) < 5 * 60_000;
    },
    [id, setAt],
    { timeout: 15_000 },
  );

  // Rename it, then close it.
  await card.locator('[data-testid="my-room-title-input"]').fill("Meeting notes");
  await card.locator('[data-testid="my-room-rename"]').click();
  await card.locator('[data-testid="my-room-title"]', { hasText: "Meeting notes" }).waitFor();
  await card.locator('[data-testid="my-room-revoke"]').click();
  await card.locator('[data-testid="my-room-revoked"]').waitFor();

  // Every page in the room is told. The sharer's tab and the finished download stop
  // sharing; nothing failed, so the file can still be saved.
  const stopped = (p) => p.locator('[data-testid="phase"][data-phase="stopped"]');
  await stopped(page).waitFor({ timeout: 15_000 });
  assert.match(await stopped(page).innerText(), /^Stopped sharing: This room was closed: the owner closed this room/);
  await stopped(finished.page).waitFor({ timeout: 15_000 });
  assert.match(await stopped(finished.page).innerText(), /^Done, no longer sharing: This room was closed/);
  const [download] = await Promise.all([finished.page.waitForEvent("download"), finished.page.click('[data-testid="save"]')]);
  assert.equal(readFileSync(await download.path(), "utf8"), "meeting minutes\n".repeat(1000));
  assert.deepEqual(finished.errors, [], "no errors in the finished page");
  // The sharer's tab no longer asks before closing: it shares nothing now.
  assert.equal(await page.evaluate(() => window.onbeforeunload), null);

  if (server.services.DATABASE_URL) {
    // The room, its owner and its revocation are in Postgres; the session is in Redis.
    const row = execFileSync("psql", [server.services.DATABASE_URL, "-At", "-c",
      `SELECT r.title, u.display_name, r.revoked_at IS NOT NULL FROM room r JOIN app_user u ON u.id = r.owner_id WHERE r.id = '${id}'`]).toString().trim();
    assert.equal(row, "Meeting notes|Ada Lovelace|t");
    const url = new URL(server.services.REDIS_URL);
    const keys = execFileSync("redis-cli", ["-h", url.hostname, "-p", url.port, "--scan", "--pattern", "meshdrop:session:*"]).toString().trim();
    assert.ok(keys.length > 0, "a session is stored in Redis");
  }

  // Anyone opening the link now learns the room is gone.
  const visitor = await newPage(browser);
  const response = await visitor.page.goto(link);
  assert.equal(response.status(), 410);
  await visitor.page.locator('[data-testid="problem"]', { hasText: "closed by its owner" }).waitFor();

  // Signing out ends the session: /rooms asks to sign in again.
  await page.click('[data-testid="sign-out"]');
  await page.waitForURL(`${server.base}/`);
  await page.goto(`${server.base}/rooms`);
  assert.equal(new URL(page.url()).pathname, "/signin");
  assert.deepEqual(errors, [], "no errors in the page");
});
