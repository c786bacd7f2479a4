//! What a receiver remembers about each room between visits, in IndexedDB (`meshdrop`,
//! store `rooms`, keyed by room id): the verified piece-hash layer, which pieces are on disk
//! (a bitfield), when the room was last active and whether its files were saved.
//!
//! The piece bytes themselves live in OPFS files ([`super::disk`]); this record says which
//! of them count. It is rewritten in one transaction per batch of pieces (at most about
//! once a second), never per block, and only ever claims pieces whose write has finished.
//! A reopened room re-hashes the claimed pieces before trusting them.

use super::disk::Disk;
use crate::protocol::manifest::{Hash, from_hex, to_hex};
use idb::{Database, ObjectStore, TransactionMode};
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

const DB: &str = "meshdrop";
const ROOMS: &str = "rooms";

/// Rooms untouched this long are forgotten, files and all.
pub const KEEP_UNTOUCHED_MS: f64 = 7.0 * 24.0 * 3600.0 * 1000.0;
/// An open room's record is rewritten at least this often, so `touched` stays fresh.
pub const TOUCH_EVERY_MS: f64 = 60.0 * 1000.0;

#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub room: String,
    pub root: Hash,
    /// The piece-hash layer (already checked against `root` when it was first received).
    pub hashes: Vec<Hash>,
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
        .version(1)
        .add_object_store(ObjectStore::builder(ROOMS))
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

impl RoomRecord {
    fn to_js(&self) -> JsValue {
        let obj = Object::new();
        let hashes: Vec<u8> = self.hashes.iter().flatten().copied().collect();
        set(&obj, "room", &self.room.as_str().into());
        set(&obj, "root", &to_hex(&self.root).into());
        set(&obj, "hashes", &Uint8Array::from(hashes.as_slice()).into());
        set(&obj, "have", &Uint8Array::from(self.have.as_slice()).into());
        set(&obj, "touched", &self.touched.into());
        set(&obj, "saved", &self.saved.into());
        obj.into()
    }

    /// `None` for anything that is not a well-formed record (it is then ignored and purged).
    fn from_js(value: &JsValue) -> Option<Self> {
        let bytes = |k: &str| {
            let v = field(value, k);
            v.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec)
        };
        let hashes = bytes("hashes")?;
        if hashes.len() % 32 != 0 {
            return None;
        }
        Some(Self {
            room: field(value, "room").as_string()?,
            root: from_hex(&field(value, "root").as_string()?)?,
            hashes: hashes
                .chunks_exact(32)
                .map(|c| c.try_into().expect("32-byte chunks"))
                .collect(),
            have: bytes("have")?,
            touched: field(value, "touched").as_f64()?,
            saved: field(value, "saved").as_bool().unwrap_or(false),
        })
    }
}

pub async fn load(db: &Database, room: &str) -> Result<Option<RoomRecord>, String> {
    let tx = db
        .transaction(&[ROOMS], TransactionMode::ReadOnly)
        .map_err(idb_error)?;
    let value = tx
        .object_store(ROOMS)
        .map_err(idb_error)?
        .get(JsValue::from_str(room))
        .map_err(idb_error)?
        .await
        .map_err(idb_error)?;
    Ok(value.as_ref().and_then(RoomRecord::from_js))
}

/// Writes the record in one transaction; resolves once it is committed.
pub async fn store(db: &Database, record: &RoomRecord) -> Result<(), String> {
    let tx = db
        .transaction(&[ROOMS], TransactionMode::ReadWrite)
        .map_err(idb_error)?;
    tx.object_store(ROOMS)
        .map_err(idb_error)?
        .put(&record.to_js(), Some(&JsValue::from_str(&record.room)))
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
        .transaction(&[ROOMS], TransactionMode::ReadWrite)
        .map_err(idb_error)?;
    tx.object_store(ROOMS)
        .map_err(idb_error)?
        .delete(JsValue::from_str(room))
        .map_err(idb_error)?;
    tx.await.map_err(idb_error).map(drop)
}

/// Marks a room's files as saved: its cache goes at the next clean-up after its tab closes.
pub async fn mark_saved(room: &str) -> Result<(), String> {
    let db = open().await?;
    if let Some(mut record) = load(&db, room).await? {
        record.saved = true;
        record.touched = js_sys::Date::now();
        store(&db, &record).await?;
    }
    Ok(())
}

/// Removes rooms untouched for 7 days, rooms whose files were saved, damaged records, and
/// files on disk that no record claims, except rooms open in some tab (each tab's storage
/// worker holds a Web Lock on its room). Returns the rooms removed.
pub async fn collect_garbage() -> Result<Vec<String>, String> {
    let db = open().await?;
    let now = js_sys::Date::now();
    let tx = db
        .transaction(&[ROOMS], TransactionMode::ReadOnly)
        .map_err(idb_error)?;
    let all = tx
        .object_store(ROOMS)
        .map_err(idb_error)?
        .get_all(None, None)
        .map_err(idb_error)?
        .await
        .map_err(idb_error)?;
    let keys = db
        .transaction(&[ROOMS], TransactionMode::ReadOnly)
        .map_err(idb_error)?
        .object_store(ROOMS)
        .map_err(idb_error)?
        .get_all_keys(None, None)
        .map_err(idb_error)?
        .await
        .map_err(idb_error)?;
    let mut keep = Vec::new();
    let mut doomed = Vec::new();
    for (key, value) in keys.iter().zip(all.iter()) {
        let Some(key) = key.as_string() else { continue };
        match RoomRecord::from_js(value) {
            Some(r) if now - r.touched < KEEP_UNTOUCHED_MS && !r.saved => keep.push(key),
            _ => doomed.push(key),
        }
    }
    let disk = Disk::start()?;
    let (on_disk, busy) = disk.list().await?;
    for room in on_disk {
        if !keep.contains(&room) && !doomed.contains(&room) {
            doomed.push(room);
        }
    }
    let mut removed = Vec::new();
    for room in doomed.iter().filter(|r| !busy.contains(r)) {
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
