//! Progress, speed, ETA, peers and the mesh of a running transfer.

use crate::app::transfer::{Phase, TransferView, rate};
use crate::protocol::room::human_size;
use dioxus::prelude::*;

#[component]
pub fn TransferPanel(view: Signal<TransferView>) -> Element {
    let v = view();
    let percent = v.percent();
    let phase_class = match v.phase {
        Phase::Failed(_) => "text-red-700",
        Phase::Done | Phase::Seeding => "text-emerald-700",
        _ => "text-slate-700",
    };
    let eta = v
        .eta_secs()
        .map(|s| format!(" · about {}:{:02} left", s / 60, s % 60))
        .unwrap_or_default();
    rsx! {
        div { class: "mt-6 rounded-xl border border-slate-200 bg-white p-4", "data-testid": "transfer", "data-bytes": "{v.bytes}",
            p { class: "font-medium {phase_class}", "data-testid": "phase", "data-phase": "{phase_key(&v.phase)}", "{v.phase.label()}" }
            div { class: "mt-3 h-3 w-full overflow-hidden rounded-full bg-slate-200",
                div { class: "h-3 bg-indigo-600 transition-all", style: "width: {percent:.1}%" }
            }
            p { class: "mt-2 text-sm text-slate-600", "data-testid": "progress",
                "{human_size(v.bytes)} of {human_size(v.total_bytes)} ({percent:.0}%) · ↓ {rate(v.down_rate)} · ↑ {rate(v.up_rate)}{eta}"
            }
            p { class: "mt-1 text-xs text-slate-500",
                "{v.peers.len()} connected of {v.members.saturating_sub(1)} other peer(s) in the room · uploaded {human_size(v.uploaded)}"
            }
            if !v.saved.is_empty() {
                div { class: "mt-4 flex flex-wrap gap-2",
                    for file in v.saved.iter() {
                        a {
                            class: "rounded-md bg-emerald-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-emerald-500",
                            href: "{file.url}",
                            download: "{file.name}",
                            "data-testid": "save",
                            "Save {file.name}"
                        }
                    }
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
                            tr { "data-testid": "peer", "data-received": "{p.received}",
                                td { class: "font-mono", "{p.id % 100_000:05}" }
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

fn phase_key(phase: &Phase) -> &'static str {
    match phase {
        Phase::Connecting => "connecting",
        Phase::FetchingHashes => "hashes",
        Phase::Downloading => "downloading",
        Phase::Done => "done",
        Phase::Seeding => "seeding",
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
