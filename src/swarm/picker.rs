//! How a download chooses what to ask for next.
//!
//! 1. Finish what is started: blocks of pieces already in progress come first, the piece
//!    closest to completion first, so pieces complete (and can be verified and re-shared)
//!    as early as possible.
//! 2. Otherwise start the rarest piece the peer has, counting copies among connected peers,
//!    with a random tie-break so peers spread over different pieces.
//! 3. Endgame: when every missing block is already requested, ask a second peer for blocks
//!    still in flight (at most `max_duplicates` requests per block); the first copy to arrive
//!    wins and the others are cancelled.
//!
//! Pieces are tracked in 16 KiB sub-blocks; a request covers a run of free sub-blocks up to
//! the peer's block size, so peers with different message limits share one piece.

use super::bitfield::Bitfield;
use super::rng::Rng;
use crate::protocol::manifest::Layout;
use crate::protocol::wire::BlockRef;
use bytes::BytesMut;
use std::collections::BTreeMap;

pub const SUB_BLOCK: u32 = 16 * 1024;

#[derive(Debug, Clone, Copy, Default)]
struct Sub {
    requests: u8,
    received: bool,
    /// Who sent these bytes, so a failed piece can later be blamed block by block.
    from: Option<super::PeerId>,
}

/// A piece being downloaded.
#[derive(Debug)]
pub struct Partial {
    pub data: BytesMut,
    subs: Vec<Sub>,
    received: u32,
    free: u32,
    /// Bytes each peer contributed, to blame the right peers if the hash fails.
    pub contributors: Vec<(super::PeerId, u32)>,
    /// A piece that failed before is fetched from one peer only, so blame is certain.
    owner: Option<super::PeerId>,
}

impl Partial {
    fn new(len: u32) -> Self {
        let n = len.div_ceil(SUB_BLOCK);
        Self {
            data: BytesMut::zeroed(len as usize),
            subs: vec![Sub::default(); n as usize],
            received: 0,
            free: n,
            contributors: Vec::new(),
            owner: None,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.received as usize == self.subs.len()
    }

    /// The peer this piece was kept for gives it back (it refused, stalled or left): what
    /// it sent of the piece goes too. Kept, its blocks would mix with others' again, and a
    /// bad one among them would fail the piece with nobody to blame.
    fn give_back(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        for s in &mut self.subs {
            if s.received && s.from == Some(owner) {
                s.received = false;
                s.from = None;
                self.received -= 1;
                if s.requests == 0 {
                    self.free += 1;
                }
            }
        }
        self.contributors.retain(|(peer, _)| *peer != owner);
    }

    /// The sender of each sub-block, in order.
    pub fn sources(&self) -> Vec<Option<super::PeerId>> {
        self.subs.iter().map(|s| s.from).collect()
    }
}

#[derive(Debug)]
pub struct Picker {
    pub layout: Layout,
    /// Copies of each piece among connected, handshaken peers.
    availability: Vec<u32>,
    pub partial: BTreeMap<u32, Partial>,
    /// Most pieces in progress at once, and most bytes they may hold.
    max_partial: usize,
    max_partial_bytes: u64,
    pub max_duplicates: u8,
    /// Pieces that failed verification with several contributors ("parole", as libtorrent
    /// calls it): next time one peer supplies the whole piece.
    pub suspect: std::collections::BTreeSet<u32>,
}

/// What a pick returns: the block, and whether it duplicates a request in flight (endgame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub block: BlockRef,
    pub duplicate: bool,
    /// The block starts a piece that was not in progress before.
    pub started: bool,
}

impl Picker {
    pub fn new(
        layout: Layout,
        max_partial: usize,
        max_partial_bytes: u64,
        max_duplicates: u8,
    ) -> Self {
        let n = layout.piece_count() as usize;
        Self {
            layout,
            availability: vec![0; n],
            partial: BTreeMap::new(),
            max_partial,
            max_partial_bytes,
            max_duplicates,
            suspect: Default::default(),
        }
    }

    pub fn peer_has(&mut self, piece: u32) {
        self.availability[piece as usize] += 1;
    }

