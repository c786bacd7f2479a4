//! The hub's routing rules, with no sockets, no clock and no Redis: each call returns the
//! deliveries the shell must make (a sans-IO core, like the swarm). Rooms hold *local*
//! members (sockets on this instance) and *remote* ones (heard of over the bus); only local
//! members get deliveries.

use crate::protocol::PeerId;
use crate::protocol::RoomId;
use crate::protocol::signal::{ServerMessage, SignalPayload};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A message for one local socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub to: PeerId,
    pub msg: ServerMessage,
}

/// What happened in a room, as instances tell each other over the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RoomEvent {
    Joined {
        room: RoomId,
        peer: PeerId,
    },
    Left {
        room: RoomId,
        peer: PeerId,
    },
    Signal {
        room: RoomId,
        from: PeerId,
        to: PeerId,
        payload: SignalPayload,
    },
    /// A signal relayed over the bus found its target `busy` (its queue half full): the
    /// target's instance tells the sender `to`, as a local sender would be told.
    Refused {
        room: RoomId,
        busy: PeerId,
        to: PeerId,
    },
    /// The owner revoked the room: every instance tells its sockets in it.
    Closed {
        room: RoomId,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("the room is full ({0} peers)")]
    RoomFull(usize),
    #[error("peer {0} is not in this room")]
    UnknownPeer(u64),
    #[error("a peer cannot signal itself")]
    SelfSignal,
    #[error("the owner closed this room")]
    RoomClosed,
    #[error("peer {0} is not keeping up with its messages; try again later")]
    Busy(u64),
}

/// Where a signal goes: straight to a local socket, or over the bus to another instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Local(Delivery),
    Remote(RoomEvent),
}

#[derive(Debug, Default)]
struct Members {
    local: BTreeSet<PeerId>,
    remote: BTreeSet<PeerId>,
}

impl Members {
    fn contains(&self, peer: PeerId) -> bool {
        self.local.contains(&peer) || self.remote.contains(&peer)
    }

    fn len(&self) -> usize {
        self.local.len() + self.remote.len()
    }

    fn announce(&self, except: PeerId, msg: ServerMessage) -> Vec<Delivery> {
        self.local
            .iter()
            .filter(|&&p| p != except)
            .map(|&to| Delivery {
                to,
                msg: msg.clone(),
            })
            .collect()
    }
}

/// Who is in which room (local and remote members, closed rooms) and where each message
/// goes: the hub's state, without any I/O.
#[derive(Debug, Default)]
pub struct RoomRouter {
    rooms: HashMap<RoomId, Members>,
    /// Rooms revoked while this process runs: a socket that passed the room check just
    /// before the revocation is still refused here. (After a restart the database check
    /// refuses them.) 16 bytes per revoked room.
    closed: HashSet<RoomId>,
}

impl RoomRouter {
    /// A socket on this instance joins. Returns everyone else already in the room and the
    /// announcements for the local ones (remote instances hear of it over the bus).
    pub fn join(
        &mut self,
        room: RoomId,
        peer: PeerId,
        max_peers: usize,
    ) -> Result<(Vec<PeerId>, Vec<Delivery>), HubError> {
        if self.closed.contains(&room) {
            return Err(HubError::RoomClosed);
        }
        let members = self.rooms.entry(room).or_default();
        if members.len() >= max_peers && !members.contains(peer) {
            return Err(HubError::RoomFull(max_peers));
        }
        members.remote.remove(&peer);
        members.local.insert(peer);
        let others = members
            .local
            .iter()
            .chain(&members.remote)
            .copied()
            .filter(|&p| p != peer)
            .collect();
        Ok((
            others,
            members.announce(peer, ServerMessage::PeerJoined { peer }),
        ))
    }

    /// A local socket left (on purpose or not).
    pub fn leave(&mut self, room: RoomId, peer: PeerId) -> Vec<Delivery> {
        let Some(members) = self.rooms.get_mut(&room) else {
            return Vec::new();
        };
        if !members.local.remove(&peer) {
            return Vec::new();
        }
        let out = members.announce(peer, ServerMessage::PeerLeft { peer });
        self.forget_if_idle(room);
        out
    }

    /// A local peer signals another peer of its room. The sender is whoever owns the socket.
    pub fn signal(
        &self,
        room: RoomId,
        from: PeerId,
        to: PeerId,
        payload: SignalPayload,
    ) -> Result<Route, HubError> {
        if from == to {
            return Err(HubError::SelfSignal);
        }
        let members = self.rooms.get(&room);
        match members {
            Some(m) if m.local.contains(&to) => Ok(Route::Local(Delivery {
                to,
                msg: ServerMessage::Signal { from, payload },
            })),
            Some(m) if m.remote.contains(&to) => Ok(Route::Remote(RoomEvent::Signal {
                room,
                from,
                to,
                payload,
            })),
            _ => Err(HubError::UnknownPeer(to.0)),
        }
    }

