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
/// Lifetime of a room ticket (JWT), in seconds, unless configured shorter; never beyond the
/// room's own expiry.
pub const TICKET_TTL_SECS: i64 = 24 * 3600;
/// Smallest JWT secret accepted from configuration, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

// ---- signaling -------------------------------------------------------------------------

/// Largest signaling message in either direction, in bytes.
pub const MAX_SIGNAL_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest SDP offer or answer (a data-channel-only SDP is about 1 KiB).
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Largest ICE candidate line.
pub const MAX_CANDIDATE_BYTES: usize = 1024;
/// Largest room ticket sent to renew a socket (a ticket is about 300 bytes).
pub const MAX_TICKET_BYTES: usize = 2048;
/// Most STUN/TURN entries handed to a browser.
pub const MAX_ICE_SERVERS: usize = 16;

/// The hub's limits. Defaults suit a public server; operators may change them through the
/// `MESHDROP_HUB_*` variables (the load benchmark raises the per-address cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubLimits {
    /// Peers in one room at once.
    pub max_peers_per_room: usize,
    /// Sockets open from one IP address at once.
    pub max_sockets_per_ip: usize,
    /// Sustained messages per second per socket, and the burst allowed above it (a peer
    /// joining a big room sends an offer and a dozen candidates to each of ~30 peers).
    pub messages_per_sec: u32,
    pub message_burst: u32,
    /// The hub pings this often; a socket silent for three intervals is dropped.
    pub heartbeat_ms: u64,
    /// Messages queued towards one socket before it is dropped as too slow.
    pub outbound_queue: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            max_peers_per_room: 2_000,
            max_sockets_per_ip: 64,
            messages_per_sec: 100,
            message_burst: 500,
            heartbeat_ms: 10_000,
            outbound_queue: 1_024,
        }
    }
}
