// A receiver's copy of a room on disk, in the origin private file system (OPFS):
// meshdrop/<room>/<file index>, written at piece offsets through synchronous access handles
// (about 1 GB/s on the reference machine, against about 50 MB/s for batched IndexedDB).
// The same files are the resume cache and what is finally saved, so nothing is held in
// memory and nothing is written twice.
//
// A file the person chose a place for ("Save to…", File System Access) also gets every piece
// written at its offset into that file's writable stream, which the browser moves into
// place when it is closed after the last piece (closing commits; until then the bytes sit
// in the browser's temporary copy).
//
// Message in: { id, op, ...arguments }; out: { id, ok: true, ...result } or { id, error }.
// Requests run one at a time in arrival order, so a read sees every write sent before it.
let handles = [];
let room = null;
// File index -> FileSystemWritableFileStream of the place chosen for it.
const targets = new Map();
const LOCK = "meshdrop-room:";
const locked = new Set();

// Holds the room's Web Lock until this worker ends (the page closes), so another page's
// clean-up never removes a room in use. A page that was just reloaded may keep the lock a
// moment longer; a room open in another tab keeps it, and then this one fails.
async function lockRoom(dir) {
  if (locked.has(dir)) return;
  for (let attempt = 0; attempt < 15; attempt++) {
    const got = await new Promise((answer) => {
      navigator.locks.request(LOCK + dir, { ifAvailable: true }, (lock) => {
        answer(lock !== null);
        return lock ? new Promise(() => {}) : undefined;
      });
    });
    if (got) {
      locked.add(dir);
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("this room is open in another tab");
}

// The folder under the origin's private file system that holds every room.
async function top() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle("meshdrop", { create: true });
}

function closeAll() {
  for (const h of handles) {
    h.flush();
    h.close();
  }
  handles = [];
}

const message = (e) => String(e && e.message ? e.message : e);

// Gives up on a chosen place (the browser discards its temporary copy).
function dropTarget(file) {
  const writable = targets.get(file);
  targets.delete(file);
  writable?.abort().catch(() => {});
}

function exact(n, want, what) {
  if (n !== want) throw new Error(`short ${what}: ${n} of ${want} bytes`);
}

const ops = {
  // Opens (creating if needed) one file per entry of `sizes`, sized exactly.
  async open({ dir, sizes }) {
    if (room !== null) await closeDelay();
    closeAll();
    await lockRoom(dir);
    room = await (await top()).getDirectoryHandle(dir, { create: true });
    for (const [i, size] of sizes.entries()) {
      const file = await room.getFileHandle(String(i), { create: true });
      const h = await file.createSyncAccessHandle();
      if (h.getSize() !== size) h.truncate(size);
      handles.push(h);
    }
    return {};
  },
  // Writes and reads hand their buffer back (transferred), so the page reuses a few buffers
  // instead of leaving one piece-sized garbage buffer per call in each thread.
  // A failed write to the chosen place does not fail the download: it is reported
  // (`targetError`) and that file goes on in OPFS only.
  async write({ file, at, data }) {
    if (bytesPerSec) await new Promise((r) => setTimeout(r, (data.byteLength / bytesPerSec) * 1000));
    if (room_left !== null) {
      if (data.byteLength > room_left) throw new DOMException("the disk is full (test switch)", "QuotaExceededError");
      room_left -= data.byteLength;
    }
    exact(handles[file].write(data, { at }), data.byteLength, "write");
    let targetError;
    const target = targets.get(file);
    if (target) {
      try {
        await target.write({ type: "write", position: at, data });
      } catch (e) {
        dropTarget(file);
        targetError = message(e);
      }
    }
    return { data, targetError, transfer: [data.buffer] };
  },
  // The person chose where file `file` goes (`handle`, from showSaveFilePicker). Copies
  // what is already here, `ranges` being [offset, length] pairs; later writes follow it.
  // A file already complete (its handles closed) is copied whole and committed at once.
  async attach({ file, handle, size, ranges, complete }) {
    if (!handles[file] && !complete) throw new Error("the file is not open for writing");
    dropTarget(file);
    const writable = await handle.createWritable();
    try {
      if (!handles[file]) {
        const source = await (await room.getFileHandle(String(file))).getFile();
        await source.stream().pipeTo(writable); // closes, and so commits, the file
        return { committed: true };
      }
      await writable.truncate(size);
      const chunk = new Uint8Array(Math.min(4 << 20, Math.max(size, 1)));
      for (let r = 0; r < ranges.length; r += 2) {
        for (let at = ranges[r], end = ranges[r] + ranges[r + 1]; at < end; at += chunk.length) {
          const view = chunk.subarray(0, Math.min(chunk.length, end - at));
          exact(handles[file].read(view, { at }), view.length, "read");
          await writable.write({ type: "write", position: at, data: view });
        }
      }
      targets.set(file, writable);
      return { committed: false };
    } catch (e) {
      await writable.abort().catch(() => {});
      throw e;
    }
  },
  read({ file, at, len, buffer }) {
    const data = buffer && buffer.byteLength >= len ? new Uint8Array(buffer, 0, len) : new Uint8Array(len);
    exact(handles[file].read(data, { at }), len, "read");
    return { data, transfer: [data.buffer] };
  },
  // Re-checks cached pieces: spans are [file, at, len] triples, hashes 32 bytes per span.
  // Answers one byte per span: 1 if the bytes on disk still have that SHA-256.
  async verify({ spans, hashes }) {
    const ok = new Uint8Array(spans.length / 3);
    const LANES = 8;
    for (let first = 0; first < ok.length; first += LANES) {
      const batch = [];
      for (let k = first; k < Math.min(first + LANES, ok.length); k++) {
        const [file, at, len] = [spans[3 * k], spans[3 * k + 1], spans[3 * k + 2]];
        const data = new Uint8Array(len);
        const n = handles[file].read(data, { at });
        batch.push(n === len ? crypto.subtle.digest("SHA-256", data) : Promise.resolve(null));
      }
      const digests = await Promise.all(batch);
      digests.forEach((d, j) => {
        const k = first + j;
        const want = hashes.subarray(32 * k, 32 * k + 32);
        ok[k] = d !== null && new Uint8Array(d).every((b, i) => b === want[i]) ? 1 : 0;
      });
    }
    return { ok, transfer: [ok.buffer] };
  },
  // Closes the handles and hands back the files (disk-backed: saving them costs no memory).
  // The chosen places of the files in `commit` (complete ones) are closed, which puts them
  // in place; `committed` lists those that made it, `failed` the others with the reason.
  async finish({ count, commit }) {
    await closeDelay();
    closeAll();
    const committed = [];
    const failed = [];
    for (const file of commit) {
      const writable = targets.get(file);
      if (!writable) continue;
      targets.delete(file);
      try {
        await writable.close();
        committed.push(file);
      } catch (e) {
        failed.push([file, message(e)]);
      }
    }
    const files = [];
    for (let i = 0; i < count; i++) files.push(await (await room.getFileHandle(String(i))).getFile());
    return { files, committed, failed };
  },
  async remove({ dir }) {
    try {
      await (await top()).removeEntry(dir, { recursive: true });
    } catch (e) {
      if (e.name !== "NotFoundError") throw e;
    }
    return {};
  },
  // Rooms with files on disk, and rooms a page holds open (checked after listing, so a
  // room being created is either not listed yet or already busy).
  async list() {
    const names = [];
    for await (const name of (await top()).keys()) names.push(name);
    const { held = [] } = await navigator.locks.query();
    const busy = held.map((l) => l.name).filter((n) => n.startsWith(LOCK)).map((n) => n.slice(LOCK.length));
    return { names, busy };
  },
};

// Test-only: a disk slower than the swarm (`throttle`, from the page's `#slowdisk`).
let bytesPerSec = 0;
ops.throttle = async ({ bytesPerSec: rate }) => {
  bytesPerSec = rate;
  return {};
};

// Test-only: a disk that fills up after `bytes` more bytes (`fill`, from the page's `#fulldisk`).
let room_left = null;
ops.fill = async ({ bytes }) => {
  room_left = bytes;
  return {};
};

// Test-only: closing the files, and opening them again, takes longer (`slowClose`, from the
// page's `#slowclose`), so a test can change the selection meanwhile.
let closeMs = 0;
const closeDelay = () => new Promise((r) => setTimeout(r, closeMs));
ops.slowClose = async ({ ms }) => {
  closeMs = ms;
  return {};
};

let queue = Promise.resolve();
self.onmessage = (event) => {
  const { id, op } = event.data;
  queue = queue.then(async () => {
    try {
      if (!ops[op]) throw new Error(`unknown operation ${op}`);
      const { transfer = [], ...result } = await ops[op](event.data);
      self.postMessage({ id, ok: true, ...result }, transfer);
    } catch (e) {
      self.postMessage({ id, error: message(e) });
    }
  });
};
