//! Where sessions live: in memory for the embedded default, in Redis when `REDIS_URL` is set
//! (so sessions survive restarts and every instance sees them).
//!
//! Redis layout: `meshdrop:session:<id>` holds the session data as JSON and expires with the
//! session (`EXAT`), so Redis does the clean-up.

use async_trait::async_trait;
use deadpool_redis::redis::AsyncCommands;
use deadpool_redis::{Pool, Runtime};
use std::collections::HashMap;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use tower_sessions::{MemoryStore, SessionStore};

#[derive(Clone, Debug)]
pub enum Sessions {
    Memory(MemoryStore),
    Redis(RedisSessions),
}

impl Sessions {
    pub fn memory() -> Self {
        Sessions::Memory(MemoryStore::default())
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
