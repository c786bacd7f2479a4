//! The browser shell: one event loop per room that drives the sans-IO `Swarm`.
//!
//! Every browser callback (hub message, ICE candidate, channel message, finished read or
//! digest, timer) becomes an `Ev` on one channel; the loop feeds each to the swarm and then
//! carries out the swarm's outputs. Nothing else mutates the state, so there are no locks
//! and no re-entrancy.
//!
//! The state is split by what it is about, each part with the code that uses it:
//! - [`hub_session`]: the signaling server (connect, rejoin with backoff, ticket renewal)
//!   and the room's members.
//! - [`peers`]: the peer connections (offers and answers, ICE, open timeouts, outboxes).
//! - [`storage`]: where this tab's copy lives and everything done to it: piece writes and
//!   reads, the resume record, finishing and reopening the files, "Save to…".
//! - [`selection`], [`fragment`]: the files chosen for download, kept in the address, and
//!   the test-only switches there.
//! - [`metrics`], [`log`], [`render`]: counters and rates, the transfer log, and the view
//!   handed to the page.

mod fragment;
mod hub_session;
mod log;
mod metrics;
mod peers;
mod render;
mod selection;
mod storage;

pub use selection::select_file;
pub use storage::resume::mark_saved;
pub use storage::saving::save_to;

use self::fragment::{TestSwitches, fragment_parts, selection_from_fragment};
use self::hub_session::HubSession;
use self::log::TransferLog;
use self::metrics::Metrics;
use self::peers::Peers;
use self::render::View;
use self::selection::Selection;
use self::storage::reads::Reads;
use self::storage::resume::ResumeRecord;
use self::storage::saving::Saving;
use self::storage::{DiskState, Storage};
use super::crypto;
use super::disk::Finished;
use super::now_ms;
use super::rtc::RtcEvent;
use super::signaling::SignalingEvent;
use crate::protocol::FileEntry;
use crate::protocol::manifest::{Hash, Layout};
use crate::protocol::signal::SignalPayload;
use crate::swarm::bitfield::Bitfield;
use crate::swarm::{Event, Input, Output, PeerId, Swarm};
use crate::transfer_view::{Phase, TransferView};
use bytes::Bytes;
use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_util::StreamExt;
use std::cell::RefCell;
use std::collections::BTreeMap;

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
    /// generation (`HubSession::renewals`).
    Renew(u32, Result<String, crate::api::ApiError>),
    /// The peer's description is applied: queued candidates may go in.
    RemoteSet(PeerId),
    /// An open connection (that `RtcPeerConnection`) goes direct or through a relay.
    Path(
        PeerId,
        web_sys::RtcPeerConnection,
        crate::transfer_view::PeerPath,
    ),
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
    /// The page's own timer ([`UI_TICK_MS`]).
    Tick,
    /// A swarm timer set for this time (`Swarm::poll_timeout`) is due.
    SwarmTimer(u64),
}

/// How often the page's own timer runs: connections that never opened, the resume record,
/// and rendering (at most four times a second anyway). The swarm's timers run on their own
/// ([`State::arm_swarm_timer`]).
const UI_TICK_MS: f64 = 250.0;

/// The soonest a swarm timer fires after it is set, so a deadline that stays in the past
/// (a stalled peer's, until its requests linger out) cannot spin the loop.
const MIN_SWARM_TIMER_MS: u64 = 50;

thread_local! {
    /// The running transfer's event queue, for the page's controls (one transfer per page).
    static COMMANDS: RefCell<Option<UnboundedSender<Ev>>> = const { RefCell::new(None) };
}

/// Hands a page control's event to the running transfer (if there is one).
fn command(ev: Ev) {
    COMMANDS.with(|c| {
        if let Some(tx) = c.borrow().as_ref() {
            let _ = tx.unbounded_send(ev);
        }
    });
}

/// The room as the page described it: its id, piece layout, Merkle root and files. Never
/// changes.
struct Room {
    id: String,
    layout: Layout,
    root: Hash,
    files: Vec<FileEntry>,
}

