//! What the pages show about a running transfer. Plain data: the browser shell fills it in,
//! the components render it; nothing here touches the browser.

use crate::protocol::room::human_size;

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Phase {
    #[default]
    Connecting,
    /// Waiting for a peer to send the piece-hash layer.
    FetchingHashes,
    Downloading,
    Done,
    Seeding,
    Failed(String),
}

impl Phase {
    pub fn label(&self) -> String {
        match self {
            Phase::Connecting => "Connecting to peers…".into(),
            Phase::FetchingHashes => "Checking the file list with a peer…".into(),
            Phase::Downloading => "Downloading".into(),
            Phase::Done => "Done: every piece verified".into(),
            Phase::Seeding => "Seeding".into(),
            Phase::Failed(why) => format!("Failed: {why}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    pub id: u64,
    pub down_rate: f64,
    pub up_rate: f64,
    /// Pieces the peer has.
    pub pieces: u32,
    /// Piece data we received from it.
    pub received: u64,
}

/// A file ready to save: an object URL for the assembled bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransferView {
    pub phase: Phase,
    pub have: u32,
    pub total: u32,
    pub bytes: u64,
    pub total_bytes: u64,
    pub down_rate: f64,
    pub up_rate: f64,
    pub uploaded: u64,
    pub peers: Vec<PeerRow>,
    /// Connections as (me, them) for the mesh graph.
    pub me: u64,
    pub members: usize,
    pub saved: Vec<Saved>,
    pub log: Vec<String>,
}

impl TransferView {
    pub fn percent(&self) -> f64 {
        if self.total_bytes == 0 {
            return 100.0;
        }
        self.bytes as f64 * 100.0 / self.total_bytes as f64
    }

    /// Seconds left at the current rate, if it is moving.
    pub fn eta_secs(&self) -> Option<u64> {
        (self.down_rate > 1.0 && self.bytes < self.total_bytes)
            .then(|| ((self.total_bytes - self.bytes) as f64 / self.down_rate).ceil() as u64)
    }
}

pub fn rate(bytes_per_sec: f64) -> String {
    format!("{}/s", human_size(bytes_per_sec.max(0.0) as u64))
}
