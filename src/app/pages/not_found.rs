//! Any path no route matches: a 404 page.

use super::{Problem, set_http_status};
use dioxus::fullstack::StatusCode;
use dioxus::prelude::*;

#[component]
pub fn NotFound(segments: Vec<String>) -> Element {
    set_http_status(StatusCode::NOT_FOUND);
    rsx! {
        document::Title { "Not found · meshdrop" }
        Problem { title: "Page not found", detail: format!("Nothing lives at /{}.", segments.join("/")) }
    }
}