    pub fn peer_lost(&mut self, piece: u32) {
        let a = &mut self.availability[piece as usize];
        *a = a.saturating_sub(1);
    }

    pub fn availability(&self, piece: u32) -> u32 {
        self.availability[piece as usize]
    }

    fn partial_bytes(&self) -> u64 {
        self.partial.values().map(|p| p.data.len() as u64).sum()
    }

    /// Chooses the next block to request from a peer that has `has`, with block size `block`
    /// (a multiple of SUB_BLOCK), given the requests already outstanding to it. `busy` are
    /// pieces we have, are verifying or no longer want; `unstarted` counts missing pieces not yet started
    /// anywhere (endgame waits until it is zero).
    #[allow(clippy::too_many_arguments)]
    pub fn pick(
        &mut self,
        peer: super::PeerId,
        has: &Bitfield,
        block: u32,
        outstanding: &[BlockRef],
        busy: &dyn Fn(u32) -> bool,
        unstarted: u32,
        rng: &mut Rng,
    ) -> Option<Pick> {
        let run = (block / SUB_BLOCK).max(1);
        // 1. Started pieces, closest to completion first.
        let mut best: Option<(u32, u32)> = None;
        // A started piece of a file no longer selected waits (`busy`): it is not finished
        // after the download has closed its files, and resumes if selected again.
        for (&piece, p) in &self.partial {
            let allowed = p.owner.is_none_or(|o| o == peer);
            if p.free > 0
                && allowed
                && has.get(piece)
                && !busy(piece)
                && best.is_none_or(|(_, r)| p.received > r)
            {
                best = Some((piece, p.received));
            }
        }
        if let Some((piece, _)) = best {
            return self.take_run(piece, run).map(|block| Pick {
                block,
                duplicate: false,
                started: false,
            });
        }
        // 2. Rarest piece not started yet, random among equals.
        if self.partial.len() < self.max_partial && self.partial_bytes() < self.max_partial_bytes {
            let mut chosen: Option<u32> = None;
            let mut rarest = u32::MAX;
            let mut ties = 0u64;
            for piece in has.iter_ones() {
                if busy(piece) || self.partial.contains_key(&piece) {
                    continue;
                }
                let a = self.availability[piece as usize];
                if a < rarest {
                    rarest = a;
                    chosen = Some(piece);
                    ties = 1;
                } else if a == rarest {
                    ties += 1;
                    if rng.below(ties) == 0 {
                        chosen = Some(piece);
                    }
                }
            }
            if let Some(piece) = chosen {
                let len = self.layout.piece_len(piece);
                let mut partial = Partial::new(len);
                if self.suspect.contains(&piece) {
                    partial.owner = Some(peer);
                }
                self.partial.insert(piece, partial);
                return self.take_run(piece, run).map(|block| Pick {
                    block,
                    duplicate: false,
                    started: true,
                });
            }
        }
        // 3. Endgame: only when nothing is left to start anywhere and nothing is free.
        if unstarted > 0
            || self
                .partial
                .iter()
                .any(|(&piece, p)| p.free > 0 && !busy(piece))
        {
            return None;
        }
        let max_dup = self.max_duplicates;
        let candidates: Vec<u32> = self
            .partial
            .iter()
            .filter(|(p, part)| has.get(**p) && part.owner.is_none() && !busy(**p))
            .map(|(&p, _)| p)
            .collect();
        for piece in candidates {
            let mine: Vec<(u32, u32)> = outstanding
                .iter()
                .filter(|b| b.piece == piece)
                .map(|b| (b.offset / SUB_BLOCK, (b.offset + b.len).div_ceil(SUB_BLOCK)))
                .collect();
            let ok = |i: u32, s: &Sub| {
                !s.received
                    && s.requests < max_dup
                    && !mine.iter().any(|&(a, b)| (a..b).contains(&i))
            };
            let p = &self.partial[&piece];
            if let Some(start) = (0..p.subs.len() as u32).find(|&i| ok(i, &p.subs[i as usize])) {
                let block = self.claim(piece, start, run, ok);
                return Some(Pick {
                    block,
                    duplicate: true,
                    started: false,
                });
            }
        }
        None
    }

