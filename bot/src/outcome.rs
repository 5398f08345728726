//! How a job ended ([`Outcome`], and the [`JobEvent`] workers report), and the names modes and
//! outcomes go by in metrics and Redis keys. Shared by the queues and the operators' statistics,
//! so neither needs the other.
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
    /// The user's chat is gone (they blocked the bot): the job was dropped.
    Gone,
    /// Stopped by a shutdown: put back on the queue (Redis) or its user told to resend.
    Interrupted,
}

impl Outcome {
    /// The outcome's label in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
            Outcome::Duplicate => "duplicate",
            Outcome::Gone => "chat_gone",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// A finished job as the statistics record it (and as workers report it to the bot process).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobEvent {
    /// The job's lane.
    pub mode: Mode,
    /// How it ended.
    pub outcome: Outcome,
    /// Seconds from "Go" to the result.
    pub latency: f64,
    /// The bot's own seconds (not queue, not engine).
    pub overhead: f64,
    /// Where a delivered job's time went, stage by stage: download, the engine's stages
    /// (decode, style, network or optimise, encode), upload.
    #[serde(default)]
    pub stages: Vec<(String, f64)>,
}

/// "fast" or "quality".
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Fast => "fast",
        Mode::Quality => "quality",
    }
}
