//! A hash layer from a peer is accepted only if it matches the root; the verifier never
//! panics whatever the layout or hashes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshdrop::protocol::manifest::{Layout, Manifest, Sha2, Sha256, merkle_root};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let pieces = u64::from(data[0] % 40);
    let piece_size = 16 * 1024u32 << (data[1] % 4);
    let layout = Layout::new(piece_size, vec![pieces * u64::from(piece_size) - u64::from(data[2]).min(pieces * 1000)]).unwrap();
    let honest: Vec<[u8; 32]> = (0..layout.piece_count()).map(|i| Sha2.digest(&i.to_le_bytes())).collect();
    let root = merkle_root(&honest);
    // The layer the peer sends: the fuzzer's bytes as hashes.
    let sent: Vec<[u8; 32]> = data[3..].chunks_exact(32).map(|c| c.try_into().unwrap()).collect();
    match Manifest::from_layer(layout.clone(), root, sent.clone()) {
        Ok(m) => assert_eq!(m.piece_hashes, honest, "a forged layer was accepted"),
        Err(_) => assert!(sent != honest),
    }
    assert!(Manifest::from_layer(layout, root, honest).is_ok());
});
