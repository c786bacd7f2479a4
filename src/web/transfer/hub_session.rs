//! The session with the signaling server: the socket, the ticket it joined with, the room's
//! members as the server reports them, reconnecting after the socket closes and renewing
//! the ticket before it expires.

use super::{Ev, State};
use crate::api::ApiError;
use crate::protocol::manifest::Hash;
use crate::protocol::signal::{ClientMessage, ServerMessage};
use crate::swarm::{Input, PeerId, Swarm, SwarmConfig};
use crate::transfer_view::Phase;
use crate::web::now_ms;
use crate::web::signaling::SignalingSocket;

/// This tab's place in the room on the signaling server.
pub struct HubSession {
    /// Open while connected; `None` between a close and the rejoin.
    pub socket: Option<SignalingSocket>,
    /// Kept to report a finished download (the owner's "completed" count).
    pub ticket: String,
    /// This tab's peer id (a new one after each rejoin).
    pub me: PeerId,
    /// Everyone in the room, this tab included.
    pub members: Vec<PeerId>,
    /// Reconnection attempts since the hub's socket last closed (0 while connected).
    pub rejoin_attempts: u32,
    /// Counts renewals scheduled; a pending one that is not the latest is dropped.
    pub renewals: u32,
    /// Times the hub renewed this tab's socket (`data-renewed` on the panel).
    pub renewed: u32,
}

impl HubSession {
    pub fn new(ticket: String) -> Self {
        Self {
            socket: None,
            ticket,
            me: PeerId(0),
            members: Vec::new(),
            rejoin_attempts: 0,
            renewals: 0,
            renewed: 0,
        }
    }

    pub fn send(&self, msg: ClientMessage) {
        if let Some(socket) = &self.socket {
            socket.send(&msg);
        }
    }
}

impl State {
    /// Opens the hub's socket with the current ticket.
    pub fn connect_hub(&mut self) -> Result<(), String> {
        let tx = self.tx.clone();
        let hub = SignalingSocket::connect(&self.room.id, &self.hub.ticket, move |e| {
            let _ = tx.unbounded_send(Ev::Signaling(e));
        })?;
        self.hub.socket = Some(hub);
        Ok(())
    }

    /// Asks for a fresh ticket after a pause that doubles with each attempt (1 s up to
    /// 30 s), then reconnects ([`Ev::Rejoin`]). A fresh ticket, because the old one may be
    /// what expired; asking for it also tells whether the room still exists.
    pub fn schedule_rejoin(&mut self) {
        let delay = 1000.0 * f64::from(1u32 << self.hub.rejoin_attempts.min(5)).min(30.0);
        self.hub.rejoin_attempts += 1;
        self.log.push(format!(
            "reconnecting to the server in {} s",
            (delay / 1000.0).round()
        ));
        let (tx, room) = (self.tx.clone(), self.room.id.clone());
        wasm_bindgen_futures::spawn_local(async move {
            crate::web::sleep(delay).await;
            let ticket = crate::api::join_room(room).await.map(|t| t.ticket);
            let _ = tx.unbounded_send(Ev::Rejoin(ticket));
        });
    }

    /// Fetches a fresh ticket in `delay_ms` and hands it to the open socket
    /// ([`Ev::Renew`]), so the socket outlives its ticket: same peer id, same connections.
    /// Without a renewal the hub closes the socket at the ticket's expiry and the tab
    /// rejoins under a new id, dropping its peer connections.
    pub fn schedule_renewal(&mut self, delay_ms: f64) {
        self.hub.renewals = self.hub.renewals.wrapping_add(1);
        let (tx, room, generation) = (self.tx.clone(), self.room.id.clone(), self.hub.renewals);
        wasm_bindgen_futures::spawn_local(async move {
            crate::web::sleep(delay_ms).await;
            let ticket = crate::api::join_room(room).await.map(|t| t.ticket);
            let _ = tx.unbounded_send(Ev::Renew(generation, ticket));
        });
    }

