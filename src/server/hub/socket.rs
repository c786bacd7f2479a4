//! One signaling socket from welcome to close. Generic over any `Sink + Stream` of axum
//! WebSocket messages, so tests can drive it through channels as well as real sockets.

use super::{Hub, Session};
use crate::protocol::limits::MAX_SIGNAL_MESSAGE_BYTES;
use crate::protocol::signal::{ClientMessage, ServerMessage, close};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::time::Duration;
use tokio::time::Instant;

/// A token bucket: `rate` messages per second, up to `burst` at once.
struct RateLimit {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl RateLimit {
    fn new(rate: u32, burst: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            at: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

fn text(msg: &ServerMessage) -> Message {
    Message::Text(Utf8Bytes::from(msg.to_json()))
}

/// Sends `code`/`reason` and gives the peer a moment to read it.
async fn close_with<S>(ws: &mut S, code: u16, reason: &str)
where
    S: Sink<Message> + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = ws.send(close_frame(code, reason)).await;
        let _ = ws.flush().await;
    })
    .await;
}

/// Runs a socket that was already admitted (`session`) until it closes, then leaves the room.
/// `not_after` (unix seconds) is when the ticket expires: the socket closes then.
pub async fn run<S, E>(hub: Hub, mut session: Session, not_after: i64, mut ws: S)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    let limits = hub.limits().clone();
    let (room, me) = (session.room, session.peer);
    let heartbeat = Duration::from_millis(limits.heartbeat_ms);
    let mut rate = RateLimit::new(limits.messages_per_sec, limits.message_burst);
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let expires_in = (not_after - crate::server::rooms::now_secs()).max(0) as u64;
    let expiry = tokio::time::sleep(Duration::from_secs(expires_in));
    tokio::pin!(expiry);

    let outcome: Option<(u16, String)> = 'run: {
        if ws.send(text(&session.welcome)).await.is_err() {
            break 'run None;
        }
        loop {
            tokio::select! {
                incoming = ws.next() => {
                    let msg = match incoming {
                        Some(Ok(msg)) => msg,
                        Some(Err(_)) | None => break 'run None,
                    };
                    last_seen = Instant::now();
                    let body = match msg {
                        Message::Text(body) => body,
                        Message::Close(_) => break 'run None,
                        Message::Ping(_) | Message::Pong(_) => continue,
                        Message::Binary(_) => {
                            break 'run Some((close::INVALID, "signaling takes text frames only".into()))
                        }
                    };
                    if !rate.allow() {
                        break 'run Some((
                            close::RATE_LIMITED,
                            format!("more than {} messages per second", limits.messages_per_sec),
                        ));
                    }
                    if body.len() > MAX_SIGNAL_MESSAGE_BYTES {
                        break 'run Some((
                            close::TOO_BIG,
                            format!("messages are limited to {MAX_SIGNAL_MESSAGE_BYTES} bytes"),
                        ));
                    }
                    match ClientMessage::parse(body.as_str()) {
                        Ok(ClientMessage::Signal { to, payload }) => {
                            if let Err(e) = hub.signal(room, me, to, payload).await {
                                let reply = ServerMessage::Error { message: e.to_string() };
                                if ws.send(text(&reply)).await.is_err() {
                                    break 'run None;
                                }
                            }
                        }
                        Ok(ClientMessage::Leave) => break 'run Some((1000, "left".into())),
                        Ok(ClientMessage::KeepAlive) => {}
                        Err(e) => break 'run Some((e.close_code(), e.to_string())),
                    }
                }
                queued = session.rx.recv() => match queued {
                    Some(msg) => {
                        // Under load several messages wait: write them all, flush once.
                        let mut closed = closing_reason(&msg);
                        let mut ok = ws.feed(text(&msg)).await.is_ok();
                        for _ in 0..64 {
                            if closed.is_some() {
                                break;
                            }
                            let Ok(more) = session.rx.try_recv() else { break };
                            closed = closing_reason(&more);
                            ok = ok && ws.feed(text(&more)).await.is_ok();
                        }
                        if !ok || ws.flush().await.is_err() {
                            break 'run None;
                        }
                        if let Some(reason) = closed {
                            break 'run Some((close::ROOM_CLOSED, reason));
                        }
                    }
                    None => break 'run Some((close::TOO_SLOW, "too many undelivered messages".into())),
                },
                _ = ping.tick() => {
                    if last_seen.elapsed() > 3 * heartbeat {
                        break 'run Some((close::HEARTBEAT_TIMEOUT, "no heartbeat".into()));
                    }
                    if ws.send(Message::Ping(Default::default())).await.is_err() {
                        break 'run None;
                    }
                }
                _ = &mut expiry => break 'run Some((close::ROOM_CLOSED, "the ticket expired".into())),
            }
        }
    };
    hub.leave(room, me).await;
    if let Some((code, reason)) = outcome {
        tracing::debug!(%room, peer = me.0, code, reason, "signaling socket closed");
        close_with(&mut ws, code, &reason).await;
    }
}

/// A message after which the hub closes the socket (the room was revoked).
fn closing_reason(msg: &ServerMessage) -> Option<String> {
    match msg {
        ServerMessage::RoomClosed { reason } => Some(reason.clone()),
        _ => None,
    }
}
