// Hashes files for /upload off the page's main thread. Message in:
// { id, files, piece_size, part, parts, hash }: this worker takes every `parts`-th run
// starting at `part`, so several workers share the files. `hash: false` reads the same way
// and hashes nothing (the browser benchmark's baseline: how fast the files can be read).
// Out: { id, done } as progress (bytes read), then { id, done, hashes, owned } (hashes 32 bytes per piece of the whole room, `owned` 1
// for each piece this worker hashed) or { id, error }.
// Files are read lazily with Blob.slice in runs of whole pieces (up to 16 MiB, so a run
// costs one read however small the pieces), into one reused buffer per run in flight, each
// piece hashed with SubtleCrypto; two runs in flight per worker keep the reader and the
// hasher busy. A file is never in memory whole.
const RUN_BYTES = 16 * 1024 * 1024;
const LANES = 2;

/** Reads all of `blob` into `buffer` (which the read takes over) with a BYOB reader, so no
 *  buffer is allocated per read; returns a view of the bytes over the buffer handed back. */
async function readInto(blob, buffer) {
  const reader = blob.stream().getReader({ mode: "byob" });
  let filled = 0;
  while (filled < blob.size) {
    const { value, done } = await reader.read(new Uint8Array(buffer, filled, buffer.byteLength - filled));
    if (done) break;
    buffer = value.buffer;
    filled += value.byteLength;
  }
  reader.releaseLock();
  if (filled !== blob.size) throw new Error(`short read: ${filled} of ${blob.size} bytes`);
  return new Uint8Array(buffer, 0, filled);
}

self.onmessage = async (event) => {
  const { id, files, piece_size: pieceSize, part = 0, parts = 1, hash = true } = event.data;
  try {
    // Runs of consecutive pieces of one file: [file, offset, length, first piece index].
    const runs = [];
    let index = 0;
    let run = 0;
    const perRun = Math.max(1, Math.floor(RUN_BYTES / pieceSize));
    for (const file of files) {
      const pieces = Math.ceil(file.size / pieceSize);
      for (let p = 0; p < pieces; p += perRun, run++) {
        if (run % parts !== part) continue;
        const offset = p * pieceSize;
        const len = Math.min(perRun * pieceSize, file.size - offset);
        runs.push([file, offset, len, index + p]);
      }
      index += pieces;
    }
    const hashes = new Uint8Array(index * 32);
    const owned = new Uint8Array(index);
    let done = 0;
    let next = 0;
    let lastReport = 0;
    const lane = async () => {
      // One buffer per lane, read into again and again: a fresh buffer per run left 1.2 GiB
      // of dead buffers in the renderer while hashing 2 GiB (V8 did not collect them in time).
      let buffer = new ArrayBuffer(RUN_BYTES);
      while (next < runs.length) {
        const [file, offset, len, first] = runs[next++];
        const data = await readInto(file.slice(offset, offset + len), buffer);
        buffer = data.buffer;
        const digests = [];
        for (let at = 0; hash && at < len; at += pieceSize) {
          digests.push(crypto.subtle.digest("SHA-256", data.subarray(at, Math.min(at + pieceSize, len))));
        }
        const results = await Promise.all(digests);
        results.forEach((d, k) => {
          hashes.set(new Uint8Array(d), (first + k) * 32);
          owned[first + k] = 1;
        });
        done += len;
        const now = performance.now();
        if (now - lastReport > 50) {
          lastReport = now;
          self.postMessage({ id, done });
        }
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
    self.postMessage({ id, done, hashes, owned }, [hashes.buffer, owned.buffer]);
  } catch (e) {
    self.postMessage({ id, error: String(e && e.message ? e.message : e) });
  }
};
