//! One signaling socket from welcome to close. Generic over any `Sink + Stream` of axum
//! WebSocket messages, so tests can drive it through channels as well as real sockets.

use super::{Session, SignalingHub};
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

/// A close frame's reason may hold at most 123 bytes (RFC 6455 §5.5: control frames carry
/// at most 125, two of them the code). Parse errors can quote client input, so cut there.
const MAX_CLOSE_REASON: usize = 123;

fn close_frame(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
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

/// How a write to the socket ended.
enum Wrote {
    Ok,
    /// The connection failed.
    Failed,
    /// The client stopped reading: the write did not finish within the deadline.
    Stuck,
}

/// Runs one write (or a batch and its flush) with a deadline. Without it a client that stops
/// reading would park this loop in `send` for good, heartbeat and ticket expiry included,
/// holding its address slot and its queue.
async fn write<F, E>(deadline: Duration, op: F) -> Wrote
where
    F: std::future::Future<Output = Result<(), E>>,
{
    match tokio::time::timeout(deadline, op).await {
        Ok(Ok(())) => Wrote::Ok,
        Ok(Err(_)) => Wrote::Failed,
        Err(_) => Wrote::Stuck,
    }
}

/// Runs a socket that was already admitted (`session`) until it closes, then leaves the room.
/// `not_after` (unix seconds) is when the ticket expires: the socket closes then, unless
/// the client renews it with a fresh ticket, which `renew` checks (the new expiry, or why
/// not).
pub async fn run<S, E, R>(
    hub: SignalingHub,
    mut session: Session,
    mut not_after: i64,
    renew: R,
    mut ws: S,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    R: Fn(&str) -> Result<i64, String>,
{
    let limits = hub.limits().clone();
    let (room, me) = (session.room, session.peer);
    let heartbeat = Duration::from_millis(limits.heartbeat_ms);
    // A client has one heartbeat period to take each write.
    let deadline = heartbeat;
    let stuck = || Some((close::TOO_SLOW, "the client stopped reading".to_string()));
    let mut rate = RateLimit::new(limits.messages_per_sec, limits.message_burst);
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let expires_in = (not_after - crate::server::rooms::now_secs()).max(0) as u64;
    let expiry = tokio::time::sleep(Duration::from_secs(expires_in));
    tokio::pin!(expiry);

    let outcome: Option<(u16, String)> = 'run: {
        match write(deadline, ws.send(text(&session.welcome))).await {
            Wrote::Ok => {}
            Wrote::Failed => break 'run None,
            Wrote::Stuck => break 'run stuck(),
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
                                match write(deadline, ws.send(text(&reply))).await {
                                    Wrote::Ok => {}
                                    Wrote::Failed => break 'run None,
                                    Wrote::Stuck => break 'run stuck(),
                                }
                            }
                        }
                        Ok(ClientMessage::Leave) => break 'run Some((1000, "left".into())),
                        Ok(ClientMessage::KeepAlive) => {}
                        Ok(ClientMessage::Renew { ticket }) => {
                            let now = crate::server::rooms::now_secs();
                            let reply = match renew(&ticket) {
                                Ok(exp) => {
                                    if exp > not_after {
                                        not_after = exp;
                                        let left = Duration::from_secs((exp - now).max(0) as u64);
                                        expiry.as_mut().reset(tokio::time::Instant::now() + left);
                                    }
                                    ServerMessage::Renewed {
                                        ice_servers: hub.ice_servers(me, now, not_after),
                                        renew_in_ms: hub.renew_in_ms(now, not_after),
                                    }
                                }
                                Err(e) => ServerMessage::Error {
                                    message: format!("the ticket was not renewed: {e}"),
                                },
                            };
                            match write(deadline, ws.send(text(&reply))).await {
                                Wrote::Ok => {}
                                Wrote::Failed => break 'run None,
                                Wrote::Stuck => break 'run stuck(),
                            }
                        }
                        Err(e) => break 'run Some((e.close_code(), e.to_string())),
                    }
                }
                queued = session.rx.recv() => match queued {
                    Some(msg) => {
                        // Under load several messages wait: write them all, flush once.
                        let mut closed = closing_reason(&msg);
                        let rx = &mut session.rx;
                        let batch = async {
                            ws.feed(text(&msg)).await?;
                            for _ in 0..64 {
                                if closed.is_some() {
                                    break;
                                }
                                let Ok(more) = rx.try_recv() else { break };
                                closed = closing_reason(&more);
                                ws.feed(text(&more)).await?;
                            }
                            ws.flush().await
                        };
                        match write(deadline, batch).await {
                            Wrote::Ok => {}
                            Wrote::Failed => break 'run None,
                            Wrote::Stuck => break 'run stuck(),
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
                    match write(deadline, ws.send(Message::Ping(Default::default()))).await {
                        Wrote::Ok => {}
                        Wrote::Failed => break 'run None,
                        Wrote::Stuck => break 'run stuck(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn no_renewals(_: &str) -> Result<i64, String> {
        Err("not in this test".into())
    }
    use crate::protocol::RoomId;
    use crate::protocol::limits::HubLimits;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A client that takes its first `takes` messages and then never reads again: every
    /// later write stays pending, as on a socket whose peer stopped reading. It sends nothing.
    struct StopsReading {
        takes: usize,
        got: Vec<Message>,
    }

    impl Stream for StopsReading {
        type Item = Result<Message, std::io::Error>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Pending
        }
    }

    impl Sink<Message> for StopsReading {
        type Error = std::io::Error;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            if self.got.len() < self.takes {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }
        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
            self.got.push(item);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let long = "é".repeat(200);
        let Message::Close(Some(frame)) = close_frame(close::INVALID, &long) else {
            panic!("not a close frame");
        };
        assert!(
            frame.reason.len() <= MAX_CLOSE_REASON,
            "{}",
            frame.reason.len()
        );
        assert!(long.starts_with(frame.reason.as_str()));
        let Message::Close(Some(short)) = close_frame(close::INVALID, "left") else {
            panic!("not a close frame");
        };
        assert_eq!(short.reason.as_str(), "left");
    }

    /// A socket whose client stops reading is closed within about one heartbeat of the
    /// write that stuck, leaves the room (the others are told) and frees its address slot.
    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped_and_its_room_told() {
        let heartbeat_ms = 200;
        let limits = HubLimits {
            heartbeat_ms,
            max_sockets_per_ip: 2,
            ..HubLimits::default()
        };
        let hub = SignalingHub::start(limits, Default::default(), None)
            .await
            .unwrap();
        let room = RoomId::from_bytes([7; 16]);
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let far = crate::server::rooms::now_secs() + 3600;
        let now = crate::server::rooms::now_secs();
        let mut watcher = hub.join(room, ip, far, now).await.unwrap();
        let stalled = hub.join(room, ip, far, now).await.unwrap();
        let stalled_id = stalled.peer;
        assert_eq!(
            watcher.rx.recv().await,
            Some(ServerMessage::PeerJoined { peer: stalled_id })
        );

        // It takes its welcome, then nothing: the next write is an offer from the watcher.
        let client = StopsReading {
            takes: 1,
            got: Vec::new(),
        };
        let started = Instant::now();
        let task = tokio::spawn(run(hub.clone(), stalled, far, no_renewals, client));
        hub.signal(
            room,
            watcher.peer,
            stalled_id,
            crate::protocol::signal::SignalPayload::Offer { sdp: "v=0".into() },
        )
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the stalled socket's loop never ended")
            .unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(heartbeat_ms), "{took:?}");
        assert_eq!(
            watcher.rx.recv().await,
            Some(ServerMessage::PeerLeft { peer: stalled_id })
        );
        assert_eq!(hub.socket_count(), 1);
        // Its address slot is free again: a second socket from the same address fits.
        assert!(hub.join(room, ip, far, now).await.is_ok());
    }
}
