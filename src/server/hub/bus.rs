//! Scale-out over Redis: room events on one pub/sub channel, presence in sorted sets.
//!
//! - Every instance publishes its rooms' events (join, leave, signal to a remote peer) as
//!   JSON on [`CHANNEL`] and applies everyone else's ([`super::core::RoomRouter::apply_remote`]
//!   ignores rooms it has no sockets in).
//! - Presence: `meshdrop:presence:<room>` maps each peer to the time its entry expires.
//!   An instance refreshes its own peers every half heartbeat, so a crashed instance's peers
//!   expire after two heartbeats; whichever instance removes an expired entry first
//!   announces the leave. The same sweep reconciles members missed while pub/sub was down.

use super::SignalingHub;
use super::core::RoomEvent;
use crate::protocol::PeerId;
use crate::protocol::RoomId;
use crate::protocol::limits::MAX_SIGNAL_MESSAGE_BYTES;
use deadpool_redis::redis::{self, AsyncCommands};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const CHANNEL: &str = "meshdrop:hub";

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: u64,
    #[serde(flatten)]
    event: RoomEvent,
}

pub struct RedisBus {
    pool: deadpool_redis::Pool,
    client: redis::Client,
    /// This instance, so it skips its own messages.
    instance: u64,
    /// Presence entries live this long without a refresh.
    ttl_ms: u64,
    refresh_ms: u64,
}

fn key(room: RoomId) -> String {
    format!("meshdrop:presence:{room}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RedisBus {
    pub async fn connect(url: &str, heartbeat_ms: u64) -> anyhow::Result<Self> {
        let pool = deadpool_redis::Config::from_url(url)
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        // Fail at start-up, not at the first join, if Redis is unreachable.
        let mut conn = pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("connecting to Redis: {e}"))?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        let client = redis::Client::open(url)?;
        Ok(Self {
            pool,
            client,
            instance: rand::random(),
            ttl_ms: 2 * heartbeat_ms,
            refresh_ms: (heartbeat_ms / 2).max(50),
        })
    }

    pub async fn publish(&self, event: &RoomEvent) {
        let json = serde_json::to_string(&Envelope {
            origin: self.instance,
            event: event.clone(),
        })
        .expect("plain data serializes");
        let result: anyhow::Result<()> = async {
            let mut conn = self.pool.get().await?;
            let _: i64 = conn.publish(CHANNEL, json).await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "publishing a room event to Redis failed");
        }
    }

    /// Records `peer` and returns everyone else present in the room.
    pub async fn presence_join(&self, room: RoomId, peer: PeerId) -> anyhow::Result<Vec<PeerId>> {
        let mut conn = self.pool.get().await?;
        let now = now_ms();
        let (_, _, live): ((), (), Vec<u64>) = redis::pipe()
            .zadd(key(room), peer.0, now + self.ttl_ms)
            .pexpire(key(room), (2 * self.ttl_ms) as i64)
            .zrangebyscore(key(room), now, "+inf")
            .query_async(&mut conn)
            .await?;
        Ok(live
            .into_iter()
            .map(PeerId)
            .filter(|&p| p != peer)
            .collect())
    }

    /// Peers whose presence entry has not expired.
    pub async fn presence_count(&self, room: RoomId) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await?;
        let n: usize = conn.zcount(key(room), now_ms(), "+inf").await?;
        Ok(n)
    }

    pub async fn presence_leave(&self, room: RoomId, peer: PeerId) {
        let result: anyhow::Result<()> = async {
            let mut conn = self.pool.get().await?;
            let _: i64 = conn.zrem(key(room), peer.0).await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "removing presence from Redis failed");
        }
    }

    /// One presence round for a room with local peers: refresh ours, expire the dead,
    /// and reconcile the rest with what the hub believes.
    async fn sweep_room(
        &self,
        hub: &SignalingHub,
        room: RoomId,
        local: &[PeerId],
    ) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        let now = now_ms();
        let mut pipe = redis::pipe();
        for p in local {
            pipe.zadd(key(room), p.0, now + self.ttl_ms).ignore();
        }
        pipe.pexpire(key(room), (2 * self.ttl_ms) as i64).ignore();
        pipe.zrangebyscore(key(room), "-inf", now);
        pipe.zrangebyscore(key(room), now, "+inf");
        let (expired, live): (Vec<u64>, Vec<u64>) = pipe.query_async(&mut conn).await?;
        for p in expired {
            let removed: i64 = conn.zrem(key(room), p).await?;
            let event = RoomEvent::Left {
                room,
                peer: PeerId(p),
            };
            if removed == 1 {
                // We saw it first: tell every instance.
                self.publish(&event).await;
            }
            let _ = hub.apply_remote(event);
        }
        let live: Vec<PeerId> = live.into_iter().map(PeerId).collect();
        for &p in &live {
            if !local.contains(&p) && !hub.is_remote_member(room, p) {
                let _ = hub.apply_remote(RoomEvent::Joined { room, peer: p });
            }
        }
        for p in hub.remote_members(room) {
            if !live.contains(&p) {
                let _ = hub.apply_remote(RoomEvent::Left { room, peer: p });
            }
        }
        Ok(())
    }

    async fn subscribe(&self, hub: &SignalingHub) -> anyhow::Result<()> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let payload: Vec<u8> = msg.get_payload()?;
            if payload.len() > 2 * MAX_SIGNAL_MESSAGE_BYTES {
                tracing::warn!(bytes = payload.len(), "oversized bus message dropped");
                continue;
            }
            match serde_json::from_slice::<Envelope>(&payload) {
                Ok(env) if env.origin == self.instance => {}
                Ok(env) => {
                    let valid = match &env.event {
                        RoomEvent::Signal { payload, .. } => payload.validate().is_ok(),
                        _ => true,
                    };
                    if valid && let Some(refusal) = hub.apply_remote(env.event) {
                        self.publish(&refusal).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "undecodable bus message dropped"),
            }
        }
        anyhow::bail!("Redis subscription ended")
    }
}

/// The subscriber (reconnecting) and the presence sweeper, for the process's lifetime.
pub fn spawn_tasks(hub: SignalingHub) {
    let sub = hub.clone();
    tokio::spawn(async move {
        let bus = sub.0.bus.as_ref().expect("spawned with a bus");
        loop {
            if let Err(e) = bus.subscribe(&sub).await {
                tracing::warn!(error = %e, "Redis subscription lost; retrying in 1 s");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tokio::spawn(async move {
        let bus = hub.0.bus.as_ref().expect("spawned with a bus");
        let mut tick = tokio::time::interval(Duration::from_millis(bus.refresh_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for (room, local) in hub.local_members() {
                if let Err(e) = bus.sweep_room(&hub, room, &local).await {
                    tracing::warn!(error = %e, "presence refresh failed");
                }
            }
        }
    });
}
