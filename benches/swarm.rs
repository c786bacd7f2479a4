//! Swarm benchmark: 1 seeder and N leechers with equal upload caps, simulated.
//! Prints, per N, the last peer's completion time divided by the theoretical lower bound
//! T = max(F/u_seed, N·F/(u_seed + Σu_i)), and connections per peer.
//!
//! `cargo bench --bench swarm --features sim` (add `-- quick` for N = 10, 100 only).

use meshdrop::swarm::sim::{lower_bound_ms, run, scenario};
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    let file = 8 * 1024 * 1024;
    let piece = 32 * 1024;
    println!(
        "swarm simulation: F = {} MiB, piece = {} KiB, upload 1 MB/s per peer (seeder too), download 4 MB/s, latency 10-40 ms",
        file >> 20,
        piece >> 10
    );
    println!(
        "| N | last finish (s) | bound T (s) | ratio | median ratio | duplicate data | degree max/mean | wall (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &n in sizes {
        let cfg = scenario(n, file, piece, 42 + n as u64);
        let started = Instant::now();
        let report = run(&cfg);
        let wall = started.elapsed().as_secs_f64();
        let bound = lower_bound_ms(&cfg);
        let last = report.last_finish(&cfg).expect("every leecher finishes") as f64;
        let mut times: Vec<u64> = report
            .finished_ms
            .iter()
            .skip(1)
            .filter_map(|t| *t)
            .collect();
        times.sort_unstable();
        let median = times[times.len() / 2] as f64;
        let max_degree = report.degree.iter().max().unwrap();
        let mean_degree = report.degree.iter().sum::<usize>() as f64 / report.degree.len() as f64;
        assert_eq!(report.violations, Default::default());
        let received: u64 = report.received_bytes.iter().sum();
        let overhead = received as f64 / (n as f64 * file as f64) - 1.0;
        println!(
            "| {n} | {:.2} | {:.2} | {:.3} | {:.3} | {:.1}% | {max_degree} / {mean_degree:.1} | {wall:.1} |",
            last / 1000.0,
            bound / 1000.0,
            last / bound,
            median / bound,
            overhead * 100.0
        );
    }
}
