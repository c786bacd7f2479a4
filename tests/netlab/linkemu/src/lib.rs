//! The network lab's link emulator. This kernel has no netem, so one-way delay, jitter and
//! loss happen in user space: an NFQUEUE rule hands each packet's id to this process, which
//! drops it at the loss rate or holds it and accepts it once its delay has passed. The packet
//! itself stays in the kernel; only ids and times cross.
//!
//! [`DelayLine`] is the whole policy, free of I/O and clocks (times are microseconds passed
//! in), so its statistics are unit-tested; `nfqueue` and `main` are the thin shell.

pub mod nfqueue;

use std::collections::VecDeque;

/// What one direction of a link does to the packets that cross it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkSetting {
    /// Added one-way delay, in microseconds.
    pub delay_us: u64,
    /// Each packet's delay is drawn uniformly from `delay ± jitter` (never below zero).
    pub jitter_us: u64,
    /// Probability that a packet is dropped, independently of the others.
    pub loss: f64,
}

/// The verdict on one arriving packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Drop it now.
    Drop,
    /// Hold it: [`DelayLine::release`] returns it when due.
    Held,
}

/// Packets waiting out their delay, in arrival order.
///
/// Jitter never reorders: a packet is released no earlier than the one before it, as on a
/// real path where packets of one flow share a queue. Reordering would make a transport's
/// loss detection fire for packets that were never lost, which is a different experiment.
#[derive(Debug)]
pub struct DelayLine {
    setting: LinkSetting,
    rng: u64,
    held: VecDeque<(u32, u64)>,
    last_due: u64,
    /// Packets seen, dropped and released so far.
    pub stats: LineStats,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LineStats {
    pub packets: u64,
    pub dropped: u64,
    pub released: u64,
    /// Sum of (release time - due time), to report how late the shell releases on average.
    pub late_us_sum: u64,
    pub late_us_max: u64,
}

impl DelayLine {
    /// `seed` makes the loss and jitter draws repeatable.
    pub fn new(setting: LinkSetting, seed: u64) -> Self {
        Self {
            setting,
            // splitmix64 of the seed: xorshift64* must not start at zero, and small seeds
            // (peer indices) would otherwise give correlated first draws.
            rng: {
                let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) | 1
            },
            held: VecDeque::new(),
            last_due: 0,
            stats: LineStats::default(),
        }
    }

    fn next_unit(&mut self) -> f64 {
        // xorshift64*: plenty for loss draws, and dependency-free.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A packet with kernel id `id` arrived at `now_us`.
    pub fn arrive(&mut self, id: u32, now_us: u64) -> Arrival {
        self.stats.packets += 1;
        if self.setting.loss > 0.0 && self.next_unit() < self.setting.loss {
            self.stats.dropped += 1;
            return Arrival::Drop;
        }
        let LinkSetting {
            delay_us,
            jitter_us,
            ..
        } = self.setting;
        let delay = if jitter_us == 0 {
            delay_us
        } else {
            let offset = (self.next_unit() * (2 * jitter_us + 1) as f64) as u64;
            (delay_us + offset).saturating_sub(jitter_us)
        };
        let due = (now_us + delay).max(self.last_due);
        self.last_due = due;
        self.held.push_back((id, due));
        Arrival::Held
    }

    /// When the next held packet is due, if any.
    pub fn next_due(&self) -> Option<u64> {
        self.held.front().map(|&(_, due)| due)
    }

    /// Takes every packet due by `now_us`; returns the id of the last one. All earlier held
    /// ids are due too (release is in order), so one batch verdict up to it accepts them all.
    pub fn release(&mut self, now_us: u64) -> Option<u32> {
        let mut last = None;
        while let Some(&(id, due)) = self.held.front() {
            if due > now_us {
                break;
            }
            self.held.pop_front();
            let late = now_us - due;
            self.stats.released += 1;
            self.stats.late_us_sum = self.stats.late_us_sum.saturating_add(late);
            self.stats.late_us_max = self.stats.late_us_max.max(late);
            last = Some(id);
        }
        last
    }

    /// Packets held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(delay_ms: u64, jitter_ms: u64, loss: f64) -> DelayLine {
        DelayLine::new(
            LinkSetting {
                delay_us: delay_ms * 1000,
                jitter_us: jitter_ms * 1000,
                loss,
            },
            7,
        )
    }

    #[test]
    fn a_packet_is_released_exactly_when_its_delay_has_passed() {
        let mut l = line(20, 0, 0.0);
        assert_eq!(l.arrive(1, 1_000), Arrival::Held);
        assert_eq!(l.arrive(2, 1_500), Arrival::Held);
        assert_eq!(l.next_due(), Some(21_000));
        assert_eq!(l.release(20_999), None);
        assert_eq!(l.release(21_000), Some(1));
        assert_eq!(l.release(21_600), Some(2));
        assert_eq!(l.held(), 0);
        assert_eq!(l.stats.late_us_sum, 100);
        assert_eq!(l.next_due(), None);
    }

    #[test]
    fn one_release_covers_every_packet_due_so_the_shell_sends_one_verdict() {
        let mut l = line(10, 0, 0.0);
        for id in 1..=5 {
            l.arrive(id, u64::from(id) * 100);
        }
        assert_eq!(l.release(10_350), Some(3));
        assert_eq!(l.held(), 2);
        assert_eq!(l.release(1_000_000), Some(5));
    }

    #[test]
    fn loss_matches_the_setting_within_sampling_error() {
        let mut l = line(0, 0, 0.05);
        let n = 200_000;
        for id in 0..n {
            l.arrive(id, 0);
        }
        let rate = l.stats.dropped as f64 / f64::from(n);
        // Binomial standard deviation at n = 200k is 0.00049: 4 sigma either side.
        assert!((rate - 0.05).abs() < 0.002, "{rate}");
        assert_eq!(l.stats.dropped as usize + l.held(), n as usize);
    }

    #[test]
    fn jitter_is_uniform_within_its_bounds() {
        let mut l = line(20, 5, 0.0);
        let mut delays = Vec::new();
        for id in 0..10_000u32 {
            // 30 ms apart, wider than the jitter's spread: no packet is held back for order.
            let now = u64::from(id) * 30_000;
            l.arrive(id, now);
            let delay = l.next_due().unwrap() - now;
            assert!((15_000..=25_000).contains(&delay), "{delay}");
            delays.push(delay);
            l.release(now + delay);
        }
        let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
        // Uniform on ±5 ms: standard deviation 2.9 ms, so the mean of 10k is within ±0.12 ms
        // at 4 sigma.
        assert!((mean - 20_000.0).abs() < 120.0, "{mean}");
        assert!(delays.iter().any(|&d| d < 15_500) && delays.iter().any(|&d| d > 24_500));
    }

    #[test]
    fn jitter_never_reorders_packets() {
        let mut l = line(20, 5, 0.0);
        for id in 0..10_000u32 {
            // 0.2 ms apart: draws often land before the previous packet's due time.
            l.arrive(id, u64::from(id) * 200);
        }
        let mut last_due = 0;
        let mut expected = 0;
        while let Some(due) = l.next_due() {
            assert!(due >= last_due);
            last_due = due;
            assert_eq!(l.release(due).map(|id| id >= expected), Some(true));
            expected += 1;
        }
        assert_eq!(l.stats.released, 10_000);
    }

    #[test]
    fn no_loss_and_no_delay_passes_everything_at_once() {
        let mut l = line(0, 0, 0.0);
        assert_eq!(l.arrive(9, 50), Arrival::Held);
        assert_eq!(l.release(50), Some(9));
        assert_eq!(l.stats.dropped, 0);
    }
}
