//! [`Telegram`]: the one outbound path to the Bot API. Every call the bot and the workers make goes
//! through it:
//!
//! - sends are paced by teloxide's `Throttle` (one message a second per chat, 30 a second overall),
//!   so Telegram's limits are respected before it has to say so;
//! - calls that must get through ([`Importance::Must`]: results, refusals, "your job failed",
//!   galleries, answers to buttons) are retried through 429s, 5xx and dropped connections until the
//!   configured deadline (see [`super::retry`]);
//! - calls that may be dropped ([`Importance::MayDrop`]: previews, progress and position edits,
//!   chat actions) are tried once, and skipped while Telegram asks the bot to slow down;
//! - a chat that answers "blocked" or "not found" is remembered as gone: nothing more is sent there
//!   until its user writes again, and the workers drop its jobs.
use std::collections::HashSet;
use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::{Limits, Settings};
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::FileId;
use teloxide::{DownloadError, RequestError};
use tokio::time::Instant;

use super::retry::{Ended, Fault, classify, classify_download, with_retries};

/// How long a call that may be dropped is waited for.
const MAY_DROP_WAIT: Duration = Duration::from_secs(5);

/// The paced Bot API client that calls are made on.
pub type Api = Throttle<Bot>;

/// How much a call matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// Retried until the deadline: results, refusals, failure messages, galleries, answers.
    Must,
    /// Tried once, skipped under pressure: previews, progress and position edits, chat actions.
    MayDrop,
}

