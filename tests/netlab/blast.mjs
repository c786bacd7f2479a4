// A raw RTCDataChannel blast between two lab peers: the ceiling one channel reaches on a
// link, which meshdrop's own rate on the same link is measured against.
import { sendBlast, receiveBlast } from "../e2e/blast-page.mjs";

/** Connects a page in peer `from` to a page in peer `to` with one ordered data channel
 *  (signaling through the driver, all candidates gathered first), sends `bytes` and returns
 *  the seconds from the first message to the last byte received. */
export async function rawBlast(lab, from, to, bytes) {
  const a = await lab.page(from);
  const b = await lab.page(to);
  await a.page.goto(`${lab.origin}/`);
  await b.page.goto(`${lab.origin}/`);
  const setup = () => {
    const pc = new RTCPeerConnection();
    const dc = pc.createDataChannel("blast", { negotiated: true, id: 0, ordered: true });
    dc.binaryType = "arraybuffer";
    window.__pc = pc;
    window.__dc = dc;
    window.__open = new Promise((r) => (dc.onopen = r));
    window.__gathered = new Promise((r) => {
      pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r();
    });
  };
  await a.page.evaluate(setup);
  await b.page.evaluate(setup);
  // Whole descriptions after gathering: no trickle to relay.
  const offer = await a.page.evaluate(async () => {
    await window.__pc.setLocalDescription(await window.__pc.createOffer());
    await window.__gathered;
    return window.__pc.localDescription.toJSON();
  });
  const answer = await b.page.evaluate(async (o) => {
    await window.__pc.setRemoteDescription(o);
    await window.__pc.setLocalDescription(await window.__pc.createAnswer());
    await window.__gathered;
    return window.__pc.localDescription.toJSON();
  }, offer);
  await a.page.evaluate((ans) => window.__pc.setRemoteDescription(ans), answer);
  await Promise.all([a.page.evaluate(() => window.__open), b.page.evaluate(() => window.__open)]);
  const received = b.page.evaluate(receiveBlast, bytes);
  const started = Date.now();
  await a.page.evaluate(sendBlast, bytes);
  await received;
  const seconds = (Date.now() - started) / 1000;
  await a.browser.close();
  await b.browser.close();
  return { seconds };
}
