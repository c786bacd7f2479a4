//! Progress, speed, ETA, peers and the mesh of a running transfer.

use crate::protocol::room::human_size;
use crate::transfer_view::{
    PeerPath, Phase, SaveTarget, TransferView, duration, no_path_notice, rate,
};
use dioxus::prelude::*;

#[component]
pub fn TransferPanel(view: Signal<TransferView>) -> Element {
    let v = view();
    let percent = v.percent();
    let phase_class = match v.phase {
        Phase::Failed(_) => "text-red-700",
        Phase::Done | Phase::Seeding => "text-emerald-700",
        Phase::Stopped { .. } => "text-amber-700",
        _ => "text-slate-700",
    };
    let eta = v
        .eta_secs()
        .map(|s| format!(" · about {} left", duration(s)))
        .unwrap_or_default();
    let restored = if v.restored > 0 {
        format!(" · {} from this browser's cache", human_size(v.restored))
    } else {
        String::new()
    };
    let many = v.saved.len() > 1;
    rsx! {
        div { class: "mt-6 rounded-xl border border-slate-200 bg-white p-4", "data-testid": "transfer", "data-bytes": "{v.bytes}",
            "data-restored": "{v.restored}", "data-received": "{v.received}", "data-heap": "{v.heap}", "data-disk-backlog": "{v.disk_backlog_peak}",
            "data-channel-peak": "{v.channel_peak}", "data-channel-pauses": "{v.channel_pauses}", "data-channel-resumes": "{v.channel_resumes}", "data-renewed": "{v.renewed}", "data-closing": "{v.closing}", "data-selections-queued": "{v.selections_queued}", "data-cache-writes": "{v.cache_writes}",
            "data-wasted": "{v.wasted}", "data-stalls": "{v.stalls}", "data-endgame": "{v.endgame}",
            "data-messages-in": "{v.messages_in}", "data-messages-out": "{v.messages_out}", "data-uploaded": "{v.uploaded}",
            p { class: "font-medium {phase_class}", "data-testid": "phase", "data-phase": "{phase_key(&v.phase)}", "{v.phase.label()}" }
            div { class: "mt-3 h-3 w-full overflow-hidden rounded-full bg-slate-200",
                div { class: "h-3 bg-indigo-600", style: "width: {percent:.1}%" }
            }
            p { class: "mt-2 text-sm text-slate-600", "data-testid": "progress",
                "{human_size(v.bytes)} of {human_size(v.total_bytes)} ({percent:.0}%) · ↓ {rate(v.down_rate)} · ↑ {rate(v.up_rate)}{eta}{restored}"
            }
            p { class: "mt-1 text-xs text-slate-500",
                "{v.peers.len()} connected of {v.members.saturating_sub(1)} other peer(s) in the room · uploaded {human_size(v.uploaded)}"
            }
            if !v.no_path.is_empty() {
                div { class: "mt-3 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-800", "data-testid": "no-path",
                    for id in v.no_path.iter() {
                        p { "data-peer": "{id}", "{no_path_notice(*id)}" }
                    }
                }
            }
            FileList { view }
            if many {
                button {
                    r#type: "button",
                    class: "mt-3 rounded-md bg-emerald-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-emerald-500",
                    "data-testid": "save-all",
                    onclick: move |_| save_all(&view.peek()),
                    "Save all {v.saved.len()} files"
                }
            }
            if !v.peers.is_empty() {
                MeshGraph { view }
                table { class: "mt-4 w-full text-left text-sm", "data-testid": "peers",
                    thead { tr { class: "text-slate-500",
                        th { "Peer" } th { "Pieces" } th { "Received" } th { "↓" } th { "↑" }
                    } }
                    tbody {
                        for p in v.peers.iter() {
                            tr { "data-testid": "peer", "data-peer": "{p.id}", "data-path": "{p.path.key()}", "data-received": "{p.received}",
                                td {
                                    span { class: "font-mono", "{p.id % 100_000:05}" }
                                    span { class: "ml-2 rounded px-1.5 py-0.5 text-xs {path_class(p.path)}", "data-testid": "path",
                                        title: path_title(p.path),
                                        "{p.path.key()}"
                                    }
                                }
                                td { "{p.pieces}/{v.total}" }
                                td { "{human_size(p.received)}" }
                                td { "{rate(p.down_rate)}" }
                                td { "{rate(p.up_rate)}" }
                            }
                        }
                    }
                }
            }
            if !v.log.is_empty() {
                details { class: "mt-4 text-xs text-slate-500",
                    summary { "Details" }
                    ul { "data-testid": "log",
                        for line in v.log.iter() { li { "{line}" } }
                    }
                }
            }
        }
    }
}

