//! Hostile and broken peers against one real `Swarm`, the other side scripted frame by
//! frame (every frame through the wire codec): a peer asking for the hash layer over and
//! over, a peer that accepts only small messages, a hash source that never answers, and a
//! peer that corrupts a shared piece and then refuses or ignores the re-fetch kept for it.

use bytes::Bytes;
use meshdrop::protocol::manifest::{Manifest, Sha2, Sha256};
use meshdrop::protocol::wire::{BlockRef, Frame, MAX_HASHES_PER_FRAME, MIN_MESSAGE};
use meshdrop::swarm::bitfield::Bitfield;
use meshdrop::swarm::{Event, Input, Output, PeerId, Swarm, SwarmConfig};
use std::collections::VecDeque;

const KIB: u32 = 1024;

/// One real swarm and what it said to each scripted peer.
struct Under {
    swarm: Swarm,
    manifest: Manifest,
    content: Vec<Vec<u8>>,
    now: u64,
    /// Frames it sent, with their encoded size.
    sent: Vec<(PeerId, Frame, usize)>,
    events: Vec<Event>,
    disconnected: Vec<PeerId>,
    completed: bool,
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

impl Under {
    fn new(
        cfg: SwarmConfig,
        len: usize,
        piece_size: u32,
        seeder: bool,
        knows_hashes: bool,
    ) -> Self {
        Self::with_files(cfg, &[len], piece_size, seeder, knows_hashes)
    }

    fn with_files(
        cfg: SwarmConfig,
        sizes: &[usize],
        piece_size: u32,
        seeder: bool,
        knows_hashes: bool,
    ) -> Self {
        let content: Vec<Vec<u8>> = sizes.iter().map(|&n| self::content(n)).collect();
        let files: Vec<&[u8]> = content.iter().map(Vec::as_slice).collect();
        let manifest = Manifest::from_files(piece_size, &files, &Sha2).unwrap();
        let count = manifest.layout.piece_count();
        let have = if seeder {
            Bitfield::full(count)
        } else {
            Bitfield::new(count)
        };
        let swarm = Swarm::new(
            cfg,
            PeerId(1),
            manifest.layout.clone(),
            manifest.root,
            knows_hashes.then(|| manifest.piece_hashes.clone()),
            have,
            7,
        );
        Self {
            swarm,
            manifest,
            content,
            now: 0,
            sent: Vec::new(),
            events: Vec::new(),
            disconnected: Vec::new(),
            completed: false,
        }
    }

    /// Feeds one input and runs the swarm's answers that need no peer (reads, hashing).
    fn input(&mut self, input: Input) {
        let mut inbox = VecDeque::from([input]);
        while let Some(input) = inbox.pop_front() {
            self.swarm.handle_input(self.now, input);
            while let Some(out) = self.swarm.poll_output() {
                match out {
                    Output::Send { peer, frame } => {
                        let decoded = Frame::decode(frame.encode()).expect("our frames decode");
                        // A batch counts as the frames in it.
                        for frame in decoded.parts().iter().cloned() {
                            let len = frame.encoded_len();
                            self.sent.push((peer, frame, len));
                        }
                    }
                    Output::ReadBlock { peer, block } => {
                        let data = self.block(block);
                        inbox.push_back(Input::BlockRead {
                            peer,
                            block,
                            data: Some(data),
                        });
                    }
                    Output::Verify { piece, data } => inbox.push_back(Input::Hashed {
                        piece,
                        digest: Sha2.digest(&data),
                    }),
                    Output::Disconnect { peer, .. } => self.disconnected.push(peer),
                    Output::Event(Event::Completed) => self.completed = true,
                    Output::Event(e) => self.events.push(e),
                    _ => {}
                }
            }
        }
    }

    fn block(&self, block: BlockRef) -> Bytes {
        let span = self.manifest.layout.span(block.piece);
        let start = (span.offset + u64::from(block.offset)) as usize;
        let file = &self.content[span.file as usize];
        Bytes::copy_from_slice(&file[start..start + block.len as usize])
    }

