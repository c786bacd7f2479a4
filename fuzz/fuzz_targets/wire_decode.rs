//! Any bytes: decoding never panics, never exceeds the frame bound, and what decodes
//! re-encodes to the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use meshdrop::protocol::wire::{Frame, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(Bytes::copy_from_slice(data)) {
        assert!(data.len() <= MAX_FRAME);
        assert_eq!(frame.encode().as_ref(), data);
    }
});
