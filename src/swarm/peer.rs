//! What the swarm knows about one connected peer: what it has, what we asked of it, how fast
//! and how promptly it answers, and how often it sent bad data.

use super::bitfield::Bitfield;
use crate::protocol::wire::BlockRef;
use std::collections::VecDeque;

/// A request we sent and are waiting for.
#[derive(Debug, Clone)]
pub struct Outstanding {
    pub block: BlockRef,
    pub sent_at: u64,
    /// For released requests: when to forget them.
    pub deadline: u64,
    /// Timed out or cancelled: no longer counted in the pipeline or holding its blocks, but
    /// remembered until `deadline` so the data is still welcome (and not a protocol error)
    /// if it was already on its way.
    pub released: bool,
}

/// Smoothed transfer rate (bytes/s) from arrivals, over windows of `WINDOW_MS`.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    window_start: u64,
    window_bytes: u64,
    rate: f64,
    total: u64,
}

const WINDOW_MS: u64 = 250;

impl RateMeter {
    pub fn record(&mut self, now: u64, bytes: u64) {
        self.roll(now);
        self.window_bytes += bytes;
        self.total += bytes;
    }

    /// Closes finished windows so the rate decays when nothing arrives.
    pub fn roll(&mut self, now: u64) {
        if self.window_start == 0 {
            self.window_start = now.max(1);
            return;
        }
        let elapsed = now.saturating_sub(self.window_start);
        if elapsed >= WINDOW_MS {
            let sample = self.window_bytes as f64 * 1000.0 / elapsed as f64;
            // Faster reaction upwards than downwards keeps pipelines full after a stall.
            let alpha = if sample > self.rate { 0.5 } else { 0.25 };
            self.rate += alpha * (sample - self.rate);
            self.window_start = now;
            self.window_bytes = 0;
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Head-of-line delay (how long the oldest request waits for its block), smoothed like
/// TCP's RTT estimator (RFC 6298). It includes the peer's queueing, so timeouts grow when
/// a peer is busy and shrink when it is idle.
#[derive(Debug, Clone, Default)]
pub struct DelayMeter {
    srtt: Option<f64>,
    rttvar: f64,
}

impl DelayMeter {
    pub fn sample(&mut self, ms: f64) {
        match self.srtt {
            None => {
                self.srtt = Some(ms);
                self.rttvar = ms / 2.0;
            }
            Some(srtt) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (srtt - ms).abs();
                self.srtt = Some(0.875 * srtt + 0.125 * ms);
            }
        }
    }

    pub fn srtt(&self) -> Option<f64> {
        self.srtt
    }

    /// How long to wait for a block before asking someone else: the peer's own measured
    /// delay plus four deviations, within `[min, max]`; `initial` before any sample.
    pub fn timeout(&self, min: u64, max: u64, initial: u64) -> u64 {
        match self.srtt {
            None => initial,
            Some(srtt) => ((2.0 * srtt + 4.0 * self.rttvar) as u64).clamp(min, max),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Peer {
    /// Set once its handshake is accepted.
    pub ready: bool,
    pub max_message: u32,
    pub has: Bitfield,
    /// The pieces it wants (its `Interested` frame); `None`: every piece.
    pub interest: Option<Bitfield>,
    /// Our requests to this peer.
    pub outstanding: Vec<Outstanding>,
    /// Its requests to us and when each arrived (see `Swarm::serve` for the order).
    pub wanted: VecDeque<(BlockRef, u64)>,
    pub download: RateMeter,
    pub upload: RateMeter,
    pub delay: DelayMeter,
    /// Pieces it contributed to that failed verification.
    pub bad_pieces: u32,
    /// Frames it sent that broke the protocol in a forgivable way (e.g. unrequested blocks).
    pub strikes: u32,
    /// The shell reported its channel buffer is full: serve nothing until it drains.
    pub send_blocked: bool,
    /// After a stall the pipeline drops to one request until this time.
    pub snubbed_until: u64,
    /// When the head of our request pipeline to this peer started waiting: the last block
    /// arrival, or the moment the pipeline became non-empty. A stall is measured from here,
    /// so requests queued behind others are not timed out for waiting their turn.
    pub last_progress: u64,
    /// Piece hashes we have sent it (the layer is answered a bounded number of times).
    pub hashes_served: u64,
    /// How often its `Interested` bitmap changed while we were super-seeding.
    pub interest_changes: u64,
    /// When its data channel opened (our clock): budgets refill from here.
    pub connected_ms: u64,
}

impl Peer {
    pub fn new(pieces: u32, max_message: u32) -> Self {
        Self {
            ready: false,
            max_message,
            has: Bitfield::new(pieces),
            interest: None,
            outstanding: Vec::new(),
            wanted: VecDeque::new(),
            download: RateMeter::default(),
            upload: RateMeter::default(),
            delay: DelayMeter::default(),
            bad_pieces: 0,
            strikes: 0,
            send_blocked: false,
            snubbed_until: 0,
            last_progress: 0,
            hashes_served: 0,
            interest_changes: 0,
            connected_ms: 0,
        }
    }

    /// How many requests to keep in flight: enough to cover the measured rate over the
    /// target latency (bandwidth-delay product in blocks), at least `min`, at most `max`.
    pub fn pipeline_depth(
        &self,
        now: u64,
        block: u32,
        target_ms: f64,
        min: usize,
        max: usize,
    ) -> usize {
        if now < self.snubbed_until {
            return 1;
        }
        let bdp = self.download.rate() * target_ms / 1000.0 / f64::from(block);
        (bdp.ceil() as usize + 1).clamp(min, max)
    }

    /// Requests that count against the pipeline.
    pub fn active(&self) -> usize {
        self.outstanding.iter().filter(|o| !o.released).count()
    }
}
