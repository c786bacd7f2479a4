//! `/room/<id>`: the room's files, rendered on the server (so the first byte already lists
//! them) and hydrated in the browser. Unknown or expired rooms answer 404, revoked ones 410, malformed ids 400.

use super::{Problem, set_http_status};
use crate::api::{ApiError, get_room};
use crate::app::components::{CopyButton, QrCode, TransferPanel};
use crate::protocol::room::{human_size, utc_datetime};
use crate::protocol::{RoomId, RoomView};
use crate::transfer_view::TransferView;
use dioxus::fullstack::{AsStatusCode, StatusCode};
use dioxus::prelude::*;

#[component]
pub fn RoomPage(id: String) -> Element {
    match RoomId::parse(&id) {
        Ok(id) => rsx! { RoomLoader { id } },
        Err(reason) => {
            set_http_status(StatusCode::BAD_REQUEST);
            rsx! {
                document::Title { "Bad link · meshdrop" }
                Problem { title: "This link is not a room link", detail: format!("Check that it was copied whole: {reason}.") }
            }
        }
    }
}

#[component]
fn RoomLoader(id: RoomId) -> Element {
    let room = use_server_future(use_reactive!(|id| get_room(id.to_string())))?;
    let result = room.read().clone();
    match result {
        None => rsx! { p { class: "text-slate-500", "Loading room…" } },
        Some(Ok(view)) => rsx! { RoomDetails { room: view } },
        Some(Err(error)) => {
            let status = error.as_status_code();
            set_http_status(status);
            let (title, detail) = match error {
                ApiError::RoomNotFound => (
                    "This room does not exist or has expired".to_string(),
                    "Rooms live for a limited time. Ask the sender for a new link.".to_string(),
                ),
                ApiError::RoomGone => (
                    "This room was closed by its owner".to_string(),
                    "Its files are no longer shared. Ask the sender for a new link.".to_string(),
                ),
                other => ("Could not load this room".to_string(), other.to_string()),
            };
            rsx! {
                document::Title { "Room not found · meshdrop" }
                Problem { title, detail }
            }
        }
    }
}

#[component]
fn RoomDetails(room: RoomView) -> Element {
    let mut show_qr = use_signal(|| false);
    let link = format!("{}{}", crate::app::page_origin(), room.id.path());
    let heading = room
        .title
        .clone()
        .unwrap_or_else(|| match room.files.as_slice() {
            [only] => only.name.clone(),
            files => format!("{} files", files.len()),
        });
    rsx! {
        document::Title { "{heading} · meshdrop" }
        div { "data-testid": "room",
            h1 { class: "text-3xl font-bold tracking-tight break-words", "{heading}" }
            p { class: "mt-1 text-sm text-slate-500",
                "{room.files.len()} file(s), {human_size(room.total_size())} · expires {utc_datetime(room.expires_at)}"
            }
            ul { class: "mt-6 divide-y divide-slate-200 rounded-xl border border-slate-200 bg-white", "data-testid": "files",
                for file in room.files.iter() {
                    li { class: "flex items-center justify-between gap-4 px-4 py-3",
                        span { class: "truncate font-medium", "data-testid": "file-name", "{file.name}" }
                        span { class: "shrink-0 text-sm text-slate-500", "data-testid": "file-size", title: "{file.size} bytes",
                            "{human_size(file.size)}"
                        }
                    }
                }
            }
            div { class: "mt-6 flex flex-wrap gap-2",
                CopyButton { text: link.clone() }
                button {
                    r#type: "button",
                    class: "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium hover:bg-slate-100",
                    "data-testid": "toggle-qr",
                    onclick: move |_| show_qr.toggle(),
                    if show_qr() { "Hide QR code" } else { "Show QR code" }
                }
            }
            if show_qr() {
                div { class: "mt-4", "data-testid": "room-qr", QrCode { text: link } }
            }
            if room.manifest.is_some() {
                Download { room: room.clone() }
            }
            p { class: "mt-8 rounded-md bg-slate-100 p-4 text-sm text-slate-600",
                "Downloads come straight from the people sharing this room; keep this page open to fetch and re-share the files."
            }
        }
    }
}

/// Joins the room's swarm as soon as the page is interactive and shows the transfer.
#[component]
fn Download(room: RoomView) -> Element {
    let view = use_signal(TransferView::default);
    let mut started = use_signal(|| false);
    use_effect(move || {
        if started() {
            return;
        }
        started.set(true);
        start_download(room.clone(), view);
    });
    rsx! { TransferPanel { view } }
}

#[cfg(feature = "web")]
fn start_download(room: RoomView, mut view: Signal<TransferView>) {
    use crate::transfer_view::Phase;
    let Some(manifest) = room.manifest.clone() else {
        return;
    };
    let (Some(root), Ok(layout)) = (manifest.root_hash(), manifest.layout(&room.files)) else {
        view.with_mut(|v| v.phase = Phase::Failed("the room's manifest is damaged".into()));
        return;
    };
    spawn(async move {
        match crate::api::join_room(room.id.to_string()).await {
            Ok(ticket) => crate::web::transfer::start(crate::web::transfer::Setup {
                room: room.id.to_string(),
                ticket: ticket.ticket,
                layout,
                root,
                files: room.files.clone(),
                source: None,
                report: Box::new(move |shown| {
                    let mut view = view;
                    view.set(shown)
                }),
            }),
            Err(e) => view.with_mut(|v| v.phase = Phase::Failed(e.to_string())),
        }
    });
}

#[cfg(not(feature = "web"))]
fn start_download(_room: RoomView, _view: Signal<TransferView>) {}
