//! A seeded, in-process network for whole swarms: every peer is a real `Swarm`, every frame
//! is encoded and decoded, every piece is hashed. Links have upload/download caps and
//! latency; loss shows up as retransmission delay (data channels are reliable and ordered).
//! Peers can join late, leave, or serve corrupted data. Time is virtual, so a 1,000-peer
//! swarm runs in seconds and the same seed always gives the same run.
//!
//! The simulator also checks the swarm's invariants as it runs (see `Violations`).

use super::bitfield::Bitfield;
use super::rng::Rng;
use super::{Event, Input, Output, PeerId, Swarm, SwarmConfig};
use crate::protocol::manifest::{Hash, Manifest, Sha2, Sha256};
use crate::protocol::wire::Frame;
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

#[derive(Debug, Clone)]
pub struct SimPeer {
    /// Bytes per second.
    pub upload: f64,
    pub download: f64,
    /// When it comes online and (optionally) leaves, in ms.
    pub join_ms: u64,
    pub leave_ms: Option<u64>,
    pub seeder: bool,
    /// Serves corrupted data for every block.
    pub corrupt: bool,
    /// The tab stops running now and then, as a busy browser tab does (four tabs on two
    /// cores, where a renderer can wait hundreds of milliseconds for a core).
    pub pause: Option<Pause>,
}

/// Frozen for `for_ms` out of every `every_ms`, starting at `offset_ms`: nothing reaches the
/// swarm core meanwhile (its links keep draining what was already sent).
#[derive(Debug, Clone, Copy)]
pub struct Pause {
    pub every_ms: u64,
    pub for_ms: u64,
    pub offset_ms: u64,
}

impl Pause {
    /// When the pause covering `now_us` ends, if one does.
    fn ends_at(&self, now_us: u64) -> Option<u64> {
        let (every, len) = (self.every_ms * 1000, self.for_ms * 1000);
        let since = now_us.checked_sub(self.offset_ms * 1000)?;
        let into = since % every.max(1);
        (into < len).then(|| now_us - into + len)
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub file_size: u64,
    pub piece_size: u32,
    pub peers: Vec<SimPeer>,
    /// One-way latency range, ms.
    pub latency_ms: (u64, u64),
    /// Probability a message needs one retransmission (costs an extra round trip).
    pub loss: f64,
    /// The swarm's tuning, its topology included.
    pub swarm: SwarmConfig,
    pub seed: u64,
    /// Give up at this virtual time.
    pub deadline_ms: u64,
}

/// Invariant violations seen during a run; all must stay zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations {
    /// A stored piece whose bytes differ from the original.
    pub unverified_store: u64,
    /// A piece written twice by the same peer.
    pub double_write: u64,
    /// A request sent to a peer that did not have the piece.
    pub request_without_piece: u64,
    /// More requests in flight to one peer than the pipeline bound.
    pub over_pipeline: u64,
}

#[derive(Debug, Clone)]
pub struct SimReport {
    /// Completion time per peer (ms), `None` if it never completed (or is a seeder).
    pub finished_ms: Vec<Option<u64>>,
    /// Distinct peers each peer received piece data from.
    pub sources: Vec<usize>,
    /// The most connections each peer had open at once (made by the swarms' own
    /// topology advice, `Output::Connect`).
    pub degree: Vec<usize>,
    pub violations: Violations,
    /// Peers banned by at least one other peer.
    pub banned: Vec<usize>,
    pub pieces_failed: u64,
    /// Bytes of piece data each peer received (duplicates included).
    pub received_bytes: Vec<u64>,
    pub end_ms: u64,
    pub stats: Vec<super::Stats>,
    /// Bytes of piece data each peer sent (duplicates included).
    pub sent_bytes: Vec<u64>,
    /// Data-channel messages each peer sent (a batch of small frames is one).
    pub messages: Vec<u64>,
    /// When every piece first had a verified copy on some non-seeder (ms).
    pub spread_ms: Option<u64>,
}

impl SimReport {
    /// Time the last non-seeder that stayed finished, if all did.
    pub fn last_finish(&self, cfg: &SimConfig) -> Option<u64> {
        let mut last = 0;
        for (i, p) in cfg.peers.iter().enumerate() {
            if p.seeder || p.leave_ms.is_some() || p.corrupt {
                continue;
            }
            last = last.max(self.finished_ms[i]?);
        }
        Some(last)
    }
}

