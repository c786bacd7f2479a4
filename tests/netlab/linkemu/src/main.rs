//! `linkemu`: holds or drops the packets an NFQUEUE rule diverts to it, per a [`LinkSetting`].
//!
//! ```text
//! linkemu --queue 1 --delay-ms 20 [--jitter-ms 2] [--loss 0.01] [--seed 7] [--stats FILE]
//! ```
//!
//! Run it in the namespace whose iptables rule names the queue. Every second, and on SIGTERM
//! or SIGINT, it writes its counters as one JSON object to `--stats`; on exit it releases
//! what it still holds.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use meshdrop_linkemu::nfqueue::{NF_DROP, Queue};
use meshdrop_linkemu::{Arrival, DelayLine, LinkSetting};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

struct Args {
    queue: u16,
    setting: LinkSetting,
    seed: u64,
    stats: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut queue = None;
    let mut setting = LinkSetting {
        delay_us: 0,
        jitter_us: 0,
        loss: 0.0,
    };
    let mut seed = 1;
    let mut stats = None;
    let ms = |v: &str| -> Result<u64, String> {
        let f: f64 = v.parse().map_err(|_| format!("not a number of ms: {v}"))?;
        if !(0.0..=10_000.0).contains(&f) {
            return Err(format!("{v} ms is outside 0..=10000"));
        }
        Ok((f * 1000.0).round() as u64)
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--queue" => queue = Some(value.parse().map_err(|_| format!("bad queue {value}"))?),
            "--delay-ms" => setting.delay_us = ms(&value)?,
            "--jitter-ms" => setting.jitter_us = ms(&value)?,
            "--loss" => {
                let p: f64 = value.parse().map_err(|_| format!("bad loss {value}"))?;
                if !(0.0..1.0).contains(&p) {
                    return Err(format!("loss {p} is outside [0, 1)"));
                }
                setting.loss = p;
            }
            "--seed" => seed = value.parse().map_err(|_| format!("bad seed {value}"))?,
            "--stats" => stats = Some(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Args {
        queue: queue.ok_or("--queue is required")?,
        setting,
        seed,
        stats,
    })
}

fn write_stats(path: &Option<String>, line: &DelayLine, cpu_start: Duration) {
    let Some(path) = path else { return };
    let s = &line.stats;
    let late_mean = s.late_us_sum.checked_div(s.released).unwrap_or(0);
    let json = format!(
        "{{\"packets\":{},\"dropped\":{},\"released\":{},\"held\":{},\"late_us_mean\":{},\"late_us_max\":{},\"cpu_ms\":{}}}\n",
        s.packets,
        s.dropped,
        s.released,
        line.held(),
        late_mean,
        s.late_us_max,
        (cpu_time() - cpu_start).as_millis(),
    );
    // Write then rename, so a reader never sees half a line.
    let tmp = format!("{path}.tmp");
    if std::fs::write(&tmp, json).is_ok() {
        let _ = std::fs::rename(tmp, path);
    }
}

/// CPU time this process has used (user + system).
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Waits until the queue has packets or `timeout` passes (microsecond precision, which
/// poll(2)'s milliseconds would not give).
fn wait_readable(q: &Queue, timeout: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: q.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one pollfd and a timespec, both alive across the call.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

fn run(args: Args) -> io::Result<()> {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let mut q = Queue::bind(args.queue, 1 << 16)?;
    let mut line = DelayLine::new(args.setting, args.seed);
    let epoch = Instant::now();
    let cpu_start = cpu_time();
    let now_us = || epoch.elapsed().as_micros() as u64;
    let mut next_stats = Duration::from_secs(1);
    eprintln!("linkemu: queue {} {:?}", args.queue, args.setting);
    while !STOP.load(Ordering::Relaxed) {
        let now = now_us();
        let until_due = line.next_due().map_or(Duration::from_millis(200), |due| {
            Duration::from_micros(due.saturating_sub(now))
        });
        wait_readable(&q, until_due.min(Duration::from_millis(200)))?;
        let mut drops = Vec::new();
        q.drain(|id| {
            if line.arrive(id, now_us()) == Arrival::Drop {
                drops.push(id);
            }
        })?;
        for id in drops {
            q.verdict(id, NF_DROP)?;
        }
        if let Some(last) = line.release(now_us()) {
            q.accept_through(last)?;
        }
        if epoch.elapsed() >= next_stats {
            write_stats(&args.stats, &line, cpu_start);
            next_stats += Duration::from_secs(1);
        }
    }
    if let Some(last) = line.release(u64::MAX) {
        q.accept_through(last)?;
    }
    write_stats(&args.stats, &line, cpu_start);
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("linkemu: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("linkemu: {e}");
        std::process::exit(1);
    }
}
