//! Room tickets: short-lived HS256 JWTs that let their holder join one room's swarm.

use super::config::JwtSecret;
use crate::protocol::RoomId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// The room this ticket opens.
    pub room: RoomId,
    /// True for the room's creator (the first seeder).
    #[serde(default)]
    pub creator: bool,
    pub iat: i64,
    pub exp: i64,
    /// Random id: no two tickets are alike, so a finished download counts once per ticket.
    #[serde(default)]
    pub jti: String,
}

impl TicketClaims {
    /// A fresh random ticket id (128 bits, hex).
    pub fn new_id() -> String {
        format!("{:032x}", rand::random::<u128>())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    #[error("the ticket has expired")]
    Expired,
    #[error("the ticket is not valid")]
    Invalid,
}

pub struct Tickets {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Tickets {
    pub fn new(secret: &JwtSecret) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
        }
    }

    pub fn issue(&self, claims: &TicketClaims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// Checks signature, algorithm and expiry (no leeway: tickets are short-lived by design).
    pub fn verify(&self, token: &str) -> Result<TicketClaims, TicketError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        jsonwebtoken::decode::<TicketClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TicketError::Expired,
                _ => TicketError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn issues_and_verifies() {
        let tickets = Tickets::new(&JwtSecret::new(vec![1; 32]));
        let claims = TicketClaims {
            room: RoomId::from_bytes([3; 16]),
            creator: true,
            iat: now(),
            exp: now() + 60,
            jti: TicketClaims::new_id(),
        };
        let token = tickets.issue(&claims).unwrap();
        assert_eq!(tickets.verify(&token), Ok(claims.clone()));

        let expired = TicketClaims {
            exp: now() - 1,
            jti: TicketClaims::new_id(),
            ..claims.clone()
        };
        assert_eq!(
            tickets.verify(&tickets.issue(&expired).unwrap()),
            Err(TicketError::Expired)
        );

        let other = Tickets::new(&JwtSecret::new(vec![2; 32]));
        assert_eq!(other.verify(&token), Err(TicketError::Invalid));
        assert_eq!(tickets.verify("not.a.jwt"), Err(TicketError::Invalid));
        // alg=none and tampered payloads are refused.
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[2] = "";
        assert_eq!(tickets.verify(&parts.join(".")), Err(TicketError::Invalid));
    }
}
