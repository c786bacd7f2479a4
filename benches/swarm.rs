//! Swarm benchmark: 1 seeder and N leechers with equal upload caps, simulated.
//! Prints, per N, the last peer's completion time divided by the theoretical lower bound
//! T = max(F/u_seed, N·F/(u_seed + Σu_i)), and connections per peer.
//!
//! `cargo bench --bench swarm --features sim` (add `-- quick` for N = 10, 100 only).
//!
//! Every copy of a piece needs a few network hops to reach everyone (HAVE, REQUEST, PIECE,
//! per hop), so the last finisher trails the bound by a propagation delay D that depends
//! on latency and piece size, not on F: ratio ≈ 1 + D/T. The main table uses a 32 MiB file
//! (T ≈ 34 s); the second shows the same swarm with an 8 MiB file, where D weighs 4× more.

use meshdrop::swarm::sim::{SimConfig, lower_bound_ms, run, scenario};
use std::time::Instant;

fn row(n: usize, cfg: &SimConfig) {
    let file = cfg.file_size;
    let started = Instant::now();
    let report = run(cfg);
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(report.violations, Default::default());
    let bound = lower_bound_ms(cfg);
    let last = report.last_finish(cfg).expect("every leecher finishes") as f64;
    let mut times: Vec<u64> = report.finished_ms.iter().filter_map(|t| *t).collect();
    times.sort_unstable();
    let first = times[0] as f64;
    let median = times[times.len() / 2] as f64;
    let spread = report.spread_ms.expect("every piece spreads") as f64;
    let max_degree = report.degree.iter().max().unwrap();
    let mean_degree = report.degree.iter().sum::<usize>() as f64 / report.degree.len() as f64;
    let received: u64 = report.received_bytes.iter().sum();
    let overhead = received as f64 / (n as f64 * file as f64) - 1.0;
    let seeder_sent = report.sent_bytes[0] as f64 / file as f64;
    println!(
        "| {n} | {} MiB | {:.2} | {:.2} | **{:.3}** | {:.3} | {:.3} | {:.3} | {seeder_sent:.2} F | {:.1}% | {max_degree} / {mean_degree:.1} | {wall:.1} |",
        file >> 20,
        last / 1000.0,
        bound / 1000.0,
        last / bound,
        median / bound,
        first / bound,
        spread / bound,
        overhead * 100.0
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    let piece = 64 * 1024;
    println!(
        "swarm simulation: 1 seeder + N leechers, piece {} KiB, upload 1 MB/s per peer (seeder too), download 4 MB/s, one-way latency 10-40 ms",
        piece >> 10
    );
    println!(
        "| N | F | last finish (s) | bound T (s) | last / T | median / T | first / T | spread / T | seeder sent | duplicate data | degree max/mean | wall (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in sizes {
        row(n, &scenario(n, 32 << 20, piece, 42 + n as u64));
    }
    let n = *sizes.last().unwrap();
    row(n, &scenario(n, 8 << 20, piece / 2, 42 + n as u64));
}