    /// The socket closed (the server restarted, the network dropped, the ticket expired).
    pub fn on_hub_closed(&mut self, why: String) {
        self.hub.socket = None;
        if self.closed.is_some() {
            return;
        }
        // Peers already connected keep exchanging pieces without the server, and
        // the tab reconnects: after a server restart, a network drop or the
        // ticket's expiry, it can be found by newcomers again.
        self.log.push(why);
        self.schedule_rejoin();
    }

    /// A fresh ticket to reconnect with arrived (or why not).
    pub fn on_rejoin(&mut self, ticket: Result<String, ApiError>) {
        match ticket {
            Ok(ticket) => {
                if self.closed.is_some() {
                    return;
                }
                self.hub.ticket = ticket;
                if let Err(e) = self.connect_hub() {
                    self.log.push(format!("could not reach the server: {e}"));
                    self.schedule_rejoin();
                }
            }
            Err(e @ (ApiError::RoomNotFound | ApiError::RoomGone)) => {
                self.stop(format!("This room was closed: {e}."));
            }
            Err(e) => {
                if self.closed.is_none() {
                    self.log.push(format!("could not rejoin the room: {e}"));
                    self.schedule_rejoin();
                }
            }
        }
    }

    /// A fresh ticket for the open socket of generation `generation` arrived (or why not).
    pub fn on_renew(&mut self, generation: u32, ticket: Result<String, ApiError>) {
        match (generation, ticket) {
            (generation, _) if generation != self.hub.renewals || self.hub.socket.is_none() => {}
            (_, Ok(ticket)) => {
                if self.closed.is_none() {
                    self.hub.ticket = ticket.clone();
                    self.hub.send(ClientMessage::Renew { ticket });
                    // Tried again unless `renewed` comes first (a refusal is only logged).
                    self.schedule_renewal(10_000.0);
                }
            }
            (_, Err(e @ (ApiError::RoomNotFound | ApiError::RoomGone))) => {
                self.stop(format!("This room was closed: {e}."));
            }
            (_, Err(e)) => {
                // The socket lives until its ticket expires; then the tab rejoins.
                self.log.push(format!("could not renew the ticket: {e}"));
                self.schedule_renewal(10_000.0);
            }
        }
    }

    pub fn on_hub(&mut self, msg: ServerMessage) {
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
                    let peers: Vec<PeerId> = self.peers.conns.keys().copied().collect();
                    for peer in peers {
                        self.drop_conn(peer);
                    }
                }
                self.hub.rejoin_attempts = 0;
                self.hub.me = you;
                self.peers.ice = ice_servers;
                self.swarm = Some(Swarm::new(
                    SwarmConfig::default(),
                    you,
                    self.room.layout.clone(),
                    self.room.root,
                    self.hashes.take(),
                    self.have.clone(),
                    you.0 ^ (now_ms() as u64),
                ));
                self.hub.members = members;
                self.hub.members.push(you);
                self.peers.keep_members(&self.hub.members);
                // What the old swarm was given: a change waiting for the files to close or
                // reopen is applied after that, as before.
                if self.selection.applied.iter().any(|on| !on) {
                    self.input(Input::Select(self.selection.applied.clone()));
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
                self.input(Input::Members(self.hub.members.clone()));
            }
            ServerMessage::PeerJoined { peer } => {
                if !self.hub.members.contains(&peer) {
                    self.hub.members.push(peer);
                }
                self.input(Input::Members(self.hub.members.clone()));
            }
            ServerMessage::PeerLeft { peer } => {
                self.hub.members.retain(|&p| p != peer);
                if self.peers.conns.contains_key(&peer) {
                    self.drop_conn(peer);
                }
                self.input(Input::Members(self.hub.members.clone()));
                self.peers.forget(peer);
            }
            ServerMessage::Signal { from, payload } => self.on_signal(from, payload),
            ServerMessage::Error { message } => self.log.push(message),
            ServerMessage::Renewed {
                ice_servers,
                renew_in_ms,
            } => {
                self.hub.renewed += 1;
                self.peers.ice = ice_servers;
                if renew_in_ms > 0 {
                    self.schedule_renewal(renew_in_ms as f64);
                }
            }
            ServerMessage::RoomClosed { reason } => {
                self.stop(format!("This room was closed: {reason}."));
            }
        }
    }
}
