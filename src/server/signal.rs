//! `GET /api/rooms/{id}/signal`: the hub's WebSocket. The room ticket comes as an offered
//! subprotocol (`Sec-WebSocket-Protocol: meshdrop.v1, meshdrop.ticket.<JWT>`, see
//! [`crate::protocol::signal::offered_protocols`]), so it never sits in a URL that a proxy
//! or access log keeps. It is checked before the upgrade (401 otherwise); every later
//! refusal is a close code with a reason.

use super::client_addr::{client_ip, limit_key};
use super::hub::socket;
use super::rooms::{self, RoomError};
use super::state::AppState;
use super::ticket::TicketError;
use crate::protocol::RoomId;
use crate::protocol::limits::MAX_SIGNAL_MESSAGE_BYTES;
use crate::protocol::signal::{SUBPROTOCOL, ticket_from_protocols};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Extension, Path};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}

pub async fn upgrade(
    Path(id): Path<String>,
    headers: HeaderMap,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(state): Extension<AppState>,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(room) = RoomId::parse(&id) else {
        return refuse(StatusCode::BAD_REQUEST, "not a room id");
    };
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let Some(ticket) = ticket_from_protocols(offered) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "a room ticket is required (offer the subprotocols meshdrop.v1 and meshdrop.ticket.<ticket>)",
        );
    };
    let claims = match state.tickets.verify(ticket) {
        Ok(claims) if claims.room == room => claims,
        Ok(_) => return refuse(StatusCode::UNAUTHORIZED, "the ticket is for another room"),
        Err(TicketError::Expired) => {
            return refuse(StatusCode::UNAUTHORIZED, "the ticket has expired");
        }
        Err(TicketError::Invalid) => {
            return refuse(StatusCode::UNAUTHORIZED, "the ticket is not valid");
        }
    };
    let now = rooms::now_secs();
    match rooms::get(&state, room, now).await {
        Ok(_) => {}
        Err(RoomError::NotFound) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "this room does not exist or has expired",
            );
        }
        Err(RoomError::Gone) => {
            return refuse(StatusCode::GONE, "this room was closed by its owner");
        }
        Err(e) => {
            tracing::error!(error = %e, "checking a room before upgrade");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "please try again");
        }
    }
    let hub = state.hub.clone();
    // Sockets per address count the client behind a trusted proxy, an IPv6 client's /64.
    let client = limit_key(client_ip(
        addr.ip(),
        &headers,
        &state.settings.trusted_proxies,
    ));
    // The transport bound sits above the protocol's, so an oversized message still gets a
    // clear close code from the socket loop instead of a dropped connection.
    // Small buffers: most sockets sit idle, and tungstenite's 128 KiB read buffer would cost
    // that much memory per socket. Signals are a few hundred bytes.
    ws.protocols([SUBPROTOCOL])
        .max_message_size(2 * MAX_SIGNAL_MESSAGE_BYTES)
        .max_frame_size(2 * MAX_SIGNAL_MESSAGE_BYTES)
        .read_buffer_size(4 * 1024)
        // Written when a batch is flushed (see `socket::run`); grows only under load.
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(4 * MAX_SIGNAL_MESSAGE_BYTES)
        .on_upgrade(move |mut socket| async move {
            // A renewal is a ticket for the same room; the room was live when `/join`
            // issued it (a revoked room's sockets are closed by the hub anyway).
            let tickets = state.tickets.clone();
            let renew = move |ticket: &str| match tickets.verify(ticket) {
                Ok(claims) if claims.room == room => Ok(claims.exp),
                Ok(_) => Err("the ticket is for another room".to_string()),
                Err(TicketError::Expired) => Err("the ticket has expired".to_string()),
                Err(TicketError::Invalid) => Err("the ticket is not valid".to_string()),
            };
            match hub.join(room, client, claims.exp, now).await {
                Ok(session) => socket::run(hub, session, claims.exp, renew, socket).await,
                Err(refusal) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: refusal.code,
                            reason: Utf8Bytes::from(refusal.reason),
                        })))
                        .await;
                }
            }
        })
}
