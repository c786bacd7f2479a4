//! Plain data shared by the server, the browser and the tests: ids, room records, limits.
//! No I/O and no feature gates here, so every side agrees on the same types and checks.

pub mod account;
pub mod limits;
pub mod manifest;
pub mod room;
pub mod room_id;
pub mod signal;
pub mod wire;

pub use account::{Account, Me};

/// A peer in a room, as numbered by the signaling server.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PeerId(pub u64);
pub use room::{
    CreateRoomRequest, CreatedRoom, FileEntry, InvalidRoom, OwnedRoom, RoomTicket, RoomView,
};
pub use room_id::{RoomId, RoomIdError};
