//! The Telegram transport for Stylegram: long polling, commands and (to come) the style-transfer
//! conversation and job queue. Knows nothing of tensors.

pub mod config;
mod handlers;

pub use config::Config;

use teloxide::prelude::*;

/// Connects to the Bot API, checks the token, and serves updates until Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let bot = config.bot();
    let me = bot.get_me().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the Bot API at {}: {e}",
            config.api_url_display()
        )
    })?;
    tracing::info!(username = %me.username(), api = %config.api_url_display(), "bot connected, polling for updates");
    Dispatcher::builder(bot, handlers::tree())
        .enable_ctrlc_handler()
        .build()
        .dispatch()
        .await;
    Ok(())
}
