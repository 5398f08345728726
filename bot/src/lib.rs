//! The Telegram transport for Stylegram: the conversation, the job queue and its workers, operator
//! commands, health and metrics. It reaches the engines only through [`stylegram_engine::Engine`]
//! and knows nothing of tensors.

pub mod app;
pub mod config;
pub mod delivery;
pub mod handlers;
pub mod i18n;
pub mod jobs;
pub mod ops;
pub mod outcome;
pub mod queue;
pub mod redact;
pub mod redis_queue;
pub mod results;
pub mod session;
pub mod settings;
pub mod shutdown;
pub mod stats;
pub mod store;
pub mod ui;
pub mod worker;
pub mod worker_process;

use std::sync::Arc;
use std::time::Duration;

pub use config::Config;

use stylegram_engine::Engine;
use teloxide::dispatching::dialogue::serializer::Json;
use teloxide::dispatching::dialogue::{ErasedStorage, InMemStorage, RedisStorage, Storage};
use teloxide::prelude::*;
use teloxide::update_listeners::webhooks;
use teloxide::utils::command::BotCommands;

use tokio_util::task::TaskTracker;

use crate::delivery::{Spool, Telegram};
use crate::jobs::{JobStore, LocalJobs};
use crate::redis_queue::RedisQueue;
use crate::session::State;
use crate::settings::SettingsStore;

/// Connects to the Bot API (and Redis when configured), then starts the engines (`engine`), the
/// workers and the health server, and serves updates (long polling, or the webhook when
/// configured) until SIGTERM or Ctrl-C; then stops taking updates and drains its jobs (see
/// [`worker::drain`]).
pub async fn run(
    config: Config,
    engine: impl FnOnce(&Config) -> anyhow::Result<Arc<dyn Engine>>,
) -> anyhow::Result<()> {
    run_until(config, engine, shutdown::on_signals()).await
}

/// [`run`], stopping gracefully when `stop` is cancelled instead of on signals.
pub async fn run_until(
    config: Config,
    engine: impl FnOnce(&Config) -> anyhow::Result<Arc<dyn Engine>>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let (bot, me) = connect_bot(&config).await?;
    let telegram = Telegram::new(bot.clone(), config.delivery_deadline());
    // The one place that knows which job store it built: the in-process one gets this
    // process's painters, the Redis one a reader of the worker processes' statistics.
    let (jobs, local, redis, settings, storage): (Arc<dyn JobStore>, _, _, _, _) =
        match &config.redis_url {
            None => {
                let dir = config.spool_dir();
                let spool = Spool::open(&dir).map_err(|e| {
                    anyhow::anyhow!("cannot keep undelivered results in {}: {e}", dir.display())
                })?;
                let local = Arc::new(LocalJobs::new(config.jobs_per_hour, Some(spool)));
                (
                    local.clone(),
                    Some(local),
                    None,
                    SettingsStore::default(),
                    InMemStorage::<State>::new().erase(),
                )
            }
            Some(_) => {
                let redis = connect_redis(&config, format!("bot-{}", std::process::id())).await?;
                let url = config.dialogue_redis_url().unwrap_or_default();
                let storage = RedisStorage::open(&url, Json)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot keep dialogues in Redis at {url}: {e}"))?;
                tracing::info!("scaled out: dialogues, settings and jobs in Redis");
                (
                    redis.clone(),
                    None,
                    Some(redis.clone()),
                    SettingsStore::in_redis(redis),
                    storage.erase(),
                )
            }
        };
    let storage: Arc<ErasedStorage<State>> = storage;
    let engine = engine(&config)?;
    let app = Arc::new(app::App::new(
        engine,
        telegram,
        jobs,
        settings,
        config.clone(),
    ));
    serve_ops(&app).await?;
    let painters = TaskTracker::new();
    if let Some(local) = &local {
        painters.spawn(results::resume(app.clone()));
        worker::spawn_painters(&app, local, &stop, &painters);
    }
    if let Some(redis) = redis {
        tokio::spawn(worker::read_events(app.clone(), redis));
    }
    worker::spawn_position_updates(&app);
    // The command list, through the retry rules, without holding up the start.
    let telegram = app.telegram.clone();
    tokio::spawn(async move {
        let commands = handlers::Command::bot_commands();
        let set = telegram
            .unscoped("setMyCommands", |api| api.set_my_commands(commands.clone()))
            .await;
        if let Err(e) = set {
            tracing::warn!("cannot set the command list: {e}");
        }
    });
    let mut dispatcher = Dispatcher::builder(bot.clone(), handlers::tree())
        .dependencies(dptree::deps![app.clone(), storage])
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text(
            "update handler failed",
        ))
        .build();
    stop_dispatcher_on(&stop, dispatcher.shutdown_token());
    match &config.webhook_url {
        Some(url) => {
            let mut options = webhooks::Options::new(config.webhook_addr, url.clone());
            if let Some(secret) = &config.webhook_secret {
                options = options.secret_token(secret.clone());
            }
            let listener = webhooks::axum(bot, options)
                .await
                .map_err(|e| anyhow::anyhow!("cannot set up the webhook at {url}: {e}"))?;
            tracing::info!(username = %me.username(), %url, "bot connected, receiving updates by webhook");
            dispatcher
                .dispatch_with_listener(
                    listener,
                    LoggingErrorHandler::with_custom_text("webhook listener failed"),
                )
                .await;
        }
        None => {
            tracing::info!(username = %me.username(), api = %config.api_url_display(), "bot connected, polling for updates");
            dispatcher.dispatch().await;
        }
    }
    // The dispatcher returns once the stop signal came and the updates in hand were handled.
    stop.cancel();
    worker::drain(&app, local.as_deref(), &painters).await;
    tracing::info!("stopped");
    Ok(())
}

