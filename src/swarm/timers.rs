//! Time and sending: timeouts, keep-alives, rate samples, and the per-peer outboxes that batch small frames into one message.

use super::*;

impl Swarm {
    pub(super) fn on_time(&mut self) {
        let now = self.now;
        // Timed-out requests go back to the pool (a late arrival is still welcome) and the
        // peer's pipeline shrinks for a while; released requests are forgotten after a grace.
        let mut released = Vec::new();
        let linger = now + self.cfg.max_timeout_ms;
        let (min, max, initial) = (
            self.cfg.min_timeout_ms,
            self.cfg.max_timeout_ms,
            self.cfg.initial_timeout_ms,
        );
        let mut stalled = Vec::new();
        for (&id, p) in self.peers.iter_mut() {
            p.outstanding.retain(|o| !(o.released && o.deadline <= now));
            let timeout = p.delay.timeout(min, max, initial);
            if p.active() == 0 || now < p.last_progress + timeout {
                continue;
            }
            // Stalled: everything we asked of it goes to other peers.
            stalled.push(id);
            for o in p.outstanding.iter_mut().filter(|o| !o.released) {
                o.released = true;
                o.deadline = linger;
                released.push(o.block);
            }
            p.snubbed_until = now + timeout;
            // The wait itself is evidence about this peer's delay.
            p.delay.sample((now - p.last_progress) as f64);
        }
        self.stats.stalls += stalled.len() as u64;
        for b in released {
            self.picker.release(&b);
        }
        // A piece kept for one peer after a failed hash must not wait on that peer forever:
        // once it stalls, anyone may supply the piece again.
        for peer in stalled {
            self.picker.disown(peer);
        }
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + self.cfg.tick_ms;
        self.retry_hashes();
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in ids {
            let p = self.peers.get_mut(&peer).expect("listed");
            p.download.roll(now);
            p.upload.roll(now);
            let stats = Event::PeerStats {
                peer,
                down_rate: p.download.rate(),
                up_rate: p.upload.rate(),
                pieces: p.has.count(),
            };
            self.out.push_back(Output::Event(stats));
            if now.saturating_sub(self.last_sent.get(&peer).copied().unwrap_or(0))
                >= self.cfg.keepalive_ms
            {
                self.send(peer, Frame::KeepAlive);
            }
        }
    }

    /// Small frames wait in the outbox until the input is handled ([`Self::flush_outbox`]);
    /// a larger one first sends what waits for that peer, so frames keep their order.
    pub(super) fn send(&mut self, peer: PeerId, frame: Frame) {
        self.last_sent.insert(peer, self.now);
        if frame.batchable() {
            self.outbox.entry(peer).or_default().push(frame);
        } else {
            self.flush_to(peer);
            self.out.push_back(Output::Send { peer, frame });
        }
    }

    /// Sends the frames waiting for `peer`, its lazy HAVEs with them, in as few messages as
    /// the batch bound allows.
    pub(super) fn flush_to(&mut self, peer: PeerId) {
        let Some(mut frames) = self.outbox.remove(&peer) else {
            return;
        };
        if let Some((_, haves)) = self.lazy_haves.remove(&peer) {
            frames.extend(haves.into_iter().map(Frame::Have));
        }
        while !frames.is_empty() {
            let rest = frames.split_off(frames.len().min(MAX_BATCH));
            let frame = if frames.len() == 1 {
                frames.pop().expect("one frame")
            } else {
                Frame::Batch(frames)
            };
            self.out.push_back(Output::Send { peer, frame });
            frames = rest;
        }
    }

    /// End of an input: lazy HAVEs that waited long enough join the outbox, and every
    /// peer's outbox goes out.
    pub(super) fn flush_outbox(&mut self) {
        let due = self.now.saturating_sub(self.cfg.lazy_have_ms);
        let ready: Vec<PeerId> = self
            .lazy_haves
            .iter()
            .filter(|(_, (since, haves))| *since <= due || haves.len() >= MAX_BATCH / 2)
            .map(|(&peer, _)| peer)
            .collect();
        for peer in ready {
            self.outbox.entry(peer).or_default();
        }
        let peers: Vec<PeerId> = self.outbox.keys().copied().collect();
        for peer in peers {
            self.flush_to(peer);
        }
    }
}
