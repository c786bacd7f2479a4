//! The swarm as a sans-IO state machine (in the style of str0m and quinn-proto).
//!
//! No network, no threads, no clock, no randomness of its own: the shell (browser or
//! simulator) feeds `handle_input(now_ms, Input)` and carries out every `Output` from
//! `poll_output()` until it returns `None`, then calls again at `poll_timeout()`. Hashing is
//! an output too (`Verify` → `Input::Hashed`), so a shell may hash asynchronously with
//! SubtleCrypto or synchronously with sha2.
//!
//! - What to request next: `picker.rs` (rarest first, finish started pieces, endgame).
//! - How much to request from whom, and when to give up on a peer: `peer.rs` (rate-based
//!   pipelining, timeouts from each peer's measured delay).
//! - Whom to connect to: `topology.rs`.

pub mod bitfield;
pub mod peer;
pub mod picker;
pub mod rng;
pub mod topology;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

use crate::protocol::manifest::{Hash, Layout, Manifest, PieceSpan, merkle_root};
use crate::protocol::wire::{
    BlockRef, Frame, MAX_BATCH, MAX_BLOCK, MAX_HASHES_PER_FRAME, MIN_MESSAGE, PIECE_HEADER,
    PROTOCOL_VERSION,
};
use bitfield::Bitfield;
use bytes::Bytes;
use peer::{Outstanding, Peer};
use picker::{Picker, SUB_BLOCK};
use rng::Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A peer in the room, as numbered by the shell (the signaling server assigns it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PeerId(pub u64);

#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// Largest message we accept (announced in our handshake).
    pub max_message: u32,
    /// Preferred request size; capped by each peer's max message.
    pub block_size: u32,
    /// Pipelining: requests in flight cover `rate × target_latency_ms`.
    pub target_latency_ms: f64,
    pub min_pipeline: usize,
    pub max_pipeline: usize,
    /// Request timeout bounds; the timeout itself is derived from each peer's delay.
    pub min_timeout_ms: u64,
    pub max_timeout_ms: u64,
    pub initial_timeout_ms: u64,
    /// Blocks being read for upload at once (round-robin over requesting peers).
    pub upload_slots: usize,
    /// A queued request waiting this long is served before rarer pieces' requests.
    pub max_serve_wait_ms: u64,
    /// Requests a peer may queue with us before we reject more.
    pub max_queued_requests: usize,
    /// Pieces in progress at once, and the memory they may hold.
    pub max_partial_pieces: usize,
    pub max_partial_bytes: u64,
    /// Endgame: most requests for the same block.
    pub max_duplicates: u8,
    /// Initial seeding: while some piece has no copy among our peers, a complete peer reveals
    /// only a few pieces to each peer (the least-spread ones, different for each peer), so
    /// its upload goes to new pieces instead of duplicates (BitTorrent's super-seeding).
    pub super_seed: bool,
    /// Pieces revealed to a peer that it does not have yet: at least this many…
    pub reveals_per_peer: usize,
    /// … and as many more as our upload to that peer moves in this long, up to
    /// `max_reveals_per_peer`. Two pieces cover a slow peer, but a fast one would spend most
    /// of each round trip (HAVE in, reveal out, request in) waiting for its next reveal: a
    /// lone leecher on a fast link would be held to two pieces per round trip.
    pub reveal_window_ms: f64,
    pub max_reveals_per_peer: usize,
    /// A HAVE for a piece the peer already has only updates its counts (and a super-seeder's
    /// reveals), so it waits up to this long to travel with the next frames to that peer.
    pub lazy_have_ms: u64,
    /// Forgivable protocol slips (unrequested blocks…) before a peer is dropped.
    pub max_strikes: u32,
    /// Keep-alive interval and stats events.
    pub tick_ms: u64,
    pub keepalive_ms: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            max_message: 256 * 1024,
            block_size: 64 * 1024,
            target_latency_ms: 250.0,
            min_pipeline: 2,
            max_pipeline: 64,
            // RFC 6298's floor for TCP's retransmission timeout. A busy tab can miss a core
            // for several hundred milliseconds; a 300 ms floor took that for a stalled peer
            // and fetched its blocks twice (tests/swarm_sim.rs, tabs that pause).
            min_timeout_ms: 1_000,
            max_timeout_ms: 20_000,
            initial_timeout_ms: 5_000,
            upload_slots: 8,
            max_serve_wait_ms: 200,
            max_queued_requests: 128,
            max_partial_pieces: 64,
            max_partial_bytes: 64 * 1024 * 1024,
            max_duplicates: 2,
            super_seed: true,
            reveals_per_peer: 2,
            reveal_window_ms: 250.0,
            max_reveals_per_peer: 64,
            lazy_have_ms: 50,
            max_strikes: 32,
            tick_ms: 1_000,
            keepalive_ms: 15_000,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Input {
    /// A data channel to `peer` opened; the remote side accepts messages up to `max_message`.
    Connected {
        peer: PeerId,
        max_message: u32,
    },
    Disconnected {
        peer: PeerId,
    },
    /// One data-channel message from `peer`.
    Message {
        peer: PeerId,
        bytes: Bytes,
    },
    /// Answer to `Output::ReadBlock`: the bytes, or `None` if they could not be read.
    BlockRead {
        peer: PeerId,
        block: BlockRef,
        data: Option<Bytes>,
    },
    /// Answer to `Output::Verify`.
    Hashed {
        piece: u32,
        digest: Hash,
    },
    /// The shell's send buffer towards `peer` is over (true) or back under (false) its mark.
    SendBlocked {
        peer: PeerId,
        blocked: bool,
    },
    /// Everyone in the room now, from signaling; drives `Connect`/`Disconnect` advice.
    Members(Vec<PeerId>),
    /// The shell's storage is behind (true: stop requesting; requests in flight still
    /// land) or has caught up (false). Without it, a disk slower than the swarm would
    /// pile verified pieces up in memory.
    StorageBusy(bool),
    /// Which files to download (one flag per file; all of them until told otherwise).
    /// Pieces of unselected files are not requested, pieces already in flight still land,
    /// and `Event::Completed` means every piece of the selected files is here.
    Select(Vec<bool>),
    /// Time passed; nothing else happened.
    Timeout,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Send {
        peer: PeerId,
        frame: Frame,
    },
    /// Open a connection (topology advice).
    Connect {
        peer: PeerId,
    },
    /// Close the connection, with a reason for logs and UI.
    Disconnect {
        peer: PeerId,
        reason: String,
    },
    /// Read `block` from our copy (source file or stored pieces), answer `Input::BlockRead`.
    ReadBlock {
        peer: PeerId,
        block: BlockRef,
    },
    /// Hash `data` (piece `piece`), answer `Input::Hashed`.
    Verify {
        piece: u32,
        data: Bytes,
    },
    /// A verified piece: cache it (resume) …
    Store {
        piece: u32,
        data: Bytes,
    },
    /// … and write it to the output file.
    Write {
        file: u32,
        offset: u64,
        data: Bytes,
    },
    Event(Event),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The piece-hash layer arrived and matches the root: downloading can start.
    HashesVerified {
        from: PeerId,
    },
    Progress {
        have: u32,
        total: u32,
        bytes: u64,
    },
    PieceFailed {
        piece: u32,
        peers: Vec<PeerId>,
    },
    Banned {
        peer: PeerId,
        reason: String,
    },
    PeerStats {
        peer: PeerId,
        down_rate: f64,
        up_rate: f64,
        pieces: u32,
    },
    Completed,
}

enum Hashes {
    Known(Manifest),
    /// Waiting for the layer from `from` since `since`, filled in chunks.
    Fetching {
        from: PeerId,
        got: Vec<Option<Hash>>,
        missing: u32,
        since: u64,
    },
    Unknown,
}

pub struct Swarm {
    cfg: SwarmConfig,
    layout: Layout,
    root: Hash,
    hashes: Hashes,
    have: Bitfield,
    have_bytes: u64,
    /// Pieces of the files the user selected.
    wanted: Bitfield,
    picker: Picker,
    verifying: BTreeMap<u32, Verifying>,
    /// Pieces that failed with several contributors: the bad copy and who sent each
    /// sub-block, kept until a good copy shows who lied.
    failed: BTreeMap<u32, (Bytes, Vec<Option<PeerId>>)>,
    peers: BTreeMap<PeerId, Peer>,
    banned: BTreeSet<PeerId>,
    reads_in_flight: usize,
    /// The shell's storage is behind: no new requests (`Input::StorageBusy`).
    storage_busy: bool,
    serve_cursor: Option<PeerId>,
    members: Vec<PeerId>,
    me: PeerId,
    topology: topology::TopologyConfig,
    topology_salt: u64,
    rng: Rng,
    out: VecDeque<Output>,
    now: u64,
    next_tick: u64,
    last_sent: BTreeMap<PeerId, u64>,
    /// Small frames for each peer, sent together when the current input is handled.
    outbox: BTreeMap<PeerId, Vec<Frame>>,
    /// HAVEs for peers that already have those pieces, and since when the oldest waits.
    lazy_haves: BTreeMap<PeerId, (u64, Vec<u32>)>,
    completed_announced: bool,
    /// Missing pieces that are neither in progress nor being verified.
    unstarted: u32,
    /// Super-seeding state: what each peer was told we have, and how often each piece was
    /// revealed. `None` once every piece has a copy among our peers (or we are not a seeder).
    reveal: Option<Reveal>,
    pub stats: Stats,
}

/// Counters for diagnostics and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub stalls: u64,
    pub rejects_received: u64,
    pub rejects_sent: u64,
    pub wasted_bytes: u64,
    pub requests_sent: u64,
    pub endgame_requests: u64,
}

