//! The peer wire protocol: binary frames, one per data-channel message.
//!
//! Every frame is `[type: u8][fields…]`, integers big-endian. Small control frames bound
//! for the same peer at the same moment travel together in one `Batch`: in Chromium each
//! data-channel message costs CPU of its own, and a 13-byte request sent back for every
//! 64 KiB block received made a raw blast take twice as long (docs/benchmarks.md, P1). Decoding checks every length
//! against the bounds below before touching the bytes, never panics, and never allocates
//! more than the frame it was given (payloads are zero-copy slices of the input).
//!
//! | type | frame          | fields                                                      |
//! |------|----------------|-------------------------------------------------------------|
//! | 0x00 | Handshake      | magic "MDRP", version u16, root [32], max_message u32, pieces u32 |
//! | 0x01 | Bitfield       | bitmap, piece 0 = most significant bit of byte 0            |
//! | 0x02 | Have           | piece u32                                                   |
//! | 0x03 | Request        | piece u32, offset u32, len u32                              |
//! | 0x04 | Cancel         | piece u32, offset u32, len u32                              |
//! | 0x05 | Piece          | piece u32, offset u32, data                                 |
//! | 0x06 | HashRequest    | start u32, count u32                                        |
//! | 0x07 | HashResponse   | start u32, hashes [32]…                                     |
//! | 0x08 | Reject         | piece u32, offset u32, len u32                              |
//! | 0x09 | Choke          |                                                             |
//! | 0x0a | Unchoke        |                                                             |
//! | 0x0b | KeepAlive      |                                                             |
//! | 0x0c | Interested     | bitmap of the pieces the sender wants (as Bitfield)         |
//! | 0x0d | Batch          | 1 to `MAX_BATCH` frames of the fixed-size kinds (Have, Request, Cancel, Reject, Choke, Unchoke, KeepAlive), back to back |

use super::manifest::{Hash, MAX_PIECES};
use bytes::{BufMut, Bytes, BytesMut};

pub const MAGIC: [u8; 4] = *b"MDRP";
/// 2: small frames may travel in a `Batch`.
pub const PROTOCOL_VERSION: u16 = 2;
/// Largest frame on the wire: Chromium's data-channel message limit.
pub const MAX_FRAME: usize = 256 * 1024;
/// Largest block a peer may request or send.
pub const MAX_BLOCK: u32 = 128 * 1024;
/// Most hashes in one HashResponse (128 KiB of hashes).
pub const MAX_HASHES_PER_FRAME: u32 = 4096;
/// Smallest max-message size a peer may announce (a block header plus 16 KiB).
pub const MIN_MESSAGE: u32 = 16 * 1024 + 16;
/// Most frames in one Batch (at most 13 bytes each, so a batch stays under 14 KiB, well
/// inside `MIN_MESSAGE`).
pub const MAX_BATCH: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub piece: u32,
    pub offset: u32,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Handshake {
        version: u16,
        root: Hash,
        max_message: u32,
        pieces: u32,
    },
    Bitfield(Bytes),
    Have(u32),
    Request(BlockRef),
    Cancel(BlockRef),
    Piece {
        piece: u32,
        offset: u32,
        data: Bytes,
    },
    HashRequest {
        start: u32,
        count: u32,
    },
    HashResponse {
        start: u32,
        hashes: Vec<Hash>,
    },
    Reject(BlockRef),
    Choke,
    Unchoke,
    KeepAlive,
    /// The pieces the sender wants (its selected files); a peer that never sends one wants
    /// every piece. A super-seeder reveals only wanted pieces to it.
    Interested(Bytes),
    /// Several small frames in one message, handled in order as if sent one by one. Only
    /// frames for which [`Frame::batchable`] holds, at most [`MAX_BATCH`].
    Batch(Vec<Frame>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("empty frame")]
    Empty,
    #[error("frame of {0} bytes is above the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    #[error("frame type {kind:#04x} needs {expected} bytes, got {got}")]
    Length {
        kind: u8,
        expected: usize,
        got: usize,
    },
    #[error("not a meshdrop handshake")]
    Magic,
    #[error("{0} is out of bounds")]
    Bounds(&'static str),
}

