//! The browser shell: one event loop per room that drives the sans-IO `Swarm`.
//!
//! Every browser callback (hub message, ICE candidate, channel message, finished read or
//! digest, timer) becomes an `Ev` on one channel; the loop feeds each to the swarm and then
//! carries out the swarm's outputs. Nothing else mutates the state, so there are no locks
//! and no re-entrancy.

use super::rtc::{Conn, RtcEvent};
use super::signaling::{Hub, HubEvent};
use super::{crypto, now_ms, read_slice};
use crate::app::transfer::{PeerRow, Phase, Saved, TransferView};
use crate::protocol::FileEntry;
use crate::protocol::manifest::{Hash, Layout};
use crate::protocol::signal::{ClientMessage, IceServer, ServerMessage, SignalPayload};
use crate::protocol::wire::{BlockRef, Frame};
use crate::swarm::bitfield::Bitfield;
use crate::swarm::{Event, Input, Output, PeerId, Swarm, SwarmConfig};
use bytes::Bytes;
use dioxus::prelude::{Signal, WritableExt};
use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};

/// What the page hands over to start a transfer.
pub struct Setup {
    pub room: String,
    pub ticket: String,
    pub layout: Layout,
    pub root: Hash,
    pub files: Vec<FileEntry>,
    /// The sender has the files and their hashes; a receiver has neither.
    pub source: Option<(Vec<web_sys::File>, Vec<Hash>)>,
    pub view: Signal<TransferView>,
}

enum Ev {
    Hub(HubEvent),
    Rtc(PeerId, RtcEvent),
    /// An offer or answer is ready to send (or negotiation failed).
    Negotiated(PeerId, Result<Option<SignalPayload>, String>),
    /// The peer's description is applied: queued candidates may go in.
    RemoteSet(PeerId),
    /// A whole piece read from the source files (the seeder reads pieces, not blocks).
    PieceRead {
        piece: u32,
        data: Option<Bytes>,
    },
    Hashed {
        piece: u32,
        digest: Hash,
    },
    Tick,
}

/// Pieces the sender keeps after reading them from disk (at most 16 × 16 MiB).
const READ_CACHE_PIECES: usize = 16;

fn slice_block(piece: &Bytes, block: &BlockRef) -> Option<Bytes> {
    let start = block.offset as usize;
    let end = start + block.len as usize;
    (end <= piece.len()).then(|| piece.slice(start..end))
}

/// A channel that opens later than this is given up and tried again.
const OPEN_TIMEOUT_MS: f64 = 15_000.0;

struct State {
    tx: UnboundedSender<Ev>,
    hub: Option<Hub>,
    swarm: Option<Swarm>,
    me: PeerId,
    members: Vec<PeerId>,
    ice: Vec<IceServer>,
    conns: HashMap<PeerId, Conn>,
    layout: Layout,
    root: Hash,
    files: Vec<FileEntry>,
    source: Option<(Vec<web_sys::File>, Vec<Hash>)>,
    /// Verified pieces (the receiver's copy, re-served to others).
    store: BTreeMap<u32, Bytes>,
    /// The sender's recently read pieces: one file read serves all of a piece's blocks.
    read_cache: std::collections::VecDeque<(u32, Bytes)>,
    /// Blocks waiting for a piece read that is under way.
    reading: HashMap<u32, Vec<(PeerId, BlockRef)>>,
    received_from: HashMap<PeerId, u64>,
    stats: HashMap<PeerId, (f64, f64, u32)>,
    uploaded: u64,
    /// Test-only: serve corrupted blocks (`#corrupt` after the room link). Harmless: peers
    /// verify every piece and ban whoever sends bad ones.
    corrupt: bool,
    view: Signal<TransferView>,
    rendered_ms: f64,
    shown_bytes: bool,
    warned_unload: bool,
    rate_sample: (f64, u64, u64),
    rates: (f64, f64),
    progress: (u32, u32, u64),
    phase: Phase,
    log: Vec<String>,
    saved: Vec<Saved>,
}

