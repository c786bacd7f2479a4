//! A receiver's copy on disk: the client side of `assets/disk-worker.js`, which owns the
//! OPFS files of one room (synchronous access handles exist only in workers).
//!
//! Each call posts one request and resolves with the worker's answer. The worker handles
//! requests in order, so a read always sees the writes sent before it.

use super::js_error;
use crate::protocol::manifest::{Hash, Layout};
use futures_channel::oneshot;
use js_sys::{Array, Object, Reflect, Uint8Array};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;

mod worker_asset {
    use dioxus::prelude::*;
    pub const DISK_WORKER: Asset = asset!("/assets/disk-worker.js");
}

type Pending = Rc<RefCell<HashMap<u32, oneshot::Sender<Result<JsValue, String>>>>>;

/// Buffers that went to the worker and came back, for the next write or read: without them
/// every piece left a garbage buffer in both threads until their next garbage collection.
#[derive(Clone, Default)]
struct Pool(Rc<RefCell<Vec<js_sys::ArrayBuffer>>>);

impl Pool {
    /// Buffers kept: more than the writes and reads usually in flight at once.
    const KEEP: usize = 4;

    /// A buffer of at least `len` bytes.
    fn take(&self, len: u32) -> js_sys::ArrayBuffer {
        let mut pool = self.0.borrow_mut();
        match pool.iter().position(|b| b.byte_length() >= len) {
            Some(i) => pool.swap_remove(i),
            None => js_sys::ArrayBuffer::new(len),
        }
    }

    /// Takes back the buffer under a `data` view the worker returned.
    fn give_back(&self, msg: &JsValue) {
        // The view's own buffer (`Uint8Array::new` of a view would copy it into a new one).
        let Ok(data) = get(msg, "data").dyn_into::<Uint8Array>() else {
            return;
        };
        let buffer = data.buffer();
        let mut pool = self.0.borrow_mut();
        if pool.len() < Self::KEEP {
            pool.push(buffer);
        }
    }
}

/// The closed files, and what became of the places chosen for them.
pub struct Finished {
    pub files: Vec<web_sys::File>,
    /// Files now in the place the person chose.
    pub committed: Vec<usize>,
    /// Files whose chosen place could not be written, with the reason.
    pub failed: Vec<(usize, String)>,
}

