//! The signaling hub over real WebSockets on 127.0.0.1: tickets, presence, relaying,
//! heartbeats and every limit's close code.

mod common;

use common::ws::{
    closed, create_room, join, join_ticket, join_when_free, recv, send, signal_request, try_connect,
};
use common::{Backend, TEST_SECRET, spawn_app, spawn_app_with};
use futures_util::SinkExt;
use meshdrop::protocol::RoomId;
use meshdrop::protocol::limits::MAX_SIGNAL_MESSAGE_BYTES;
use meshdrop::protocol::signal::{ClientMessage, SUBPROTOCOL, ServerMessage, SignalPayload, close};
use meshdrop::server::config::JwtSecret;
use meshdrop::server::rooms::now_secs;
use meshdrop::server::ticket::{TicketClaims, Tickets};
use meshdrop::swarm::PeerId;
use std::time::{Duration, Instant};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;

fn offer(sdp: &str) -> SignalPayload {
    SignalPayload::Offer { sdp: sdp.into() }
}

#[tokio::test]
async fn tickets_are_checked_before_the_upgrade() {
    let app = spawn_app(Backend::Sqlite).await;
    let room = create_room(&app.client, &app.base).await;
    let other = create_room(&app.client, &app.base).await;
    let tickets = Tickets::new(&JwtSecret::new(TEST_SECRET.as_bytes().to_vec()));
    let forger = Tickets::new(&JwtSecret::new(vec![7; 32]));
    let now = now_secs();
    let claims = |room: RoomId, exp: i64| TicketClaims {
        room,
        creator: false,
        iat: now - 10,
        exp,
        jti: TicketClaims::new_id(),
    };
    let expired = tickets.issue(&claims(room.id, now - 1)).unwrap();
    let forged = forger.issue(&claims(room.id, now + 60)).unwrap();
    let unknown_room = tickets
        .issue(&claims(RoomId::from_bytes([9; 16]), now + 60))
        .unwrap();
    let bare = format!("{}/api/rooms/{}/signal", app.base, room.id).replacen("http", "ws", 1);
    let cases = [
        (bare.clone().into_client_request().unwrap(), 401, "required"),
        // A ticket in the URL is not read: URLs end up in proxies' access logs.
        (
            format!("{bare}?ticket={}", room.ticket)
                .into_client_request()
                .unwrap(),
            401,
            "required",
        ),
        (
            signal_request(&app.base, room.id, "not-a-jwt"),
            401,
            "not valid",
        ),
        (
            signal_request(&app.base, room.id, &forged),
            401,
            "not valid",
        ),
        (signal_request(&app.base, room.id, &expired), 401, "expired"),
        (
            signal_request(&app.base, room.id, &other.ticket),
            401,
            "another room",
        ),
        (
            signal_request(&app.base, RoomId::from_bytes([9; 16]), &unknown_room),
            404,
            "does not exist",
        ),
    ];
    for (request, status, message) in cases {
        let url = request.uri().to_string();
        let (got, body) = try_connect(request).await.expect_err("refused");
        assert_eq!(got.as_u16(), status, "{url}: {body}");
        assert!(body.contains(message), "{url}: {body}");
    }
    // The server selects the hub's subprotocol and never echoes the ticket back.
    let (_ws, response) = connect_async(signal_request(&app.base, room.id, &room.ticket))
        .await
        .unwrap();
    let selected: Vec<_> = response
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(selected, [SUBPROTOCOL]);
    // The real tickets work: the creator's, and one from join_room.
    join(&app.base, room.id, &room.ticket).await;
    let joined = join_ticket(&app.client, &app.base, room.id).await;
    let claims = tickets.verify(&joined.ticket).unwrap();
    assert_eq!(claims.room, room.id);
    assert!(!claims.creator);
    join(&app.base, room.id, &joined.ticket).await;
}

