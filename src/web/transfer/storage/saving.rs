//! Handing the files over: once the selection is complete and on disk the files are closed
//! and offered as save links (object URLs); ticking more files opens them again; and a file
//! may go to a place the person chose ("Save to…", File System Access), written piece by
//! piece as it arrives.

use super::Storage;
use super::resume::mark_saved;
use crate::protocol::FileEntry;
use crate::transfer_view::{Phase, SaveTarget, Saved};
use crate::web::disk::Finished;
use crate::web::transfer::{Ev, State, command};
use wasm_bindgen::JsCast;

/// The files offered for saving and the places chosen for them.
pub struct Saving {
    /// A save link (object URL) per complete file, once the files are closed.
    pub links: Vec<Saved>,
    /// Where each file goes, when the person chose a place for it.
    pub targets: Vec<SaveTarget>,
}

impl Saving {
    pub fn new(files: usize) -> Self {
        Self {
            links: Vec::new(),
            targets: vec![SaveTarget::None; files],
        }
    }

    /// Withdraws the save links (the files are being opened for more pieces).
    pub fn revoke_links(&mut self) {
        // An object URL pins its Blob (for the in-memory fallback, the whole file) until
        // revoked or the page unloads.
        for saved in self.links.drain(..) {
            let _ = web_sys::Url::revoke_object_url(&saved.url);
        }
    }
}

/// The transfer ended with its page (the component unmounted): nothing shows the links any
/// more, and a long-lived tab would keep their Blobs alive.
impl Drop for Saving {
    fn drop(&mut self) {
        self.revoke_links();
    }
}

/// The browser's File System Access save dialog, where there is one (Chromium on desktop).
pub fn save_picker() -> Option<(web_sys::Window, js_sys::Function)> {
    let window = web_sys::window()?;
    let picker = js_sys::Reflect::get(&window, &"showSaveFilePicker".into()).ok()?;
    let picker = picker.dyn_into::<js_sys::Function>().ok()?;
    Some((window, picker))
}

/// Called from "Save to…" (a click, which the dialog requires): asks once where file `file`
/// goes. From then on each of its pieces is written there at its offset as it arrives.
pub fn save_to(file: usize, name: &str) {
    let Some((window, picker)) = save_picker() else {
        return;
    };
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"suggestedName".into(), &name.into());
    let promise = match picker.call1(&window, &options) {
        Ok(p) => js_sys::Promise::from(p),
        Err(e) => return command(Ev::Picked(file, Err(Some(crate::web::js_error(e))))),
    };
    wasm_bindgen_futures::spawn_local(async move {
        let result = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(|e| {
                let name = js_sys::Reflect::get(&e, &"name".into()).ok();
                let cancelled = name.and_then(|n| n.as_string()).as_deref() == Some("AbortError");
                (!cancelled).then(|| crate::web::js_error(e))
            });
        command(Ev::Picked(file, result));
    });
}

fn mime(file: &FileEntry) -> &str {
    if file.mime.is_empty() {
        "application/octet-stream"
    } else {
        &file.mime
    }
}

