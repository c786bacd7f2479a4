//! `/rooms`: the signed-in user's rooms, newest first, with what they can do to each:
//! copy the link or show its QR code, rename, move the expiry, or close the room for good.
//! The server sends anonymous visitors to `/signin` first; a client-side visit whose
//! session ended gets the same redirect from here.

use crate::api::{ApiError, my_rooms, rename_room, revoke_room, set_room_expiry};
use crate::app::Route;
use crate::app::components::{CopyButton, QrCode};
use crate::protocol::OwnedRoom;
use crate::protocol::room::{human_size, utc_datetime};
use dioxus::prelude::*;

/// Expiry choices offered, in hours from now.
const EXPIRY_CHOICES: [(u32, &str); 6] = [
    (1, "1 hour"),
    (24, "1 day"),
    (72, "3 days"),
    (168, "1 week"),
    (720, "30 days"),
    (2160, "90 days"),
];

#[component]
pub fn MyRooms() -> Element {
    let mut rooms = use_server_future(my_rooms)?;
    let listing = rooms.read().clone();
    // The session ended while the app was open (full page loads are redirected by the
    // server before rendering).
    let signed_out = matches!(listing, Some(Err(ApiError::SignInRequired)));
    use_effect(use_reactive!(|signed_out| {
        if signed_out {
            navigator().replace(Route::SignIn {
                next: "/rooms".into(),
                error: String::new(),
                provider: String::new(),
                detail: String::new(),
            });
        }
    }));
    match listing {
        None => rsx! { p { class: "text-slate-500", "Loading your rooms…" } },
        Some(Err(ApiError::SignInRequired)) => rsx! { p { "Redirecting to sign in…" } },
        Some(Err(e)) => rsx! {
            p { class: "text-red-700", role: "alert", "Could not load your rooms: {e}" }
        },
        Some(Ok(list)) => rsx! {
            document::Title { "My rooms · meshdrop" }
            div { class: "flex items-center justify-between",
                h1 { class: "text-3xl font-bold tracking-tight", "My rooms" }
                Link { to: Route::Upload {}, class: "text-sm font-medium text-indigo-700 hover:underline", "Share something new" }
            }
            if list.is_empty() {
                p { class: "mt-6 text-slate-600", "data-testid": "no-rooms",
                    "You have no rooms yet. Rooms you create while signed in show up here."
                }
            }
            ul { class: "mt-6 space-y-4", "data-testid": "my-rooms",
                for room in list {
                    RoomCard { key: "{room.id}", room, on_change: move |_| rooms.restart() }
                }
            }
        },
    }
}

fn heading(room: &OwnedRoom) -> String {
    room.title
        .clone()
        .unwrap_or_else(|| match room.files.as_slice() {
            [only] => only.name.clone(),
            files => format!("{} files", files.len()),
        })
}