#[tokio::test]
async fn presence_and_signals_reach_exactly_the_right_peers() {
    let app = spawn_app(Backend::Sqlite).await;
    let room = create_room(&app.client, &app.base).await;
    let elsewhere = create_room(&app.client, &app.base).await;
    let ticket = join_ticket(&app.client, &app.base, room.id).await.ticket;

    let mut a = join(&app.base, room.id, &room.ticket).await;
    assert!(a.members.is_empty());
    let mut b = join(&app.base, room.id, &ticket).await;
    assert_eq!(b.members, vec![a.id]);
    assert_ne!(a.id, b.id);
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerJoined { peer: b.id }
    );
    let mut c = join(&app.base, elsewhere.id, &elsewhere.ticket).await;
    assert!(c.members.is_empty(), "rooms do not mix");

    // A signal arrives stamped with the sender's real id, whatever it claims.
    send(
        &mut a.ws,
        &ClientMessage::Signal {
            to: b.id,
            payload: offer("from a"),
        },
    )
    .await;
    assert_eq!(
        recv(&mut b.ws).await,
        ServerMessage::Signal {
            from: a.id,
            payload: offer("from a")
        }
    );
    send(
        &mut b.ws,
        &ClientMessage::Signal {
            to: a.id,
            payload: SignalPayload::Candidate {
                candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            },
        },
    )
    .await;
    assert!(matches!(recv(&mut a.ws).await, ServerMessage::Signal { from, .. } if from == b.id));

    // Another room's peer, or a made-up one, cannot be reached; the socket stays usable.
    for target in [c.id, PeerId(12345)] {
        send(
            &mut a.ws,
            &ClientMessage::Signal {
                to: target,
                payload: offer("nope"),
            },
        )
        .await;
        assert!(
            matches!(recv(&mut a.ws).await, ServerMessage::Error { message } if message.contains("not in this room"))
        );
    }

    // Leaving on purpose: a normal close, announced to the room only.
    send(&mut b.ws, &ClientMessage::Leave).await;
    assert_eq!(closed(&mut b.ws).await.0, 1000);
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerLeft { peer: b.id }
    );
    // Dropping the connection without a word is a leave too.
    let d = join(&app.base, room.id, &ticket).await;
    assert_eq!(d.members, vec![a.id]);
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerJoined { peer: d.id }
    );
    let d_id = d.id;
    drop(d);
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerLeft { peer: d_id }
    );
    // Nothing of room one reached room two.
    send(&mut c.ws, &ClientMessage::KeepAlive).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), recv(&mut c.ws))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_silent_socket_is_dropped_and_announced_within_the_heartbeat_timeout() {
    let heartbeat_ms = 200;
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("MESHDROP_HUB_HEARTBEAT_MS", &heartbeat_ms.to_string())],
    )
    .await;
    let room = create_room(&app.client, &app.base).await;
    let mut a = join(&app.base, room.id, &room.ticket).await;
    let ServerMessage::Welcome {
        heartbeat_ms: told, ..
    } = a.welcome
    else {
        unreachable!()
    };
    assert_eq!(told, heartbeat_ms);
    // `silent` never reads again, so it never answers the hub's pings. The clock starts
    // before it joins: the hub's own timer starts somewhere inside `join`, so a clock started
    // after it would undercount and the lower bound below would be a race.
    let started = Instant::now();
    let silent = join(&app.base, room.id, &room.ticket).await;
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerJoined { peer: silent.id }
    );
    // `a` answers pings (the client library does while we wait) and stays.
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerLeft { peer: silent.id }
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(5 * heartbeat_ms),
        "dropped after {took:?}"
    );
    assert!(took >= Duration::from_millis(3 * heartbeat_ms), "{took:?}");
    drop(silent);
    send(&mut a.ws, &ClientMessage::KeepAlive).await;
    assert_eq!(app.state.hub.socket_count(), 1);
}

