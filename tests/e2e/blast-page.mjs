// The two ends of a raw data channel blast, as functions for `page.evaluate`: the baseline
// meshdrop is measured against on loopback (bench.mjs, P1) and on lab links (netlab L1).
// Each expects the page's open channel at `window.__dc`.

/** Sends `total` bytes as 64 KiB messages, keeping at most 8 MiB queued in the channel. */
export function sendBlast(total) {
  return new Promise((resolve) => {
    const dc = window.__dc;
    const msg = new Uint8Array(64 * 1024);
    crypto.getRandomValues(msg);
    const HIGH = 8 * 1024 * 1024;
    dc.bufferedAmountLowThreshold = 2 * 1024 * 1024;
    let sent = 0;
    const pump = () => {
      while (sent < total && dc.bufferedAmount + msg.byteLength <= HIGH) {
        dc.send(msg);
        sent += msg.byteLength;
      }
      if (sent >= total) resolve();
      else dc.onbufferedamountlow = pump;
    };
    pump();
  });
}

/** Resolves once `total` bytes have arrived: the seconds from the first message to the last. */
export function receiveBlast(total) {
  return new Promise((resolve) => {
    let got = 0;
    let first = 0;
    window.__dc.onmessage = (e) => {
      if (!first) first = performance.now();
      got += e.data.byteLength;
      if (got >= total) resolve((performance.now() - first) / 1000);
    };
  });
}