#[derive(Debug)]
enum Ev {
    Join(usize),
    Leave(usize),
    /// Signaling reached both ends of a pair one asked to connect: the channel opens.
    Connect(usize, usize),
    /// The room's member list changed: every online peer hears the new one (as the hub's
    /// welcome, peer-joined and peer-left messages tell a tab).
    Members,
    /// The frame reached the receiver's download link (it queues there)…
    Arrive {
        from: usize,
        to: usize,
        bytes: Bytes,
    },
    /// … and is handed to the receiver.
    Deliver {
        from: usize,
        to: usize,
        bytes: Bytes,
    },
    Wake(usize),
    /// The uplink drained enough to read more blocks for upload.
    Pump(usize),
}

struct Node {
    swarm: Option<Swarm>,
    up_free_us: u64,
    down_free_us: u64,
    wake_at: Option<u64>,
    writes: Vec<u8>,
    received_from: BTreeMap<usize, u64>,
    finished: Option<u64>,
    /// Blocks the swarm asked to read for upload, served only while the uplink backlog is
    /// short (as the browser shell does with `bufferedAmount`), so queued requests stay
    /// cancellable and served round-robin instead of piling up in the link.
    reads: std::collections::VecDeque<(PeerId, crate::protocol::wire::BlockRef)>,
    pump_at: Option<u64>,
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    manifest: Manifest,
    file: Bytes,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Ev>>,
    seq: u64,
    rng: Rng,
    now_us: u64,
    violations: Violations,
    banned: Vec<bool>,
    pieces_failed: u64,
    latency: BTreeMap<(usize, usize), u64>,
    last_arrival: BTreeMap<(usize, usize), u64>,
    sent_bytes: Vec<u64>,
    messages: Vec<u64>,
    /// Pieces without a verified copy on a non-seeder yet, and when that reached zero.
    unspread: Vec<bool>,
    unspread_count: u32,
    spread_ms: Option<u64>,
    /// Open connections, each as (lower index, higher index), and pairs asked for.
    links: BTreeSet<(usize, usize)>,
    connecting: BTreeSet<(usize, usize)>,
    /// Open connections per peer now, and the most it had.
    degree: Vec<usize>,
    max_degree: Vec<usize>,
    /// A member-list update is already scheduled for this time.
    members_at: Option<u64>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// Deterministic file content for a seed.
pub fn content(size: u64, seed: u64) -> Bytes {
    let mut rng = Rng::new(seed ^ 0xc0ffee);
    let mut v = Vec::with_capacity(size as usize);
    while (v.len() as u64) < size {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(size as usize);
    Bytes::from(v)
}

/// Data-channel framing overhead per message (SCTP/DTLS/UDP/IP headers), roughly.
const FRAME_OVERHEAD: f64 = 60.0;

pub fn run(cfg: &SimConfig) -> SimReport {
    let file = content(cfg.file_size, cfg.seed);
    let manifest = Manifest::from_files(cfg.piece_size, &[&file], &Sha2).expect("valid layout");
    let n = cfg.peers.len();
    let mut sim = Sim {
        cfg,
        manifest,
        file,
        nodes: (0..n)
            .map(|_| Node {
                swarm: None,
                up_free_us: 0,
                down_free_us: 0,
                wake_at: None,
                writes: Vec::new(),
                received_from: BTreeMap::new(),
                finished: None,
                reads: Default::default(),
                pump_at: None,
            })
            .collect(),
        queue: BinaryHeap::new(),
        events: Vec::new(),
        seq: 0,
        rng: Rng::new(cfg.seed),
        now_us: 0,
        violations: Violations::default(),
        banned: vec![false; n],
        pieces_failed: 0,
        latency: BTreeMap::new(),
        last_arrival: BTreeMap::new(),
        sent_bytes: vec![0; n],
        messages: vec![0; n],
        unspread: Vec::new(),
        unspread_count: 0,
        spread_ms: None,
        links: BTreeSet::new(),
        connecting: BTreeSet::new(),
        degree: vec![0; n],
        max_degree: vec![0; n],
        members_at: None,
    };
    let pieces = sim.manifest.layout.piece_count();
    sim.unspread = vec![true; pieces as usize];
    sim.unspread_count = pieces;
    for (i, p) in cfg.peers.iter().enumerate() {
        sim.schedule(p.join_ms * 1000, Ev::Join(i));
        if let Some(t) = p.leave_ms {
            sim.schedule(t * 1000, Ev::Leave(i));
        }
    }
    let deadline_us = cfg.deadline_ms * 1000;
    while let Some(Reverse((t, _, idx))) = sim.queue.pop() {
        if t > deadline_us {
            break;
        }
        sim.now_us = t;
        let ev = sim.events[idx].take().expect("each event runs once");
        sim.handle(ev);
        if sim.all_done() {
            break;
        }
    }
    SimReport {
        finished_ms: sim.nodes.iter().map(|n| n.finished).collect(),
        sources: sim
            .nodes
            .iter()
            .map(|n| n.received_from.values().filter(|&&b| b > 0).count())
            .collect(),
        degree: sim.max_degree.clone(),
        violations: sim.violations.clone(),
        banned: sim
            .banned
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(i, _)| i)
            .collect(),
        pieces_failed: sim.pieces_failed,
        received_bytes: sim
            .nodes
            .iter()
            .map(|n| n.received_from.values().sum())
            .collect(),
        end_ms: sim.now_us / 1000,
        stats: sim
            .nodes
            .iter()
            .map(|n| {
                n.swarm
                    .as_ref()
                    .map(|s| s.stats.clone())
                    .unwrap_or_default()
            })
            .collect(),
        sent_bytes: sim.sent_bytes.clone(),
        messages: sim.messages.clone(),
        spread_ms: sim.spread_ms,
    }
}

impl Sim<'_> {
    fn schedule(&mut self, at_us: u64, ev: Ev) {
        self.events.push(Some(ev));
        self.queue
            .push(Reverse((at_us, self.seq, self.events.len() - 1)));
        self.seq += 1;
    }

