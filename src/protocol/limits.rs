//! Every size and count limit that input is checked against, in one place.

/// Most files one room may list.
pub const MAX_FILES_PER_ROOM: usize = 1_000;
/// Longest file name, in UTF-8 bytes (the common file-system limit).
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// Longest MIME type string, in bytes.
pub const MAX_MIME_BYTES: usize = 255;
/// Longest room title, in UTF-8 bytes.
pub const MAX_TITLE_BYTES: usize = 200;
/// Largest single file: 1 TiB. Anything larger is a client bug or an attack.
pub const MAX_FILE_BYTES: u64 = 1 << 40;
/// Largest room in total: 4 TiB.
pub const MAX_ROOM_BYTES: u64 = 4 << 40;
/// Largest request body the server reads, in bytes (a full 1,000-file create_room fits).
pub const MAX_REQUEST_BODY_BYTES: usize = 1024 * 1024;
/// How long a room lives by default, in seconds (7 days).
pub const DEFAULT_ROOM_TTL_SECS: i64 = 7 * 24 * 3600;
/// Shortest and longest room lifetime an operator may configure, in seconds.
pub const MIN_ROOM_TTL_SECS: i64 = 60;
pub const MAX_ROOM_TTL_SECS: i64 = 90 * 24 * 3600;
/// Lifetime of a room ticket (JWT), in seconds; never beyond the room's own expiry.
pub const TICKET_TTL_SECS: i64 = 24 * 3600;
/// Smallest JWT secret accepted from configuration, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
