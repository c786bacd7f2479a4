//! Super-seeding: while this peer is the only full copy, each peer is shown only a few pieces at a time, so every piece gets out once before any goes out twice.

use super::*;

impl Swarm {
    /// Tops up each peer's revealed pieces, or ends super-seeding once every piece has a
    /// copy among our peers.
    pub(super) fn update_reveals(&mut self) {
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
}
