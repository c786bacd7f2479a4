//! Downloading some files of a room: a leecher that selects one file requests only that
//! file's pieces and completes when they are in; selecting the rest later completes those.
//! Two real `Swarm`s, every frame through the wire codec, every piece hashed.

use bytes::Bytes;
use meshdrop::protocol::manifest::{Manifest, Sha2, Sha256};
use meshdrop::protocol::wire::Frame;
use meshdrop::swarm::bitfield::Bitfield;
use meshdrop::swarm::{Event, Input, Output, PeerId, Swarm, SwarmConfig};
use std::collections::VecDeque;

const KIB: usize = 1024;

struct Node {
    swarm: Swarm,
    inbox: VecDeque<Input>,
    /// Pieces stored, in order.
    stored: Vec<u32>,
    completions: u32,
    /// Piece data requested from the other peer (block requests sent).
    requested: Vec<u32>,
    /// Pieces read from our own copy to serve the other peer, in order.
    read: Vec<u32>,
}

fn files() -> (Vec<u8>, Vec<u8>) {
    let a = (0..1024 * KIB).map(|i| (i * 7 % 251) as u8).collect();
    let b = (0..(1536 * KIB + 5))
        .map(|i| (i * 13 % 241) as u8)
        .collect();
    (a, b)
}

/// Runs both swarms until neither has anything left to do.
fn pump(nodes: &mut [Node; 2], content: &[&[u8]], manifest: &Manifest, now: &mut u64) {
    for _ in 0..100_000 {
        let mut idle = true;
        for i in 0..2 {
            let Some(input) = nodes[i].inbox.pop_front() else {
                continue;
            };
            idle = false;
            *now += 1;
            nodes[i].swarm.handle_input(*now, input);
            while let Some(out) = nodes[i].swarm.poll_output() {
                match out {
                    Output::Send { frame, .. } => {
                        for part in frame.parts() {
                            if let Frame::Request(block) = part {
                                nodes[i].requested.push(block.piece);
                            }
                        }
                        let decoded = Frame::decode(frame.encode()).expect("frame decodes");
                        let bytes = decoded.encode();
                        let from = PeerId(i as u64 + 1);
                        nodes[1 - i]
                            .inbox
                            .push_back(Input::Message { peer: from, bytes });
                    }
                    Output::ReadBlock { peer, block } => {
                        nodes[i].read.push(block.piece);
                        let span = manifest.layout.span(block.piece);
                        let start = (span.offset + u64::from(block.offset)) as usize;
                        let data = &content[span.file as usize][start..start + block.len as usize];
                        nodes[i].inbox.push_back(Input::BlockRead {
                            peer,
                            block,
                            data: Some(Bytes::copy_from_slice(data)),
                        });
                    }
                    Output::Verify { piece, data } => nodes[i].inbox.push_back(Input::Hashed {
                        piece,
                        digest: Sha2.digest(&data),
                    }),
                    Output::Store { piece, .. } => nodes[i].stored.push(piece),
                    Output::Event(Event::Completed) => nodes[i].completions += 1,
                    _ => {}
                }
            }
        }
        if idle {
            // Frames a swarm holds back for a moment (HAVEs for a peer that has the piece)
            // go out at its next deadline; the one-second tick is not waited for.
            let soon = *now + SwarmConfig::default().lazy_have_ms;
            match (0..2).map(|i| (nodes[i].swarm.poll_timeout(), i)).min() {
                Some((at, i)) if at <= soon => {
                    *now = at.max(*now);
                    nodes[i].inbox.push_back(Input::Timeout);
                }
                _ => return,
            }
        }
    }
    panic!("the swarms never went quiet");
}

/// A seeder (peer 1) with both files and an empty leecher (peer 2), connected.
fn pair(manifest: &Manifest) -> [Node; 2] {
    let layout = &manifest.layout;
    let count = layout.piece_count();
    let node = |id: u64, hashes: Option<Vec<_>>, have: Bitfield| Node {
        swarm: Swarm::new(
            SwarmConfig::default(),
            PeerId(id),
            layout.clone(),
            manifest.root,
            hashes,
            have,
            id,
        ),
        inbox: VecDeque::new(),
        stored: Vec::new(),
        completions: 0,
        requested: Vec::new(),
        read: Vec::new(),
    };
    let mut nodes = [
        node(
            1,
            Some(manifest.piece_hashes.clone()),
            Bitfield::full(count),
        ),
        node(2, None, Bitfield::new(count)),
    ];
    for (i, other) in [(0, 2), (1, 1)] {
        nodes[i].inbox.push_back(Input::Connected {
            peer: PeerId(other),
            max_message: 256 * KIB as u32,
        });
    }
    nodes
}

#[test]
fn a_leecher_downloads_only_the_files_it_selects() {
    selects(true);
}

