//! A signaling client for tests: a real WebSocket to the hub, typed messages, timeouts.

use meshdrop::protocol::signal::offered_protocols;
use meshdrop::protocol::signal::{ClientMessage, ServerMessage};
use meshdrop::protocol::{CreatedRoom, RoomId, RoomTicket};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(5);

/// Creates a room with one small file through the API.
pub async fn create_room(client: &reqwest::Client, base: &str) -> CreatedRoom {
    let response = client
        .post(format!("{base}/api/rooms"))
        .json(&serde_json::json!({"title": null, "files": [{"name": "a.bin", "size": 1, "mime": ""}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A joiner's ticket through `join_room`.
pub async fn join_ticket(client: &reqwest::Client, base: &str, room: RoomId) -> RoomTicket {
    let response = client
        .post(format!("{base}/api/rooms/{room}/join"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The handshake request to join `room` with `ticket`, offered as a subprotocol the way the
/// browser offers it.
pub fn signal_request(base: &str, room: RoomId, ticket: &str) -> Request {
    let url = format!(
        "{}/api/rooms/{room}/signal",
        base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    let offered = offered_protocols(ticket).join(", ");
    request
        .headers_mut()
        .insert(SEC_WEBSOCKET_PROTOCOL, offered.parse().unwrap());
    request
}

/// Opens a socket; an HTTP refusal comes back as its status and body.
pub async fn try_connect(request: Request) -> Result<Ws, (StatusCode, String)> {
    let url = request.uri().to_string();
    match connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((response.status(), body))
        }
        Err(e) => panic!("connecting to {url}: {e}"),
    }
}

pub struct Peer {
    pub ws: Ws,
    pub id: meshdrop::swarm::PeerId,
    pub members: Vec<meshdrop::swarm::PeerId>,
    pub welcome: ServerMessage,
}

/// Connects and reads the welcome.
pub async fn join(base: &str, room: RoomId, ticket: &str) -> Peer {
    let mut ws = try_connect(signal_request(base, room, ticket))
        .await
        .unwrap_or_else(|(s, b)| panic!("refused: {s} {b}"));
    let welcome = recv(&mut ws).await;
    welcomed(ws, welcome)
}

/// The peer a socket became, from the welcome it read.
fn welcomed(ws: Ws, welcome: ServerMessage) -> Peer {
    let ServerMessage::Welcome { you, members, .. } = welcome.clone() else {
        panic!("expected a welcome, got {welcome:?}");
    };
    Peer {
        ws,
        id: you,
        members,
        welcome,
    }
}

/// Joins as soon as this address has a free socket slot: sockets it just dropped count
/// until the hub has seen them close, which takes a moment. Waits at most 5 s.
pub async fn join_when_free(base: &str, room: RoomId, ticket: &str) -> Peer {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut ws = try_connect(signal_request(base, room, ticket))
            .await
            .unwrap_or_else(|(s, b)| panic!("refused: {s} {b}"));
        let first = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the hub answers within 5 s");
        match first {
            Some(Ok(Message::Text(t))) => {
                let welcome = ServerMessage::parse(t.as_str()).expect("valid hub message");
                return welcomed(ws, welcome);
            }
            Some(Ok(Message::Close(Some(frame))))
                if u16::from(frame.code)
                    == meshdrop::protocol::signal::close::TOO_MANY_CONNECTIONS
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => panic!("expected a welcome, got {other:?}"),
        }
    }
}

/// The next hub message (pings are answered by the client library).
pub async fn recv(ws: &mut Ws) -> ServerMessage {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a hub message within 5 s")
            .expect("socket open")
            .expect("socket healthy");
        match msg {
            Message::Text(t) => {
                return ServerMessage::parse(t.as_str()).expect("valid hub message");
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a hub message, got {other:?}"),
        }
    }
}

pub async fn send(ws: &mut Ws, msg: &ClientMessage) {
    use futures_util::SinkExt;
    ws.send(Message::Text(msg.to_json().into())).await.unwrap();
}

/// Reads until the hub closes the socket; returns its close code and reason.
pub async fn closed(ws: &mut Ws) -> (u16, String) {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the hub closes within 5 s");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (frame.code.into(), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error before a close frame: {e}"),
        }
    }
}
