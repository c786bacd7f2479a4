//! Where this tab's copy of the files lives, and what is on its way there: the sender's own
//! files, a receiver's OPFS files (written through the disk worker, see `web::disk`), or
//! memory when there is no OPFS. Piece writes here, reads in [`reads`], the resume record
//! in [`resume`], finishing, reopening and "Save to…" in [`saving`].

pub mod reads;
pub mod resume;
pub mod saving;

use super::Ev;
use super::State;
use crate::protocol::manifest::Manifest;
use crate::swarm::Input;
use crate::swarm::bitfield::Bitfield;
use crate::transfer_view::Phase;
use crate::web::cache;
use crate::web::disk::Disk;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Storage backpressure (see `DiskState::backlog`): pause requests above this many bytes
/// waiting for the disk, resume below the second. At this machine's 17–30 MB/s a second
/// of pieces fits under the high mark, so a healthy disk never pauses the swarm.
const DISK_BACKLOG_HIGH: u64 = 32 << 20;
const DISK_BACKLOG_LOW: u64 = 8 << 20;

/// Where this tab's copy of the files lives.
pub enum Storage {
    /// The sender's own files.
    Source(Vec<web_sys::File>),
    /// A receiver's OPFS files: written through the worker while downloading, then handed
    /// back as read-only `File`s once complete.
    Disk {
        disk: Rc<Disk>,
        files: Option<Vec<web_sys::File>>,
    },
    /// Without OPFS (or with the room open in another tab) the copy stays in memory.
    Memory(BTreeMap<u32, Bytes>),
}

/// A receiver's disk copy: which pieces reached the disk, which are on their way, and how
/// far the disk is behind.
pub struct DiskState {
    /// Pieces whose bytes are on disk: the only ones the resume record may claim.
    pub written: Bitfield,
    /// Pieces handed to the storage worker: on disk, or in its queue. The worker runs
    /// requests in order, so a request sent now sees all of these on disk.
    pub queued: Bitfield,
    /// Piece bytes handed to the storage worker and not written yet, the most there ever
    /// were, and whether the swarm was told to pause. Past [`DISK_BACKLOG_HIGH`] the swarm
    /// stops requesting until the backlog is under [`DISK_BACKLOG_LOW`], so a disk slower
    /// than the swarm cannot fill memory.
    pub backlog: u64,
    pub backlog_peak: u64,
    pub busy: bool,
    /// The storage worker is closing the files (for saving) or opening them again.
    pub finishing: bool,
}

impl DiskState {
    pub fn new(pieces: u32) -> Self {
        Self {
            written: Bitfield::new(pieces),
            queued: Bitfield::new(pieces),
            backlog: 0,
            backlog_peak: 0,
            busy: false,
            finishing: false,
        }
    }

    /// What to tell the swarm when storage falls behind or catches up (on a change only).
    pub fn storage_busy(&mut self, busy: bool) -> Option<Input> {
        (busy != self.busy).then(|| {
            self.busy = busy;
            Input::StorageBusy(busy)
        })
    }
}

impl State {
    /// A receiver's start: clear out stale caches, open this room's files on disk, and take
    /// back whatever a previous visit left there, re-hashing every piece before trusting it.
    pub async fn prepare_storage(&mut self) {
        let disk = match Disk::start() {
            Ok(disk) => disk,
            Err(e) => {
                self.log.push(format!(
                    "no disk storage ({e}); keeping the download in memory"
                ));
                return;
            }
        };
        if self.switches.slow_disk && disk.throttle(5_000_000).await.is_err() {
            self.log
                .push("could not slow the disk down (test switch)".into());
        }
        if self.switches.full_disk && disk.fill_after(16 << 20).await.is_err() {
            self.log
                .push("could not fill the disk (test switch)".into());
        }
        if self.switches.slow_close && disk.slow_close(2_000).await.is_err() {
            self.log
                .push("could not slow closing down (test switch)".into());
        }
        // The previous page of this tab may still hold the files for a moment after a reload.
        let mut opened = Err(String::new());
        for _ in 0..5 {
            opened = disk.open(&self.room.id, &self.room.layout).await;
            if opened.is_ok() {
                break;
            }
            crate::web::sleep(200.0).await;
        }
        if let Err(e) = opened {
            self.log.push(format!(
                "no disk storage ({e}); keeping the download in memory"
            ));
            return;
        }
        let disk = Rc::new(disk);
        self.storage = Storage::Disk {
            disk: disk.clone(),
            files: None,
        };
        let db = match cache::open().await {
            Ok(db) => db,
            Err(e) => {
                self.log
                    .push(format!("no resume record ({e}); a reload starts over"));
                return;
            }
        };
        let record = match cache::load(&db, &self.room.id).await {
            Ok(record) => record,
            Err(e) => {
                self.log
                    .push(format!("could not read the resume record: {e}"));
                None
            }
        };
        self.resume.db = Some(Rc::new(db));
        let Some((record, hashes)) = record.filter(|(r, _)| r.root == self.room.root) else {
            return;
        };
        if Manifest::from_layer(self.room.layout.clone(), self.room.root, hashes.clone()).is_err() {
            return;
        }
        self.resume.layer_stored = true;
        let count = self.room.layout.piece_count();
        let claimed: Vec<u32> = Bitfield::from_wire(&record.have, count)
            .map(|b| b.iter_ones().collect())
            .unwrap_or_default();
        if !claimed.is_empty() {
            self.phase = Phase::Verifying {
                pieces: claimed.len() as u32,
            };
            self.render(true);
            match disk.verify(&self.room.layout, &claimed, &hashes).await {
                Ok(ok) => {
                    let mut damaged = 0;
                    for (&piece, good) in claimed.iter().zip(ok) {
                        if good {
                            self.have.set(piece);
                            self.disk.written.set(piece);
                            self.disk.queued.set(piece);
                            let len = u64::from(self.room.layout.piece_len(piece));
                            self.metrics.restored += len;
                            self.metrics.file_bytes[self.room.layout.span(piece).file as usize] +=
                                len;
                        } else {
                            damaged += 1;
                        }
                    }
                    if damaged > 0 {
                        self.log.push(format!(
                            "{damaged} cached piece(s) no longer matched their hash; fetching them again"
                        ));
                    }
                }
                Err(e) => self.log.push(format!("could not check the cache: {e}")),
            }
        }
        self.hashes = Some(hashes);
        self.phase = Phase::Connecting;
    }

