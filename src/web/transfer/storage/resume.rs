//! The resume record: what IndexedDB remembers about this room's copy on disk (the pieces
//! written, the hash layer, whether the files were saved), so a reload takes them back.

use crate::web::cache::{self, RoomRecord};
use crate::web::now_ms;
use crate::web::transfer::{Ev, State};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

thread_local! {
    /// Rooms whose files the person saved (the page's save links report here).
    static SAVED_ROOMS: RefCell<HashSet<String>> = RefCell::default();
}

/// Called when a save link is clicked: the room's cache is removed once its tab has closed.
pub fn mark_saved(room: &str) {
    SAVED_ROOMS.with(|s| s.borrow_mut().insert(room.to_string()));
}

fn saved_here(room: &str) -> bool {
    SAVED_ROOMS.with(|s| s.borrow().contains(room))
}

/// The resume record's database and when it was last written.
#[derive(Default)]
pub struct ResumeRecord {
    pub db: Option<Rc<idb::Database>>,
    /// Pieces reached the disk since the record was last written.
    pub dirty: bool,
    /// The hash layer is in the cache (it is written once, with the first record).
    pub layer_stored: bool,
    pub flushing: bool,
    pub flushed_ms: f64,
    /// The `saved` flag the record was last written with.
    pub saved_flushed: bool,
    /// IndexedDB record writes (for tests, see `TransferView::cache_writes`).
    pub writes: u64,
}

impl State {
    /// Writes the resume record when pieces landed on disk since the last write (at most
    /// once a second: one transaction for the whole batch), or to keep the room fresh.
    pub fn flush_record(&mut self, force: bool) {
        let now = now_ms();
        let saved = saved_here(&self.room.id);
        let due = force
            || (self.resume.dirty && now - self.resume.flushed_ms >= cache::RECORD_EVERY_MS)
            || saved != self.resume.saved_flushed
            || now - self.resume.flushed_ms >= cache::TOUCH_EVERY_MS;
        if self.resume.flushing || !due {
            return;
        }
        let (Some(db), Some(hashes)) = (
            self.resume.db.clone(),
            self.swarm.as_ref().and_then(|s| s.piece_hashes()),
        ) else {
            return;
        };
        let record = RoomRecord {
            room: self.room.id.clone(),
            root: self.room.root,
            have: self.disk.written.to_wire().to_vec(),
            touched: js_sys::Date::now(),
            saved,
        };
        // The hash layer goes with the first record only; a failed write sends it again.
        let layer = (!self.resume.layer_stored).then(|| hashes.to_vec());
        self.resume.layer_stored = true;
        self.resume.flushing = true;
        self.resume.writes += 1;
        self.resume.dirty = false;
        self.resume.flushed_ms = now;
        self.resume.saved_flushed = saved;
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = cache::store(&db, &record, layer.as_deref()).await;
            let _ = tx.unbounded_send(Ev::Flushed(result));
        });
    }

    /// The resume record was written (or not).
    pub fn on_flushed(&mut self, result: Result<(), String>) {
        self.resume.flushing = false;
        if let Err(e) = result {
            // Written again with the next batch, hash layer and all.
            self.resume.layer_stored = false;
            self.resume.dirty = true;
            self.log
                .push(format!("could not update the resume record: {e}"));
        }
    }
}