/// Starts the transfer as a task of the calling component: it writes the component's
/// signals, so it must run inside the Dioxus runtime, and it stops when the page goes.
pub fn start(setup: Setup) {
    dioxus::prelude::spawn(run(setup));
}

async fn run(setup: Setup) {
    let (tx, mut rx) = unbounded::<Ev>();
    let seeding = setup.source.is_some();
    let total_bytes = setup.layout.total_size();
    let corrupt = web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .is_some_and(|h| h == "#corrupt");
    let mut st = State {
        tx: tx.clone(),
        hub: None,
        swarm: None,
        me: PeerId(0),
        members: Vec::new(),
        ice: Vec::new(),
        conns: HashMap::new(),
        layout: setup.layout,
        root: setup.root,
        files: setup.files,
        source: setup.source,
        store: BTreeMap::new(),
        read_cache: Default::default(),
        reading: HashMap::new(),
        received_from: HashMap::new(),
        stats: HashMap::new(),
        uploaded: 0,
        corrupt,
        view: setup.view,
        rendered_ms: 0.0,
        shown_bytes: false,
        warned_unload: true,
        rate_sample: (now_ms(), 0, 0),
        rates: (0.0, 0.0),
        progress: (0, 0, if seeding { total_bytes } else { 0 }),
        phase: if seeding {
            Phase::Seeding
        } else {
            Phase::Connecting
        },
        log: Vec::new(),
        saved: Vec::new(),
    };
    let hub_tx = tx.clone();
    match Hub::connect(&setup.room, &setup.ticket, move |e| {
        let _ = hub_tx.unbounded_send(Ev::Hub(e));
    }) {
        Ok(hub) => st.hub = Some(hub),
        Err(e) => st.phase = Phase::Failed(format!("could not reach the server: {e}")),
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

    fn send_hub(&self, msg: ClientMessage) {
        if let Some(hub) = &self.hub {
            hub.send(&msg);
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Hub(HubEvent::Message(msg)) => self.on_hub(msg),
            Ev::Hub(HubEvent::Closed(why)) => {
                self.hub = None;
                if !matches!(self.phase, Phase::Done | Phase::Seeding) || self.conns.is_empty() {
                    self.phase = Phase::Failed(why.clone());
                }
                self.log.push(why);
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
            Ev::PieceRead { piece, data } => {
                if let Some(data) = &data {
                    if self.read_cache.len() >= READ_CACHE_PIECES {
                        self.read_cache.pop_front();
                    }
                    self.read_cache.push_back((piece, data.clone()));
                }
                for (peer, block) in self.reading.remove(&piece).unwrap_or_default() {
                    let slice = data.as_ref().and_then(|d| slice_block(d, &block));
                    self.finish_read(peer, block, slice);
                }
            }
            Ev::Hashed { piece, digest } => self.input(Input::Hashed { piece, digest }),
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
            }
        }
    }

    fn on_hub(&mut self, msg: ServerMessage) {
        match msg {
            ServerMessage::Welcome {
                you,
                members,
                ice_servers,
                ..
            } => {
                self.me = you;
                self.ice = ice_servers;
                let count = self.layout.piece_count();
                let (have, hashes) = match &self.source {
                    Some((_, hashes)) => (Bitfield::full(count), Some(hashes.clone())),
                    None => (Bitfield::new(count), None),
                };
                if self.source.is_none() && count == 0 {
                    self.phase = Phase::Done;
                }
                self.swarm = Some(Swarm::new(
                    SwarmConfig::default(),
                    you,
                    self.layout.clone(),
                    self.root,
                    hashes,
                    have,
                    you.0 ^ (now_ms() as u64),
                ));
                self.members = members;
                self.members.push(you);
                if self.source.is_none() {
                    self.phase = Phase::FetchingHashes;
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
        }
    }

    fn new_conn(&mut self, peer: PeerId) -> bool {
        if self.conns.contains_key(&peer) {
            return true;
        }
        let tx = self.tx.clone();
        match Conn::new(&self.ice, move |e| {
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
                if bytes.len() > 1024 {
                    *self.received_from.entry(peer).or_default() += bytes.len() as u64;
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
                let newly_blocked = conn.send(frame.encode().to_vec());
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
                    // A failed digest verifies as nothing: the piece is dropped and refetched.
                    let digest = crypto::sha256(&data).await.unwrap_or([0; 32]);
                    let _ = tx.unbounded_send(Ev::Hashed { piece, digest });
                });
                None
            }
            Output::Store { piece, data } => {
                self.store.insert(piece, data);
                None
            }
            Output::Write { .. } => None,
            Output::Event(event) => {
                self.on_event(event);
                None
            }
        }
    }

    fn read_block(&mut self, peer: PeerId, block: BlockRef) {
        if let Some(piece) = self.store.get(&block.piece) {
            let data = slice_block(piece, &block);
            return self.finish_read(peer, block, data);
        }
        if let Some((_, piece)) = self.read_cache.iter().find(|(p, _)| *p == block.piece) {
            let data = slice_block(piece, &block);
            return self.finish_read(peer, block, data);
        }
        let Some((files, _)) = &self.source else {
            return self.finish_read(peer, block, None);
        };
        let waiting = self.reading.entry(block.piece).or_default();
        waiting.push((peer, block));
        if waiting.len() > 1 {
            return; // the piece is already being read
        }
        let span = self.layout.span(block.piece);
        let file = files[span.file as usize].clone();
        let tx = self.tx.clone();
        let piece = block.piece;
        wasm_bindgen_futures::spawn_local(async move {
            let data = read_slice(&file, span.offset, span.offset + u64::from(span.len)).await;
            let _ = tx.unbounded_send(Ev::PieceRead {
                piece,
                data: data.ok().map(Bytes::from),
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
                if self.source.is_none() && self.saved.is_empty() {
                    self.assemble();
                    self.phase = Phase::Done;
                }
            }
        }
    }

    /// Every file as a Blob of its verified pieces, with an object URL to save it.
    fn assemble(&mut self) {
        for (i, file) in self.files.iter().enumerate() {
            let parts = js_sys::Array::new();
            for piece in self.layout.file_pieces(i) {
                if let Some(data) = self.store.get(&piece) {
                    parts.push(&js_sys::Uint8Array::from(data.as_ref()));
                }
            }
            let options = web_sys::BlobPropertyBag::new();
            options.set_type(if file.mime.is_empty() {
                "application/octet-stream"
            } else {
                &file.mime
            });
            let url = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
                .and_then(|blob| web_sys::Url::create_object_url_with_blob(&blob));
            match url {
                Ok(url) => self.saved.push(Saved {
                    name: file.name.clone(),
                    url,
                }),
                Err(e) => self.log.push(format!(
                    "could not assemble {}: {}",
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
        let first_bytes = self.source.is_none() && self.progress.2 > 0 && !self.shown_bytes;
        if !force && !first_bytes && now - self.rendered_ms < 250.0 {
            return;
        }
        self.shown_bytes |= self.progress.2 > 0;
        self.rendered_ms = now;
        let (t0, bytes0, up0) = self.rate_sample;
        let dt = (now - t0) / 1000.0;
        if dt >= 1.0 {
            let bytes = self.progress.2;
            self.rates = (
                (bytes.saturating_sub(bytes0)) as f64 / dt,
                (self.uploaded.saturating_sub(up0)) as f64 / dt,
            );
            self.rate_sample = (now, bytes, self.uploaded);
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
        if self.source.is_some() {
            let total = self.layout.piece_count();
            let only_copy = !peers.iter().any(|p| p.pieces >= total && total > 0);
            if only_copy != self.warned_unload {
                self.warned_unload = only_copy;
                super::warn_before_unload(only_copy);
            }
        }
        let total_bytes = self.layout.total_size();
        let view = TransferView {
            phase: self.phase.clone(),
            have: self.progress.0,
            total: self.layout.piece_count(),
            bytes: if self.source.is_some() {
                total_bytes
            } else {
                self.progress.2
            },
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
        let mut signal = self.view;
        signal.set(view);
    }
}
