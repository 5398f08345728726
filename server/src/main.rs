//! `stylegram-bot`: the Telegram bot process. It wires the transport (`stylegram-bot`) to the
//! engines on this machine (`stylegram-local-engine`); everything else lives in those libraries.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stylegram_bot::Config;
use stylegram_bot::redact::Redactor;
use stylegram_engine::Engine;
use stylegram_local_engine::{LocalConfig, LocalEngine};

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

/// The engines on this machine, as configured.
fn local_engine(config: &Config) -> anyhow::Result<Arc<dyn Engine>> {
    #[cfg(feature = "quality")]
    let vgg = config
        .vgg
        .clone()
        .unwrap_or_else(stylegram_quality::paths::vgg_weights);
    #[cfg(not(feature = "quality"))]
    let vgg = config.vgg.clone().unwrap_or_default();
    let engine = LocalEngine::open(LocalConfig {
        models_dir: config.models_dir.clone(),
        active_model: config.active_model.clone(),
        styles_dir: config.styles_dir.clone(),
        device: config.device.clone(),
        threads: config.threads,
        fast_max_side: config.max_side,
        quality_size: config.quality_side,
        quality_iterations: config.quality_iterations,
        quality_time_budget: config.quality_seconds.map(Duration::from_secs_f64),
        vgg,
        preview_interval: Duration::from_secs_f64(config.progress_seconds),
        limits: stylegram_imaging::ImageLimits::default(),
        warm_up: true,
    })
    .map_err(|e| anyhow::anyhow!("cannot start the engines: {e}"))?;
    Ok(Arc::new(engine))
}

fn main() -> ExitCode {
    let Cli { command, config } = Cli::parse();
    // Before any thread starts: quality jobs run on worker threads, whose own glibc arenas would map
    // a square photo's largest activations afresh in every evaluation (docs/gatys.md).
    #[cfg(feature = "quality")]
    let main_heap = !matches!(config.device.to_ascii_lowercase().as_str(), "cuda" | "gpu")
        && stylegram_quality::heap::share_main_heap();
    // Nothing this process prints shows the token, whatever a Bot API server answers.
    let redactor = Redactor::new(config.token.iter().map(|t| t.secret().to_owned()));
    redactor.init_logging();
    #[cfg(feature = "quality")]
    if main_heap {
        tracing::info!(
            "glibc malloc: every thread on the main heap (set MALLOC_ARENA_MAX to choose otherwise)"
        );
    }
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
        runtime.block_on(stylegram_bot::run_worker(config, local_engine))
    } else {
        runtime.block_on(stylegram_bot::run(config, local_engine))
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stylegram-bot: {}", redactor.clean(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