    fn frame(&mut self, from: PeerId, frame: Frame) {
        self.input(Input::Message {
            peer: from,
            bytes: frame.encode(),
        });
    }

    /// Connects `peer` (accepting messages up to `max_message`) and hands over its handshake
    /// and, for a seeder, a full bitfield.
    fn connect(&mut self, peer: PeerId, max_message: u32, has_all: bool) {
        self.input(Input::Connected { peer, max_message });
        let count = self.manifest.layout.piece_count();
        let (version, root) = (
            meshdrop::protocol::wire::PROTOCOL_VERSION,
            self.manifest.root,
        );
        self.frame(
            peer,
            Frame::Handshake {
                version,
                root,
                max_message,
                pieces: count,
            },
        );
        let bits = if has_all {
            Bitfield::full(count)
        } else {
            Bitfield::new(count)
        };
        self.frame(peer, Frame::Bitfield(bits.to_wire()));
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.input(Input::Timeout);
    }

    /// Takes the frames sent to `peer` so far.
    fn take(&mut self, peer: PeerId) -> Vec<(Frame, usize)> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.sent.drain(..).partition(|(p, ..)| *p == peer);
        self.sent = rest;
        mine.into_iter().map(|(_, f, n)| (f, n)).collect()
    }

    /// Takes the block requests sent to `peer` so far.
    fn requests(&mut self, peer: PeerId) -> Vec<BlockRef> {
        self.take(peer)
            .into_iter()
            .filter_map(|(f, _)| match f {
                Frame::Request(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    /// `peer` answers `block` with the right bytes.
    fn serve(&mut self, peer: PeerId, block: BlockRef) {
        let data = self.block(block);
        self.frame(
            peer,
            Frame::Piece {
                piece: block.piece,
                offset: block.offset,
                data,
            },
        );
    }

    fn banned(&self, peer: PeerId) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::Banned { peer: p, .. } if *p == peer))
    }
}

fn hash_bytes(frames: &[(Frame, usize)]) -> usize {
    frames
        .iter()
        .filter(|(f, _)| matches!(f, Frame::HashResponse { .. }))
        .map(|(_, n)| n)
        .sum()
}

/// A 9-byte HashRequest used to buy up to 128 KiB of upload, without limit. Now each peer
/// gets the layer about twice; asking on earns strikes and then a ban, and what we queued
/// for it stays bounded.
#[test]
fn asking_for_the_hash_layer_over_and_over_gets_a_peer_banned_not_fed() {
    // 16 MiB in 16 KiB pieces: 1,024 hashes, a 32 KiB layer.
    let mut seeder = Under::new(SwarmConfig::default(), 16 << 20, 16 * KIB, true, true);
    let count = seeder.manifest.layout.piece_count();
    let greedy = PeerId(9);
    seeder.connect(greedy, 256 * KIB, false);
    for _ in 0..10_000 {
        seeder.frame(greedy, Frame::HashRequest { start: 0, count });
        if seeder.disconnected.contains(&greedy) {
            break;
        }
    }
    let answered = hash_bytes(&seeder.take(greedy));
    let layer = 32 * count as usize;
    let budget = 2 * layer + 32 * MAX_HASHES_PER_FRAME as usize;
    assert!(
        answered >= layer,
        "the layer itself was not served ({answered} bytes)"
    );
    assert!(
        answered <= budget + 64,
        "{answered} bytes of hashes against a budget of {budget}"
    );
    assert!(seeder.banned(greedy), "{:?}", seeder.events);

    // An honest peer connecting afterwards still gets its layer.
    let honest = PeerId(10);
    seeder.connect(honest, 256 * KIB, false);
    seeder.frame(honest, Frame::HashRequest { start: 0, count });
    assert_eq!(hash_bytes(&seeder.take(honest)), layer + 5);
}

/// A peer may accept messages as small as MIN_MESSAGE; the hash layer then goes out in as
/// many frames as it takes, each within the peer's limit, together covering the request.
#[test]
fn hash_responses_fit_the_peers_message_limit() {
    let mut seeder = Under::new(SwarmConfig::default(), 16 << 20, 16 * KIB, true, true);
    let count = seeder.manifest.layout.piece_count();
    let small = PeerId(9);
    seeder.connect(small, MIN_MESSAGE, false);
    seeder.frame(small, Frame::HashRequest { start: 0, count });
    let mut covered = vec![false; count as usize];
    let mut frames = 0;
    for (frame, size) in seeder.take(small) {
        if let Frame::HashResponse { start, hashes } = frame {
            assert!(size <= MIN_MESSAGE as usize, "a {size}-byte frame");
            for (k, h) in hashes.iter().enumerate() {
                let i = start as usize + k;
                assert_eq!(*h, seeder.manifest.piece_hashes[i]);
                covered[i] = true;
            }
            frames += 1;
        }
    }
    assert!(covered.iter().all(|&c| c), "not every hash was sent");
    assert!(frames > 1, "one frame cannot fit {MIN_MESSAGE} bytes");
}

/// A leecher without the hash layer asks its first source; when that one never answers, the
/// next attempt goes to a different peer, not to the silent one again.
#[test]
fn a_silent_hash_source_is_not_asked_again_while_others_could_answer() {
    let cfg = SwarmConfig::default();
    let timeout = cfg.max_timeout_ms;
    let mut leecher = Under::new(cfg, 4 << 20, 256 * KIB, false, false);
    let (silent, good) = (PeerId(2), PeerId(3));
    leecher.connect(silent, 256 * KIB, true);
    leecher.connect(good, 256 * KIB, true);
    let asked = |frames: &[(Frame, usize)]| {
        frames
            .iter()
            .any(|(f, _)| matches!(f, Frame::HashRequest { .. }))
    };
    assert!(
        asked(&leecher.take(silent)),
        "the first source was not asked"
    );
    assert!(!asked(&leecher.take(good)));
    // The silent source says nothing; time passes.
    for _ in 0..(timeout / 1000 + 3) {
        leecher.advance(1_000);
    }
    let to_silent = leecher.take(silent);
    let to_good = leecher.take(good);
    assert!(asked(&to_good), "the second source was never asked");
    assert!(!asked(&to_silent), "the silent source was asked again");
    // The good one answers, and the download starts.
    let hashes = leecher.manifest.piece_hashes.clone();
    leecher.frame(good, Frame::HashResponse { start: 0, hashes });
    assert!(
        leecher
            .events
            .iter()
            .any(|e| matches!(e, Event::HashesVerified { from } if *from == good))
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Refetch {
    Refuses,
    Ignores,
    /// Sends one more corrupted block of the re-fetch, then refuses the rest.
    CorruptsOnceMoreThenRefuses,
}

/// A piece fetched from two peers fails its hash; it is then kept for one peer so blame is
/// certain. If that peer is the corrupter and refuses (or ignores) the re-fetch, the piece
/// used to wait for it for as long as it stayed connected. Now the refusal (or the stall)
/// hands the piece back, the honest peer supplies it, and the download completes.
fn corrupter_refetch(behaviour: Refetch) {
    let cfg = SwarmConfig {
        block_size: 64 * KIB,
        min_pipeline: 1,
        max_pipeline: 1,
        ..SwarmConfig::default()
    };
    // One piece of 128 KiB: two blocks of 64 KiB, one from each peer.
    let mut leecher = Under::new(cfg, 128 * KIB as usize, 128 * KIB, false, true);
    let (bad, good) = (PeerId(2), PeerId(3));
    leecher.connect(bad, 256 * KIB, true);
    leecher.connect(good, 256 * KIB, true);
    let mut seen_by_bad = std::collections::HashSet::new();
    let mut refused = 0;
    let mut corrupted_refetch = false;
    for round in 0..200 {
        if leecher.completed {
            break;
        }
        let mut answers = Vec::new();
        for (peer, frame, _) in std::mem::take(&mut leecher.sent) {
            let Frame::Request(block) = frame else {
                continue;
            };
            if peer == good {
                let data = leecher.block(block);
                answers.push((
                    good,
                    Frame::Piece {
                        piece: block.piece,
                        offset: block.offset,
                        data,
                    },
                ));
                continue;
            }
            let first_time = seen_by_bad.insert((block.piece, block.offset));
            let refetch = leecher
                .events
                .iter()
                .any(|e| matches!(e, Event::PieceFailed { .. }));
            // The first time, corrupted bytes; in the re-fetch, whatever `behaviour` says.
            let corrupt = if refetch && behaviour == Refetch::CorruptsOnceMoreThenRefuses {
                !std::mem::replace(&mut corrupted_refetch, true)
            } else {
                first_time && refused == 0
            };
            if corrupt {
                let data = Bytes::from(vec![0xEE; block.len as usize]);
                answers.push((
                    bad,
                    Frame::Piece {
                        piece: block.piece,
                        offset: block.offset,
                        data,
                    },
                ));
            } else {
                refused += 1;
                if behaviour != Refetch::Ignores {
                    answers.push((bad, Frame::Reject(block)));
                }
            }
        }
        // The honest peer's blocks arrive last, so the corrupter picks first after a failure.
        answers.sort_by_key(|(p, _)| *p == good);
        for (peer, frame) in answers {
            leecher.frame(peer, frame);
        }
        if round > 0 {
            leecher.advance(500);
        }
    }
    let failed = leecher
        .events
        .iter()
        .filter(|e| matches!(e, Event::PieceFailed { .. }))
        .count();
    assert!(
        failed >= 1,
        "the shared piece never failed: the scenario did not happen"
    );
    assert!(
        refused >= 1,
        "the re-fetch was never kept for the corrupter"
    );
    assert!(leecher.completed, "the download waited on the corrupter");
    if behaviour == Refetch::CorruptsOnceMoreThenRefuses {
        assert!(
            corrupted_refetch,
            "the re-fetch never got a corrupted block"
        );
        // What the corrupter sent of the re-fetch left with it, so the piece did not mix
        // sources (and fail) again: the next copy came from the honest peer alone, and the
        // first failure's copy then proved who lied.
        assert_eq!(
            failed, 1,
            "the piece failed again after the re-fetch mixed sources"
        );
        assert!(leecher.banned(bad), "the corrupter was not banned");
        assert!(!leecher.banned(good), "the honest peer was banned");
    }
}

#[test]
fn a_corrupter_refusing_the_refetch_kept_for_it_does_not_block_the_piece() {
    corrupter_refetch(Refetch::Refuses);
}

#[test]
fn a_corrupter_ignoring_the_refetch_kept_for_it_does_not_block_the_piece() {
    corrupter_refetch(Refetch::Ignores);
}

#[test]
fn a_corrupter_refusing_after_one_more_bad_block_is_banned_without_a_second_failure() {
    corrupter_refetch(Refetch::CorruptsOnceMoreThenRefuses);
}

/// A piece of a file that is deselected while it is half downloaded is dropped: no request
/// for it goes out after the selection, it holds no partial-piece slot, and it cannot
/// complete after the selected files are closed (a late piece could not be written, yet
/// would be advertised). Selecting the file again fetches it.
#[test]
fn a_half_downloaded_piece_of_a_deselected_file_is_dropped() {
    // One piece in progress at a time: a deselected half piece that kept its slot would
    // leave the selected file waiting for good.
    let cfg = SwarmConfig {
        block_size: 64 * KIB,
        min_pipeline: 1,
        max_pipeline: 1,
        max_partial_pieces: 1,
        ..SwarmConfig::default()
    };
    // File 0: one piece; file 1: four pieces of 256 KiB, four blocks each.
    let mut leecher = Under::with_files(
        cfg,
        &[256 * KIB as usize, 1024 * KIB as usize],
        256 * KIB,
        false,
        true,
    );
    let second = leecher.manifest.layout.file_pieces(1);
    let seeder = PeerId(2);
    leecher.connect(seeder, 256 * KIB, true);
    // Serve requests until one piece of the second file is started but not finished.
    let mut started_in_second = None;
    for _ in 0..100 {
        let requests = leecher.requests(seeder);
        if let Some(b) = requests
            .iter()
            .find(|b| second.contains(&b.piece) && b.offset > 0)
        {
            started_in_second = Some(b.piece);
            // Deselect the second file with this request still in flight, and answer it.
            leecher.input(Input::Select(vec![true, false]));
            for b in requests {
                leecher.serve(seeder, b);
            }
            break;
        }
        for b in requests {
            leecher.serve(seeder, b);
        }
    }
    let half = started_in_second.expect("no piece of the second file was started");
    // From now on: only the first file's piece may be asked for.
    let mut asked_second = Vec::new();
    for _ in 0..50 {
        let requests = leecher.requests(seeder);
        for b in requests {
            if second.contains(&b.piece) {
                asked_second.push(b);
            }
            leecher.serve(seeder, b);
        }
        leecher.advance(100);
    }
    assert!(
        asked_second.is_empty(),
        "asked for {asked_second:?} after deselecting"
    );
    assert!(leecher.completed, "the selected file did not complete");
    // Selected again, the half piece is finished and the rest follows.
    leecher.completed = false;
    leecher.input(Input::Select(vec![true, true]));
    let mut resumed = false;
    for _ in 0..200 {
        if leecher.completed {
            break;
        }
        let requests = leecher.requests(seeder);
        for b in requests {
            resumed |= b.piece == half;
            leecher.serve(seeder, b);
        }
        leecher.advance(100);
    }
    assert!(resumed, "the half piece was never asked for again");
    assert!(leecher.completed, "the whole room did not complete");
}

/// While super-seeding, each change of a peer's interest makes a seeder recompute its
/// reveals (work that grows with pieces × peers). A peer flipping its interest without end
/// is struck and then banned; one repeating the same interest and bitfield is not, and
/// neither is one changing it at a person's pace.
#[test]
fn a_peer_flipping_its_interest_without_end_is_banned() {
    let mut seeder = Under::new(SwarmConfig::default(), 4 << 20, 16 * KIB, true, true);
    let count = seeder.manifest.layout.piece_count();
    let (calm, flipper) = (PeerId(8), PeerId(9));
    let all = Bitfield::full(count).to_wire();
    let mut half = Bitfield::new(count);
    (0..count / 2).for_each(|p| {
        half.set(p);
    });
    let half = half.to_wire();

    seeder.connect(calm, 256 * KIB, false);
    for _ in 0..1_000 {
        seeder.frame(calm, Frame::Interested(all.clone()));
        seeder.frame(calm, Frame::Bitfield(Bitfield::new(count).to_wire()));
    }
    assert!(!seeder.banned(calm), "repeats were punished");

    seeder.connect(flipper, 256 * KIB, false);
    for i in 0..1_000 {
        let wants = if i % 2 == 0 { &half } else { &all };
        seeder.frame(flipper, Frame::Interested(wants.clone()));
        if seeder.disconnected.contains(&flipper) {
            break;
        }
    }
    assert!(seeder.banned(flipper), "{:?}", seeder.events);
    assert!(!seeder.banned(calm));

    // A person ticking files on and off, one change every 1.5 s, is never punished.
    let person = PeerId(10);
    seeder.connect(person, 256 * KIB, false);
    for i in 0..200 {
        let wants = if i % 2 == 0 { &half } else { &all };
        seeder.frame(person, Frame::Interested(wants.clone()));
        seeder.advance(1_500);
    }
    assert!(!seeder.banned(person), "{:?}", seeder.events);
}

/// Not a hostile peer but a slow disk: while the shell says its storage is behind, no new
/// block is requested (what is in flight still lands), so verified pieces cannot pile up
/// in memory; once it catches up, requests resume and the download completes.
#[test]
fn a_busy_storage_pauses_requests_until_it_catches_up() {
    let mut leecher = Under::new(
        SwarmConfig::default(),
        2048 * KIB as usize,
        256 * KIB,
        false,
        true,
    );
    let seeder = PeerId(2);
    leecher.connect(seeder, 256 * KIB, true);
    let first = leecher.requests(seeder);
    assert!(!first.is_empty(), "nothing was requested");
    leecher.input(Input::StorageBusy(true));
    for b in first {
        leecher.serve(seeder, b);
    }
    for _ in 0..20 {
        leecher.advance(100);
        assert_eq!(
            leecher.requests(seeder),
            [],
            "requested while storage was busy"
        );
    }
    leecher.input(Input::StorageBusy(false));
    for _ in 0..200 {
        if leecher.completed {
            break;
        }
        for b in leecher.requests(seeder) {
            leecher.serve(seeder, b);
        }
        leecher.advance(100);
    }
    assert!(leecher.completed, "the download did not resume");
}

/// A batch is handled frame by frame, under the rules for frames sent one by one.
#[test]
fn frames_in_a_batch_obey_the_rules_of_single_frames() {
    let cfg = SwarmConfig {
        super_seed: false,
        ..SwarmConfig::default()
    };
    let mut seeder = Under::new(cfg, 1024 * KIB as usize, 256 * KIB, true, true);
    // Before its handshake: banned, as for any other frame.
    let early = PeerId(2);
    seeder.input(Input::Connected {
        peer: early,
        max_message: 256 * KIB,
    });
    seeder.frame(
        early,
        Frame::Batch(vec![Frame::KeepAlive, Frame::KeepAlive]),
    );
    assert!(seeder.swarm.is_banned(early));
    // After it: every request in a batch is answered, in file order.
    let peer = PeerId(3);
    seeder.connect(peer, 256 * KIB, false);
    // (Past the first 200 ms: a request that has waited that long goes first.)
    seeder.advance(1_000);
    seeder.take(peer);
    let blocks: Vec<BlockRef> = [3, 0, 2, 1]
        .map(|piece| BlockRef {
            piece,
            offset: 0,
            len: 64 * KIB,
        })
        .to_vec();
    seeder.frame(
        peer,
        Frame::Batch(blocks.iter().map(|&b| Frame::Request(b)).collect()),
    );
    let served: Vec<u32> = seeder
        .take(peer)
        .into_iter()
        .filter_map(|(f, _)| match f {
            Frame::Piece { piece, .. } => Some(piece),
            _ => None,
        })
        .collect();
    assert_eq!(served, [0, 1, 2, 3]);
    // A bad request inside a batch is a strike, as alone; enough of them get it banned.
    let bad = Frame::Request(BlockRef {
        piece: 99,
        offset: 0,
        len: 64 * KIB,
    });
    let strikes = SwarmConfig::default().max_strikes as usize + 1;
    seeder.frame(peer, Frame::Batch(vec![bad; strikes]));
    assert!(seeder.swarm.is_banned(peer));
}

/// The shell keeps a stored piece in memory only while a neighbour lacks it.
#[test]
fn a_piece_is_lacked_only_by_neighbours_without_it_that_want_it() {
    let mut leecher = Under::new(
        SwarmConfig::default(),
        1024 * KIB as usize,
        256 * KIB,
        false,
        true,
    );
    let seeder = PeerId(2);
    leecher.connect(seeder, 256 * KIB, true);
    assert!(!leecher.swarm.someone_lacks(0), "the seeder has everything");
    let other = PeerId(3);
    leecher.connect(other, 256 * KIB, false);
    assert!(
        leecher.swarm.someone_lacks(0),
        "an empty neighbour lacks it"
    );
    let count = leecher.manifest.layout.piece_count();
    let mut wants = Bitfield::new(count);
    wants.set(1);
    leecher.frame(other, Frame::Interested(wants.to_wire()));
    assert!(!leecher.swarm.someone_lacks(0), "it does not want piece 0");
    assert!(leecher.swarm.someone_lacks(1));
}
