// Hashes files for /upload off the page's main thread. Messages in: { id, file, piece_size };
// out: { id, done, hashes? , error? } with progress as bytes done. Pieces are read lazily with
// Blob.slice and hashed with SubtleCrypto, four in flight, so a file is never in memory whole.
self.onmessage = async (event) => {
  const { id, files, piece_size: pieceSize } = event.data;
  try {
    const spans = [];
    for (const file of files) {
      for (let offset = 0; offset < file.size; offset += pieceSize) {
        spans.push([file, offset, Math.min(pieceSize, file.size - offset)]);
      }
    }
    const hashes = new Uint8Array(spans.length * 32);
    let done = 0;
    let next = 0;
    let lastReport = 0;
    const lane = async () => {
      while (next < spans.length) {
        const index = next++;
        const [file, offset, len] = spans[index];
        const data = await file.slice(offset, offset + len).arrayBuffer();
        const digest = await crypto.subtle.digest("SHA-256", data);
        hashes.set(new Uint8Array(digest), index * 32);
        done += len;
        const now = performance.now();
        if (now - lastReport > 50) {
          lastReport = now;
          self.postMessage({ id, done });
        }
      }
    };
    await Promise.all([lane(), lane(), lane(), lane()]);
    self.postMessage({ id, done, hashes }, [hashes.buffer]);
  } catch (e) {
    self.postMessage({ id, error: String(e && e.message ? e.message : e) });
  }
};
