//! Signaling messages between a browser and the hub, typed by direction.
//!
//! Text frames carrying JSON: signaling is small and rare next to piece data, and JSON keeps
//! it readable in the browser's network panel. Every message is bounded before it is parsed
//! ([`MAX_SIGNAL_MESSAGE_BYTES`]) and every string in it after ([`ClientMessage::parse`]).

use super::PeerId;
use super::limits::{
    MAX_CANDIDATE_BYTES, MAX_ICE_SERVERS, MAX_SDP_BYTES, MAX_SIGNAL_MESSAGE_BYTES, MAX_TICKET_BYTES,
};
use serde::{Deserialize, Serialize};

/// WebRTC session negotiation, relayed verbatim between two peers of one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignalPayload {
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    /// A trickled ICE candidate; `candidate` empty means end of candidates.
    Candidate {
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_m_line_index: Option<u16>,
    },
}

/// One STUN or TURN server, in the shape `RTCIceServer` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// A TURN server (`turn:` or `turns:` URL): a path between peers that cannot reach each
    /// other directly. STUN only helps them find a direct one.
    pub fn is_relay(&self) -> bool {
        self.urls.iter().any(|u| {
            let scheme = u.trim_start().split(':').next().unwrap_or("");
            scheme.eq_ignore_ascii_case("turn") || scheme.eq_ignore_ascii_case("turns")
        })
    }
}

/// Browser → hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Relay to one peer of the same room. The hub stamps the sender; nobody can speak for
    /// someone else.
    Signal { to: PeerId, payload: SignalPayload },
    /// Leaving on purpose (the socket closes next).
    Leave,
    /// Any message counts as a sign of life; this one carries nothing else.
    KeepAlive,
    /// A fresh ticket for the same room (from `/join`), sent before the socket's own expires:
    /// the socket then lives until the new one expires, keeping its peer id and connections.
    Renew { ticket: String },
}

/// Hub → browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every socket.
    Welcome {
        /// The id the hub assigned to this socket.
        you: PeerId,
        /// Everyone else in the room right now.
        members: Vec<PeerId>,
        ice_servers: Vec<IceServer>,
        /// Send something at least this often or be dropped after three intervals.
        heartbeat_ms: u64,
        /// Send a fresh ticket (`Renew`) within this many milliseconds: the socket closes
        /// when its ticket expires, and the TURN credentials above expire no later. 0 (from
        /// a hub without renewals, during a rolling deploy): do not renew.
        #[serde(default)]
        renew_in_ms: u64,
    },
    /// The socket's ticket was renewed: fresh TURN credentials for new connections, and when
    /// to renew again.
    Renewed {
        ice_servers: Vec<IceServer>,
        renew_in_ms: u64,
    },
    PeerJoined {
        peer: PeerId,
    },
    PeerLeft {
        peer: PeerId,
    },
    Signal {
        from: PeerId,
        payload: SignalPayload,
    },
    /// A request was refused but the socket stays open (e.g. the target peer just left).
    Error {
        message: String,
    },
    /// The room's owner closed it: stop sharing. The socket closes next (code 4005).
    RoomClosed {
        reason: String,
    },
}