pub struct Disk {
    worker: web_sys::Worker,
    pending: Pending,
    pool: Pool,
    next_id: Cell<u32>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

impl Disk {
    /// Starts the worker (it opens nothing yet).
    pub fn start() -> Result<Self, String> {
        let worker =
            web_sys::Worker::new(&worker_asset::DISK_WORKER.to_string()).map_err(js_error)?;
        let pending: Pending = Rc::default();
        let answers = pending.clone();
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let msg = e.data();
                let Some(id) = get(&msg, "id").as_f64() else {
                    return;
                };
                let Some(tx) = answers.borrow_mut().remove(&(id as u32)) else {
                    return;
                };
                let result = match get(&msg, "error").as_string() {
                    Some(error) => Err(error),
                    None => Ok(msg),
                };
                let _ = tx.send(result);
            });
        // The worker failed (did not load, or crashed): every waiting call fails.
        let failed = pending.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
            for (_, tx) in failed.borrow_mut().drain() {
                let _ = tx.send(Err("the storage worker stopped".into()));
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Self {
            worker,
            pending,
            pool: Pool::default(),
            next_id: Cell::new(0),
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// Posts one request; the returned future does not borrow `self`.
    fn call(
        &self,
        op: &str,
        args: &[(&str, JsValue)],
        transfer: Option<JsValue>,
    ) -> impl Future<Output = Result<JsValue, String>> + 'static + use<> {
        let id = self.next_id.get().wrapping_add(1);
        self.next_id.set(id);
        let msg = Object::new();
        let _ = Reflect::set(&msg, &"id".into(), &id.into());
        let _ = Reflect::set(&msg, &"op".into(), &op.into());
        for (k, v) in args {
            let _ = Reflect::set(&msg, &(*k).into(), v);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, tx);
        let posted = match transfer {
            Some(t) => self
                .worker
                .post_message_with_transfer(&msg, &Array::of1(&t)),
            None => self.worker.post_message(&msg),
        };
        if let Err(e) = posted {
            self.pending.borrow_mut().remove(&id);
            let error = js_error(e);
            return futures_util::future::Either::Left(async move { Err(error) });
        }
        futures_util::future::Either::Right(async move {
            rx.await
                .unwrap_or_else(|_| Err("the storage worker stopped".into()))
        })
    }

    /// Opens the room's files at the layout's sizes, creating or resizing them, and marks the
    /// room busy (a Web Lock held until the page closes) so no clean-up removes it.
    pub async fn open(&self, room: &str, layout: &Layout) -> Result<(), String> {
        let sizes: Array = layout
            .file_sizes
            .iter()
            .map(|&s| JsValue::from_f64(s as f64))
            .collect();
        self.call(
            "open",
            &[("dir", room.into()), ("sizes", sizes.into())],
            None,
        )
        .await
        .map(drop)
    }

    /// Writes `data` at `at` of file `file`; resolves once the bytes are on disk. When the
    /// file also goes to a place the person chose and writing there failed, resolves with
    /// that error (the download itself goes on).
    pub fn write(
        &self,
        file: u32,
        at: u64,
        data: &[u8],
    ) -> impl Future<Output = Result<Option<String>, String>> + 'static + use<> {
        let buffer = self.pool.take(data.len() as u32);
        let array = Uint8Array::new_with_byte_offset_and_length(&buffer, 0, data.len() as u32);
        array.copy_from(data);
        let call = self.call(
            "write",
            &[
                ("file", file.into()),
                ("at", (at as f64).into()),
                ("data", array.into()),
            ],
            Some(buffer.into()),
        );
        let pool = self.pool.clone();
        async move {
            let msg = call.await?;
            pool.give_back(&msg);
            Ok(get(&msg, "targetError").as_string())
        }
    }