#[component]
fn RoomCard(room: OwnedRoom, on_change: EventHandler<()>) -> Element {
    let mut show_qr = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);
    let mut busy = use_signal(|| false);
    let mut title = use_signal(|| room.title.clone().unwrap_or_default());
    let mut hours = use_signal(|| 168u32);
    // The server renders the path alone; the full link appears once the page is live.
    let mut origin = use_signal(String::new);
    use_effect(move || origin.set(crate::app::page_origin()));
    let link = format!("{}{}", origin(), room.id.path());
    let id = room.id.to_string();
    let file_names: Vec<String> = room.files.iter().take(5).map(|f| f.name.clone()).collect();
    let more_files = room.files.len().saturating_sub(file_names.len());

    // Runs one action, then reloads the list (or shows why it failed).
    let act = move |action: Action| {
        spawn(async move {
            busy.set(true);
            let result = match action {
                Action::Revoke(id) => revoke_room(id).await,
                Action::Expiry(id, h) => set_room_expiry(id, h).await,
                Action::Rename(id, t) => rename_room(id, Some(t)).await,
            };
            busy.set(false);
            match result {
                Ok(_) => {
                    error.set(None);
                    on_change.call(());
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let (id_revoke, id_expiry, id_rename) = (id.clone(), id.clone(), id.clone());
    rsx! {
        li { class: "rounded-xl border border-slate-200 bg-white p-4", "data-testid": "my-room", "data-room": "{id}",
            div { class: "flex flex-wrap items-baseline justify-between gap-2",
                h2 { class: "text-lg font-semibold break-words", "data-testid": "my-room-title", "{heading(&room)}" }
                if room.revoked {
                    span { class: "rounded bg-red-100 px-2 py-0.5 text-xs font-medium text-red-800", "data-testid": "my-room-revoked", "closed" }
                }
            }
            p { class: "mt-1 text-sm text-slate-600",
                "{file_names.join(\", \")}"
                if more_files > 0 { " and {more_files} more" }
            }
            dl { class: "mt-3 grid grid-cols-2 gap-x-4 gap-y-1 text-sm sm:grid-cols-3",
                Fact { label: "Size", value: human_size(room.total_size), testid: "my-room-size" }
                Fact { label: "Created", value: utc_datetime(room.created_at), testid: "my-room-created" }
                Fact { label: "Expires", value: utc_datetime(room.expires_at), testid: "my-room-expires" }
                Fact { label: "Completed downloads", value: room.completed.to_string(), testid: "my-room-completed" }
                Fact { label: "Online now", value: room.online.to_string(), testid: "my-room-online" }
            }
            if !room.revoked {
                div { class: "mt-3 flex flex-wrap items-center gap-2",
                    a { class: "truncate text-sm text-indigo-700 underline", href: "{link}", "data-testid": "my-room-link", "{link}" }
                    CopyButton { text: link.clone() }
                    button {
                        r#type: "button",
                        class: "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm hover:bg-slate-100",
                        "data-testid": "my-room-show-qr",
                        onclick: move |_| show_qr.toggle(),
                        if show_qr() { "Hide QR code" } else { "QR code" }
                    }
                }
                if show_qr() {
                    div { class: "mt-3", QrCode { text: link.clone() } }
                }
                div { class: "mt-4 flex flex-wrap items-center gap-2 border-t border-slate-100 pt-3 text-sm",
                    input {
                        class: "min-w-0 flex-1 rounded-md border border-slate-300 px-2 py-1",
                        "aria-label": "Room title",
                        "data-testid": "my-room-title-input",
                        maxlength: "200",
                        placeholder: "Title (optional)",
                        value: "{title}",
                        oninput: move |e| title.set(e.value()),
                    }
                    button {
                        r#type: "button",
                        class: "rounded-md border border-slate-300 px-3 py-1 hover:bg-slate-100",
                        "data-testid": "my-room-rename",
                        disabled: busy(),
                        onclick: move |_| act(Action::Rename(id_rename.clone(), title())),
                        "Rename"
                    }
                    select {
                        class: "rounded-md border border-slate-300 px-2 py-1",
                        "aria-label": "New expiry",
                        "data-testid": "my-room-expiry-choice",
                        onchange: move |e| hours.set(e.value().parse().unwrap_or(168)),
                        for (h, label) in EXPIRY_CHOICES {
                            option { value: "{h}", selected: h == hours(), "expire in {label}" }
                        }
                    }
                    button {
                        r#type: "button",
                        class: "rounded-md border border-slate-300 px-3 py-1 hover:bg-slate-100",
                        "data-testid": "my-room-set-expiry",
                        disabled: busy(),
                        onclick: move |_| act(Action::Expiry(id_expiry.clone(), hours())),
                        "Set expiry"
                    }
                    button {
                        r#type: "button",
                        class: "ml-auto rounded-md bg-red-600 px-3 py-1 font-medium text-white hover:bg-red-500",
                        "data-testid": "my-room-revoke",
                        disabled: busy(),
                        onclick: move |_| act(Action::Revoke(id_revoke.clone())),
                        "Close room"
                    }
                }
            }
            if let Some(e) = error() {
                p { class: "mt-2 text-sm text-red-700", role: "alert", "{e}" }
            }
        }
    }
}

enum Action {
    Revoke(String),
    Expiry(String, u32),
    Rename(String, String),
}

#[component]
fn Fact(label: &'static str, value: String, #[props(default)] testid: &'static str) -> Element {
    rsx! {
        div {
            dt { class: "text-slate-500", "{label}" }
            dd { class: "font-medium", "data-testid": "{testid}", "{value}" }
        }
    }
}
