//! `/upload`: choose or drop files, get a share link with a copy button and a QR code.

use crate::api::create_room;
use crate::app::Route;
use crate::app::components::{CopyButton, QrCode, TransferPanel};
use crate::protocol::room::RoomManifest;
use crate::protocol::room::human_size;
use crate::protocol::{CreatedRoom, FileEntry};
use crate::transfer_view::TransferView;
use dioxus::html::{FileData, HasFileData};
use dioxus::prelude::*;

#[derive(Clone, PartialEq)]
enum Step {
    Choosing,
    /// Reading and hashing the files (bytes done so far, of the total).
    Hashing(u64, u64),
    Creating,
    Ready(CreatedRoom),
    Failed(String),
}

/// Starts seeding the hashed files into a created room.
type StartSeeding = Box<dyn FnOnce(&CreatedRoom, Signal<TransferView>)>;

/// Hashed files, ready to create a room with, and how to start seeding them.
struct Prepared {
    manifest: RoomManifest,
    seed: StartSeeding,
    /// How long reading and hashing took, in seconds.
    hash_secs: f64,
}

/// Hashes the chosen files in the browser (lazily, piece by piece) into the room manifest.
#[cfg(feature = "web")]
async fn prepare(
    chosen: Vec<FileData>,
    entries: Vec<FileEntry>,
    mut step: Signal<Step>,
) -> Result<Prepared, String> {
    let files: Vec<web_sys::File> = chosen
        .iter()
        .filter_map(|f| f.inner().downcast_ref::<web_sys::File>().cloned())
        .collect();
    if files.len() != chosen.len() {
        return Err("this browser did not hand over the files".into());
    }
    let total: u64 = entries.iter().map(|f| f.size).sum();
    let started = crate::web::now_ms();
    let (layout, hashes, root) =
        crate::web::crypto::hash_files(&files, |done| step.set(Step::Hashing(done, total))).await?;
    let hash_secs = (crate::web::now_ms() - started) / 1000.0;
    let manifest = RoomManifest {
        piece_size: layout.piece_size,
        root: crate::protocol::manifest::to_hex(&root),
    };
    let seed = Box::new(move |room: &CreatedRoom, view: Signal<TransferView>| {
        crate::web::warn_before_unload(true);
        crate::web::transfer::start(crate::web::transfer::Setup {
            room: room.id.to_string(),
            ticket: room.ticket.clone(),
            layout,
            root,
            files: entries,
            source: Some((files, hashes)),
            report: Box::new(move |shown| {
                let mut view = view;
                view.set(shown)
            }),
        });
    });
    Ok(Prepared {
        manifest,
        seed,
        hash_secs,
    })
}

#[cfg(not(feature = "web"))]
async fn prepare(
    _chosen: Vec<FileData>,
    _entries: Vec<FileEntry>,
    _step: Signal<Step>,
) -> Result<Prepared, String> {
    Err("sharing runs in the browser".into())
}

#[component]
pub fn Upload() -> Element {
    let mut files = use_signal(Vec::<FileEntry>::new);
    let mut step = use_signal(|| Step::Choosing);
    let mut title = use_signal(String::new);
    let mut dragging = use_signal(|| false);
    let view = use_signal(TransferView::default);
    let mut hash_secs = use_signal(|| 0.0);
    // The hashing workers start while the person is still choosing files.
    use_effect(|| {
        #[cfg(feature = "web")]
        crate::web::crypto::warm_up();
    });
    // Leaving the page without choosing anything stops the workers that waited.
    use_drop(|| {
        #[cfg(feature = "web")]
        crate::web::crypto::release_spare();
    });

    let mut start = move |chosen: Vec<FileData>| {
        if chosen.is_empty() || matches!(step(), Step::Creating | Step::Hashing(..)) {
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
        let total = entries.iter().map(|f| f.size).sum();
        step.set(Step::Hashing(0, total));
        let title = Some(title()).filter(|t| !t.trim().is_empty());
        spawn(async move {
            let prepared = match prepare(chosen, entries.clone(), step).await {
                Ok(p) => p,
                Err(e) => return step.set(Step::Failed(e)),
            };
            hash_secs.set(prepared.hash_secs);
            step.set(Step::Creating);
            match create_room(title, entries, Some(prepared.manifest)).await {
                Ok(room) => {
                    (prepared.seed)(&room, view);
                    step.set(Step::Ready(room));
                }
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
            Step::Ready(room) => rsx! {
                div {
                    ShareLink { room, files: files(), hash_secs: hash_secs() }
                    TransferPanel { view }
                }
            },
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
                        disabled: matches!(current, Step::Creating | Step::Hashing(..)),
                        onchange: move |e| start(e.files()),
                    }
                }
                Status { step: current.clone() }
            },
        }
    }
}

/// Hashing progress, "creating", or why it failed: one element whose content changes.
#[component]
fn Status(step: Step) -> Element {
    rsx! {
        div { class: "mt-4", "data-testid": "status",
            match step {
                Step::Hashing(done, total) => rsx! {
                    div { "data-testid": "hashing",
                        p { class: "text-slate-600", "Hashing {human_size(done)} of {human_size(total)}…" }
                        progress { class: "mt-2 w-full", max: "{total.max(1)}", value: "{done}" }
                    }
                },
                Step::Creating => rsx! {
                    p { class: "text-slate-600", "data-testid": "creating", "Creating your room…" }
                },
                Step::Failed(reason) => rsx! {
                    p { class: "rounded-md bg-red-50 p-3 text-red-700", role: "alert", "data-testid": "upload-error",
                        "Could not create the room: {reason}"
                    }
                },
                _ => rsx! {},
            }
        }
    }
}

#[component]
fn ShareLink(room: CreatedRoom, files: Vec<FileEntry>, hash_secs: f64) -> Element {
    let link = format!("{}{}", crate::app::page_origin(), room.id.path());
    let total: u64 = files.iter().map(|f| f.size).sum();
    let hash_rate = if hash_secs > 0.0 {
        format!(
            " Hashed in {hash_secs:.1} s ({}/s).",
            human_size((total as f64 / hash_secs) as u64)
        )
    } else {
        String::new()
    };
    rsx! {
        div { class: "mt-6 rounded-xl border border-emerald-200 bg-emerald-50 p-6", "data-testid": "share",
            "data-hash-secs": "{hash_secs}",
            h2 { class: "text-lg font-semibold", "Your link is ready" }
            p { class: "text-sm text-slate-600",
                "{files.len()} file(s), {human_size(total)}.{hash_rate} This tab is the source: keep it open while people download."
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
                // In a new tab: this one keeps sharing.
                Link {
                    to: Route::RoomPage { id: room.id.to_string() },
                    new_tab: true,
                    class: "rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500",
                    "Open room"
                }
            }
            div { class: "mt-4", QrCode { text: link.clone() } }
        }
    }
}
