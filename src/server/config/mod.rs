//! Configuration: every environment variable the server reads, parsed once into `Settings`.
//!
//! A missing or invalid value stops start-up with one line naming the variable. With nothing
//! configured the server still runs: SQLite under the data directory and a generated JWT
//! secret persisted next to it.

use super::auth::provider::{Provider, ProviderSettings};
use super::client_addr::TrustedProxies;
use super::turn::IceConfig;
use crate::protocol::limits::{
    DEFAULT_ROOM_TTL_SECS, MAX_ROOM_TTL_SECS, MIN_JWT_SECRET_BYTES, MIN_ROOM_TTL_SECS,
    TICKET_TTL_SECS,
};
use crate::protocol::limits::{HubLimits, MAX_ICE_SERVERS};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod variables;

pub use variables::{VARIABLES, Var, markdown_table, var};

#[derive(Clone)]
pub struct Settings {
    pub ip: IpAddr,
    pub port: u16,
    pub database: DatabaseUrl,
    pub data_dir: PathBuf,
    pub jwt_secret: JwtSecret,
    /// Without a trailing slash.
    pub public_url: String,
    pub room_ttl_secs: i64,
    /// Lifetime of room tickets (tabs renew theirs over the socket before it ends).
    pub ticket_ttl_secs: i64,
    /// True when no secret was configured and a development one was generated or reused.
    pub jwt_secret_generated: bool,
    pub redis_url: Option<SecretString>,
    pub rooms_per_ip_per_hour: usize,
    /// Sign-ins one address may start per hour.
    pub signins_per_ip_per_hour: usize,
    /// Finished downloads one address may report per hour (each adds a row).
    pub completions_per_ip_per_hour: usize,
    /// Whose `X-Forwarded-For` counts when telling clients apart (`client_addr`).
    pub trusted_proxies: TrustedProxies,
    pub ice: IceConfig,
    pub hub: HubLimits,
    /// Sign-in providers with credentials; the others are hidden.
    pub providers: Vec<ProviderSettings>,
    pub purge_interval_secs: u64,
}

/// Where room metadata lives. Postgres URLs can carry a password, so they stay secret.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(SecretString),
}

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(url) => url,
            DatabaseUrl::Postgres(url) => url.expose_secret(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

/// The ticket-signing secret. Debug never shows it.
#[derive(Clone)]
pub struct JwtSecret(Arc<SecretBox<Vec<u8>>>);

impl JwtSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(SecretBox::new(Box::new(bytes))))
    }
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(****)")
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("database", &self.database.kind())
            .field("data_dir", &self.data_dir)
            .field("jwt_secret", &self.jwt_secret)
            .field("public_url", &self.public_url)
            .field("room_ttl_secs", &self.room_ttl_secs)
            .field("ticket_ttl_secs", &self.ticket_ttl_secs)
            .field("jwt_secret_generated", &self.jwt_secret_generated)
            .field("redis", &self.redis_url.as_ref().map(|_| "<configured>"))
            .field("rooms_per_ip_per_hour", &self.rooms_per_ip_per_hour)
            .field("signins_per_ip_per_hour", &self.signins_per_ip_per_hour)
            .field(
                "completions_per_ip_per_hour",
                &self.completions_per_ip_per_hour,
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("ice", &self.ice)
            .field("hub", &self.hub)
            .field("providers", &self.providers)
            .field("purge_interval_secs", &self.purge_interval_secs)
            .finish()
    }
}

/// A configuration problem: which variable, and what is wrong with it (never its value if secret).
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn invalid(var: Var, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.name,
        reason: reason.into(),
    }
}

