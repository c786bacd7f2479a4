//! The signaling hub: who is in which room, and relaying WebRTC negotiation between them.
//!
//! - [`core`]: the routing rules ([`core::RoomRouter`]), pure and unit-tested.
//! - [`socket`]: one WebSocket's loop (limits, heartbeat), generic over `Sink + Stream`.
//! - [`bus`]: Redis pub/sub and TTL'd presence, so several instances share rooms.
//!
//! [`SignalingHub`] is the glue: it owns the core behind a mutex (held only for in-memory work,
//! never across an await), one bounded queue per local socket, and the optional bus.

pub mod bus;
pub mod core;
pub mod socket;

use self::core::{Delivery, HubError, RoomEvent, Route};
use crate::protocol::PeerId;
use crate::protocol::RoomId;
use crate::protocol::limits::HubLimits;
use crate::protocol::signal::{IceServer, ServerMessage, SignalPayload};
use crate::server::turn::IceConfig;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The server's signaling hub, shared by every socket handler (a cheap clone).
#[derive(Clone)]
pub struct SignalingHub(Arc<Inner>);

struct Inner {
    limits: HubLimits,
    ice: IceConfig,
    shared: Mutex<Shared>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    bus: Option<bus::RedisBus>,
}

#[derive(Default)]
struct Shared {
    core: self::core::RoomRouter,
    /// Outgoing queue of each local socket. Dropping a sender tells its socket to close.
    sockets: HashMap<PeerId, mpsc::Sender<ServerMessage>>,
}

/// A joined socket: its id, its queue, and what to put in its welcome.
pub struct Session {
    pub peer: PeerId,
    pub room: RoomId,
    pub rx: mpsc::Receiver<ServerMessage>,
    pub welcome: ServerMessage,
    _ip: IpGuard,
}

/// Counts a socket against its address until dropped.
struct IpGuard {
    hub: SignalingHub,
    ip: IpAddr,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut per_ip = self.hub.0.per_ip.lock().expect("per-ip lock");
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Why a socket could not join, as a close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
}

impl SignalingHub {
    /// A hub for this instance; with a Redis URL it joins the other instances' rooms.
    pub async fn start(
        limits: HubLimits,
        ice: IceConfig,
        redis_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        let bus = match redis_url {
            Some(url) => Some(bus::RedisBus::connect(url, limits.heartbeat_ms).await?),
            None => None,
        };
        let hub = SignalingHub(Arc::new(Inner {
            limits,
            ice,
            shared: Mutex::new(Shared::default()),
            per_ip: Mutex::new(HashMap::new()),
            bus,
        }));
        if hub.0.bus.is_some() {
            bus::spawn_tasks(hub.clone());
        }
        Ok(hub)
    }

    pub fn limits(&self) -> &HubLimits {
        &self.0.limits
    }

    pub fn ice_servers(&self, peer: PeerId, now: i64, not_after: i64) -> Vec<IceServer> {
        self.0.ice.servers_for(peer, now, not_after)
    }

    /// When a socket whose ticket expires at `not_after` should send a fresh one: after
    /// three quarters of what is left of the ticket, or of the TURN credentials handed out
    /// with it if they expire first (at least a second from now).
    pub fn renew_in_ms(&self, now: i64, not_after: i64) -> u64 {
        let mut left = (not_after - now).max(0);
        if let Some(turn) = self.0.ice.turn_valid_secs(now, not_after) {
            left = left.min(turn);
        }
        (left as u64 * 750).max(1000)
    }