/// The selection arrives after the seeder has already revealed pieces of the other file.
#[test]
fn a_selection_made_after_connecting_is_honoured_too() {
    selects(false);
}

fn selects(before_connecting: bool) {
    let (a, b) = files();
    let manifest = Manifest::from_files(256 * KIB as u32, &[&a, &b], &Sha2).unwrap();
    let count = manifest.layout.piece_count();
    let first = manifest.layout.file_pieces(0);
    let second = manifest.layout.file_pieces(1);
    let mut nodes = pair(&manifest);
    let content: [&[u8]; 2] = [&a, &b];
    let mut now = 0;
    // The leecher wants the second file only.
    if before_connecting {
        nodes[1].inbox.push_front(Input::Select(vec![false, true]));
    } else {
        // Handshakes and the seeder's first reveals, but no request yet.
        for _ in 0..2 {
            for i in 0..2 {
                if let Some(input) = nodes[i].inbox.pop_front() {
                    nodes[i].swarm.handle_input(now, input);
                    while let Some(out) = nodes[i].swarm.poll_output() {
                        if let Output::Send { frame, .. } = out {
                            assert!(!frame.parts().iter().any(|f| matches!(f, Frame::Request(_))));
                            let from = PeerId(i as u64 + 1);
                            let bytes = frame.encode();
                            nodes[1 - i]
                                .inbox
                                .push_back(Input::Message { peer: from, bytes });
                        }
                    }
                }
            }
        }
        nodes[1].inbox.push_front(Input::Select(vec![false, true]));
    }
    pump(&mut nodes, &content, &manifest, &mut now);

    let leecher = &nodes[1];
    assert_eq!(
        leecher.completions, 1,
        "completes once the selected file is in"
    );
    let mut stored = leecher.stored.clone();
    stored.sort_unstable();
    assert_eq!(
        stored,
        second.clone().collect::<Vec<_>>(),
        "exactly the second file's pieces"
    );
    assert!(!leecher.requested.is_empty());
    assert!(
        leecher.requested.iter().all(|p| second.contains(p)),
        "no request for a piece of the unselected file"
    );
    assert!(leecher.swarm.has_wanted() && !leecher.swarm.is_complete());

    // Selecting the first file too fetches the rest, and completion is announced again.
    nodes[1].inbox.push_back(Input::Select(vec![true, true]));
    pump(&mut nodes, &content, &manifest, &mut now);
    let leecher = &nodes[1];
    assert_eq!(leecher.completions, 2);
    assert!(leecher.swarm.is_complete());
    assert_eq!(
        leecher.stored.len() as u32,
        count,
        "every piece stored exactly once"
    );
    assert!(first.clone().all(|p| leecher.stored.contains(&p)));
}

#[test]
fn selecting_nothing_requests_nothing_and_unknown_files_are_ignored() {
    let (a, b) = files();
    let manifest = Manifest::from_files(256 * KIB as u32, &[&a, &b], &Sha2).unwrap();
    let mut nodes = pair(&manifest);
    // Three flags for two files: the extra one refers to no file and changes nothing.
    nodes[1]
        .inbox
        .push_front(Input::Select(vec![false, false, true]));
    let content: [&[u8]; 2] = [&a, &b];
    let mut now = 0;
    pump(&mut nodes, &content, &manifest, &mut now);
    let leecher = &nodes[1];
    assert!(
        leecher.requested.is_empty(),
        "requested {:?}",
        leecher.requested
    );
    assert!(leecher.stored.is_empty());
    assert_eq!(
        leecher.completions, 1,
        "nothing selected is complete at once"
    );
    // The leecher still fetched and checked the hash layer, so it can start at once later.
    assert!(leecher.swarm.piece_hashes().is_some());
}

/// A seeder shows a lone leecher its pieces in order (from a starting point of its own),
/// and answers each batch of requests in file order, so it reads its file front to back
/// and can read ahead in long runs.
#[test]
fn a_seeder_reads_its_file_in_order_for_a_lone_leecher() {
    let data: Vec<u8> = (0..4096 * KIB).map(|i| (i * 31 % 253) as u8).collect();
    let manifest = Manifest::from_files(64 * KIB as u32, &[&data], &Sha2).unwrap();
    let count = manifest.layout.piece_count();
    let mut nodes = pair(&manifest);
    let mut now = 0;
    pump(&mut nodes, &[&data], &manifest, &mut now);
    assert!(nodes[1].swarm.is_complete());
    // Pieces in the order the seeder first read them.
    let mut order: Vec<u32> = Vec::new();
    for &p in &nodes[0].read {
        if !order.contains(&p) {
            order.push(p);
        }
    }
    assert_eq!(order.len() as u32, count);
    let in_order = order
        .windows(2)
        .filter(|w| w[1] == (w[0] + 1) % count)
        .count();
    assert!(
        in_order + 2 >= order.len(),
        "pieces read in file order, wrapping once: {order:?}"
    );
}
