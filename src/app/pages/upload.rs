//! `/upload`: choose or drop files, get a share link with a copy button and a QR code.

use crate::api::create_room;
use crate::app::Route;
use crate::app::components::{CopyButton, QrCode};
use crate::protocol::room::human_size;
use crate::protocol::{CreatedRoom, FileEntry};
use dioxus::html::{FileData, HasFileData};
use dioxus::prelude::*;

#[derive(Clone, PartialEq)]
enum Step {
    Choosing,
    Creating,
    Ready(CreatedRoom),
    Failed(String),
}

#[component]
pub fn Upload() -> Element {
    let mut files = use_signal(Vec::<FileEntry>::new);
    let mut step = use_signal(|| Step::Choosing);
    let mut title = use_signal(String::new);
    let mut dragging = use_signal(|| false);

    let mut start = move |chosen: Vec<FileData>| {
        if chosen.is_empty() || matches!(step(), Step::Creating) {
            return;
        }
        let entries: Vec<FileEntry> = chosen
            .iter()
            .map(|f| FileEntry {
                name: f.name(),
                size: f.size(),
                mime: f.content_type().unwrap_or_default(),
            })
            .collect();
        files.set(entries.clone());
        step.set(Step::Creating);
        let title = Some(title()).filter(|t| !t.trim().is_empty());
        spawn(async move {
            match create_room(title, entries).await {
                Ok(room) => step.set(Step::Ready(room)),
                Err(e) => step.set(Step::Failed(e.to_string())),
            }
        });
    };

    let zone_class = if dragging() {
        "border-indigo-500 bg-indigo-50"
    } else {
        "border-slate-300 bg-white hover:border-indigo-400"
    };

    rsx! {
        document::Title { "Share files · meshdrop" }
        h1 { class: "text-3xl font-bold tracking-tight", "Share files" }
        match step() {
            Step::Ready(room) => rsx! { ShareLink { room, files: files() } },
            current => rsx! {
                label { class: "mt-6 block text-sm font-medium text-slate-700", r#for: "title", "Title (optional)" }
                input {
                    id: "title",
                    class: "mt-1 w-full rounded-md border border-slate-300 px-3 py-2",
                    placeholder: "Holiday photos",
                    maxlength: "200",
                    value: "{title}",
                    oninput: move |e| title.set(e.value()),
                }
                label {
                    class: "mt-4 flex cursor-pointer flex-col items-center justify-center rounded-xl border-2 border-dashed p-12 text-center transition {zone_class}",
                    "data-testid": "dropzone",
                    ondragover: move |e| {
                        e.prevent_default();
                        dragging.set(true);
                    },
                    ondragleave: move |_| dragging.set(false),
                    ondrop: move |e| {
                        e.prevent_default();
                        dragging.set(false);
                        start(e.files());
                    },
                    span { class: "text-lg font-medium", "Drop files here" }
                    span { class: "mt-1 text-sm text-slate-500", "or click to choose. Any size, several at once." }
                    input {
                        r#type: "file",
                        multiple: true,
                        class: "sr-only",
                        "data-testid": "file-input",
                        disabled: matches!(current, Step::Creating),
                        onchange: move |e| start(e.files()),
                    }
                }
                if matches!(current, Step::Creating) {
                    p { class: "mt-4 text-slate-600", "data-testid": "creating", "Creating your room…" }
                }
                if let Step::Failed(reason) = &current {
                    p { class: "mt-4 rounded-md bg-red-50 p-3 text-red-700", role: "alert", "data-testid": "upload-error",
                        "Could not create the room: {reason}"
                    }
                }
            },
        }
    }
}

#[component]
fn ShareLink(room: CreatedRoom, files: Vec<FileEntry>) -> Element {
    let link = format!("{}{}", crate::app::page_origin(), room.id.path());
    let total: u64 = files.iter().map(|f| f.size).sum();
    rsx! {
        div { class: "mt-6 rounded-xl border border-emerald-200 bg-emerald-50 p-6", "data-testid": "share",
            h2 { class: "text-lg font-semibold", "Your link is ready" }
            p { class: "text-sm text-slate-600",
                "{files.len()} file(s), {human_size(total)}. Keep this tab open while people download."
            }
            div { class: "mt-4 flex flex-wrap items-center gap-2",
                input {
                    class: "min-w-0 flex-1 rounded-md border border-slate-300 bg-white px-3 py-2 font-mono text-sm",
                    readonly: true,
                    value: "{link}",
                    "data-testid": "share-link",
                    onclick: move |_| {
                        // Selecting the whole link on click helps when the clipboard API is unavailable.
                        let _ = document::eval("document.querySelector('[data-testid=share-link]').select()");
                    },
                }
                CopyButton { text: link.clone() }
                Link {
                    to: Route::RoomPage { id: room.id.to_string() },
                    class: "rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500",
                    "Open room"
                }
            }
            div { class: "mt-4", QrCode { text: link.clone() } }
        }
    }
}
