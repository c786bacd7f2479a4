//! Browser-only code: the one place that touches web-sys. A thin shell around the pure swarm
//! core: it carries out the core's outputs with browser APIs and feeds back what
//! happened.
//!
//! - [`crypto`]: SHA-256 through SubtleCrypto, and hashing files into a manifest.
//! - [`signaling`]: the hub's WebSocket ([`signaling::SignalingSocket`]).
//! - [`rtc`]: one RTCPeerConnection with its data channel.
//! - [`disk`], [`cache`]: a receiver's copy in OPFS files, and what IndexedDB remembers
//!   about it for resuming.
//! - [`transfer`]: the event loop that drives a `Swarm` with all of the above.

pub mod cache;
pub mod crypto;
pub mod disk;
pub mod rtc;
pub mod signaling;
pub mod transfer;

use wasm_bindgen::JsCast;

/// The page's origin, e.g. `http://127.0.0.1:8080`.
pub fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// Milliseconds on a monotonic clock.
pub fn now_ms() -> f64 {
    thread_local! {
        // Looked up once: the shell reads the clock several times per message, and each
        // `window().performance()` is two calls into JavaScript.
        static PERFORMANCE: Option<web_sys::Performance> =
            web_sys::window().and_then(|w| w.performance());
    }
    PERFORMANCE.with(|p| {
        p.as_ref()
            .map(|p| p.now())
            .unwrap_or_else(js_sys::Date::now)
    })
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: f64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                resolve.unchecked_ref(),
                ms.clamp(0.0, 2_147_483_647.0) as i32,
            );
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// A readable message from a JavaScript error value.
pub fn js_error(e: wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Reads `[start, end)` of a file (or any blob) without loading the rest.
pub async fn read_slice(blob: &web_sys::Blob, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let part = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(js_error)?;
    let buffer = wasm_bindgen_futures::JsFuture::from(part.array_buffer())
        .await
        .map_err(js_error)?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    pace_collector(bytes.len());
    Ok(bytes)
}

/// How long after the page opened [`pace_collector`] paces V8's collector ([`now_ms`]
/// counts from the page's navigation).
const PACE_FOR_MS: f64 = 20_000.0;

/// Paces V8's collector to the buffers a transfer throws away, in the page's first seconds.
/// Every data channel message and every file slice read arrives in a new `ArrayBuffer`
/// that is garbage once copied into wasm. V8 defers full collections while a page loads
/// (its load-time mode lasts up to 7 s), and a download that starts at once takes almost no
/// JavaScript heap, so nothing else prompts a collection: on the reference machine a
/// 10 MB/s download piled up about 100 MiB of dead buffers in the receiving renderer by
/// its first full collection, 7–9 s after the link opened, and that decided the renderer's
/// peak memory. Afterwards V8 collected them every 30 MiB or so by itself. So for the first
/// [`PACE_FOR_MS`] a short-lived array of about half the discarded bytes is allocated,
/// which makes the young-generation collector run every few megabytes and free the young
/// dead buffers with it. Not for longer: every young collection also grows V8's young
/// generation a little, and pacing through a whole 4 GiB download grew it from about 5 to
/// 30 MiB, which cost more than it saved. docs/benchmarks.md, P4.
pub fn pace_collector(discarded_bytes: usize) {
    if now_ms() > PACE_FOR_MS {
        return;
    }
    // 4-byte slots; the array is dead at once, so it costs an allocation and nothing at
    // collection time. At most 16384 slots (64 KiB), a regular young object.
    let slots = (discarded_bytes / 8).min(16 * 1024);
    let _ = js_sys::Array::new_with_length(slots as u32);
}

/// Asks before the tab closes (while this tab is the only seeder), or stops asking.
pub fn warn_before_unload(on: bool) {
    type Handler = wasm_bindgen::closure::Closure<dyn FnMut(web_sys::BeforeUnloadEvent)>;
    thread_local! {
        // One handler for the page's lifetime, however often the warning goes on and off.
        static HANDLER: Handler = Handler::new(|e: web_sys::BeforeUnloadEvent| {
            e.prevent_default();
            e.set_return_value("Closing this tab stops sharing the files.");
        });
    }
    let Some(w) = web_sys::window() else { return };
    if on {
        HANDLER.with(|h| w.set_onbeforeunload(Some(h.as_ref().unchecked_ref())));
    } else {
        w.set_onbeforeunload(None);
    }
}

/// Starts a download of `url` as `name` (an anchor with `download`, clicked).
pub fn save_url(url: &str, name: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Ok(a) = document.create_element("a")
        && let Ok(a) = a.dyn_into::<web_sys::HtmlAnchorElement>()
    {
        a.set_href(url);
        a.set_download(name);
        a.click();
    }
}
