//! `/signin`: one button per configured provider (none when sign-in is not set up), and the
//! reason when a sign-in just failed. The buttons are plain links: the OAuth flow is a
//! series of full-page redirects handled by `server::auth`.

use super::Problem;
use crate::api::me;
use crate::protocol::account::{safe_next, urlencode};
use dioxus::prelude::*;

/// The sentence for a `/signin?error=…` reason (codes come from `server::auth`).
fn explain(error: &str, provider: &str, detail: &str) -> String {
    let who = match provider {
        "github" => "GitHub",
        "google" => "Google",
        _ => "the provider",
    };
    // Only OAuth-style codes are echoed; anything else is dropped.
    let detail_ok = !detail.is_empty()
        && detail.len() <= 64
        && detail
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    let suffix = if detail_ok {
        format!(" ({detail})")
    } else {
        String::new()
    };
    match error {
        "denied" => format!("You declined the sign-in at {who}. Nothing was shared with meshdrop."),
        "state" => "That sign-in answer does not belong to a sign-in started in this browser \
                    (it may be old, used already, or forged), so it was rejected. Please start again."
            .into(),
        "code" => format!("{who} did not accept the sign-in code{suffix}; it may have been used already. Please start again."),
        "provider" => format!("{who} returned an error{suffix}. Please try again in a moment."),
        "unavailable" => format!("Sign-in with {who} is not set up on this server."),
        _ => "Sign-in failed on our side. Please try again.".into(),
    }
}

#[component]
pub fn SignIn(next: String, error: String, provider: String, detail: String) -> Element {
    let me = use_server_future(me)?;
    let next = safe_next(Some(&next));
    let message = (!error.is_empty()).then(|| explain(&error, &provider, &detail));
    let me_now = me.read().clone();
    let providers = match me_now {
        Some(Ok(me)) => me.providers,
        _ => Vec::new(),
    };
    rsx! {
        document::Title { "Sign in · meshdrop" }
        if let Some(message) = message {
            div { class: "mb-6 rounded-md border border-red-200 bg-red-50 p-4 text-red-800", role: "alert", "data-testid": "signin-error",
                "{message}"
            }
        }
        if providers.is_empty() {
            Problem {
                title: "Sign-in is not available here",
                detail: "This server has no sign-in provider configured. You can still share and download without an account.",
            }
        } else {
            div { class: "mx-auto max-w-sm rounded-xl border border-slate-200 bg-white p-8 text-center",
                h1 { class: "text-2xl font-semibold", "Sign in" }
                p { class: "mt-2 text-sm text-slate-600",
                    "Signing in lets you see, extend and close the rooms you create. Sharing works without it."
                }
                div { class: "mt-6 flex flex-col gap-3",
                    for slug in providers {
                        a {
                            class: "rounded-md bg-slate-900 px-4 py-2 font-medium text-white hover:bg-slate-700",
                            "data-testid": "signin-{slug}",
                            href: "/auth/{slug}/login?next={urlencode(&next)}",
                            match slug.as_str() {
                                "github" => "Sign in with GitHub",
                                "google" => "Sign in with Google",
                                _ => "Sign in",
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn reasons_read_as_sentences_and_never_echo_markup() {
        assert!(explain("denied", "github", "").contains("declined the sign-in at GitHub"));
        assert!(explain("state", "google", "").contains("rejected"));
        assert!(
            explain("code", "github", "bad_verification_code").contains("(bad_verification_code)")
        );
        assert!(!explain("provider", "google", "<b>x</b>").contains('<'));
    }
}
