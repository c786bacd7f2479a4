//! The browser shell: one event loop per room that drives the sans-IO `Swarm`.
//!
//! Every browser callback (hub message, ICE candidate, channel message, finished read or
//! digest, timer) becomes an `Ev` on one channel; the loop feeds each to the swarm and then
//! carries out the swarm's outputs. Nothing else mutates the state, so there are no locks
//! and no re-entrancy.

use super::cache::{self, RoomRecord};
use super::disk::{Disk, Finished};
use super::rtc::{Conn, RtcEvent, Water};
use super::signaling::{SignalingEvent, SignalingSocket};
use super::{crypto, now_ms, read_slice};
use crate::protocol::FileEntry;
use crate::protocol::manifest::{Hash, Layout, Manifest};
use crate::protocol::signal::{ClientMessage, IceServer, ServerMessage, SignalPayload};
use crate::protocol::wire::{BlockRef, Frame};
use crate::swarm::bitfield::Bitfield;
use crate::swarm::{Event, Input, Output, PeerId, Swarm, SwarmConfig};
use crate::transfer_view::{FileRow, PeerRow, Phase, SaveTarget, Saved, TransferView};
use bytes::Bytes;
use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_util::StreamExt;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use wasm_bindgen::JsCast;

/// What the page hands over to start a transfer.
pub struct Setup {
    pub room: String,
    pub ticket: String,
    pub layout: Layout,
    pub root: Hash,
    pub files: Vec<FileEntry>,
    /// The sender has the files and their hashes; a receiver has neither.
    pub source: Option<(Vec<web_sys::File>, Vec<Hash>)>,
    /// Shows the transfer on the page (the page's component writes it into its state).
    pub report: Box<dyn Fn(TransferView)>,
}

enum Ev {
    Signaling(SignalingEvent),
    Rtc(PeerId, RtcEvent),
    /// An offer or answer is ready to send (or negotiation failed).
    Negotiated(PeerId, Result<Option<SignalPayload>, String>),
    /// A fresh ticket to reconnect to the hub with, after the socket closed (or why not).
    Rejoin(Result<String, crate::api::ApiError>),
    /// A fresh ticket to renew the open socket's with (or why not), for the socket of that
    /// generation (`State::renewals`).
    Renew(u32, Result<String, crate::api::ApiError>),
    /// The peer's description is applied: queued candidates may go in.
    RemoteSet(PeerId),
    /// Whole pieces read from our copy, one after another in `data` (served block by
    /// block).
    PiecesRead {
        pieces: std::ops::Range<u32>,
        data: Result<Bytes, String>,
    },
    Hashed {
        piece: u32,
        digest: Hash,
    },
    /// SubtleCrypto failed (e.g. missing outside a secure context).
    HashFailed(String),
    /// A verified piece is on disk (or could not be written). `Ok(Some(_))`: it is, but
    /// writing it to the place chosen for its file failed.
    Written {
        piece: u32,
        result: Result<Option<String>, String>,
    },
    /// Every piece is on disk and the files are closed: here they are, read-only.
    Finished(Result<Finished, String>),
    /// The person chose where a file goes (a `FileSystemFileHandle`), cancelled (`Err(None)`)
    /// or the browser refused.
    Picked(usize, Result<wasm_bindgen::JsValue, Option<String>>),
    /// The chosen place has what was here so far (`Ok(true)`: the whole file, in place).
    Attached(usize, Result<bool, String>),
    /// The resume record was written (or not).
    Flushed(Result<(), String>),
    /// The person ticked (true) or unticked a file to download.
    Select(usize, bool),
    /// The closed files are open for writing again (more files were selected after the
    /// selected ones had finished).
    Reopened(Result<(), String>),
    Tick,
}

/// Recently read or verified pieces kept in memory: one disk read serves all of a piece's
/// blocks, and fresh pieces (the ones others want next) are served without a read.
const READ_CACHE_BYTES: usize = 8 << 20;

/// Storage backpressure (see `State::disk_backlog`): pause requests above this many bytes
/// waiting for the disk, resume below the second. At this machine's 17–30 MB/s a second
/// of pieces fits under the high mark, so a healthy disk never pauses the swarm.
const DISK_BACKLOG_HIGH: u64 = 32 << 20;
const DISK_BACKLOG_LOW: u64 = 8 << 20;

/// A piece read from a file right after the piece before it was read brings the pieces
/// after it along, up to this many bytes: a seeder serves a peer in file order (the swarm
/// reveals pieces that way), and one 2 MiB `Blob` read costs the browser far less than
/// eight of 256 KiB (benches/FINDINGS.md, P1).
const READ_RUN_BYTES: u32 = 2 << 20;