    /// Tells every online peer the member list once this instant's joins and leaves are in.
    fn members_changed(&mut self) {
        if self.members_at != Some(self.now_us) {
            self.members_at = Some(self.now_us);
            self.schedule(self.now_us, Ev::Members);
        }
    }

    /// A connection closed (either end may report it; the second report finds it gone).
    fn unlink(&mut self, a: usize, b: usize) {
        if self.links.remove(&pair(a, b)) {
            self.degree[a] -= 1;
            self.degree[b] -= 1;
        }
    }

    fn all_done(&self) -> bool {
        self.cfg.peers.iter().enumerate().all(|(i, p)| {
            p.seeder
                || p.corrupt
                || self.nodes[i].finished.is_some()
                || p.leave_ms.is_some_and(|t| t * 1000 <= self.now_us)
        })
    }

    fn online(&self, i: usize) -> bool {
        self.nodes[i].swarm.is_some()
    }

    /// When peer `i` is paused now, the end of its pause.
    fn paused_until(&self, i: usize) -> Option<u64> {
        self.cfg.peers[i].pause?.ends_at(self.now_us)
    }

    fn handle(&mut self, ev: Ev) {
        let now_ms = self.now_us / 1000;
        // A paused tab handles nothing until its pause ends; what reaches it waits, in order.
        let target = match &ev {
            Ev::Deliver { to, .. } => Some(*to),
            Ev::Wake(i) | Ev::Pump(i) => Some(*i),
            _ => None,
        };
        if let Some(end) = target.and_then(|i| self.paused_until(i)) {
            match ev {
                Ev::Wake(i) if self.nodes[i].wake_at == Some(self.now_us) => {
                    self.nodes[i].wake_at = Some(end);
                    self.schedule(end, Ev::Wake(i));
                }
                Ev::Pump(i) if self.nodes[i].pump_at == Some(self.now_us) => {
                    self.nodes[i].pump_at = Some(end);
                    self.schedule(end, Ev::Pump(i));
                }
                Ev::Wake(_) | Ev::Pump(_) => {}
                ev => self.schedule(end, ev),
            }
            return;
        }
        match ev {
            Ev::Join(i) => {
                let p = &self.cfg.peers[i];
                let count = self.manifest.layout.piece_count();
                let (have, hashes) = if p.seeder {
                    (
                        Bitfield::full(count),
                        Some(self.manifest.piece_hashes.clone()),
                    )
                } else {
                    (Bitfield::new(count), None)
                };
                let seed = self.rng.next_u64();
                let swarm = Swarm::new(
                    self.cfg.swarm.clone(),
                    PeerId(i as u64 + 1),
                    self.manifest.layout.clone(),
                    self.manifest.root,
                    hashes,
                    have,
                    seed,
                );
                self.nodes[i].swarm = Some(swarm);
                self.input(i, now_ms, Input::Timeout);
                self.members_changed();
            }
            Ev::Leave(i) => {
                if self.nodes[i].swarm.take().is_some() {
                    let peers: Vec<usize> =
                        (0..self.nodes.len()).filter(|&j| self.online(j)).collect();
                    for j in peers {
                        self.input(
                            j,
                            now_ms,
                            Input::Disconnected {
                                peer: PeerId(i as u64 + 1),
                            },
                        );
                    }
                    let gone: Vec<(usize, usize)> = self
                        .links
                        .iter()
                        .copied()
                        .filter(|&(a, b)| a == i || b == i)
                        .collect();
                    for (a, b) in gone {
                        self.unlink(a, b);
                    }
                    self.members_changed();
                }
            }
            Ev::Members => {
                self.members_at = None;
                let members: Vec<PeerId> = (0..self.nodes.len())
                    .filter(|&j| self.online(j))
                    .map(|j| PeerId(j as u64 + 1))
                    .collect();
                for j in 0..self.nodes.len() {
                    if self.online(j) {
                        self.input(j, now_ms, Input::Members(members.clone()));
                    }
                }
            }
            Ev::Connect(a, b) => {
                self.connecting.remove(&pair(a, b));
                if self.online(a) && self.online(b) && self.links.insert(pair(a, b)) {
                    for end in [a, b] {
                        self.degree[end] += 1;
                        self.max_degree[end] = self.max_degree[end].max(self.degree[end]);
                    }
                    let max = self.cfg.swarm.max_message;
                    self.input(
                        a,
                        now_ms,
                        Input::Connected {
                            peer: PeerId(b as u64 + 1),
                            max_message: max,
                        },
                    );
                    self.input(
                        b,
                        now_ms,
                        Input::Connected {
                            peer: PeerId(a as u64 + 1),
                            max_message: max,
                        },
                    );
                }
            }
            Ev::Arrive { from, to, bytes } => {
                let size = bytes.len() as f64 + FRAME_OVERHEAD;
                let down = &mut self.nodes[to].down_free_us;
                let deliver =
                    (*down).max(self.now_us) + (size * 1e6 / self.cfg.peers[to].download) as u64;
                *down = deliver;
                self.schedule(deliver, Ev::Deliver { from, to, bytes });
            }
            Ev::Deliver { from, to, bytes } => {
                if self.online(to) && self.online(from) {
                    if let Ok(Frame::Piece { data, .. }) = Frame::decode(bytes.clone()) {
                        *self.nodes[to].received_from.entry(from).or_default() += data.len() as u64;
                        self.sent_bytes[from] += data.len() as u64;
                    }
                    self.input(
                        to,
                        now_ms,
                        Input::Message {
                            peer: PeerId(from as u64 + 1),
                            bytes,
                        },
                    );
                }
            }
            Ev::Pump(i) => {
                if self.nodes[i].pump_at == Some(self.now_us) {
                    self.nodes[i].pump_at = None;
                    self.input(i, now_ms, Input::Timeout);
                }
            }
            Ev::Wake(i) => {
                if self.nodes[i].wake_at == Some(self.now_us) {
                    self.nodes[i].wake_at = None;
                    self.input(i, now_ms, Input::Timeout);
                }
            }
        }
    }

