//! What a receiver remembers about each room between visits, in IndexedDB (`meshdrop`):
//! - store `rooms`, keyed by room id: which pieces are on disk (a bitfield), when the room
//!   was last active and whether its files were saved. Small: it is rewritten in one
//!   transaction per batch of pieces (at most about once a second), never per block, and
//!   only ever claims pieces whose write has finished.
//! - store `layers`, same key: the verified piece-hash layer (32 bytes per piece, 512 KiB
//!   for 16,384 pieces), written once with the room's first record and never again.
//!
//! The piece bytes themselves live in OPFS files ([`super::disk`]); the record says which
//! of them count. A reopened room re-hashes the claimed pieces before trusting them.

use super::disk::Disk;
use crate::protocol::manifest::{Hash, from_hex, to_hex};
use idb::{Database, ObjectStore, TransactionMode};
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

const DB: &str = "meshdrop";
/// 2: the hash layer moved out of `rooms` into `layers` (version 1 records are purged).
const VERSION: u32 = 2;
const ROOMS: &str = "rooms";
const LAYERS: &str = "layers";

/// Rooms untouched this long are forgotten, files and all.
pub const KEEP_UNTOUCHED_MS: f64 = 7.0 * 24.0 * 3600.0 * 1000.0;
/// An open room's record is rewritten at least this often, so `touched` stays fresh.
pub const TOUCH_EVERY_MS: f64 = 60.0 * 1000.0;
/// New pieces go into the record at most this often. The record is one small bitfield, so
/// four writes a second cost little, and a reload finds all but the last 250 ms of the
/// download in the cache (at 1 s it lost about 10 MB at this machine's 10-14 MB/s).
pub const RECORD_EVERY_MS: f64 = 250.0;

#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub room: String,
    pub root: Hash,
    /// Bitfield (wire format) of the pieces whose bytes are on disk.
    pub have: Vec<u8>,
    /// Wall-clock milliseconds of the last activity.
    pub touched: f64,
    pub saved: bool,
}

fn idb_error(e: idb::Error) -> String {
    e.to_string()
}

pub async fn open() -> Result<Database, String> {
    Database::builder(DB)
        .version(VERSION)
        .add_object_store(ObjectStore::builder(ROOMS))
        .add_object_store(ObjectStore::builder(LAYERS))
        .build()
        .await
        .map_err(idb_error)
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &key.into(), value);
}