/// Each file with its own progress, speed and ETA, and its save link once complete. In a
/// room of several files a receiver ticks the ones to download (all, to start with).
#[component]
fn FileList(view: Signal<TransferView>) -> Element {
    let v = view();
    // A receiver still in the room chooses files; a sharer, or a tab that stopped or failed,
    // does not.
    let choose = v.files.len() > 1
        && !matches!(
            v.phase,
            Phase::Seeding | Phase::Stopped { .. } | Phase::Failed(_)
        );
    rsx! {
        ul { class: "mt-4 divide-y divide-slate-100 text-sm", "data-testid": "file-progress",
            for (i, f) in v.files.iter().enumerate() {
                li { class: "py-2", "data-testid": "file-row", "data-have": "{f.have}",
                    "data-selected": "{f.selected}",
                    div { class: "flex items-center justify-between gap-3",
                        label { class: "flex min-w-0 items-center gap-2",
                            if choose {
                                input {
                                    r#type: "checkbox",
                                    class: "h-4 w-4 shrink-0 accent-indigo-600",
                                    "data-testid": "select-file",
                                    title: "Download this file",
                                    checked: f.selected,
                                    onchange: move |e: FormEvent| select_file(i, e.checked()),
                                }
                            }
                            span { class: "truncate font-medium", "{f.name}" }
                        }
                        div { class: "flex shrink-0 items-center gap-2",
                            if f.selected && !f.is_complete() {
                                span { class: "text-xs text-slate-500",
                                    "{f.percent():.0}% · {rate(f.rate)}"
                                    if let Some(s) = f.eta_secs() { " · {duration(s)} left" }
                                }
                            } else if !f.selected {
                                span { class: "text-xs text-slate-400", "not downloading" }
                            }
                            if v.can_pick && f.selected && matches!(f.target, SaveTarget::None | SaveTarget::Failed(_)) {
                                button {
                                    r#type: "button",
                                    class: "rounded-md border border-slate-300 px-2 py-1 text-xs font-medium text-slate-700 hover:bg-slate-50",
                                    "data-testid": "save-to",
                                    title: "Choose where this file goes; it is written there as it arrives",
                                    onclick: {
                                        let name = f.name.clone();
                                        move |_| save_to(i, &name)
                                    },
                                    "Save to…"
                                }
                            }
                            if let Some(saved) = v.saved.iter().find(|s| s.file == i) {
                                a {
                                    class: "rounded-md bg-emerald-600 px-3 py-1 text-sm font-medium text-white hover:bg-emerald-500",
                                    href: "{saved.url}",
                                    download: "{saved.name}",
                                    "data-testid": "save",
                                    onclick: move |_| note_saved(&view.peek().room),
                                    "Save"
                                }
                            }
                        }
                    }
                    match &f.target {
                        SaveTarget::None => rsx! {},
                        SaveTarget::Writing(name) => rsx! {
                            p { class: "mt-1 text-xs text-slate-500", "data-testid": "target", "data-state": "writing",
                                "Writing to {name} as pieces arrive"
                            }
                        },
                        SaveTarget::Saved(name) => rsx! {
                            p { class: "mt-1 text-xs text-emerald-700", "data-testid": "target", "data-state": "saved",
                                "Saved as {name}"
                            }
                        },
                        SaveTarget::Failed(why) => rsx! {
                            p { class: "mt-1 text-xs text-red-700", "data-testid": "target", "data-state": "failed",
                                "Could not save there: {why}"
                            }
                        },
                    }
                    div { class: "mt-1 h-1.5 w-full overflow-hidden rounded-full bg-slate-100",
                        div { class: "h-1.5 bg-indigo-400", style: "width: {f.percent():.1}%" }
                    }
                }
            }
        }
    }
}

