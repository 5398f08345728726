//! The `stylegram-bot worker` process (Redis mode): takes jobs from Redis, paints them and answers
//! the users through the Bot API. It holds a lease in Redis; if it dies, its jobs go back to the
//! head of their lanes and another worker paints them (see [`crate::redis_queue`]). On SIGTERM or
//! Ctrl-C it stops taking jobs, lets running ones finish within the grace period, and puts the
//! rest back on the queue.
use std::sync::Arc;
use std::time::Duration;

use stylegram_engine::Mode;
use teloxide::prelude::*;
use teloxide::types::MessageId;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::i18n::{Msg, text};
use crate::outcome::JobEvent;
use crate::outcome::Outcome;
use crate::queue::Ticket;
use crate::redis_queue::{MAX_ATTEMPTS, ModelOrders, RedisQueue, WorkerInfo};
use crate::worker::{drain, run_and_measure};

/// How often a running job's cancel flag is read from Redis.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Serves jobs from `redis` until `stop`, then drains (see [`drain`]) and hands this worker's
/// unfinished jobs back to the queue.
pub async fn serve(
    app: Arc<App>,
    redis: Arc<RedisQueue>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let requeued = redis.requeue_orphans(true).await?;
    if requeued > 0 {
        tracing::warn!(
            requeued,
            "requeued jobs left by an earlier run under this worker id"
        );
    }
    let info = WorkerInfo {
        id: redis.me().to_owned(),
        fast: app.config.fast_workers,
        quality: app.config.quality_workers,
        provider: app.engine.placement().to_string(),
    };
    redis.heartbeat(&info).await?;
    tokio::spawn(keep_lease(redis.clone(), info));
    let orders = Arc::new(Mutex::new(redis.model_orders().await?));
    orders.lock().await.model = None; // serve what operators last chose, on the first job
    let tracker = TaskTracker::new();
    for (mode, count) in [
        (Mode::Fast, app.config.fast_workers),
        (Mode::Quality, app.config.quality_workers),
    ] {
        for _ in 0..count {
            tracker.spawn(take_jobs(
                app.clone(),
                redis.clone(),
                mode,
                orders.clone(),
                stop.clone(),
            ));
        }
    }
    tracing::info!(worker = redis.me(), "worker ready, taking jobs from Redis");
    stop.cancelled().await;
    drain(&app, None, &tracker).await;
    let requeued = redis.requeue_orphans(true).await?;
    tracing::info!(
        requeued,
        "worker stopped; its unfinished jobs are back on the queue"
    );
    Ok(())
}

/// Renews the lease every third of its length and requeues the jobs of workers whose lease ran
/// out.
async fn keep_lease(redis: Arc<RedisQueue>, info: WorkerInfo) {
    let period = redis.lease() / 3;
    loop {
        tokio::time::sleep(period).await;
        if let Err(e) = redis.heartbeat(&info).await {
            tracing::error!("cannot renew the worker's lease: {e:#}");
            continue;
        }
        if let Err(e) = redis.requeue_orphans(false).await {
            tracing::warn!("cannot look for stopped workers: {e:#}");
        }
    }
}

async fn take_jobs(
    app: Arc<App>,
    redis: Arc<RedisQueue>,
    mode: Mode,
    orders: Arc<Mutex<ModelOrders>>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let (job, attempt) = match redis.take(mode).await {
            Ok(Some(taken)) => taken,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!("cannot take a job from Redis: {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if stop.is_cancelled() {
            // Taken as the shutdown began: left in this worker's list, requeued on exit.
            return;
        }
        tracing::info!(job = job.id, attempt, worker = redis.me(), "took a job");
        follow_orders(&app, &redis, &orders).await;
        let ticket = Arc::new(Ticket::new(job));
        let event = if attempt > MAX_ATTEMPTS {
            give_up(&app, &ticket).await
        } else {
            if attempt > 1 {
                remove_old_preview(&app, &redis, &ticket).await;
            }
            let watcher = tokio::spawn(watch_cancel(redis.clone(), ticket.clone()));
            let event = run_and_measure(&app, &ticket).await;
            watcher.abort();
            event
        };
        if event.outcome == Outcome::Interrupted {
            // Left in this worker's list: it goes back to the head of its lane on exit.
            continue;
        }
        app.jobs.release(&ticket).await;
        app.stats.record(&event);
        if let Err(e) = redis.report(&event).await {
            tracing::warn!("cannot report the job's statistics: {e:#}");
        }
        if let Err(e) = redis.finish(&ticket.job).await {
            tracing::error!(job = ticket.job.id, "cannot mark the job finished: {e:#}");
        }
    }
}

/// Switches model or revalidates the model folder when an operator asked since the last job.
async fn follow_orders(app: &App, redis: &RedisQueue, seen: &Mutex<ModelOrders>) {
    let wanted = match redis.model_orders().await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("cannot read the operators' model orders: {e:#}");
            return;
        }
    };
    let mut seen = seen.lock().await;
    if wanted.reloads != seen.reloads {
        let engine = app.engine.clone();
        match tokio::task::spawn_blocking(move || engine.reload()).await {
            Ok(Ok(changed)) => tracing::info!(?changed, "models revalidated on request"),
            Ok(Err(e)) => tracing::error!("reload failed: {e}"),
            Err(e) => tracing::error!("reload failed: {e}"),
        }
        seen.reloads = wanted.reloads;
    }
    if let Some(model) = wanted
        .model
        .clone()
        .filter(|m| Some(m) != seen.model.as_ref())
    {
        let engine = app.engine.clone();
        let name = model.clone();
        match tokio::task::spawn_blocking(move || engine.use_model(&name)).await {
            Ok(Ok(())) => tracing::info!(%model, "serving the model operators chose"),
            Ok(Err(e)) => tracing::error!(%model, "cannot serve the chosen model: {e}"),
            Err(e) => tracing::error!(%model, "cannot serve the chosen model: {e}"),
        }
        seen.model = Some(model);
    }
}

/// A job that was started too many times (it stops its workers): the user is told, nothing runs.
async fn give_up(app: &App, ticket: &Ticket) -> JobEvent {
    let job = &ticket.job;
    tracing::error!(
        job = job.id,
        "started {MAX_ATTEMPTS} times without finishing; given up"
    );
    let chat = ChatId(job.chat);
    if let Err(e) = app
        .telegram
        .must("failed", chat, |api| {
            api.send_message(chat, text(job.lang, Msg::Failed))
        })
        .await
    {
        tracing::warn!(job = job.id, "cannot tell the user: {e}");
    }
    JobEvent {
        mode: job.draft.mode,
        outcome: Outcome::Failed,
        latency: ticket.submitted.elapsed().as_secs_f64(),
        overhead: 0.0,
        stages: Vec::new(),
    }
}

/// Deletes the preview an earlier, interrupted attempt at this job left in the chat.
async fn remove_old_preview(app: &App, redis: &RedisQueue, ticket: &Ticket) {
    if let Ok(Some(message)) = redis.take_preview(ticket.job.id).await {
        let chat = ChatId(ticket.job.chat);
        app.telegram
            .may_drop("preview", chat, |api| {
                api.delete_message(chat, MessageId(message))
            })
            .await;
    }
}

/// Raises the ticket's cancel flag once the user cancels the job through the bot process.
async fn watch_cancel(redis: Arc<RedisQueue>, ticket: Arc<Ticket>) {
    loop {
        if redis.is_cancelled(ticket.job.id).await.unwrap_or(false) {
            ticket.cancel();
            return;
        }
        tokio::time::sleep(CANCEL_POLL).await;
    }
}