fn field(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn bytes(obj: &JsValue, key: &str) -> Option<Vec<u8>> {
    field(obj, key)
        .dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
}

impl RoomRecord {
    fn to_js(&self) -> JsValue {
        let obj = Object::new();
        set(&obj, "room", &self.room.as_str().into());
        set(&obj, "root", &to_hex(&self.root).into());
        set(&obj, "have", &Uint8Array::from(self.have.as_slice()).into());
        set(&obj, "touched", &self.touched.into());
        set(&obj, "saved", &self.saved.into());
        obj.into()
    }

    /// `None` for anything that is not a well-formed record (it is then ignored and purged).
    /// A version 1 record (with the hash layer inside) counts as damaged.
    fn from_js(value: &JsValue) -> Option<Self> {
        if !field(value, "hashes").is_undefined() {
            return None;
        }
        Some(Self {
            room: field(value, "room").as_string()?,
            root: from_hex(&field(value, "root").as_string()?)?,
            have: bytes(value, "have")?,
            touched: field(value, "touched").as_f64()?,
            saved: field(value, "saved").as_bool().unwrap_or(false),
        })
    }
}

fn layer_to_js(root: &Hash, hashes: &[Hash]) -> JsValue {
    let obj = Object::new();
    let flat: Vec<u8> = hashes.iter().flatten().copied().collect();
    set(&obj, "root", &to_hex(root).into());
    set(&obj, "hashes", &Uint8Array::from(flat.as_slice()).into());
    obj.into()
}

/// The layer stored for `root`, or `None` if there is none (or it is for another root).
fn layer_from_js(value: &JsValue, root: &Hash) -> Option<Vec<Hash>> {
    if from_hex(&field(value, "root").as_string()?)? != *root {
        return None;
    }
    let flat = bytes(value, "hashes")?;
    if flat.len() % 32 != 0 {
        return None;
    }
    Some(
        flat.chunks_exact(32)
            .map(|c| c.try_into().expect("32-byte chunks"))
            .collect(),
    )
}

/// The room's record and its hash layer, if both are there and well-formed.
pub async fn load(db: &Database, room: &str) -> Result<Option<(RoomRecord, Vec<Hash>)>, String> {
    let tx = db
        .transaction(&[ROOMS, LAYERS], TransactionMode::ReadOnly)
        .map_err(idb_error)?;
    let key = JsValue::from_str(room);
    // Both requests are placed before either is awaited, so they share the transaction.
    let record = tx
        .object_store(ROOMS)
        .map_err(idb_error)?
        .get(key.clone())
        .map_err(idb_error)?;
    let layer = tx
        .object_store(LAYERS)
        .map_err(idb_error)?
        .get(key)
        .map_err(idb_error)?;
    let (record, layer) = (
        record.await.map_err(idb_error)?,
        layer.await.map_err(idb_error)?,
    );
    let Some(record) = record.as_ref().and_then(RoomRecord::from_js) else {
        return Ok(None);
    };
    Ok(layer
        .as_ref()
        .and_then(|l| layer_from_js(l, &record.root))
        .map(|hashes| (record, hashes)))
}

/// Writes the record, and with it the hash layer when given (the room's first write), in one
/// transaction; resolves once it is committed.
pub async fn store(
    db: &Database,
    record: &RoomRecord,
    layer: Option<&[Hash]>,
) -> Result<(), String> {
    let stores: &[&str] = if layer.is_some() {
        &[ROOMS, LAYERS]
    } else {
        &[ROOMS]
    };
    let tx = db
        .transaction(stores, TransactionMode::ReadWrite)
        .map_err(idb_error)?;
    let key = JsValue::from_str(&record.room);
    if let Some(hashes) = layer {
        tx.object_store(LAYERS)
            .map_err(idb_error)?
            .put(&layer_to_js(&record.root, hashes), Some(&key))
            .map_err(idb_error)?;
    }
    tx.object_store(ROOMS)
        .map_err(idb_error)?
        .put(&record.to_js(), Some(&key))
        .map_err(idb_error)?;
    let result = tx.await.map_err(idb_error)?;
    if result.is_committed() {
        Ok(())
    } else {
        Err("the cache update was aborted".into())
    }
}

async fn delete(db: &Database, room: &str) -> Result<(), String> {
    let tx = db
        .transaction(&[ROOMS, LAYERS], TransactionMode::ReadWrite)
        .map_err(idb_error)?;
    for store in [ROOMS, LAYERS] {
        tx.object_store(store)
            .map_err(idb_error)?
            .delete(JsValue::from_str(room))
            .map_err(idb_error)?;
    }
    tx.await.map_err(idb_error).map(drop)
}

async fn load_record(db: &Database, room: &str) -> Result<Option<RoomRecord>, String> {
    let value = db
        .transaction(&[ROOMS], TransactionMode::ReadOnly)
        .map_err(idb_error)?
        .object_store(ROOMS)
        .map_err(idb_error)?
        .get(JsValue::from_str(room))
        .map_err(idb_error)?
        .await
        .map_err(idb_error)?;
    Ok(value.as_ref().and_then(RoomRecord::from_js))
}

/// Marks a room's files as saved: its cache goes at the next clean-up after its tab closes.
pub async fn mark_saved(room: &str) -> Result<(), String> {
    let db = open().await?;
    if let Some(mut record) = load_record(&db, room).await? {
        record.saved = true;
        record.touched = js_sys::Date::now();
        store(&db, &record, None).await?;
    }
    Ok(())
}

/// Removes rooms untouched for 7 days, rooms whose files were saved, damaged records, and
/// files on disk that no record claims, except rooms open in some tab (each tab's storage
/// worker holds a Web Lock on its room) and the room this page is opening. Returns the
/// rooms removed.
pub async fn collect_garbage() -> Result<Vec<String>, String> {
    let db = open().await?;
    let now = js_sys::Date::now();
    let tx = db
        .transaction(&[ROOMS, LAYERS], TransactionMode::ReadOnly)
        .map_err(idb_error)?;
    // All three requests are placed before any is awaited, so they share the transaction.
    let rooms = tx.object_store(ROOMS).map_err(idb_error)?;
    let keys = rooms.get_all_keys(None, None).map_err(idb_error)?;
    let all = rooms.get_all(None, None).map_err(idb_error)?;
    let layer_keys = tx
        .object_store(LAYERS)
        .map_err(idb_error)?
        .get_all_keys(None, None)
        .map_err(idb_error)?;
    let keys = keys.await.map_err(idb_error)?;
    let all = all.await.map_err(idb_error)?;
    let layer_keys = layer_keys.await.map_err(idb_error)?;
    let mut keep = Vec::new();
    let mut doomed = Vec::new();
    for (key, value) in keys.iter().zip(all.iter()) {
        let Some(key) = key.as_string() else { continue };
        match RoomRecord::from_js(value) {
            Some(r) if now - r.touched < KEEP_UNTOUCHED_MS && !r.saved => keep.push(key),
            _ => doomed.push(key),
        }
    }
    // A layer whose record is gone (or never committed) goes too.
    for key in layer_keys.iter().filter_map(|k| k.as_string()) {
        if !keep.contains(&key) && !doomed.contains(&key) {
            doomed.push(key);
        }
    }
    let disk = Disk::start()?;
    let (on_disk, busy) = disk.list().await?;
    for room in on_disk {
        if !keep.contains(&room) && !doomed.contains(&room) {
            doomed.push(room);
        }
    }
    // The room this page shows is about to be opened (its lock may not be taken yet):
    // it is never removed from under it.
    let here = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .and_then(|path| {
            path.strip_prefix("/room/")
                .map(|id| id.trim_end_matches('/').to_owned())
        });
    let mut removed = Vec::new();
    for room in doomed
        .iter()
        .filter(|r| !busy.contains(r) && here.as_ref() != Some(*r))
    {
        // Files first: a record without files is harmless, files without a record leak.
        match disk.remove(room).await {
            Ok(()) => {
                delete(&db, room).await?;
                removed.push(room.clone());
            }
            Err(e) => web_sys::console::warn_1(&format!("cache: keeping {room}: {e}").into()),
        }
    }
    db.close();
    Ok(removed)
}

/// Runs the clean-up in the background, logging (not failing) on trouble.
pub fn collect_garbage_soon() {
    wasm_bindgen_futures::spawn_local(async {
        match collect_garbage().await {
            Ok(removed) if !removed.is_empty() => web_sys::console::info_1(
                &format!("meshdrop: removed cached rooms {removed:?}").into(),
            ),
            Ok(_) => {}
            Err(e) => web_sys::console::warn_1(&format!("meshdrop: cache clean-up: {e}").into()),
        }
    });
}
