//! Messages: decoding what a peer sent and acting on each frame; pieces completing, their verification, blame for a bad copy, and the selection of files.

use super::*;

impl Swarm {
    pub(super) fn on_message(&mut self, peer: PeerId, bytes: Bytes) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.ban(peer, format!("undecodable frame: {e}")),
        };
        match frame {
            Frame::Batch(frames) => {
                for frame in frames {
                    // One of them may have got the peer dropped or banned.
                    if !self.peers.contains_key(&peer) {
                        return;
                    }
                    self.on_frame(peer, frame);
                }
            }
            frame => self.on_frame(peer, frame),
        }
    }

    pub(super) fn on_frame(&mut self, peer: PeerId, frame: Frame) {
        let ready = self.peers[&peer].ready;
        match frame {
            Frame::Handshake {
                version,
                root,
                max_message,
                pieces,
            } => {
                if ready {
                    return self.strike(peer, "second handshake");
                }
                if version != PROTOCOL_VERSION {
                    return self.drop_peer(
                        peer,
                        format!("protocol version {version} is not {PROTOCOL_VERSION}"),
                    );
                }
                if root != self.root || pieces != self.layout.piece_count() {
                    return self.drop_peer(peer, "peer is in a different room".into());
                }
                if max_message < MIN_MESSAGE {
                    return self.drop_peer(
                        peer,
                        format!("max message {max_message} is below {MIN_MESSAGE}"),
                    );
                }
                let p = self.peers.get_mut(&peer).expect("checked above");
                p.ready = true;
                p.max_message = p.max_message.min(max_message);
                let bits = match &mut self.reveal {
                    Some(r) => r
                        .told
                        .entry(peer)
                        .or_insert_with(|| Bitfield::new(self.layout.piece_count()))
                        .to_wire(),
                    None => self.have.to_wire(),
                };
                self.send(peer, Frame::Bitfield(bits));
                if !self.wanted.is_complete() {
                    self.send(peer, Frame::Interested(self.wanted.to_wire()));
                }
                self.update_reveals();
            }
            _ if !ready => self.ban(peer, "message before handshake".into()),
            Frame::Bitfield(bits) => {
                let Some(has) = Bitfield::from_wire(&bits, self.layout.piece_count()) else {
                    return self.ban(peer, "malformed bitfield".into());
                };
                // A later bitfield adds to the earlier ones (a seeder ending super-seeding
                // announces the rest at once).
                let p = self.peers.get_mut(&peer).expect("ready peer");
                let mut added = Vec::new();
                for piece in has.iter_ones() {
                    if p.has.set(piece) {
                        added.push(piece);
                    }
                }
                // Reveals are recomputed only when something changed: the work grows with
                // pieces × peers, and repeated frames must not buy it again and again.
                if added.is_empty() {
                    return;
                }
                for piece in added {
                    self.picker.peer_has(piece);
                }
                self.maybe_fetch_hashes(peer);
                self.update_reveals();
            }
            Frame::Interested(bits) => {
                let Some(wants) = Bitfield::from_wire(&bits, self.layout.piece_count()) else {
                    return self.ban(peer, "malformed interest bitmap".into());
                };
                let p = self.peers.get_mut(&peer).expect("ready peer");
                if p.interest.as_ref() == Some(&wants) {
                    return;
                }
                p.interest = Some(wants);
                if self.reveal.is_none() {
                    return; // nothing to recompute
                }
                // A person changes the selection now and then (64 at once, then one a
                // second); a peer changing it without end is buying our reveal work.
                p.interest_changes += 1;
                let allowance =
                    MAX_INTEREST_CHANGES + self.now.saturating_sub(p.connected_ms) / 1000;
                if p.interest_changes > allowance {
                    return self.strike(peer, "interest changed too often");
                }
                self.update_reveals();
            }
            Frame::Have(piece) => {
                if piece >= self.layout.piece_count() {
                    return self.ban(peer, format!("HAVE for piece {piece} out of range"));
                }
                let new = self
                    .peers
                    .get_mut(&peer)
                    .expect("ready peer")
                    .has
                    .set(piece);
                if !new {
                    return; // a repeat changes nothing
                }
                self.picker.peer_has(piece);
                self.maybe_fetch_hashes(peer);
                self.update_reveals();
            }
            Frame::Request(block) => self.on_request(peer, block),
            Frame::Cancel(block) => {
                let p = self.peers.get_mut(&peer).expect("ready peer");
                p.wanted.retain(|(b, _)| *b != block);
            }
            Frame::Reject(block) => {
                self.stats.rejects_received += 1;
                let p = self.peers.get_mut(&peer).expect("ready peer");
                if let Some(i) = p.outstanding.iter().position(|o| o.block == block)
                    && !p.outstanding.swap_remove(i).released
                {
                    self.picker.release(&block);
                }
                // A peer that refuses a piece kept for it gives the piece back to everyone.
                self.picker.disown_piece(block.piece, peer);
            }
            Frame::Piece {
                piece,
                offset,
                data,
            } => self.on_piece(peer, piece, offset, data),
            Frame::HashRequest { start, count } => self.on_hash_request(peer, start, count),
            Frame::HashResponse { start, hashes } => self.on_hash_response(peer, start, hashes),
            Frame::Choke | Frame::Unchoke | Frame::KeepAlive => {}
            // The decoder allows no batch inside a batch.
            Frame::Batch(_) => self.strike(peer, "nested batch"),
        }
    }

    pub(super) fn on_request(&mut self, peer: PeerId, block: BlockRef) {
        let count = self.layout.piece_count();
        let p = self.peers.get(&peer).expect("ready peer");
        let valid = block.piece < count
            && u64::from(block.offset) + u64::from(block.len)
                <= u64::from(self.layout.piece_len(block.piece))
            && block.len as usize + PIECE_HEADER <= p.max_message as usize;
        if !valid {
            return self.strike(peer, "invalid request");
        }
        let hidden = self
            .reveal
            .as_ref()
            .is_some_and(|r| !r.told.get(&peer).is_some_and(|t| t.get(block.piece)));
        if !self.have.get(block.piece) || hidden || p.wanted.len() >= self.cfg.max_queued_requests {
            self.stats.rejects_sent += 1;
            return self.send(peer, Frame::Reject(block));
        }
        let p = self.peers.get_mut(&peer).expect("ready peer");
        if !p.wanted.iter().any(|(b, _)| *b == block) {
            p.wanted.push_back((block, self.now));
        }
    }

    pub(super) fn on_piece(&mut self, peer: PeerId, piece: u32, offset: u32, data: Bytes) {
        let block = BlockRef {
            piece,
            offset,
            len: data.len() as u32,
        };
        let now = self.now;
        let p = self.peers.get_mut(&peer).expect("ready peer");
        let Some(i) = p.outstanding.iter().position(|o| o.block == block) else {
            return self.strike(peer, "unrequested block");
        };
        let o = p.outstanding.swap_remove(i);
        p.delay
            .sample(now.saturating_sub(o.sent_at.max(p.last_progress)) as f64);
        p.last_progress = now;
        p.download.record(now, u64::from(block.len));
        if !o.released {
            self.picker.release(&block);
        }
        if self.have.get(piece)
            || self.verifying.contains_key(&piece)
            || !self.picker.receive(peer, &block, &data)
        {
            self.stats.wasted_bytes += data.len() as u64;
            return;
        }
        // Endgame: cancel copies of this block still requested from other peers.
        let mut cancels = Vec::new();
        let linger = self.now + self.cfg.max_timeout_ms;
        for (&other, op) in self.peers.iter_mut() {
            for o in op
                .outstanding
                .iter_mut()
                .filter(|o| !o.released && o.block.piece == piece)
            {
                if self.picker.covered(&o.block) {
                    o.released = true;
                    o.deadline = linger;
                    cancels.push((other, o.block));
                }
            }
        }
        for (other, b) in cancels {
            self.picker.release(&b);
            self.send(other, Frame::Cancel(b));
        }
        if let Some(done) = self.picker.take_complete(piece) {
            let sources = done.sources();
            let data = done.data.freeze();
            let verifying = Verifying {
                data: data.clone(),
                contributors: done.contributors,
                senders: sources,
            };
            self.verifying.insert(piece, verifying);
            self.out.push_back(Output::Verify { piece, data });
        }
    }

    pub(super) fn on_hashed(&mut self, piece: u32, digest: Hash) {
        let Some(Verifying {
            data,
            contributors,
            senders,
        }) = self.verifying.remove(&piece)
        else {
            return;
        };
        let Hashes::Known(manifest) = &self.hashes else {
            return;
        };
        if manifest.verify_digest(piece, data.len(), &digest) {
            self.blame_earlier_failure(piece, &data);
            self.accept_piece(piece, data);
            return;
        }
        // The piece starts over, from other peers where possible (if it is still wanted).
        self.unstarted += u32::from(self.wanted.get(piece));
        let peers: Vec<PeerId> = contributors.iter().map(|(p, _)| *p).collect();
        self.out.push_back(Output::Event(Event::PieceFailed {
            piece,
            peers: peers.clone(),
        }));
        if let [(peer, _)] = contributors[..] {
            // A piece from a single peer is certainly its fault.
            self.picker.suspect.remove(&piece);
            self.failed.remove(&piece);
            self.ban(
                peer,
                format!("sent data for piece {piece} that failed its hash check"),
            );
        } else {
            // Several contributors: nobody is blamed yet. The piece is fetched from one peer
            // next time; once it verifies, the failed copy is compared with it block by
            // block, and whoever sent a differing block is proven to have lied.
            self.picker.suspect.insert(piece);
            if self.failed.len() >= MAX_FAILED_KEPT {
                let oldest = *self.failed.keys().next().expect("non-empty");
                self.failed.remove(&oldest);
            }
            self.failed.insert(piece, FailedPiece { data, senders });
        }
    }

    /// A piece that failed with several contributors has now verified: ban every peer whose
    /// sub-block differs from the good copy (and only those).
    pub(super) fn blame_earlier_failure(&mut self, piece: u32, good: &Bytes) {
        let Some(FailedPiece { data: bad, senders }) = self.failed.remove(&piece) else {
            return;
        };
        let mut liars = BTreeSet::new();
        for (i, from) in senders.iter().enumerate() {
            let start = i * SUB_BLOCK as usize;
            let end = (start + SUB_BLOCK as usize).min(good.len());
            if let Some(peer) = from
                && bad.get(start..end) != good.get(start..end)
            {
                liars.insert(*peer);
            }
        }
        for peer in liars {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.bad_pieces += 1;
            }
            self.ban(
                peer,
                format!("sent a block of piece {piece} that differs from the verified data"),
            );
        }
    }

    pub(super) fn accept_piece(&mut self, piece: u32, data: Bytes) {
        if !self.have.set(piece) {
            return;
        }
        self.picker.suspect.remove(&piece);
        self.have_bytes += data.len() as u64;
        self.out.push_back(Output::Store { piece, data });
        // Everyone hears of it, seeders included: a super-seeding peer learns from these
        // which pieces have spread. A peer that has the piece needs the news less urgently
        // than one that may ask us for it: its HAVE waits a little to share a message.
        for peer in self.ready_peers() {
            if self.peers[&peer].has.get(piece) {
                let now = self.now;
                let (_, haves) = self.lazy_haves.entry(peer).or_insert((now, Vec::new()));
                haves.push(piece);
            } else {
                self.send(peer, Frame::Have(piece));
            }
        }
        self.out.push_back(Output::Event(Event::Progress {
            have: self.have.count(),
            total: self.layout.piece_count(),
            bytes: self.have_bytes,
        }));
        self.announce_completion();
    }

    /// Peers whose handshake we accepted, collected so the caller may send to them.
    pub(super) fn ready_peers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.ready)
            .map(|(&id, _)| id)
            .collect()
    }

    pub(super) fn announce_completion(&mut self) {
        if self.has_wanted() && !self.completed_announced {
            self.completed_announced = true;
            self.out.push_back(Output::Event(Event::Completed));
        }
    }

    /// A new file selection: recount what is left to start, and announce completion again
    /// once the newly selected files are in too.
    pub(super) fn on_select(&mut self, files: &[bool]) {
        let mut wanted = Bitfield::new(self.layout.piece_count());
        for (file, _) in files.iter().enumerate().filter(|(_, on)| **on) {
            if file < self.layout.file_sizes.len() {
                for piece in self.layout.file_pieces(file) {
                    wanted.set(piece);
                }
            }
        }
        if wanted != self.wanted {
            for peer in self.ready_peers() {
                self.send(peer, Frame::Interested(wanted.to_wire()));
            }
        }
        self.wanted = wanted;
        // Half-downloaded pieces of files no longer selected are dropped (blocks still in
        // flight for them are wasted): kept, they would hold the partial-piece slots that
        // new pieces need, and could complete after the selected files were closed.
        let wanted = &self.wanted;
        self.picker.partial.retain(|&piece, _| wanted.get(piece));
        let (have, verifying, partial) = (&self.have, &self.verifying, &self.picker.partial);
        self.unstarted = self
            .wanted
            .iter_ones()
            .filter(|&p| !have.get(p) && !verifying.contains_key(&p) && !partial.contains_key(&p))
            .count() as u32;
        if !self.has_wanted() {
            self.completed_announced = false;
        }
        self.announce_completion();
    }
}