    /// Feeds one input and carries out every output (reads and hashes happen at once).
    fn input(&mut self, i: usize, now_ms: u64, input: Input) {
        let mut pending = vec![input];
        loop {
            let Some(input) = pending.pop().or_else(|| self.pump(i)) else {
                break;
            };
            let Some(swarm) = self.nodes[i].swarm.as_mut() else {
                return;
            };
            swarm.handle_input(now_ms, input);
            while let Some(out) = self.nodes[i].swarm.as_mut().and_then(Swarm::poll_output) {
                match out {
                    Output::Send { peer, frame } => self.send(i, peer.0 as usize - 1, frame),
                    Output::ReadBlock { peer, block } => {
                        self.nodes[i].reads.push_back((peer, block))
                    }
                    Output::Verify { piece, data } => {
                        pending.push(Input::Hashed {
                            piece,
                            digest: Sha2.digest(&data),
                        });
                    }
                    Output::Store { piece, data } => {
                        let span = self.manifest.layout.span(piece);
                        let original = &self.file
                            [span.offset as usize..span.offset as usize + span.len as usize];
                        if data.as_ref() != original {
                            self.violations.unverified_store += 1;
                        }
                        let node = &mut self.nodes[i];
                        if node.writes.is_empty() {
                            node.writes = vec![0; self.manifest.layout.piece_count() as usize];
                        }
                        node.writes[piece as usize] += 1;
                        if node.writes[piece as usize] > 1 {
                            self.violations.double_write += 1;
                        }
                        if !self.cfg.peers[i].seeder
                            && std::mem::take(&mut self.unspread[piece as usize])
                        {
                            self.unspread_count -= 1;
                            if self.unspread_count == 0 {
                                self.spread_ms = Some(now_ms);
                            }
                        }
                    }
                    Output::Event(Event::Completed) => self.nodes[i].finished = Some(now_ms),
                    Output::Event(Event::Banned { peer, .. }) => {
                        self.banned[peer.0 as usize - 1] = true
                    }
                    Output::Event(Event::PieceFailed { .. }) => self.pieces_failed += 1,
                    Output::Event(_) => {}
                    Output::Disconnect { peer, .. } => {
                        let j = peer.0 as usize - 1;
                        self.unlink(i, j);
                        if self.online(j) {
                            let me = PeerId(i as u64 + 1);
                            self.nodes[j]
                                .swarm
                                .as_mut()
                                .expect("online")
                                .handle_input(now_ms, Input::Disconnected { peer: me });
                        }
                    }
                    Output::Connect { peer } => {
                        // Offer, answer and ICE cross the signaling server before the
                        // channel opens: about three one-way trips.
                        let j = peer.0 as usize - 1;
                        let key = pair(i, j);
                        if self.online(j)
                            && !self.links.contains(&key)
                            && self.connecting.insert(key)
                        {
                            let at = self.now_us + 3 * self.cfg.latency_ms.1 * 1000 + 1;
                            self.schedule(at, Ev::Connect(i, j));
                        }
                    }
                }
            }
        }
        self.rearm(i);
    }

