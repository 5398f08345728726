//! What operators see: job statistics, `/healthz` and `/metrics` (Prometheus text) over HTTP.
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use stylegram_engine::Mode;

use crate::app::App;
use crate::jobs::Jobs;

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
    fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
            Outcome::Duplicate => "duplicate",
        }
    }
}

/// Samples kept per mode for percentiles.
const WINDOW: usize = 1000;

#[derive(Default)]
struct Inner {
    /// Seconds from "Go" to the result, last [`WINDOW`] per mode.
    latency: HashMap<Mode, VecDeque<f64>>,
    /// The bot's own seconds per job: everything but waiting in line and the engine.
    overhead: VecDeque<f64>,
    outcomes: HashMap<(Mode, Outcome), u64>,
    /// (day number since 1970, jobs finished that day).
    today: (u64, u64),
}

/// Job statistics since the process started.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

fn day_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

fn push(window: &mut VecDeque<f64>, value: f64) {
    if window.len() == WINDOW {
        window.pop_front();
    }
    window.push_back(value);
}

/// The `q`-quantile (0..=1) of `values` by nearest rank; `None` when empty.
pub fn quantile(values: &VecDeque<f64>, q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a finished job: its outcome, and for results the latency and the bot's overhead.
    pub fn record(&self, mode: Mode, outcome: Outcome, latency: f64, overhead: f64) {
        let mut inner = self.lock();
        *inner.outcomes.entry((mode, outcome)).or_insert(0) += 1;
        let day = day_now();
        if inner.today.0 != day {
            inner.today = (day, 0);
        }
        inner.today.1 += 1;
        if outcome == Outcome::Done {
            push(inner.latency.entry(mode).or_default(), latency);
            push(&mut inner.overhead, overhead);
        }
    }

    /// (p50, p95) latency of `mode` in seconds.
    pub fn latency(&self, mode: Mode) -> (Option<f64>, Option<f64>) {
        let inner = self.lock();
        let empty = VecDeque::new();
        let values = inner.latency.get(&mode).unwrap_or(&empty);
        (quantile(values, 0.5), quantile(values, 0.95))
    }

    /// (p50, p95) of the bot's own time per job, in seconds.
    pub fn overhead(&self) -> (Option<f64>, Option<f64>) {
        let inner = self.lock();
        (
            quantile(&inner.overhead, 0.5),
            quantile(&inner.overhead, 0.95),
        )
    }

    /// Jobs finished today (UTC).
    pub fn jobs_today(&self) -> u64 {
        let inner = self.lock();
        if inner.today.0 == day_now() {
            inner.today.1
        } else {
            0
        }
    }

    fn outcomes(&self) -> Vec<((Mode, Outcome), u64)> {
        let mut v: Vec<_> = self.lock().outcomes.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_by_key(|((m, o), _)| (mode_name(*m), o.name()));
        v
    }
}

/// "fast" or "quality".
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Fast => "fast",
        Mode::Quality => "quality",
    }
}

fn seconds(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |s| format!("{s:.2} s"))
}

async fn depths(app: &App) -> [(Mode, usize, usize); 2] {
    app.jobs.depths().await.unwrap_or_else(|e| {
        tracing::warn!("cannot read the queue depths: {e:#}");
        [(Mode::Fast, 0, 0), (Mode::Quality, 0, 0)]
    })
}

