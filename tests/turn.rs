//! TURN credentials against a real coturn on 127.0.0.1 (`use-auth-secret`): the ones the hub
//! hands out in its welcome allocate a relay; expired or wrong ones are refused.
//!
//! The TURN client here is the smallest that can allocate (RFC 5766 Allocate with the
//! long-term credential mechanism of RFC 5389): enough to prove the credentials, no more.

mod common;

use common::ws::{create_room, join};
use common::{Backend, spawn_app_with};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use meshdrop::protocol::signal::ServerMessage;
use meshdrop::server::turn::turn_password;
use std::time::Duration;
use tokio::net::UdpSocket;

const MAGIC: u32 = 0x2112_A442;
const ALLOCATE: u16 = 0x0003;
const ALLOCATE_OK: u16 = 0x0103;
const ALLOCATE_ERR: u16 = 0x0113;
const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const ERROR_CODE: u16 = 0x0009;
const REALM: u16 = 0x0014;
const NONCE: u16 = 0x0015;
const XOR_RELAYED_ADDRESS: u16 = 0x0016;
const REQUESTED_TRANSPORT: u16 = 0x0019;

fn turn_env() -> (String, String) {
    let addr = std::env::var("MESHDROP_TEST_TURN").expect(
        "MESHDROP_TEST_TURN is not set: run the tests with scripts/test.sh, which starts coturn",
    );
    let secret = std::env::var("MESHDROP_TEST_TURN_SECRET").expect("MESHDROP_TEST_TURN_SECRET");
    (addr, secret)
}

struct Msg {
    kind: u16,
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Msg {
    fn attr(&self, t: u16) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.as_slice())
    }

    fn error_code(&self) -> Option<u16> {
        self.attr(ERROR_CODE)
            .map(|v| u16::from(v[2] & 0x7) * 100 + u16::from(v[3]))
    }
}

fn encode(
    kind: u16,
    tid: [u8; 12],
    attrs: &[(u16, Vec<u8>)],
    integrity_key: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in attrs {
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    let header = |len: usize| {
        let mut h = Vec::new();
        h.extend_from_slice(&kind.to_be_bytes());
        h.extend_from_slice(&(len as u16).to_be_bytes());
        h.extend_from_slice(&MAGIC.to_be_bytes());
        h.extend_from_slice(&tid);
        h
    };
    match integrity_key {
        None => [header(body.len()), body].concat(),
        Some(key) => {
            // The length covers MESSAGE-INTEGRITY itself (4 + 20 bytes) while hashing.
            let mut msg = [header(body.len() + 24), body].concat();
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
            mac.update(&msg);
            msg.extend_from_slice(&MESSAGE_INTEGRITY.to_be_bytes());
            msg.extend_from_slice(&20u16.to_be_bytes());
            msg.extend_from_slice(&mac.finalize().into_bytes());
            msg
        }
    }
}

fn decode(buf: &[u8]) -> Msg {
    assert!(buf.len() >= 20, "short STUN message");
    let kind = u16::from_be_bytes([buf[0], buf[1]]);
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let mut attrs = Vec::new();
    let mut at = 20;
    while at + 4 <= 20 + len {
        let t = u16::from_be_bytes([buf[at], buf[at + 1]]);
        let l = u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize;
        attrs.push((t, buf[at + 4..at + 4 + l].to_vec()));
        at += 4 + l.div_ceil(4) * 4;
    }
    Msg { kind, attrs }
}

async fn exchange(sock: &UdpSocket, msg: &[u8]) -> Msg {
    sock.send(msg).await.unwrap();
    let mut buf = vec![0; 2048];
    let n = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
        .await
        .expect("coturn answers within 3 s")
        .unwrap();
    decode(&buf[..n])
}

/// Tries to allocate a UDP relay with these credentials: `Ok(relay port)` or `Err(error code)`.
async fn allocate(server: &str, username: &str, password: &str) -> Result<u16, u16> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server).await.unwrap();
    let transport = (REQUESTED_TRANSPORT, vec![17, 0, 0, 0]);
    // First request without credentials: the server answers 401 with its realm and nonce.
    let challenge = exchange(
        &sock,
        &encode(ALLOCATE, rand_tid(), std::slice::from_ref(&transport), None),
    )
    .await;
    assert_eq!(challenge.kind, ALLOCATE_ERR);
    assert_eq!(challenge.error_code(), Some(401));
    let realm = challenge.attr(REALM).expect("realm").to_vec();
    let nonce = challenge.attr(NONCE).expect("nonce").to_vec();
    let key = Md5::digest([username.as_bytes(), b":", &realm, b":", password.as_bytes()].concat());
    let attrs = [
        transport,
        (USERNAME, username.as_bytes().to_vec()),
        (REALM, realm),
        (NONCE, nonce),
    ];
    let reply = exchange(&sock, &encode(ALLOCATE, rand_tid(), &attrs, Some(&key))).await;
    match reply.kind {
        ALLOCATE_OK => {
            let relayed = reply.attr(XOR_RELAYED_ADDRESS).expect("relayed address");
            Ok(u16::from_be_bytes([relayed[2], relayed[3]]) ^ (MAGIC >> 16) as u16)
        }
        _ => Err(reply.error_code().expect("an error code")),
    }
}

fn rand_tid() -> [u8; 12] {
    let mut t = [0u8; 12];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    t.copy_from_slice(&nanos.to_le_bytes()[..12]);
    t
}

#[tokio::test]
async fn minted_credentials_allocate_a_relay_and_stale_ones_are_refused() {
    let (server, secret) = turn_env();
    let turn_url = format!("turn:{server}?transport=udp");
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("MESHDROP_STUN_URLS", &format!("stun:{server}")),
            ("MESHDROP_TURN_URLS", &turn_url),
            ("MESHDROP_TURN_SECRET", &secret),
            ("MESHDROP_TURN_TTL_SECS", "600"),
        ],
    )
    .await;
    let room = create_room(&app.client, &app.base).await;
    let peer = join(&app.base, room.id, &room.ticket).await;
    let ServerMessage::Welcome {
        ice_servers, you, ..
    } = peer.welcome
    else {
        unreachable!()
    };
    assert_eq!(ice_servers.len(), 2);
    assert_eq!(ice_servers[0].urls, [format!("stun:{server}")]);
    assert!(ice_servers[0].credential.is_none());
    let turn = &ice_servers[1];
    assert_eq!(turn.urls, [turn_url]);
    let username = turn.username.clone().unwrap();
    let password = turn.credential.clone().unwrap();
    let (expiry, id) = username.split_once(':').unwrap();
    assert_eq!(id, you.0.to_string(), "credentials name the peer");
    let ttl = expiry.parse::<i64>().unwrap() - meshdrop::server::rooms::now_secs();
    assert!((590..=600).contains(&ttl), "{ttl}");

    let relay = allocate(&server, &username, &password).await;
    assert!(relay.is_ok_and(|port| port >= 49152), "{relay:?}");

    // Expired credentials, correctly signed, are refused…
    let past = format!("{}:{}", meshdrop::server::rooms::now_secs() - 10, you.0);
    assert_eq!(
        allocate(&server, &past, &turn_password(secret.as_bytes(), &past)).await,
        Err(401)
    );
    // …and so is a credential signed with another secret.
    assert_eq!(
        allocate(
            &server,
            &username,
            &turn_password(b"not the secret", &username)
        )
        .await,
        Err(401)
    );
}