impl Swarm {
    /// `hashes`: the piece-hash layer if we already trust it (the creator hashed the files);
    /// `have`: pieces we hold and have verified (a seeder's files, or a resumed cache).
    pub fn new(
        cfg: SwarmConfig,
        me: PeerId,
        layout: Layout,
        root: Hash,
        hashes: Option<Vec<Hash>>,
        have: Bitfield,
        seed: u64,
    ) -> Self {
        let hashes = match hashes.map(|h| Manifest::from_layer(layout.clone(), root, h)) {
            Some(Ok(m)) => Hashes::Known(m),
            _ => Hashes::Unknown,
        };
        let have_bytes = have
            .iter_ones()
            .map(|p| u64::from(layout.piece_len(p)))
            .sum();
        let picker = Picker::new(
            layout.clone(),
            cfg.max_partial_pieces,
            cfg.max_partial_bytes,
            cfg.max_duplicates,
        );
        Self {
            cfg,
            wanted: Bitfield::full(layout.piece_count()),
            layout,
            root,
            hashes,
            have,
            have_bytes,
            picker,
            verifying: BTreeMap::new(),
            failed: BTreeMap::new(),
            peers: BTreeMap::new(),
            banned: BTreeSet::new(),
            reads_in_flight: 0,
            storage_busy: false,
            serve_cursor: None,
            members: Vec::new(),
            me,
            topology: topology::TopologyConfig::default(),
            topology_salt: u64::from_be_bytes(root[..8].try_into().expect("8 bytes")),
            rng: Rng::new(seed),
            out: VecDeque::new(),
            now: 0,
            next_tick: 0,
            last_sent: BTreeMap::new(),
            outbox: BTreeMap::new(),
            lazy_haves: BTreeMap::new(),
            completed_announced: false,
            unstarted: 0,
            reveal: None,
            stats: Stats::default(),
        }
        .with_unstarted()
    }

    fn with_unstarted(mut self) -> Self {
        self.unstarted = self.layout.piece_count() - self.have.count();
        if self.cfg.super_seed && self.have.is_complete() && self.layout.piece_count() > 0 {
            self.reveal = Some(Reveal {
                told: BTreeMap::new(),
                times: vec![0; self.layout.piece_count() as usize],
                next: BTreeMap::new(),
            });
        }
        self
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_complete()
    }

