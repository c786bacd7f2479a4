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
// The files are open (one access handle each) while pieces arrive, and closed once the
// selection is complete so the browser can hand them over for saving. A finished tab keeps
// serving its pieces to the swarm: reads and checks of a closed file go through a `File`
// snapshot of it, so no operation depends on which of the two states the page believes the
// files are in when its request arrives.
//
// Message in: { id, op, ...arguments }; out: { id, ok: true, ...result } or { id, error }.
// Requests run one at a time in arrival order, so a read sees every write sent before it.
// Copying a file to its chosen place is the exception: it goes on beside the queue (reads
// and writes are not held up for seconds), and answers when it is done.
let handles = [];
// Each file's size, from `open`: every request is checked against it.
let sizes = [];
let room = null;
// File index -> File snapshot of a closed file, read while its handle is closed.
const snapshots = new Map();
// File index -> FileSystemWritableFileStream of the place chosen for it.
const targets = new Map();
// File index -> the copy to its chosen place under way (settles, never rejects).
const copies = new Map();
const LOCK = "meshdrop-room:";
const locked = new Set();
// The largest single read or write a page sends (a piece is at most 16 MiB).
const MAX_IO = 16 << 20;

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

const isCount = (n) => Number.isSafeInteger(n) && n >= 0;

// The room's files exist (`open` succeeded once); throws the reason otherwise.
function needRoom() {
  if (room === null) throw new Error("no room's files are open in this tab");
}

// Checks a request for bytes [at, at + len) of file `file` against the room's layout.
function checkSpan(file, at, len) {
  needRoom();
  if (!isCount(file) || file >= sizes.length) throw new Error(`there is no file ${file} in this room`);
  if (!isCount(at) || !isCount(len) || len > MAX_IO || at + len > sizes[file]) {
    throw new Error(`bytes ${at}..${at + len} are outside file ${file} (${sizes[file]} bytes)`);
  }
}

// A `File` of closed file `file`, taken once and kept until the files are opened again.
async function snapshot(file, fresh = false) {
  let source = fresh ? undefined : snapshots.get(file);
  if (!source) {
    source = await (await room.getFileHandle(String(file))).getFile();
    snapshots.set(file, source);
  }
  return source;
}

// Fills `view` from file `file` at `at`: through its handle while the files are open,
// through a snapshot of it once they are closed.
async function readAt(file, view, at) {
  const handle = handles[file];
  if (handle) return exact(handle.read(view, { at }), view.length, "read");
  for (let attempt = 0; ; attempt++) {
    try {
      const source = await snapshot(file, attempt > 0);
      const bytes = new Uint8Array(await source.slice(at, at + view.length).arrayBuffer());
      exact(bytes.length, view.length, "read");
      view.set(bytes);
      return;
    } catch (e) {
      // A snapshot goes stale once its file changes (it was reopened and written since):
      // one fresh snapshot, then the error stands.
      if (attempt > 0 || e.name !== "NotReadableError") throw e;
    }
  }
}

// Copies byte `ranges` ([offset, length] pairs) of file `file` to its chosen place. Runs
// beside the queue; the ranges hold verified pieces, which no later write changes, and
// later pieces go to the place through `write` meanwhile.
async function copyRanges(file, writable, ranges) {
  const chunk = new Uint8Array(Math.min(4 << 20, Math.max(sizes[file], 1)));
  for (let r = 0; r < ranges.length; r += 2) {
    for (let at = ranges[r], end = ranges[r] + ranges[r + 1]; at < end; at += chunk.length) {
      const view = chunk.subarray(0, Math.min(chunk.length, end - at));
      await readAt(file, view, at);
      // Copying `view`: the stream may hold on to the bytes past this call.
      await writable.write({ type: "write", position: at, data: view.slice() });
    }
  }
}

