//! Calls to the Bot API that must get through: a user's result going out and their files coming
//! in. Each is retried: after a 429, once the `retry_after` Telegram gave has passed; after a 5xx,
//! a dropped connection or a timeout, with exponential backoff (0.5 s doubling to 8 s, with jitter);
//! all until a deadline. Final answers (403 blocked, 400 chat not found...) return at once.
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use teloxide::{ApiError, DownloadError, RequestError};

/// What to do after a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Telegram said when: wait this long, then retry.
    WaitFor(Duration),
    /// A transient fault: back off, then retry.
    Transient,
    /// A final answer: give up now.
    Final,
}

/// How a Bot API error should be treated.
pub fn classify(error: &RequestError) -> Verdict {
    match error {
        RequestError::RetryAfter(seconds) => Verdict::WaitFor(seconds.duration()),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            Verdict::Transient
        }
        // A 5xx comes back as an unknown API error carrying the status' words.
        RequestError::Api(ApiError::Unknown(description))
            if [
                "Internal Server Error",
                "Bad Gateway",
                "Service Unavailable",
                "Gateway Timeout",
            ]
            .iter()
            .any(|s| description.contains(s)) =>
        {
            Verdict::Transient
        }
        _ => Verdict::Final,
    }
}

/// How a download error should be treated: every download fault is a network one.
pub fn classify_download(error: &DownloadError) -> Verdict {
    match error {
        DownloadError::Network(_) | DownloadError::Io(_) => Verdict::Transient,
    }
}

/// The backoff before retry number `attempt` (1-based): 0.5 s doubling up to 8 s, plus up to a
/// quarter of it as jitter so that many retries do not arrive together.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.saturating_pow(attempt.saturating_sub(1).min(4));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// Runs `call` until it succeeds, its error is final, or `deadline` has passed; `what` names it
/// in the logs.
pub async fn with_retries<T, E, F, Fut>(
    what: &str,
    deadline: Duration,
    classify: impl Fn(&E) -> Verdict,
    mut call: F,
) -> Result<T, E>
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
        let wait = match classify(&error) {
            Verdict::Final => return Err(error),
            Verdict::WaitFor(wait) => wait,
            Verdict::Transient => {
                transient += 1;
                backoff(transient)
            }
        };
        if start.elapsed() + wait > deadline {
            tracing::warn!(
                what,
                attempt,
                "giving up after {:?}: {error}",
                start.elapsed()
            );
            return Err(error);
        }
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

    #[tokio::test(start_paused = true)]
    async fn transient_faults_are_retried_final_ones_are_not() {
        let calls = AtomicU32::new(0);
        let by_kind = |e: &&str| match *e {
            "429" => Verdict::WaitFor(Duration::from_secs(2)),
            "500" => Verdict::Transient,
            _ => Verdict::Final,
        };
        let start = tokio::time::Instant::now();
        let got = with_retries("test", Duration::from_secs(60), by_kind, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err("429"),
                1 => Err("500"),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(got, Ok(7));
        // The wait Telegram asked for, then one backoff: no more.
        assert!(start.elapsed() >= Duration::from_millis(2500));
        assert!(start.elapsed() <= Duration::from_millis(2625));

        calls.store(0, Ordering::SeqCst);
        let final_answer: Result<(), _> =
            with_retries("test", Duration::from_secs(60), by_kind, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("403")
            })
            .await;
        assert_eq!(final_answer, Err("403"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Past the deadline it gives up with the last error.
        let start = tokio::time::Instant::now();
        let late: Result<(), _> =
            with_retries("test", Duration::from_secs(10), by_kind, || async {
                Err("500")
            })
            .await;
        assert_eq!(late, Err("500"));
        assert!(start.elapsed() <= Duration::from_secs(10));
    }
}
