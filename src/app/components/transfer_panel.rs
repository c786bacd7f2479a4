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
        div { class: "mt-6 rounded-xl border border-slate-200 bg-white p-4", "data-testid": "transfer",
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