    /// Answers the next queued read if the uplink has room for it.
    fn pump(&mut self, i: usize) -> Option<Input> {
        const HIGH_WATER_US: u64 = 50_000;
        let node = &mut self.nodes[i];
        if node.reads.is_empty() {
            return None;
        }
        let backlog = node.up_free_us.saturating_sub(self.now_us);
        if backlog > HIGH_WATER_US {
            let at = node.up_free_us - HIGH_WATER_US;
            if node.pump_at.is_none_or(|t| t < self.now_us) {
                node.pump_at = Some(at);
                self.schedule(at, Ev::Pump(i));
            }
            return None;
        }
        let (peer, block) = node.reads.pop_front()?;
        let span = self.manifest.layout.span(block.piece);
        let start = (span.offset + u64::from(block.offset)) as usize;
        let mut data = self.file.slice(start..start + block.len as usize);
        if self.cfg.peers[i].corrupt {
            let mut bad = data.to_vec();
            bad[0] ^= 0xff;
            data = Bytes::from(bad);
        }
        Some(Input::BlockRead {
            peer,
            block,
            data: Some(data),
        })
    }

    fn rearm(&mut self, i: usize) {
        let Some(swarm) = self.nodes[i].swarm.as_ref() else {
            return;
        };
        let at = swarm.poll_timeout().max(self.now_us / 1000 + 1) * 1000;
        if self.nodes[i]
            .wake_at
            .is_none_or(|w| w > at || w < self.now_us)
        {
            self.nodes[i].wake_at = Some(at);
            self.schedule(at, Ev::Wake(i));
        }
    }