/// The /stats text for operators.
pub async fn stats_text(app: &App) -> String {
    let mut text = String::from("Stylegram\n");
    for (mode, waiting, running) in depths(app).await {
        let (p50, p95) = app.stats.latency(mode);
        let _ = writeln!(
            text,
            "{}: {waiting} waiting, {running} running; p50 {}, p95 {}",
            mode_name(mode),
            seconds(p50),
            seconds(p95)
        );
    }
    let (o50, o95) = app.stats.overhead();
    let _ = writeln!(
        text,
        "bot overhead per job: p50 {}, p95 {}",
        seconds(o50),
        seconds(o95)
    );
    let _ = writeln!(text, "jobs today: {}", app.stats.jobs_today());
    match &app.jobs {
        Jobs::Local { .. } => {
            let _ = write!(text, "provider: {}", app.engine.provider());
        }
        Jobs::Shared(redis) => {
            let workers = redis.workers().await.unwrap_or_default();
            let _ = write!(text, "workers: {}", workers.len());
            for w in workers {
                let _ = write!(
                    text,
                    "\n  {}: {} ({} fast, {} quality)",
                    w.id, w.provider, w.fast, w.quality
                );
            }
        }
    }
    text
}

/// The Prometheus text exposition of the queue and the job statistics.
pub async fn metrics_text(app: &App) -> String {
    let mut out = String::new();
    out.push_str("# HELP stylegram_queue_jobs Jobs in each lane by state.\n# TYPE stylegram_queue_jobs gauge\n");
    for (mode, waiting, running) in depths(app).await {
        let m = mode_name(mode);
        let _ = writeln!(
            out,
            "stylegram_queue_jobs{{mode=\"{m}\",state=\"waiting\"}} {waiting}"
        );
        let _ = writeln!(
            out,
            "stylegram_queue_jobs{{mode=\"{m}\",state=\"running\"}} {running}"
        );
    }
    out.push_str("# HELP stylegram_jobs_total Finished jobs by mode and outcome.\n# TYPE stylegram_jobs_total counter\n");
    for ((mode, outcome), n) in app.stats.outcomes() {
        let _ = writeln!(
            out,
            "stylegram_jobs_total{{mode=\"{}\",outcome=\"{}\"}} {n}",
            mode_name(mode),
            outcome.name()
        );
    }
    out.push_str("# HELP stylegram_job_seconds Seconds from Go to the result (last 1000 jobs).\n# TYPE stylegram_job_seconds summary\n");
    for mode in [Mode::Fast, Mode::Quality] {
        let (p50, p95) = app.stats.latency(mode);
        for (q, v) in [("0.5", p50), ("0.95", p95)] {
            if let Some(v) = v {
                let _ = writeln!(
                    out,
                    "stylegram_job_seconds{{mode=\"{}\",quantile=\"{q}\"}} {v}",
                    mode_name(mode)
                );
            }
        }
    }
    let (o50, o95) = app.stats.overhead();
    out.push_str("# HELP stylegram_overhead_seconds The bot's own seconds per job (no queue, no engine).\n# TYPE stylegram_overhead_seconds summary\n");
    for (q, v) in [("0.5", o50), ("0.95", o95)] {
        if let Some(v) = v {
            let _ = writeln!(out, "stylegram_overhead_seconds{{quantile=\"{q}\"}} {v}");
        }
    }
    out
}

/// Serves `/healthz` and `/metrics` on `addr` until the process ends.
pub async fn serve(addr: SocketAddr, app: Arc<App>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("health and metrics on http://{}/", listener.local_addr()?);
    let metrics_app = app.clone();
    let router = Router::new()
        .route(
            "/healthz",
            get(move || {
                let app = app.clone();
                async move {
                    let serving = app.engine.models().iter().any(|m| m.active);
                    if serving {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "no model serving\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let app = metrics_app.clone();
                async move { metrics_text(&app).await }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("health server stopped: {e}");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: VecDeque<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.95), Some(95.0));
        assert_eq!(quantile(&VecDeque::new(), 0.5), None);
    }

    #[test]
    fn only_results_count_towards_latency() {
        let s = Stats::default();
        s.record(Mode::Fast, Outcome::Done, 1.0, 0.01);
        s.record(Mode::Fast, Outcome::Failed, 9.0, 9.0);
        assert_eq!(s.latency(Mode::Fast), (Some(1.0), Some(1.0)));
        assert_eq!(s.jobs_today(), 2);
    }
}
