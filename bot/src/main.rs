//! `stylegram-bot`: the Telegram bot process.
use std::process::ExitCode;

use clap::Parser;
use stylegram_bot::Config;

/// Stylegram's Telegram bot: fast (AdaIN) and quality (Gatys) style transfer for photos. Needs
/// TELOXIDE_TOKEN; TELOXIDE_API_URL points it at another Bot API server (e.g. the fake one).
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
    if let Err(problem) = config.check() {
        eprintln!("stylegram-bot: {problem}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stylegram-bot: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(stylegram_bot::run(config, stylegram_bot::local_engine)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stylegram-bot: {e:#}");
            ExitCode::FAILURE
        }
    }
}
