//! What the pages show about a running transfer. Plain data shared by both sides: the
//! browser shell (`crate::web`) fills it in, the components (`crate::app`) render it; nothing
//! here touches the browser or Dioxus.

use crate::protocol::room::human_size;

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Phase {
    #[default]
    Connecting,
    /// Re-hashing pieces a previous visit left on disk.
    Verifying {
        pieces: u32,
    },
    /// Waiting for a peer to send the piece-hash layer.
    FetchingHashes,
    Downloading,
    /// Every piece verified; the last writes are reaching the disk.
    Finishing,
    Done,
    Seeding,
    /// The room closed (revoked or expired) or the server went away after this tab had
    /// every selected file (`complete`) or while it was sharing them: nothing failed, the
    /// files stay saveable, but this tab no longer shares.
    Stopped {
        complete: bool,
        why: String,
    },
    Failed(String),
}

impl Phase {
    /// What a transfer in this phase becomes when it can share no longer (`why`): a tab
    /// with every selected file, or the sharer's, stopped; any other failed.
    pub fn ended(&self, why: String) -> Phase {
        match self {
            Phase::Done | Phase::Stopped { complete: true, .. } => Phase::Stopped {
                complete: true,
                why,
            },
            Phase::Seeding | Phase::Stopped { .. } => Phase::Stopped {
                complete: false,
                why,
            },
            _ => Phase::Failed(why),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Phase::Connecting => "Connecting to peers…".into(),
            Phase::Verifying { pieces } => {
                format!("Verifying {pieces} piece(s) saved by an earlier visit…")
            }
            Phase::FetchingHashes => "Checking the file list with a peer…".into(),
            Phase::Downloading => "Downloading".into(),
            Phase::Finishing => "Writing the last pieces to disk…".into(),
            Phase::Done => "Done: every selected file is here and verified".into(),
            Phase::Seeding => "Seeding".into(),
            Phase::Stopped {
                complete: true,
                why,
            } => format!("Done, no longer sharing: {why}"),
            Phase::Stopped {
                complete: false,
                why,
            } => format!("Stopped sharing: {why}"),
            Phase::Failed(why) => format!("Failed: {why}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    pub id: u64,
    pub down_rate: f64,
    pub up_rate: f64,
    /// Pieces the peer has.
    pub pieces: u32,
    /// Piece data we received from it.
    pub received: u64,
    pub path: PeerPath,
}

/// How an open connection's data travels: straight between the two browsers, or through
/// the server's TURN relay (slower, and it costs the server bandwidth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerPath {
    /// Open, but the browser has not yet reported which candidate pair it chose.
    #[default]
    Checking,
    Direct,
    Relayed,
}

impl PeerPath {
    /// The path of a candidate pair, from its two ends' ICE `candidateType`s ("host",
    /// "srflx", "prflx", "relay"): relayed if either end is a TURN allocation.
    pub fn from_candidate_types(local: &str, remote: &str) -> Self {
        if local == "relay" || remote == "relay" {
            Self::Relayed
        } else {
            Self::Direct
        }
    }

    /// The path of the candidate pair a connection's stats report as selected, or `None`
    /// while none is. Chromium names the pair in its `transport` entry
    /// (`selectedCandidatePairId`); Firefox marks the pair itself (`selected`); a nominated
    /// pair that succeeded is the last resort.
    pub fn from_stats(stats: &[IceStat]) -> Option<Self> {
        let by_id = |id: &str| stats.iter().find(|s| s.id == id);
        let pairs = || stats.iter().filter(|s| s.kind == "candidate-pair");
        let pair = stats
            .iter()
            .filter(|s| s.kind == "transport")
            .find_map(|t| t.selected_pair.as_deref().and_then(by_id))
            .or_else(|| pairs().find(|p| p.selected))
            .or_else(|| pairs().find(|p| p.nominated && p.succeeded))?;
        let candidate_type = |id: &Option<String>| by_id(id.as_deref()?)?.candidate_type.clone();
        Some(Self::from_candidate_types(
            &candidate_type(&pair.local)?,
            &candidate_type(&pair.remote)?,
        ))
    }

    /// The `data-path` value.
    pub fn key(self) -> &'static str {
        match self {
            Self::Checking => "checking",
            Self::Direct => "direct",
            Self::Relayed => "relayed",
        }
    }
}

/// What [`PeerPath::from_stats`] reads of one `RTCStatsReport` entry (the browser shell
/// copies it out, so the choice of pair is plain Rust and tested here).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceStat {
    pub id: String,
    /// The entry's `type`: "transport", "candidate-pair", "local-candidate", ...
    pub kind: String,
    /// A transport's `selectedCandidatePairId`.
    pub selected_pair: Option<String>,
    /// A candidate pair's `selected`, `nominated`, `state == "succeeded"`,
    /// `localCandidateId` and `remoteCandidateId`.
    pub selected: bool,
    pub nominated: bool,
    pub succeeded: bool,
    pub local: Option<String>,
    pub remote: Option<String>,
    /// A candidate's `candidateType`.
    pub candidate_type: Option<String>,
}