mod kind {
    pub const HANDSHAKE: u8 = 0x00;
    pub const BITFIELD: u8 = 0x01;
    pub const HAVE: u8 = 0x02;
    pub const REQUEST: u8 = 0x03;
    pub const CANCEL: u8 = 0x04;
    pub const PIECE: u8 = 0x05;
    pub const HASH_REQUEST: u8 = 0x06;
    pub const HASH_RESPONSE: u8 = 0x07;
    pub const REJECT: u8 = 0x08;
    pub const CHOKE: u8 = 0x09;
    pub const UNCHOKE: u8 = 0x0a;
    pub const KEEPALIVE: u8 = 0x0b;
    pub const INTERESTED: u8 = 0x0c;
    pub const BATCH: u8 = 0x0d;
}

/// Header bytes in front of a Piece frame's data.
pub const PIECE_HEADER: usize = 9;
const HANDSHAKE_LEN: usize = 1 + 4 + 2 + 32 + 4 + 4;

impl Frame {
    /// Whether this frame may travel inside a `Batch`: the small fixed-size kinds.
    pub fn batchable(&self) -> bool {
        matches!(
            self,
            Frame::Have(_)
                | Frame::Request(_)
                | Frame::Cancel(_)
                | Frame::Reject(_)
                | Frame::Choke
                | Frame::Unchoke
                | Frame::KeepAlive
        )
    }

    /// The frames this one stands for: a batch's contents, or the frame itself.
    pub fn parts(&self) -> &[Frame] {
        match self {
            Frame::Batch(frames) => frames,
            other => std::slice::from_ref(other),
        }
    }

    pub fn encode(&self) -> Bytes {
        Bytes::from(self.encode_vec())
    }