    /// Another instance reports something. Only rooms with local members care.
    pub fn apply_remote(&mut self, event: RoomEvent) -> Vec<Delivery> {
        match event {
            RoomEvent::Joined { room, peer } => match self.rooms.get_mut(&room) {
                Some(m) if !m.contains(peer) => {
                    m.remote.insert(peer);
                    m.announce(peer, ServerMessage::PeerJoined { peer })
                }
                _ => Vec::new(),
            },
            RoomEvent::Left { room, peer } => match self.rooms.get_mut(&room) {
                Some(m) if m.remote.contains(&peer) => {
                    m.remote.remove(&peer);
                    m.announce(peer, ServerMessage::PeerLeft { peer })
                }
                _ => Vec::new(),
            },
            RoomEvent::Signal {
                room,
                from,
                to,
                payload,
            } => match self.rooms.get(&room) {
                Some(m) if m.local.contains(&to) && m.remote.contains(&from) => vec![Delivery {
                    to,
                    msg: ServerMessage::Signal { from, payload },
                }],
                _ => Vec::new(),
            },
            RoomEvent::Refused { room, busy, to } => match self.rooms.get(&room) {
                Some(m) if m.local.contains(&to) && m.remote.contains(&busy) => vec![Delivery {
                    to,
                    msg: ServerMessage::Error {
                        message: HubError::Busy(busy.0).to_string(),
                    },
                }],
                _ => Vec::new(),
            },
            RoomEvent::Closed { room, reason } => self.close_room(room, &reason),
        }
    }

    /// The room is closed: each local socket in it gets the news (and then closes).
    pub fn close_room(&mut self, room: RoomId, reason: &str) -> Vec<Delivery> {
        self.closed.insert(room);
        let Some(members) = self.rooms.get(&room) else {
            return Vec::new();
        };
        members
            .local
            .iter()
            .map(|&to| Delivery {
                to,
                msg: ServerMessage::RoomClosed {
                    reason: reason.to_owned(),
                },
            })
            .collect()
    }

    /// Everyone this instance knows to be in the room (local and remote).
    pub fn member_count(&self, room: RoomId) -> usize {
        self.rooms.get(&room).map_or(0, Members::len)
    }

    /// Remote members read from shared presence when a local peer joins, without
    /// announcements (the joining peer gets them in its welcome).
    pub fn add_remote_members(&mut self, room: RoomId, peers: impl IntoIterator<Item = PeerId>) {
        if let Some(m) = self.rooms.get_mut(&room) {
            for p in peers {
                if !m.local.contains(&p) {
                    m.remote.insert(p);
                }
            }
        }
    }

    /// Rooms with sockets on this instance, and those sockets.
    pub fn local_members(&self) -> Vec<(RoomId, Vec<PeerId>)> {
        self.rooms
            .iter()
            .filter(|(_, m)| !m.local.is_empty())
            .map(|(&r, m)| (r, m.local.iter().copied().collect()))
            .collect()
    }

