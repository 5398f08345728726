//! Bot configuration from flags and environment variables.
use clap::Args;
use teloxide::Bot;

/// Everything the bot process is configured with.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Bot token from @BotFather.
    #[arg(long, env = "TELOXIDE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Bot API server URL (point it at the fake server for local demos and tests).
    #[arg(long, env = "TELOXIDE_API_URL")]
    pub api_url: Option<url::Url>,
}

impl Config {
    /// A Bot API client for this configuration.
    pub fn bot(&self) -> Bot {
        let bot = Bot::new(self.token.clone().unwrap_or_default());
        match &self.api_url {
            Some(url) => bot.set_api_url(url.clone()),
            None => bot,
        }
    }

    /// The Bot API address, for messages.
    pub fn api_url_display(&self) -> String {
        self.api_url
            .as_ref()
            .map_or_else(|| "https://api.telegram.org".to_owned(), |u| u.to_string())
    }
}
