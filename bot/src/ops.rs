//! What operators see: `/stats` text, `/healthz` and `/metrics` (Prometheus text) over HTTP.
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use stylegram_engine::Mode;

use crate::app::App;
use crate::outcome::mode_name;
use crate::stats::Quantiles;

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
    match app.jobs.workers().await {
        None => {
            let _ = write!(text, "provider: {}", app.engine.placement());
        }
        Some(workers) => {
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

/// A summary's p50 and p95 lines for `name` with `labels` (those that have a value).
fn quantile_lines(out: &mut String, name: &str, labels: &str, (p50, p95): Quantiles) {
    for (q, v) in [("0.5", p50), ("0.95", p95)] {
        if let Some(v) = v {
            let _ = writeln!(out, "{name}{{{labels},quantile=\"{q}\"}} {v}");
        }
    }
}

/// `value` as a Prometheus label value (backslash, quote and newline escaped).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition of the queue and the job statistics.
pub async fn metrics_text(app: &App) -> String {
    let mut out = String::new();
    let placement = app.engine.placement();
    out.push_str("# HELP stylegram_engine_info Where this process paints: fast mode's execution provider and model, quality mode's device.\n# TYPE stylegram_engine_info gauge\n");
    let _ = writeln!(
        out,
        "stylegram_engine_info{{fast_provider=\"{}\",model=\"{}\",quality_device=\"{}\"}} 1",
        label(&placement.fast),
        label(&placement.model),
        label(&placement.quality)
    );
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
        let labels = format!("mode=\"{}\"", mode_name(mode));
        quantile_lines(
            &mut out,
            "stylegram_job_seconds",
            &labels,
            app.stats.latency(mode),
        );
    }
    out.push_str("# HELP stylegram_stage_seconds Where delivered jobs' time went: download, decode, style statistics, network or optimisation, encode, upload (last 1000 per stage).\n# TYPE stylegram_stage_seconds summary\n");
    for ((mode, stage), quantiles) in app.stats.stages() {
        let labels = format!("mode=\"{}\",stage=\"{stage}\"", mode_name(mode));
        quantile_lines(&mut out, "stylegram_stage_seconds", &labels, quantiles);
    }
    let counters = app.telegram.counters();
    out.push_str("# HELP stylegram_api_retries_total Bot API calls tried again, by the fault that came back.\n# TYPE stylegram_api_retries_total counter\n");
    for (fault, n) in counters.retries() {
        let _ = writeln!(out, "stylegram_api_retries_total{{fault=\"{fault}\"}} {n}");
    }
    for (name, help, counter) in [
        (
            "stylegram_api_skipped_total",
            "Previews and progress edits skipped while Telegram asked the bot to slow down, or failed once.",
            &counters.skipped,
        ),
        (
            "stylegram_api_gave_up_total",
            "Calls that had to get through and still failed at the delivery deadline.",
            &counters.gave_up,
        ),
        (
            "stylegram_chats_gone_total",
            "Chats that answered blocked or not found; their work was dropped.",
            &counters.gone,
        ),
    ] {
        let n = counter.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}"
        );
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
