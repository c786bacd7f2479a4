//! Server functions: one signature for both sides. In the browser they are HTTP calls; on the
//! server their bodies hand over to `crate::server`. Paths are fixed so tests and curl can use them.

use crate::protocol::room::RoomManifest;
use crate::protocol::{CreatedRoom, FileEntry, RoomTicket, RoomView};
use dioxus::fullstack::{AsStatusCode, ServerFnError, StatusCode};
use dioxus::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "server")]
use crate::server::state::AppState;
#[cfg(feature = "server")]
type State = dioxus::fullstack::axum::Extension<AppState>;

/// What can go wrong in an API call. The message is safe to show: internal details stay in
/// the server log.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("this room does not exist or has expired")]
    RoomNotFound,
    #[error("something went wrong on the server; please try again")]
    Internal,
    /// Transport problems (network down, undecodable answer), seen by the client.
    #[error("{0}")]
    Transport(String),
}

impl AsStatusCode for ApiError {
    fn as_status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::RoomNotFound => StatusCode::NOT_FOUND,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Transport(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl From<ServerFnError> for ApiError {
    fn from(e: ServerFnError) -> Self {
        match e {
            // A request the server could not decode (wrong types, negative sizes, too large).
            ServerFnError::ServerError { message, code, .. } if (400..500).contains(&code) => {
                ApiError::BadRequest(message)
            }
            other => ApiError::Transport(other.to_string()),
        }
    }
}

#[cfg(feature = "server")]
impl From<crate::server::rooms::RoomError> for ApiError {
    fn from(e: crate::server::rooms::RoomError) -> Self {
        use crate::server::rooms::RoomError;
        match e {
            RoomError::Invalid(reason) => ApiError::BadRequest(reason.to_string()),
            RoomError::NotFound => ApiError::RoomNotFound,
            RoomError::Unexpected(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                ApiError::Internal
            }
        }
    }
}

/// Allocates a room for the listed files and returns its id and the creator's ticket.
/// `POST /api/rooms` with `{"title": null, "files": [{"name", "size", "mime"}]}`.
#[post("/api/rooms", state: State)]
pub async fn create_room(
    title: Option<String>,
    files: Vec<FileEntry>,
    manifest: Option<RoomManifest>,
) -> Result<CreatedRoom, ApiError> {
    let request = crate::protocol::CreateRoomRequest {
        title,
        files,
        manifest,
    };
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::create(&state.0, request, now).await?)
}

/// The room's public description. `GET /api/rooms/{id}`.
#[get("/api/rooms/{id}", state: State)]
pub async fn get_room(id: String) -> Result<RoomView, ApiError> {
    let id =
        crate::protocol::RoomId::parse(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::get(&state.0, id, now).await?)
}

/// A ticket to join the room's swarm (signaling socket `/api/rooms/{id}/signal?ticket=…`).
/// `POST /api/rooms/{id}/join`.
#[post("/api/rooms/{id}/join", state: State)]
pub async fn join_room(id: String) -> Result<RoomTicket, ApiError> {
    let id =
        crate::protocol::RoomId::parse(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::join(&state.0, id, now).await?)
}
