//! When to try a Bot API call again: after a 429, once the `retry_after` Telegram gave has passed;
//! after a 5xx, a dropped connection or a timeout, with exponential backoff (0.5 s doubling to 8 s,
//! with jitter); all until a deadline. Final answers (403 blocked, 400 chat not found, message not
//! modified...) end the call at once.
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use teloxide::{ApiError, DownloadError, RequestError};

/// Why a call is tried again, as counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 429 Too Many Requests.
    TooManyRequests,
    /// A 5xx answer.
    ServerError,
    /// A timeout, a dropped connection or an answer that is not the Bot API's JSON.
    Network,
}

impl Fault {
    /// The fault's label in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Fault::TooManyRequests => "429",
            Fault::ServerError => "5xx",
            Fault::Network => "network",
        }
    }
}

/// What to do after a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Telegram said when: wait this long, then retry.
    WaitFor(Duration),
    /// A transient fault: back off, then retry.
    Transient(Fault),
    /// The chat is gone: the user blocked the bot, deleted their account, or the chat does not
    /// exist. Nothing more should be sent there.
    Gone,
    /// Another final answer: give up now.
    Final,
}

/// The words of the 5xx statuses, which teloxide reports as unknown API errors.
const SERVER_ERRORS: [&str; 4] = [
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
];

/// How a Bot API error should be treated.
pub fn classify(error: &RequestError) -> Verdict {
    match error {
        RequestError::RetryAfter(seconds) => Verdict::WaitFor(seconds.duration()),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            Verdict::Transient(Fault::Network)
        }
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::ChatNotFound
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel,
        ) => Verdict::Gone,
        RequestError::Api(ApiError::Unknown(description)) => {
            if SERVER_ERRORS.iter().any(|s| description.contains(s)) {
                Verdict::Transient(Fault::ServerError)
            } else if description.starts_with("Forbidden") {
                Verdict::Gone
            } else {
                Verdict::Final
            }
        }
        _ => Verdict::Final,
    }
}

/// How a download error should be treated: every download fault is a network one.
pub fn classify_download(error: &DownloadError) -> Verdict {
    match error {
        DownloadError::Network(_) | DownloadError::Io(_) => Verdict::Transient(Fault::Network),
    }
}

/// The backoff before retry number `attempt` (1-based): 0.5 s doubling up to 8 s, plus up to a
/// quarter of it as jitter so that many retries do not arrive together.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.saturating_pow(attempt.saturating_sub(1).min(4));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// How a call that was retried ended.
#[derive(Debug)]
pub enum Ended<E> {
    /// A final answer (or a gone chat, `gone`).
    Final {
        /// The answer.
        error: E,
        /// Whether it says the chat is gone.
        gone: bool,
    },
    /// Still failing when the deadline came.
    GaveUp(E),
}

/// Runs `call` until it succeeds, its error is final, or `deadline` (from now) has passed; `what`
/// names it in the logs and `retried` hears of each retry.
pub async fn with_retries<T, E, F, Fut>(
    what: &str,
    deadline: Duration,
    classify: impl Fn(&E) -> Verdict,
    retried: impl Fn(Fault),
    mut call: F,
) -> Result<T, Ended<E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let (mut attempt, mut transient) = (0, 0);
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        attempt += 1;
        let (wait, fault) = match classify(&error) {
            Verdict::Final => return Err(Ended::Final { error, gone: false }),
            Verdict::Gone => return Err(Ended::Final { error, gone: true }),
            Verdict::WaitFor(wait) => (wait, Fault::TooManyRequests),
            Verdict::Transient(fault) => {
                transient += 1;
                (backoff(transient), fault)
            }
        };
        if start.elapsed() + wait > deadline {
            tracing::warn!(
                what,
                attempt,
                "giving up after {:?}: {error}",
                start.elapsed()
            );
            return Err(Ended::GaveUp(error));
        }
        retried(fault);
        tracing::info!(what, attempt, "retrying in {wait:?}: {error}");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_to_a_cap_with_bounded_jitter() {
        for (attempt, base) in [(1, 500), (2, 1000), (3, 2000), (5, 8000), (9, 8000)] {
            let wait = backoff(attempt).as_millis();
            assert!((base..=base * 5 / 4).contains(&wait), "{attempt}: {wait}");
        }
    }

    #[test]
    fn blocked_and_missing_chats_are_gone_server_errors_are_transient() {
        let api = |e: ApiError| classify(&RequestError::Api(e));
        assert_eq!(api(ApiError::BotBlocked), Verdict::Gone);
        assert_eq!(api(ApiError::ChatNotFound), Verdict::Gone);
        assert_eq!(
            api(ApiError::Unknown("Forbidden: bot can't initiate".into())),
            Verdict::Gone
        );
        assert_eq!(
            api(ApiError::Unknown("Bad Gateway".into())),
            Verdict::Transient(Fault::ServerError)
        );
        assert_eq!(api(ApiError::MessageNotModified), Verdict::Final);
        assert_eq!(
            classify(&RequestError::RetryAfter(
                teloxide::types::Seconds::from_seconds(3)
            )),
            Verdict::WaitFor(Duration::from_secs(3))
        );
    }

    fn by_kind(e: &&str) -> Verdict {
        match *e {
            "429" => Verdict::WaitFor(Duration::from_secs(2)),
            "500" => Verdict::Transient(Fault::ServerError),
            "403" => Verdict::Gone,
            _ => Verdict::Final,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_faults_are_retried_final_ones_are_not() {
        let calls = AtomicU32::new(0);
        let retries = std::sync::Mutex::new(Vec::new());
        let start = tokio::time::Instant::now();
        let got = with_retries(
            "test",
            Duration::from_secs(60),
            by_kind,
            |f| retries.lock().unwrap().push(f),
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err("429"),
                    1 => Err("500"),
                    _ => Ok(7),
                }
            },
        )
        .await;
        assert_eq!(got.ok(), Some(7));
        assert_eq!(
            *retries.lock().unwrap(),
            [Fault::TooManyRequests, Fault::ServerError]
        );
        // The wait Telegram asked for, then one backoff: no more.
        assert!(start.elapsed() >= Duration::from_millis(2500));
        assert!(start.elapsed() <= Duration::from_millis(2625));

        calls.store(0, Ordering::SeqCst);
        let blocked: Result<(), _> = with_retries(
            "test",
            Duration::from_secs(60),
            by_kind,
            |_| {},
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("403")
            },
        )
        .await;
        assert!(matches!(blocked, Err(Ended::Final { gone: true, .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Past the deadline it gives up with the last error.
        let start = tokio::time::Instant::now();
        let late: Result<(), _> = with_retries(
            "test",
            Duration::from_secs(10),
            by_kind,
            |_| {},
            || async { Err("500") },
        )
        .await;
        assert!(matches!(late, Err(Ended::GaveUp("500"))));
        assert!(start.elapsed() <= Duration::from_secs(10));
    }
}
