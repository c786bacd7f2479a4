//! A room's content: files, piece size and SHA-256 piece hashes, committed to by one root.
//!
//! Pieces are laid out per file (as in BitTorrent v2): every file starts a new piece, so one
//! file can be fetched alone and a piece never spans two files. The root is a binary Merkle
//! tree over the piece hashes (padded with zero leaves to a power of two), so the server only
//! stores 32 bytes however large the room is; peers exchange the piece-hash layer and check it
//! against the root before trusting any piece hash.

use serde::{Deserialize, Serialize};

pub type Hash = [u8; 32];

/// Smallest and largest piece sizes; both powers of two.
pub const MIN_PIECE_SIZE: u32 = 256 * 1024;
pub const MAX_PIECE_SIZE: u32 = 16 * 1024 * 1024;
/// Piece sizes are chosen so a room has at most about this many pieces (unless it is so large
/// that even 16 MiB pieces exceed it). Small pieces keep the receiver's steady-state memory
/// lower (a 4 GiB download, last minute of the run: 235 MiB with 256 KiB pieces against
/// 252 MiB with 1 MiB pieces; see P4 in docs/benchmarks.md); the hash layer this costs (32 bytes a
/// piece) is sent once and cached once.
pub const TARGET_MAX_PIECES: u64 = 16384;
/// Hard ceiling on pieces per room: bounds bitfields and hash layers on the wire.
pub const MAX_PIECES: u32 = 1 << 20;

/// SHA-256, behind a trait so the browser can use SubtleCrypto or sha2, whichever is faster.
pub trait Sha256 {
    fn digest(&self, data: &[u8]) -> Hash;
}

/// The `sha2` crate; works natively and in wasm.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sha2;

impl Sha256 for Sha2 {
    fn digest(&self, data: &[u8]) -> Hash {
        use sha2::Digest;
        sha2::Sha256::digest(data).into()
    }
}

/// Picks the piece size for `total` bytes: a power of two in 256 KiB ..= 16 MiB aiming at
/// no more than [`TARGET_MAX_PIECES`] pieces.
pub fn choose_piece_size(total: u64) -> u32 {
    let mut size = MIN_PIECE_SIZE;
    while size < MAX_PIECE_SIZE && total.div_ceil(u64::from(size)) > TARGET_MAX_PIECES {
        size *= 2;
    }
    size
}

/// Where a piece lives: which file, at which offset, how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceSpan {
    pub file: u32,
    pub offset: u64,
    pub len: u32,
}

/// The piece layout of a list of file sizes: everything except the hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub piece_size: u32,
    pub file_sizes: Vec<u64>,
    /// Index of the first piece of each file (a running sum), plus the total at the end.
    first_piece: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("piece size {0} is not a power of two between 16 KiB and 16 MiB")]
    PieceSize(u32),
    #[error("the room would have more than {MAX_PIECES} pieces")]
    TooManyPieces,
}

impl Layout {
    /// Piece sizes down to 16 KiB are accepted so tests and simulations can use small pieces.
    pub fn new(piece_size: u32, file_sizes: Vec<u64>) -> Result<Self, LayoutError> {
        if !piece_size.is_power_of_two() || !(16 * 1024..=MAX_PIECE_SIZE).contains(&piece_size) {
            return Err(LayoutError::PieceSize(piece_size));
        }
        let mut first_piece = Vec::with_capacity(file_sizes.len() + 1);
        let mut count: u64 = 0;
        for &size in &file_sizes {
            first_piece.push(count as u32);
            count += size.div_ceil(u64::from(piece_size));
            if count > u64::from(MAX_PIECES) {
                return Err(LayoutError::TooManyPieces);
            }
        }
        first_piece.push(count as u32);
        Ok(Self {
            piece_size,
            file_sizes,
            first_piece,
        })
    }

    pub fn piece_count(&self) -> u32 {
        *self.first_piece.last().unwrap_or(&0)
    }

    pub fn total_size(&self) -> u64 {
        self.file_sizes.iter().sum()
    }

    /// The pieces of one file, as a range of piece indices.
    pub fn file_pieces(&self, file: usize) -> std::ops::Range<u32> {
        self.first_piece[file]..self.first_piece[file + 1]
    }

