//! The view handed to the page: built from every part of the state, at most four times a
//! second.

use super::State;
use super::storage::Storage;
use super::storage::saving::save_picker;
use crate::transfer_view::{FileRow, TransferView};
use crate::web::now_ms;
use wasm_bindgen::JsCast;

/// How the transfer reaches the page, and when it last did.
pub struct View {
    /// The page's callback (`Setup::report`).
    pub report: Box<dyn Fn(TransferView)>,
    pub rendered_ms: f64,
    /// The first verified bytes were shown (they are shown at once).
    pub shown_bytes: bool,
    /// The "closing stops sharing" question is on.
    pub warned_unload: bool,
    _unload: UnloadWarning,
}

impl View {
    pub fn new(report: Box<dyn Fn(TransferView)>) -> Self {
        Self {
            report,
            rendered_ms: 0.0,
            shown_bytes: false,
            warned_unload: true,
            _unload: UnloadWarning,
        }
    }
}

/// Turns the "closing stops sharing" question off when the transfer ends with its page
/// (nothing is shared any more to warn about).
struct UnloadWarning;

impl Drop for UnloadWarning {
    fn drop(&mut self) {
        crate::web::warn_before_unload(false);
    }
}

impl State {
    /// Publishes to the page at most four times a second (or at once when `force`).
    pub fn render(&mut self, force: bool) {
        let now = now_ms();
        // The first verified bytes show at once (the "first byte" measurement reads them).
        let first_bytes = !self.seeding && self.metrics.progress.2 > 0 && !self.view.shown_bytes;
        if !force && !first_bytes && now - self.view.rendered_ms < 250.0 {
            return;
        }
        self.view.shown_bytes |= self.metrics.progress.2 > 0;
        self.view.rendered_ms = now;
        self.metrics.sample_rates(now);
        let peers = self.peers.rows();
        // The sender's tab asks before closing only while nobody else has every piece.
        if self.seeding {
            let total = self.room.layout.piece_count();
            // A tab that no longer shares (the room closed) has nothing to warn about.
            let only_copy =
                self.closed.is_none() && !peers.iter().any(|p| p.pieces >= total && total > 0);
            if only_copy != self.view.warned_unload {
                self.view.warned_unload = only_copy;
                crate::web::warn_before_unload(only_copy);
            }
        }
        // A receiver's totals cover the files it selected.
        let (bytes, total_bytes) = if self.seeding {
            (self.room.layout.total_size(), self.room.layout.total_size())
        } else {
            let selected = || {
                self.selection
                    .selected
                    .iter()
                    .enumerate()
                    .filter(|(_, on)| **on)
                    .map(|(i, _)| i)
            };
            (
                selected().map(|i| self.metrics.file_bytes[i]).sum(),
                selected().map(|i| self.room.layout.file_sizes[i]).sum(),
            )
        };
        let stats = self
            .swarm
            .as_ref()
            .map(|s| s.stats.clone())
            .unwrap_or_default();
        let view = TransferView {
            wasted: stats.wasted_bytes,
            messages_in: self.metrics.messages_in,
            messages_out: self.metrics.messages_out,
            stalls: stats.stalls,
            endgame: stats.endgame_requests,
            phase: self.phase.clone(),
            have: self.metrics.progress.0,
            total: self.room.layout.piece_count(),
            bytes,
            files: self
                .room
                .files
                .iter()
                .zip(&self.metrics.file_bytes)
                .zip(&self.metrics.file_rates)
                .zip(&self.selection.selected)
                .zip(&self.saving.targets)
                .map(|((((f, &have), &rate), &selected), target)| FileRow {
                    name: f.name.clone(),
                    size: f.size,
                    have,
                    rate,
                    selected,
                    target: target.clone(),
                })
                .collect(),
            can_pick: matches!(self.storage, Storage::Disk { .. }) && save_picker().is_some(),
            disk_backlog_peak: self.disk.backlog_peak,
            channel_peak: self.metrics.channel_peak,
            channel_pauses: self.metrics.channel_pauses,
            channel_resumes: self.metrics.channel_resumes,
            renewed: self.hub.renewed,
            closing: self.disk.finishing,
            selections_queued: self.selection.times_queued,
            cache_writes: self.resume.writes,
            heap: wasm_bindgen::memory()
                .dyn_into::<js_sys::WebAssembly::Memory>()
                .map(|m| u64::from(js_sys::ArrayBuffer::from(m.buffer()).byte_length()))
                .unwrap_or(0),
            restored: self.metrics.restored,
            received: self.metrics.received_total,
            room: self.room.id.clone(),
            total_bytes,
            down_rate: self.metrics.rates.0,
            up_rate: self.metrics.rates.1,
            uploaded: self.metrics.uploaded,
            peers,
            no_path: self.peers.no_path.iter().map(|p| p.0).collect(),
            me: self.hub.me.0,
            members: self.hub.members.len(),
            saved: self.saving.links.clone(),
            log: self.log.latest(20),
        };
        (self.view.report)(view);
    }
}