    /// Every piece of the selected files is here (all files unless `Input::Select` said less).
    pub fn has_wanted(&self) -> bool {
        if self.wanted.is_complete() {
            return self.have.is_complete();
        }
        self.wanted.iter_ones().all(|p| self.have.get(p))
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The verified piece-hash layer, once known (a resuming peer keeps it with its cache).
    pub fn piece_hashes(&self) -> Option<&[Hash]> {
        match &self.hashes {
            Hashes::Known(m) => Some(&m.piece_hashes),
            _ => None,
        }
    }

    pub fn peer_ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// Whether a connected peer lacks `piece` and has not said it does not want it: one
    /// that may soon ask us for it. (A peer we got the piece from has it, as far as we know.)
    pub fn someone_lacks(&self, piece: u32) -> bool {
        self.peers.values().any(|p| {
            p.ready && !p.has.get(piece) && p.interest.as_ref().is_none_or(|i| i.get(piece))
        })
    }

    pub fn outstanding(&self, peer: PeerId) -> usize {
        self.peers.get(&peer).map_or(0, Peer::active)
    }

    pub fn is_banned(&self, peer: PeerId) -> bool {
        self.banned.contains(&peer)
    }

    pub fn config(&self) -> &SwarmConfig {
        &self.cfg
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call `handle_input(…, Input::Timeout)` next.
    pub fn poll_timeout(&self) -> u64 {
        let mut t = self.next_tick;
        for (since, _) in self.lazy_haves.values() {
            t = t.min(since + self.cfg.lazy_have_ms);
        }
        for p in self.peers.values() {
            if p.active() > 0 {
                t = t.min(p.last_progress + self.stall_timeout(p));
            }
        }
        t
    }

    fn stall_timeout(&self, p: &Peer) -> u64 {
        p.delay.timeout(
            self.cfg.min_timeout_ms,
            self.cfg.max_timeout_ms,
            self.cfg.initial_timeout_ms,
        )
    }

    pub fn handle_input(&mut self, now: u64, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Connected { peer, max_message } => self.on_connected(peer, max_message),
            Input::Disconnected { peer } => self.remove_peer(peer),
            Input::Message { peer, bytes } => self.on_message(peer, bytes),
            Input::BlockRead { peer, block, data } => self.on_block_read(peer, block, data),
            Input::Hashed { piece, digest } => self.on_hashed(piece, digest),
            Input::SendBlocked { peer, blocked } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.send_blocked = blocked;
                }
            }
            Input::Members(members) => self.on_members(members),
            Input::StorageBusy(busy) => self.storage_busy = busy,
            Input::Select(files) => self.on_select(&files),
            Input::Timeout => {}
        }
        self.on_time();
        self.serve();
        self.request_all();
        self.flush_outbox();
    }

    // ---- connections -------------------------------------------------------------------

    fn on_connected(&mut self, peer: PeerId, max_message: u32) {
        if self.banned.contains(&peer) || peer == self.me {
            self.out.push_back(Output::Disconnect {
                peer,
                reason: "banned".into(),
            });
            return;
        }
        // Never send a message larger than the remote accepts, nor than the wire allows.
        let max_message = max_message.min(crate::protocol::wire::MAX_FRAME as u32);
        let mut p = Peer::new(self.layout.piece_count(), max_message);
        p.connected_ms = self.now;
        self.peers.insert(peer, p);
        self.send(
            peer,
            Frame::Handshake {
                version: PROTOCOL_VERSION,
                root: self.root,
                max_message: self.cfg.max_message,
                pieces: self.layout.piece_count(),
            },
        );
    }

    fn remove_peer(&mut self, peer: PeerId) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        if p.ready {
            for piece in p.has.iter_ones() {
                self.picker.peer_lost(piece);
            }
        }
        for o in p.outstanding.iter().filter(|o| !o.released) {
            self.picker.release(&o.block);
        }
        // A suspect piece reserved for this peer would otherwise wait for it forever.
        self.picker.disown(peer);
        self.last_sent.remove(&peer);
        self.outbox.remove(&peer);
        self.lazy_haves.remove(&peer);
        if let Some(reveal) = self.reveal.as_mut() {
            reveal.told.remove(&peer);
            reveal.next.remove(&peer);
        }
        if matches!(&self.hashes, Hashes::Fetching { from, .. } if *from == peer) {
            self.hashes = Hashes::Unknown;
            self.retry_hashes();
        }
        if self.serve_cursor == Some(peer) {
            self.serve_cursor = None;
        }
    }

    fn drop_peer(&mut self, peer: PeerId, reason: String) {
        self.remove_peer(peer);
        self.out.push_back(Output::Disconnect { peer, reason });
    }

    fn ban(&mut self, peer: PeerId, reason: String) {
        if !self.banned.insert(peer) {
            return;
        }
        self.out.push_back(Output::Event(Event::Banned {
            peer,
            reason: reason.clone(),
        }));
        self.drop_peer(peer, reason);
    }

    fn strike(&mut self, peer: PeerId, what: &str) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.strikes += 1;
        if p.strikes > self.cfg.max_strikes {
            self.ban(peer, format!("too many protocol errors ({what})"));
        }
    }

    fn on_members(&mut self, members: Vec<PeerId>) {
        self.members = members;
        let wanted: BTreeSet<PeerId> = self
            .members
            .iter()
            .copied()
            .filter(|&p| p != self.me && !self.banned.contains(&p))
            .filter(|&p| {
                topology::wants(
                    &self.topology,
                    self.topology_salt,
                    self.me,
                    p,
                    &self.members,
                )
            })
            .collect();
        for &p in &wanted {
            if !self.peers.contains_key(&p) {
                self.out.push_back(Output::Connect { peer: p });
            }
        }
        let unwanted: Vec<PeerId> = self
            .peers
            .keys()
            .copied()
            .filter(|p| !wanted.contains(p))
            .collect();
        for p in unwanted {
            // Peers that left the room are gone anyway; others are trimmed to keep degree bounded.
            self.drop_peer(p, "not a neighbour in the room's topology".into());
        }
    }

    // ---- messages ----------------------------------------------------------------------

    fn on_message(&mut self, peer: PeerId, bytes: Bytes) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.ban(peer, format!("undecodable frame: {e}")),
        };
        match frame {
            Frame::Batch(frames) => {
                for frame in frames {
                    // One of them may have got the peer dropped or banned.
                    if !self.peers.contains_key(&peer) {
                        return;
                    }
                    self.on_frame(peer, frame);
                }
            }
            frame => self.on_frame(peer, frame),
        }
    }

    fn on_frame(&mut self, peer: PeerId, frame: Frame) {
        let ready = self.peers[&peer].ready;
        match frame {
            Frame::Handshake {
                version,
                root,
                max_message,
                pieces,
            } => {
                if ready {
                    return self.strike(peer, "second handshake");
                }
                if version != PROTOCOL_VERSION {
                    return self.drop_peer(
                        peer,
                        format!("protocol version {version} is not {PROTOCOL_VERSION}"),
                    );
                }
                if root != self.root || pieces != self.layout.piece_count() {
                    return self.drop_peer(peer, "peer is in a different room".into());
                }
                if max_message < MIN_MESSAGE {
                    return self.drop_peer(
                        peer,
                        format!("max message {max_message} is below {MIN_MESSAGE}"),
                    );
                }
                let p = self.peers.get_mut(&peer).expect("checked above");
                p.ready = true;
                p.max_message = p.max_message.min(max_message);
                let bits = match &mut self.reveal {
                    Some(r) => r
                        .told
                        .entry(peer)
                        .or_insert_with(|| Bitfield::new(self.layout.piece_count()))
                        .to_wire(),
                    None => self.have.to_wire(),
                };
                self.send(peer, Frame::Bitfield(bits));
                if !self.wanted.is_complete() {
                    self.send(peer, Frame::Interested(self.wanted.to_wire()));
                }
                self.update_reveals();
            }
            _ if !ready => self.ban(peer, "message before handshake".into()),
            Frame::Bitfield(bits) => {
                let Some(has) = Bitfield::from_wire(&bits, self.layout.piece_count()) else {
                    return self.ban(peer, "malformed bitfield".into());
                };
                // A later bitfield adds to the earlier ones (a seeder ending super-seeding
                // announces the rest at once).
                let p = self.peers.get_mut(&peer).expect("ready peer");
                let mut added = Vec::new();
                for piece in has.iter_ones() {
                    if p.has.set(piece) {
                        added.push(piece);
                    }
                }
                // Reveals are recomputed only when something changed: the work grows with
                // pieces × peers, and repeated frames must not buy it again and again.
                if added.is_empty() {
                    return;
                }
                for piece in added {
                    self.picker.peer_has(piece);
                }
                self.maybe_fetch_hashes(peer);
                self.update_reveals();
            }
            Frame::Interested(bits) => {
                let Some(wants) = Bitfield::from_wire(&bits, self.layout.piece_count()) else {
                    return self.ban(peer, "malformed interest bitmap".into());
                };
                let p = self.peers.get_mut(&peer).expect("ready peer");
                if p.interest.as_ref() == Some(&wants) {
                    return;
                }
                p.interest = Some(wants);
                if self.reveal.is_none() {
                    return; // nothing to recompute
                }
                // A person changes the selection now and then (64 at once, then one a
                // second); a peer changing it without end is buying our reveal work.
                p.interest_changes += 1;
                let allowance =
                    MAX_INTEREST_CHANGES + self.now.saturating_sub(p.connected_ms) / 1000;
                if p.interest_changes > allowance {
                    return self.strike(peer, "interest changed too often");
                }
                self.update_reveals();
            }
            Frame::Have(piece) => {
                if piece >= self.layout.piece_count() {
                    return self.ban(peer, format!("HAVE for piece {piece} out of range"));
                }
                let new = self
                    .peers
                    .get_mut(&peer)
                    .expect("ready peer")
                    .has
                    .set(piece);
                if !new {
                    return; // a repeat changes nothing
                }
                self.picker.peer_has(piece);
                self.maybe_fetch_hashes(peer);
                self.update_reveals();
            }
            Frame::Request(block) => self.on_request(peer, block),
            Frame::Cancel(block) => {
                let p = self.peers.get_mut(&peer).expect("ready peer");
                p.wanted.retain(|(b, _)| *b != block);
            }
            Frame::Reject(block) => {
                self.stats.rejects_received += 1;
                let p = self.peers.get_mut(&peer).expect("ready peer");
                if let Some(i) = p.outstanding.iter().position(|o| o.block == block)
                    && !p.outstanding.swap_remove(i).released
                {
                    self.picker.release(&block);
                }
                // A peer that refuses a piece kept for it gives the piece back to everyone.
                self.picker.disown_piece(block.piece, peer);
            }
            Frame::Piece {
                piece,
                offset,
                data,
            } => self.on_piece(peer, piece, offset, data),
            Frame::HashRequest { start, count } => self.on_hash_request(peer, start, count),
            Frame::HashResponse { start, hashes } => self.on_hash_response(peer, start, hashes),
            Frame::Choke | Frame::Unchoke | Frame::KeepAlive => {}
            // The decoder allows no batch inside a batch.
            Frame::Batch(_) => self.strike(peer, "nested batch"),
        }
    }

    fn on_request(&mut self, peer: PeerId, block: BlockRef) {
        let count = self.layout.piece_count();
        let p = self.peers.get(&peer).expect("ready peer");
        let valid = block.piece < count
            && u64::from(block.offset) + u64::from(block.len)
                <= u64::from(self.layout.piece_len(block.piece))
            && block.len as usize + PIECE_HEADER <= p.max_message as usize;
        if !valid {
            return self.strike(peer, "invalid request");
        }
        let hidden = self
            .reveal
            .as_ref()
            .is_some_and(|r| !r.told.get(&peer).is_some_and(|t| t.get(block.piece)));
        if !self.have.get(block.piece) || hidden || p.wanted.len() >= self.cfg.max_queued_requests {
            self.stats.rejects_sent += 1;
            return self.send(peer, Frame::Reject(block));
        }
        let p = self.peers.get_mut(&peer).expect("ready peer");
        if !p.wanted.iter().any(|(b, _)| *b == block) {
            p.wanted.push_back((block, self.now));
        }
    }

    fn on_piece(&mut self, peer: PeerId, piece: u32, offset: u32, data: Bytes) {
        let block = BlockRef {
            piece,
            offset,
            len: data.len() as u32,
        };
        let now = self.now;
        let p = self.peers.get_mut(&peer).expect("ready peer");
        let Some(i) = p.outstanding.iter().position(|o| o.block == block) else {
            return self.strike(peer, "unrequested block");
        };
        let o = p.outstanding.swap_remove(i);
        p.delay
            .sample(now.saturating_sub(o.sent_at.max(p.last_progress)) as f64);
        p.last_progress = now;
        p.download.record(now, u64::from(block.len));
        if !o.released {
            self.picker.release(&block);
        }
        if self.have.get(piece)
            || self.verifying.contains_key(&piece)
            || !self.picker.receive(peer, &block, &data)
        {
            self.stats.wasted_bytes += data.len() as u64;
            return;
        }
        // Endgame: cancel copies of this block still requested from other peers.
        let mut cancels = Vec::new();
        let linger = self.now + self.cfg.max_timeout_ms;
        for (&other, op) in self.peers.iter_mut() {
            for o in op
                .outstanding
                .iter_mut()
                .filter(|o| !o.released && o.block.piece == piece)
            {
                if self.picker.covered(&o.block) {
                    o.released = true;
                    o.deadline = linger;
                    cancels.push((other, o.block));
                }
            }
        }
        for (other, b) in cancels {
            self.picker.release(&b);
            self.send(other, Frame::Cancel(b));
        }
        if let Some(done) = self.picker.take_complete(piece) {
            let sources = done.sources();
            let data = done.data.freeze();
            self.verifying
                .insert(piece, (data.clone(), done.contributors, sources));
            self.out.push_back(Output::Verify { piece, data });
        }
    }

    fn on_hashed(&mut self, piece: u32, digest: Hash) {
        let Some((data, contributors, sources)) = self.verifying.remove(&piece) else {
            return;
        };
        let Hashes::Known(manifest) = &self.hashes else {
            return;
        };
        if manifest.verify_digest(piece, data.len(), &digest) {
            self.blame_earlier_failure(piece, &data);
            self.accept_piece(piece, data);
            return;
        }
        // The piece starts over, from other peers where possible (if it is still wanted).
        self.unstarted += u32::from(self.wanted.get(piece));
        let peers: Vec<PeerId> = contributors.iter().map(|(p, _)| *p).collect();
        self.out.push_back(Output::Event(Event::PieceFailed {
            piece,
            peers: peers.clone(),
        }));
        if let [(peer, _)] = contributors[..] {
            // A piece from a single peer is certainly its fault.
            self.picker.suspect.remove(&piece);
            self.failed.remove(&piece);
            self.ban(
                peer,
                format!("sent data for piece {piece} that failed its hash check"),
            );
        } else {
            // Several contributors: nobody is blamed yet. The piece is fetched from one peer
            // next time; once it verifies, the failed copy is compared with it block by
            // block, and whoever sent a differing block is proven to have lied.
            self.picker.suspect.insert(piece);
            if self.failed.len() >= MAX_FAILED_KEPT {
                let oldest = *self.failed.keys().next().expect("non-empty");
                self.failed.remove(&oldest);
            }
            self.failed.insert(piece, (data, sources));
        }
    }

    /// A piece that failed with several contributors has now verified: ban every peer whose
    /// sub-block differs from the good copy (and only those).
    fn blame_earlier_failure(&mut self, piece: u32, good: &Bytes) {
        let Some((bad, sources)) = self.failed.remove(&piece) else {
            return;
        };
        let mut liars = BTreeSet::new();
        for (i, from) in sources.iter().enumerate() {
            let start = i * SUB_BLOCK as usize;
            let end = (start + SUB_BLOCK as usize).min(good.len());
            if let Some(peer) = from
                && bad.get(start..end) != good.get(start..end)
            {
                liars.insert(*peer);
            }
        }
        for peer in liars {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.bad_pieces += 1;
            }
            self.ban(
                peer,
                format!("sent a block of piece {piece} that differs from the verified data"),
            );
        }
    }

    fn accept_piece(&mut self, piece: u32, data: Bytes) {
        if !self.have.set(piece) {
            return;
        }
        self.picker.suspect.remove(&piece);
        self.have_bytes += data.len() as u64;
        let PieceSpan { file, offset, .. } = self.layout.span(piece);
        self.out.push_back(Output::Store {
            piece,
            data: data.clone(),
        });
        self.out.push_back(Output::Write { file, offset, data });
        // Everyone hears of it, seeders included: a super-seeding peer learns from these
        // which pieces have spread. A peer that has the piece needs the news less urgently
        // than one that may ask us for it: its HAVE waits a little to share a message.
        for peer in self.ready_peers() {
            if self.peers[&peer].has.get(piece) {
                let now = self.now;
                let (_, haves) = self.lazy_haves.entry(peer).or_insert((now, Vec::new()));
                haves.push(piece);
            } else {
                self.send(peer, Frame::Have(piece));
            }
        }
        self.out.push_back(Output::Event(Event::Progress {
            have: self.have.count(),
            total: self.layout.piece_count(),
            bytes: self.have_bytes,
        }));
        self.announce_completion();
    }

    /// Peers whose handshake we accepted, collected so the caller may send to them.
    fn ready_peers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.ready)
            .map(|(&id, _)| id)
            .collect()
    }

    fn announce_completion(&mut self) {
        if self.has_wanted() && !self.completed_announced {
            self.completed_announced = true;
            self.out.push_back(Output::Event(Event::Completed));
        }
    }

    /// A new file selection: recount what is left to start, and announce completion again
    /// once the newly selected files are in too.
    fn on_select(&mut self, files: &[bool]) {
        let mut wanted = Bitfield::new(self.layout.piece_count());
        for (file, _) in files.iter().enumerate().filter(|(_, on)| **on) {
            if file < self.layout.file_sizes.len() {
                for piece in self.layout.file_pieces(file) {
                    wanted.set(piece);
                }
            }
        }
        if wanted != self.wanted {
            for peer in self.ready_peers() {
                self.send(peer, Frame::Interested(wanted.to_wire()));
            }
        }
        self.wanted = wanted;
        // Half-downloaded pieces of files no longer selected are dropped (blocks still in
        // flight for them are wasted): kept, they would hold the partial-piece slots that
        // new pieces need, and could complete after the selected files were closed.
        let wanted = &self.wanted;
        self.picker.partial.retain(|&piece, _| wanted.get(piece));
        let (have, verifying, partial) = (&self.have, &self.verifying, &self.picker.partial);
        self.unstarted = self
            .wanted
            .iter_ones()
            .filter(|&p| !have.get(p) && !verifying.contains_key(&p) && !partial.contains_key(&p))
            .count() as u32;
        if !self.has_wanted() {
            self.completed_announced = false;
        }
        self.announce_completion();
    }

    // ---- super-seeding -----------------------------------------------------------------

    /// Tops up each peer's revealed pieces, or ends super-seeding once every piece has a
    /// copy among our peers.
    fn update_reveals(&mut self) {
        let Some(reveal) = self.reveal.as_mut() else {
            return;
        };
        let count = self.layout.piece_count();
        if (0..count).all(|p| self.picker.availability(p) > 0) {
            // Everyone may now ask for anything: announce the rest.
            let told = std::mem::take(&mut reveal.told);
            self.reveal = None;
            for (peer, bits) in told {
                if self.peers.get(&peer).is_some_and(|p| p.ready) && !bits.is_complete() {
                    self.send(peer, Frame::Bitfield(self.have.to_wire()));
                }
            }
            return;
        }
        let piece_size = self.layout.piece_size;
        let ids: Vec<(PeerId, usize)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.ready)
            .map(|(&id, p)| (id, reveal_window(&self.cfg, p.upload.rate(), piece_size)))
            .collect();
        let mut sends = Vec::new();
        for (peer, window) in ids {
            let has = &self.peers[&peer].has;
            let interest = self.peers[&peer].interest.as_ref();
            let told = reveal
                .told
                .entry(peer)
                .or_insert_with(|| Bitfield::new(count));
            // Revealed pieces it still lacks and wants (a reveal made before its interest
            // arrived does not hold up the next one).
            let pending = told
                .iter_ones()
                .filter(|&p| !has.get(p) && interest.is_none_or(|i| i.get(p)))
                .count();
            let next = reveal
                .next
                .entry(peer)
                .or_insert_with(|| (mix_index(0, peer) % u64::from(count)) as u32);
            for _ in pending..window {
                // The least-spread piece this peer lacks and was not told about; among
                // those, the first from where its reveals left off.
                let best = (0..count)
                    .filter(|&p| !told.get(p) && !has.get(p) && interest.is_none_or(|i| i.get(p)))
                    .min_by_key(|&p| {
                        (
                            self.picker.availability(p),
                            reveal.times[p as usize],
                            (p + count - *next) % count,
                        )
                    });
                let Some(piece) = best else { break };
                told.set(piece);
                reveal.times[piece as usize] += 1;
                *next = (piece + 1) % count;
                sends.push((peer, piece));
            }
        }
        for (peer, piece) in sends {
            self.send(peer, Frame::Have(piece));
        }
    }

    // ---- hash layer --------------------------------------------------------------------

    fn maybe_fetch_hashes(&mut self, peer: PeerId) {
        if !matches!(self.hashes, Hashes::Unknown) || self.peers[&peer].has.count() == 0 {
            return;
        }
        let count = self.layout.piece_count();
        let mut start = 0;
        while start < count {
            let n = (count - start).min(MAX_HASHES_PER_FRAME);
            self.send(peer, Frame::HashRequest { start, count: n });
            start += n;
        }
        self.hashes = Hashes::Fetching {
            from: peer,
            got: vec![None; count as usize],
            missing: count,
            since: self.now,
        };
    }

    /// The hash layer must not hang on one peer: if its source left or stays silent, ask
    /// another peer that has pieces.
    fn retry_hashes(&mut self) {
        let mut after = None;
        if let Hashes::Fetching { from, since, .. } = self.hashes
            && self.now.saturating_sub(since) > self.cfg.max_timeout_ms
        {
            self.hashes = Hashes::Unknown;
            self.strike(from, "hash layer not delivered");
            after = Some(from);
        }
        if matches!(self.hashes, Hashes::Unknown) {
            // After a silent source, the next peer in id order (wrapping), so every peer
            // gets its turn instead of the same silent one again.
            let sources = || {
                self.peers
                    .iter()
                    .filter(|(_, p)| p.ready && p.has.count() > 0)
                    .map(|(&id, _)| id)
            };
            let source = match after {
                Some(last) => sources().find(|&id| id > last).or_else(|| sources().next()),
                None => sources().next(),
            };
            if let Some(peer) = source {
                self.maybe_fetch_hashes(peer);
            }
        }
    }

    fn on_hash_request(&mut self, peer: PeerId, start: u32, count: u32) {
        if !matches!(self.hashes, Hashes::Known(_)) {
            return self.strike(peer, "hash request before we have hashes");
        }
        let end = start
            .checked_add(count)
            .filter(|&e| e <= self.layout.piece_count());
        let Some(end) = end else {
            return self.strike(peer, "hash request out of range");
        };
        // A peer needs the layer once (twice covers a retry), and one more copy for every
        // stall timeout it stays connected. Answering more would let a 9-byte request buy
        // 128 KiB of our upload queue, over and over.
        let p = self.peers.get_mut(&peer).expect("ready peer");
        let layer = u64::from(self.layout.piece_count());
        let retries = self.now.saturating_sub(p.connected_ms) / self.cfg.max_timeout_ms.max(1);
        let budget = (2 + retries) * layer + u64::from(MAX_HASHES_PER_FRAME);
        if p.hashes_served.saturating_add(u64::from(count)) > budget {
            return self.strike(peer, "hash layer requested too often");
        }
        p.hashes_served += u64::from(count);
        // Each response must fit the messages this peer accepts.
        let fit = ((p.max_message as usize).saturating_sub(HASH_RESPONSE_OVERHEAD) / 32).max(1);
        let Hashes::Known(m) = &self.hashes else {
            unreachable!("checked above");
        };
        let frames: Vec<Frame> = m.piece_hashes[start as usize..end as usize]
            .chunks(fit)
            .zip((start..end).step_by(fit))
            .map(|(chunk, first)| Frame::HashResponse {
                start: first,
                hashes: chunk.to_vec(),
            })
            .collect();
        for frame in frames {
            self.send(peer, frame);
        }
    }

    fn on_hash_response(&mut self, peer: PeerId, start: u32, hashes: Vec<Hash>) {
        let Hashes::Fetching {
            from, got, missing, ..
        } = &mut self.hashes
        else {
            return;
        };
        if *from != peer {
            return;
        }
        let end = (start as usize)
            .checked_add(hashes.len())
            .filter(|&e| e <= got.len());
        let Some(end) = end else {
            return self.ban(peer, "hash response out of range".into());
        };
        for (slot, h) in got[start as usize..end].iter_mut().zip(hashes) {
            if slot.replace(h).is_none() {
                *missing -= 1;
            }
        }
        if *missing > 0 {
            return;
        }
        let layer: Vec<Hash> = got.iter().map(|h| h.expect("all present")).collect();
        if merkle_root(&layer) != self.root {
            self.hashes = Hashes::Unknown;
            return self.ban(peer, "piece hashes do not match the room's root".into());
        }
        let manifest =
            Manifest::from_layer(self.layout.clone(), self.root, layer).expect("root checked");
        self.hashes = Hashes::Known(manifest);
        self.out
            .push_back(Output::Event(Event::HashesVerified { from: peer }));
    }

    // ---- uploading ---------------------------------------------------------------------

    /// Starts reads for queued requests within the upload slots. A request that has waited
    /// `max_serve_wait_ms` goes first (oldest first), so no peer is starved; otherwise the
    /// block of the least available piece among our peers goes first, so fresh pieces spread
    /// a hop further while common ones wait. Ties go round-robin over peers.
    fn serve(&mut self) {
        while self.reads_in_flight < self.cfg.upload_slots {
            let start = self.serve_cursor.unwrap_or(PeerId(0));
            let overdue = self.now.saturating_sub(self.cfg.max_serve_wait_ms);
            // Overdue requests first, oldest first; then the least-spread pieces, and among
            // those the earliest in the file: requests arrive in batches, and a seeder that
            // answers a batch in file order reads its file in long runs (benches/FINDINGS.md, P1).
            let mut best: Option<(ServeKey, PeerId, usize)> = None;
            for (&id, p) in self
                .peers
                .range((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded))
                .chain(self.peers.range(..=start))
            {
                if p.send_blocked {
                    continue;
                }
                for (i, &(b, at)) in p.wanted.iter().enumerate() {
                    let key = if at <= overdue {
                        (false, at, 0, 0)
                    } else {
                        let spread = u64::from(self.picker.availability(b.piece));
                        (true, spread, b.piece, b.offset)
                    };
                    if best.is_none_or(|(k, _, _)| key < k) {
                        best = Some((key, id, i));
                    }
                }
            }
            let Some((_, peer, i)) = best else { break };
            let (block, _) = self
                .peers
                .get_mut(&peer)
                .expect("found above")
                .wanted
                .remove(i)
                .expect("index from the scan");
            self.serve_cursor = Some(peer);
            self.reads_in_flight += 1;
            self.out.push_back(Output::ReadBlock { peer, block });
        }
    }

    fn on_block_read(&mut self, peer: PeerId, block: BlockRef, data: Option<Bytes>) {
        self.reads_in_flight = self.reads_in_flight.saturating_sub(1);
        if !self.peers.contains_key(&peer) {
            return;
        }
        match data {
            Some(data) if data.len() == block.len as usize => {
                self.peers
                    .get_mut(&peer)
                    .expect("checked")
                    .upload
                    .record(self.now, data.len() as u64);
                self.send(
                    peer,
                    Frame::Piece {
                        piece: block.piece,
                        offset: block.offset,
                        data,
                    },
                );
            }
            _ => self.send(peer, Frame::Reject(block)),
        }
    }

    // ---- downloading -------------------------------------------------------------------

    fn request_all(&mut self) {
        if !matches!(self.hashes, Hashes::Known(_)) || self.has_wanted() || self.storage_busy {
            return;
        }
        // Fastest peers first, so they get the blocks that are left (and endgame duplicates).
        let mut order: Vec<(f64, PeerId)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.ready)
            .map(|(&id, p)| (p.download.rate(), id))
            .collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, peer) in order {
            self.request_from(peer);
        }
    }

    /// How many requests to keep in flight to `p`, and the block size it takes.
    fn pipeline(&self, p: &Peer) -> (usize, u32) {
        let block = block_size_for(self.cfg.block_size, p.max_message);
        let depth = p.pipeline_depth(
            self.now,
            block,
            self.cfg.target_latency_ms,
            self.cfg.min_pipeline,
            self.cfg.max_pipeline,
        );
        (depth, block)
    }

    fn request_from(&mut self, peer: PeerId) {
        let now = self.now;
        // A deep pipeline is topped up once a quarter of it is free, not after every block:
        // the requests then leave together, in one message (`Frame::Batch`).
        let p = &self.peers[&peer];
        let (depth, _) = self.pipeline(p);
        let active = p.active();
        if active > 0 && depth.saturating_sub(active) < (depth / 4).max(1) {
            return;
        }
        loop {
            let p = &self.peers[&peer];
            let (depth, block) = self.pipeline(p);
            if p.active() >= depth || p.has.count() == 0 {
                return;
            }
            let mine: Vec<BlockRef> = p
                .outstanding
                .iter()
                .filter(|o| !o.released)
                .map(|o| o.block)
                .collect();
            let (have, wanted, verifying) = (&self.have, &self.wanted, &self.verifying);
            let busy = |piece: u32| {
                !wanted.get(piece) || have.get(piece) || verifying.contains_key(&piece)
            };
            let Some(pick) = self.picker.pick(
                peer,
                &p.has,
                block,
                &mine,
                &busy,
                self.unstarted,
                &mut self.rng,
            ) else {
                return;
            };
            self.stats.requests_sent += 1;
            self.stats.endgame_requests += u64::from(pick.duplicate);
            if pick.started {
                self.unstarted -= 1;
            }
            let p = self.peers.get_mut(&peer).expect("present");
            if p.active() == 0 {
                p.last_progress = now;
            }
            p.outstanding.push(Outstanding {
                block: pick.block,
                sent_at: now,
                deadline: u64::MAX,
                released: false,
            });
            self.send(peer, Frame::Request(pick.block));
        }
    }

    // ---- time --------------------------------------------------------------------------

    fn on_time(&mut self) {
        let now = self.now;
        // Timed-out requests go back to the pool (a late arrival is still welcome) and the
        // peer's pipeline shrinks for a while; released requests are forgotten after a grace.
        let mut released = Vec::new();
        let linger = now + self.cfg.max_timeout_ms;
        let (min, max, initial) = (
            self.cfg.min_timeout_ms,
            self.cfg.max_timeout_ms,
            self.cfg.initial_timeout_ms,
        );
        let mut stalled = Vec::new();
        for (&id, p) in self.peers.iter_mut() {
            p.outstanding.retain(|o| !(o.released && o.deadline <= now));
            let timeout = p.delay.timeout(min, max, initial);
            if p.active() == 0 || now < p.last_progress + timeout {
                continue;
            }
            // Stalled: everything we asked of it goes to other peers.
            stalled.push(id);
            for o in p.outstanding.iter_mut().filter(|o| !o.released) {
                o.released = true;
                o.deadline = linger;
                released.push(o.block);
            }
            p.snubbed_until = now + timeout;
            // The wait itself is evidence about this peer's delay.
            p.delay.sample((now - p.last_progress) as f64);
        }
        self.stats.stalls += stalled.len() as u64;
        for b in released {
            self.picker.release(&b);
        }
        // A piece kept for one peer after a failed hash must not wait on that peer forever:
        // once it stalls, anyone may supply the piece again.
        for peer in stalled {
            self.picker.disown(peer);
        }
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + self.cfg.tick_ms;
        self.retry_hashes();
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in ids {
            let p = self.peers.get_mut(&peer).expect("listed");
            p.download.roll(now);
            p.upload.roll(now);
            let stats = Event::PeerStats {
                peer,
                down_rate: p.download.rate(),
                up_rate: p.upload.rate(),
                pieces: p.has.count(),
            };
            self.out.push_back(Output::Event(stats));
            if now.saturating_sub(self.last_sent.get(&peer).copied().unwrap_or(0))
                >= self.cfg.keepalive_ms
            {
                self.send(peer, Frame::KeepAlive);
            }
        }
    }

    /// Small frames wait in the outbox until the input is handled ([`Self::flush_outbox`]);
    /// a larger one first sends what waits for that peer, so frames keep their order.
    fn send(&mut self, peer: PeerId, frame: Frame) {
        self.last_sent.insert(peer, self.now);
        if frame.batchable() {
            self.outbox.entry(peer).or_default().push(frame);
        } else {
            self.flush_to(peer);
            self.out.push_back(Output::Send { peer, frame });
        }
    }

    /// Sends the frames waiting for `peer`, its lazy HAVEs with them, in as few messages as
    /// the batch bound allows.
    fn flush_to(&mut self, peer: PeerId) {
        let Some(mut frames) = self.outbox.remove(&peer) else {
            return;
        };
        if let Some((_, haves)) = self.lazy_haves.remove(&peer) {
            frames.extend(haves.into_iter().map(Frame::Have));
        }
        while !frames.is_empty() {
            let rest = frames.split_off(frames.len().min(MAX_BATCH));
            let frame = if frames.len() == 1 {
                frames.pop().expect("one frame")
            } else {
                Frame::Batch(frames)
            };
            self.out.push_back(Output::Send { peer, frame });
            frames = rest;
        }
    }

    /// End of an input: lazy HAVEs that waited long enough join the outbox, and every
    /// peer's outbox goes out.
    fn flush_outbox(&mut self) {
        let due = self.now.saturating_sub(self.cfg.lazy_have_ms);
        let ready: Vec<PeerId> = self
            .lazy_haves
            .iter()
            .filter(|(_, (since, haves))| *since <= due || haves.len() >= MAX_BATCH / 2)
            .map(|(&peer, _)| peer)
            .collect();
        for peer in ready {
            self.outbox.entry(peer).or_default();
        }
        let peers: Vec<PeerId> = self.outbox.keys().copied().collect();
        for peer in peers {
            self.flush_to(peer);
        }
    }
}

