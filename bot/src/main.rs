//! `stylegram-bot`: the Telegram bot process.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stylegram_bot::Config;

/// Stylegram's Telegram bot: fast (AdaIN) and quality (Gatys) style transfer for photos. Needs
/// TELOXIDE_TOKEN; TELOXIDE_API_URL points it at another Bot API server (e.g. the fake one).
/// Without a subcommand it runs the bot (and, unless STYLEGRAM_REDIS_URL is set, paints the jobs
/// itself).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Role>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Role {
    /// Paint jobs from Redis (STYLEGRAM_REDIS_URL) and send the results through the Bot API; run
    /// one per GPU machine beside one bot process.
    Worker,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Cli { command, config } = Cli::parse();
    if let Err(problem) = config.check() {
        eprintln!("stylegram-bot: {problem}");
        return ExitCode::from(2);
    }
    let worker = matches!(command, Some(Role::Worker));
    if worker && config.redis_url.is_none() {
        eprintln!(
            "stylegram-bot: `worker` takes jobs from Redis; set STYLEGRAM_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
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
    let served = if worker {
        runtime.block_on(stylegram_bot::run_worker(
            config,
            stylegram_bot::local_engine,
        ))
    } else {
        runtime.block_on(stylegram_bot::run(config, stylegram_bot::local_engine))
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stylegram-bot: {e:#}");
            ExitCode::FAILURE
        }
    }
}