    /// A verified piece: onto disk (or into memory), and kept handy for re-serving. Returns
    /// what the swarm must hear when this piece puts storage behind.
    pub fn store_piece(&mut self, piece: u32, data: Bytes) -> Option<Input> {
        let span = self.room.layout.span(piece);
        self.metrics.file_bytes[span.file as usize] += u64::from(span.len);
        match &mut self.storage {
            Storage::Memory(map) => {
                map.insert(piece, data);
            }
            Storage::Disk { disk, files: None } => {
                let write = disk.write(span.file, span.offset, &data);
                self.disk.queued.set(piece);
                let tx = self.tx.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = write.await;
                    let _ = tx.unbounded_send(Ev::Written { piece, result });
                });
                self.disk.backlog += data.len() as u64;
                self.disk.backlog_peak = self.disk.backlog_peak.max(self.disk.backlog);
                // Kept handy only for a neighbour that may ask for it soon: a lone
                // receiver's memory holds no copies (docs/benchmarks.md, P4).
                if self.swarm.as_ref().is_some_and(|s| s.someone_lacks(piece)) {
                    self.reads.remember(piece, data);
                }
                if self.disk.backlog > DISK_BACKLOG_HIGH {
                    return self.disk.storage_busy(true);
                }
            }
            Storage::Source(_) | Storage::Disk { .. } => {}
        }
        None
    }

    /// The storage worker finished writing `piece` (and copying it to a picked file).
    pub fn on_written(&mut self, piece: u32, result: Result<Option<String>, String>) {
        self.disk.backlog = self
            .disk
            .backlog
            .saturating_sub(u64::from(self.room.layout.piece_len(piece)));
        if self.disk.backlog < DISK_BACKLOG_LOW
            && let Some(input) = self.disk.storage_busy(false)
        {
            self.input(input);
        }
        match result {
            Ok(target_error) => {
                if let Some(e) = target_error {
                    self.target_failed(self.room.layout.span(piece).file as usize, e);
                }
                self.disk.written.set(piece);
                self.resume.dirty = true;
                self.maybe_finish();
            }
            // Writes queued behind the first failure fail too: one stop says it all.
            Err(_) if self.closed.is_some() => {}
            // The piece is advertised already and cannot be served from disk: stop
            // rather than keep offering it (disk full, or the storage was cleared).
            Err(e) => self.stop(format!(
                "could not write to disk: {e}. Free some space and reload to resume."
            )),
        }
    }

    /// Every piece of every selected file is on disk.
    pub fn selected_written(&self) -> bool {
        self.selected_pieces().all(|p| self.disk.written.get(p))
    }

    /// File `i` is wholly here (verified, and on disk when the copy is on disk).
    pub fn file_complete(&self, i: usize) -> bool {
        let done = match (&self.storage, &self.swarm) {
            (Storage::Disk { .. }, _) => &self.disk.written,
            (_, Some(swarm)) => swarm.have(),
            _ => &self.have,
        };
        self.room.layout.file_pieces(i).all(|p| done.get(p))
    }
}
