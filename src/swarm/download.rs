//! Downloading: how many requests to keep in flight with each peer, and which blocks to ask for.

use super::*;

impl Swarm {
    pub(super) fn request_all(&mut self) {
        if !matches!(self.hashes, Hashes::Known(_)) || self.has_wanted() || self.storage_busy {
            return;
        }
        // Fastest peers first, so they get the blocks that are left (and endgame duplicates).
        let mut order: Vec<(f64, PeerId)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.ready)
            .map(|(&id, p)| (p.download.rate(), id))
            .collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, peer) in order {
            self.request_from(peer);
        }
    }

    /// How many requests to keep in flight to `p`, and the block size it takes.
    pub(super) fn pipeline(&self, p: &Peer) -> (usize, u32) {
        let block = block_size_for(self.cfg.block_size, p.max_message);
        let depth = p.pipeline_depth(
            self.now,
            block,
            self.cfg.target_latency_ms,
            self.cfg.min_pipeline,
            self.cfg.max_pipeline,
        );
        (depth, block)
    }

    pub(super) fn request_from(&mut self, peer: PeerId) {
        let now = self.now;
        // A deep pipeline is topped up once a quarter of it is free, not after every block:
        // the requests then leave together, in one message (`Frame::Batch`).
        let p = &self.peers[&peer];
        let (depth, _) = self.pipeline(p);
        let active = p.active();
        if active > 0 && depth.saturating_sub(active) < (depth / 4).max(1) {
            return;
        }
        loop {
            let p = &self.peers[&peer];
            let (depth, block) = self.pipeline(p);
            if p.active() >= depth || p.has.count() == 0 {
                return;
            }
            let mine: Vec<BlockRef> = p
                .outstanding
                .iter()
                .filter(|o| !o.released)
                .map(|o| o.block)
                .collect();
            let (have, wanted, verifying) = (&self.have, &self.wanted, &self.verifying);
            let busy = |piece: u32| {
                !wanted.get(piece) || have.get(piece) || verifying.contains_key(&piece)
            };
            let Some(pick) = self.picker.pick(
                peer,
                &p.has,
                block,
                &mine,
                &busy,
                self.unstarted,
                &mut self.rng,
            ) else {
                return;
            };
            self.stats.requests_sent += 1;
            self.stats.endgame_requests += u64::from(pick.duplicate);
            if pick.started {
                self.unstarted -= 1;
            }
            let p = self.peers.get_mut(&peer).expect("present");
            if p.active() == 0 {
                p.last_progress = now;
            }
            p.outstanding.push(Outstanding {
                block: pick.block,
                sent_at: now,
                deadline: u64::MAX,
                released: false,
            });
            self.send(peer, Frame::Request(pick.block));
        }
    }
}
