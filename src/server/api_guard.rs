//! Hardening in front of the server functions (`/api/…`):
//! - bodies are read with a hard size limit, so an oversized or endless upload gets 413
//!   before any handler runs (dioxus would otherwise panic on a failed body read);
//! - a request body that does not decode into the function's arguments is the client's
//!   fault: dioxus 0.7 answers 500 for it, we answer 400 with the decoder's explanation.

use super::client_addr::{client_ip, limit_key};
use crate::protocol::limits::MAX_REQUEST_BODY_BYTES;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What dioxus puts in front of argument-decoding errors.
const DECODE_ERROR_PREFIX: &str = "error deserializing server function";
/// Error bodies we inspect are small; anything larger is passed through untouched.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// A JSON error in the shape the dioxus client decodes (`message`, `code`).
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "message": message.into(), "code": status.as_u16() });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub async fn guard(request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/auth/")
        && request.uri().path().ends_with("/login")
        && let Some(refusal) = signin_quota(&request)
    {
        return refusal;
    }
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    if request.method() == axum::http::Method::POST
        && request.uri().path() == "/api/rooms"
        && let Some(refusal) = room_quota(&request)
    {
        return refusal;
    }
    if request.method() == axum::http::Method::POST
        && request.uri().path().ends_with("/completed")
        && let Some(refusal) = completion_quota(&request)
    {
        return refusal;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_REQUEST_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request is larger than the {MAX_REQUEST_BODY_BYTES}-byte limit"),
            );
        }
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY_BYTES).await else {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    let decode_error = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .filter(|e| e.starts_with(DECODE_ERROR_PREFIX));
    match decode_error {
        Some(error) => {
            let detail = error.split_once(": ").map_or(error.as_str(), |(_, d)| d);
            error_response(
                StatusCode::BAD_REQUEST,
                format!("the request is malformed: {detail}"),
            )
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// Most addresses an [`HourlyQuota`] keeps counts for (about 100 bytes each).
const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// How often one address may do something per hour (create a room, start a sign-in): a
/// sliding window per IP.
#[derive(Default)]
pub struct HourlyQuota {
    inner: std::sync::Mutex<QuotaTimes>,
}

#[derive(Default)]
struct QuotaTimes {
    by_ip: std::collections::HashMap<std::net::IpAddr, std::collections::VecDeque<u64>>,
    /// The map is pruned when it grows past this: twice what was left after the last
    /// pruning (at least 10,000, at most MAX_TRACKED_ADDRESSES). What is left is at most
    /// three quarters of that cap, so pruning costs O(1) per call on average.
    prune_at: usize,
}

impl HourlyQuota {
    /// Records one at `now` (seconds) unless `ip` already had `limit` in the last hour.
    pub fn allow(&self, ip: std::net::IpAddr, now: u64, limit: usize) -> bool {
        let mut q = self.inner.lock().expect("quota lock");
        // Forget addresses whose whole window has passed, so the map stays small. A flood
        // from nearly MAX_TRACKED_ADDRESSES distinct addresses within the hour (an IPv6
        // range has millions of /64s) resets the counts instead of growing memory.
        if q.by_ip.len() > q.prune_at.max(10_000) {
            q.by_ip
                .retain(|_, times| times.back().is_some_and(|&t| now < t + 3600));
            if q.by_ip.len() > MAX_TRACKED_ADDRESSES / 4 * 3 {
                q.by_ip.clear();
            }
            q.prune_at = (2 * q.by_ip.len()).min(MAX_TRACKED_ADDRESSES);
        }
        let times = q.by_ip.entry(ip).or_default();
        while times.front().is_some_and(|&t| now >= t + 3600) {
            times.pop_front();
        }
        if times.len() >= limit {
            return false;
        }
        times.push_back(now);
        true
    }

    /// Addresses with counts kept (for tests).
    pub fn tracked(&self) -> usize {
        self.inner.lock().expect("quota lock").by_ip.len()
    }
}

fn room_quota(request: &Request) -> Option<Response> {
    let state = request.extensions().get::<super::state::AppState>()?;
    let limit = state.settings.rooms_per_ip_per_hour;
    over_quota(request, state, &state.room_quota, limit, "rooms")
}

/// Each sign-in started keeps a pending session for 10 minutes; without a limit a flood of
/// them would fill the in-memory store (and its cap) and lock everyone out of signing in.
fn signin_quota(request: &Request) -> Option<Response> {
    let state = request.extensions().get::<super::state::AppState>()?;
    let limit = state.settings.signins_per_ip_per_hour;
    over_quota(request, state, &state.signin_quota, limit, "sign-ins")
}

/// Anyone with a room's link can get tickets, and each ticket's report adds a row to the
/// room's "completed" count until the room is purged: without a limit, a loop of `/join` and
/// `/completed` would grow the table without bound.
fn completion_quota(request: &Request) -> Option<Response> {
    let state = request.extensions().get::<super::state::AppState>()?;
    let limit = state.settings.completions_per_ip_per_hour;
    over_quota(
        request,
        state,
        &state.completion_quota,
        limit,
        "reports of finished downloads",
    )
}

/// Counts the request against its client's address in `quota` (`client_addr`: the
/// forwarded one behind a trusted proxy, an IPv6 client's /64); a 429 naming `what` once
/// over `limit`.
fn over_quota(
    request: &Request,
    state: &super::state::AppState,
    quota: &HourlyQuota,
    limit: usize,
    what: &str,
) -> Option<Response> {
    let addr = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()?;
    let trusted = &state.settings.trusted_proxies;
    let client = client_ip(addr.0.ip(), request.headers(), trusted);
    let now = super::rooms::now_secs().max(0) as u64;
    (!quota.allow(limit_key(client), now, limit)).then(|| {
        error_response(
            StatusCode::TOO_MANY_REQUESTS,
            format!("at most {limit} {what} per hour from one address; try again later"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::HourlyQuota;

    #[test]
    fn the_room_quota_is_a_sliding_hour_per_address() {
        let quota = HourlyQuota::default();
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(quota.allow(a, 1000, 2));
        assert!(quota.allow(a, 1500, 2));
        assert!(!quota.allow(a, 2000, 2), "third within the hour");
        assert!(quota.allow(b, 2000, 2), "other addresses are not affected");
        assert!(
            quota.allow(a, 4600, 2),
            "the first creation left the window"
        );
        assert!(!quota.allow(a, 4700, 2));
    }

    /// A flood of distinct addresses within one hour does not grow the map past its cap.
    #[test]
    fn the_quota_map_stays_bounded_under_a_flood_of_addresses() {
        let quota = HourlyQuota::default();
        // One /64 each, as `limit_key` counts IPv6 clients.
        let ip = |i: u32| {
            let net =
                std::net::Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0);
            std::net::IpAddr::V6(net)
        };
        for i in 0..(super::MAX_TRACKED_ADDRESSES as u32 + 20_000) {
            assert!(quota.allow(ip(i), 1000, 1));
        }
        let tracked = quota.tracked();
        assert!(tracked <= super::MAX_TRACKED_ADDRESSES + 1, "{tracked}");
    }
}
