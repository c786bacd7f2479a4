//! The one table of environment variables: the parser reads through it, and
//! docs/configuration.md shows it (a test checks they agree).

/// One environment variable the server reads: its name, its default as people read it, and
/// what it means. The parser reads variables only through these, so the table below (and
/// docs/configuration.md, checked against it) lists every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

macro_rules! variables {
    ($($id:ident: $default:literal, $meaning:literal;)*) => {
        /// Each variable, by name.
        #[allow(non_upper_case_globals)]
        pub mod var {
            $(pub const $id: super::Var = super::Var {
                name: stringify!($id),
                default: $default,
                meaning: $meaning,
            };)*
        }
        /// Every variable, in the order the documentation lists them.
        pub const VARIABLES: &[Var] = &[$(var::$id),*];
    };
}

variables! {
    IP: "127.0.0.1",
        "address to listen on";
    PORT: "8080",
        "port to listen on";
    DATABASE_URL: "SQLite file in the data directory",
        "`postgres://…` or `sqlite:…`: where rooms and accounts live";
    MESHDROP_DATA_DIR: "./data",
        "where the embedded database and the generated secret live";
    MESHDROP_JWT_SECRET: "generated once, kept in the data directory",
        "HMAC secret for room tickets, at least 32 bytes";
    MESHDROP_PUBLIC_URL: "http://IP:PORT",
        "public base URL, e.g. https://drop.example.com";
    MESHDROP_ROOM_TTL_HOURS: "168",
        "how long a room lives, in hours";
    REDIS_URL: "in-process",
        "`redis://…` to share signaling and presence between server instances";
    MESHDROP_STUN_URLS: "none",
        "comma-separated `stun:` URLs handed to browsers";
    MESHDROP_TURN_URLS: "none",
        "comma-separated `turn:`/`turns:` URLs of coturn servers sharing one secret";
    MESHDROP_TURN_SECRET: "none",
        "coturn's static-auth-secret; TURN URLs are handed out only with it";
    MESHDROP_TICKET_TTL_SECS: "86400 (also the most)",
        "lifetime of room tickets, never beyond the room; tabs renew theirs before it ends, and a socket whose ticket expires unrenewed is closed (under a minute only makes sense in tests)";
    MESHDROP_TURN_TTL_SECS: "3600",
        "lifetime of minted TURN credentials";
    MESHDROP_MAX_ROOMS_PER_IP_PER_HOUR: "120",
        "rooms one address may create per hour";
    MESHDROP_MAX_SIGNINS_PER_IP_PER_HOUR: "60",
        "sign-ins one address may start per hour";
    MESHDROP_MAX_COMPLETIONS_PER_IP_PER_HOUR: "120",
        "reports of finished downloads one address may send per hour (each can add a row to the room's count)";
    MESHDROP_TRUSTED_PROXIES: "none: the connecting address counts",
        "comma-separated addresses or ranges (10.0.0.0/8) of reverse proxies whose X-Forwarded-For names the client for per-address limits";
    MESHDROP_HUB_MAX_PEERS_PER_ROOM: "2000",
        "peers in one room at once";
    MESHDROP_HUB_MAX_SOCKETS_PER_IP: "64",
        "signaling sockets from one address at once";
    MESHDROP_HUB_MESSAGES_PER_SEC: "100",
        "signaling messages per second per socket (bursts of 5 times as many)";
    MESHDROP_HUB_HEARTBEAT_MS: "10000",
        "ping interval; a socket silent for 3 of them is dropped";
    MESHDROP_PURGE_INTERVAL_SECS: "600",
        "how often expired rooms are deleted";
    MESHDROP_GITHUB_CLIENT_ID: "none",
        "GitHub OAuth app client id; with the secret, shows \"Sign in with GitHub\"";
    MESHDROP_GITHUB_CLIENT_SECRET: "none",
        "GitHub OAuth app client secret";
    MESHDROP_GITHUB_AUTH_URL: "https://github.com/login/oauth/authorize",
        "override for tests";
    MESHDROP_GITHUB_TOKEN_URL: "https://github.com/login/oauth/access_token",
        "override for tests";
    MESHDROP_GITHUB_API_URL: "https://api.github.com",
        "override for tests";
    MESHDROP_GOOGLE_CLIENT_ID: "none",
        "Google OAuth client id; with the secret, shows \"Sign in with Google\"";
    MESHDROP_GOOGLE_CLIENT_SECRET: "none",
        "Google OAuth client secret";
    MESHDROP_GOOGLE_AUTH_URL: "https://accounts.google.com/o/oauth2/v2/auth",
        "override for tests";
    MESHDROP_GOOGLE_TOKEN_URL: "https://oauth2.googleapis.com/token",
        "override for tests";
    MESHDROP_GOOGLE_USERINFO_URL: "https://openidconnect.googleapis.com/v1/userinfo",
        "override for tests";
}

/// The table of docs/configuration.md, generated from `VARIABLES`.
pub fn markdown_table() -> String {
    let mut table = String::from("| Variable | Default | Meaning |\n|---|---|---|\n");
    for v in VARIABLES {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            v.name, v.default, v.meaning
        ));
    }
    table
}
