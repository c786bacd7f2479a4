//! Server functions: one signature for both sides. In the browser they are HTTP calls; on the
//! server their bodies hand over to `crate::server`. Paths are fixed so tests and curl can use them.

use crate::protocol::room::RoomManifest;
use crate::protocol::{CreatedRoom, FileEntry, Me, OwnedRoom, RoomTicket, RoomView};
use dioxus::fullstack::{AsStatusCode, ServerFnError, StatusCode};
use dioxus::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "server")]
use crate::server::state::AppState;
#[cfg(feature = "server")]
type State = dioxus::fullstack::axum::Extension<AppState>;
#[cfg(feature = "server")]
type Auth = crate::server::auth::Auth;

/// What can go wrong in an API call. The message is safe to show: internal details stay in
/// the server log.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("this room does not exist or has expired")]
    RoomNotFound,
    #[error("this room was closed by its owner")]
    RoomGone,
    #[error("sign in first")]
    SignInRequired,
    #[error("only the room's owner can do that")]
    Forbidden,
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
            ApiError::RoomGone => StatusCode::GONE,
            ApiError::SignInRequired => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
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
            RoomError::Gone => ApiError::RoomGone,
            RoomError::Forbidden => ApiError::Forbidden,
            RoomError::BadRequest(message) => ApiError::BadRequest(message),
            RoomError::Unexpected(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                ApiError::Internal
            }
        }
    }
}

/// Allocates a room for the listed files and returns its id and the creator's ticket.
/// `POST /api/rooms` with `{"title": null, "files": [{"name", "size", "mime"}]}`.
/// Signed in, the room belongs to the user and shows up in `/rooms`.
#[post("/api/rooms", state: State, auth: Auth)]
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
    let owner = auth.user.as_ref().map(|u| u.id);
    Ok(crate::server::rooms::create(&state.0, request, owner, now).await?)
}

/// The room's public description. `GET /api/rooms/{id}`.
#[get("/api/rooms/{id}", state: State)]
pub async fn get_room(id: String) -> Result<RoomView, ApiError> {
    let id = parse_id(&id)?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::get(&state.0, id, now).await?)
}

/// A ticket to join the room's swarm (signaling socket `/api/rooms/{id}/signal`, the
/// ticket offered as a subprotocol: [`crate::protocol::signal::offered_protocols`]).
/// `POST /api/rooms/{id}/join`.
#[post("/api/rooms/{id}/join", state: State)]
pub async fn join_room(id: String) -> Result<RoomTicket, ApiError> {
    let id = parse_id(&id)?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::join(&state.0, id, now).await?)
}

#[cfg(feature = "server")]
fn parse_id(id: &str) -> Result<crate::protocol::RoomId, ApiError> {
    crate::protocol::RoomId::parse(id).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Tells the server this ticket's holder has the whole room (counted once per ticket, for
/// the owner's "completed" column). `POST /api/rooms/{id}/completed`.
#[post("/api/rooms/{id}/completed", state: State)]
pub async fn report_completed(id: String, ticket: String) -> Result<(), ApiError> {
    let id = parse_id(&id)?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::record_completion(&state.0, id, &ticket, now).await?)
}

/// Who is signed in, and which sign-in providers are configured. `GET /api/me`.
#[get("/api/me", state: State, auth: Auth)]
pub async fn me() -> Result<Me, ApiError> {
    Ok(Me {
        account: auth.user.as_ref().map(|u| crate::protocol::Account {
            name: u.display_name.clone(),
            avatar_url: u.avatar_url.clone(),
            provider: u.provider.slug().to_owned(),
        }),
        providers: state
            .0
            .auth
            .providers()
            .into_iter()
            .map(|p| p.slug().to_owned())
            .collect(),
    })
}

/// The signed-in user's id, or 401.
#[cfg(feature = "server")]
fn owner(auth: &Auth) -> Result<i64, ApiError> {
    auth.user
        .as_ref()
        .map(|u| u.id)
        .ok_or(ApiError::SignInRequired)
}

/// The signed-in user's rooms, newest first. `GET /api/my/rooms`.
#[get("/api/my/rooms", state: State, auth: Auth)]
pub async fn my_rooms() -> Result<Vec<OwnedRoom>, ApiError> {
    let owner = owner(&auth)?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::list_owned(&state.0, owner, now).await?)
}

/// Closes the room for everyone at once. `POST /api/my/rooms/{id}/revoke`.
#[post("/api/my/rooms/{id}/revoke", state: State, auth: Auth)]
pub async fn revoke_room(id: String) -> Result<OwnedRoom, ApiError> {
    let owner = owner(&auth)?;
    let id = parse_id(&id)?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::revoke(&state.0, owner, id, now).await?)
}

/// Sets the room to expire `hours` from now. `POST /api/my/rooms/{id}/expiry`.
#[post("/api/my/rooms/{id}/expiry", state: State, auth: Auth)]
pub async fn set_room_expiry(id: String, hours: u32) -> Result<OwnedRoom, ApiError> {
    let owner = owner(&auth)?;
    let id = parse_id(&id)?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::set_expiry(&state.0, owner, id, hours, now).await?)
}

/// Renames the room (`null` or blank: back to the file names). `POST /api/my/rooms/{id}/title`.
#[post("/api/my/rooms/{id}/title", state: State, auth: Auth)]
pub async fn rename_room(id: String, title: Option<String>) -> Result<OwnedRoom, ApiError> {
    let owner = owner(&auth)?;
    let id = parse_id(&id)?;
    let now = crate::server::rooms::now_secs();
    Ok(crate::server::rooms::rename(&state.0, owner, id, title, now).await?)
}
