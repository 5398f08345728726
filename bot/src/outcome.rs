//! How a job ended, and the names modes and outcomes go by in metrics and Redis keys. Shared by the
//! queues and the operators' statistics, so neither needs the other.
use serde::{Deserialize, Serialize};
use stylegram_engine::Mode;

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// A result was sent.
    Done,
    /// The user cancelled.
    Cancelled,
    /// The engine or the Bot API failed.
    Failed,
    /// Another worker had already delivered it (a retried job in Redis mode).
    Duplicate,
}

impl Outcome {
    /// The outcome's label in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
            Outcome::Duplicate => "duplicate",
        }
    }
}

/// "fast" or "quality".
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Fast => "fast",
        Mode::Quality => "quality",
    }
}
