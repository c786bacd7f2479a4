//! SHA-256 in the browser. SubtleCrypto runs off the main thread and measured 1.2–1.5 GB/s
//! here, far ahead of the sha2 crate in wasm, so pieces are hashed with it; the Merkle tree
//! over the piece hashes (a few thousand leaves) uses sha2.

use super::{js_error, read_slice};
use crate::protocol::manifest::{Hash, Layout, choose_piece_size, merkle_root};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

pub async fn sha256(data: &[u8]) -> Result<Hash, String> {
    let subtle = web_sys::window()
        .ok_or("no window")?
        .crypto()
        .map_err(js_error)?
        .subtle();
    let promise = subtle
        .digest_with_str_and_u8_array("SHA-256", data)
        .map_err(js_error)?;
    let digest = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(js_error)?;
    let bytes = js_sys::Uint8Array::new(&digest).to_vec();
    bytes
        .try_into()
        .map_err(|_| "SubtleCrypto returned a digest of the wrong length".to_string())
}

/// The sha2 crate's SHA-256 of every `piece_size` piece of `data`, 32 bytes each, in
/// this wasm module. Not used for pieces: the browser benchmark calls it (the module's
/// export `sha256PiecesWasm`) on the same buffer as SubtleCrypto to show which of the two
/// is faster here, as the choice above rests on.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = sha256PiecesWasm)]
pub fn sha256_pieces_wasm(data: &[u8], piece_size: usize) -> Vec<u8> {
    use crate::protocol::manifest::{Sha2, Sha256};
    data.chunks(piece_size.max(1))
        .flat_map(|piece| Sha2.digest(piece))
        .collect()
}

/// The hashing workers (`assets/hash-worker.js`): same algorithm as [`hash_files_here`],
/// off the page's main thread so the page stays responsive while gigabytes are hashed.
mod worker_asset {
    use dioxus::prelude::*;
    pub const HASH_WORKER: Asset = asset!("/assets/hash-worker.js");
}
use worker_asset::HASH_WORKER;

/// The piece layout the files get: piece size chosen from their total size.
fn layout_for(files: &[web_sys::File]) -> Result<Layout, String> {
    let sizes: Vec<u64> = files.iter().map(|f| f.size() as u64).collect();
    Layout::new(choose_piece_size(sizes.iter().sum()), sizes).map_err(|e| e.to_string())
}

/// The files' layout, piece hashes and root, hashed in a Web Worker (or on this thread if
/// the worker cannot start). Reports progress as bytes hashed.
pub async fn hash_files(
    files: &[web_sys::File],
    mut progress: impl FnMut(u64),
) -> Result<(Layout, Vec<Hash>, Hash), String> {
    let layout = layout_for(files)?;
    match in_worker(
        files,
        layout.piece_size,
        layout.piece_count(),
        &mut progress,
    )
    .await
    {
        Ok(hashes) if hashes.len() == layout.piece_count() as usize => {
            let root = merkle_root(&hashes);
            Ok((layout, hashes, root))
        }
        Ok(_) => Err("the hashing worker returned the wrong number of hashes".into()),
        Err(WorkerError::Unavailable) => hash_files_here(files, progress).await,
        Err(WorkerError::Failed(e)) => Err(e),
    }
}

enum WorkerError {
    /// The worker could not start: hash on this thread instead.
    Unavailable,
    /// Reading or hashing failed (e.g. the file changed or vanished).
    Failed(String),
}

/// Hashing workers at once. Each reads and hashes every other 16 MiB run. On the 2-core
/// reference machine two workers hashed 1 GiB at 0.72 GB/s against 0.58 GB/s for one
/// (reading alone ran at about 1 GB/s, hashing alone at 1.4 GB/s).
const WORKERS: u32 = 2;

thread_local! {
    /// Hashing workers started before any file is chosen ([`warm_up`]).
    static SPARE: std::cell::RefCell<Vec<web_sys::Worker>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Starts the hashing workers ahead of time, so choosing a file starts hashing at once
/// instead of first fetching and starting the worker script (30–50 ms on the reference
/// machine, measured in a scratch page). The upload page calls this when it opens.
pub fn warm_up() {
    let url = HASH_WORKER.to_string();
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        while spare.len() < WORKERS as usize {
            let Ok(worker) = web_sys::Worker::new(&url) else {
                return;
            };
            spare.push(worker);
        }
    });
}

/// Stops the workers [`warm_up`] started that no hashing took (the page is left).
pub fn release_spare() {
    SPARE.with(|spare| {
        spare
            .borrow_mut()
            .drain(..)
            .for_each(|worker| worker.terminate())
    });
}

/// A started worker if one is waiting, else a new one.
fn worker(url: &str) -> Result<web_sys::Worker, wasm_bindgen::JsValue> {
    match SPARE.with(|spare| spare.borrow_mut().pop()) {
        Some(worker) => Ok(worker),
        None => web_sys::Worker::new(url),
    }
}

/// Hashing workers at work, stopped when dropped: when hashing ends, fails, or its task is
/// dropped (the person left the page mid-hash), so no worker goes on reading gigabytes.
struct Running(Vec<web_sys::Worker>);