const ops = {
  // Opens (creating if needed) one file per entry of `sizes`, sized exactly. All or none:
  // a failure leaves every file closed (and readable through snapshots).
  async open({ dir, sizes: wanted }) {
    if (typeof dir !== "string" || !Array.isArray(wanted) || !wanted.every(isCount)) {
      throw new Error("open needs a room and its file sizes");
    }
    if (room !== null) await beforeClose();
    closeAll();
    snapshots.clear();
    await lockRoom(dir);
    room = await (await top()).getDirectoryHandle(dir, { create: true });
    sizes = wanted.slice();
    const opened = [];
    try {
      for (const [i, size] of sizes.entries()) {
        const file = await room.getFileHandle(String(i), { create: true });
        const h = await file.createSyncAccessHandle();
        opened.push(h);
        if (h.getSize() !== size) h.truncate(size);
      }
    } catch (e) {
      for (const h of opened) h.close();
      throw e;
    }
    handles = opened;
    return {};
  },
  // Writes and reads hand their buffer back (transferred), so the page reuses a few buffers
  // instead of leaving one piece-sized garbage buffer per call in each thread.
  // A failed write to the chosen place does not fail the download: it is reported
  // (`targetError`) and that file goes on in OPFS only.
  async write({ file, at, data }) {
    if (!(data instanceof Uint8Array)) throw new Error("write needs bytes");
    checkSpan(file, at, data.byteLength);
    if (!handles[file]) throw new Error(`file ${file} is closed for writing (the download finished)`);
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
  // A closed file (the selection finished) is whole: it is copied and committed at once.
  // Either copy runs beside the queue (see `later`), so the tab goes on serving meanwhile.
  async attach({ file, handle, size, ranges, complete }) {
    checkSpan(file, 0, 0);
    if (size !== sizes[file]) throw new Error(`file ${file} has ${sizes[file]} bytes, not ${size}`);
    if (!(ranges instanceof Float64Array) || ranges.length % 2) throw new Error("attach needs [offset, length] pairs");
    for (let r = 0; r < ranges.length; r += 2) {
      const [at, len] = [ranges[r], ranges[r + 1]];
      if (!isCount(at) || !isCount(len) || at + len > size) throw new Error(`bytes ${at}..${at + len} are outside file ${file}`);
    }
    // Closed files are whole only when the page closed them for a complete selection.
    if (!handles[file] && !complete) throw new Error(`file ${file} is closed and not complete`);
    dropTarget(file);
    await copies.get(file);
    const writable = await handle.createWritable();
    const failed = async (e) => {
      if (targets.get(file) === writable) targets.delete(file);
      await writable.abort().catch(() => {});
      throw e;
    };
    if (!handles[file]) {
      const source = await snapshot(file).catch(failed);
      if (source.size !== size) return failed(new Error(`file ${file} on disk has ${source.size} of ${size} bytes`));
      // pipeTo closes the stream, which commits the file.
      const copy = source.stream().pipeTo(writable).then(() => ({ committed: true }), failed);
      copies.set(file, copy.catch(() => {}));
      return { later: copy };
    }
    try {
      await writable.truncate(size);
    } catch (e) {
      return failed(e);
    }
    targets.set(file, writable);
    const copy = copyRanges(file, writable, ranges).then(
      () => ({ committed: false }),
      (e) => failed(e),
    );
    copies.set(file, copy.catch(() => {}));
    return { later: copy };
  },
  async read({ file, at, len, buffer }) {
    checkSpan(file, at, len);
    const data = buffer instanceof ArrayBuffer && buffer.byteLength >= len ? new Uint8Array(buffer, 0, len) : new Uint8Array(len);
    await readAt(file, data, at);
    return { data, transfer: [data.buffer] };
  },
  // Re-checks cached pieces: spans are [file, at, len] triples, hashes 32 bytes per span.
  // Answers one byte per span: 1 if the bytes on disk still have that SHA-256.
  async verify({ spans, hashes }) {
    if (!(spans instanceof Float64Array) || spans.length % 3 || !(hashes instanceof Uint8Array) || hashes.length !== (spans.length / 3) * 32) {
      throw new Error("verify needs [file, at, len] triples and one hash each");
    }
    const ok = new Uint8Array(spans.length / 3);
    const LANES = 8;
    for (let first = 0; first < ok.length; first += LANES) {
      const batch = [];
      for (let k = first; k < Math.min(first + LANES, ok.length); k++) {
        const [file, at, len] = [spans[3 * k], spans[3 * k + 1], spans[3 * k + 2]];
        checkSpan(file, at, len);
        const data = new Uint8Array(len);
        // A piece that cannot be read back is not there: it is fetched again.
        const read = await readAt(file, data, at).then(() => true, () => false);
        batch.push(read ? crypto.subtle.digest("SHA-256", data) : Promise.resolve(null));
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
  // Closing twice is harmless: the files are handed back again.
  async finish({ count, commit }) {
    needRoom();
    if (count !== sizes.length || !Array.isArray(commit)) throw new Error("finish needs the room's file count");
    await beforeClose();
    closeAll();
    snapshots.clear();
    const committed = [];
    const failed = [];
    for (const file of commit) {
      // A copy still under way finishes first (or has failed, and dropped its target).
      await copies.get(file);
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
    for (let i = 0; i < count; i++) files.push(await snapshot(i));
    return { files, committed, failed };
  },
  async remove({ dir }) {
    if (typeof dir !== "string" || dir === "") throw new Error("remove needs a room");
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
const beforeClose = () => new Promise((r) => setTimeout(r, closeMs));
ops.slowClose = async ({ ms }) => {
  closeMs = ms;
  return {};
};

let queue = Promise.resolve();
self.onmessage = (event) => {
  const { id, op } = event.data;
  const answer = async () => {
    try {
      if (!Object.hasOwn(ops, op)) throw new Error(`unknown operation ${op}`);
      const { transfer = [], later, ...result } = await ops[op](event.data);
      // An operation that goes on beside the queue answers when it is done.
      if (later) {
        later.then(
          (done) => self.postMessage({ id, ok: true, ...done }),
          (e) => self.postMessage({ id, error: message(e) }),
        );
        return;
      }
      self.postMessage({ id, ok: true, ...result }, transfer);
    } catch (e) {
      self.postMessage({ id, error: message(e) });
    }
  };
  queue = queue.then(answer);
};