    /// Sends file `file` also to `handle` (a `FileSystemFileHandle` the person chose): the
    /// byte `ranges` already here are copied, later writes follow. Resolves with `true` when
    /// the file was already complete (`complete`) and is now in place.
    pub fn attach(
        &self,
        file: u32,
        handle: JsValue,
        size: u64,
        ranges: &[(u64, u64)],
        complete: bool,
    ) -> impl Future<Output = Result<bool, String>> + 'static + use<> {
        let flat = js_sys::Float64Array::new_with_length(ranges.len() as u32 * 2);
        for (k, &(at, len)) in ranges.iter().enumerate() {
            flat.set_index(2 * k as u32, at as f64);
            flat.set_index(2 * k as u32 + 1, len as f64);
        }
        let call = self.call(
            "attach",
            &[
                ("file", file.into()),
                ("handle", handle),
                ("size", (size as f64).into()),
                ("ranges", flat.into()),
                ("complete", complete.into()),
            ],
            None,
        );
        async move { Ok(get(&call.await?, "committed").as_bool() == Some(true)) }
    }

    pub fn read(
        &self,
        file: u32,
        at: u64,
        len: u32,
    ) -> impl Future<Output = Result<Vec<u8>, String>> + 'static + use<> {
        let buffer = self.pool.take(len);
        let call = self.call(
            "read",
            &[
                ("file", file.into()),
                ("at", (at as f64).into()),
                ("len", len.into()),
                ("buffer", buffer.clone().into()),
            ],
            Some(buffer.into()),
        );
        let pool = self.pool.clone();
        async move {
            let msg = call.await?;
            let data = get(&msg, "data")
                .dyn_into::<Uint8Array>()
                .map_err(|_| "the storage worker returned no data".to_string())?
                .to_vec();
            pool.give_back(&msg);
            Ok(data)
        }
    }

    /// Which of `pieces` still hold bytes with their hash (read back and re-hashed).
    pub async fn verify(
        &self,
        layout: &Layout,
        pieces: &[u32],
        hashes: &[Hash],
    ) -> Result<Vec<bool>, String> {
        let spans = js_sys::Float64Array::new_with_length(pieces.len() as u32 * 3);
        let mut wanted = Vec::with_capacity(pieces.len() * 32);
        for (k, &piece) in pieces.iter().enumerate() {
            let span = layout.span(piece);
            let k = k as u32 * 3;
            spans.set_index(k, f64::from(span.file));
            spans.set_index(k + 1, span.offset as f64);
            spans.set_index(k + 2, f64::from(span.len));
            wanted.extend_from_slice(&hashes[piece as usize]);
        }
        let msg = self
            .call(
                "verify",
                &[
                    ("spans", spans.into()),
                    ("hashes", Uint8Array::from(wanted.as_slice()).into()),
                ],
                None,
            )
            .await?;
        Ok(Uint8Array::new(&get(&msg, "ok"))
            .to_vec()
            .into_iter()
            .map(|b| b == 1)
            .collect())
    }

    /// Closes the files and returns them as `File`s (read-only from then on). The files in
    /// `commit` (complete ones with a chosen place) are put in place.
    pub async fn finish(&self, count: usize, commit: &[usize]) -> Result<Finished, String> {
        let commit: Array = commit.iter().map(|&i| JsValue::from(i as u32)).collect();
        let msg = self
            .call(
                "finish",
                &[("count", (count as u32).into()), ("commit", commit.into())],
                None,
            )
            .await?;
        let files = Array::from(&get(&msg, "files"))
            .iter()
            .map(|f| f.dyn_into::<web_sys::File>().map_err(js_error))
            .collect::<Result<_, _>>()?;
        let committed = Array::from(&get(&msg, "committed"))
            .iter()
            .filter_map(|i| i.as_f64().map(|i| i as usize))
            .collect();
        let failed = Array::from(&get(&msg, "failed"))
            .iter()
            .filter_map(|pair| {
                let pair = Array::from(&pair);
                Some((pair.get(0).as_f64()? as usize, pair.get(1).as_string()?))
            })
            .collect();
        Ok(Finished {
            files,
            committed,
            failed,
        })
    }

    /// Deletes a room's files (closed ones: a room open in another tab stays locked).
    pub async fn remove(&self, room: &str) -> Result<(), String> {
        self.call("remove", &[("dir", room.into())], None)
            .await
            .map(drop)
    }

    /// Rooms that have files on disk, and rooms some tab has open now.
    /// Test-only (`#slowdisk` after the room link): every later write takes at least its
    /// size at `bytes_per_sec`, a disk slower than the swarm.
    pub async fn throttle(&self, bytes_per_sec: u32) -> Result<(), String> {
        self.call("throttle", &[("bytesPerSec", bytes_per_sec.into())], None)
            .await
            .map(|_| ())
    }

    /// Test-only (`#fulldisk` after the room link): writes fail, as on a full disk, once
    /// `bytes` more bytes have been written.
    pub async fn fill_after(&self, bytes: u32) -> Result<(), String> {
        self.call("fill", &[("bytes", bytes.into())], None)
            .await
            .map(|_| ())
    }

    /// Test-only (`#slowclose` after the room link): closing the files, and opening them
    /// again once they were open, takes `ms` longer.
    pub async fn slow_close(&self, ms: u32) -> Result<(), String> {
        self.call("slowClose", &[("ms", ms.into())], None)
            .await
            .map(|_| ())
    }

    pub async fn list(&self) -> Result<(Vec<String>, Vec<String>), String> {
        let msg = self.call("list", &[], None).await?;
        let strings = |key| {
            Array::from(&get(&msg, key))
                .iter()
                .filter_map(|n| n.as_string())
                .collect()
        };
        Ok((strings("names"), strings("busy")))
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}
