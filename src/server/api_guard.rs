//! Hardening in front of the server functions (`/api/…`):
//! - bodies are read with a hard size limit, so an oversized or endless upload gets 413
//!   before any handler runs (dioxus would otherwise panic on a failed body read);
//! - a request body that does not decode into the function's arguments is the client's
//!   fault: dioxus 0.7 answers 500 for it, we answer 400 with the decoder's explanation.

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
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
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
