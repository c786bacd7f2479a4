//! `RoomId`: 128 random bits, written as 22 URL-safe base64 characters.
//! Parsed once at the edge (URL, request), then trusted everywhere inside.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Number of random bytes in a room id (128 bits, above the 96-bit floor).
pub const ROOM_ID_BYTES: usize = 16;
/// Length of the textual form.
pub const ROOM_ID_LEN: usize = 22;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId([u8; ROOM_ID_BYTES]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomIdError {
    #[error("a room id is {ROOM_ID_LEN} characters long, this one has {0}")]
    Length(usize),
    #[error("a room id only contains letters, digits, '-' and '_'")]
    Alphabet,
}

impl RoomId {
    /// Builds an id from random bytes; the caller supplies the randomness (server: OS RNG).
    pub fn from_bytes(bytes: [u8; ROOM_ID_BYTES]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; ROOM_ID_BYTES] {
        &self.0
    }

    pub fn parse(s: &str) -> Result<Self, RoomIdError> {
        if s.len() != ROOM_ID_LEN {
            return Err(RoomIdError::Length(s.chars().count()));
        }
        let mut out = [0u8; ROOM_ID_BYTES];
        // The canonical check rejects non-zero trailing bits, so every id has one spelling.
        match URL_SAFE_NO_PAD.decode_slice(s, &mut out) {
            Ok(ROOM_ID_BYTES) => Ok(Self(out)),
            _ => Err(RoomIdError::Alphabet),
        }
    }

    /// Path of the room page.
    pub fn path(&self) -> String {
        format!("/room/{self}")
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({self})")
    }
}

impl std::str::FromStr for RoomId {
    type Err = RoomIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for RoomId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = RoomId::from_bytes([0xfb; ROOM_ID_BYTES]);
        let text = id.to_string();
        assert_eq!(text.len(), ROOM_ID_LEN);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(RoomId::parse(&text), Ok(id));
        assert_eq!(id.path(), format!("/room/{text}"));
    }

    #[test]
    fn rejects_wrong_length() {
        assert_eq!(RoomId::parse(""), Err(RoomIdError::Length(0)));
        assert_eq!(RoomId::parse("abc"), Err(RoomIdError::Length(3)));
        assert!(matches!(
            RoomId::parse(&"A".repeat(23)),
            Err(RoomIdError::Length(23))
        ));
    }

    #[test]
    fn rejects_bad_alphabet_and_non_canonical() {
        assert_eq!(
            RoomId::parse("AAAAAAAAAAAAAAAAAAAA+A"),
            Err(RoomIdError::Alphabet)
        );
        assert_eq!(
            RoomId::parse("AAAAAAAAAAAAAAAAAAAA/A"),
            Err(RoomIdError::Alphabet)
        );
        assert_eq!(
            RoomId::parse("AAAAAAAAAAAAAAAAAAAA=="),
            Err(RoomIdError::Alphabet)
        );
        // 22 chars carry 132 bits; the last 4 must be zero in the canonical form.
        assert_eq!(
            RoomId::parse("AAAAAAAAAAAAAAAAAAAAAB"),
            Err(RoomIdError::Alphabet)
        );
        // Multi-byte characters count as characters in the message, never panic.
        assert!(RoomId::parse("ééééééééééé").is_err());
    }

    #[test]
    fn serde_validates() {
        let id = RoomId::from_bytes([7; ROOM_ID_BYTES]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<RoomId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<RoomId>("\"nope\"").is_err());
    }
}