    /// Admits a socket from `ip` into `room`: address limit, room limit, then presence.
    pub async fn join(
        &self,
        room: RoomId,
        ip: IpAddr,
        ticket_exp: i64,
        now: i64,
    ) -> Result<Session, Refusal> {
        use crate::protocol::signal::close;
        let ip_guard = {
            let mut per_ip = self.0.per_ip.lock().expect("per-ip lock");
            let n = per_ip.entry(ip).or_default();
            if *n >= self.0.limits.max_sockets_per_ip {
                return Err(Refusal {
                    code: close::TOO_MANY_CONNECTIONS,
                    reason: format!(
                        "at most {} connections per address",
                        self.0.limits.max_sockets_per_ip
                    ),
                });
            }
            *n += 1;
            IpGuard {
                hub: self.clone(),
                ip,
            }
        };
        // 52 random bits: ids stay exact in JavaScript numbers.
        let peer = PeerId(rand::random::<u64>() >> 12 | 1);
        let (tx, rx) = mpsc::channel(self.0.limits.outbound_queue);
        let mut others = {
            let mut shared = self.0.shared.lock().expect("hub lock");
            let (others, deliveries) = shared
                .core
                .join(room, peer, self.0.limits.max_peers_per_room)
                .map_err(|e| Refusal {
                    code: match e {
                        HubError::RoomClosed => close::ROOM_CLOSED,
                        _ => close::ROOM_FULL,
                    },
                    reason: e.to_string(),
                })?;
            shared.sockets.insert(peer, tx);
            shared.deliver(deliveries);
            others
        };
        if let Some(bus) = &self.0.bus {
            match bus.presence_join(room, peer).await {
                Ok(remote) => {
                    let mut shared = self.0.shared.lock().expect("hub lock");
                    shared.core.add_remote_members(room, remote.iter().copied());
                    for p in remote {
                        if p != peer && !others.contains(&p) {
                            others.push(p);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "presence unavailable; remote peers may be missing")
                }
            }
            bus.publish(&RoomEvent::Joined { room, peer }).await;
        }
        others.sort_unstable();
        let welcome = ServerMessage::Welcome {
            you: peer,
            members: others,
            ice_servers: self.ice_servers(peer, now, ticket_exp),
            heartbeat_ms: self.0.limits.heartbeat_ms,
            renew_in_ms: self.renew_in_ms(now, ticket_exp),
        };
        Ok(Session {
            peer,
            room,
            rx,
            welcome,
            _ip: ip_guard,
        })
    }

    /// Relays a signal from a local peer. The sender is the session's own id.
    pub async fn signal(
        &self,
        room: RoomId,
        from: PeerId,
        to: PeerId,
        payload: SignalPayload,
    ) -> Result<(), HubError> {
        let route = {
            let mut shared = self.0.shared.lock().expect("hub lock");
            let route = shared.core.signal(room, from, to, payload)?;
            if let Route::Local(delivery) = route {
                if shared.too_busy_for_signals(delivery.to) {
                    return Err(HubError::Busy(delivery.to.0));
                }
                shared.deliver(vec![delivery]);
                return Ok(());
            }
            route
        };
        if let (Route::Remote(event), Some(bus)) = (route, &self.0.bus) {
            bus.publish(&event).await;
        }
        Ok(())
    }

    /// A local socket is gone.
    pub async fn leave(&self, room: RoomId, peer: PeerId) {
        {
            let mut shared = self.0.shared.lock().expect("hub lock");
            shared.sockets.remove(&peer);
            let deliveries = shared.core.leave(room, peer);
            shared.deliver(deliveries);
        }
        if let Some(bus) = &self.0.bus {
            bus.presence_leave(room, peer).await;
            bus.publish(&RoomEvent::Left { room, peer }).await;
        }
    }

    /// The room was revoked: its sockets here and on every other instance are told and
    /// closed. Tickets are refused by the room check before any new socket joins.
    pub async fn close_room(&self, room: RoomId, reason: &str) {
        {
            let mut shared = self.0.shared.lock().expect("hub lock");
            let deliveries = shared.core.close_room(room, reason);
            shared.deliver(deliveries);
        }
        if let Some(bus) = &self.0.bus {
            bus.publish(&RoomEvent::Closed {
                room,
                reason: reason.to_owned(),
            })
            .await;
        }
    }

    /// The room expired and was purged: whoever is still in it (here or, through the bus,
    /// on other instances) is told and disconnected. Empty rooms are left alone, so purging
    /// many rooms does not fill the set of closed ones.
    pub async fn expire_room(&self, room: RoomId) {
        if self.online(room).await > 0 {
            self.close_room(room, "this room expired").await;
        }
    }

    /// Peers connected to the room now: from shared presence with Redis, else this
    /// instance's own count.
    pub async fn online(&self, room: RoomId) -> usize {
        if let Some(bus) = &self.0.bus {
            match bus.presence_count(room).await {
                Ok(n) => return n,
                Err(e) => tracing::warn!(error = %e, "reading presence from Redis failed"),
            }
        }
        self.0
            .shared
            .lock()
            .expect("hub lock")
            .core
            .member_count(room)
    }

    /// Something another instance published. A relayed signal is held to the same rule as
    /// a local one (see [`Shared::too_busy_for_signals`]): when its target is busy it is
    /// dropped, and the returned refusal is for the bus, to tell the sender.
    fn apply_remote(&self, event: RoomEvent) -> Option<RoomEvent> {
        let mut shared = self.0.shared.lock().expect("hub lock");
        let signal = match &event {
            RoomEvent::Signal { room, from, .. } => Some((*room, *from)),
            _ => None,
        };
        let mut deliveries = shared.core.apply_remote(event);
        let mut refusal = None;
        if let Some((room, from)) = signal {
            deliveries.retain(|d| {
                let busy = shared.too_busy_for_signals(d.to);
                if busy {
                    refusal = Some(RoomEvent::Refused {
                        room,
                        busy: d.to,
                        to: from,
                    });
                }
                !busy
            });
        }
        shared.deliver(deliveries);
        refusal
    }

    fn local_members(&self) -> Vec<(RoomId, Vec<PeerId>)> {
        self.0.shared.lock().expect("hub lock").core.local_members()
    }

    fn remote_members(&self, room: RoomId) -> Vec<PeerId> {
        self.0
            .shared
            .lock()
            .expect("hub lock")
            .core
            .remote_members(room)
    }

    fn is_remote_member(&self, room: RoomId, peer: PeerId) -> bool {
        self.0
            .shared
            .lock()
            .expect("hub lock")
            .core
            .is_remote_member(room, peer)
    }

    /// Sockets open on this instance.
    pub fn socket_count(&self) -> usize {
        self.0.shared.lock().expect("hub lock").sockets.len()
    }
}

impl Shared {
    /// Signals stop at half the target's queue, so no sender (here or on another instance)
    /// can fill it and get the target cut loose; room news (joins, leaves) keeps the other
    /// half.
    fn too_busy_for_signals(&self, to: PeerId) -> bool {
        self.sockets
            .get(&to)
            .is_some_and(|tx| tx.capacity() <= tx.max_capacity() / 2)
    }