    /// Where piece `index` lives. Panics if out of range (callers check against piece_count).
    pub fn span(&self, index: u32) -> PieceSpan {
        // first_piece is sorted; the file is the last one whose first piece is <= index.
        let file = self.first_piece[..self.file_sizes.len()].partition_point(|&p| p <= index) - 1;
        let within = u64::from(index - self.first_piece[file]);
        let offset = within * u64::from(self.piece_size);
        let len = (self.file_sizes[file] - offset).min(u64::from(self.piece_size)) as u32;
        PieceSpan {
            file: file as u32,
            offset,
            len,
        }
    }

    pub fn piece_len(&self, index: u32) -> u32 {
        self.span(index).len
    }

    /// The byte ranges `(offset, len)` of file `file` covered by the pieces `held` says we
    /// have, adjacent pieces merged: what to copy when the file gets a new home.
    pub fn held_ranges(&self, file: usize, held: impl Fn(u32) -> bool) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for piece in self.file_pieces(file).filter(|&p| held(p)) {
            let span = self.span(piece);
            match ranges.last_mut() {
                Some((at, len)) if *at + *len == span.offset => *len += u64::from(span.len),
                _ => ranges.push((span.offset, u64::from(span.len))),
            }
        }
        ranges
    }
}

/// Merkle root over piece hashes: leaves padded with zero hashes to a power of two, inner
/// nodes `SHA-256(left || right)`. An empty room's root is all zeros.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return [0; 32];
    }
    let width = leaves.len().next_power_of_two();
    let mut level: Vec<Hash> = leaves.to_vec();
    level.resize(width, [0; 32]);
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| hash_pair(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

fn hash_pair(left: &Hash, right: &Hash) -> Hash {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A layout plus the verified piece hashes: everything needed to check any piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub layout: Layout,
    pub piece_hashes: Vec<Hash>,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("expected {expected} piece hashes, got {got}")]
    Count { expected: u32, got: usize },
    #[error("the piece hashes do not match the room's root hash")]
    Root,
}

impl Manifest {
    /// Accepts a hash layer received from a peer only if it matches the trusted root.
    pub fn from_layer(
        layout: Layout,
        root: Hash,
        piece_hashes: Vec<Hash>,
    ) -> Result<Self, ManifestError> {
        if piece_hashes.len() != layout.piece_count() as usize {
            return Err(ManifestError::Count {
                expected: layout.piece_count(),
                got: piece_hashes.len(),
            });
        }
        if merkle_root(&piece_hashes) != root {
            return Err(ManifestError::Root);
        }
        Ok(Self {
            layout,
            piece_hashes,
            root,
        })
    }

    /// Hashes whole files held in memory (tests, simulator). Browsers hash slice by slice.
    pub fn from_files(
        piece_size: u32,
        files: &[&[u8]],
        hasher: &impl Sha256,
    ) -> Result<Self, LayoutError> {
        let layout = Layout::new(piece_size, files.iter().map(|f| f.len() as u64).collect())?;
        let mut piece_hashes = Vec::with_capacity(layout.piece_count() as usize);
        for file in files {
            for chunk in file.chunks(piece_size as usize) {
                piece_hashes.push(hasher.digest(chunk));
            }
        }
        let root = merkle_root(&piece_hashes);
        Ok(Self {
            layout,
            piece_hashes,
            root,
        })
    }

    pub fn verify_piece(&self, index: u32, data: &[u8], hasher: &impl Sha256) -> bool {
        self.verify_digest(index, data.len(), &hasher.digest(data))
    }

    /// Checks a digest computed elsewhere (e.g. by SubtleCrypto) for piece `index`.
    pub fn verify_digest(&self, index: u32, len: usize, digest: &Hash) -> bool {
        index < self.layout.piece_count()
            && len == self.layout.piece_len(index) as usize
            && self.piece_hashes[index as usize] == *digest
    }
}

