//! Room allocation and lookup: the only code that reads or writes the `room` table.

use super::entity::room;
use super::state::AppState;
use super::ticket::TicketClaims;
use crate::protocol::limits::TICKET_TTL_SECS;
use crate::protocol::room::RoomManifest;
use crate::protocol::room_id::ROOM_ID_BYTES;
use crate::protocol::{
    CreateRoomRequest, CreatedRoom, FileEntry, InvalidRoom, RoomId, RoomTicket, RoomView,
};
use anyhow::Context;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error(transparent)]
    Invalid(#[from] InvalidRoom),
    #[error("this room does not exist or has expired")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Validates the request, stores the room and returns its id with the creator's ticket.
/// Nothing is stored when validation fails.
pub async fn create(
    state: &AppState,
    request: CreateRoomRequest,
    now: i64,
) -> Result<CreatedRoom, RoomError> {
    request.validate()?;
    let id = RoomId::from_bytes(rand::random::<[u8; ROOM_ID_BYTES]>());
    let expires_at = now + state.settings.room_ttl_secs;
    let total_size: u64 = request.files.iter().map(|f| f.size).sum();
    let row = room::ActiveModel {
        id: Set(id.to_string()),
        title: Set(request.clean_title()),
        files: Set(serde_json::to_string(&request.files).context("encoding the file list")?),
        file_count: Set(request.files.len() as i32),
        // Validation caps the total at 4 TiB, far below i64::MAX.
        total_size: Set(total_size as i64),
        root_hash: Set(request
            .manifest
            .as_ref()
            .map(|m| m.root.to_ascii_lowercase())),
        piece_size: Set(request.manifest.as_ref().map(|m| i64::from(m.piece_size))),
        created_at: Set(now),
        expires_at: Set(expires_at),
    };
    row.insert(&state.db).await.context("storing a new room")?;
    let claims = TicketClaims {
        room: id,
        creator: true,
        iat: now,
        exp: expires_at.min(now + TICKET_TTL_SECS),
    };
    let ticket = state.tickets.issue(&claims)?;
    tracing::info!(room = %id, files = request.files.len(), total_size, "room created");
    Ok(CreatedRoom {
        id,
        ticket,
        expires_at,
    })
}

/// A ticket for an existing, unexpired room: anyone with the link may join its swarm.
pub async fn join(state: &AppState, id: RoomId, now: i64) -> Result<RoomTicket, RoomError> {
    let view = get(state, id, now).await?;
    let expires_at = view.expires_at.min(now + TICKET_TTL_SECS);
    let claims = TicketClaims {
        room: id,
        creator: false,
        iat: now,
        exp: expires_at,
    };
    Ok(RoomTicket {
        ticket: state.tickets.issue(&claims)?,
        expires_at,
    })
}

/// The room as its page shows it; expired rooms are reported as missing.
pub async fn get(state: &AppState, id: RoomId, now: i64) -> Result<RoomView, RoomError> {
    let row = room::Entity::find_by_id(id.to_string())
        .one(&state.db)
        .await
        .context("reading a room")?
        .ok_or(RoomError::NotFound)?;
    if row.expires_at <= now {
        return Err(RoomError::NotFound);
    }
    let files: Vec<FileEntry> =
        serde_json::from_str(&row.files).context("decoding a stored file list")?;
    let manifest = match (row.root_hash, row.piece_size) {
        (Some(root), Some(piece_size)) => Some(RoomManifest {
            root,
            piece_size: piece_size as u32,
        }),
        _ => None,
    };
    Ok(RoomView {
        manifest,
        id,
        title: row.title,
        files,
        created_at: row.created_at,
        expires_at: row.expires_at,
    })
}