/// What the page says of a peer it could not connect to because no direct path exists and
/// the server's ICE servers include no TURN relay to fall back on.
pub fn no_path_notice(peer: u64) -> String {
    format!("no direct path to peer {peer}; this server offers no relay")
}

/// One file of the room: how much of it is here, and how fast it is arriving.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub name: String,
    pub size: u64,
    pub have: u64,
    pub rate: f64,
    /// Ticked for download (a receiver may leave files out).
    pub selected: bool,
    /// A place on disk the person chose for this file ("Save to…").
    pub target: SaveTarget,
}

/// Where a file goes when the browser lets the page ask (File System Access
/// `showSaveFilePicker`): chosen once, then written piece by piece at its offsets.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SaveTarget {
    /// Not chosen (the "Save" link still works once the file is complete).
    #[default]
    None,
    /// Chosen: what is here so far was copied, and each new piece goes there too. The file
    /// appears under this name when the last piece is written.
    Writing(String),
    /// Complete and written under this name.
    Saved(String),
    /// Writing there failed; the "Save" link is the way out.
    Failed(String),
}

impl FileRow {
    pub fn percent(&self) -> f64 {
        if self.size == 0 {
            return 100.0;
        }
        self.have as f64 * 100.0 / self.size as f64
    }

    pub fn eta_secs(&self) -> Option<u64> {
        eta(self.size.saturating_sub(self.have), self.rate)
    }

    pub fn is_complete(&self) -> bool {
        self.have >= self.size
    }
}

fn eta(left: u64, rate: f64) -> Option<u64> {
    (rate > 1.0 && left > 0).then(|| (left as f64 / rate).ceil() as u64)
}

