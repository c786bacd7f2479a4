//! ICE servers for the welcome message, with short-lived TURN credentials.
//!
//! coturn's `use-auth-secret` mode (the "TURN REST API"): the username is
//! `<expiry unix time>:<peer id>` and the password is base64(HMAC-SHA1(secret, username)).
//! coturn recomputes it from the shared secret, so nothing is stored and a leaked
//! credential dies at its expiry.

use crate::protocol::PeerId;
use crate::protocol::signal::IceServer;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};

#[derive(Clone, Default)]
pub struct IceConfig {
    /// `stun:` URLs, handed out as they are.
    pub stun_urls: Vec<String>,
    /// `turn:`/`turns:` URLs sharing one secret (several regions or transports).
    pub turn_urls: Vec<String>,
    /// coturn's `static-auth-secret`; without it TURN URLs are not handed out.
    pub turn_secret: Option<SecretString>,
    pub turn_ttl_secs: i64,
}

impl std::fmt::Debug for IceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceConfig")
            .field("stun_urls", &self.stun_urls)
            .field("turn_urls", &self.turn_urls)
            .field(
                "turn_secret",
                &self.turn_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("turn_ttl_secs", &self.turn_ttl_secs)
            .finish()
    }
}

/// The password coturn expects for `username` under `secret`.
pub fn turn_password(secret: &[u8], username: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl IceConfig {
    /// How long the TURN credentials of `servers_for(_, now, not_after)` stay valid, in
    /// seconds (`None` without TURN).
    pub fn turn_valid_secs(&self, now: i64, not_after: i64) -> Option<i64> {
        (self.turn_secret.is_some() && !self.turn_urls.is_empty())
            .then(|| (now + self.turn_ttl_secs).min(not_after.max(now + 60)) - now)
    }

    /// The list for one peer, with TURN credentials valid until `now + ttl`
    /// (never past `not_after`, the ticket's own expiry).
    pub fn servers_for(&self, peer: PeerId, now: i64, not_after: i64) -> Vec<IceServer> {
        let mut out = Vec::new();
        if !self.stun_urls.is_empty() {
            out.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let (Some(secret), false) = (&self.turn_secret, self.turn_urls.is_empty()) {
            let expiry = (now + self.turn_ttl_secs).min(not_after.max(now + 60));
            let username = format!("{expiry}:{}", peer.0);
            let credential = turn_password(secret.expose_secret().as_bytes(), &username);
            out.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_the_turn_rest_api_reference() {
        // HMAC-SHA1("secret", "1700000000:42"), computed independently with
        // `printf %s 1700000000:42 | openssl dgst -sha1 -hmac secret -binary | base64`.
        assert_eq!(
            turn_password(b"secret", "1700000000:42"),
            "ZzfPuPkrzUOsnm5YISnTiKDnXWo="
        );
    }

    #[test]
    fn servers_carry_expiring_credentials_and_no_turn_without_a_secret() {
        let mut cfg = IceConfig {
            stun_urls: vec!["stun:127.0.0.1:3478".into()],
            turn_urls: vec![
                "turn:127.0.0.1:3478?transport=udp".into(),
                "turn:127.0.0.1:3478?transport=tcp".into(),
            ],
            turn_secret: None,
            turn_ttl_secs: 3600,
        };
        assert_eq!(cfg.servers_for(PeerId(5), 1000, 100_000).len(), 1);
        cfg.turn_secret = Some("s3cret".to_string().into());
        let servers = cfg.servers_for(PeerId(5), 1000, 100_000);
        assert_eq!(servers.len(), 2);
        let turn = &servers[1];
        assert_eq!(turn.urls.len(), 2);
        assert_eq!(turn.username.as_deref(), Some("4600:5"));
        assert_eq!(
            turn.credential.as_deref(),
            Some(turn_password(b"s3cret", "4600:5").as_str())
        );
        // Never valid beyond the ticket.
        let servers = cfg.servers_for(PeerId(5), 1000, 2000);
        assert_eq!(servers[1].username.as_deref(), Some("2000:5"));
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }
}