impl State {
    /// Once complete and every piece is on disk: close the files and offer them for saving.
    pub fn maybe_finish(&mut self) {
        if !self.completed || self.disk.finishing || !self.saving.links.is_empty() {
            return;
        }
        match &self.storage {
            Storage::Disk { disk, files: None } if self.selected_written() => {
                self.disk.finishing = true;
                let disk = disk.clone();
                let tx = self.tx.clone();
                let count = self.room.files.len();
                let commit: Vec<usize> = (0..count)
                    .filter(|&i| {
                        matches!(self.saving.targets[i], SaveTarget::Writing(_))
                            && self.file_complete(i)
                    })
                    .collect();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = disk.finish(count, &commit).await;
                    let _ = tx.unbounded_send(Ev::Finished(result));
                });
            }
            Storage::Memory(_) => {
                self.assemble_from_memory();
                self.done();
            }
            _ => {}
        }
    }

    /// Every piece is on disk and the files are closed: here they are, read-only.
    pub fn on_finished(&mut self, result: Result<Finished, String>) {
        match result {
            Ok(Finished {
                files,
                committed,
                failed,
            }) => {
                self.disk.finishing = false;
                self.offer_files(&files);
                if let Storage::Disk { files: slot, .. } = &mut self.storage {
                    *slot = Some(files);
                }
                for file in committed {
                    self.target_saved(file);
                }
                for (file, e) in failed {
                    self.target_failed(file, e);
                }
                self.done();
                self.flush_record(true);
                if self.selection.queued {
                    self.apply_selection();
                }
            }
            Err(e) => {
                self.disk.finishing = false;
                self.drop_queued_selection();
                self.phase = Phase::Failed(format!("could not close the files: {e}"))
            }
        }
    }

    /// The closed files are open for writing again (more files were selected).
    pub fn on_reopened(&mut self, result: Result<(), String>) {
        self.disk.finishing = false;
        match result {
            Ok(()) => {
                if let Storage::Disk { files, .. } = &mut self.storage {
                    *files = None;
                }
                self.apply_selection();
            }
            Err(e) => {
                self.drop_queued_selection();
                self.phase = Phase::Failed(format!("could not reopen the files: {e}"))
            }
        }
    }

    /// Every file as a Blob of its verified pieces (the in-memory fallback).
    pub fn assemble_from_memory(&mut self) {
        let Storage::Memory(map) = &self.storage else {
            return;
        };
        let mut blobs = Vec::new();
        for (i, file) in self.room.files.iter().enumerate() {
            let parts = js_sys::Array::new();
            for piece in self.room.layout.file_pieces(i) {
                if let Some(data) = map.get(&piece) {
                    parts.push(&js_sys::Uint8Array::from(data.as_ref()));
                }
            }
            let options = web_sys::BlobPropertyBag::new();
            options.set_type(mime(file));
            match web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options) {
                Ok(blob) => blobs.push(blob),
                Err(e) => {
                    return self.log.push(format!(
                        "could not assemble {}: {}",
                        file.name,
                        crate::web::js_error(e)
                    ));
                }
            }
        }
        self.offer_files(&blobs);
    }

    /// A save link (object URL) per file. The disk-backed `File`s cost no memory to save.
    /// Only wholly present files get one (the others were not selected).
    pub fn offer_files<B: AsRef<web_sys::Blob>>(&mut self, blobs: &[B]) {
        let complete: Vec<bool> = (0..self.room.files.len())
            .map(|i| self.file_complete(i))
            .collect();
        for (i, (file, blob)) in self.room.files.iter().zip(blobs).enumerate() {
            if !complete[i] {
                continue;
            }
            match web_sys::Url::create_object_url_with_blob(blob.as_ref()) {
                Ok(url) => self.saving.links.push(Saved {
                    file: i,
                    name: file.name.clone(),
                    url,
                }),
                Err(e) => self.log.push(format!(
                    "could not offer {} for saving: {}",
                    file.name,
                    crate::web::js_error(e)
                )),
            }
        }
    }

    /// The person chose where a file goes, cancelled (`Err(None)`) or the browser refused.
    pub fn on_picked(
        &mut self,
        file: usize,
        result: Result<wasm_bindgen::JsValue, Option<String>>,
    ) {
        match result {
            Ok(handle) => self.attach_target(file, handle),
            Err(Some(e)) => self.target_failed(file, e),
            Err(None) => {}
        }
    }

    /// The person chose where file `file` goes: copy what is here, then write each new piece
    /// there too (the worker does both, in order with the other writes).
    pub fn attach_target(&mut self, file: usize, handle: wasm_bindgen::JsValue) {
        let Storage::Disk { disk, .. } = &self.storage else {
            return;
        };
        // Only files being downloaded (or here) can go somewhere.
        if !self.selection.selected.get(file).copied().unwrap_or(false) {
            return;
        }
        let name = js_sys::Reflect::get(&handle, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .unwrap_or_else(|| self.room.files[file].name.clone());
        // What is on disk when the worker gets to this request: the writes still in its
        // queue land before it, and are not sent to the chosen place themselves.
        let ranges = self
            .room
            .layout
            .held_ranges(file, |p| self.disk.queued.get(p));
        let attach = disk.attach(
            file as u32,
            handle,
            self.room.layout.file_sizes[file],
            &ranges,
            self.file_complete(file),
        );
        self.log.push(format!(
            "saving {} to {name} as it arrives",
            self.room.files[file].name
        ));
        self.saving.targets[file] = SaveTarget::Writing(name);
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = tx.unbounded_send(Ev::Attached(file, attach.await));
        });
        self.render(true);
    }

    /// The chosen place has what was here so far (`Ok(true)`: the whole file, in place).
    pub fn on_attached(&mut self, file: usize, result: Result<bool, String>) {
        match result {
            Ok(true) => self.target_saved(file),
            Ok(false) => {}
            Err(e) => self.target_failed(file, e),
        }
    }

    /// File `file` is complete in the place chosen for it.
    pub fn target_saved(&mut self, file: usize) {
        if let SaveTarget::Writing(name) = &self.saving.targets[file] {
            self.log.push(format!("saved {name}"));
            self.saving.targets[file] = SaveTarget::Saved(name.clone());
            mark_saved(&self.room.id);
        }
    }

    pub fn target_failed(&mut self, file: usize, e: String) {
        if file < self.saving.targets.len() {
            self.log.push(format!(
                "could not save {} there: {e}",
                self.room.files[file].name
            ));
            self.saving.targets[file] = SaveTarget::Failed(e);
        }
    }
}