    /// The same as [`Self::encode`], as a `Vec` without a second copy (the browser's
    /// data channel sends from a slice, and a frame that waits is kept as a `Vec`).
    pub fn encode_vec(&self) -> Vec<u8> {
        let mut b = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut b);
        b.into()
    }

    fn encode_into(&self, b: &mut BytesMut) {
        match self {
            Frame::Handshake {
                version,
                root,
                max_message,
                pieces,
            } => {
                b.put_u8(kind::HANDSHAKE);
                b.put_slice(&MAGIC);
                b.put_u16(*version);
                b.put_slice(root);
                b.put_u32(*max_message);
                b.put_u32(*pieces);
            }
            Frame::Bitfield(bits) => {
                b.put_u8(kind::BITFIELD);
                b.put_slice(bits);
            }
            Frame::Interested(bits) => {
                b.put_u8(kind::INTERESTED);
                b.put_slice(bits);
            }
            Frame::Have(piece) => {
                b.put_u8(kind::HAVE);
                b.put_u32(*piece);
            }
            Frame::Request(r) => put_block(b, kind::REQUEST, r),
            Frame::Cancel(r) => put_block(b, kind::CANCEL, r),
            Frame::Reject(r) => put_block(b, kind::REJECT, r),
            Frame::Piece {
                piece,
                offset,
                data,
            } => {
                b.put_u8(kind::PIECE);
                b.put_u32(*piece);
                b.put_u32(*offset);
                b.put_slice(data);
            }
            Frame::HashRequest { start, count } => {
                b.put_u8(kind::HASH_REQUEST);
                b.put_u32(*start);
                b.put_u32(*count);
            }
            Frame::HashResponse { start, hashes } => {
                b.put_u8(kind::HASH_RESPONSE);
                b.put_u32(*start);
                for h in hashes {
                    b.put_slice(h);
                }
            }
            Frame::Choke => b.put_u8(kind::CHOKE),
            Frame::Unchoke => b.put_u8(kind::UNCHOKE),
            Frame::KeepAlive => b.put_u8(kind::KEEPALIVE),
            Frame::Batch(frames) => {
                debug_assert!(frames.iter().all(Frame::batchable) && frames.len() <= MAX_BATCH);
                b.put_u8(kind::BATCH);
                for frame in frames {
                    frame.encode_into(b);
                }
            }
        }
    }

    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Handshake { .. } => HANDSHAKE_LEN,
            Frame::Bitfield(bits) | Frame::Interested(bits) => 1 + bits.len(),
            Frame::Have(_) => 5,
            Frame::Request(_) | Frame::Cancel(_) | Frame::Reject(_) => 13,
            Frame::Piece { data, .. } => PIECE_HEADER + data.len(),
            Frame::HashRequest { .. } => 9,
            Frame::HashResponse { hashes, .. } => 5 + 32 * hashes.len(),
            Frame::Choke | Frame::Unchoke | Frame::KeepAlive => 1,
            Frame::Batch(frames) => 1 + frames.iter().map(Frame::encoded_len).sum::<usize>(),
        }
    }

    /// Decodes one frame. Payloads share `buf`'s memory.
    pub fn decode(buf: Bytes) -> Result<Frame, WireError> {
        if buf.len() > MAX_FRAME {
            return Err(WireError::TooLarge(buf.len()));
        }
        let (&k, body) = buf.split_first().ok_or(WireError::Empty)?;
        let exact = |expected: usize| {
            if body.len() == expected {
                Ok(())
            } else {
                Err(WireError::Length {
                    kind: k,
                    expected: expected + 1,
                    got: buf.len(),
                })
            }
        };
        let at_least = |expected: usize| {
            if body.len() >= expected {
                Ok(())
            } else {
                Err(WireError::Length {
                    kind: k,
                    expected: expected + 1,
                    got: buf.len(),
                })
            }
        };
        let u32_at =
            |i: usize| u32::from_be_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let block = || -> Result<BlockRef, WireError> {
            exact(12)?;
            let r = BlockRef {
                piece: u32_at(0),
                offset: u32_at(4),
                len: u32_at(8),
            };
            if r.len == 0 || r.len > MAX_BLOCK {
                return Err(WireError::Bounds("block length"));
            }
            Ok(r)
        };
        Ok(match k {
            kind::HANDSHAKE => {
                exact(HANDSHAKE_LEN - 1)?;
                if body[..4] != MAGIC {
                    return Err(WireError::Magic);
                }
                let mut root = [0u8; 32];
                root.copy_from_slice(&body[6..38]);
                let pieces = u32_at(42);
                if pieces > MAX_PIECES {
                    return Err(WireError::Bounds("piece count"));
                }
                Frame::Handshake {
                    version: u16::from_be_bytes([body[4], body[5]]),
                    root,
                    max_message: u32_at(38),
                    pieces,
                }
            }
            kind::BITFIELD => {
                if body.len() > (MAX_PIECES as usize).div_ceil(8) {
                    return Err(WireError::Bounds("bitfield length"));
                }
                Frame::Bitfield(buf.slice(1..))
            }
            kind::INTERESTED => {
                if body.len() > (MAX_PIECES as usize).div_ceil(8) {
                    return Err(WireError::Bounds("interest bitmap length"));
                }
                Frame::Interested(buf.slice(1..))
            }
            kind::HAVE => {
                exact(4)?;
                Frame::Have(u32_at(0))
            }
            kind::REQUEST => Frame::Request(block()?),
            kind::CANCEL => Frame::Cancel(block()?),
            kind::REJECT => Frame::Reject(block()?),
            kind::PIECE => {
                at_least(8)?;
                let data = buf.slice(PIECE_HEADER..);
                if data.is_empty() || data.len() > MAX_BLOCK as usize {
                    return Err(WireError::Bounds("block length"));
                }
                Frame::Piece {
                    piece: u32_at(0),
                    offset: u32_at(4),
                    data,
                }
            }
            kind::HASH_REQUEST => {
                exact(8)?;
                let count = u32_at(4);
                if count == 0 || count > MAX_HASHES_PER_FRAME {
                    return Err(WireError::Bounds("hash count"));
                }
                Frame::HashRequest {
                    start: u32_at(0),
                    count,
                }
            }
            kind::HASH_RESPONSE => {
                at_least(4)?;
                let rest = &body[4..];
                if rest.len() % 32 != 0
                    || rest.is_empty()
                    || rest.len() / 32 > MAX_HASHES_PER_FRAME as usize
                {
                    return Err(WireError::Bounds("hash list"));
                }
                let hashes = rest
                    .chunks_exact(32)
                    .map(|c| c.try_into().expect("chunks are 32 bytes"))
                    .collect();
                Frame::HashResponse {
                    start: u32_at(0),
                    hashes,
                }
            }
            kind::CHOKE => {
                exact(0)?;
                Frame::Choke
            }
            kind::UNCHOKE => {
                exact(0)?;
                Frame::Unchoke
            }
            kind::KEEPALIVE => {
                exact(0)?;
                Frame::KeepAlive
            }
            kind::BATCH => {
                let mut frames = Vec::new();
                let mut at = 1;
                while at < buf.len() {
                    let len = match buf[at] {
                        kind::HAVE => 5,
                        kind::REQUEST | kind::CANCEL | kind::REJECT => 13,
                        kind::CHOKE | kind::UNCHOKE | kind::KEEPALIVE => 1,
                        _ => return Err(WireError::Bounds("frame kind inside a batch")),
                    };
                    if frames.len() == MAX_BATCH {
                        return Err(WireError::Bounds("frames in a batch"));
                    }
                    let end = at + len;
                    if end > buf.len() {
                        return Err(WireError::Bounds("truncated frame inside a batch"));
                    }
                    frames.push(Frame::decode(buf.slice(at..end))?);
                    at = end;
                }
                if frames.is_empty() {
                    return Err(WireError::Bounds("empty batch"));
                }
                Frame::Batch(frames)
            }
            other => return Err(WireError::UnknownType(other)),
        })
    }
}

