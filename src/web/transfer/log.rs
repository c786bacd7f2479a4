//! The transfer log shown under the panel.

use std::collections::VecDeque;

/// The last [`TransferLog::KEEP`] lines: a tab may stay open for days, and the page shows
/// only the latest few.
#[derive(Default)]
pub struct TransferLog(VecDeque<String>);

impl TransferLog {
    pub const KEEP: usize = 200;

    pub fn push(&mut self, line: String) {
        if self.0.len() == Self::KEEP {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    /// The latest `n` lines, newest first.
    pub fn latest(&self, n: usize) -> Vec<String> {
        self.0.iter().rev().take(n).cloned().collect()
    }
}