struct Reveal {
    told: BTreeMap<PeerId, Bitfield>,
    times: Vec<u32>,
    /// Where each peer's reveals go on: among equally spread pieces a peer is shown the
    /// next one after its last, from a starting point of its own, so a seeder serving a
    /// peer reads its file in order and can read it in long runs (benches/FINDINGS.md, P1).
    next: BTreeMap<PeerId, u32>,
}

/// A complete piece waiting for its digest: data, bytes per contributor, sender of each
/// sub-block.
type Verifying = (Bytes, Vec<(PeerId, u32)>, Vec<Option<PeerId>>);

/// The order queued requests are served in, smallest first: (not overdue, how far the
/// piece has spread or when an overdue request came, piece, offset).
type ServeKey = (bool, u64, u32, u32);

/// Failed multi-source pieces kept for blame at once (each holds one piece's data).
const MAX_FAILED_KEPT: usize = 16;
/// Interest changes a peer may make before each further one earns a strike.
const MAX_INTEREST_CHANGES: u64 = 64;
/// A HashResponse frame's bytes besides its hashes (kind and start).
const HASH_RESPONSE_OVERHEAD: usize = 5;

/// A per-peer tie-break so peers are offered different pieces.
fn mix_index(piece: u32, peer: PeerId) -> u64 {
    rng::mix(u64::from(piece) ^ peer.0.rotate_left(32))
}

/// How many unfinished pieces a super-seeder keeps revealed to a peer it uploads to at
/// `rate` bytes/s: a bandwidth-delay product's worth, within the configured bounds.
fn reveal_window(cfg: &SwarmConfig, rate: f64, piece_size: u32) -> usize {
    let covered = (rate * cfg.reveal_window_ms / 1000.0 / f64::from(piece_size.max(1))).ceil();
    (covered as usize)
        .max(cfg.reveals_per_peer)
        .min(cfg.max_reveals_per_peer.max(cfg.reveals_per_peer))
}

/// The request size for a peer: our preference, within its message limit and the wire's
/// block bound, rounded down to whole sub-blocks.
pub fn block_size_for(preferred: u32, max_message: u32) -> u32 {
    let fit = max_message
        .saturating_sub(PIECE_HEADER as u32)
        .min(MAX_BLOCK)
        .min(preferred);
    (fit / SUB_BLOCK).max(1) * SUB_BLOCK
}