    fn take_run(&mut self, piece: u32, run: u32) -> Option<BlockRef> {
        let free = |_: u32, s: &Sub| s.requests == 0 && !s.received;
        let p = self.partial.get(&piece)?;
        let start = p.subs.iter().position(|s| free(0, s))? as u32;
        Some(self.claim(piece, start, run, free))
    }

    /// Marks up to `run` consecutive sub-blocks from `start` (while `ok` holds) as requested.
    fn claim(
        &mut self,
        piece: u32,
        start: u32,
        run: u32,
        ok: impl Fn(u32, &Sub) -> bool,
    ) -> BlockRef {
        let len = self.layout.piece_len(piece);
        let p = self
            .partial
            .get_mut(&piece)
            .expect("claimed piece is in progress");
        let mut end = start;
        while end < start + run && (end as usize) < p.subs.len() && ok(end, &p.subs[end as usize]) {
            let s = &mut p.subs[end as usize];
            if s.requests == 0 {
                p.free -= 1;
            }
            s.requests += 1;
            end += 1;
        }
        let offset = start * SUB_BLOCK;
        let stop = (end * SUB_BLOCK).min(len);
        BlockRef {
            piece,
            offset,
            len: stop - offset,
        }
    }

    /// A request is over (arrived, timed out, rejected, cancelled or its peer left).
    pub fn release(&mut self, block: &BlockRef) {
        if let Some(p) = self.partial.get_mut(&block.piece) {
            for i in block.offset / SUB_BLOCK..(block.offset + block.len).div_ceil(SUB_BLOCK) {
                let s = &mut p.subs[i as usize];
                if s.requests > 0 {
                    s.requests -= 1;
                    if s.requests == 0 && !s.received {
                        p.free += 1;
                    }
                }
            }
        }
    }

    /// Stores arrived data; returns true if it added anything new.
    pub fn receive(&mut self, from: super::PeerId, block: &BlockRef, data: &[u8]) -> bool {
        let Some(p) = self.partial.get_mut(&block.piece) else {
            return false;
        };
        let mut added = 0u32;
        for i in block.offset / SUB_BLOCK..(block.offset + block.len).div_ceil(SUB_BLOCK) {
            let s = &mut p.subs[i as usize];
            if s.received {
                continue;
            }
            if s.requests == 0 {
                p.free -= 1;
            }
            s.received = true;
            s.from = Some(from);
            p.received += 1;
            let from_off = (i * SUB_BLOCK - block.offset) as usize;
            let to_off = (i * SUB_BLOCK) as usize;
            let n = (SUB_BLOCK as usize).min(data.len() - from_off);
            p.data[to_off..to_off + n].copy_from_slice(&data[from_off..from_off + n]);
            added += n as u32;
        }
        if added > 0 {
            match p.contributors.iter_mut().find(|(peer, _)| *peer == from) {
                Some((_, bytes)) => *bytes += added,
                None => p.contributors.push((from, added)),
            }
        }
        added > 0
    }

    /// Whether every sub-block of `block` has arrived (so duplicates can be cancelled).
    pub fn covered(&self, block: &BlockRef) -> bool {
        match self.partial.get(&block.piece) {
            None => true,
            Some(p) => (block.offset / SUB_BLOCK..(block.offset + block.len).div_ceil(SUB_BLOCK))
                .all(|i| p.subs[i as usize].received),
        }
    }

    /// Takes a finished piece out of the in-progress set.
    /// `peer` is gone: pieces reserved for it may be fetched from anyone again.
    pub fn disown(&mut self, peer: super::PeerId) {
        for p in self.partial.values_mut() {
            if p.owner == Some(peer) {
                p.give_back();
            }
        }
    }

    /// `peer` refused piece `piece`: if it was kept for that peer, anyone may supply it.
    pub fn disown_piece(&mut self, piece: u32, peer: super::PeerId) {
        if let Some(p) = self.partial.get_mut(&piece)
            && p.owner == Some(peer)
        {
            p.give_back();
        }
    }

    pub fn take_complete(&mut self, piece: u32) -> Option<Partial> {
        if self.partial.get(&piece).is_some_and(Partial::is_complete) {
            self.partial.remove(&piece)
        } else {
            None
        }
    }
}
