//! Where sessions live: in memory for the embedded default, in Redis when `REDIS_URL` is set
//! (so sessions survive restarts and every instance sees them).
//!
//! The memory store drops expired sessions as it goes and holds at most
//! [`MAX_MEMORY_SESSIONS`], so requests that start sessions cannot grow it without bound.
//!
//! Redis layout: `meshdrop:session:<id>` holds the session data as JSON and expires with the
//! session (`EXAT`), so Redis does the clean-up.

use async_trait::async_trait;
use deadpool_redis::redis::AsyncCommands;
use deadpool_redis::{Pool, Runtime};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower_sessions::SessionStore;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

#[derive(Clone, Debug)]
pub enum Sessions {
    Memory(MemorySessions),
    Redis(RedisSessions),
}

impl Sessions {
    pub fn memory() -> Self {
        Sessions::Memory(MemorySessions::default())
    }

    pub fn redis(url: &str) -> anyhow::Result<Self> {
        let pool = deadpool_redis::Config::from_url(url).create_pool(Some(Runtime::Tokio1))?;
        Ok(Sessions::Redis(RedisSessions { pool }))
    }
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        match self {
            Sessions::Memory(s) => s.create(record).await,
            Sessions::Redis(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> Result<()> {
        match self {
            Sessions::Memory(s) => s.save(record).await,
            Sessions::Redis(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        match self {
            Sessions::Memory(s) => s.load(id).await,
            Sessions::Redis(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        match self {
            Sessions::Memory(s) => s.delete(id).await,
            Sessions::Redis(s) => s.delete(id).await,
        }
    }
}

/// Most sessions the memory store keeps (a few hundred bytes each).
pub const MAX_MEMORY_SESSIONS: usize = 100_000;

#[derive(Clone, Debug, Default)]
pub struct MemorySessions {
    records: Arc<Mutex<HashMap<Id, Record>>>,
}

impl MemorySessions {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.records().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let mut records = self.records();
        if records.len() >= MAX_MEMORY_SESSIONS {
            let now = OffsetDateTime::now_utc();
            records.retain(|_, r| r.expiry_date > now);
            if records.len() >= MAX_MEMORY_SESSIONS {
                return Err(Error::Backend("too many sessions; try again later".into()));
            }
        }
        while records.contains_key(&record.id) {
            record.id = Id::default();
        }
        records.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let mut records = self.records();
        if records.len() >= MAX_MEMORY_SESSIONS && !records.contains_key(&record.id) {
            return Err(Error::Backend("too many sessions; try again later".into()));
        }
        records.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut records = self.records();
        match records.get(id) {
            Some(r) if r.expiry_date > OffsetDateTime::now_utc() => Ok(Some(r.clone())),
            Some(_) => {
                records.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.records().remove(id);
        Ok(())
    }
}

#[derive(Clone)]
pub struct RedisSessions {
    pool: Pool,
}

impl std::fmt::Debug for RedisSessions {
    // The pool's config holds the Redis URL, which may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisSessions")
    }
}

fn key(id: &Id) -> String {
    format!("meshdrop:session:{id}")
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

impl RedisSessions {
    async fn connection(&self) -> Result<deadpool_redis::Connection> {
        self.pool.get().await.map_err(backend)
    }

    /// Writes the record; with `only_new`, refuses to overwrite an existing id.
    async fn write(&self, record: &Record, only_new: bool) -> Result<bool> {
        use deadpool_redis::redis::{ExistenceCheck, SetExpiry, SetOptions};
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        let mut options = SetOptions::default().with_expiration(SetExpiry::EXAT(
            record.expiry_date.unix_timestamp().max(1) as u64,
        ));
        if only_new {
            options = options.conditional_set(ExistenceCheck::NX);
        }
        let mut conn = self.connection().await?;
        let written: Option<String> = conn
            .set_options(key(&record.id), data, options)
            .await
            .map_err(backend)?;
        Ok(written.is_some())
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A 128-bit random id practically never collides, but never overwrite one that does.
        while !self.write(record, true).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.write(record, false).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut conn = self.connection().await?;
        let k = key(id);
        let (data, ttl): (Option<String>, i64) = deadpool_redis::redis::pipe()
            .get(&k)
            .ttl(&k)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let Some(data) = data else {
            return Ok(None);
        };
        let data: HashMap<String, serde_json::Value> =
            serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date =
            OffsetDateTime::now_utc() + tower_sessions::cookie::time::Duration::seconds(ttl.max(1));
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let mut conn = self.connection().await?;
        let _: i64 = conn.del(key(id)).await.map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::cookie::time::Duration;

    fn record(expires_in: Duration) -> Record {
        Record {
            id: Id::default(),
            data: HashMap::new(),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn memory_sessions_expire_and_stay_bounded() {
        let store = MemorySessions::default();
        let mut live = record(Duration::hours(1));
        store.create(&mut live).await.unwrap();
        let mut stale = record(Duration::seconds(-1));
        store.create(&mut stale).await.unwrap();
        assert!(store.load(&live.id).await.unwrap().is_some());
        assert!(store.load(&stale.id).await.unwrap().is_none(), "expired");
        assert_eq!(store.len(), 1, "an expired session is dropped when seen");

        // Full of expired sessions: creating one sweeps them out.
        for _ in 0..MAX_MEMORY_SESSIONS {
            let r = record(Duration::seconds(-1));
            store.records().insert(r.id, r);
        }
        let mut fresh = record(Duration::hours(1));
        store.create(&mut fresh).await.unwrap();
        assert_eq!(store.len(), 2);
        // Full of live sessions: new ones are refused instead of growing without bound.
        for _ in 0..MAX_MEMORY_SESSIONS {
            let r = record(Duration::hours(1));
            store.records().insert(r.id, r);
        }
        assert!(store.create(&mut record(Duration::hours(1))).await.is_err());
    }
}
