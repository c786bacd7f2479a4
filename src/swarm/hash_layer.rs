//! The piece-hash layer: a receiver without it fetches it from a peer in chunks and checks it against the room's Merkle root before downloading anything.

use super::*;

impl Swarm {
    pub(super) fn maybe_fetch_hashes(&mut self, peer: PeerId) {
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
    pub(super) fn retry_hashes(&mut self) {
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

    pub(super) fn on_hash_request(&mut self, peer: PeerId, start: u32, count: u32) {
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

    pub(super) fn on_hash_response(&mut self, peer: PeerId, start: u32, hashes: Vec<Hash>) {
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
}
