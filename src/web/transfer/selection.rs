//! The files a receiver downloads: all, until the person unticks some. The choice is kept
//! in the address (see [`super::fragment`]) and handed to the swarm, waiting while the
//! files are being closed or reopened.

use super::fragment::keep_selection_in_fragment;
use super::storage::Storage;
use super::{Ev, State, command};
use crate::swarm::{Input, Swarm};
use crate::transfer_view::Phase;

/// The selection as the person made it and as the swarm has it.
pub struct Selection {
    /// The files to download (all, until the person unticks some).
    pub selected: Vec<bool>,
    /// The selection the swarm was last given: `selected` while no change waits.
    pub applied: Vec<bool>,
    /// The selection changed while the files were being closed or reopened; it is applied
    /// once that is done.
    pub queued: bool,
    /// Selection changes that had to wait like that (`data-selections-queued`, for tests).
    pub times_queued: u32,
}

impl Selection {
    pub fn new(selected: Vec<bool>) -> Self {
        Self {
            applied: selected.clone(),
            selected,
            queued: false,
            times_queued: 0,
        }
    }
}

/// Called when a file's checkbox changes: download it (`on`) or leave it out.
pub fn select_file(file: usize, on: bool) {
    command(Ev::Select(file, on));
}

impl State {
    /// A file was ticked or unticked. While the files are being closed (the selection had
    /// finished) or reopened, the choice waits for that to end: a write or a close racing
    /// with it would fail.
    pub fn on_select(&mut self, file: usize, on: bool) {
        if !self.can_choose() {
            self.render(true);
            return;
        }
        if file >= self.selection.selected.len() || self.selection.selected[file] == on {
            return;
        }
        self.selection.selected[file] = on;
        keep_selection_in_fragment(&self.selection.selected);
        if self.disk.finishing {
            self.selection.queued = true;
            self.selection.times_queued += 1;
            self.render(true);
            return;
        }
        self.apply_selection();
    }

    /// Files can be chosen by a receiver that is still in the room and has not failed.
    pub fn can_choose(&self) -> bool {
        !self.seeding && self.closed.is_none() && !matches!(self.phase, Phase::Failed(_))
    }

    /// Drops a selection change that waited: it can no longer be applied.
    pub fn drop_queued_selection(&mut self) {
        if std::mem::take(&mut self.selection.queued) {
            self.selection.selected = self.selection.applied.clone();
            keep_selection_in_fragment(&self.selection.selected);
        }
    }

    /// Hands the selection to the swarm. A file ticked after the selection finished needs
    /// the files open for writing again first (the finished ones were closed for saving).
    pub fn apply_selection(&mut self) {
        if !self.can_choose() {
            self.drop_queued_selection();
            self.render(true);
            return;
        }
        self.selection.queued = false;
        let missing = (0..self.selection.selected.len())
            .any(|i| self.selection.selected[i] && !self.file_complete(i));
        if missing && (self.completed || !self.saving.links.is_empty()) {
            self.completed = false;
            self.saving.revoke_links();
            self.phase = Phase::Downloading;
            if let Storage::Disk {
                disk,
                files: Some(_),
            } = &self.storage
            {
                self.disk.finishing = true;
                let (disk, tx) = (disk.clone(), self.tx.clone());
                let (room, layout) = (self.room.id.clone(), self.room.layout.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let result = disk.open(&room, &layout).await;
                    let _ = tx.unbounded_send(Ev::Reopened(result));
                });
                self.render(true);
                return;
            }
            self.disk.finishing = false;
        }
        self.selection.applied = self.selection.selected.clone();
        self.input(Input::Select(self.selection.selected.clone()));
        // The swarm announces completion once per selection; a selection that went back to
        // files already here (ticked, then unticked while reopening) is complete again.
        if !self.seeding && !self.completed && self.swarm.as_ref().is_some_and(Swarm::has_wanted) {
            self.completed = true;
            self.phase = Phase::Finishing;
            self.maybe_finish();
        }
        self.render(true);
    }

    pub fn selected_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.selection
            .selected
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .flat_map(|(i, _)| self.room.layout.file_pieces(i))
    }
}
