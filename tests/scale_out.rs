//! Two real server processes sharing one Redis and one Postgres: peers on different
//! instances see each other, exchange signals, and a killed instance's peers leave.

mod common;

use common::ws::{create_room, join, join_ticket, recv, send};
use common::{TEST_SECRET, fresh_postgres_database, redis_url};
use meshdrop::protocol::signal::{ClientMessage, ServerMessage, SignalPayload};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HEARTBEAT_MS: u64 = 500;

struct Instance {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_instance(database_url: &str) -> Instance {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_meshdrop"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IP", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url())
        .env("MESHDROP_JWT_SECRET", TEST_SECRET)
        .env("MESHDROP_DATA_DIR", data.path())
        .env("MESHDROP_HUB_HEARTBEAT_MS", HEARTBEAT_MS.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the server binary");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instance on {port} did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Instance {
        child,
        base,
        _data: data,
    }
}

#[tokio::test]
async fn peers_on_two_instances_meet_signal_and_leave_when_an_instance_dies() {
    let database = fresh_postgres_database().await;
    let a_server = start_instance(&database).await;
    let mut b_server = start_instance(&database).await;
    let client = reqwest::Client::new();

    // The room is made on A; B finds it in the shared database.
    let room = create_room(&client, &a_server.base).await;
    let b_ticket = join_ticket(&client, &b_server.base, room.id).await.ticket;

    let mut a = join(&a_server.base, room.id, &room.ticket).await;
    let mut b = join(&b_server.base, room.id, &b_ticket).await;
    assert_eq!(b.members, vec![a.id], "B's welcome lists the peer on A");
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerJoined { peer: b.id }
    );

    let offer = SignalPayload::Offer {
        sdp: "v=0 a".into(),
    };
    send(
        &mut a.ws,
        &ClientMessage::Signal {
            to: b.id,
            payload: offer.clone(),
        },
    )
    .await;
    assert_eq!(
        recv(&mut b.ws).await,
        ServerMessage::Signal {
            from: a.id,
            payload: offer
        }
    );
    let answer = SignalPayload::Answer {
        sdp: "v=0 b".into(),
    };
    send(
        &mut b.ws,
        &ClientMessage::Signal {
            to: a.id,
            payload: answer.clone(),
        },
    )
    .await;
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::Signal {
            from: b.id,
            payload: answer
        }
    );

    // A third peer joining on B is announced on A too, and leaves cleanly.
    let mut c = join(&b_server.base, room.id, &b_ticket).await;
    let mut seen = c.members.clone();
    seen.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerJoined { peer: c.id }
    );
    assert_eq!(
        recv(&mut b.ws).await,
        ServerMessage::PeerJoined { peer: c.id }
    );
    send(&mut c.ws, &ClientMessage::Leave).await;
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerLeft { peer: c.id }
    );

    // B dies without a word: its peer leaves for A within the heartbeat timeout.
    b_server.child.kill().unwrap();
    b_server.child.wait().unwrap();
    let killed = Instant::now();
    assert_eq!(
        recv(&mut a.ws).await,
        ServerMessage::PeerLeft { peer: b.id }
    );
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_millis(3 * HEARTBEAT_MS),
        "announced {took:?} after the kill"
    );
    drop(b);
}