fn put_block(b: &mut BytesMut, k: u8, r: &BlockRef) {
    b.put_u8(k);
    b.put_u32(r.piece);
    b.put_u32(r.offset);
    b.put_u32(r.len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(frame: Frame, hex: &str) {
        let bytes = frame.encode();
        let got: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, hex, "{frame:?}");
        assert_eq!(bytes.len(), frame.encoded_len());
        assert_eq!(frame.encode_vec(), bytes.to_vec(), "{frame:?}");
        assert_eq!(Frame::decode(bytes).unwrap(), frame);
    }

    #[test]
    fn golden_bytes_for_every_frame() {
        let root = [0xab; 32];
        golden(
            Frame::Handshake {
                version: 1,
                root,
                max_message: 262144,
                pieces: 5,
            },
            &format!("004d4452500001{}0004000000000005", "ab".repeat(32)),
        );
        golden(Frame::Bitfield(Bytes::from_static(&[0b1010_0000])), "01a0");
        golden(
            Frame::Interested(Bytes::from_static(&[0b0110_0000])),
            "0c60",
        );
        golden(Frame::Have(0x01020304), "0201020304");
        let r = BlockRef {
            piece: 7,
            offset: 65536,
            len: 16384,
        };
        golden(Frame::Request(r), "03000000070001000000004000");
        golden(Frame::Cancel(r), "04000000070001000000004000");
        golden(Frame::Reject(r), "08000000070001000000004000");
        golden(
            Frame::Piece {
                piece: 2,
                offset: 3,
                data: Bytes::from_static(b"hi"),
            },
            "05000000020000000368 69".replace(' ', "").as_str(),
        );
        golden(
            Frame::HashRequest { start: 1, count: 2 },
            "060000000100000002",
        );
        golden(
            Frame::HashResponse {
                start: 9,
                hashes: vec![[0x11; 32]],
            },
            &format!("0700000009{}", "11".repeat(32)),
        );
        golden(Frame::Choke, "09");
        golden(Frame::Unchoke, "0a");
        golden(Frame::KeepAlive, "0b");
        golden(
            Frame::Batch(vec![Frame::Have(1), Frame::Request(r), Frame::KeepAlive]),
            "0d020000000103000000070001000000004000 0b"
                .replace(' ', "")
                .as_str(),
        );
    }

    #[test]
    fn rejects_malformed_batches() {
        let d = |v: &[u8]| Frame::decode(Bytes::copy_from_slice(v));
        assert_eq!(d(&[kind::BATCH]), Err(WireError::Bounds("empty batch")));
        // Only the small fixed-size kinds: no nesting, no pieces, no bitmaps.
        for k in [
            kind::BATCH,
            kind::PIECE,
            kind::BITFIELD,
            kind::HANDSHAKE,
            0xff,
        ] {
            assert_eq!(
                d(&[kind::BATCH, k, 0, 0, 0, 0]),
                Err(WireError::Bounds("frame kind inside a batch")),
                "kind {k:#x}"
            );
        }
        assert_eq!(
            d(&[kind::BATCH, kind::HAVE, 0, 0, 0, 1, kind::HAVE, 0, 0]),
            Err(WireError::Bounds("truncated frame inside a batch"))
        );
        // A bad frame inside is as bad as outside.
        let mut zero = vec![kind::BATCH, kind::REQUEST];
        zero.extend([0; 12]);
        assert_eq!(d(&zero), Err(WireError::Bounds("block length")));
        let full = Frame::Batch(vec![Frame::KeepAlive; MAX_BATCH]).encode();
        assert_eq!(
            Frame::decode(full.clone()).unwrap().parts().len(),
            MAX_BATCH
        );
        let mut over = full.to_vec();
        over.push(kind::KEEPALIVE);
        assert_eq!(d(&over), Err(WireError::Bounds("frames in a batch")));
    }

    #[test]
    fn rejects_malformed_frames() {
        let d = |v: &[u8]| Frame::decode(Bytes::copy_from_slice(v));
        assert_eq!(d(&[]), Err(WireError::Empty));
        assert_eq!(d(&[0xff]), Err(WireError::UnknownType(0xff)));
        assert!(matches!(
            d(&[kind::HAVE, 0, 0]),
            Err(WireError::Length { .. })
        ));
        assert!(matches!(
            d(&[kind::CHOKE, 0]),
            Err(WireError::Length { .. })
        ));
        let mut hs = Frame::Handshake {
            version: 1,
            root: [0; 32],
            max_message: 1,
            pieces: 1,
        }
        .encode()
        .to_vec();
        hs[1] = b'X';
        assert_eq!(d(&hs), Err(WireError::Magic));
        // Zero-length and oversized blocks.
        assert!(d(&[kind::REQUEST, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let big = Frame::Request(BlockRef {
            piece: 0,
            offset: 0,
            len: MAX_BLOCK + 1,
        })
        .encode();
        assert_eq!(Frame::decode(big), Err(WireError::Bounds("block length")));
        assert!(
            d(&[kind::PIECE, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "empty piece data"
        );
        assert_eq!(
            d(&vec![kind::BITFIELD; MAX_FRAME + 1]),
            Err(WireError::TooLarge(MAX_FRAME + 1))
        );
        assert!(
            d(&[kind::HASH_RESPONSE, 0, 0, 0, 0, 1, 2]).is_err(),
            "partial hash"
        );
        assert!(
            d(&[kind::HASH_REQUEST, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "zero hashes"
        );
    }

    #[test]
    fn piece_payload_is_zero_copy() {
        let frame = Frame::Piece {
            piece: 1,
            offset: 0,
            data: Bytes::from(vec![5u8; 1000]),
        }
        .encode();
        let base = frame.as_ptr() as usize;
        let Ok(Frame::Piece { data, .. }) = Frame::decode(frame) else {
            panic!()
        };
        assert_eq!(data.as_ptr() as usize, base + PIECE_HEADER);
    }
}
