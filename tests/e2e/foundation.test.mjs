// The foundation end to end: /upload creates a room from a chosen file, the link opens in a
// second browser context with the file listed server-side, and the page hydrates.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, newPage, waitHydrated } from "./harness.mjs";

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("upload a file, share the link, open it elsewhere", async () => {
  const sender = await newPage(browser, server.base);
  await sender.page.goto(`${server.base}/upload`);
  await waitHydrated(sender.page);

  const content = Buffer.alloc(3 * 1024 * 1024 + 5, 7); // 3.0 MiB
  await sender.page.setInputFiles('[data-testid="file-input"]', {
    name: "quarterly report.pdf",
    mimeType: "application/pdf",
    buffer: content,
  });
  const linkInput = sender.page.locator('[data-testid="share-link"]');
  await linkInput.waitFor({ timeout: 15_000 });
  const link = await linkInput.inputValue();
  assert.match(link, new RegExp(`^${server.base}/room/[A-Za-z0-9_-]{22}$`));
  assert.equal(await sender.page.locator('[data-testid="share"] .qr svg').count(), 1, "QR code shown");
  await sender.page.click('[data-testid="copy-link"]');
  await sender.page.locator('[data-testid="copy-link"]', { hasText: "Copied!" }).waitFor();
  assert.equal(await sender.page.evaluate(() => navigator.clipboard.readText()), link);

  // The room page's first byte already lists the file (server-side rendering).
  const raw = await fetch(link);
  assert.equal(raw.status, 200);
  const html = await raw.text();
  assert.ok(html.includes("quarterly report.pdf"), "file name in the server-rendered HTML");
  assert.ok(html.includes("3.0 MiB"), "file size in the server-rendered HTML");

  // A second, unrelated browser context opens the link.
  const receiver = await newPage(browser);
  const response = await receiver.page.goto(link);
  assert.equal(response.status(), 200);
  await waitHydrated(receiver.page);
  assert.equal(await receiver.page.locator('[data-testid="file-name"]').innerText(), "quarterly report.pdf");
  assert.equal(await receiver.page.locator('[data-testid="file-size"]').innerText(), "3.0 MiB");

  // Hydration: a purely client-side control changes the page.
  const toggle = receiver.page.locator('[data-testid="toggle-qr"]');
  assert.equal(await receiver.page.locator('[data-testid="room-qr"]').count(), 0);
  await toggle.click();
  await receiver.page.locator('[data-testid="room-qr"] svg').waitFor({ timeout: 5_000 });
  assert.equal(await toggle.innerText(), "Hide QR code");

  assert.deepEqual(sender.errors, [], "no errors in the sender page");
  assert.deepEqual(receiver.errors, [], "no errors in the receiver page");
  await sender.context.close();
  await receiver.context.close();
});

test("several files dropped onto the zone make one room", async () => {
  const { page, context, errors } = await newPage(browser);
  await page.goto(`${server.base}/upload`);
  await waitHydrated(page);
  const dataTransfer = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["a".repeat(10)], "one.txt", { type: "text/plain" }));
    dt.items.add(new File([new Uint8Array(2048)], "two.bin"));
    return dt;
  });
  await page.dispatchEvent('[data-testid="dropzone"]', "drop", { dataTransfer });
  const link = await page.locator('[data-testid="share-link"]').inputValue({ timeout: 15_000 });
  await page.goto(link);
  const names = await page.locator('[data-testid="file-name"]').allInnerTexts();
  assert.deepEqual(names, ["one.txt", "two.bin"]);
  assert.deepEqual(errors, []);
  await context.close();
});

test("unknown rooms are 404 and malformed links 400, with a clear page", async () => {
  const { page, context } = await newPage(browser);
  const missing = await page.goto(`${server.base}/room/AAAAAAAAAAAAAAAAAAAAAA`);
  assert.equal(missing.status(), 404);
  await page.getByText("This room does not exist or has expired").waitFor();
  const malformed = await page.goto(`${server.base}/room/not-a-room`);
  assert.equal(malformed.status(), 400);
  await page.getByText("This link is not a room link").waitFor();
  await context.close();
});