/// Where this tab's copy of the files lives.
enum Storage {
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

thread_local! {
    /// The running transfer's event queue, for the page's controls (one transfer per page).
    static COMMANDS: RefCell<Option<UnboundedSender<Ev>>> = const { RefCell::new(None) };
    /// Rooms whose files the person saved (the page's save links report here).
    static SAVED_ROOMS: RefCell<HashSet<String>> = RefCell::default();
}

/// Called when a file's checkbox changes: download it (`on`) or leave it out.
pub fn select_file(file: usize, on: bool) {
    command(Ev::Select(file, on));
}

/// The address's fragment as its `&`-separated parts: `#files=0,2` (the files chosen, see
/// `keep_selection_in_fragment`) and the test-only switches (`#corrupt`, `#files=1&slowclose`).
fn fragment_parts() -> Vec<String> {
    let hash = web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default();
    hash.trim_start_matches('#')
        .split('&')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The files a link asks for: `#files=0,2` downloads the first and third file only (a
/// reload keeps the choice, see `keep_selection_in_fragment`). Anything else means all.
fn selection_from_fragment(parts: &[String], count: usize) -> Vec<bool> {
    let Some(list) = parts.iter().find_map(|part| part.strip_prefix("files=")) else {
        return vec![true; count];
    };
    let mut selected = vec![false; count];
    for i in list
        .split(',')
        .filter_map(|n| n.trim().parse::<usize>().ok())
    {
        if i < count {
            selected[i] = true;
        }
    }
    selected
}

/// Writes the selection into the address (`#files=…`, nothing when every file is selected;
/// the fragment's other parts stay) without adding a history entry, so a reload or a copied
/// link keeps it.
fn keep_selection_in_fragment(selected: &[bool]) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let list: Vec<String> = selected
        .iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .map(|(i, _)| i.to_string())
        .collect();
    let mut parts: Vec<String> = fragment_parts()
        .into_iter()
        .filter(|part| !part.starts_with("files="))
        .collect();
    if list.len() != selected.len() {
        parts.insert(0, format!("files={}", list.join(",")));
    }
    let location = window.location();
    let mut url = location.pathname().unwrap_or_default() + &location.search().unwrap_or_default();
    if !parts.is_empty() {
        url = format!("{url}#{}", parts.join("&"));
    }
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// Hands a page control's event to the running transfer (if there is one).
fn command(ev: Ev) {
    COMMANDS.with(|c| {
        if let Some(tx) = c.borrow().as_ref() {
            let _ = tx.unbounded_send(ev);
        }
    });
}

/// The browser's File System Access save dialog, where there is one (Chromium on desktop).
fn save_picker() -> Option<(web_sys::Window, js_sys::Function)> {
    let window = web_sys::window()?;
    let picker = js_sys::Reflect::get(&window, &"showSaveFilePicker".into()).ok()?;
    let picker = picker.dyn_into::<js_sys::Function>().ok()?;
    Some((window, picker))
}

/// Called from "Save to…" (a click, which the dialog requires): asks once where file `file`
/// goes. From then on each of its pieces is written there at its offset as it arrives.
pub fn save_to(file: usize, name: &str) {
    let Some((window, picker)) = save_picker() else {
        return;
    };
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"suggestedName".into(), &name.into());
    let promise = match picker.call1(&window, &options) {
        Ok(p) => js_sys::Promise::from(p),
        Err(e) => return command(Ev::Picked(file, Err(Some(super::js_error(e))))),
    };
    wasm_bindgen_futures::spawn_local(async move {
        let result = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(|e| {
                let name = js_sys::Reflect::get(&e, &"name".into()).ok();
                let cancelled = name.and_then(|n| n.as_string()).as_deref() == Some("AbortError");
                (!cancelled).then(|| super::js_error(e))
            });
        command(Ev::Picked(file, result));
    });
}

/// Called when a save link is clicked: the room's cache is removed once its tab has closed.
pub fn mark_saved(room: &str) {
    SAVED_ROOMS.with(|s| s.borrow_mut().insert(room.to_string()));
}

fn saved_here(room: &str) -> bool {
    SAVED_ROOMS.with(|s| s.borrow().contains(room))
}

fn slice_block(piece: &Bytes, block: &BlockRef) -> Option<Bytes> {
    let start = block.offset as usize;
    let end = start + block.len as usize;
    (end <= piece.len()).then(|| piece.slice(start..end))
}

fn mime(file: &FileEntry) -> &str {
    if file.mime.is_empty() {
        "application/octet-stream"
    } else {
        &file.mime
    }
}

/// A channel that opens later than this is given up and tried again.
const OPEN_TIMEOUT_MS: f64 = 15_000.0;

struct State {
    tx: UnboundedSender<Ev>,
    hub: Option<SignalingSocket>,
    swarm: Option<Swarm>,
    me: PeerId,
    members: Vec<PeerId>,
    ice: Vec<IceServer>,
    conns: HashMap<PeerId, Conn>,
    room: String,
    /// Kept to report a finished download (the owner's "completed" count).
    ticket: String,
    /// Why this tab stopped sharing for good (the room was closed); `None` while it shares.
    closed: Option<String>,
    layout: Layout,
    root: Hash,
    files: Vec<FileEntry>,
    seeding: bool,
    storage: Storage,
    /// What the swarm starts with: the hash layer and pieces we already have (all of them
    /// for the sender; for a returning receiver, the re-verified cache).
    hashes: Option<Vec<Hash>>,
    have: Bitfield,
    /// Pieces whose bytes are on disk: the only ones the resume record may claim.
    written: Bitfield,
    /// Pieces handed to the storage worker: on disk, or in its queue. The worker runs
    /// requests in order, so a request sent now sees all of these on disk.
    queued: Bitfield,
    /// Piece bytes handed to the storage worker and not written yet, the most there ever
    /// were, and whether the swarm was told to pause. Past [`DISK_BACKLOG_HIGH`] the swarm
    /// stops requesting until the backlog is under [`DISK_BACKLOG_LOW`], so a disk slower
    /// than the swarm cannot fill memory.
    disk_backlog: u64,
    disk_backlog_peak: u64,
    /// The fullest any data channel's send buffer was after a send, times a channel was
    /// found full and paused, and IndexedDB record writes (for tests, see `TransferView`).
    channel_peak: u32,
    channel_pauses: u64,
    /// Times `bufferedamountlow` let a paused channel send its whole queue again.
    channel_resumes: u64,
    cache_writes: u64,
    storage_busy: bool,
    /// Piece bytes taken from the cache at start (not downloaded again).
    restored: u64,
    /// Verified bytes per file.
    file_bytes: Vec<u64>,
    db: Option<Rc<idb::Database>>,
    record_dirty: bool,
    /// The hash layer is in the cache (it is written once, with the first record).
    layer_stored: bool,
    flushing: bool,
    flushed_ms: f64,
    saved_flushed: bool,
    completed: bool,
    /// The storage worker is closing the files (for saving) or opening them again.
    finishing: bool,
    read_cache: VecDeque<(u32, Bytes)>,
    /// Blocks waiting for a piece read that is under way.
    reading: HashMap<u32, Vec<(PeerId, BlockRef)>>,
    received_from: HashMap<PeerId, u64>,
    received_total: u64,
    messages_in: u64,
    messages_out: u64,
    stats: HashMap<PeerId, (f64, f64, u32)>,
    uploaded: u64,
    /// Test-only: serve corrupted blocks (`#corrupt` after the room link). Harmless: peers
    /// verify every piece and ban whoever sends bad ones.
    corrupt: bool,
    /// Test-only: channels pause at 512 KiB (`#smallbuffer`), so the swarm's requests
    /// overflow them and the pause and resume path runs.
    water: Water,
    /// Test-only: the storage worker writes at 5 MB/s (`#slowdisk`), to show storage
    /// backpressure.
    slow_disk: bool,
    /// Test-only: the storage worker's disk fills up after 16 MiB (`#fulldisk`), to show
    /// what a failed write does.
    full_disk: bool,
    /// Test-only: closing and reopening the files takes 2 s longer (`#slowclose`), so a
    /// test can change the selection meanwhile.
    slow_close: bool,
    /// The selection changed while the files were being closed or reopened; it is applied
    /// once that is done.
    select_queued: bool,
    /// Selection changes that had to wait like that (`data-selections-queued`, for tests).
    selections_queued: u32,
    report: Box<dyn Fn(TransferView)>,
    rendered_ms: f64,
    shown_bytes: bool,
    warned_unload: bool,
    rate_sample: (f64, u64, u64, Vec<u64>),
    rates: (f64, f64),
    file_rates: Vec<f64>,
    progress: (u32, u32, u64),
    phase: Phase,
    log: Vec<String>,
    saved: Vec<Saved>,
    /// The files to download (all, until the person unticks some).
    selected: Vec<bool>,
    /// The selection the swarm was last given: `selected` while no change waits.
    applied: Vec<bool>,
    /// The server was told this tab holds the whole room.
    reported: bool,
    /// Reconnection attempts since the hub's socket last closed (0 while connected).
    rejoin_attempts: u32,
    /// Counts renewals scheduled; a pending one that is not the latest is dropped.
    renewals: u32,
    /// Times the hub renewed this tab's socket (`data-renewed` on the panel).
    renewed: u32,
    /// Where each file goes, when the person chose a place for it.
    targets: Vec<SaveTarget>,
    _unload: UnloadWarning,
}

/// Turns the "closing stops sharing" question off when the transfer ends with its page
/// (nothing is shared any more to warn about).
struct UnloadWarning;

impl Drop for UnloadWarning {
    fn drop(&mut self) {
        super::warn_before_unload(false);
    }
}

/// Starts the transfer as a task of the calling component: it reports to the component's
/// state, so it must run inside the Dioxus runtime, and it stops when the page goes.
pub fn start(setup: Setup) {
    dioxus::prelude::spawn(run(setup));
}

async fn run(setup: Setup) {
    let (tx, mut rx) = unbounded::<Ev>();
    let count = setup.layout.piece_count();
    let (storage, hashes, have, seeding) = match setup.source {
        Some((files, hashes)) => (
            Storage::Source(files),
            Some(hashes),
            Bitfield::full(count),
            true,
        ),
        None => (
            Storage::Memory(BTreeMap::new()),
            None,
            Bitfield::new(count),
            false,
        ),
    };
    // Test-only switches, after the room link.
    let fragment = fragment_parts();
    let switch = |name: &str| fragment.iter().any(|part| part == name);
    let (corrupt, slow_disk, full_disk, slow_close) = (
        switch("corrupt"),
        switch("slowdisk"),
        switch("fulldisk"),
        switch("slowclose"),
    );
    let file_count = setup.files.len();
    let mut st = State {
        tx: tx.clone(),
        hub: None,
        swarm: None,
        me: PeerId(0),
        members: Vec::new(),
        ice: Vec::new(),
        conns: HashMap::new(),
        room: setup.room.clone(),
        ticket: setup.ticket.clone(),
        closed: None,
        written: Bitfield::new(count),
        queued: Bitfield::new(count),
        disk_backlog: 0,
        disk_backlog_peak: 0,
        channel_peak: 0,
        channel_pauses: 0,
        channel_resumes: 0,
        cache_writes: 0,
        storage_busy: false,
        file_bytes: (0..file_count)
            .map(|i| {
                if seeding {
                    setup.layout.file_sizes[i]
                } else {
                    0
                }
            })
            .collect(),
        layout: setup.layout,
        root: setup.root,
        files: setup.files,
        seeding,
        storage,
        hashes,
        have,
        restored: 0,
        db: None,
        record_dirty: false,
        layer_stored: false,
        flushing: false,
        flushed_ms: 0.0,
        saved_flushed: false,
        completed: false,
        finishing: false,
        read_cache: VecDeque::new(),
        reading: HashMap::new(),
        received_from: HashMap::new(),
        received_total: 0,
        messages_in: 0,
        messages_out: 0,
        stats: HashMap::new(),
        uploaded: 0,
        corrupt,
        water: if switch("smallbuffer") {
            Water::SMALL
        } else {
            Water::NORMAL
        },
        slow_disk,
        full_disk,
        slow_close,
        select_queued: false,
        selections_queued: 0,
        report: setup.report,
        rendered_ms: 0.0,
        shown_bytes: false,
        warned_unload: true,
        rate_sample: (now_ms(), 0, 0, vec![0; file_count]),
        rates: (0.0, 0.0),
        file_rates: vec![0.0; file_count],
        progress: (0, 0, 0),
        phase: if seeding {
            Phase::Seeding
        } else {
            Phase::Connecting
        },
        log: Vec::new(),
        saved: Vec::new(),
        selected: selection_from_fragment(&fragment, file_count),
        applied: selection_from_fragment(&fragment, file_count),
        reported: false,
        rejoin_attempts: 0,
        renewals: 0,
        renewed: 0,
        targets: vec![SaveTarget::None; file_count],
        _unload: UnloadWarning,
    };
    COMMANDS.with(|c| *c.borrow_mut() = Some(tx.clone()));
    if !seeding {
        st.prepare_storage().await;
    }
    st.progress = (
        st.have.count(),
        count,
        st.have
            .iter_ones()
            .map(|p| u64::from(st.layout.piece_len(p)))
            .sum(),
    );
    if let Err(e) = st.connect_hub() {
        st.phase = Phase::Failed(format!("could not reach the server: {e}"));
    }
    let tick_tx = tx.clone();
    wasm_bindgen_futures::spawn_local(async move {
        while !tick_tx.is_closed() {
            super::sleep(100.0).await;
            if tick_tx.unbounded_send(Ev::Tick).is_err() {
                break;
            }
        }
    });
    st.render(true);
    while let Some(ev) = rx.next().await {
        st.handle(ev);
        st.render(false);
    }
}

impl State {
    fn now(&self) -> u64 {
        now_ms() as u64
    }

    /// A receiver's start: clear out stale caches, open this room's files on disk, and take
    /// back whatever a previous visit left there, re-hashing every piece before trusting it.
    async fn prepare_storage(&mut self) {
        let disk = match Disk::start() {
            Ok(disk) => disk,
            Err(e) => {
                self.log.push(format!(
                    "no disk storage ({e}); keeping the download in memory"
                ));
                return;
            }
        };
        if self.slow_disk && disk.throttle(5_000_000).await.is_err() {
            self.log
                .push("could not slow the disk down (test switch)".into());
        }
        if self.full_disk && disk.fill_after(16 << 20).await.is_err() {
            self.log
                .push("could not fill the disk (test switch)".into());
        }
        if self.slow_close && disk.slow_close(2_000).await.is_err() {
            self.log
                .push("could not slow closing down (test switch)".into());
        }
        // The previous page of this tab may still hold the files for a moment after a reload.
        let mut opened = Err(String::new());
        for _ in 0..5 {
            opened = disk.open(&self.room, &self.layout).await;
            if opened.is_ok() {
                break;
            }
            super::sleep(200.0).await;
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
        let record = match cache::load(&db, &self.room).await {
            Ok(record) => record,
            Err(e) => {
                self.log
                    .push(format!("could not read the resume record: {e}"));
                None
            }
        };
        self.db = Some(Rc::new(db));
        let Some((record, hashes)) = record.filter(|(r, _)| r.root == self.root) else {
            return;
        };
        if Manifest::from_layer(self.layout.clone(), self.root, hashes.clone()).is_err() {
            return;
        }
        self.layer_stored = true;
        let count = self.layout.piece_count();
        let claimed: Vec<u32> = Bitfield::from_wire(&record.have, count)
            .map(|b| b.iter_ones().collect())
            .unwrap_or_default();
        if !claimed.is_empty() {
            self.phase = Phase::Verifying {
                pieces: claimed.len() as u32,
            };
            self.render(true);
            match disk.verify(&self.layout, &claimed, &hashes).await {
                Ok(ok) => {
                    let mut damaged = 0;
                    for (&piece, good) in claimed.iter().zip(ok) {
                        if good {
                            self.have.set(piece);
                            self.written.set(piece);
                            self.queued.set(piece);
                            let len = u64::from(self.layout.piece_len(piece));
                            self.restored += len;
                            self.file_bytes[self.layout.span(piece).file as usize] += len;
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

    /// Writes the resume record when pieces landed on disk since the last write (at most
    /// once a second: one transaction for the whole batch), or to keep the room fresh.
    fn flush_record(&mut self, force: bool) {
        let now = now_ms();
        let saved = saved_here(&self.room);
        let due = force
            || (self.record_dirty && now - self.flushed_ms >= cache::RECORD_EVERY_MS)
            || saved != self.saved_flushed
            || now - self.flushed_ms >= cache::TOUCH_EVERY_MS;
        if self.flushing || !due {
            return;
        }
        let (Some(db), Some(hashes)) = (
            self.db.clone(),
            self.swarm.as_ref().and_then(|s| s.piece_hashes()),
        ) else {
            return;
        };
        let record = RoomRecord {
            room: self.room.clone(),
            root: self.root,
            have: self.written.to_wire().to_vec(),
            touched: js_sys::Date::now(),
            saved,
        };
        // The hash layer goes with the first record only; a failed write sends it again.
        let layer = (!self.layer_stored).then(|| hashes.to_vec());
        self.layer_stored = true;
        self.flushing = true;
        self.cache_writes += 1;
        self.record_dirty = false;
        self.flushed_ms = now;
        self.saved_flushed = saved;
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = cache::store(&db, &record, layer.as_deref()).await;
            let _ = tx.unbounded_send(Ev::Flushed(result));
        });
    }

    /// Once complete and every piece is on disk: close the files and offer them for saving.
    fn maybe_finish(&mut self) {
        if !self.completed || self.finishing || !self.saved.is_empty() {
            return;
        }
        match &self.storage {
            Storage::Disk { disk, files: None } if self.selected_written() => {
                self.finishing = true;
                let disk = disk.clone();
                let tx = self.tx.clone();
                let count = self.files.len();
                let commit: Vec<usize> = (0..count)
                    .filter(|&i| {
                        matches!(self.targets[i], SaveTarget::Writing(_)) && self.file_complete(i)
                    })
                    .collect();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = disk.finish(count, &commit).await;
                    let _ = tx.unbounded_send(Ev::Finished(result));
                });
            }
            Storage::Memory(_) => {
                self.assemble_from_memory();
                self.done();
            }
            _ => {}
        }
    }

    /// Every piece of every selected file is on disk.
    fn selected_written(&self) -> bool {
        self.selected_pieces().all(|p| self.written.get(p))
    }

    fn selected_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.selected
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .flat_map(|(i, _)| self.layout.file_pieces(i))
    }

    /// File `i` is wholly here (verified, and on disk when the copy is on disk).
    fn file_complete(&self, i: usize) -> bool {
        let done = match (&self.storage, &self.swarm) {
            (Storage::Disk { .. }, _) => &self.written,
            (_, Some(swarm)) => swarm.have(),
            _ => &self.have,
        };
        self.layout.file_pieces(i).all(|p| done.get(p))
    }

    /// The person chose where file `file` goes: copy what is here, then write each new piece
    /// there too (the worker does both, in order with the other writes).
    fn on_picked(&mut self, file: usize, handle: wasm_bindgen::JsValue) {
        let Storage::Disk { disk, .. } = &self.storage else {
            return;
        };
        // Only files being downloaded (or here) can go somewhere.
        if !self.selected.get(file).copied().unwrap_or(false) {
            return;
        }
        let name = js_sys::Reflect::get(&handle, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .unwrap_or_else(|| self.files[file].name.clone());
        // What is on disk when the worker gets to this request: the writes still in its
        // queue land before it, and are not sent to the chosen place themselves.
        let ranges = self.layout.held_ranges(file, |p| self.queued.get(p));
        let attach = disk.attach(
            file as u32,
            handle,
            self.layout.file_sizes[file],
            &ranges,
            self.file_complete(file),
        );
        self.log.push(format!(
            "saving {} to {name} as it arrives",
            self.files[file].name
        ));
        self.targets[file] = SaveTarget::Writing(name);
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = tx.unbounded_send(Ev::Attached(file, attach.await));
        });
        self.render(true);
    }

    /// File `file` is complete in the place chosen for it.
    fn target_saved(&mut self, file: usize) {
        if let SaveTarget::Writing(name) = &self.targets[file] {
            self.log.push(format!("saved {name}"));
            self.targets[file] = SaveTarget::Saved(name.clone());
            mark_saved(&self.room);
        }
    }

    fn target_failed(&mut self, file: usize, e: String) {
        if file < self.targets.len() {
            self.log.push(format!(
                "could not save {} there: {e}",
                self.files[file].name
            ));
            self.targets[file] = SaveTarget::Failed(e);
        }
    }

    /// A file was ticked or unticked. While the files are being closed (the selection had
    /// finished) or reopened, the choice waits for that to end: a write or a close racing
    /// with it would fail.
    fn on_select(&mut self, file: usize, on: bool) {
        if !self.can_choose() {
            self.render(true);
            return;
        }
        if file >= self.selected.len() || self.selected[file] == on {
            return;
        }
        self.selected[file] = on;
        keep_selection_in_fragment(&self.selected);
        if self.finishing {
            self.select_queued = true;
            self.selections_queued += 1;
            self.render(true);
            return;
        }
        self.apply_selection();
    }

    /// Files can be chosen by a receiver that is still in the room and has not failed.
    fn can_choose(&self) -> bool {
        !self.seeding && self.closed.is_none() && !matches!(self.phase, Phase::Failed(_))
    }

    /// Drops a selection change that waited: it can no longer be applied.
    fn drop_queued_selection(&mut self) {
        if std::mem::take(&mut self.select_queued) {
            self.selected = self.applied.clone();
            keep_selection_in_fragment(&self.selected);
        }
    }

    /// Hands the selection to the swarm. A file ticked after the selection finished needs
    /// the files open for writing again first (the finished ones were closed for saving).
    fn apply_selection(&mut self) {
        if !self.can_choose() {
            self.drop_queued_selection();
            self.render(true);
            return;
        }
        self.select_queued = false;
        let missing = (0..self.selected.len()).any(|i| self.selected[i] && !self.file_complete(i));
        if missing && (self.completed || !self.saved.is_empty()) {
            self.completed = false;
            for saved in self.saved.drain(..) {
                let _ = web_sys::Url::revoke_object_url(&saved.url);
            }
            self.phase = Phase::Downloading;
            if let Storage::Disk {
                disk,
                files: Some(_),
            } = &self.storage
            {
                self.finishing = true;
                let (disk, tx) = (disk.clone(), self.tx.clone());
                let (room, layout) = (self.room.clone(), self.layout.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let result = disk.open(&room, &layout).await;
                    let _ = tx.unbounded_send(Ev::Reopened(result));
                });
                self.render(true);
                return;
            }
            self.finishing = false;
        }
        self.applied = self.selected.clone();
        self.input(Input::Select(self.selected.clone()));
        // The swarm announces completion once per selection; a selection that went back to
        // files already here (ticked, then unticked while reopening) is complete again.
        if !self.seeding && !self.completed && self.swarm.as_ref().is_some_and(Swarm::has_wanted) {
            self.completed = true;
            self.phase = Phase::Finishing;
            self.maybe_finish();
        }
        self.render(true);
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            let Some(swarm) = self.swarm.as_mut() else {
                return;
            };
            swarm.handle_input(now, input);
            while let Some(out) = self.swarm.as_mut().and_then(Swarm::poll_output) {
                if let Some(more) = self.output(out) {
                    pending.push(more);
                }
            }
        }
    }

    /// Opens the hub's socket with the current ticket.
    fn connect_hub(&mut self) -> Result<(), String> {
        let tx = self.tx.clone();
        let hub = SignalingSocket::connect(&self.room, &self.ticket, move |e| {
            let _ = tx.unbounded_send(Ev::Signaling(e));
        })?;
        self.hub = Some(hub);
        Ok(())
    }

    /// Asks for a fresh ticket after a pause that doubles with each attempt (1 s up to
    /// 30 s), then reconnects ([`Ev::Rejoin`]). A fresh ticket, because the old one may be
    /// what expired; asking for it also tells whether the room still exists.
    fn schedule_rejoin(&mut self) {
        let delay = 1000.0 * f64::from(1u32 << self.rejoin_attempts.min(5)).min(30.0);
        self.rejoin_attempts += 1;
        self.log.push(format!(
            "reconnecting to the server in {} s",
            (delay / 1000.0).round()
        ));
        let (tx, room) = (self.tx.clone(), self.room.clone());
        wasm_bindgen_futures::spawn_local(async move {
            super::sleep(delay).await;
            let ticket = crate::api::join_room(room).await.map(|t| t.ticket);
            let _ = tx.unbounded_send(Ev::Rejoin(ticket));
        });
    }

    /// Fetches a fresh ticket in `delay_ms` and hands it to the open socket
    /// ([`Ev::Renew`]), so the socket outlives its ticket: same peer id, same connections.
    /// Without a renewal the hub closes the socket at the ticket's expiry and the tab
    /// rejoins under a new id, dropping its peer connections.
    fn schedule_renewal(&mut self, delay_ms: f64) {
        self.renewals = self.renewals.wrapping_add(1);
        let (tx, room, generation) = (self.tx.clone(), self.room.clone(), self.renewals);
        wasm_bindgen_futures::spawn_local(async move {
            super::sleep(delay_ms).await;
            let ticket = crate::api::join_room(room).await.map(|t| t.ticket);
            let _ = tx.unbounded_send(Ev::Renew(generation, ticket));
        });
    }

    fn send_hub(&self, msg: ClientMessage) {
        if let Some(hub) = &self.hub {
            hub.send(&msg);
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Signaling(SignalingEvent::Message(msg)) => self.on_hub(msg),
            Ev::Signaling(SignalingEvent::Closed(why)) => {
                self.hub = None;
                if self.closed.is_some() {
                    return;
                }
                // Peers already connected keep exchanging pieces without the server, and
                // the tab reconnects: after a server restart, a network drop or the
                // ticket's expiry, it can be found by newcomers again.
                self.log.push(why);
                self.schedule_rejoin();
            }
            Ev::Rejoin(Ok(ticket)) => {
                if self.closed.is_some() {
                    return;
                }
                self.ticket = ticket;
                if let Err(e) = self.connect_hub() {
                    self.log.push(format!("could not reach the server: {e}"));
                    self.schedule_rejoin();
                }
            }
            Ev::Rejoin(Err(
                e @ (crate::api::ApiError::RoomNotFound | crate::api::ApiError::RoomGone),
            )) => {
                self.stop(format!("This room was closed: {e}."));
            }
            Ev::Rejoin(Err(e)) => {
                if self.closed.is_none() {
                    self.log.push(format!("could not rejoin the room: {e}"));
                    self.schedule_rejoin();
                }
            }
            Ev::Renew(generation, _) if generation != self.renewals || self.hub.is_none() => {}
            Ev::Renew(_, Ok(ticket)) => {
                if self.closed.is_none() {
                    self.ticket = ticket.clone();
                    self.send_hub(ClientMessage::Renew { ticket });
                    // Tried again unless `renewed` comes first (a refusal is only logged).
                    self.schedule_renewal(10_000.0);
                }
            }
            Ev::Renew(
                _,
                Err(e @ (crate::api::ApiError::RoomNotFound | crate::api::ApiError::RoomGone)),
            ) => {
                self.stop(format!("This room was closed: {e}."));
            }
            Ev::Renew(_, Err(e)) => {
                // The socket lives until its ticket expires; then the tab rejoins.
                self.log.push(format!("could not renew the ticket: {e}"));
                self.schedule_renewal(10_000.0);
            }
            Ev::Rtc(peer, event) => self.on_rtc(peer, event),
            Ev::Negotiated(peer, Ok(Some(payload))) => {
                self.send_hub(ClientMessage::Signal { to: peer, payload });
                self.flush_outbox(peer);
            }
            Ev::Negotiated(peer, Ok(None)) => self.flush_outbox(peer),
            Ev::Negotiated(peer, Err(e)) => {
                self.log
                    .push(format!("negotiation with {} failed: {e}", peer.0));
                self.drop_conn(peer);
            }
            Ev::RemoteSet(peer) => {
                if let Some(conn) = self.conns.get_mut(&peer) {
                    conn.remote_set = true;
                    let pc = conn.pc.clone();
                    let queued = std::mem::take(&mut conn.pending_candidates);
                    wasm_bindgen_futures::spawn_local(async move {
                        for c in queued {
                            let _ = Conn::add_candidate(&pc, &c).await;
                        }
                    });
                }
            }
            Ev::PiecesRead {
                pieces,
                data: Err(e),
            } => {
                let file = &self.files[self.layout.span(pieces.start).file as usize].name;
                if !self.seeding {
                    // The downloaded copy could not be read back this once: those blocks
                    // are refused (the peers ask someone else) and the tab goes on
                    // sharing everything else. Stopping would take a full copy out of the
                    // swarm just when the others may need it most.
                    self.log.push(format!(
                        "could not read piece {} of the downloaded {file} back from \
                         storage ({e}); refused it to the peers that asked",
                        pieces.start
                    ));
                    for piece in pieces {
                        for (peer, block) in self.reading.remove(&piece).unwrap_or_default() {
                            self.finish_read(peer, block, None);
                        }
                    }
                    return;
                }
                // The shared file changed, moved or went away: nothing this tab advertises
                // can be trusted to come out right, and peers would only ask again and
                // again. Stop, saying why.
                let why = format!(
                    "could not read {file} ({e}); it was changed, moved or deleted. \
                     Share it again to go on."
                );
                for piece in pieces {
                    self.reading.remove(&piece);
                }
                if self.closed.is_none() {
                    self.stop(why);
                }
            }
            Ev::PiecesRead {
                pieces,
                data: Ok(data),
            } => {
                let data = Some(data);
                let mut at = 0;
                for piece in pieces {
                    let len = self.layout.piece_len(piece) as usize;
                    let bytes = data
                        .as_ref()
                        .filter(|d| d.len() >= at + len)
                        .map(|d| d.slice(at..at + len));
                    at += len;
                    if let Some(bytes) = &bytes {
                        self.remember(piece, bytes.clone());
                    }
                    for (peer, block) in self.reading.remove(&piece).unwrap_or_default() {
                        let slice = bytes.as_ref().and_then(|d| slice_block(d, &block));
                        self.finish_read(peer, block, slice);
                    }
                }
            }
            Ev::Hashed { piece, digest } => self.input(Input::Hashed { piece, digest }),
            Ev::HashFailed(e) if self.closed.is_none() => self.stop(format!(
                "this browser could not check the downloaded data ({e}); \
                 meshdrop needs a secure page (https or localhost)"
            )),
            Ev::HashFailed(_) => {}
            Ev::Written { piece, result } => {
                self.disk_backlog = self
                    .disk_backlog
                    .saturating_sub(u64::from(self.layout.piece_len(piece)));
                if self.disk_backlog < DISK_BACKLOG_LOW
                    && let Some(input) = self.storage_busy(false)
                {
                    self.input(input);
                }
                self.on_written(piece, result);
            }
            Ev::Finished(Ok(Finished {
                files,
                committed,
                failed,
            })) => {
                self.finishing = false;
                self.offer_files(&files);
                if let Storage::Disk { files: slot, .. } = &mut self.storage {
                    *slot = Some(files);
                }
                for file in committed {
                    self.target_saved(file);
                }
                for (file, e) in failed {
                    self.target_failed(file, e);
                }
                self.done();
                self.flush_record(true);
                if self.select_queued {
                    self.apply_selection();
                }
            }
            Ev::Finished(Err(e)) => {
                self.finishing = false;
                self.drop_queued_selection();
                self.phase = Phase::Failed(format!("could not close the files: {e}"))
            }
            Ev::Flushed(result) => {
                self.flushing = false;
                if let Err(e) = result {
                    // Written again with the next batch, hash layer and all.
                    self.layer_stored = false;
                    self.record_dirty = true;
                    self.log
                        .push(format!("could not update the resume record: {e}"));
                }
            }
            Ev::Select(file, on) => self.on_select(file, on),
            Ev::Picked(file, Ok(handle)) => self.on_picked(file, handle),
            Ev::Picked(file, Err(Some(e))) => self.target_failed(file, e),
            Ev::Picked(_, Err(None)) => {}
            Ev::Attached(file, Ok(true)) => self.target_saved(file),
            Ev::Attached(_, Ok(false)) => {}
            Ev::Attached(file, Err(e)) => self.target_failed(file, e),
            Ev::Reopened(result) => {
                self.finishing = false;
                match result {
                    Ok(()) => {
                        if let Storage::Disk { files, .. } = &mut self.storage {
                            *files = None;
                        }
                        self.apply_selection();
                    }
                    Err(e) => {
                        self.drop_queued_selection();
                        self.phase = Phase::Failed(format!("could not reopen the files: {e}"))
                    }
                }
            }
            Ev::Tick => {
                let now = now_ms();
                let stale: Vec<PeerId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| !c.open && now - c.created_ms > OPEN_TIMEOUT_MS)
                    .map(|(&p, _)| p)
                    .collect();
                for p in &stale {
                    self.log
                        .push(format!("connection to {} did not open; retrying", p.0));
                    self.drop_conn(*p);
                }
                if !stale.is_empty() {
                    // Ask the topology again: it advises reconnecting to wanted peers.
                    self.input(Input::Members(self.members.clone()));
                }
                self.input(Input::Timeout);
                self.flush_record(false);
            }
        }
    }