/// Stops the dispatcher (no more updates taken) once `stop` is cancelled.
fn stop_dispatcher_on(
    stop: &tokio_util::sync::CancellationToken,
    token: teloxide::dispatching::ShutdownToken,
) {
    let stop = stop.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        // The dispatcher may not have started yet: ask until it has.
        loop {
            match token.shutdown() {
                Ok(done) => {
                    done.await;
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
}

/// A Bot API client that answered `getMe`, with the bot's account.
async fn connect_bot(config: &Config) -> anyhow::Result<(Bot, teloxide::types::Me)> {
    let bot = config.bot();
    let me = bot.get_me().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the Bot API at {}: {e}",
            config.api_url_display()
        )
    })?;
    Ok((bot, me))
}

/// Starts `/healthz` and `/metrics` on the configured address.
async fn serve_ops(app: &Arc<app::App>) -> anyhow::Result<()> {
    let addr = app.config.http_addr;
    ops::serve(addr, app.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve health and metrics on {addr}: {e}"))
}

async fn connect_redis(config: &Config, me: String) -> anyhow::Result<Arc<RedisQueue>> {
    let url = config
        .redis_url
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("STYLEGRAM_REDIS_URL is not set"))?;
    let redis = RedisQueue::connect(
        url.as_str(),
        me,
        config.jobs_per_hour,
        Duration::from_secs(config.worker_lease_seconds),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot use Redis at {url}: {e:#}"))?;
    Ok(Arc::new(redis))
}

/// The `stylegram-bot worker` process (needs `STYLEGRAM_REDIS_URL`): connects to Redis and the
/// Bot API, starts the engines and the health server, and paints jobs from Redis until SIGTERM or
/// Ctrl-C (then drains, see [`worker_process::serve`]).
pub async fn run_worker(
    config: Config,
    engine: impl FnOnce(&Config) -> anyhow::Result<Arc<dyn Engine>>,
) -> anyhow::Result<()> {
    let stop = shutdown::on_signals();
    let redis = connect_redis(&config, config.worker_name()).await?;
    let (bot, _) = connect_bot(&config).await?;
    let engine = engine(&config)?;
    let app = Arc::new(app::App::new(
        engine,
        Telegram::new(bot, config.delivery_deadline()),
        redis.clone(),
        SettingsStore::default(),
        config.clone(),
    ));
    serve_ops(&app).await?;
    worker_process::serve(app, redis, stop).await
}