/// `m:ss` (or `h:mm:ss`) for an ETA.
pub fn duration(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// A file ready to save: an object URL for the assembled bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// Index of the file in the room.
    pub file: usize,
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransferView {
    pub phase: Phase,
    pub have: u32,
    pub total: u32,
    pub bytes: u64,
    pub total_bytes: u64,
    pub down_rate: f64,
    pub up_rate: f64,
    pub uploaded: u64,
    pub peers: Vec<PeerRow>,
    /// Peers still in the room that this tab could not connect to because there is no
    /// direct path and the server offers no relay ([`no_path_notice`], `data-testid="no-path"`).
    pub no_path: Vec<u64>,
    /// Connections as (me, them) for the mesh graph.
    pub me: u64,
    pub members: usize,
    pub saved: Vec<Saved>,
    pub log: Vec<String>,
    pub files: Vec<FileRow>,
    /// Bytes taken back from this browser's cache instead of downloaded again.
    pub restored: u64,
    /// Piece bytes received from peers since this page opened.
    pub received: u64,
    pub room: String,
    /// This browser can ask where to save a file as it downloads (File System Access).
    pub can_pick: bool,
    /// Size of the page's wasm memory: its high-water mark, since it never shrinks (shown
    /// to benchmarks as `data-heap`, next to the process's peak RSS).
    pub heap: u64,
    /// The most piece bytes ever waiting for the disk (`data-disk-backlog`, for benchmarks).
    pub disk_backlog_peak: u64,
    /// Backpressure, for tests: the fullest a data channel's send buffer was right after a
    /// send (`data-channel-peak`, never above the high-water mark) and how often a full
    /// channel paused sending (`data-channel-pauses`) and `bufferedamountlow` resumed it
    /// (`data-channel-resumes`).
    pub channel_peak: u32,
    pub channel_pauses: u64,
    pub channel_resumes: u64,
    /// Times the hub renewed this tab's signaling socket with a fresh ticket.
    pub renewed: u32,
    /// The storage worker is closing or reopening the files (`data-closing`), and how many
    /// selection changes waited for that (`data-selections-queued`); for tests.
    pub closing: bool,
    pub selections_queued: u32,
    /// IndexedDB record writes (`data-cache-writes`): one per batch of pieces, not per block.
    pub cache_writes: u64,
    /// The swarm's counters (`swarm::Stats`): duplicate or unwanted piece bytes received,
    /// stalled peers, and endgame duplicate requests.
    pub wasted: u64,
    pub stalls: u64,
    pub endgame: u64,
    /// Data-channel messages received and sent (`data-messages-in`, `-out`): a benchmark
    /// divides them by the blocks moved to see how many small messages travel per block.
    pub messages_in: u64,
    pub messages_out: u64,
}

impl TransferView {
    pub fn percent(&self) -> f64 {
        if self.total_bytes == 0 {
            return 100.0;
        }
        self.bytes as f64 * 100.0 / self.total_bytes as f64
    }

    /// Seconds left at the current rate, if it is moving.
    pub fn eta_secs(&self) -> Option<u64> {
        eta(self.total_bytes.saturating_sub(self.bytes), self.down_rate)
    }
}

pub fn rate(bytes_per_sec: f64) -> String {
    format!("{}/s", human_size(bytes_per_sec.max(0.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_room_stops_finished_and_sharing_tabs_and_fails_the_rest() {
        let why = || "This room was closed: the owner closed this room.".to_string();
        let done = Phase::Done.ended(why());
        assert_eq!(
            done,
            Phase::Stopped {
                complete: true,
                why: why()
            }
        );
        assert!(
            done.label()
                .starts_with("Done, no longer sharing: This room was closed")
        );
        let seeding = Phase::Seeding.ended(why());
        assert_eq!(
            seeding,
            Phase::Stopped {
                complete: false,
                why: why()
            }
        );
        assert!(seeding.label().starts_with("Stopped sharing: "));
        // Ending twice keeps what the tab has.
        assert_eq!(
            done.ended("later".into()),
            Phase::Stopped {
                complete: true,
                why: "later".into()
            }
        );
        for unfinished in [Phase::Connecting, Phase::Downloading, Phase::Finishing] {
            assert_eq!(unfinished.ended(why()), Phase::Failed(why()));
        }
    }

    fn candidate(id: &str, kind: &str, candidate_type: &str) -> IceStat {
        IceStat {
            id: id.into(),
            kind: kind.into(),
            candidate_type: Some(candidate_type.into()),
            ..IceStat::default()
        }
    }

    fn pair(id: &str, local: &str, remote: &str) -> IceStat {
        IceStat {
            id: id.into(),
            kind: "candidate-pair".into(),
            local: Some(local.into()),
            remote: Some(remote.into()),
            ..IceStat::default()
        }
    }

    #[test]
    fn a_relay_at_either_end_makes_the_path_relayed() {
        use PeerPath::*;
        assert_eq!(PeerPath::from_candidate_types("host", "srflx"), Direct);
        assert_eq!(PeerPath::from_candidate_types("prflx", "host"), Direct);
        assert_eq!(PeerPath::from_candidate_types("relay", "host"), Relayed);
        assert_eq!(PeerPath::from_candidate_types("srflx", "relay"), Relayed);
    }

    #[test]
    fn the_selected_pair_is_found_as_chromium_and_firefox_report_it() {
        let candidates = [
            candidate("L1", "local-candidate", "host"),
            candidate("L2", "local-candidate", "relay"),
            candidate("R1", "remote-candidate", "srflx"),
        ];
        let direct = pair("P1", "L1", "R1");
        let relayed = pair("P2", "L2", "R1");
        // Chromium: the transport names the pair; the other pair's flags do not matter.
        let mut stats = candidates.to_vec();
        stats.push(IceStat {
            nominated: true,
            succeeded: true,
            ..direct.clone()
        });
        stats.push(relayed.clone());
        stats.push(IceStat {
            id: "T".into(),
            kind: "transport".into(),
            selected_pair: Some("P2".into()),
            ..IceStat::default()
        });
        assert_eq!(PeerPath::from_stats(&stats), Some(PeerPath::Relayed));
        // Firefox: no transport entry, the pair says it is selected.
        let mut stats = candidates.to_vec();
        stats.push(relayed.clone());
        stats.push(IceStat {
            selected: true,
            ..direct.clone()
        });
        assert_eq!(PeerPath::from_stats(&stats), Some(PeerPath::Direct));
        // Neither: a nominated pair that succeeded.
        let mut stats = candidates.to_vec();
        stats.push(IceStat {
            nominated: true,
            ..direct.clone()
        });
        stats.push(IceStat {
            nominated: true,
            succeeded: true,
            ..relayed.clone()
        });
        assert_eq!(PeerPath::from_stats(&stats), Some(PeerPath::Relayed));
        // Nothing selected yet, or a selected pair whose candidate is missing: unknown.
        let mut stats = candidates.to_vec();
        stats.push(direct.clone());
        assert_eq!(PeerPath::from_stats(&stats), None);
        let stats = vec![
            candidate("L1", "local-candidate", "host"),
            IceStat {
                selected: true,
                ..direct
            },
        ];
        assert_eq!(PeerPath::from_stats(&stats), None);
        assert_eq!(
            no_path_notice(7),
            "no direct path to peer 7; this server offers no relay"
        );
    }

    #[test]
    fn eta_only_while_moving_and_unfinished() {
        let row = |have, rate| FileRow {
            name: "a".into(),
            size: 1000,
            have,
            rate,
            selected: true,
            target: SaveTarget::None,
        };
        assert_eq!(row(500, 100.0).eta_secs(), Some(5));
        assert_eq!(row(999, 100.0).eta_secs(), Some(1));
        assert_eq!(row(1000, 100.0).eta_secs(), None);
        assert_eq!(row(0, 0.0).eta_secs(), None);
        assert_eq!(row(250, 0.0).percent(), 25.0);
        assert_eq!(duration(61), "1:01");
        assert_eq!(duration(3725), "1:02:05");
    }
}