#[tokio::test]
async fn every_limit_closes_with_its_own_code_and_the_hub_carries_on() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("MESHDROP_HUB_MAX_PEERS_PER_ROOM", "2"),
            ("MESHDROP_HUB_MAX_SOCKETS_PER_IP", "4"),
            ("MESHDROP_HUB_MESSAGES_PER_SEC", "4"),
        ],
    )
    .await;
    let room = create_room(&app.client, &app.base).await;

    // Room size.
    let a = join(&app.base, room.id, &room.ticket).await;
    let b = join(&app.base, room.id, &room.ticket).await;
    let mut full = try_connect(signal_request(&app.base, room.id, &room.ticket))
        .await
        .unwrap();
    let (code, reason) = closed(&mut full).await;
    assert_eq!(code, close::ROOM_FULL, "{reason}");
    assert!(reason.contains("full"), "{reason}");

    // Sockets per address (a and b hold two of four).
    let other = create_room(&app.client, &app.base).await;
    let c = join(&app.base, other.id, &other.ticket).await;
    let d = join(&app.base, other.id, &other.ticket).await;
    let mut extra = try_connect(signal_request(&app.base, other.id, &other.ticket))
        .await
        .unwrap();
    let (code, reason) = closed(&mut extra).await;
    assert_eq!(code, close::TOO_MANY_CONNECTIONS, "{reason}");
    drop((a, b, c, d));

    let text = |s: String| Message::Text(s.into());
    let cases: Vec<(Vec<Message>, u16, &str)> = vec![
        (
            vec![text(format!(
                r#"{{"type":"signal","to":1,"payload":{{"kind":"offer","sdp":"{}"}}}}"#,
                "x".repeat(MAX_SIGNAL_MESSAGE_BYTES + 10)
            ))],
            close::TOO_BIG,
            "limited to",
        ),
        (vec![text("{not json".into())], close::INVALID, "malformed"),
        (
            vec![text(
                r#"{"type":"welcome","you":1,"members":[],"ice_servers":[],"heartbeat_ms":1}"#
                    .into(),
            )],
            close::INVALID,
            "malformed",
        ),
        (
            vec![text(format!(
                r#"{{"type":"signal","to":1,"payload":{{"kind":"candidate","candidate":"{}"}}}}"#,
                "c".repeat(2000)
            ))],
            close::INVALID,
            "candidate",
        ),
        (
            vec![Message::Binary(vec![1, 2, 3].into())],
            close::INVALID,
            "text frames",
        ),
        (
            (0..40)
                .map(|_| text(ClientMessage::KeepAlive.to_json()))
                .collect(),
            close::RATE_LIMITED,
            "per second",
        ),
    ];
    for (messages, code, needle) in cases {
        let mut peer = join_when_free(&app.base, room.id, &room.ticket).await;
        for m in messages {
            if peer.ws.send(m).await.is_err() {
                break;
            }
        }
        let (got, reason) = closed(&mut peer.ws).await;
        assert_eq!(got, code, "{reason}");
        assert!(reason.contains(needle), "{reason}");
    }
    // Still serving, with every refused socket gone from the room.
    let survivor = join_when_free(&app.base, room.id, &room.ticket).await;
    assert!(survivor.members.len() <= 1, "{:?}", survivor.members);
}