    pub fn remote_members(&self, room: RoomId) -> Vec<PeerId> {
        self.rooms
            .get(&room)
            .map(|m| m.remote.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn is_remote_member(&self, room: RoomId, peer: PeerId) -> bool {
        self.rooms
            .get(&room)
            .is_some_and(|m| m.remote.contains(&peer))
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// A room without local sockets is dropped: nobody here needs its news.
    fn forget_if_idle(&mut self, room: RoomId) {
        if self.rooms.get(&room).is_some_and(|m| m.local.is_empty()) {
            self.rooms.remove(&room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: PeerId = PeerId(1);
    const B: PeerId = PeerId(2);
    const C: PeerId = PeerId(3);

    fn room(n: u8) -> RoomId {
        RoomId::from_bytes([n; 16])
    }

    fn offer() -> SignalPayload {
        SignalPayload::Offer { sdp: "v=0".into() }
    }

    #[test]
    fn joins_are_announced_to_the_others_only() {
        let mut hub = RoomRouter::default();
        let (others, out) = hub.join(room(1), A, 10).unwrap();
        assert!(others.is_empty() && out.is_empty());
        let (others, out) = hub.join(room(1), B, 10).unwrap();
        assert_eq!(others, vec![A]);
        assert_eq!(
            out,
            vec![Delivery {
                to: A,
                msg: ServerMessage::PeerJoined { peer: B }
            }]
        );
        // Another room hears nothing.
        let (others, out) = hub.join(room(2), C, 10).unwrap();
        assert!(others.is_empty() && out.is_empty());
    }

    #[test]
    fn closing_a_room_tells_its_local_members_only() {
        let mut hub = RoomRouter::default();
        hub.join(room(1), A, 10).unwrap();
        hub.join(room(1), B, 10).unwrap();
        hub.join(room(2), C, 10).unwrap();
        hub.add_remote_members(room(1), [PeerId(99)]);
        assert_eq!(hub.member_count(room(1)), 3);
        let closed = |to| Delivery {
            to,
            msg: ServerMessage::RoomClosed {
                reason: "gone".into(),
            },
        };
        let mut out = hub.close_room(room(1), "gone");
        out.sort_by_key(|d| d.to);
        assert_eq!(out, vec![closed(A), closed(B)]);
        // Another instance's revocation arrives over the bus.
        let out = hub.apply_remote(RoomEvent::Closed {
            room: room(2),
            reason: "gone".into(),
        });
        assert_eq!(out, vec![closed(C)]);
        assert!(hub.close_room(room(3), "gone").is_empty());
        // Nobody joins a closed room any more, however they got past the room check.
        assert_eq!(hub.join(room(1), PeerId(5), 10), Err(HubError::RoomClosed));
        assert_eq!(hub.join(room(2), PeerId(5), 10), Err(HubError::RoomClosed));
    }

    #[test]
    fn leaves_are_announced_and_empty_rooms_forgotten() {
        let mut hub = RoomRouter::default();
        hub.join(room(1), A, 10).unwrap();
        hub.join(room(1), B, 10).unwrap();
        assert_eq!(
            hub.leave(room(1), B),
            vec![Delivery {
                to: A,
                msg: ServerMessage::PeerLeft { peer: B }
            }]
        );
        assert!(
            hub.leave(room(1), B).is_empty(),
            "a second leave is a no-op"
        );
        assert!(hub.leave(room(1), A).is_empty());
        assert_eq!(hub.room_count(), 0);
    }

    #[test]
    fn signals_go_only_to_members_of_the_same_room_stamped_with_the_sender() {
        let mut hub = RoomRouter::default();
        hub.join(room(1), A, 10).unwrap();
        hub.join(room(1), B, 10).unwrap();
        hub.join(room(2), C, 10).unwrap();
        assert_eq!(
            hub.signal(room(1), A, B, offer()).unwrap(),
            Route::Local(Delivery {
                to: B,
                msg: ServerMessage::Signal {
                    from: A,
                    payload: offer()
                }
            })
        );
        assert_eq!(
            hub.signal(room(1), A, C, offer()),
            Err(HubError::UnknownPeer(3))
        );
        assert_eq!(
            hub.signal(room(1), A, A, offer()),
            Err(HubError::SelfSignal)
        );
    }

    #[test]
    fn rooms_have_a_size_limit() {
        let mut hub = RoomRouter::default();
        hub.join(room(1), A, 2).unwrap();
        hub.join(room(1), B, 2).unwrap();
        assert_eq!(hub.join(room(1), C, 2), Err(HubError::RoomFull(2)));
        hub.add_remote_members(room(1), [PeerId(9)]);
        hub.leave(room(1), B);
        assert_eq!(
            hub.join(room(1), C, 2),
            Err(HubError::RoomFull(2)),
            "remote members count too"
        );
    }

    #[test]
    fn remote_members_are_announced_signalled_through_the_bus_and_leave() {
        let mut hub = RoomRouter::default();
        hub.join(room(1), A, 10).unwrap();
        let out = hub.apply_remote(RoomEvent::Joined {
            room: room(1),
            peer: B,
        });
        assert_eq!(
            out,
            vec![Delivery {
                to: A,
                msg: ServerMessage::PeerJoined { peer: B }
            }]
        );
        // A repeated join (presence read and bus event racing) is announced once.
        assert!(
            hub.apply_remote(RoomEvent::Joined {
                room: room(1),
                peer: B
            })
            .is_empty()
        );
        assert_eq!(
            hub.signal(room(1), A, B, offer()).unwrap(),
            Route::Remote(RoomEvent::Signal {
                room: room(1),
                from: A,
                to: B,
                payload: offer()
            })
        );
        let incoming = RoomEvent::Signal {
            room: room(1),
            from: B,
            to: A,
            payload: offer(),
        };
        assert_eq!(hub.apply_remote(incoming).len(), 1);
        // A remote instance cannot make a non-member speak, nor reach another room.
        let forged = RoomEvent::Signal {
            room: room(1),
            from: C,
            to: A,
            payload: offer(),
        };
        assert!(hub.apply_remote(forged).is_empty());
        assert_eq!(
            hub.apply_remote(RoomEvent::Left {
                room: room(1),
                peer: B
            }),
            vec![Delivery {
                to: A,
                msg: ServerMessage::PeerLeft { peer: B }
            }]
        );
        // Rooms without local members ignore the bus.
        assert!(
            hub.apply_remote(RoomEvent::Joined {
                room: room(7),
                peer: C
            })
            .is_empty()
        );
        assert_eq!(hub.room_count(), 1);
    }

    /// A refusal from another instance reaches the local sender as an error, and only a
    /// local sender, about a peer the room knows as remote.
    #[test]
    fn a_remote_refusal_reaches_the_local_sender() {
        let mut hub = RoomRouter::default();
        let (room, me, remote) = (room(1), A, B);
        hub.join(room, me, 10).unwrap();
        hub.apply_remote(RoomEvent::Joined { room, peer: remote });
        let out = hub.apply_remote(RoomEvent::Refused {
            room,
            busy: remote,
            to: me,
        });
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, me);
        assert!(
            matches!(&out[0].msg, ServerMessage::Error { message } if message.contains("not keeping up")),
            "{:?}",
            out[0].msg
        );
        // Naming a peer the room does not know as remote delivers nothing.
        let forged = RoomEvent::Refused {
            room,
            busy: C,
            to: me,
        };
        assert!(hub.apply_remote(forged).is_empty());
    }
}
