//! One component per route.

mod home;
mod my_rooms;
mod not_found;
mod room;
mod signin;
mod upload;

pub use home::Home;
pub use my_rooms::MyRooms;
pub use not_found::NotFound;
pub use room::RoomPage;
pub use signin::SignIn;
pub use upload::Upload;

use dioxus::prelude::*;

/// A full-width message card for errors and empty states.
#[component]
pub(crate) fn Problem(title: String, detail: String) -> Element {
    rsx! {
        div { class: "rounded-xl border border-amber-200 bg-amber-50 p-8 text-center", "data-testid": "problem",
            h1 { class: "text-2xl font-semibold", "{title}" }
            p { class: "mt-2 text-slate-600", "{detail}" }
            Link {
                to: crate::app::Route::Upload {},
                class: "mt-6 inline-block rounded-md bg-indigo-600 px-4 py-2 text-white hover:bg-indigo-500",
                "Share something new"
            }
        }
    }
}

/// Sets the HTTP status of the server-rendered page. Does nothing in the browser.
pub(crate) fn set_http_status(status: dioxus::fullstack::StatusCode) {
    dioxus::fullstack::FullstackContext::commit_http_status(status, None);
}
