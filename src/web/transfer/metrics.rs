//! Counters and rates shown on the page (and read by tests and benchmarks as `data-*`).

use crate::protocol::manifest::Layout;
use crate::web::now_ms;

/// What moved, how much, and how fast.
pub struct Metrics {
    /// Pieces verified, of the total, and their bytes (the swarm's last progress event).
    pub progress: (u32, u32, u64),
    /// Verified bytes per file.
    pub file_bytes: Vec<u64>,
    /// Piece bytes taken from the cache at start (not downloaded again).
    pub restored: u64,
    /// Piece bytes sent to peers.
    pub uploaded: u64,
    /// Piece bytes received from peers since this page opened.
    pub received_total: u64,
    /// Data-channel messages received and sent.
    pub messages_in: u64,
    pub messages_out: u64,
    /// The fullest any data channel's send buffer was after a send, and times a channel was
    /// found full and paused (for tests, see `TransferView`).
    pub channel_peak: u32,
    pub channel_pauses: u64,
    /// Times `bufferedamountlow` let a paused channel send its whole queue again.
    pub channel_resumes: u64,
    /// The last rate sample: when, bytes verified, bytes uploaded, bytes per file.
    pub rate_sample: (f64, u64, u64, Vec<u64>),
    /// Download and upload rates, and each file's download rate, in bytes per second.
    pub rates: (f64, f64),
    pub file_rates: Vec<f64>,
}

impl Metrics {
    /// A sender starts with every file whole.
    pub fn new(layout: &Layout, seeding: bool) -> Self {
        let file_count = layout.file_sizes.len();
        Self {
            progress: (0, 0, 0),
            file_bytes: (0..file_count)
                .map(|i| if seeding { layout.file_sizes[i] } else { 0 })
                .collect(),
            restored: 0,
            uploaded: 0,
            received_total: 0,
            messages_in: 0,
            messages_out: 0,
            channel_peak: 0,
            channel_pauses: 0,
            channel_resumes: 0,
            rate_sample: (now_ms(), 0, 0, vec![0; file_count]),
            rates: (0.0, 0.0),
            file_rates: vec![0.0; file_count],
        }
    }

    /// Updates the rates once at least a second has passed since the last sample.
    pub fn sample_rates(&mut self, now: f64) {
        let (t0, bytes0, up0, files0) = &self.rate_sample;
        let dt = (now - t0) / 1000.0;
        if dt >= 1.0 {
            let bytes = self.progress.2;
            self.rates = (
                (bytes.saturating_sub(*bytes0)) as f64 / dt,
                (self.uploaded.saturating_sub(*up0)) as f64 / dt,
            );
            self.file_rates = self
                .file_bytes
                .iter()
                .zip(files0)
                .map(|(now, then)| now.saturating_sub(*then) as f64 / dt)
                .collect();
            self.rate_sample = (now, bytes, self.uploaded, self.file_bytes.clone());
        }
    }
}
