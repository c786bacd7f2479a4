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
//!
//! `Swarm`'s methods are grouped by concern, one file each: `connections.rs`,
//! `messages.rs`, `super_seed.rs`, `hash_layer.rs`, `upload.rs`, `download.rs` and
//! `timers.rs`; what goes in and out is in `io.rs`.

pub mod bitfield;
mod connections;
mod download;
mod hash_layer;
mod io;
mod messages;
pub mod peer;
pub mod picker;
pub mod rng;
mod super_seed;
mod timers;
pub mod topology;
mod upload;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

use crate::protocol::manifest::{Hash, Layout, Manifest, merkle_root};
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

pub use crate::protocol::PeerId;
pub use io::{Event, Input, Output, SwarmConfig};

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
    failed: BTreeMap<u32, FailedPiece>,
    peers: BTreeMap<PeerId, Peer>,
    banned: BTreeSet<PeerId>,
    reads_in_flight: usize,
    /// The shell's storage is behind: no new requests (`Input::StorageBusy`).
    storage_busy: bool,
    serve_cursor: Option<PeerId>,
    members: Vec<PeerId>,
    me: PeerId,
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
}

struct Reveal {
    told: BTreeMap<PeerId, Bitfield>,
    times: Vec<u32>,
    /// Where each peer's reveals go on: among equally spread pieces a peer is shown the
    /// next one after its last, from a starting point of its own, so a seeder serving a
    /// peer reads its file in order and can read it in long runs (docs/benchmarks.md, P1).
    next: BTreeMap<PeerId, u32>,
}

/// A complete piece waiting for its digest.
struct Verifying {
    data: Bytes,
    /// Bytes each peer contributed.
    contributors: Vec<(PeerId, u32)>,
    /// Who sent each sub-block.
    senders: Vec<Option<PeerId>>,
}

/// A piece that failed its hash check with several contributors, kept until a good copy
/// shows who lied.
struct FailedPiece {
    data: Bytes,
    /// Who sent each sub-block.
    senders: Vec<Option<PeerId>>,
}

/// The order queued requests are served in, smallest first (fields compare in order).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ServeKey {
    /// Overdue requests (false) come before the others.
    not_overdue: bool,
    /// For an overdue request, when it came; otherwise how far its piece has spread.
    rank: u64,
    piece: u32,
    offset: u32,
}

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
