//! What the swarm is told (`Input`), what it asks the shell to do (`Output`, `Event`), and
//! its tuning (`SwarmConfig`).

use super::PeerId;
use super::topology::TopologyConfig;
use crate::protocol::manifest::Hash;
use crate::protocol::wire::{BlockRef, Frame};
use bytes::Bytes;

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
    /// Whom to connect to (`topology.rs`).
    pub topology: TopologyConfig,
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
            topology: TopologyConfig::default(),
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
    /// A verified piece: store it (the receiver's copy on disk, its resume cache, and what
    /// it serves to others from then on).
    Store {
        piece: u32,
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
