//! Uploading: which queued request is served next, and answering it once the shell has read the block.

use super::*;

impl Swarm {
    /// Starts reads for queued requests within the upload slots. A request that has waited
    /// `max_serve_wait_ms` goes first (oldest first), so no peer is starved; otherwise the
    /// block of the least available piece among our peers goes first, so fresh pieces spread
    /// a hop further while common ones wait. Ties go round-robin over peers.
    pub(super) fn serve(&mut self) {
        while self.reads_in_flight < self.cfg.upload_slots {
            let start = self.serve_cursor.unwrap_or(PeerId(0));
            let overdue = self.now.saturating_sub(self.cfg.max_serve_wait_ms);
            // Overdue requests first, oldest first; then the least-spread pieces, and among
            // those the earliest in the file: requests arrive in batches, and a seeder that
            // answers a batch in file order reads its file in long runs (docs/benchmarks.md, P1).
            let mut best: Option<(ServeKey, PeerId, usize)> = None;
            for (&id, p) in self
                .peers
                .range((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded))
                .chain(self.peers.range(..=start))
            {
                if p.send_blocked {
                    continue;
                }
                for (i, &(b, at)) in p.wanted.iter().enumerate() {
                    let key = if at <= overdue {
                        ServeKey {
                            not_overdue: false,
                            rank: at,
                            piece: 0,
                            offset: 0,
                        }
                    } else {
                        ServeKey {
                            not_overdue: true,
                            rank: u64::from(self.picker.availability(b.piece)),
                            piece: b.piece,
                            offset: b.offset,
                        }
                    };
                    if best.is_none_or(|(k, _, _)| key < k) {
                        best = Some((key, id, i));
                    }
                }
            }
            let Some((_, peer, i)) = best else { break };
            let (block, _) = self
                .peers
                .get_mut(&peer)
                .expect("found above")
                .wanted
                .remove(i)
                .expect("index from the scan");
            self.serve_cursor = Some(peer);
            self.reads_in_flight += 1;
            self.out.push_back(Output::ReadBlock { peer, block });
        }
    }

    pub(super) fn on_block_read(&mut self, peer: PeerId, block: BlockRef, data: Option<Bytes>) {
        self.reads_in_flight = self.reads_in_flight.saturating_sub(1);
        if !self.peers.contains_key(&peer) {
            return;
        }
        match data {
            Some(data) if data.len() == block.len as usize => {
                self.peers
                    .get_mut(&peer)
                    .expect("checked")
                    .upload
                    .record(self.now, data.len() as u64);
                self.send(
                    peer,
                    Frame::Piece {
                        piece: block.piece,
                        offset: block.offset,
                        data,
                    },
                );
            }
            _ => self.send(peer, Frame::Reject(block)),
        }
    }
}