    /// Queues each message; a socket whose queue is full is cut loose (its loop then closes
    /// it as too slow) so one stalled reader never holds up a room.
    fn deliver(&mut self, deliveries: Vec<Delivery>) {
        for Delivery { to, msg } in deliveries {
            let Some(tx) = self.sockets.get(&to) else {
                continue;
            };
            if tx.try_send(msg).is_err() {
                self.sockets.remove(&to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub without a bus whose sockets each queue at most `queue` messages.
    async fn hub_with_queues_of(queue: usize) -> SignalingHub {
        let limits = HubLimits {
            outbound_queue: queue,
            ..HubLimits::default()
        };
        SignalingHub::start(limits, IceConfig::default(), None)
            .await
            .unwrap()
    }

    /// A local socket joining `room` from 127.0.0.1 with a ticket good for an hour.
    async fn join(hub: &SignalingHub, room: RoomId) -> Session {
        let now = crate::server::rooms::now_secs();
        hub.join(room, IpAddr::from([127, 0, 0, 1]), now + 3600, now)
            .await
            .unwrap()
    }

    /// One peer sending signals to another that is slow to read fills at most half of the
    /// target's queue: then the sender is refused, and the target stays connected.
    #[tokio::test]
    async fn a_sender_cannot_fill_a_slow_peers_queue() {
        let hub = hub_with_queues_of(16).await;
        let room = RoomId::from_bytes([3; 16]);
        let flooder = join(&hub, room).await;
        let mut slow = join(&hub, room).await;
        let offer = || SignalPayload::Offer { sdp: "v=0".into() };
        let mut delivered = 0;
        let refused = loop {
            match hub.signal(room, flooder.peer, slow.peer, offer()).await {
                Ok(()) => delivered += 1,
                Err(e) => break e,
            }
            assert!(delivered <= 16, "the whole queue was filled");
        };
        assert_eq!(refused, HubError::Busy(slow.peer.0));
        assert_eq!(delivered, 8);
        assert_eq!(hub.socket_count(), 2, "the slow peer was cut loose");
        // Room news still reaches it, and once it reads, signals flow again.
        let third = join(&hub, room).await;
        while slow.rx.try_recv().is_ok() {}
        assert!(
            hub.signal(room, flooder.peer, slow.peer, offer())
                .await
                .is_ok()
        );
        drop(third);
    }

    /// The same rule for a signal relayed from another instance: past half the target's
    /// queue it is dropped, and a refusal goes back over the bus for its sender.
    #[tokio::test]
    async fn a_remote_sender_cannot_fill_a_slow_peers_queue() {
        let hub = hub_with_queues_of(16).await;
        let room = RoomId::from_bytes([4; 16]);
        let mut slow = join(&hub, room).await;
        let remote = PeerId(u64::MAX - 1);
        assert_eq!(
            hub.apply_remote(RoomEvent::Joined { room, peer: remote }),
            None
        );
        let signal = || RoomEvent::Signal {
            room,
            from: remote,
            to: slow.peer,
            payload: SignalPayload::Offer { sdp: "v=0".into() },
        };
        // The join announcement took one slot of 16: signals fill up to half.
        let mut delivered = 0;
        let refusal = loop {
            match hub.apply_remote(signal()) {
                None => delivered += 1,
                Some(refusal) => break refusal,
            }
            assert!(delivered <= 16, "the whole queue was filled");
        };
        assert_eq!(
            refusal,
            RoomEvent::Refused {
                room,
                busy: slow.peer,
                to: remote
            }
        );
        assert_eq!(delivered, 7);
        assert_eq!(hub.socket_count(), 1, "the slow peer was cut loose");
        let mut queued = 0;
        while slow.rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(
            queued,
            1 + delivered,
            "a dropped signal was delivered anyway"
        );
        assert_eq!(hub.apply_remote(signal()), None, "signals flow again");
    }
}