impl Drop for Running {
    fn drop(&mut self) {
        for worker in &self.0 {
            // Their handlers' closures are dropped with the hashing task.
            worker.set_onmessage(None);
            worker.set_onerror(None);
            worker.terminate();
        }
    }
}

async fn in_worker(
    files: &[web_sys::File],
    piece_size: u32,
    count: u32,
    progress: &mut impl FnMut(u64),
) -> Result<Vec<Hash>, WorkerError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let url = HASH_WORKER.to_string();
    let (tx, mut rx) = futures_channel::mpsc::unbounded::<(usize, wasm_bindgen::JsValue)>();
    let list = js_sys::Array::new();
    for f in files {
        list.push(f);
    }
    let mut workers = Running(Vec::new());
    let mut closures = Vec::new();
    for part in 0..WORKERS as usize {
        let Ok(worker) = worker(&url) else {
            return Err(WorkerError::Unavailable);
        };
        let tx_msg = tx.clone();
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let _ = tx_msg.unbounded_send((part, e.data()));
            });
        let tx_err = tx.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
            let error = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&error, &"unavailable".into(), &true.into());
            let _ = tx_err.unbounded_send((part, error.into()));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let request = js_sys::Object::new();
        let set = |k: &str, v: &wasm_bindgen::JsValue| {
            let _ = js_sys::Reflect::set(&request, &k.into(), v);
        };
        set("id", &1.into());
        set("files", &list);
        set("piece_size", &piece_size.into());
        set("part", &(part as u32).into());
        set("parts", &WORKERS.into());
        let posted = worker.post_message(&request);
        workers.0.push(worker);
        closures.push((on_message, on_error));
        if posted.is_err() {
            return Err(WorkerError::Unavailable);
        }
    }
    drop(tx);
    let get = |v: &wasm_bindgen::JsValue, k: &str| js_sys::Reflect::get(v, &k.into()).ok();
    let mut hashes = vec![[0u8; 32]; count as usize];
    let mut covered = 0u32;
    let mut done = vec![0u64; WORKERS as usize];
    let mut finished = 0;
    let result = loop {
        let Some((part, msg)) = rx.next().await else {
            break Err(WorkerError::Unavailable);
        };
        if get(&msg, "unavailable").is_some_and(|v| v.is_truthy()) {
            break Err(WorkerError::Unavailable);
        }
        if let Some(error) = get(&msg, "error").and_then(|v| v.as_string()) {
            break Err(WorkerError::Failed(error));
        }
        if let Some(bytes) = get(&msg, "done").and_then(|v| v.as_f64()) {
            done[part] = bytes as u64;
            progress(done.iter().sum());
        }
        let (Some(layer), Some(owned)) = (
            get(&msg, "hashes").filter(|v| !v.is_undefined()),
            get(&msg, "owned").filter(|v| !v.is_undefined()),
        ) else {
            continue;
        };
        let layer = js_sys::Uint8Array::new(&layer).to_vec();
        let owned = js_sys::Uint8Array::new(&owned).to_vec();
        if layer.len() != hashes.len() * 32 || owned.len() != hashes.len() {
            break Err(WorkerError::Failed(
                "the hashing worker returned the wrong number of hashes".into(),
            ));
        }
        for (i, _) in owned.iter().enumerate().filter(|(_, o)| **o == 1) {
            hashes[i].copy_from_slice(&layer[i * 32..i * 32 + 32]);
            covered += 1;
        }
        finished += 1;
        if finished == WORKERS {
            break if covered == count {
                Ok(hashes)
            } else {
                Err(WorkerError::Failed(format!(
                    "the hashing workers covered {covered} of {count} pieces"
                )))
            };
        }
    };
    drop(workers);
    drop(closures);
    result
}

/// The same on this thread: reads one piece at a time per lane (never a whole file).
pub async fn hash_files_here(
    files: &[web_sys::File],
    mut progress: impl FnMut(u64),
) -> Result<(Layout, Vec<Hash>, Hash), String> {
    let layout = layout_for(files)?;
    let mut hashes = Vec::with_capacity(layout.piece_count() as usize);
    let mut done = 0u64;
    // A few pieces in flight keep SubtleCrypto and the file reader busy at once.
    let mut lanes = FuturesOrdered::new();
    let mut next = 0u32;
    while next < layout.piece_count() || !lanes.is_empty() {
        while next < layout.piece_count() && lanes.len() < 4 {
            let span = layout.span(next);
            let file = files[span.file as usize].clone();
            lanes.push_back(async move {
                let data =
                    read_slice(&file, span.offset, span.offset + u64::from(span.len)).await?;
                let digest = sha256(&data).await?;
                Ok::<_, String>((digest, data.len() as u64))
            });
            next += 1;
        }
        if let Some(result) = lanes.next().await {
            let (digest, len) = result?;
            hashes.push(digest);
            done += len;
            progress(done);
        }
    }
    let root = merkle_root(&hashes);
    Ok((layout, hashes, root))
}