    fn send(&mut self, from: usize, to: usize, frame: Frame) {
        self.messages[from] += 1;
        for b in frame.parts().iter().filter_map(|f| match f {
            Frame::Request(b) => Some(b),
            _ => None,
        }) {
            if let Some(target) = self.nodes[to].swarm.as_ref()
                && !target.have().get(b.piece)
            {
                self.violations.request_without_piece += 1;
            }
            let outstanding = self.nodes[from]
                .swarm
                .as_ref()
                .map_or(0, |s| s.outstanding(PeerId(to as u64 + 1)));
            if outstanding > self.cfg.swarm.max_pipeline {
                self.violations.over_pipeline += 1;
            }
        }
        let bytes = frame.encode();
        let size = bytes.len() as f64 + FRAME_OVERHEAD;
        let up = &mut self.nodes[from].up_free_us;
        let depart = (*up).max(self.now_us) + (size * 1e6 / self.cfg.peers[from].upload) as u64;
        *up = depart;
        let key = (from.min(to), from.max(to));
        let (lo, hi) = self.cfg.latency_ms;
        let rng = &mut self.rng;
        let latency_us = *self
            .latency
            .entry(key)
            .or_insert_with(|| (lo + rng.below(hi - lo + 1)) * 1000);
        let mut arrive = depart + latency_us;
        if self.cfg.loss > 0.0 && self.rng.unit() < self.cfg.loss {
            arrive += 2 * latency_us + 200_000; // a retransmission after an RTO
        }
        // Channels are ordered: nothing overtakes a message held back by a retransmission.
        let last = self.last_arrival.entry((from, to)).or_insert(0);
        arrive = arrive.max(*last);
        *last = arrive;
        self.schedule(arrive, Ev::Arrive { from, to, bytes });
    }
}

/// The theoretical lower bound on the last download's completion time (ms) with one seeder:
/// `max(F / u_seed, N·F / (u_seed + Σ u_i))`.
pub fn lower_bound_ms(cfg: &SimConfig) -> f64 {
    let f = cfg.file_size as f64;
    let seed_up: f64 = cfg
        .peers
        .iter()
        .filter(|p| p.seeder)
        .map(|p| p.upload)
        .sum();
    let leechers: Vec<&SimPeer> = cfg.peers.iter().filter(|p| !p.seeder).collect();
    let n = leechers.len() as f64;
    let total_up: f64 = seed_up + leechers.iter().map(|p| p.upload).sum::<f64>();
    let max_down_time = leechers.iter().map(|p| f / p.download).fold(0.0, f64::max);
    (f / seed_up).max(n * f / total_up).max(max_down_time) * 1000.0
}

/// A typical scenario: one seeder and `n` leechers with equal upload caps.
pub fn scenario(n: usize, file_size: u64, piece_size: u32, seed: u64) -> SimConfig {
    let up = 1_000_000.0;
    let mut peers = vec![SimPeer {
        upload: up,
        download: 4.0 * up,
        join_ms: 0,
        leave_ms: None,
        seeder: true,
        corrupt: false,
        pause: None,
    }];
    for _ in 0..n {
        peers.push(SimPeer {
            upload: up,
            download: 4.0 * up,
            join_ms: 0,
            leave_ms: None,
            seeder: false,
            corrupt: false,
            pause: None,
        });
    }
    SimConfig {
        file_size,
        piece_size,
        peers,
        latency_ms: (10, 40),
        loss: 0.0,
        swarm: SwarmConfig {
            // Two requests per piece: a piece can come from two peers at once.
            block_size: (piece_size / 2).clamp(16 * 1024, 64 * 1024),
            ..SwarmConfig::default()
        },
        seed,
        deadline_ms: 3_600_000,
    }
}

/// Hash of the original content, for tests.
pub fn content_hash(cfg: &SimConfig) -> Hash {
    Sha2.digest(&content(cfg.file_size, cfg.seed))
}