/// Close codes the hub uses, with the reason sent alongside.
pub mod close {
    /// The frame was larger than [`super::MAX_SIGNAL_MESSAGE_BYTES`] (RFC 6455 1009).
    pub const TOO_BIG: u16 = 1009;
    /// The message was not valid JSON of the expected shape, or broke a field limit.
    pub const INVALID: u16 = 4000;
    /// More messages per second than the hub allows.
    pub const RATE_LIMITED: u16 = 4001;
    /// The room already holds the most peers it may.
    pub const ROOM_FULL: u16 = 4002;
    /// Too many sockets from this address.
    pub const TOO_MANY_CONNECTIONS: u16 = 4003;
    /// Nothing was received for three heartbeat intervals.
    pub const HEARTBEAT_TIMEOUT: u16 = 4004;
    /// The room was closed by its owner or expired.
    pub const ROOM_CLOSED: u16 = 4005;
    /// The hub could not keep up with this socket (its outgoing queue filled).
    pub const TOO_SLOW: u16 = 4006;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("message is {0} bytes, more than {MAX_SIGNAL_MESSAGE_BYTES}")]
    TooBig(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{field} is {len} bytes, more than {max}")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

impl SignalError {
    pub fn close_code(&self) -> u16 {
        match self {
            SignalError::TooBig(_) => close::TOO_BIG,
            _ => close::INVALID,
        }
    }
}

fn bounded(field: &'static str, s: &str, max: usize) -> Result<(), SignalError> {
    if s.len() > max {
        return Err(SignalError::FieldTooLong {
            field,
            len: s.len(),
            max,
        });
    }
    Ok(())
}

impl SignalPayload {
    pub fn validate(&self) -> Result<(), SignalError> {
        match self {
            SignalPayload::Offer { sdp } | SignalPayload::Answer { sdp } => {
                bounded("sdp", sdp, MAX_SDP_BYTES)
            }
            SignalPayload::Candidate {
                candidate, sdp_mid, ..
            } => {
                bounded("candidate", candidate, MAX_CANDIDATE_BYTES)?;
                bounded("sdp_mid", sdp_mid.as_deref().unwrap_or(""), 64)
            }
        }
    }
}

impl ClientMessage {
    /// Size check, then JSON, then field limits.
    pub fn parse(text: &str) -> Result<Self, SignalError> {
        if text.len() > MAX_SIGNAL_MESSAGE_BYTES {
            return Err(SignalError::TooBig(text.len()));
        }
        let msg: ClientMessage =
            serde_json::from_str(text).map_err(|e| SignalError::Malformed(e.to_string()))?;
        match &msg {
            ClientMessage::Signal { payload, .. } => payload.validate()?,
            ClientMessage::Renew { ticket } => bounded("ticket", ticket, MAX_TICKET_BYTES)?,
            _ => {}
        }
        Ok(msg)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }

    /// What the browser does with a hub message: the same bounds apply in both directions.
    pub fn parse(text: &str) -> Result<Self, SignalError> {
        if text.len() > MAX_SIGNAL_MESSAGE_BYTES {
            return Err(SignalError::TooBig(text.len()));
        }
        let msg: ServerMessage =
            serde_json::from_str(text).map_err(|e| SignalError::Malformed(e.to_string()))?;
        match &msg {
            ServerMessage::Signal { payload, .. } => payload.validate()?,
            ServerMessage::Welcome { ice_servers, .. }
            | ServerMessage::Renewed { ice_servers, .. }
                if ice_servers.len() > MAX_ICE_SERVERS =>
            {
                return Err(SignalError::Malformed("too many ICE servers".into()));
            }
            _ => {}
        }
        Ok(msg)
    }
}

/// The WebSocket subprotocol the hub speaks; the server selects it in its handshake.
pub const SUBPROTOCOL: &str = "meshdrop.v1";

/// The ticket travels as a second offered subprotocol, `meshdrop.ticket.<JWT>` (a JWT is
/// base64url and dots, valid in that header), never in the URL, where proxies and access
/// logs would keep it. The server only ever answers with [`SUBPROTOCOL`].
pub const TICKET_PROTOCOL_PREFIX: &str = "meshdrop.ticket.";

/// The `Sec-WebSocket-Protocol` values a client offers to join with `ticket`.
pub fn offered_protocols(ticket: &str) -> [String; 2] {
    [
        SUBPROTOCOL.to_owned(),
        format!("{TICKET_PROTOCOL_PREFIX}{ticket}"),
    ]
}

/// The ticket among a handshake's `Sec-WebSocket-Protocol` headers (comma-separated lists,
/// possibly several headers), or `None` when no value carries one.
pub fn ticket_from_protocols<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix(TICKET_PROTOCOL_PREFIX))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_rides_in_the_offered_subprotocols() {
        let offered = offered_protocols("aaa.bbb.ccc");
        assert_eq!(offered[0], SUBPROTOCOL);
        let header = offered.join(", ");
        assert_eq!(
            ticket_from_protocols([header.as_str()]),
            Some("aaa.bbb.ccc")
        );
        // Split over two headers, in either order.
        assert_eq!(
            ticket_from_protocols(["meshdrop.ticket.t1", "meshdrop.v1"]),
            Some("t1")
        );
        assert_eq!(ticket_from_protocols(["meshdrop.v1"]), None);
        assert_eq!(
            ticket_from_protocols(["meshdrop.v1, meshdrop.ticket."]),
            None
        );
        assert_eq!(ticket_from_protocols(Vec::<&str>::new()), None);
    }

    #[test]
    fn only_turn_urls_make_a_relay() {
        let server = |urls: &[&str]| IceServer {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            username: None,
            credential: None,
        };
        assert!(!server(&["stun:stun.example.org:3478"]).is_relay());
        assert!(!server(&[]).is_relay());
        assert!(server(&["stun:a:3478", "turn:a:3478?transport=udp"]).is_relay());
        assert!(server(&["TURNS:a:5349"]).is_relay());
        assert!(!server(&["stuns:turn.example.org"]).is_relay());
    }

    #[test]
    fn client_messages_round_trip_in_a_stable_shape() {
        let msg = ClientMessage::Signal {
            to: PeerId(7),
            payload: SignalPayload::Candidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            },
        };
        let json = msg.to_json();
        assert_eq!(
            json,
            r#"{"type":"signal","to":7,"payload":{"kind":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdp_mid":"0","sdp_m_line_index":0}}"#
        );
        assert_eq!(ClientMessage::parse(&json).unwrap(), msg);
        assert_eq!(
            ClientMessage::parse(r#"{"type":"keep_alive"}"#).unwrap(),
            ClientMessage::KeepAlive
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"renew","ticket":"a.b.c"}"#).unwrap(),
            ClientMessage::Renew {
                ticket: "a.b.c".into()
            }
        );
    }

    #[test]
    fn server_messages_round_trip() {
        let msgs = [
            ServerMessage::Welcome {
                you: PeerId(1),
                members: vec![PeerId(2), PeerId(3)],
                ice_servers: vec![IceServer {
                    urls: vec!["turn:127.0.0.1:3478".into()],
                    username: Some("1700000000:1".into()),
                    credential: Some("c2VjcmV0".into()),
                }],
                heartbeat_ms: 10_000,
                renew_in_ms: 2_700_000,
            },
            ServerMessage::Renewed {
                ice_servers: vec![],
                renew_in_ms: 60_000,
            },
            ServerMessage::PeerJoined { peer: PeerId(4) },
            ServerMessage::PeerLeft { peer: PeerId(4) },
            ServerMessage::Signal {
                from: PeerId(2),
                payload: SignalPayload::Offer { sdp: "v=0".into() },
            },
            ServerMessage::Error {
                message: "no such peer".into(),
            },
        ];
        for msg in msgs {
            assert_eq!(ServerMessage::parse(&msg.to_json()).unwrap(), msg);
        }
    }

    #[test]
    fn oversized_and_malformed_messages_are_refused() {
        let big = format!(
            r#"{{"type":"signal","to":1,"payload":{{"kind":"offer","sdp":"{}"}}}}"#,
            "a".repeat(MAX_SIGNAL_MESSAGE_BYTES)
        );
        assert_eq!(
            ClientMessage::parse(&big).unwrap_err().close_code(),
            close::TOO_BIG
        );
        let long_sdp = format!(
            r#"{{"type":"signal","to":1,"payload":{{"kind":"offer","sdp":"{}"}}}}"#,
            "a".repeat(MAX_SDP_BYTES + 1)
        );
        assert!(matches!(
            ClientMessage::parse(&long_sdp),
            Err(SignalError::FieldTooLong { field: "sdp", .. })
        ));
        let long_ticket = format!(
            r#"{{"type":"renew","ticket":"{}"}}"#,
            "a".repeat(MAX_TICKET_BYTES + 1)
        );
        assert!(matches!(
            ClientMessage::parse(&long_ticket),
            Err(SignalError::FieldTooLong {
                field: "ticket",
                ..
            })
        ));
        for bad in [
            "",
            "null",
            "{}",
            r#"{"type":"signal"}"#,
            r#"{"type":"signal","to":-1,"payload":{"kind":"offer","sdp":""}}"#,
            r#"{"type":"welcome","you":1}"#,
            r#"{"type":"keep_alive""#,
        ] {
            let err = ClientMessage::parse(bad).unwrap_err();
            assert_eq!(err.close_code(), close::INVALID, "{bad}");
        }
    }
}