/// Hex form of a hash (what the server stores).
pub fn to_hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_size_aims_at_at_most_16384_pieces() {
        assert_eq!(choose_piece_size(0), MIN_PIECE_SIZE);
        assert_eq!(choose_piece_size(4 << 30), MIN_PIECE_SIZE); // 4 GiB → 16,384 pieces
        assert_eq!(choose_piece_size((4 << 30) + 1), 512 * 1024);
        assert_eq!(choose_piece_size(100 << 30), 8 << 20); // 100 GiB → 8 MiB, 12,800 pieces
        assert_eq!(choose_piece_size(1 << 40), 16 << 20); // 1 TiB → 16 MiB, 65,536 pieces
        for total in [1u64, 5 << 20, 3 << 30, 40 << 30, 1 << 40] {
            let size = choose_piece_size(total);
            assert!(size.is_power_of_two() && (MIN_PIECE_SIZE..=MAX_PIECE_SIZE).contains(&size));
            assert!(total.div_ceil(size.into()) <= TARGET_MAX_PIECES || size == MAX_PIECE_SIZE);
        }
    }

    #[test]
    fn held_ranges_merge_adjacent_pieces_of_one_file() {
        let ps = 16 * 1024;
        // File 0: pieces 0..4 (the last one 7 bytes); file 1: pieces 4..6.
        let layout = Layout::new(ps, vec![3 * ps as u64 + 7, 2 * ps as u64]).unwrap();
        let held = |set: &'static [u32]| move |p: u32| set.contains(&p);
        let ps = u64::from(ps);
        assert_eq!(layout.held_ranges(0, held(&[])), vec![]);
        assert_eq!(
            layout.held_ranges(0, held(&[0, 1, 3, 4, 5])),
            vec![(0, 2 * ps), (3 * ps, 7)]
        );
        assert_eq!(
            layout.held_ranges(1, held(&[0, 1, 3, 4, 5])),
            vec![(0, 2 * ps)]
        );
        assert_eq!(layout.held_ranges(0, held(&[2])), vec![(2 * ps, ps)]);
    }

    #[test]
    fn layout_aligns_pieces_to_files() {
        let ps = 16 * 1024;
        let layout = Layout::new(ps, vec![ps as u64 * 2 + 5, 0, 10, ps as u64]).unwrap();
        assert_eq!(layout.piece_count(), 5, "3 + 0 + 1 + 1 pieces");
        assert_eq!(
            layout.span(0),
            PieceSpan {
                file: 0,
                offset: 0,
                len: ps
            }
        );
        assert_eq!(
            layout.span(2),
            PieceSpan {
                file: 0,
                offset: 2 * ps as u64,
                len: 5
            }
        );
        assert_eq!(
            layout.span(3),
            PieceSpan {
                file: 2,
                offset: 0,
                len: 10
            }
        );
        assert_eq!(
            layout.span(4),
            PieceSpan {
                file: 3,
                offset: 0,
                len: ps
            }
        );
        assert_eq!(layout.file_pieces(1), 3..3);
        assert!(Layout::new(1000, vec![1]).is_err());
        assert_eq!(
            Layout::new(16 * 1024, vec![u64::MAX / 2]),
            Err(LayoutError::TooManyPieces)
        );
    }

    #[test]
    fn layer_is_accepted_only_against_its_root() {
        let a = vec![7u8; 40 * 1024];
        let b = vec![9u8; 3];
        let m = Manifest::from_files(16 * 1024, &[&a, &b], &Sha2).unwrap();
        assert_eq!(m.piece_hashes.len(), 4);
        let ok = Manifest::from_layer(m.layout.clone(), m.root, m.piece_hashes.clone()).unwrap();
        assert!(ok.verify_piece(3, &b, &Sha2));
        assert!(!ok.verify_piece(3, b"xyz", &Sha2));
        assert!(!ok.verify_piece(2, &b, &Sha2));
        let mut forged = m.piece_hashes.clone();
        forged[1][0] ^= 1;
        assert_eq!(
            Manifest::from_layer(m.layout.clone(), m.root, forged),
            Err(ManifestError::Root)
        );
        assert!(matches!(
            Manifest::from_layer(m.layout.clone(), m.root, m.piece_hashes[..3].to_vec()),
            Err(ManifestError::Count {
                expected: 4,
                got: 3
            })
        ));
    }

    #[test]
    fn merkle_root_golden() {
        // One leaf is its own root; two leaves hash together; odd counts pad with zeros.
        let l = [1u8; 32];
        assert_eq!(merkle_root(&[l]), l);
        assert_eq!(merkle_root(&[l, l]), hash_pair(&l, &l));
        assert_eq!(
            merkle_root(&[l, l, l]),
            hash_pair(&hash_pair(&l, &l), &hash_pair(&l, &[0; 32]))
        );
        assert_eq!(
            to_hex(&merkle_root(&[Sha2.digest(b"abc")])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip() {
        let h = Sha2.digest(b"meshdrop");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"é".repeat(32)), None);
    }
}
