//! `GET /api/rooms/{id}/signal?ticket=…`: the hub's WebSocket. The ticket is checked before
//! the upgrade (401 otherwise); every later refusal is a close code with a reason.

use super::hub::socket;
use super::rooms::{self, RoomError};
use super::state::AppState;
use super::ticket::TicketError;
use crate::protocol::RoomId;
use crate::protocol::limits::MAX_SIGNAL_MESSAGE_BYTES;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Extension, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct TicketQuery {
    ticket: Option<String>,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}

pub async fn upgrade(
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(state): Extension<AppState>,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(room) = RoomId::parse(&id) else {
        return refuse(StatusCode::BAD_REQUEST, "not a room id");
    };
    let Some(ticket) = query.ticket else {
        return refuse(StatusCode::UNAUTHORIZED, "a room ticket is required");
    };
    let claims = match state.tickets.verify(&ticket) {
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
    // The transport bound sits above the protocol's, so an oversized message still gets a
    // clear close code from the socket loop instead of a dropped connection.
    // Small buffers: most sockets sit idle, and tungstenite's 128 KiB read buffer would cost
    // that much memory per socket. Signals are a few hundred bytes.
    ws.max_message_size(2 * MAX_SIGNAL_MESSAGE_BYTES)
        .max_frame_size(2 * MAX_SIGNAL_MESSAGE_BYTES)
        .read_buffer_size(4 * 1024)
        // Written when a batch is flushed (see `socket::run`); grows only under load.
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(4 * MAX_SIGNAL_MESSAGE_BYTES)
        .on_upgrade(move |mut socket| async move {
            match hub.join(room, addr.ip(), claims.exp, now).await {
                Ok(session) => socket::run(hub, session, claims.exp, socket).await,
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
