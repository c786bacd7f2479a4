//! `/`: what meshdrop is, in one screen.

use crate::app::Route;
use dioxus::prelude::*;

#[component]
pub fn Home() -> Element {
    rsx! {
        document::Title { "meshdrop: share files browser to browser" }
        section { class: "text-center",
            h1 { class: "text-4xl font-bold tracking-tight", "Share files straight from your browser" }
            p { class: "mx-auto mt-4 max-w-xl text-lg text-slate-600",
                "Drop files, get a link. Everyone who opens it downloads from you and from each other at once, "
                "every piece checked against its hash. Files never touch our server."
            }
            Link {
                to: Route::Upload {},
                class: "mt-8 inline-block rounded-lg bg-indigo-600 px-6 py-3 text-lg font-semibold text-white hover:bg-indigo-500",
                "Share files"
            }
        }
        ul { class: "mt-12 grid gap-4 sm:grid-cols-3 text-sm",
            Feature { title: "Any size", text: "Pieces stream to disk, so a browser tab never holds the whole file." }
            Feature { title: "Verified", text: "Every piece is checked against the room's SHA-256 hashes before it is kept." }
            Feature { title: "Faster with friends", text: "Each downloader re-shares what it has, so the swarm grows its own bandwidth." }
        }
    }
}

#[component]
fn Feature(title: &'static str, text: &'static str) -> Element {
    rsx! {
        li { class: "rounded-xl border border-slate-200 bg-white p-4",
            h2 { class: "font-semibold", "{title}" }
            p { class: "mt-1 text-slate-600", "{text}" }
        }
    }
}
