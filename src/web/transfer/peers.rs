//! The peer connections: one RTCPeerConnection per peer, negotiated through the hub
//! (offers, answers, ICE candidates), given up when it does not open in time, and what the
//! swarm reported about each peer, including whether its connection goes direct or through a
//! relay.

use super::{Ev, State};
use crate::protocol::signal::{ClientMessage, IceServer, SignalPayload};
use crate::protocol::wire::Frame;
use crate::swarm::{Input, PeerId};
use crate::transfer_view::{PeerPath, PeerRow, no_path_notice};
use crate::web::now_ms;
use crate::web::rtc::{Conn, RtcEvent, Water};
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use web_sys::{RtcPeerConnection, RtcPeerConnectionState};

/// A channel that opens later than this is given up and tried again.
const OPEN_TIMEOUT_MS: f64 = 15_000.0;

/// The waits before each look at an open connection's path (so at open, 3 s and 10 s
/// after): the browser keeps checking candidate pairs and may move to a better one, or to
/// the relay, after the channel opened.
const PATH_CHECK_WAITS_MS: [f64; 3] = [0.0, 3_000.0, 7_000.0];

/// This tab's peer connections and what is known of each peer.
pub struct Peers {
    pub conns: HashMap<PeerId, Conn>,
    /// STUN and TURN servers, from the hub's welcome (renewed with the ticket).
    pub ice: Vec<IceServer>,
    /// When a channel pauses and resumes sending (smaller under `#smallbuffer`).
    pub water: Water,
    /// The swarm's last report on each peer: download rate, upload rate, pieces it has.
    pub stats: HashMap<PeerId, (f64, f64, u32)>,
    /// Piece data received from each peer.
    pub received_from: HashMap<PeerId, u64>,
    /// Peers whose connection never opened while the server offered no TURN relay: the
    /// page names them ([`no_path_notice`]) until they connect or leave.
    pub no_path: BTreeSet<PeerId>,
}

impl Peers {
    pub fn new(water: Water) -> Self {
        Self {
            conns: HashMap::new(),
            ice: Vec::new(),
            water,
            stats: HashMap::new(),
            received_from: HashMap::new(),
            no_path: BTreeSet::new(),
        }
    }

    /// A peer left the room: nothing about it is shown again, so nothing about it is kept
    /// (a tab open for days meets many peers).
    pub fn forget(&mut self, peer: PeerId) {
        self.stats.remove(&peer);
        self.received_from.remove(&peer);
        self.no_path.remove(&peer);
    }

    /// After a rejoin: peers that left while the socket was down sent no `PeerLeft`.
    pub fn keep_members(&mut self, members: &[PeerId]) {
        self.no_path.retain(|p| members.contains(p));
    }

    /// The server's ICE servers include a TURN relay.
    fn relay_offered(&self) -> bool {
        self.ice.iter().any(IceServer::is_relay)
    }

    /// The open connections as the page lists them, by peer id.
    pub fn rows(&self) -> Vec<PeerRow> {
        let mut peers: Vec<PeerRow> = self
            .conns
            .iter()
            .filter(|(_, c)| c.open)
            .map(|(&p, c)| {
                let (down_rate, up_rate, pieces) = self.stats.get(&p).copied().unwrap_or_default();
                PeerRow {
                    id: p.0,
                    down_rate,
                    up_rate,
                    pieces,
                    received: self.received_from.get(&p).copied().unwrap_or(0),
                    path: c.path,
                }
            })
            .collect();
        peers.sort_by_key(|r| r.id);
        peers
    }
}

impl State {
    pub fn new_conn(&mut self, peer: PeerId) -> bool {
        if self.peers.conns.contains_key(&peer) {
            return true;
        }
        let tx = self.tx.clone();
        match Conn::new(&self.peers.ice, self.peers.water, move |e| {
            let _ = tx.unbounded_send(Ev::Rtc(peer, e));
        }) {
            Ok(conn) => {
                self.peers.conns.insert(peer, conn);
                true
            }
            Err(e) => {
                self.log.push(format!("could not create a connection: {e}"));
                false
            }
        }
    }

