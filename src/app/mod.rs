//! The Dioxus UI. Compiles for server-side rendering and for the browser, so it holds no
//! browser- or server-only code: those live in `crate::web` and `crate::server`.

pub mod components;
pub mod pages;

use dioxus::prelude::*;
use pages::{Home, MyRooms, NotFound, RoomPage, SignIn, Upload};

const TAILWIND: Asset = asset!("/assets/tailwind.css");
const FAVICON: Asset = asset!("/assets/favicon.svg");

#[derive(Routable, Clone, PartialEq, Debug)]
#[rustfmt::skip]
pub enum Route {
    #[layout(Shell)]
        #[route("/")]
        Home {},
        #[route("/upload")]
        Upload {},
        #[route("/room/:id")]
        RoomPage { id: String },
        #[route("/rooms")]
        MyRooms {},
        #[route("/signin?:next&:error&:provider&:detail")]
        SignIn { next: String, error: String, provider: String, detail: String },
        #[route("/:..segments")]
        NotFound { segments: Vec<String> },
}

#[component]
pub fn App() -> Element {
    rsx! {
        document::Link { rel: "icon", href: FAVICON }
        document::Stylesheet { href: TAILWIND }
        document::Meta { name: "viewport", content: "width=device-width, initial-scale=1" }
        Router::<Route> {}
    }
}

/// Header and footer around every page.
#[component]
fn Shell() -> Element {
    // Effects only run in the browser, so this marks the page once it is interactive
    // (tests wait for it; it is also a cheap way to see hydration worked).
    let mut hydrated = use_signal(|| false);
    use_effect(move || {
        hydrated.set(true);
        // Once per page load: drop download caches that are stale or already saved.
        #[cfg(feature = "web")]
        crate::web::cache::collect_garbage_soon();
    });
    rsx! {
        div { class: "min-h-screen flex flex-col bg-slate-50 text-slate-900", "data-hydrated": "{hydrated}",
            // The header's links load a whole page on purpose: a page that shares or
            // downloads must be left through `beforeunload` (which asks while it holds the
            // only copy), and in-app navigation would unmount it without asking.
            header { class: "border-b border-slate-200 bg-white",
                nav { class: "mx-auto max-w-3xl flex items-center justify-between px-4 py-3",
                    a { href: "/", class: "font-bold text-lg tracking-tight", "meshdrop" }
                    div { class: "flex items-center gap-3",
                        AccountMenu {}
                        a {
                            href: "/upload",
                            class: "rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500",
                            "Share files"
                        }
                    }
                }
            }
            main { class: "mx-auto w-full max-w-3xl flex-1 px-4 py-10", Outlet::<Route> {} }
            footer { class: "py-6 text-center text-xs text-slate-500",
                "Files travel browser to browser. The server only keeps names and sizes."
            }
        }
    }
}

/// "My rooms" and sign-out for a signed-in person, "Sign in" when a provider is configured,
/// nothing otherwise. Loaded after hydration so pages render without waiting for it.
#[component]
fn AccountMenu() -> Element {
    let mut me = use_signal(|| None::<crate::protocol::Me>);
    use_effect(move || {
        spawn(async move {
            if let Ok(answer) = crate::api::me().await {
                me.set(Some(answer));
            }
        });
    });
    let Some(me) = me() else {
        return rsx! {};
    };
    match me.account {
        Some(account) => rsx! {
            a { href: "/rooms", class: "text-sm font-medium hover:underline", "data-testid": "nav-my-rooms", "My rooms" }
            if let Some(avatar) = account.avatar_url.clone() {
                img { class: "h-7 w-7 rounded-full", src: "{avatar}", alt: "", referrerpolicy: "no-referrer" }
            }
            span { class: "hidden text-sm text-slate-600 sm:inline", "data-testid": "nav-account", "{account.name}" }
            form { method: "post", action: "/auth/logout",
                button { r#type: "submit", class: "text-sm text-slate-600 hover:underline", "data-testid": "sign-out", "Sign out" }
            }
        },
        None if !me.providers.is_empty() => rsx! {
            a { href: "/signin?next=/rooms", class: "text-sm font-medium hover:underline", "data-testid": "nav-sign-in", "Sign in" }
        },
        None => rsx! {},
    }
}

/// `https://host:port` of the page, for building share links in the browser.
/// Server-side rendering has no window; links are only built after hydration.
pub fn page_origin() -> String {
    #[cfg(feature = "web")]
    {
        crate::web::origin()
    }
    #[cfg(not(feature = "web"))]
    {
        String::new()
    }
}
