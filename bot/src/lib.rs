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
pub mod redis_queue;
pub mod session;
pub mod settings;
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

use crate::jobs::{JobStore, LocalJobs};
use crate::redis_queue::RedisQueue;
use crate::session::State;
use crate::settings::SettingsStore;

/// Connects to the Bot API (and Redis when configured), then starts the engines (`engine`), the
/// workers and the health server, and serves updates (long polling, or the webhook when
/// configured) until Ctrl-C.
pub async fn run(
    config: Config,
    engine: impl FnOnce(&Config) -> anyhow::Result<Arc<dyn Engine>>,
) -> anyhow::Result<()> {
    let (bot, me) = connect_bot(&config).await?;
    // The one place that knows which job store it built: the in-process one gets this
    // process's painters, the Redis one a reader of the worker processes' statistics.
    let (jobs, local, redis, settings, storage): (Arc<dyn JobStore>, _, _, _, _) =
        match &config.redis_url {
            None => {
                let local = Arc::new(LocalJobs::new(config.jobs_per_hour));
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
    let app = Arc::new(app::App::new(engine, jobs, settings, config.clone()));
    serve_ops(&app).await?;
    if let Some(local) = &local {
        worker::spawn_painters(&app, &bot, local);
    }
    if let Some(redis) = redis {
        tokio::spawn(worker::read_events(app.clone(), redis));
    }
    worker::spawn_position_updates(&app, &bot);
    if let Err(e) = bot.set_my_commands(handlers::Command::bot_commands()).await {
        tracing::warn!("cannot set the command list: {e}");
    }
    let mut dispatcher = Dispatcher::builder(bot.clone(), handlers::tree())
        .dependencies(dptree::deps![app, storage])
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text(
            "update handler failed",
        ))
        .enable_ctrlc_handler()
        .build();
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
    Ok(())
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
/// Bot API, starts the engines and the health server, and paints jobs from Redis until Ctrl-C.
pub async fn run_worker(
    config: Config,
    engine: impl FnOnce(&Config) -> anyhow::Result<Arc<dyn Engine>>,
) -> anyhow::Result<()> {
    let redis = connect_redis(&config, config.worker_name()).await?;
    let (bot, _) = connect_bot(&config).await?;
    let engine = engine(&config)?;
    let app = Arc::new(app::App::new(
        engine,
        redis.clone(),
        SettingsStore::default(),
        config.clone(),
    ));
    serve_ops(&app).await?;
    worker_process::serve(app, bot, redis).await
}