const GENERATED_SECRET_FILE: &str = "jwt-secret";

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Parses settings from any lookup, so tests need not touch the process environment.
    /// A generated JWT secret is read from, or written to, the data directory.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |v: Var| lookup(v.name).filter(|v| !v.trim().is_empty());

        let ip = match get(var::IP) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(var::IP, format!("not an IP address: {v:?}")))?,
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let port = match get(var::PORT) {
            Some(v) => v.trim().parse::<u16>().map_err(|_| {
                invalid(
                    var::PORT,
                    format!("expected a port number 0-65535, got {v:?}"),
                )
            })?,
            None => 8080,
        };
        let data_dir = PathBuf::from(get(var::MESHDROP_DATA_DIR).unwrap_or_else(|| "data".into()));
        let database = match get(var::DATABASE_URL) {
            None => DatabaseUrl::Sqlite(sqlite_url(&data_dir.join("meshdrop.db"))),
            Some(v) if v.starts_with("postgres://") || v.starts_with("postgresql://") => {
                DatabaseUrl::Postgres(SecretString::from(v))
            }
            Some(v) if v.starts_with("sqlite:") => DatabaseUrl::Sqlite(v),
            Some(_) => {
                return Err(invalid(
                    var::DATABASE_URL,
                    "must start with postgres://, postgresql:// or sqlite:",
                ));
            }
        };
        let public_url = match get(var::MESHDROP_PUBLIC_URL) {
            Some(v) => {
                let v = v.trim().trim_end_matches('/').to_owned();
                let rest = v
                    .strip_prefix("https://")
                    .or_else(|| v.strip_prefix("http://"));
                match rest {
                    Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => v,
                    _ => {
                        return Err(invalid(
                            var::MESHDROP_PUBLIC_URL,
                            format!("expected http(s)://host[:port], got {v:?}"),
                        ));
                    }
                }
            }
            None => match ip {
                IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
                IpAddr::V4(v4) => format!("http://{v4}:{port}"),
            },
        };
        let room_ttl_secs = match get(var::MESHDROP_ROOM_TTL_HOURS) {
            Some(v) => {
                let hours: i64 = v.trim().parse().map_err(|_| {
                    invalid(
                        var::MESHDROP_ROOM_TTL_HOURS,
                        format!("expected a whole number of hours, got {v:?}"),
                    )
                })?;
                let secs = hours.saturating_mul(3600);
                if !(MIN_ROOM_TTL_SECS..=MAX_ROOM_TTL_SECS).contains(&secs) {
                    return Err(invalid(
                        var::MESHDROP_ROOM_TTL_HOURS,
                        format!("must be between 1 and {} hours", MAX_ROOM_TTL_SECS / 3600),
                    ));
                }
                secs
            }
            None => DEFAULT_ROOM_TTL_SECS,
        };
        let (jwt_secret, jwt_secret_generated) = match lookup(var::MESHDROP_JWT_SECRET.name) {
            Some(v) if v.len() >= MIN_JWT_SECRET_BYTES => (JwtSecret::new(v.into_bytes()), false),
            Some(v) => {
                return Err(invalid(
                    var::MESHDROP_JWT_SECRET,
                    format!(
                        "must be at least {MIN_JWT_SECRET_BYTES} bytes, got {}",
                        v.len()
                    ),
                ));
            }
            None => load_or_generate_secret(&data_dir)
                .map(|secret| (secret, true))
                .map_err(|e| {
                    invalid(
                        var::MESHDROP_DATA_DIR,
                        format!("cannot keep the generated JWT secret there: {e:#}"),
                    )
                })?,
        };
        let list = |v: Var| -> Vec<String> {
            get(v)
                .map(|v| {
                    v.split(',')
                        .map(|u| u.trim().to_owned())
                        .filter(|u| !u.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let ice = IceConfig {
            stun_urls: list(var::MESHDROP_STUN_URLS),
            turn_urls: list(var::MESHDROP_TURN_URLS),
            turn_secret: get(var::MESHDROP_TURN_SECRET).map(SecretString::from),
            turn_ttl_secs: number(&get, var::MESHDROP_TURN_TTL_SECS, 3600, 60..=7 * 24 * 3600)?,
        };
        for url in &ice.stun_urls {
            if !url.starts_with("stun:") && !url.starts_with("stuns:") {
                return Err(invalid(
                    var::MESHDROP_STUN_URLS,
                    format!("not a stun: URL: {url:?}"),
                ));
            }
        }
        for url in &ice.turn_urls {
            if !url.starts_with("turn:") && !url.starts_with("turns:") {
                return Err(invalid(
                    var::MESHDROP_TURN_URLS,
                    format!("not a turn: URL: {url:?}"),
                ));
            }
        }
        if ice.stun_urls.len() + ice.turn_urls.len() > MAX_ICE_SERVERS {
            return Err(invalid(
                var::MESHDROP_TURN_URLS,
                format!("at most {MAX_ICE_SERVERS} STUN and TURN URLs in all"),
            ));
        }
        let defaults = HubLimits::default();
        let heartbeat_ms = number(
            &get,
            var::MESHDROP_HUB_HEARTBEAT_MS,
            defaults.heartbeat_ms as i64,
            100..=600_000,
        )? as u64;
        let messages_per_sec = number(
            &get,
            var::MESHDROP_HUB_MESSAGES_PER_SEC,
            defaults.messages_per_sec.into(),
            1..=1_000_000,
        )? as u32;
        let hub = HubLimits {
            max_peers_per_room: number(
                &get,
                var::MESHDROP_HUB_MAX_PEERS_PER_ROOM,
                defaults.max_peers_per_room as i64,
                2..=100_000,
            )? as usize,
            max_sockets_per_ip: number(
                &get,
                var::MESHDROP_HUB_MAX_SOCKETS_PER_IP,
                defaults.max_sockets_per_ip as i64,
                1..=1_000_000,
            )? as usize,
            messages_per_sec,
            message_burst: messages_per_sec.saturating_mul(5),
            heartbeat_ms,
            ..defaults
        };
        let redis_url = match get(var::REDIS_URL) {
            Some(v)
                if v.starts_with("redis://")
                    || v.starts_with("rediss://")
                    || v.starts_with("unix://")
                    || v.starts_with("redis+unix://") =>
            {
                Some(SecretString::from(v))
            }
            Some(_) => {
                return Err(invalid(
                    var::REDIS_URL,
                    "must start with redis://, rediss:// or unix://",
                ));
            }
            None => None,
        };
        Ok(Settings {
            ip,
            port,
            database,
            data_dir,
            jwt_secret,
            public_url,
            room_ttl_secs,
            ticket_ttl_secs: number(
                &get,
                var::MESHDROP_TICKET_TTL_SECS,
                TICKET_TTL_SECS,
                1..=TICKET_TTL_SECS,
            )?,
            jwt_secret_generated,
            redis_url,
            rooms_per_ip_per_hour: number(
                &get,
                var::MESHDROP_MAX_ROOMS_PER_IP_PER_HOUR,
                120,
                1..=10_000_000,
            )? as usize,
            signins_per_ip_per_hour: number(
                &get,
                var::MESHDROP_MAX_SIGNINS_PER_IP_PER_HOUR,
                60,
                1..=10_000_000,
            )? as usize,
            completions_per_ip_per_hour: number(
                &get,
                var::MESHDROP_MAX_COMPLETIONS_PER_IP_PER_HOUR,
                120,
                1..=10_000_000,
            )? as usize,
            trusted_proxies: match get(var::MESHDROP_TRUSTED_PROXIES) {
                Some(v) => TrustedProxies::parse(&v)
                    .map_err(|e| invalid(var::MESHDROP_TRUSTED_PROXIES, e))?,
                None => TrustedProxies::default(),
            },
            ice,
            hub,
            providers: Provider::ALL
                .into_iter()
                .filter_map(|p| provider_settings(&get, p).transpose())
                .collect::<Result<_, _>>()?,
            purge_interval_secs: number(&get, var::MESHDROP_PURGE_INTERVAL_SECS, 600, 1..=86_400)?
                as u64,
        })
    }
}

/// A provider's settings when its client id and secret are both set. Endpoint overrides
/// must be http(s) URLs.
fn provider_settings(
    get: &impl Fn(Var) -> Option<String>,
    provider: Provider,
) -> Result<Option<ProviderSettings>, ConfigError> {
    let (id_var, secret_var, auth_var, token_var, profile_var) = match provider {
        Provider::Github => (
            var::MESHDROP_GITHUB_CLIENT_ID,
            var::MESHDROP_GITHUB_CLIENT_SECRET,
            var::MESHDROP_GITHUB_AUTH_URL,
            var::MESHDROP_GITHUB_TOKEN_URL,
            var::MESHDROP_GITHUB_API_URL,
        ),
        Provider::Google => (
            var::MESHDROP_GOOGLE_CLIENT_ID,
            var::MESHDROP_GOOGLE_CLIENT_SECRET,
            var::MESHDROP_GOOGLE_AUTH_URL,
            var::MESHDROP_GOOGLE_TOKEN_URL,
            var::MESHDROP_GOOGLE_USERINFO_URL,
        ),
    };
    let (client_id, secret) = match (get(id_var), get(secret_var)) {
        (None, None) => return Ok(None),
        (Some(id), Some(secret)) => (id.trim().to_owned(), secret),
        (Some(_), None) => {
            return Err(invalid(
                secret_var,
                format!("is required when {} is set", id_var.name),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                id_var,
                format!("is required when {} is set", secret_var.name),
            ));
        }
    };
    let (auth, token, profile) = provider.default_endpoints();
    let url = |var: Var, default: &str| -> Result<String, ConfigError> {
        let v = get(var)
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| default.to_owned());
        if v.starts_with("https://") || v.starts_with("http://") {
            Ok(v)
        } else {
            Err(invalid(var, format!("expected an http(s) URL, got {v:?}")))
        }
    };
    Ok(Some(ProviderSettings {
        provider,
        client_id,
        client_secret: SecretString::from(secret),
        auth_url: url(auth_var, auth)?,
        token_url: url(token_var, token)?,
        profile_url: url(profile_var, profile)?,
    }))
}

/// A whole number within `range`, or `default` when unset.
fn number(
    get: &impl Fn(Var) -> Option<String>,
    var: Var,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    let Some(v) = get(var) else {
        return Ok(default);
    };
    match v.trim().parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(invalid(
            var,
            format!(
                "expected a whole number from {} to {}, got {v:?}",
                range.start(),
                range.end()
            ),
        )),
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Reads `<data_dir>/jwt-secret`, or creates it with 32 random bytes (hex) readable by the owner only.
fn load_or_generate_secret(data_dir: &Path) -> anyhow::Result<JwtSecret> {
    let path = data_dir.join(GENERATED_SECRET_FILE);
    if let Ok(bytes) = std::fs::read(&path) {
        anyhow::ensure!(
            bytes.len() >= MIN_JWT_SECRET_BYTES,
            "{} is too short; delete it to regenerate",
            path.display()
        );
        return Ok(JwtSecret::new(bytes));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let random: [u8; 32] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, hex.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(JwtSecret::new(hex.into_bytes()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_need_no_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let s = parse(&[("MESHDROP_DATA_DIR", data)]).unwrap();
        assert_eq!(s.ip.to_string(), "127.0.0.1");
        assert_eq!(s.port, 8080);
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.room_ttl_secs, DEFAULT_ROOM_TTL_SECS);
        assert_eq!(s.ticket_ttl_secs, TICKET_TTL_SECS);
        assert_eq!(s.database.kind(), "sqlite");
        assert!(s.database.expose().contains(data));
        assert!(s.jwt_secret_generated);
        // The generated secret is kept: a restart signs with the same key.
        let again = parse(&[("MESHDROP_DATA_DIR", data)]).unwrap();
        assert_eq!(s.jwt_secret.expose(), again.jwt_secret.expose());
        assert!(s.jwt_secret.expose().len() >= MIN_JWT_SECRET_BYTES);
    }

    #[test]
    fn the_configuration_page_shows_the_table() {
        let page = include_str!("../../../docs/configuration.md");
        let (start, end) = ("<!-- config-table:start -->\n", "<!-- config-table:end -->");
        let shown = page
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once(end))
            .map(|(table, _)| table)
            .expect("docs/configuration.md marks its table");
        let table = markdown_table();
        assert!(
            shown == table,
            "docs/configuration.md's table differs from src/server/config/variables.rs; put this between its markers:\n{table}"
        );
    }

    #[test]
    fn reads_only_the_variables_in_the_table_and_all_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap().to_owned();
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        Settings::from_lookup(|k| {
            asked.borrow_mut().insert(k.to_owned());
            match k {
                "MESHDROP_DATA_DIR" => Some(data.clone()),
                k if k.ends_with("_CLIENT_ID") || k.ends_with("_CLIENT_SECRET") => Some("x".into()),
                _ => None,
            }
        })
        .unwrap();
        let table: std::collections::BTreeSet<String> =
            VARIABLES.iter().map(|v| v.name.to_owned()).collect();
        assert_eq!(asked.into_inner(), table);
    }

    #[test]
    fn the_table_gives_the_defaults_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let s = parse(&[("MESHDROP_DATA_DIR", dir.path().to_str().unwrap())]).unwrap();
        let shown = |v: Var| -> i64 {
            let first = v.default.split(' ').next().unwrap_or_default();
            first
                .parse()
                .unwrap_or_else(|_| panic!("{}: {:?}", v.name, v.default))
        };
        assert_eq!(var::IP.default, s.ip.to_string());
        assert_eq!(shown(var::PORT), i64::from(s.port));
        assert_eq!(shown(var::MESHDROP_ROOM_TTL_HOURS), s.room_ttl_secs / 3600);
        assert_eq!(shown(var::MESHDROP_TICKET_TTL_SECS), s.ticket_ttl_secs);
        assert_eq!(shown(var::MESHDROP_TURN_TTL_SECS), s.ice.turn_ttl_secs);
        let per_hour = [
            (
                var::MESHDROP_MAX_ROOMS_PER_IP_PER_HOUR,
                s.rooms_per_ip_per_hour,
            ),
            (
                var::MESHDROP_MAX_SIGNINS_PER_IP_PER_HOUR,
                s.signins_per_ip_per_hour,
            ),
            (
                var::MESHDROP_MAX_COMPLETIONS_PER_IP_PER_HOUR,
                s.completions_per_ip_per_hour,
            ),
            (
                var::MESHDROP_HUB_MAX_PEERS_PER_ROOM,
                s.hub.max_peers_per_room,
            ),
            (
                var::MESHDROP_HUB_MAX_SOCKETS_PER_IP,
                s.hub.max_sockets_per_ip,
            ),
        ];
        for (v, value) in per_hour {
            assert_eq!(shown(v), value as i64, "{}", v.name);
        }
        assert_eq!(
            shown(var::MESHDROP_HUB_MESSAGES_PER_SEC),
            i64::from(s.hub.messages_per_sec)
        );
        assert_eq!(
            shown(var::MESHDROP_HUB_HEARTBEAT_MS),
            s.hub.heartbeat_ms as i64
        );
        assert_eq!(
            shown(var::MESHDROP_PURGE_INTERVAL_SECS),
            s.purge_interval_secs as i64
        );
    }

    #[test]
    fn sign_in_providers_need_id_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let none = parse(&[("MESHDROP_DATA_DIR", data)]).unwrap();
        assert!(
            none.providers.is_empty(),
            "no credentials: no sign-in buttons"
        );
        let github = parse(&[
            ("MESHDROP_DATA_DIR", data),
            ("MESHDROP_GITHUB_CLIENT_ID", "gh-id"),
            ("MESHDROP_GITHUB_CLIENT_SECRET", "gh-very-secret"),
            ("MESHDROP_GITHUB_API_URL", "http://127.0.0.1:9/api"),
        ])
        .unwrap();
        assert_eq!(github.providers.len(), 1);
        let p = &github.providers[0];
        assert_eq!(p.provider, Provider::Github);
        assert_eq!(p.profile_url, "http://127.0.0.1:9/api");
        assert_eq!(p.token_url, "https://github.com/login/oauth/access_token");
        assert!(!format!("{github:?}").contains("gh-very-secret"));
        let half = parse(&[
            ("MESHDROP_DATA_DIR", data),
            ("MESHDROP_GOOGLE_CLIENT_ID", "g-id"),
        ])
        .unwrap_err();
        assert_eq!(half.var, "MESHDROP_GOOGLE_CLIENT_SECRET");
        let bad_url = parse(&[
            ("MESHDROP_DATA_DIR", data),
            ("MESHDROP_GOOGLE_CLIENT_ID", "g-id"),
            ("MESHDROP_GOOGLE_CLIENT_SECRET", "g-secret"),
            ("MESHDROP_GOOGLE_TOKEN_URL", "ftp://x"),
        ])
        .unwrap_err();
        assert_eq!(bad_url.var, "MESHDROP_GOOGLE_TOKEN_URL");
    }

    #[test]
    fn reads_every_variable() {
        let s = parse(&[
            ("IP", "0.0.0.0"),
            ("PORT", "9000"),
            ("DATABASE_URL", "postgres://u:hunter2@localhost/db"),
            ("MESHDROP_JWT_SECRET", SECRET),
            ("MESHDROP_PUBLIC_URL", "https://drop.example.com/"),
            ("MESHDROP_ROOM_TTL_HOURS", "24"),
            ("REDIS_URL", "redis://:redispass@127.0.0.1:6379"),
            (
                "MESHDROP_STUN_URLS",
                "stun:a.example:3478, stun:b.example:3478",
            ),
            ("MESHDROP_TURN_URLS", "turn:a.example:3478?transport=udp"),
            ("MESHDROP_TURN_SECRET", "turnsecret-xyz"),
            ("MESHDROP_TURN_TTL_SECS", "600"),
            ("MESHDROP_HUB_MAX_PEERS_PER_ROOM", "50"),
            ("MESHDROP_HUB_MAX_SOCKETS_PER_IP", "7"),
            ("MESHDROP_HUB_MESSAGES_PER_SEC", "20"),
            ("MESHDROP_HUB_HEARTBEAT_MS", "1000"),
        ])
        .unwrap();
        assert_eq!(
            s.ice.stun_urls,
            ["stun:a.example:3478", "stun:b.example:3478"]
        );
        assert_eq!(s.ice.turn_ttl_secs, 600);
        assert_eq!(
            (
                s.hub.max_peers_per_room,
                s.hub.max_sockets_per_ip,
                s.hub.messages_per_sec,
                s.hub.message_burst,
                s.hub.heartbeat_ms
            ),
            (50, 7, 20, 100, 1000)
        );
        assert!(s.redis_url.is_some());
        assert_eq!(s.port, 9000);
        assert_eq!(s.database.kind(), "postgres");
        assert_eq!(s.public_url, "https://drop.example.com");
        assert_eq!(s.room_ttl_secs, 24 * 3600);
        assert_eq!(s.jwt_secret.expose(), SECRET.as_bytes());
        assert!(!s.jwt_secret_generated);
        // Secrets never show up in debug output.
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("hunter2")
                && !debug.contains(SECRET)
                && !debug.contains("redispass")
                && !debug.contains("turnsecret"),
            "{debug}"
        );
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("IP", "localhost:80"),
            ("PORT", "80000"),
            ("PORT", "http"),
            ("DATABASE_URL", "mysql://x"),
            ("MESHDROP_JWT_SECRET", "short"),
            ("MESHDROP_PUBLIC_URL", "drop.example.com"),
            ("MESHDROP_ROOM_TTL_HOURS", "0"),
            ("MESHDROP_ROOM_TTL_HOURS", "-3"),
            ("MESHDROP_ROOM_TTL_HOURS", "a week"),
            ("MESHDROP_TRUSTED_PROXIES", "10.0.0.1, proxy.internal"),
            ("MESHDROP_TICKET_TTL_SECS", "0"),
            ("MESHDROP_TICKET_TTL_SECS", "86401"),
        ];
        for (var, value) in cases {
            let err = parse(&[
                (var, value),
                (
                    "MESHDROP_JWT_SECRET",
                    if *var == "MESHDROP_JWT_SECRET" {
                        value
                    } else {
                        SECRET
                    },
                ),
            ])
            .err()
            .unwrap_or_else(|| panic!("{var}={value} was accepted"));
            assert_eq!(err.var, *var);
            let line = err.to_string();
            assert!(line.starts_with(var) && !line.contains('\n'), "{line}");
        }
        let err = parse(&[("MESHDROP_JWT_SECRET", "short-secret")])
            .err()
            .unwrap();
        assert!(!err.to_string().contains("short-secret"));
    }
}
