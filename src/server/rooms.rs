//! Room allocation and lookup: the only code that reads or writes the `room` table.

use super::entity::room;
use super::entity::room_completion;
use super::state::AppState;
use super::ticket::TicketClaims;
use crate::protocol::limits::{MAX_ROOM_TTL_SECS, MIN_ROOM_TTL_SECS};
use crate::protocol::room::RoomManifest;
use crate::protocol::room_id::ROOM_ID_BYTES;
use crate::protocol::{
    CreateRoomRequest, CreatedRoom, FileEntry, InvalidRoom, OwnedRoom, RoomId, RoomTicket, RoomView,
};
use anyhow::Context;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error(transparent)]
    Invalid(#[from] InvalidRoom),
    #[error("this room does not exist or has expired")]
    NotFound,
    #[error("this room was closed by its owner")]
    Gone,
    #[error("only the room's owner can do that")]
    Forbidden,
    #[error("{0}")]
    BadRequest(String),
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
/// `owner` is the signed-in creator; anonymous rooms belong to no one.
pub async fn create(
    state: &AppState,
    request: CreateRoomRequest,
    owner: Option<i64>,
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
        owner_id: Set(owner),
        revoked_at: Set(None),
    };
    row.insert(&state.db).await.context("storing a new room")?;
    let claims = TicketClaims {
        room: id,
        creator: true,
        iat: now,
        exp: expires_at.min(now + state.settings.ticket_ttl_secs),
        jti: TicketClaims::new_id(),
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
    let expires_at = view.expires_at.min(now + state.settings.ticket_ttl_secs);
    let claims = TicketClaims {
        room: id,
        creator: false,
        iat: now,
        exp: expires_at,
        jti: TicketClaims::new_id(),
    };
    Ok(RoomTicket {
        ticket: state.tickets.issue(&claims)?,
        expires_at,
    })
}

/// The stored row of a live room: expired rooms are missing, revoked ones gone.
async fn live_row(state: &AppState, id: RoomId, now: i64) -> Result<room::Model, RoomError> {
    let row = room::Entity::find_by_id(id.to_string())
        .one(&state.db)
        .await
        .context("reading a room")?
        .ok_or(RoomError::NotFound)?;
    if row.expires_at <= now {
        return Err(RoomError::NotFound);
    }
    if row.revoked_at.is_some() {
        return Err(RoomError::Gone);
    }
    Ok(row)
}

fn decode_files(row: &room::Model) -> Result<Vec<FileEntry>, RoomError> {
    Ok(serde_json::from_str(&row.files).context("decoding a stored file list")?)
}

/// The room as its page shows it; expired rooms are reported as missing.
pub async fn get(state: &AppState, id: RoomId, now: i64) -> Result<RoomView, RoomError> {
    let row = live_row(state, id, now).await?;
    let files = decode_files(&row)?;
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

/// A room `owner` may manage: missing or expired rooms are not found, other people's
/// rooms forbidden.
async fn owned_row(
    state: &AppState,
    owner: i64,
    id: RoomId,
    now: i64,
) -> Result<room::Model, RoomError> {
    let row = room::Entity::find_by_id(id.to_string())
        .one(&state.db)
        .await
        .context("reading a room")?
        .filter(|r| r.expires_at > now)
        .ok_or(RoomError::NotFound)?;
    if row.owner_id != Some(owner) {
        return Err(RoomError::Forbidden);
    }
    Ok(row)
}

/// Most rooms `/rooms` lists (newest first).
pub const MAX_LISTED_ROOMS: u64 = 500;

/// The owner's unexpired rooms, newest first, with completion counts and who is online.
pub async fn list_owned(
    state: &AppState,
    owner: i64,
    now: i64,
) -> Result<Vec<OwnedRoom>, RoomError> {
    let rows = room::Entity::find()
        .filter(room::Column::OwnerId.eq(owner))
        .filter(room::Column::ExpiresAt.gt(now))
        .order_by_desc(room::Column::CreatedAt)
        .order_by_desc(room::Column::Id)
        .limit(MAX_LISTED_ROOMS)
        .all(&state.db)
        .await
        .context("listing a user's rooms")?;
    let mut rooms = Vec::with_capacity(rows.len());
    for row in rows {
        rooms.push(owned_view(state, row).await?);
    }
    Ok(rooms)
}

async fn owned_view(state: &AppState, row: room::Model) -> Result<OwnedRoom, RoomError> {
    let id = RoomId::parse(&row.id).context("a stored room id")?;
    let completed = room_completion::Entity::find()
        .filter(room_completion::Column::RoomId.eq(row.id.clone()))
        .count(&state.db)
        .await
        .context("counting completed downloads")?;
    let online = if row.revoked_at.is_some() {
        0
    } else {
        state.hub.online(id).await as u64
    };
    Ok(OwnedRoom {
        files: decode_files(&row)?,
        id,
        title: row.title,
        total_size: row.total_size as u64,
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked: row.revoked_at.is_some(),
        completed,
        online,
    })
}

/// Closes the room at once: its link answers 410, tickets are refused, and everyone
/// connected is told and disconnected (on every instance).
pub async fn revoke(
    state: &AppState,
    owner: i64,
    id: RoomId,
    now: i64,
) -> Result<OwnedRoom, RoomError> {
    let row = owned_row(state, owner, id, now).await?;
    let row = if row.revoked_at.is_none() {
        let mut active: room::ActiveModel = row.into();
        active.revoked_at = Set(Some(now));
        active.update(&state.db).await.context("revoking a room")?
    } else {
        row
    };
    state.hub.close_room(id, "the owner closed this room").await;
    tracing::info!(room = %id, "room revoked by its owner");
    owned_view(state, row).await
}

/// Moves the expiry to `hours` from now (1 hour up to the longest room lifetime).
pub async fn set_expiry(
    state: &AppState,
    owner: i64,
    id: RoomId,
    hours: u32,
    now: i64,
) -> Result<OwnedRoom, RoomError> {
    let secs = i64::from(hours) * 3600;
    if !(MIN_ROOM_TTL_SECS.max(3600)..=MAX_ROOM_TTL_SECS).contains(&secs) {
        return Err(RoomError::BadRequest(format!(
            "a room can expire between 1 and {} hours from now",
            MAX_ROOM_TTL_SECS / 3600
        )));
    }
    let row = owned_row(state, owner, id, now).await?;
    if row.revoked_at.is_some() {
        return Err(RoomError::Gone);
    }
    let mut active: room::ActiveModel = row.into();
    active.expires_at = Set(now + secs);
    let row = active.update(&state.db).await.context("changing expiry")?;
    owned_view(state, row).await
}

/// Renames the room; an empty title falls back to the file names.
pub async fn rename(
    state: &AppState,
    owner: i64,
    id: RoomId,
    title: Option<String>,
    now: i64,
) -> Result<OwnedRoom, RoomError> {
    let title = match title.as_deref() {
        Some(t) => crate::protocol::room::clean_title(t)?,
        None => None,
    };
    let row = owned_row(state, owner, id, now).await?;
    if row.revoked_at.is_some() {
        return Err(RoomError::Gone);
    }
    let mut active: room::ActiveModel = row.into();
    active.title = Set(title);
    let row = active.update(&state.db).await.context("renaming a room")?;
    owned_view(state, row).await
}

/// Counts a finished download once per ticket. The creator's own ticket does not count.
pub async fn record_completion(
    state: &AppState,
    id: RoomId,
    ticket: &str,
    now: i64,
) -> Result<(), RoomError> {
    let claims = state
        .tickets
        .verify(ticket)
        .map_err(|_| RoomError::BadRequest("the ticket is not valid".into()))?;
    if claims.room != id {
        return Err(RoomError::BadRequest(
            "the ticket is for another room".into(),
        ));
    }
    live_row(state, id, now).await?;
    if claims.creator {
        return Ok(());
    }
    use sha2::Digest;
    let hash = crate::protocol::manifest::to_hex(&sha2::Sha256::digest(ticket.as_bytes()).into());
    let row = room_completion::ActiveModel {
        room_id: Set(id.to_string()),
        ticket_hash: Set(hash),
        completed_at: Set(now),
    };
    // A repeated report of the same ticket changes nothing.
    room_completion::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec(&state.db)
        .await
        .context("recording a completed download")?;
    Ok(())
}

/// Deletes rooms that expired (and their completion records); returns how many.
/// Metadata only: there is no file content on the server.
pub async fn purge_expired(state: &AppState, now: i64) -> anyhow::Result<u64> {
    let mut purged = 0;
    loop {
        let ids: Vec<String> = room::Entity::find()
            .select_only()
            .column(room::Column::Id)
            .filter(room::Column::ExpiresAt.lte(now))
            .limit(500)
            .into_tuple()
            .all(&state.db)
            .await
            .context("finding expired rooms")?;
        if ids.is_empty() {
            return Ok(purged);
        }
        // Expiry is checked again: a room extended meanwhile stays.
        let done = room::Entity::delete_many()
            .filter(room::Column::Id.is_in(ids.clone()))
            .filter(room::Column::ExpiresAt.lte(now))
            .exec(&state.db)
            .await
            .context("deleting expired rooms")?;
        let kept: Vec<String> = room::Entity::find()
            .select_only()
            .column(room::Column::Id)
            .filter(room::Column::Id.is_in(ids.clone()))
            .into_tuple()
            .all(&state.db)
            .await
            .context("checking purged rooms")?;
        // Peers still connected to a purged room are told and disconnected: their tickets
        // can outlive the room when its owner shortened its expiry.
        for id in ids.iter().filter(|id| !kept.contains(id)) {
            if let Ok(room) = RoomId::parse(id) {
                state.hub.expire_room(room).await;
            }
        }
        // Completion records go with their room, and only then.
        room_completion::Entity::delete_many()
            .filter(room_completion::Column::RoomId.is_in(ids.clone()))
            .filter(room_completion::Column::RoomId.is_not_in(kept.clone()))
            .exec(&state.db)
            .await
            .context("deleting completion records")?;
        purged += done.rows_affected;
    }
}

/// Runs [`purge_expired`] every `interval` for the life of the process.
pub fn spawn_purge_job(state: AppState, interval: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match purge_expired(&state, now_secs()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rooms = n, "purged expired rooms"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "purging expired rooms failed"),
            }
        }
    });
}
