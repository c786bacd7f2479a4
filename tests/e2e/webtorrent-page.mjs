// WebTorrent's two roles, as functions for `page.evaluate` in a page that has loaded its
// browser build as `window.WebTorrent`: the baseline of the loopback P2 (bench.mjs) and of
// the lab's L2 (tests/netlab/webtorrent.mjs).

/** Seeds the file picked in `#wt-file`; resolves with its magnet link. */
export function seedTorrent({ announce, options }) {
  return new Promise((resolve, reject) => {
    const client = new window.WebTorrent(options);
    client.on("error", (e) => reject(String(e)));
    client.seed(document.getElementById("wt-file").files[0], { announce: [announce] }, (t) => resolve(t.magnetURI));
  });
}

/** Adds `magnet` (with `strategy`, when given) and resolves once the download is done. */
export function addTorrent({ magnet, announce, options, strategy }) {
  return new Promise((resolve, reject) => {
    const client = new window.WebTorrent(options);
    client.on("error", (e) => reject(String(e)));
    client.add(magnet, { announce: [announce], ...(strategy ? { strategy } : {}) }, (t) => {
      if (t.done) resolve();
      t.on("done", resolve);
    });
  });
}