/// Everything the event loop owns; each part is kept by the module named after it.
struct State {
    /// Every callback sends its event here.
    tx: UnboundedSender<Ev>,
    room: Room,
    /// Built when the hub welcomes this tab (and again after each rejoin, under a new id).
    swarm: Option<Swarm>,
    /// When the swarm timer that is set fires (`None`: none is set).
    swarm_timer: Option<u64>,
    /// What the swarm starts with: the hash layer and pieces we already have (all of them
    /// for the sender; for a returning receiver, the re-verified cache).
    hashes: Option<Vec<Hash>>,
    have: Bitfield,
    /// The sender's tab: it has every file from the start.
    seeding: bool,
    phase: Phase,
    /// Why this tab stopped sharing for good (the room was closed); `None` while it shares.
    closed: Option<String>,
    /// The swarm announced this selection complete (it does so once per selection).
    completed: bool,
    /// The server was told this tab holds the whole room.
    reported: bool,
    hub: HubSession,
    peers: Peers,
    storage: Storage,
    disk: DiskState,
    reads: Reads,
    resume: ResumeRecord,
    saving: Saving,
    selection: Selection,
    metrics: Metrics,
    switches: TestSwitches,
    log: TransferLog,
    view: View,
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
    let switches = TestSwitches::from_fragment(&fragment);
    let file_count = setup.files.len();
    let mut st = State {
        tx: tx.clone(),
        metrics: Metrics::new(&setup.layout, seeding),
        room: Room {
            id: setup.room,
            layout: setup.layout,
            root: setup.root,
            files: setup.files,
        },
        swarm: None,
        swarm_timer: None,
        hashes,
        have,
        seeding,
        phase: if seeding {
            Phase::Seeding
        } else {
            Phase::Connecting
        },
        closed: None,
        completed: false,
        reported: false,
        hub: HubSession::new(setup.ticket),
        peers: Peers::new(switches.water()),
        storage,
        disk: DiskState::new(count),
        reads: Reads::default(),
        resume: ResumeRecord::default(),
        saving: Saving::new(file_count),
        selection: Selection::new(selection_from_fragment(&fragment, file_count)),
        switches,
        log: TransferLog::default(),
        view: View::new(setup.report),
    };
    COMMANDS.with(|c| *c.borrow_mut() = Some(tx.clone()));
    if !seeding {
        st.prepare_storage().await;
    }
    st.metrics.progress = (
        st.have.count(),
        count,
        st.have
            .iter_ones()
            .map(|p| u64::from(st.room.layout.piece_len(p)))
            .sum(),
    );
    if let Err(e) = st.connect_hub() {
        st.phase = Phase::Failed(format!("could not reach the server: {e}"));
    }
    let tick_tx = tx.clone();
    wasm_bindgen_futures::spawn_local(async move {
        while !tick_tx.is_closed() {
            crate::web::sleep(UI_TICK_MS).await;
            if tick_tx.unbounded_send(Ev::Tick).is_err() {
                break;
            }
        }
    });
    st.render(true);
    while let Some(ev) = rx.next().await {
        st.handle(ev);
        st.arm_swarm_timer();
        st.render(false);
    }
}

impl State {
    fn now(&self) -> u64 {
        now_ms() as u64
    }

    /// Feeds an input to the swarm and carries out its outputs, feeding back the inputs
    /// those produce.
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

