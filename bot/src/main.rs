//! `stylegram-bot`: the Telegram bot process.
use std::process::ExitCode;

use clap::Parser;
use stylegram_bot::Config;

/// Stylegram's Telegram bot. Needs TELOXIDE_TOKEN; TELOXIDE_API_URL points it at another Bot API server.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = Cli::parse().config;
    if config.token.as_deref().is_none_or(str::is_empty) {
        eprintln!(
            "stylegram-bot: TELOXIDE_TOKEN is not set; get a token from @BotFather and run `TELOXIDE_TOKEN=... make run`"
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stylegram-bot: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(stylegram_bot::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stylegram-bot: {e:#}");
            ExitCode::FAILURE
        }
    }
}
