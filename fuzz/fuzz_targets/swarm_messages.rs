//! A hostile peer: whatever messages it sends, the swarm never panics and never stores a
//! piece that fails its hash.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use meshdrop::protocol::manifest::{Manifest, Sha2, Sha256};
use meshdrop::protocol::wire::{Frame, PROTOCOL_VERSION};
use meshdrop::swarm::bitfield::Bitfield;
use meshdrop::swarm::{Input, Output, PeerId, Swarm, SwarmConfig};

fuzz_target!(|data: &[u8]| {
    let file = vec![7u8; 40 * 1024];
    let manifest = Manifest::from_files(16 * 1024, &[&file], &Sha2).unwrap();
    let count = manifest.layout.piece_count();
    let mut swarm =
        Swarm::new(SwarmConfig::default(), PeerId(1), manifest.layout.clone(), manifest.root, None, Bitfield::new(count), 1);
    let evil = PeerId(2);
    swarm.handle_input(0, Input::Connected { peer: evil, max_message: 256 * 1024 });
    let hello = Frame::Handshake { version: PROTOCOL_VERSION, root: manifest.root, max_message: 256 * 1024, pieces: count };
    swarm.handle_input(1, Input::Message { peer: evil, bytes: hello.encode() });
    // The fuzzer's bytes, split into messages at 0xfe bytes.
    for (t, message) in data.split(|&b| b == 0xfe).enumerate() {
        swarm.handle_input(2 + t as u64 * 50, Input::Message { peer: evil, bytes: Bytes::copy_from_slice(message) });
        while let Some(out) = swarm.poll_output() {
            match out {
                Output::Verify { piece, data } => {
                    let digest = Sha2.digest(&data);
                    swarm.handle_input(2 + t as u64 * 50, Input::Hashed { piece, digest });
                }
                Output::Store { piece, data } => assert!(manifest.verify_piece(piece, &data, &Sha2)),
                _ => {}
            }
        }
    }
});