#[tokio::test]
async fn room_creation_is_limited_per_address() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("MESHDROP_MAX_ROOMS_PER_IP_PER_HOUR", "2")],
    )
    .await;
    create_room(&app.client, &app.base).await;
    create_room(&app.client, &app.base).await;
    let refused = app
        .client
        .post(app.url("/api/rooms"))
        .json(&serde_json::json!({"title": null, "files": [{"name": "a", "size": 1, "mime": ""}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2 rooms per hour"),
        "{body}"
    );
    // Reading and joining rooms is not limited.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// Behind a reverse proxy named in MESHDROP_TRUSTED_PROXIES, the limits count the client the
/// proxy forwards for; from anyone else X-Forwarded-For changes nothing.
#[tokio::test]
async fn limits_count_the_client_behind_a_trusted_proxy() {
    let create = |app: &common::TestApp, forwarded_for: &'static str| {
        let request = app
            .client
            .post(app.url("/api/rooms"))
            .header("x-forwarded-for", forwarded_for)
            .json(&serde_json::json!({"title": null, "files": [{"name": "a", "size": 1, "mime": ""}]}));
        async move { request.send().await.unwrap() }
    };
    let behind_proxy = spawn_app_with(
        Backend::Sqlite,
        &[
            ("MESHDROP_TRUSTED_PROXIES", "127.0.0.1, ::1"),
            ("MESHDROP_MAX_ROOMS_PER_IP_PER_HOUR", "2"),
            ("MESHDROP_HUB_MAX_SOCKETS_PER_IP", "1"),
        ],
    )
    .await;
    let app = &behind_proxy;
    let first = create(app, "203.0.113.1").await;
    assert_eq!(first.status(), 200);
    let room: meshdrop::protocol::room::CreatedRoom = first.json().await.unwrap();
    assert_eq!(create(app, "203.0.113.1").await.status(), 200);
    assert_eq!(
        create(app, "203.0.113.1").await.status(),
        429,
        "third room from one client"
    );
    // Another client behind the same proxy has its own quota, even if it claims to be the
    // first one further left (the proxy appends the address it saw).
    assert_eq!(create(app, "203.0.113.1, 203.0.113.2").await.status(), 200);
    // An IPv6 client is counted by its /64: a new address in it is no new quota.
    assert_eq!(create(app, "2001:db8:5:6::1").await.status(), 200);
    assert_eq!(create(app, "2001:db8:5:6::2").await.status(), 200);
    assert_eq!(create(app, "2001:db8:5:6:ffff::3").await.status(), 429);

    // One socket per client: two clients behind the proxy both get in, a second socket of
    // either is refused.
    let ws_from = |forwarded_for: &str| {
        let mut request = signal_request(&app.base, room.id, &room.ticket);
        request
            .headers_mut()
            .insert("x-forwarded-for", forwarded_for.parse().unwrap());
        request
    };
    let mut a = try_connect(ws_from("203.0.113.1")).await.unwrap();
    assert!(matches!(recv(&mut a).await, ServerMessage::Welcome { .. }));
    let mut b = try_connect(ws_from("203.0.113.2")).await.unwrap();
    assert!(matches!(recv(&mut b).await, ServerMessage::Welcome { .. }));
    let mut again = try_connect(ws_from("203.0.113.1")).await.unwrap();
    let (code, reason) = closed(&mut again).await;
    assert_eq!(code, close::TOO_MANY_CONNECTIONS, "{reason}");
    drop((a, b));

    // Without trusted proxies the header is the client's own word: ignored.
    let direct = spawn_app_with(
        Backend::Sqlite,
        &[("MESHDROP_MAX_ROOMS_PER_IP_PER_HOUR", "1")],
    )
    .await;
    assert_eq!(create(&direct, "203.0.113.1").await.status(), 200);
    let refused = create(&direct, "203.0.113.2").await;
    assert_eq!(
        refused.status(),
        429,
        "a made-up X-Forwarded-For escapes no limit"
    );
}

/// A socket lives as long as its ticket (MESHDROP_TICKET_TTL_SECS): the hub closes it when
/// the ticket expires, the old ticket is refused from then on, and a fresh one gets the peer
/// back in, which is what a tab does (`schedule_rejoin` in the web shell).
#[tokio::test]
async fn a_socket_closes_when_its_ticket_expires_and_a_fresh_ticket_gets_back_in() {
    let app = spawn_app_with(Backend::Sqlite, &[("MESHDROP_TICKET_TTL_SECS", "2")]).await;
    let room = create_room(&app.client, &app.base).await;
    let ticket = join_ticket(&app.client, &app.base, room.id).await;
    assert!(ticket.expires_at <= now_secs() + 2, "{}", ticket.expires_at);
    let mut peer = join(&app.base, room.id, &ticket.ticket).await;
    let started = Instant::now();
    let (code, reason) = closed(&mut peer.ws).await;
    assert_eq!(code, close::ROOM_CLOSED, "{reason}");
    assert!(reason.contains("the ticket expired"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // A ticket is valid through the second its `exp` names.
    while now_secs() <= ticket.expires_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Err((status, body)) = try_connect(signal_request(&app.base, room.id, &ticket.ticket)).await
    else {
        panic!("the expired ticket is refused");
    };
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("expired"), "{body}");
    let fresh = join_ticket(&app.client, &app.base, room.id).await;
    let back = join(&app.base, room.id, &fresh.ticket).await;
    assert_ne!(back.id, peer.id, "a new peer id");
}

/// A fresh ticket sent over the open socket (`Renew`) keeps it open past its first ticket's
/// expiry, with the same peer id; a ticket for another room or a forged one renews nothing.
#[tokio::test]
async fn a_fresh_ticket_renews_an_open_socket_past_its_first_tickets_expiry() {
    let app = spawn_app_with(Backend::Sqlite, &[("MESHDROP_TICKET_TTL_SECS", "3")]).await;
    let room = create_room(&app.client, &app.base).await;
    let other = create_room(&app.client, &app.base).await;
    let first = join_ticket(&app.client, &app.base, room.id).await;
    let mut peer = join(&app.base, room.id, &first.ticket).await;
    let ServerMessage::Welcome { renew_in_ms, .. } = peer.welcome.clone() else {
        unreachable!()
    };
    assert!(
        (1000..=2250).contains(&renew_in_ms),
        "three quarters of what is left: {renew_in_ms}"
    );
    let wrong_room = join_ticket(&app.client, &app.base, other.id).await.ticket;
    for bad in [wrong_room, "forged".to_string()] {
        send(&mut peer.ws, &ClientMessage::Renew { ticket: bad }).await;
        let reply = recv(&mut peer.ws).await;
        let ServerMessage::Error { message } = reply else {
            panic!("expected a refusal, got {reply:?}");
        };
        assert!(message.contains("the ticket was not renewed"), "{message}");
    }
    // Expiry times are whole seconds. The fresh ticket must outlive the first by two of
    // them: the socket is checked past the first's expiry, before the fresh one's.
    let deadline = Instant::now() + Duration::from_secs(5);
    let fresh = loop {
        let fresh = join_ticket(&app.client, &app.base, room.id).await;
        if fresh.expires_at >= first.expires_at + 2 {
            break fresh;
        }
        assert!(Instant::now() < deadline, "no later ticket within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    send(
        &mut peer.ws,
        &ClientMessage::Renew {
            ticket: fresh.ticket,
        },
    )
    .await;
    let reply = recv(&mut peer.ws).await;
    let ServerMessage::Renewed { renew_in_ms, .. } = reply else {
        panic!("expected a renewal, got {reply:?}");
    };
    assert!(renew_in_ms >= 1000, "{renew_in_ms}");
    // Past the first ticket's expiry the socket still carries the room's news.
    while now_secs() <= first.expires_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ticket = join_ticket(&app.client, &app.base, room.id).await.ticket;
    let newcomer = join(&app.base, room.id, &ticket).await;
    assert_eq!(
        recv(&mut peer.ws).await,
        ServerMessage::PeerJoined { peer: newcomer.id }
    );
    // And it closes when the fresh ticket expires.
    let (code, reason) = closed(&mut peer.ws).await;
    assert_eq!(code, close::ROOM_CLOSED, "{reason}");
    assert!(reason.contains("the ticket expired"), "{reason}");
    assert!(now_secs() >= fresh.expires_at - 1);
}
