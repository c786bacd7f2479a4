// Accounts in Chromium: sign in through a fake GitHub, share a file, find the room in
// /rooms and close it. A page that has the room open is told, and the link answers 410
// Gone. The server keeps its rooms in the real Postgres and its sessions in the real Redis
// that scripts/test.sh started.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startServer, launchBrowser, newPage, peerPage, waitHydrated, testServices } from "./harness.mjs";
import { startFakeGithub } from "./fake-oauth.mjs";

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
  const { page, errors } = await newPage(browser, server.base);
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

  await page.goto(`${server.base}/rooms`);
  await waitHydrated(page);
  // Someone has the room open (waiting for a peer: the sharer's tab has moved on). The hub
  // tells it when the room closes, and its page says so.
  const guest = await peerPage(browser, server.base);
  await guest.page.goto(link);
  await waitHydrated(guest.page);
  await guest.page.waitForSelector('[data-phase="connecting"]');
  const card = page.locator(`[data-testid="my-room"][data-room="${id}"]`);
  await card.waitFor();
  assert.equal(await card.locator('[data-testid="my-room-title"]').innerText(), "minutes.txt");
  assert.equal(await card.locator('[data-testid="my-room-link"]').innerText(), link);

  // Rename it, then close it.
  await card.locator('[data-testid="my-room-title-input"]').fill("Meeting notes");
  await card.locator('[data-testid="my-room-rename"]').click();
  await card.locator('[data-testid="my-room-title"]', { hasText: "Meeting notes" }).waitFor();
  await card.locator('[data-testid="my-room-revoke"]').click();
  await card.locator('[data-testid="my-room-revoked"]').waitFor();
  const phase = guest.page.locator('[data-testid="phase"][data-phase="failed"]');
  await phase.waitFor({ timeout: 15_000 });
  assert.match(await phase.innerText(), /^Failed: This room was closed/);
  assert.deepEqual(guest.errors, [], "no errors in the guest's page");
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
