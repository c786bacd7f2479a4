//! Signaling load: meshdrop's hub against the PeerJS server (npm `peer`), same client, same
//! machine, loopback only, every loop bounded in count and time.
//!
//! - throughput: P pairs relay ICE-candidate-sized signals to each other as fast as the server
//!   carries them (at most W unanswered per sender), for a fixed time: signals/s.
//! - latency: the same pairs at a moderate, fixed rate: p50/p99 one-way relay latency.
//! - idle sockets: sockets opened by worker processes (this binary, re-run as `worker`) and
//!   held; server memory per socket from /proc. A process may hold 20,000 files here, so
//!   50,000 meshdrop sockets are spread over three instances sharing Redis and Postgres.
//!
//! Needs MESHDROP_TEST_POSTGRES, MESHDROP_TEST_REDIS and PEERJS_DIR (a directory with
//! node_modules/peer), as `scripts/test.sh` provides. `cargo bench --bench signal_load --features server`
//! (add `-- quick` for smaller numbers).

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "load-test-secret-load-test-secret!!";

// ---- servers ----------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Meshdrop,
    PeerJs,
}

struct Server {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Drop for Server {
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

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time the process has used, in seconds (utime + stime).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum::<u64>() as f64 / 100.0
}

/// Waits until `child` listens on `port`. A server that exited (say, because another
/// process took the port in between) fails here rather than leaving the port to someone else.
fn wait_listening(child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server on {port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    if let Ok(Some(status)) = child.try_wait() {
        panic!("the server for port {port} exited ({status})");
    }
}

/// Servers run on CPU 1 and the load client on CPU 0, so each server gets exactly one core
/// (PeerJS is single-threaded; meshdrop would otherwise also take the client's core).
fn on_server_core(program: &str) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", program]);
    cmd
}

fn pin_client_to_core_0() {
    let status = Command::new("taskset")
        .args(["-p", "-c", "0", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("taskset (util-linux)");
    assert!(status.success(), "pinning the load client to CPU 0");
}

fn start_meshdrop(database: Option<&str>, redis: Option<&str>) -> Server {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = on_server_core(env!("CARGO_BIN_EXE_meshdrop"));
    cmd.env("IP", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("MESHDROP_JWT_SECRET", SECRET)
        .env("MESHDROP_DATA_DIR", data.path())
        // Policy limits off: this measures capacity, not the abuse guards.
        .env("MESHDROP_HUB_MESSAGES_PER_SEC", "1000000")
        .env("MESHDROP_HUB_MAX_SOCKETS_PER_IP", "1000000")
        .env("MESHDROP_HUB_MAX_PEERS_PER_ROOM", "100000")
        .env("MESHDROP_MAX_ROOMS_PER_IP_PER_HOUR", "1000000")
        // Errors only, to this bench's output.
        .env("RUST_LOG", "error");
    if let Some(db) = database {
        cmd.env("DATABASE_URL", db);
    }
    if let Some(r) = redis {
        cmd.env("REDIS_URL", r);
    }
    let mut child = cmd.spawn().expect("starting meshdrop");
    wait_listening(&mut child, port);
    Server {
        child,
        port,
        _data: data,
    }
}

fn start_peerjs() -> Server {
    let dir = std::env::var("PEERJS_DIR").expect("PEERJS_DIR: a directory with node_modules/peer");
    let port = free_port();
    // The library API without the CLI's per-connection console logging.
    let script = format!(
        "import {{ PeerServer }} from 'peer';\
         PeerServer({{ host: '127.0.0.1', port: {port}, path: '/', concurrent_limit: 1000000, alive_timeout: 600000 }});"
    );
    let mut child = on_server_core("node")
        .current_dir(&dir)
        .args(["--input-type=module", "-e", &script])
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the PeerJS server (node)");
    wait_listening(&mut child, port);
    Server {
        child,
        port,
        _data: tempfile::tempdir().unwrap(),
    }
}

/// Rooms with the creator's ticket, made through the HTTP API.
async fn make_rooms(port: u16, n: usize) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut out = Vec::with_capacity(n);
    let body = serde_json::json!({"title": null, "files": [{"name": "f", "size": 1, "mime": ""}]});
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let calls = chunk.iter().map(|_| {
            client
                .post(format!("http://127.0.0.1:{port}/api/rooms"))
                .json(&body)
                .send()
        });
        for r in futures_util::future::join_all(calls).await {
            let v: serde_json::Value = r.unwrap().json().await.unwrap();
            out.push((
                v["id"].as_str().unwrap().to_owned(),
                v["ticket"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// A socket to open, written as one line: the URL, then (for meshdrop) a space and the
/// offered subprotocols, which carry the room ticket as the browser sends it.
fn meshdrop_url(port: u16, room: &(String, String)) -> String {
    format!(
        "ws://127.0.0.1:{port}/api/rooms/{}/signal {}",
        room.0,
        meshdrop::protocol::signal::offered_protocols(&room.1).join(",")
    )
}

/// The handshake request for a target line of [`meshdrop_url`] or [`peerjs_url`].
fn request(target: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (url, protocols) = target.split_once(' ').unwrap_or((target, ""));
    let mut request = url.into_client_request().expect("a WebSocket URL");
    if !protocols.is_empty() {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL,
            protocols.parse().expect("a header value"),
        );
    }
    request
}

fn peerjs_url(port: u16, id: &str) -> String {
    format!("ws://127.0.0.1:{port}/peerjs?key=peerjs&id={id}&token=t{id}")
}

// ---- relay scenarios ----------------------------------------------------------------------

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connections whose first message was not the server's greeting (they were retried).
static RETRIED: AtomicU64 = AtomicU64::new(0);

/// One connected socket: its id as the server knows it. A connection that does not start
/// with the greeting is reported and retried, at most three times in all.
async fn connect(kind: Kind, url: &str) -> (Ws, String) {
    for attempt in 1..=3 {
        let (mut ws, _) = tokio_tungstenite::connect_async(request(url))
            .await
            .expect("connect");
        let first = match ws.next().await {
            Some(Ok(Message::Text(t))) => t.to_string(),
            other => {
                eprintln!("attempt {attempt}: first message {other:?} instead of the greeting");
                assert!(attempt < 3, "no greeting in three attempts");
                RETRIED.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        let id = match kind {
            Kind::Meshdrop => v["you"].as_u64().expect("welcome").to_string(),
            Kind::PeerJs => {
                assert_eq!(v["type"], "OPEN", "{first}");
                url.split("id=")
                    .nth(1)
                    .unwrap()
                    .split('&')
                    .next()
                    .unwrap()
                    .to_owned()
            }
        };
        return (ws, id);
    }
    unreachable!("the loop returns or panics")
}

fn signal(kind: Kind, to: &str, stamp: u64) -> String {
    let candidate = format!(
        "candidate:842163049 1 udp 1677729535 192.0.2.10 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag Xy12 network-cost 999 ts={stamp}"
    );
    match kind {
        Kind::Meshdrop => serde_json::json!({"type": "signal", "to": to.parse::<u64>().unwrap(),
            "payload": {"kind": "candidate", "candidate": candidate, "sdp_mid": "0", "sdp_m_line_index": 0}})
        .to_string(),
        Kind::PeerJs => serde_json::json!({"type": "CANDIDATE", "dst": to,
            "payload": {"candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}, "type": "data", "connectionId": "dc_1"}})
        .to_string(),
    }
}

fn stamp_of(text: &str) -> Option<u64> {
    let at = text.rfind("ts=")? + 3;
    let end = text[at..].find(|c: char| !c.is_ascii_digit())? + at;
    text[at..end].parse().ok()
}

/// `pairs` pairs; each sender keeps at most `window` signals unanswered, or, with
/// `rate_per_sender`, sends at that fixed rate. Returns (signals relayed, latencies ns).
async fn relay(
    kind: Kind,
    port: u16,
    pairs: usize,
    window: u64,
    rate_per_sender: Option<f64>,
    run_for: Duration,
) -> (u64, Vec<u64>) {
    let mut sockets = Vec::new();
    let rooms = match kind {
        Kind::Meshdrop => make_rooms(port, pairs).await,
        Kind::PeerJs => Vec::new(),
    };
    for i in 0..pairs {
        for side in 0..2 {
            let url = match kind {
                Kind::Meshdrop => meshdrop_url(port, &rooms[i % rooms.len()]),
                Kind::PeerJs => peerjs_url(port, &format!("p{i}s{side}")),
            };
            sockets.push(connect(kind, &url).await);
        }
    }
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let relayed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut iter = sockets.into_iter();
    while let (Some((a, a_id)), Some((b, b_id))) = (iter.next(), iter.next()) {
        // Each side sends to the other; a side's receive count paces its partner's sends.
        let received = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
        let notify = [
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        ];
        for (side, (ws, to)) in [(a, b_id.clone()), (b, a_id.clone())]
            .into_iter()
            .enumerate()
        {
            let (mut tx, mut rx) = ws.split();
            let mine = received[side].clone();
            let theirs = received[1 - side].clone();
            let wake_me = notify[side].clone();
            let wake_them = notify[1 - side].clone();
            let (stop, measuring, relayed) = (stop.clone(), measuring.clone(), relayed.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut sent = 0u64;
                let mut tick = rate_per_sender.map(|r| {
                    let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let may_send = match &tick {
                        Some(_) => true,
                        None => sent < theirs.load(Ordering::Relaxed) + window,
                    };
                    tokio::select! {
                        msg = rx.next() => {
                            let Some(Ok(Message::Text(t))) = msg else { break };
                            if let Some(stamp) = stamp_of(t.as_str()) {
                                if measuring.load(Ordering::Relaxed) {
                                    relayed.fetch_add(1, Ordering::Relaxed);
                                    latencies.push(epoch.elapsed().as_nanos() as u64 - stamp);
                                }
                                mine.fetch_add(1, Ordering::Relaxed);
                                wake_them.notify_one();
                            }
                        }
                        _ = async { match &mut tick { Some(t) => { t.tick().await; } None => std::future::pending().await } }, if tick.is_some() => {
                            let m = signal(kind, &to, epoch.elapsed().as_nanos() as u64);
                            if tx.send(Message::Text(m.into())).await.is_err() { break; }
                            sent += 1;
                        }
                        _ = async {}, if tick.is_none() && may_send => {
                            let m = signal(kind, &to, epoch.elapsed().as_nanos() as u64);
                            if tx.send(Message::Text(m.into())).await.is_err() { break; }
                            sent += 1;
                        }
                        _ = wake_me.notified(), if tick.is_none() && !may_send => {}
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                latencies
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(run_for).await;
    measuring.store(false, Ordering::Relaxed);
    let count = relayed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        if let Ok(Ok(l)) = tokio::time::timeout(Duration::from_secs(5), t).await {
            latencies.extend(l);
        }
    }
    latencies.sort_unstable();
    (count, latencies)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e6
}

// ---- idle sockets -------------------------------------------------------------------------

/// Worker mode: opens every URL listed in the file, holds the sockets (answering pings),
/// prints `held <n> failed <m>`, and exits when stdin closes.
async fn worker(urls_file: &str) {
    let urls: Vec<String> = std::fs::read_to_string(urls_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let held = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    let mut tasks = Vec::new();
    for url in urls {
        let (held, failed, gate) = (held.clone(), failed.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let opened = tokio::time::timeout(
                Duration::from_secs(30),
                tokio_tungstenite::connect_async(request(&url)),
            )
            .await;
            drop(permit);
            match opened {
                Ok(Ok((mut ws, _))) => {
                    held.fetch_add(1, Ordering::Relaxed);
                    while let Some(Ok(_)) = ws.next().await {}
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Wait until every connect finished (held or failed), bounded in time.
    let deadline = Instant::now() + Duration::from_secs(240);
    let total = tasks.len() as u64;
    while held.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < total
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "held {} failed {}",
        held.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    std::io::stdout().flush().unwrap();
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
    std::process::exit(0);
}

struct Worker {
    child: Child,
    held: u64,
    failed: u64,
    _urls: tempfile::NamedTempFile,
}

fn spawn_worker(urls: &[String]) -> Child {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for u in urls {
        writeln!(file, "{u}").unwrap();
    }
    let path = file.into_temp_path().keep().unwrap();
    Command::new(std::env::current_exe().unwrap())
        .arg("worker")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting a load worker")
}

fn wait_worker(mut child: Child) -> Worker {
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).unwrap();
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    Worker {
        child,
        held: nums.first().copied().unwrap_or(0),
        failed: nums.get(1).copied().unwrap_or(0),
        _urls: tempfile::NamedTempFile::new().unwrap(),
    }
}

/// Opens `per_server` sockets into each server at once, holds them, and returns
/// (sockets held, failures, KiB of server RSS per socket).
fn hold(servers: &[&Server], urls: Vec<Vec<String>>) -> (u64, u64, f64) {
    let before: Vec<u64> = servers.iter().map(|s| rss_kib(s.child.id())).collect();
    let children: Vec<Child> = urls.iter().map(|u| spawn_worker(u)).collect();
    let workers: Vec<Worker> = children.into_iter().map(wait_worker).collect();
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<u64> = servers.iter().map(|s| rss_kib(s.child.id())).collect();
    let held: u64 = workers.iter().map(|w| w.held).sum();
    let failed: u64 = workers.iter().map(|w| w.failed).sum();
    let grown: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .sum();
    for mut w in workers {
        drop(w.child.stdin.take());
        let _ = w.child.wait();
    }
    (held, failed, grown as f64 / held.max(1) as f64)
}

// ---- main ---------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("worker") {
        // Before the runtime starts its threads, so they inherit the mask.
        pin_client_to_core_0();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    if args.get(1).map(String::as_str) == Some("worker") {
        rt.block_on(worker(&args[2]));
        return;
    }
    let quick = args.iter().any(|a| a == "quick");
    let postgres = std::env::var("MESHDROP_TEST_POSTGRES").expect("MESHDROP_TEST_POSTGRES");
    let redis = std::env::var("MESHDROP_TEST_REDIS").expect("MESHDROP_TEST_REDIS");
    let (pairs, run_for) = (50, Duration::from_secs(if quick { 3 } else { 5 }));
    let idle_total: usize = if quick { 6_000 } else { 50_000 };

    println!(
        "signaling load, 127.0.0.1, server on CPU 1, load client on CPU 0, {pairs} pairs, {} s per measurement",
        run_for.as_secs()
    );
    let mut results = Vec::new();
    for kind in [Kind::Meshdrop, Kind::PeerJs] {
        let server = match kind {
            Kind::Meshdrop => start_meshdrop(None, None),
            Kind::PeerJs => start_peerjs(),
        };
        let cpu_before = cpu_secs(server.child.id());
        let (count, _) = rt.block_on(relay(kind, server.port, pairs, 16, None, run_for));
        // Includes connection set-up and warm-up: slightly unfavourable to both.
        let cpu_us_per_signal = (cpu_secs(server.child.id()) - cpu_before) * 1e6 / count as f64;
        let throughput = count as f64 / run_for.as_secs_f64();
        let (_, lat) = rt.block_on(relay(kind, server.port, pairs, 0, Some(10.0), run_for));
        results.push((
            throughput,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.len(),
            cpu_us_per_signal,
        ));
        drop(server);
    }

    // Idle sockets: meshdrop over three instances sharing Redis and Postgres, rooms of 10.
    let database = {
        let name = format!("meshdrop_load_{}", std::process::id());
        let admin = postgres.clone();
        rt.block_on(async {
            use sea_orm::{ConnectionTrait, Database};
            let conn = Database::connect(&admin).await.unwrap();
            conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        });
        format!("{}/{name}", postgres.rsplit_once('/').unwrap().0)
    };
    let instances: Vec<Server> = (0..3)
        .map(|_| start_meshdrop(Some(&database), Some(&redis)))
        .collect();
    let rooms = rt.block_on(make_rooms(instances[0].port, idle_total.div_ceil(10)));
    let per = idle_total.div_ceil(3);
    let urls: Vec<Vec<String>> = (0..3)
        .map(|i| {
            (i * per..((i + 1) * per).min(idle_total))
                .map(|k| meshdrop_url(instances[i].port, &rooms[k / 10]))
                .collect()
        })
        .collect();
    let refs: Vec<&Server> = instances.iter().collect();
    let (m_held, m_failed, m_kib) = hold(&refs, urls);
    drop(instances);

    let peerjs = start_peerjs();
    let urls = vec![
        (0..per)
            .map(|k| peerjs_url(peerjs.port, &format!("idle{k}")))
            .collect(),
    ];
    let (p_held, p_failed, p_kib) = hold(&[&peerjs], urls);
    drop(peerjs);

    let (m, p) = (results[0], results[1]);
    println!("| measurement | meshdrop | PeerJS 1.0.2 | meshdrop / PeerJS |");
    println!("|---|---|---|---|");
    println!(
        "| relay throughput (signals/s, {pairs} pairs, window 16) | {:.0} | {:.0} | **{:.2}×** |",
        m.0,
        p.0,
        m.0 / p.0
    );
    println!(
        "| server CPU per relayed signal (µs) | {:.2} | {:.2} | {:.2}× |",
        m.4,
        p.4,
        m.4 / p.4
    );
    println!(
        "| relay latency p50 at {} signals/s (ms) | {:.2} | {:.2} | {:.2}× |",
        pairs * 2 * 10,
        m.1,
        p.1,
        m.1 / p.1
    );
    println!(
        "| relay latency p99 at {} signals/s (ms) | **{:.2}** | {:.2} | {:.2}× |",
        pairs * 2 * 10,
        m.2,
        p.2,
        m.2 / p.2
    );
    println!(
        "| idle sockets held | **{m_held}** (3 instances + Redis, {m_failed} failed) | {p_held} (1 process, {p_failed} failed) | |"
    );
    println!(
        "| server memory per idle socket (KiB) | {m_kib:.1} | {p_kib:.1} | {:.2}× |",
        m_kib / p_kib
    );
    println!(
        "connections retried because the first message was not the greeting: {}",
        RETRIED.load(Ordering::Relaxed)
    );
    assert_eq!(m_failed, 0, "meshdrop refused idle sockets");
    assert!(m.3 > 0 && p.3 > 0, "latency samples were collected");
}