    /// The storage worker finished writing `piece` (and copying it to a picked file).
    fn on_written(&mut self, piece: u32, result: Result<Option<String>, String>) {
        match result {
            Ok(target_error) => {
                if let Some(e) = target_error {
                    self.target_failed(self.layout.span(piece).file as usize, e);
                }
                self.written.set(piece);
                self.record_dirty = true;
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

    /// What to tell the swarm when storage falls behind or catches up (on a change only).
    fn storage_busy(&mut self, busy: bool) -> Option<Input> {
        (busy != self.storage_busy).then(|| {
            self.storage_busy = busy;
            Input::StorageBusy(busy)
        })
    }

    /// Whether a piece is in the small in-memory read cache.
    fn cached(&self, piece: u32) -> bool {
        self.read_cache.iter().any(|(p, _)| *p == piece)
    }

    /// Keeps a piece in the small in-memory cache, dropping the oldest beyond the budget.
    fn remember(&mut self, piece: u32, data: Bytes) {
        if self.cached(piece) {
            return;
        }
        self.read_cache.push_back((piece, data));
        let mut bytes: usize = self.read_cache.iter().map(|(_, d)| d.len()).sum();
        while bytes > READ_CACHE_BYTES && self.read_cache.len() > 2 {
            if let Some((_, d)) = self.read_cache.pop_front() {
                bytes -= d.len();
            }
        }
    }

    fn on_hub(&mut self, msg: ServerMessage) {
        match msg {
            ServerMessage::Welcome {
                you,
                members,
                ice_servers,
                renew_in_ms,
                ..
            } => {
                if renew_in_ms > 0 {
                    self.schedule_renewal(renew_in_ms as f64);
                }
                let rejoined = self.swarm.is_some();
                if let Some(old) = &self.swarm {
                    // Back after the socket closed, under a new peer id: the others dropped
                    // our connections when the old id left, so this tab starts over with
                    // what it has (pieces, hashes) and connects afresh.
                    self.have = old.have().clone();
                    self.hashes = old.piece_hashes().map(<[Hash]>::to_vec);
                    self.log.push("reconnected to the server".into());
                    let peers: Vec<PeerId> = self.conns.keys().copied().collect();
                    for peer in peers {
                        self.drop_conn(peer);
                    }
                }
                self.rejoin_attempts = 0;
                self.me = you;
                self.ice = ice_servers;
                self.swarm = Some(Swarm::new(
                    SwarmConfig::default(),
                    you,
                    self.layout.clone(),
                    self.root,
                    self.hashes.take(),
                    self.have.clone(),
                    you.0 ^ (now_ms() as u64),
                ));
                self.members = members;
                self.members.push(you);
                // What the old swarm was given: a change waiting for the files to close or
                // reopen is applied after that, as before.
                if self.applied.iter().any(|on| !on) {
                    self.input(Input::Select(self.applied.clone()));
                }
                if !self.seeding && !rejoined {
                    self.phase = if self.swarm.as_ref().is_some_and(Swarm::has_wanted) {
                        // Everything came from the cache (or the room is empty). The phase
                        // is set first: finishing in memory is immediate and sets Done.
                        self.completed = true;
                        self.phase = Phase::Finishing;
                        self.maybe_finish();
                        self.phase.clone()
                    } else if self
                        .swarm
                        .as_ref()
                        .is_some_and(|s| s.piece_hashes().is_some())
                    {
                        Phase::Downloading
                    } else {
                        Phase::FetchingHashes
                    };
                }
                self.input(Input::Members(self.members.clone()));
            }
            ServerMessage::PeerJoined { peer } => {
                if !self.members.contains(&peer) {
                    self.members.push(peer);
                }
                self.input(Input::Members(self.members.clone()));
            }
            ServerMessage::PeerLeft { peer } => {
                self.members.retain(|&p| p != peer);
                if self.conns.contains_key(&peer) {
                    self.drop_conn(peer);
                }
                self.input(Input::Members(self.members.clone()));
            }
            ServerMessage::Signal { from, payload } => self.on_signal(from, payload),
            ServerMessage::Error { message } => self.log.push(message),
            ServerMessage::Renewed {
                ice_servers,
                renew_in_ms,
            } => {
                self.renewed += 1;
                self.ice = ice_servers;
                if renew_in_ms > 0 {
                    self.schedule_renewal(renew_in_ms as f64);
                }
            }
            ServerMessage::RoomClosed { reason } => {
                self.stop(format!("This room was closed: {reason}."));
            }
        }
    }

    /// Stops sharing at once and for good: every peer connection goes, and so does the hub
    /// socket, so no peer is offered pieces this tab can no longer serve. What is on disk
    /// and in the resume record stays, so a reload resumes.
    fn stop(&mut self, why: String) {
        let peers: Vec<PeerId> = self.conns.keys().copied().collect();
        for peer in peers {
            self.drop_conn(peer);
        }
        self.members.clear();
        self.hub = None;
        self.log.push(why.clone());
        self.phase = self.phase.ended(why.clone());
        self.closed = Some(why);
    }

    /// Every file is complete and offered for saving; the server counts this download once.
    fn done(&mut self) {
        if let Some(why) = &self.closed {
            // The last writes landed after the room closed: done, but no longer sharing.
            self.phase = Phase::Stopped {
                complete: true,
                why: why.clone(),
            };
            return;
        }
        self.phase = Phase::Done;
        // The room's "completed downloads" count only whole copies.
        if self.reported || !self.swarm.as_ref().is_some_and(Swarm::is_complete) {
            return;
        }
        self.reported = true;
        let (room, ticket) = (self.room.clone(), self.ticket.clone());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = crate::api::report_completed(room, ticket).await {
                web_sys::console::warn_1(
                    &format!("could not report the finished download: {e}").into(),
                );
            }
        });
    }

    fn new_conn(&mut self, peer: PeerId) -> bool {
        if self.conns.contains_key(&peer) {
            return true;
        }
        let tx = self.tx.clone();
        match Conn::new(&self.ice, self.water, move |e| {
            let _ = tx.unbounded_send(Ev::Rtc(peer, e));
        }) {
            Ok(conn) => {
                self.conns.insert(peer, conn);
                true
            }
            Err(e) => {
                self.log.push(format!("could not create a connection: {e}"));
                false
            }
        }
    }

    fn on_signal(&mut self, from: PeerId, payload: SignalPayload) {
        match payload {
            SignalPayload::Offer { sdp } => {
                // Only the lower id offers, so an offer always starts a fresh connection.
                if self.conns.get(&from).is_some_and(|c| c.remote_set) {
                    self.drop_conn(from);
                }
                if !self.new_conn(from) {
                    return;
                }
                let pc = self.conns[&from].pc.clone();
                let tx = self.tx.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = Conn::answer(&pc, &sdp).await;
                    let ok = result.is_ok();
                    let _ = tx.unbounded_send(Ev::Negotiated(from, result.map(Some)));
                    if ok {
                        let _ = tx.unbounded_send(Ev::RemoteSet(from));
                    }
                });
            }
            SignalPayload::Answer { sdp } => {
                let Some(conn) = self.conns.get(&from) else {
                    return;
                };
                let pc = conn.pc.clone();
                let tx = self.tx.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = Conn::accept_answer(&pc, &sdp).await;
                    let ok = result.is_ok();
                    let _ = tx.unbounded_send(Ev::Negotiated(from, result.map(|_| None)));
                    if ok {
                        let _ = tx.unbounded_send(Ev::RemoteSet(from));
                    }
                });
            }
            candidate @ SignalPayload::Candidate { .. } => {
                let Some(conn) = self.conns.get_mut(&from) else {
                    return;
                };
                if conn.remote_set {
                    let pc = conn.pc.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        let _ = Conn::add_candidate(&pc, &candidate).await;
                    });
                } else if conn.pending_candidates.len() < 64 {
                    conn.pending_candidates.push(candidate);
                }
            }
        }
    }

    fn on_rtc(&mut self, peer: PeerId, event: RtcEvent) {
        match event {
            RtcEvent::Candidate(payload) => {
                self.send_hub(ClientMessage::Signal { to: peer, payload })
            }
            RtcEvent::Open { max_message } => {
                if let Some(conn) = self.conns.get_mut(&peer) {
                    conn.open = true;
                    self.input(Input::Connected { peer, max_message });
                }
            }
            RtcEvent::Closed(why) => {
                if self.conns.contains_key(&peer) {
                    self.log.push(format!("peer {}: {why}", peer.0));
                    self.drop_conn(peer);
                }
            }
            RtcEvent::Message(bytes) => {
                self.messages_in += 1;
                if bytes.len() > 1024 {
                    *self.received_from.entry(peer).or_default() += bytes.len() as u64;
                    self.received_total += bytes.len() as u64;
                }
                self.input(Input::Message {
                    peer,
                    bytes: Bytes::from(bytes),
                });
            }
            RtcEvent::BufferLow => {
                if let Some(conn) = self.conns.get_mut(&peer)
                    && conn.drain()
                {
                    self.channel_resumes += 1;
                    self.input(Input::SendBlocked {
                        peer,
                        blocked: false,
                    });
                }
            }
        }
    }

    fn flush_outbox(&mut self, peer: PeerId) {
        let Some(conn) = self.conns.get_mut(&peer) else {
            return;
        };
        conn.described = true;
        for payload in std::mem::take(&mut conn.outbox) {
            self.send_hub(ClientMessage::Signal { to: peer, payload });
        }
    }

    fn drop_conn(&mut self, peer: PeerId) {
        if let Some(conn) = self.conns.remove(&peer) {
            conn.close();
            self.input(Input::Disconnected { peer });
        }
    }

    /// Carries out one output; may produce an input to feed back.
    fn output(&mut self, out: Output) -> Option<Input> {
        match out {
            Output::Send { peer, frame } => {
                if let Frame::Piece { data, .. } = &frame {
                    self.uploaded += data.len() as u64;
                }
                let conn = self.conns.get_mut(&peer)?;
                self.messages_out += 1;
                let newly_blocked = conn.send(frame.encode_vec());
                self.channel_peak = self.channel_peak.max(conn.peak_buffered);
                self.channel_pauses += u64::from(newly_blocked);
                if conn.queued_bytes > super::rtc::MAX_QUEUED_BYTES {
                    self.log.push(format!(
                        "peer {} takes far less than it asks for; disconnected",
                        peer.0
                    ));
                    if let Some(conn) = self.conns.remove(&peer) {
                        conn.close();
                    }
                    return Some(Input::Disconnected { peer });
                }
                newly_blocked.then_some(Input::SendBlocked {
                    peer,
                    blocked: true,
                })
            }
            Output::Connect { peer } => {
                if !self.conns.contains_key(&peer) && self.new_conn(peer) && self.me < peer {
                    let pc = self.conns[&peer].pc.clone();
                    let tx = self.tx.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        let result = Conn::offer(&pc).await.map(Some);
                        let _ = tx.unbounded_send(Ev::Negotiated(peer, result));
                    });
                }
                None
            }
            Output::Disconnect { peer, reason } => {
                if let Some(conn) = self.conns.remove(&peer) {
                    self.log.push(format!("dropped peer {}: {reason}", peer.0));
                    conn.close();
                }
                None
            }
            Output::ReadBlock { peer, block } => {
                self.read_block(peer, block);
                None
            }
            Output::Verify { piece, data } => {
                let tx = self.tx.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    // A digest that cannot be taken says nothing about the sender: this
                    // tab stops instead of blaming (and banning) an honest peer.
                    let _ = tx.unbounded_send(match crypto::sha256(&data).await {
                        Ok(digest) => Ev::Hashed { piece, digest },
                        Err(e) => Ev::HashFailed(e),
                    });
                });
                None
            }
            Output::Store { piece, data } => self.store_piece(piece, data),
            Output::Write { .. } => None,
            Output::Event(event) => {
                self.on_event(event);
                None
            }
        }
    }

    /// A verified piece: onto disk (or into memory), and kept handy for re-serving. Returns
    /// what the swarm must hear when this piece puts storage behind.
    fn store_piece(&mut self, piece: u32, data: Bytes) -> Option<Input> {
        let span = self.layout.span(piece);
        self.file_bytes[span.file as usize] += u64::from(span.len);
        match &mut self.storage {
            Storage::Memory(map) => {
                map.insert(piece, data);
            }
            Storage::Disk { disk, files: None } => {
                let write = disk.write(span.file, span.offset, &data);
                self.queued.set(piece);
                let tx = self.tx.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = write.await;
                    let _ = tx.unbounded_send(Ev::Written { piece, result });
                });
                self.disk_backlog += data.len() as u64;
                self.disk_backlog_peak = self.disk_backlog_peak.max(self.disk_backlog);
                // Kept handy only for a neighbour that may ask for it soon: a lone
                // receiver's memory holds no copies (benches/FINDINGS.md, P4).
                if self.swarm.as_ref().is_some_and(|s| s.someone_lacks(piece)) {
                    self.remember(piece, data);
                }
                if self.disk_backlog > DISK_BACKLOG_HIGH {
                    return self.storage_busy(true);
                }
            }
            Storage::Source(_) | Storage::Disk { .. } => {}
        }
        None
    }

    fn read_block(&mut self, peer: PeerId, block: BlockRef) {
        if let Storage::Memory(map) = &self.storage {
            let data = map.get(&block.piece).and_then(|p| slice_block(p, &block));
            return self.finish_read(peer, block, data);
        }
        if let Some((_, piece)) = self.read_cache.iter().find(|(p, _)| *p == block.piece) {
            let data = slice_block(piece, &block);
            return self.finish_read(peer, block, data);
        }
        let piece = block.piece;
        let busy = self.reading.contains_key(&piece);
        self.reading.entry(piece).or_default().push((peer, block));
        if busy {
            return; // the piece is already being read
        }
        let span = self.layout.span(piece);
        let mut run = piece + 1;
        let read: std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>>>> =
            match &self.storage {
                Storage::Source(files)
                | Storage::Disk {
                    files: Some(files), ..
                } => {
                    // In file order (the piece before was read lately): read a run.
                    let follows = piece > 0
                        && self.cached(piece - 1)
                        && self.layout.span(piece - 1).file == span.file;
                    if follows {
                        let last = self.layout.file_pieces(span.file as usize).end;
                        let per_run = (READ_RUN_BYTES / span.len.max(1)).max(1);
                        // Up to the run's length, stopping before a piece already at hand.
                        while run < (piece + per_run).min(last)
                            && !self.reading.contains_key(&run)
                            && !self.cached(run)
                        {
                            run += 1;
                        }
                    }
                    for more in piece + 1..run {
                        self.reading.entry(more).or_default();
                    }
                    let end = self.layout.span(run - 1).offset
                        + u64::from(self.layout.piece_len(run - 1));
                    let file = files[span.file as usize].clone();
                    Box::pin(async move { read_slice(&file, span.offset, end).await })
                }
                Storage::Disk { disk, files: None } => {
                    Box::pin(disk.read(span.file, span.offset, span.len))
                }
                Storage::Memory(_) => unreachable!("answered above"),
            };
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let data = read.await;
            let _ = tx.unbounded_send(Ev::PiecesRead {
                pieces: piece..run,
                data: data.map(Bytes::from),
            });
        });
    }

    /// Answers a read, corrupting it first under the test-only switch.
    fn finish_read(&mut self, peer: PeerId, block: BlockRef, data: Option<Bytes>) {
        let data = match data {
            Some(d) if self.corrupt && !d.is_empty() => {
                let mut bad = d.to_vec();
                bad[0] ^= 0xff;
                Some(Bytes::from(bad))
            }
            other => other,
        };
        self.input(Input::BlockRead { peer, block, data });
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::HashesVerified { .. } => self.phase = Phase::Downloading,
            Event::Progress { have, total, bytes } => {
                self.progress = (have, total, bytes);
                if self.phase == Phase::FetchingHashes {
                    self.phase = Phase::Downloading;
                }
            }
            Event::PieceFailed { piece, .. } => self.log.push(format!(
                "piece {piece} failed verification; fetching it again"
            )),
            Event::Banned { peer, reason } => {
                self.log.push(format!("banned peer {}: {reason}", peer.0))
            }
            Event::PeerStats {
                peer,
                down_rate,
                up_rate,
                pieces,
            } => {
                self.stats.insert(peer, (down_rate, up_rate, pieces));
            }
            Event::Completed => {
                // Once per selection: a swarm rebuilt after reconnecting announces again.
                if !self.seeding && !self.completed {
                    self.completed = true;
                    self.phase = Phase::Finishing;
                    self.maybe_finish();
                }
            }
        }
    }

    /// Every file as a Blob of its verified pieces (the in-memory fallback).
    fn assemble_from_memory(&mut self) {
        let Storage::Memory(map) = &self.storage else {
            return;
        };
        let mut blobs = Vec::new();
        for (i, file) in self.files.iter().enumerate() {
            let parts = js_sys::Array::new();
            for piece in self.layout.file_pieces(i) {
                if let Some(data) = map.get(&piece) {
                    parts.push(&js_sys::Uint8Array::from(data.as_ref()));
                }
            }
            let options = web_sys::BlobPropertyBag::new();
            options.set_type(mime(file));
            match web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options) {
                Ok(blob) => blobs.push(blob),
                Err(e) => {
                    return self.log.push(format!(
                        "could not assemble {}: {}",
                        file.name,
                        super::js_error(e)
                    ));
                }
            }
        }
        self.offer_files(&blobs);
    }

    /// A save link (object URL) per file. The disk-backed `File`s cost no memory to save.
    /// Only wholly present files get one (the others were not selected).
    fn offer_files<B: AsRef<web_sys::Blob>>(&mut self, blobs: &[B]) {
        let complete: Vec<bool> = (0..self.files.len())
            .map(|i| self.file_complete(i))
            .collect();
        for (i, (file, blob)) in self.files.iter().zip(blobs).enumerate() {
            if !complete[i] {
                continue;
            }
            match web_sys::Url::create_object_url_with_blob(blob.as_ref()) {
                Ok(url) => self.saved.push(Saved {
                    file: i,
                    name: file.name.clone(),
                    url,
                }),
                Err(e) => self.log.push(format!(
                    "could not offer {} for saving: {}",
                    file.name,
                    super::js_error(e)
                )),
            }
        }
    }

    /// Publishes to the page at most four times a second (or at once when `force`).
    fn render(&mut self, force: bool) {
        let now = now_ms();
        // The first verified bytes show at once (the "first byte" measurement reads them).
        let first_bytes = !self.seeding && self.progress.2 > 0 && !self.shown_bytes;
        if !force && !first_bytes && now - self.rendered_ms < 250.0 {
            return;
        }
        self.shown_bytes |= self.progress.2 > 0;
        self.rendered_ms = now;
        let (t0, bytes0, up0, files0) = &self.rate_sample;
        let dt = (now - t0) / 1000.0;
        if dt >= 1.0 {
            let bytes = self.progress.2;
            self.rates = (
                (bytes.saturating_sub(*bytes0)) as f64 / dt,
                (self.uploaded.saturating_sub(*up0)) as f64 / dt,
            );
            self.file_rates = self
                .file_bytes
                .iter()
                .zip(files0)
                .map(|(now, then)| now.saturating_sub(*then) as f64 / dt)
                .collect();
            self.rate_sample = (now, bytes, self.uploaded, self.file_bytes.clone());
        }
        let mut peers: Vec<PeerRow> = self
            .conns
            .iter()
            .filter(|(_, c)| c.open)
            .map(|(&p, _)| {
                let (down_rate, up_rate, pieces) = self.stats.get(&p).copied().unwrap_or_default();
                PeerRow {
                    id: p.0,
                    down_rate,
                    up_rate,
                    pieces,
                    received: self.received_from.get(&p).copied().unwrap_or(0),
                }
            })
            .collect();
        peers.sort_by_key(|r| r.id);
        // The sender's tab asks before closing only while nobody else has every piece.
        if self.seeding {
            let total = self.layout.piece_count();
            // A tab that no longer shares (the room closed) has nothing to warn about.
            let only_copy =
                self.closed.is_none() && !peers.iter().any(|p| p.pieces >= total && total > 0);
            if only_copy != self.warned_unload {
                self.warned_unload = only_copy;
                super::warn_before_unload(only_copy);
            }
        }
        // A receiver's totals cover the files it selected.
        let (bytes, total_bytes) = if self.seeding {
            (self.layout.total_size(), self.layout.total_size())
        } else {
            let selected = || {
                self.selected
                    .iter()
                    .enumerate()
                    .filter(|(_, on)| **on)
                    .map(|(i, _)| i)
            };
            (
                selected().map(|i| self.file_bytes[i]).sum(),
                selected().map(|i| self.layout.file_sizes[i]).sum(),
            )
        };
        let stats = self
            .swarm
            .as_ref()
            .map(|s| s.stats.clone())
            .unwrap_or_default();
        let view = TransferView {
            wasted: stats.wasted_bytes,
            messages_in: self.messages_in,
            messages_out: self.messages_out,
            stalls: stats.stalls,
            endgame: stats.endgame_requests,
            phase: self.phase.clone(),
            have: self.progress.0,
            total: self.layout.piece_count(),
            bytes,
            files: self
                .files
                .iter()
                .zip(&self.file_bytes)
                .zip(&self.file_rates)
                .zip(&self.selected)
                .zip(&self.targets)
                .map(|((((f, &have), &rate), &selected), target)| FileRow {
                    name: f.name.clone(),
                    size: f.size,
                    have,
                    rate,
                    selected,
                    target: target.clone(),
                })
                .collect(),
            can_pick: matches!(self.storage, Storage::Disk { .. }) && save_picker().is_some(),
            disk_backlog_peak: self.disk_backlog_peak,
            channel_peak: self.channel_peak,
            channel_pauses: self.channel_pauses,
            channel_resumes: self.channel_resumes,
            renewed: self.renewed,
            closing: self.finishing,
            selections_queued: self.selections_queued,
            cache_writes: self.cache_writes,
            heap: wasm_bindgen::memory()
                .dyn_into::<js_sys::WebAssembly::Memory>()
                .map(|m| u64::from(js_sys::ArrayBuffer::from(m.buffer()).byte_length()))
                .unwrap_or(0),
            restored: self.restored,
            received: self.received_total,
            room: self.room.clone(),
            total_bytes,
            down_rate: self.rates.0,
            up_rate: self.rates.1,
            uploaded: self.uploaded,
            peers,
            me: self.me.0,
            members: self.members.len(),
            saved: self.saved.clone(),
            log: self.log.iter().rev().take(20).cloned().collect(),
        };
        (self.report)(view);
    }
}
