//! The address's fragment: the files chosen (`#files=0,2`) and the test-only switches
//! (`#corrupt`, `#slowdisk`, `#fulldisk`, `#slowclose`, `#smallbuffer`).

use crate::web::rtc::Water;

/// The address's fragment as its `&`-separated parts: `#files=0,2` (the files chosen, see
/// `keep_selection_in_fragment`) and the test-only switches (`#corrupt`, `#files=1&slowclose`).
pub fn fragment_parts() -> Vec<String> {
    let hash = web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default();
    hash.trim_start_matches('#')
        .split('&')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The files a link asks for: `#files=0,2` downloads the first and third file only (a
/// reload keeps the choice, see `keep_selection_in_fragment`). Anything else means all.
pub fn selection_from_fragment(parts: &[String], count: usize) -> Vec<bool> {
    let Some(list) = parts.iter().find_map(|part| part.strip_prefix("files=")) else {
        return vec![true; count];
    };
    let mut selected = vec![false; count];
    for i in list
        .split(',')
        .filter_map(|n| n.trim().parse::<usize>().ok())
    {
        if i < count {
            selected[i] = true;
        }
    }
    selected
}

/// Writes the selection into the address (`#files=…`, nothing when every file is selected;
/// the fragment's other parts stay) without adding a history entry, so a reload or a copied
/// link keeps it.
pub fn keep_selection_in_fragment(selected: &[bool]) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let list: Vec<String> = selected
        .iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .map(|(i, _)| i.to_string())
        .collect();
    let mut parts: Vec<String> = fragment_parts()
        .into_iter()
        .filter(|part| !part.starts_with("files="))
        .collect();
    if list.len() != selected.len() {
        parts.insert(0, format!("files={}", list.join(",")));
    }
    let location = window.location();
    let mut url = location.pathname().unwrap_or_default() + &location.search().unwrap_or_default();
    if !parts.is_empty() {
        url = format!("{url}#{}", parts.join("&"));
    }
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// Test-only switches, after the room link.
pub struct TestSwitches {
    /// Test-only: serve corrupted blocks (`#corrupt` after the room link). Harmless: peers
    /// verify every piece and ban whoever sends bad ones.
    pub corrupt: bool,
    /// Test-only: the storage worker writes at 5 MB/s (`#slowdisk`), to show storage
    /// backpressure.
    pub slow_disk: bool,
    /// Test-only: the storage worker's disk fills up after 16 MiB (`#fulldisk`), to show
    /// what a failed write does.
    pub full_disk: bool,
    /// Test-only: closing and reopening the files takes 2 s longer (`#slowclose`), so a
    /// test can change the selection meanwhile.
    pub slow_close: bool,
    /// Test-only: channels pause at 512 KiB (`#smallbuffer`), so the swarm's requests
    /// overflow them and the pause and resume path runs.
    pub small_buffer: bool,
}

impl TestSwitches {
    pub fn from_fragment(fragment: &[String]) -> Self {
        let switch = |name: &str| fragment.iter().any(|part| part == name);
        Self {
            corrupt: switch("corrupt"),
            slow_disk: switch("slowdisk"),
            full_disk: switch("fulldisk"),
            slow_close: switch("slowclose"),
            small_buffer: switch("smallbuffer"),
        }
    }

    /// When channels pause and resume sending.
    pub fn water(&self) -> Water {
        if self.small_buffer {
            Water::SMALL
        } else {
            Water::NORMAL
        }
    }
}