/// Clicks every save link in turn (the browser may ask once to allow several downloads).
fn save_all(v: &TransferView) {
    note_saved(&v.room);
    #[cfg(feature = "web")]
    for file in &v.saved {
        crate::web::save_url(&file.url, &file.name);
    }
}

fn select_file(file: usize, on: bool) {
    #[cfg(feature = "web")]
    crate::web::transfer::select_file(file, on);
    #[cfg(not(feature = "web"))]
    let _ = (file, on);
}

fn save_to(file: usize, name: &str) {
    #[cfg(feature = "web")]
    crate::web::transfer::save_to(file, name);
    #[cfg(not(feature = "web"))]
    let _ = (file, name);
}

fn note_saved(room: &str) {
    #[cfg(feature = "web")]
    crate::web::transfer::mark_saved(room);
    #[cfg(not(feature = "web"))]
    let _ = room;
}

/// Relayed connections stand out: they are slower and cost the server bandwidth.
fn path_class(path: PeerPath) -> &'static str {
    match path {
        PeerPath::Checking => "bg-slate-100 text-slate-500",
        PeerPath::Direct => "bg-emerald-50 text-emerald-700",
        PeerPath::Relayed => "bg-amber-100 text-amber-800",
    }
}

fn path_title(path: PeerPath) -> &'static str {
    match path {
        PeerPath::Checking => "Asking the browser which way this connection goes",
        PeerPath::Direct => "Data goes straight between the two browsers",
        PeerPath::Relayed => "No direct path: data goes through the server's TURN relay",
    }
}

fn phase_key(phase: &Phase) -> &'static str {
    match phase {
        Phase::Connecting => "connecting",
        Phase::Verifying { .. } => "verifying",
        Phase::FetchingHashes => "hashes",
        Phase::Downloading => "downloading",
        Phase::Finishing => "finishing",
        Phase::Done => "done",
        Phase::Seeding => "seeding",
        Phase::Stopped { .. } => "stopped",
        Phase::Failed(_) => "failed",
    }
}

/// This peer's real connections: us in the middle, each connected peer around us, the
/// line's weight growing with what it sent us and a full ring for peers with every piece.
#[component]
fn MeshGraph(view: Signal<TransferView>) -> Element {
    let v = view();
    let n = v.peers.len().max(1) as f64;
    let most = v.peers.iter().map(|p| p.received).max().unwrap_or(0).max(1) as f64;
    let nodes: Vec<(f64, f64, f64, bool, String)> = v
        .peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let angle = std::f64::consts::TAU * i as f64 / n - std::f64::consts::FRAC_PI_2;
            let width = 1.0 + 5.0 * p.received as f64 / most;
            (
                100.0 + 70.0 * angle.cos(),
                100.0 + 70.0 * angle.sin(),
                width,
                v.total > 0 && p.pieces >= v.total,
                format!("{:05}", p.id % 100_000),
            )
        })
        .collect();
    rsx! {
        svg { class: "mx-auto mt-4 h-48 w-48", view_box: "0 0 200 200", "data-testid": "mesh",
            for (x, y, w, _, _) in nodes.iter() {
                line { x1: "100", y1: "100", x2: "{x}", y2: "{y}", stroke: "#6366f1", stroke_width: "{w:.1}", stroke_opacity: "0.6" }
            }
            circle { cx: "100", cy: "100", r: "12", fill: "#4f46e5" }
            text { x: "100", y: "104", text_anchor: "middle", font_size: "9", fill: "white", "you" }
            for (x, y, _, complete, label) in nodes.iter() {
                circle { cx: "{x}", cy: "{y}", r: "9", fill: if *complete { "#059669" } else { "#94a3b8" } }
                text { x: "{x}", y: "{y + 20.0}", text_anchor: "middle", font_size: "8", fill: "#475569", "{label}" }
            }
        }
    }
}
