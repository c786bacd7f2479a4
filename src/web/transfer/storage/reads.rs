//! Serving blocks: pieces read from this tab's copy (a run of them when a peer reads in
//! file order), and a small cache of recent pieces so one read serves every block of a
//! piece.

use super::Storage;
use crate::protocol::wire::BlockRef;
use crate::swarm::Input;
use crate::swarm::PeerId;
use crate::web::read_slice;
use crate::web::transfer::{Ev, State};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

/// Recently read or verified pieces kept in memory: one disk read serves all of a piece's
/// blocks, and fresh pieces (the ones others want next) are served without a read.
const READ_CACHE_BYTES: usize = 8 << 20;

/// A piece read from a file right after the piece before it was read brings the pieces
/// after it along, up to this many bytes: a seeder serves a peer in file order (the swarm
/// reveals pieces that way), and one 2 MiB `Blob` read costs the browser far less than
/// eight of 256 KiB (docs/benchmarks.md, P1).
const READ_RUN_BYTES: u32 = 2 << 20;

/// Pieces at hand for serving, and the reads under way.
#[derive(Default)]
pub struct Reads {
    pub cache: VecDeque<(u32, Bytes)>,
    /// Blocks waiting for a piece read that is under way.
    pub waiting: HashMap<u32, Vec<(PeerId, BlockRef)>>,
}

impl Reads {
    /// Whether a piece is in the small in-memory read cache.
    pub fn cached(&self, piece: u32) -> bool {
        self.cache.iter().any(|(p, _)| *p == piece)
    }

    /// Keeps a piece in the small in-memory cache, dropping the oldest beyond the budget.
    pub fn remember(&mut self, piece: u32, data: Bytes) {
        if self.cached(piece) {
            return;
        }
        self.cache.push_back((piece, data));
        let mut bytes: usize = self.cache.iter().map(|(_, d)| d.len()).sum();
        while bytes > READ_CACHE_BYTES && self.cache.len() > 2 {
            if let Some((_, d)) = self.cache.pop_front() {
                bytes -= d.len();
            }
        }
    }
}

pub fn slice_block(piece: &Bytes, block: &BlockRef) -> Option<Bytes> {
    let start = block.offset as usize;
    let end = start + block.len as usize;
    (end <= piece.len()).then(|| piece.slice(start..end))
}

impl State {
    pub fn read_block(&mut self, peer: PeerId, block: BlockRef) {
        if let Storage::Memory(map) = &self.storage {
            let data = map.get(&block.piece).and_then(|p| slice_block(p, &block));
            return self.finish_read(peer, block, data);
        }
        if let Some((_, piece)) = self.reads.cache.iter().find(|(p, _)| *p == block.piece) {
            let data = slice_block(piece, &block);
            return self.finish_read(peer, block, data);
        }
        let piece = block.piece;
        let busy = self.reads.waiting.contains_key(&piece);
        self.reads
            .waiting
            .entry(piece)
            .or_default()
            .push((peer, block));
        if busy {
            return; // the piece is already being read
        }
        let span = self.room.layout.span(piece);
        let mut run = piece + 1;
        let read: std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>>>> =
            match &self.storage {
                Storage::Source(files)
                | Storage::Disk {
                    files: Some(files), ..
                } => {
                    // In file order (the piece before was read lately): read a run.
                    let follows = piece > 0
                        && self.reads.cached(piece - 1)
                        && self.room.layout.span(piece - 1).file == span.file;
                    if follows {
                        let last = self.room.layout.file_pieces(span.file as usize).end;
                        let per_run = (READ_RUN_BYTES / span.len.max(1)).max(1);
                        // Up to the run's length, stopping before a piece already at hand.
                        while run < (piece + per_run).min(last)
                            && !self.reads.waiting.contains_key(&run)
                            && !self.reads.cached(run)
                        {
                            run += 1;
                        }
                    }
                    for more in piece + 1..run {
                        self.reads.waiting.entry(more).or_default();
                    }
                    let end = self.room.layout.span(run - 1).offset
                        + u64::from(self.room.layout.piece_len(run - 1));
                    let file = files[span.file as usize].clone();
                    Box::pin(async move { read_slice(&file, span.offset, end).await })
                }
                Storage::Disk { disk, files: None } => {
                    Box::pin(disk.read(span.file, span.offset, span.len))
                }
                Storage::Memory(_) => unreachable!("answered above"),
            };
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let data = read.await;
            let _ = tx.unbounded_send(Ev::PiecesRead {
                pieces: piece..run,
                data: data.map(Bytes::from),
            });
        });
    }

    /// Pieces read from our copy (one after another in `data`), or why they could not be.
    pub fn on_pieces_read(&mut self, pieces: std::ops::Range<u32>, data: Result<Bytes, String>) {
        match data {
            Err(e) => {
                let file = &self.room.files[self.room.layout.span(pieces.start).file as usize].name;
                if !self.seeding {
                    // The downloaded copy could not be read back this once: those blocks
                    // are refused (the peers ask someone else) and the tab goes on
                    // sharing everything else. Stopping would take a full copy out of the
                    // swarm just when the others may need it most.
                    self.log.push(format!(
                        "could not read piece {} of the downloaded {file} back from \
                         storage ({e}); refused it to the peers that asked",
                        pieces.start
                    ));
                    for piece in pieces {
                        for (peer, block) in self.reads.waiting.remove(&piece).unwrap_or_default() {
                            self.finish_read(peer, block, None);
                        }
                    }
                    return;
                }
                // The shared file changed, moved or went away: nothing this tab advertises
                // can be trusted to come out right, and peers would only ask again and
                // again. Stop, saying why.
                let why = format!(
                    "could not read {file} ({e}); it was changed, moved or deleted. \
                     Share it again to go on."
                );
                for piece in pieces {
                    self.reads.waiting.remove(&piece);
                }
                if self.closed.is_none() {
                    self.stop(why);
                }
            }
            Ok(data) => {
                let data = Some(data);
                let mut at = 0;
                for piece in pieces {
                    let len = self.room.layout.piece_len(piece) as usize;
                    let bytes = data
                        .as_ref()
                        .filter(|d| d.len() >= at + len)
                        .map(|d| d.slice(at..at + len));
                    at += len;
                    if let Some(bytes) = &bytes {
                        self.reads.remember(piece, bytes.clone());
                    }
                    for (peer, block) in self.reads.waiting.remove(&piece).unwrap_or_default() {
                        let slice = bytes.as_ref().and_then(|d| slice_block(d, &block));
                        self.finish_read(peer, block, slice);
                    }
                }
            }
        }
    }

    /// Answers a read, corrupting it first under the test-only switch.
    pub fn finish_read(&mut self, peer: PeerId, block: BlockRef, data: Option<Bytes>) {
        let data = match data {
            Some(d) if self.switches.corrupt && !d.is_empty() => {
                let mut bad = d.to_vec();
                bad[0] ^= 0xff;
                Some(Bytes::from(bad))
            }
            other => other,
        };
        self.input(Input::BlockRead { peer, block, data });
    }
}