    /// One event: each goes to the module it is about.
    fn handle(&mut self, ev: Ev) {
        match ev {
            // The signaling server (hub_session.rs).
            Ev::Signaling(SignalingEvent::Message(msg)) => self.on_hub(msg),
            Ev::Signaling(SignalingEvent::Closed(why)) => self.on_hub_closed(why),
            Ev::Rejoin(ticket) => self.on_rejoin(ticket),
            Ev::Renew(generation, ticket) => self.on_renew(generation, ticket),
            // Peer connections (peers.rs).
            Ev::Rtc(peer, event) => self.on_rtc(peer, event),
            Ev::Negotiated(peer, result) => self.on_negotiated(peer, result),
            Ev::RemoteSet(peer) => self.on_remote_set(peer),
            Ev::Path(peer, pc, path) => self.on_path(peer, pc, path),
            // Hashing, here.
            Ev::Hashed { piece, digest } => self.input(Input::Hashed { piece, digest }),
            Ev::HashFailed(e) => self.on_hash_failed(e),
            // Storage (storage/).
            Ev::PiecesRead { pieces, data } => self.on_pieces_read(pieces, data),
            Ev::Written { piece, result } => self.on_written(piece, result),
            Ev::Flushed(result) => self.on_flushed(result),
            Ev::Finished(result) => self.on_finished(result),
            Ev::Reopened(result) => self.on_reopened(result),
            Ev::Picked(file, result) => self.on_picked(file, result),
            Ev::Attached(file, result) => self.on_attached(file, result),
            // The page's controls (selection.rs).
            Ev::Select(file, on) => self.on_select(file, on),
            Ev::Tick => self.on_tick(),
            Ev::SwarmTimer(at) => {
                if self.swarm_timer == Some(at) {
                    self.swarm_timer = None;
                }
                self.input(Input::Timeout);
            }
        }
    }

    /// Sets a timer for the swarm's next deadline, unless one as early is set already. A
    /// timer superseded by an earlier one still fires: one more `Timeout` is harmless.
    fn arm_swarm_timer(&mut self) {
        let Some(swarm) = &self.swarm else {
            return;
        };
        let now = self.now();
        let at = swarm.poll_timeout().max(now + MIN_SWARM_TIMER_MS);
        if self.swarm_timer.is_some_and(|set| set <= at) {
            return;
        }
        self.swarm_timer = Some(at);
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            crate::web::sleep((at - now) as f64).await;
            let _ = tx.unbounded_send(Ev::SwarmTimer(at));
        });
    }

    /// The page's timer: connections that never opened are retried and the resume record
    /// is written when due (rendering follows every event).
    fn on_tick(&mut self) {
        if self.drop_unopened() {
            // Ask the topology again: it advises reconnecting to wanted peers.
            self.input(Input::Members(self.hub.members.clone()));
        }
        self.flush_record(false);
    }

    /// SubtleCrypto failed: this tab cannot check what it downloads.
    fn on_hash_failed(&mut self, e: String) {
        if self.closed.is_none() {
            self.stop(format!(
                "this browser could not check the downloaded data ({e}); \
                 meshdrop needs a secure page (https or localhost)"
            ))
        }
    }

    /// Carries out one output; may produce an input to feed back.
    fn output(&mut self, out: Output) -> Option<Input> {
        match out {
            Output::Send { peer, frame } => self.send_frame(peer, frame),
            Output::Connect { peer } => {
                self.connect(peer);
                None
            }
            Output::Disconnect { peer, reason } => {
                self.disconnect(peer, reason);
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
            Output::Event(event) => {
                self.on_event(event);
                None
            }
        }
    }

    /// What the swarm reports: progress, failed pieces, bans, peer stats, completion.
    fn on_event(&mut self, event: Event) {
        match event {
            Event::HashesVerified { .. } => self.phase = Phase::Downloading,
            Event::Progress { have, total, bytes } => {
                self.metrics.progress = (have, total, bytes);
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
                self.peers.stats.insert(peer, (down_rate, up_rate, pieces));
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

    /// Stops sharing at once and for good: every peer connection goes, and so does the hub
    /// socket, so no peer is offered pieces this tab can no longer serve. What is on disk
    /// and in the resume record stays, so a reload resumes.
    fn stop(&mut self, why: String) {
        let peers: Vec<PeerId> = self.peers.conns.keys().copied().collect();
        for peer in peers {
            self.drop_conn(peer);
        }
        self.hub.members.clear();
        self.hub.socket = None;
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
        let (room, ticket) = (self.room.id.clone(), self.hub.ticket.clone());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = crate::api::report_completed(room, ticket).await {
                web_sys::console::warn_1(
                    &format!("could not report the finished download: {e}").into(),
                );
            }
        });
    }
}