/// Why a call did not go through.
#[derive(Debug)]
pub enum CallError {
    /// The chat is gone (the user blocked the bot, or it does not exist); nothing was sent.
    Gone,
    /// A call that may be dropped was skipped, or failed once.
    Skipped,
    /// Telegram refused it for good (a bad request, a message not modified...).
    Refused(RequestError),
    /// It still failed when the deadline came.
    GaveUp(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Gone => write!(f, "the chat is gone (blocked or deleted)"),
            CallError::Skipped => write!(f, "skipped under pressure"),
            CallError::Refused(e) => write!(f, "refused: {e}"),
            CallError::GaveUp(e) => write!(f, "gave up at the deadline: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// What the outbound path counted since the process started, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Retries after a 429.
    pub retries_429: AtomicU64,
    /// Retries after a 5xx.
    pub retries_5xx: AtomicU64,
    /// Retries after a timeout or dropped connection.
    pub retries_network: AtomicU64,
    /// Calls that may be dropped and were.
    pub skipped: AtomicU64,
    /// Calls that must get through and did not by the deadline.
    pub gave_up: AtomicU64,
    /// Chats found gone (blocked, deleted).
    pub gone: AtomicU64,
}

impl Counters {
    fn retried(&self, fault: Fault) {
        let counter = match fault {
            Fault::TooManyRequests => &self.retries_429,
            Fault::ServerError => &self.retries_5xx,
            Fault::Network => &self.retries_network,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Retries by fault, as (label, count).
    pub fn retries(&self) -> [(&'static str, u64); 3] {
        [
            (Fault::TooManyRequests, &self.retries_429),
            (Fault::ServerError, &self.retries_5xx),
            (Fault::Network, &self.retries_network),
        ]
        .map(|(f, c)| (f.name(), c.load(Ordering::Relaxed)))
    }
}

struct Shared {
    counters: Counters,
    gone: Mutex<HashSet<i64>>,
    /// Until when Telegram asked the bot to slow down (the last 429's `retry_after`).
    slow_until: Mutex<Option<Instant>>,
}

/// The one outbound path to the Bot API (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct Telegram {
    api: Api,
    raw: Bot,
    deadline: Duration,
    shared: Arc<Shared>,
}

impl Telegram {
    /// Paces and retries calls on `bot`; calls that must get through are retried for `deadline`.
    /// Needs a tokio runtime (the pacing runs as a task).
    pub fn new(bot: Bot, deadline: Duration) -> Self {
        // Our retries see every 429 (and count it); Throttle still freezes the chat it hit.
        let settings = Settings::default().limits(Limits::default()).no_retry();
        Telegram {
            api: Throttle::spawn_with_settings(bot.clone(), settings),
            raw: bot,
            deadline,
            shared: Arc::new(Shared {
                counters: Counters::default(),
                gone: Mutex::new(HashSet::new()),
                slow_until: Mutex::new(None),
            }),
        }
    }

    /// What was counted so far.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Whether `chat` answered that it is gone (and its user has not written since).
    pub fn is_gone(&self, chat: ChatId) -> bool {
        lock(&self.shared.gone).contains(&chat.0)
    }

    /// The user of `chat` wrote: the chat is reachable again.
    pub fn reachable(&self, chat: ChatId) {
        lock(&self.shared.gone).remove(&chat.0);
    }

    fn mark_gone(&self, chat: ChatId) {
        if lock(&self.shared.gone).insert(chat.0) {
            self.shared.counters.gone.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                chat = chat.0,
                "the chat is gone (blocked or deleted); its work is dropped"
            );
        }
    }

    fn under_pressure(&self) -> bool {
        lock(&self.shared.slow_until).is_some_and(|t| Instant::now() < t)
    }

    fn note(&self, error: &RequestError) {
        if let RequestError::RetryAfter(wait) = error {
            *lock(&self.shared.slow_until) = Some(Instant::now() + wait.duration());
        }
    }

    /// Makes the call `make` builds for `chat`, as its `importance` says.
    pub async fn call<R, T>(
        &self,
        what: &'static str,
        chat: ChatId,
        importance: Importance,
        make: impl Fn(&Api) -> R,
    ) -> Result<T, CallError>
    where
        R: IntoFuture<Output = Result<T, RequestError>>,
    {
        if self.is_gone(chat) {
            return Err(CallError::Gone);
        }
        match importance {
            Importance::MayDrop => self.try_once(what, chat, make).await,
            Importance::Must => self.retried(what, Some(chat), make).await,
        }
    }

    /// A call that must get through and concerns no chat (the command list, a file's path).
    pub async fn unscoped<R, T>(
        &self,
        what: &'static str,
        make: impl Fn(&Api) -> R,
    ) -> Result<T, CallError>
    where
        R: IntoFuture<Output = Result<T, RequestError>>,
    {
        self.retried(what, None, make).await
    }

    /// Runs the call with the retry rules until the deadline; a gone answer marks `chat` gone.
    async fn retried<R, T>(
        &self,
        what: &'static str,
        chat: Option<ChatId>,
        make: impl Fn(&Api) -> R,
    ) -> Result<T, CallError>
    where
        R: IntoFuture<Output = Result<T, RequestError>>,
    {
        let counters = &self.shared.counters;
        with_retries(
            what,
            self.deadline,
            |e: &RequestError| {
                self.note(e);
                classify(e)
            },
            |fault| counters.retried(fault),
            || make(&self.api).into_future(),
        )
        .await
        .map_err(|ended| self.ended(what, chat, ended))
    }

    /// A call that must get through, for `chat`.
    pub async fn must<R, T>(
        &self,
        what: &'static str,
        chat: ChatId,
        make: impl Fn(&Api) -> R,
    ) -> Result<T, CallError>
    where
        R: IntoFuture<Output = Result<T, RequestError>>,
    {
        self.call(what, chat, Importance::Must, make).await
    }

    /// A call that may be dropped, for `chat`; its failure is counted and otherwise ignored.
    pub async fn may_drop<R, T>(&self, what: &'static str, chat: ChatId, make: impl Fn(&Api) -> R)
    where
        R: IntoFuture<Output = Result<T, RequestError>>,
    {
        let _ = self.call(what, chat, Importance::MayDrop, make).await;
    }

    async fn try_once<R, T>(
        &self,
        what: &'static str,
        chat: ChatId,
        make: impl Fn(&Api) -> R,
    ) -> Result<T, CallError>
    where
        R: IntoFuture<Output = Result<T, RequestError>>,
    {
        if self.under_pressure() {
            return Err(self.skipped());
        }
        match tokio::time::timeout(MAY_DROP_WAIT, make(&self.api).into_future()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.note(&error);
                match classify(&error) {
                    super::retry::Verdict::Gone => {
                        self.mark_gone(chat);
                        Err(CallError::Gone)
                    }
                    super::retry::Verdict::Final => Err(CallError::Refused(error)),
                    _ => {
                        tracing::debug!(what, "skipped: {error}");
                        Err(self.skipped())
                    }
                }
            }
            Err(_) => Err(self.skipped()),
        }
    }

    /// Counts a call that may be dropped and was.
    fn skipped(&self) -> CallError {
        self.shared.counters.skipped.fetch_add(1, Ordering::Relaxed);
        CallError::Skipped
    }

    fn ended(&self, what: &str, chat: Option<ChatId>, ended: Ended<RequestError>) -> CallError {
        match (ended, chat) {
            (Ended::Final { gone: true, .. }, Some(chat)) => {
                self.mark_gone(chat);
                CallError::Gone
            }
            (Ended::Final { error, .. }, _) => {
                tracing::debug!(what, "refused: {error}");
                CallError::Refused(error)
            }
            (Ended::GaveUp(error), _) => {
                self.shared.counters.gave_up.fetch_add(1, Ordering::Relaxed);
                CallError::GaveUp(error.to_string())
            }
        }
    }

    /// The bytes of a user's file, or `Ok(None)` when it is over `limit` bytes or Telegram says it
    /// is too big to serve (over 20 MB); getFile and the download are retried like any call that
    /// must get through.
    pub async fn file(&self, file_id: &str, limit: u64) -> Result<Option<Vec<u8>>, CallError> {
        let file = match self
            .unscoped("getFile", |api| api.get_file(FileId(file_id.to_owned())))
            .await
        {
            Ok(file) => file,
            Err(CallError::Refused(e)) if e.to_string().contains("file is too big") => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if u64::from(file.size) > limit && file.size != u32::MAX {
            return Ok(None);
        }
        let counters = &self.shared.counters;
        let bytes = with_retries(
            "download",
            self.deadline,
            classify_download,
            |f| counters.retried(f),
            || async {
                let mut bytes = Vec::new();
                self.raw.download_file(&file.path, &mut bytes).await?;
                Ok::<_, DownloadError>(bytes)
            },
        )
        .await
        .map_err(|ended| match ended {
            Ended::Final { error, .. } | Ended::GaveUp(error) => {
                self.shared.counters.gave_up.fetch_add(1, Ordering::Relaxed);
                CallError::GaveUp(error.to_string())
            }
        })?;
        Ok(Some(bytes))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
