//! Connections: a data channel opening or closing, bans and strikes, and who to connect to (topology advice from the room's members).

use super::*;

impl Swarm {
    pub(super) fn on_connected(&mut self, peer: PeerId, max_message: u32) {
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

    pub(super) fn remove_peer(&mut self, peer: PeerId) {
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

    pub(super) fn drop_peer(&mut self, peer: PeerId, reason: String) {
        self.remove_peer(peer);
        self.out.push_back(Output::Disconnect { peer, reason });
    }

    pub(super) fn ban(&mut self, peer: PeerId, reason: String) {
        if !self.banned.insert(peer) {
            return;
        }
        self.out.push_back(Output::Event(Event::Banned {
            peer,
            reason: reason.clone(),
        }));
        self.drop_peer(peer, reason);
    }

    pub(super) fn strike(&mut self, peer: PeerId, what: &str) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.strikes += 1;
        if p.strikes > self.cfg.max_strikes {
            self.ban(peer, format!("too many protocol errors ({what})"));
        }
    }

    pub(super) fn on_members(&mut self, members: Vec<PeerId>) {
        self.members = members;
        let mut wanted = topology::neighbours(
            &self.cfg.topology,
            self.topology_salt,
            self.me,
            &self.members,
        );
        wanted.retain(|p| !self.banned.contains(p));
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
}