    pub fn on_signal(&mut self, from: PeerId, payload: SignalPayload) {
        match payload {
            SignalPayload::Offer { sdp } => {
                // Only the lower id offers, so an offer always starts a fresh connection.
                if let Some(c) = self.peers.conns.get(&from)
                    && c.remote_set
                {
                    // The offerer gave up on a connection that never opened here either: its
                    // timer runs from its own offer, a little ahead of ours, so its retry
                    // would otherwise replace ours before our own timeout could report it.
                    if !c.open && now_ms() - c.created_ms > OPEN_TIMEOUT_MS / 2.0 {
                        self.never_opened(
                            from,
                            format!("connection to {} did not open; retrying", from.0),
                        );
                    }
                    self.drop_conn(from);
                }
                if !self.new_conn(from) {
                    return;
                }
                let pc = self.peers.conns[&from].pc.clone();
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
                let Some(conn) = self.peers.conns.get(&from) else {
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
                let Some(conn) = self.peers.conns.get_mut(&from) else {
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

    /// Our offer or answer is ready (`Some`), or the peer's answer is applied (`None`).
    pub fn on_negotiated(&mut self, peer: PeerId, result: Result<Option<SignalPayload>, String>) {
        match result {
            Ok(Some(payload)) => {
                self.hub.send(ClientMessage::Signal { to: peer, payload });
                self.flush_outbox(peer);
            }
            Ok(None) => self.flush_outbox(peer),
            Err(e) => {
                self.log
                    .push(format!("negotiation with {} failed: {e}", peer.0));
                self.drop_conn(peer);
            }
        }
    }

    /// The peer's description is applied: the candidates that waited for it go in.
    pub fn on_remote_set(&mut self, peer: PeerId) {
        if let Some(conn) = self.peers.conns.get_mut(&peer) {
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

    pub fn on_rtc(&mut self, peer: PeerId, event: RtcEvent) {
        match event {
            RtcEvent::Candidate(payload) => {
                self.hub.send(ClientMessage::Signal { to: peer, payload })
            }
            RtcEvent::Open { max_message } => {
                if let Some(conn) = self.peers.conns.get_mut(&peer) {
                    conn.open = true;
                    self.peers.no_path.remove(&peer);
                    self.watch_path(peer);
                    self.input(Input::Connected { peer, max_message });
                }
            }
            RtcEvent::Closed(why) => {
                if self.peers.conns.contains_key(&peer) {
                    self.log.push(format!("peer {}: {why}", peer.0));
                    self.drop_conn(peer);
                }
            }
            RtcEvent::Failed => {
                if let Some(conn) = self.peers.conns.get(&peer) {
                    let failed = format!("peer {}: connection failed", peer.0);
                    if conn.open {
                        self.log.push(failed);
                    } else {
                        self.never_opened(peer, failed);
                    }
                    self.drop_conn(peer);
                }
            }
            RtcEvent::Message(bytes) => {
                self.metrics.messages_in += 1;
                if bytes.len() > 1024 {
                    *self.peers.received_from.entry(peer).or_default() += bytes.len() as u64;
                    self.metrics.received_total += bytes.len() as u64;
                }
                self.input(Input::Message {
                    peer,
                    bytes: Bytes::from(bytes),
                });
            }
            RtcEvent::BufferLow => {
                if let Some(conn) = self.peers.conns.get_mut(&peer)
                    && conn.drain()
                {
                    self.metrics.channel_resumes += 1;
                    self.input(Input::SendBlocked {
                        peer,
                        blocked: false,
                    });
                }
            }
        }
    }

    pub fn flush_outbox(&mut self, peer: PeerId) {
        let Some(conn) = self.peers.conns.get_mut(&peer) else {
            return;
        };
        conn.described = true;
        for payload in std::mem::take(&mut conn.outbox) {
            self.hub.send(ClientMessage::Signal { to: peer, payload });
        }
    }

    pub fn drop_conn(&mut self, peer: PeerId) {
        if let Some(conn) = self.peers.conns.remove(&peer) {
            conn.close();
            self.input(Input::Disconnected { peer });
        }
    }

    /// Drops the connections that did not open within [`OPEN_TIMEOUT_MS`]; true if any.
    pub fn drop_unopened(&mut self) -> bool {
        let now = now_ms();
        let stale: Vec<PeerId> = self
            .peers
            .conns
            .iter()
            .filter(|(_, c)| !c.open && now - c.created_ms > OPEN_TIMEOUT_MS)
            .map(|(&p, _)| p)
            .collect();
        for p in &stale {
            self.never_opened(*p, format!("connection to {} did not open; retrying", p.0));
            self.drop_conn(*p);
        }
        !stale.is_empty()
    }

    /// A connection to `peer` never opened (timed out, or ICE failed). With a TURN relay on
    /// offer that is logged as `otherwise` says; without one a direct path was the only
    /// kind there could be, so the page says plainly that there is none.
    fn never_opened(&mut self, peer: PeerId, otherwise: String) {
        if self.peers.relay_offered() {
            self.log.push(otherwise);
        } else {
            self.log.push(no_path_notice(peer.0));
            self.peers.no_path.insert(peer);
        }
    }

    /// Reads the open connection's path now and a few times after ([`PATH_CHECK_WAITS_MS`]),
    /// each answer reaching [`State::on_path`].
    fn watch_path(&self, peer: PeerId) {
        let Some(conn) = self.peers.conns.get(&peer) else {
            return;
        };
        let pc = conn.pc.clone();
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            for wait in PATH_CHECK_WAITS_MS {
                if wait > 0.0 {
                    crate::web::sleep(wait).await;
                }
                if tx.is_closed() || pc.connection_state() == RtcPeerConnectionState::Closed {
                    return;
                }
                if let Some(path) = Conn::path(&pc).await {
                    let _ = tx.unbounded_send(Ev::Path(peer, pc.clone(), path));
                }
            }
        });
    }

    /// What a connection's stats say of its path; logged when it is learned or changes. An
    /// answer about a connection since replaced (same peer, new `pc`) is old news.
    pub fn on_path(&mut self, peer: PeerId, pc: RtcPeerConnection, path: PeerPath) {
        let Some(conn) = self.peers.conns.get_mut(&peer) else {
            return;
        };
        if conn.pc != pc || conn.path == path {
            return;
        }
        conn.path = path;
        match path {
            PeerPath::Relayed => self
                .log
                .push(format!("peer {}: connected through the TURN relay", peer.0)),
            PeerPath::Direct => self
                .log
                .push(format!("peer {}: connected directly", peer.0)),
            PeerPath::Checking => {}
        }
    }

    /// Sends a frame to a peer (queued behind a full channel); what the swarm must hear
    /// when that blocked the channel or the peer had to go.
    pub fn send_frame(&mut self, peer: PeerId, frame: Frame) -> Option<Input> {
        if let Frame::Piece { data, .. } = &frame {
            self.metrics.uploaded += data.len() as u64;
        }
        let conn = self.peers.conns.get_mut(&peer)?;
        self.metrics.messages_out += 1;
        let newly_blocked = conn.send(frame.encode_vec());
        self.metrics.channel_peak = self.metrics.channel_peak.max(conn.peak_buffered);
        self.metrics.channel_pauses += u64::from(newly_blocked);
        if conn.queued_bytes > crate::web::rtc::MAX_QUEUED_BYTES {
            self.log.push(format!(
                "peer {} takes far less than it asks for; disconnected",
                peer.0
            ));
            if let Some(conn) = self.peers.conns.remove(&peer) {
                conn.close();
            }
            return Some(Input::Disconnected { peer });
        }
        newly_blocked.then_some(Input::SendBlocked {
            peer,
            blocked: true,
        })
    }

    /// Connects to a peer the topology chose: the lower id offers.
    pub fn connect(&mut self, peer: PeerId) {
        if !self.peers.conns.contains_key(&peer) && self.new_conn(peer) && self.hub.me < peer {
            let pc = self.peers.conns[&peer].pc.clone();
            let tx = self.tx.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let result = Conn::offer(&pc).await.map(Some);
                let _ = tx.unbounded_send(Ev::Negotiated(peer, result));
            });
        }
    }

    /// The swarm gave up on a peer.
    pub fn disconnect(&mut self, peer: PeerId, reason: String) {
        if let Some(conn) = self.peers.conns.remove(&peer) {
            self.log.push(format!("dropped peer {}: {reason}", peer.0));
            conn.close();
        }
    }
}
