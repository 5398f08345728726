//! `bot-load`: many users at once against the real bot process, through the fake Bot API. Each user
//! sends a photo, picks a painting and presses Go (fast mode, or quality mode with `--mode quality`);
//! the table says whether everyone got a result, how long it took, the bot's peak memory and its own
//! overhead per job (from /metrics).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use fake_bot_api::probe::{cpu_name, memory_mb, metric};
use fake_bot_api::{EventKind, FakeBotApi, FakeUser};

/// Load test for stylegram-bot: N users send a photo at once and ask for one mode.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The bot binary.
    #[arg(long, default_value = "target/release/stylegram-bot")]
    bot: PathBuf,
    /// Users sending at once.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// The photo every user sends.
    #[arg(long, default_value = "../shared/data/test/content/koala.jpg")]
    photo: PathBuf,
    /// Fast-mode workers in the bot.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Longer side of results.
    #[arg(long, default_value_t = 512)]
    max_side: u32,
    /// The mode every user picks.
    #[arg(long, value_enum, default_value_t = LoadMode::Fast)]
    mode: LoadMode,
    /// Give up on a user after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Where the Markdown table goes.
    #[arg(long, default_value = "docs/bot-benchmark.md")]
    out: PathBuf,
}

/// The mode the users ask for.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum LoadMode {
    /// ⚡ Fast: the AdaIN network.
    Fast,
    /// 🎨 Quality: the Gatys optimisation (the bot's quality size and iterations).
    Quality,
}

impl LoadMode {
    /// The stages the bot's `stylegram_stage_seconds` metric splits a job of this mode into.
    fn stages(self) -> &'static [&'static str] {
        match self {
            LoadMode::Fast => &["download", "decode", "style", "network", "encode", "upload"],
            LoadMode::Quality => &["download", "decode", "optimise", "encode", "upload"],
        }
    }

    /// What the caption of this mode's final result holds (as `bot-soak` checks it too).
    fn result_caption(self) -> &'static str {
        match self {
            LoadMode::Fast => "⚡",
            LoadMode::Quality => "🎨 Quality",
        }
    }

    /// The mode's label in the bot's `stylegram_stage_seconds` metric.
    fn metric_label(self) -> &'static str {
        match self {
            LoadMode::Fast => "fast",
            LoadMode::Quality => "quality",
        }
    }
}

async fn one_user(
    mut user: FakeUser,
    photo: Vec<u8>,
    mode: LoadMode,
    timeout: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    user.photo(photo, 0, 0);
    let gallery = user.wait(timeout, |e| e.kind == EventKind::Photo).await?;
    user.press(&gallery, "1. ");
    let mut options = user.wait(timeout, |e| e.kind == EventKind::Text).await?;
    if mode == LoadMode::Quality {
        user.press(&options, "Quality");
        options = user
            .wait(timeout, |e| {
                e.kind == EventKind::Edit && e.text.contains("🎨 Quality")
            })
            .await?;
    }
    user.press(&options, "Go");
    user.wait(timeout, |e| {
        e.kind == EventKind::Photo && e.text.contains(mode.result_caption())
    })
    .await?;
    Some(start.elapsed())
}

/// The bot's /metrics once it has counted `answered` finished jobs of `mode` (a job counts just
/// after its result is sent, so right after the last user's result it may be missing), or after
/// 10 s as they are.
async fn metrics_after(url: &str, mode: LoadMode, answered: usize) -> anyhow::Result<String> {
    let done = format!(
        "stylegram_jobs_total{{mode=\"{}\",outcome=\"done\"}}",
        mode.metric_label()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = reqwest::get(url).await?.text().await?;
        let counted = metric(&text, &done).unwrap_or(0.0) as usize;
        if counted >= answered || Instant::now() > deadline {
            return Ok(text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let photo = std::fs::read(&cli.photo).with_context(|| format!("{}", cli.photo.display()))?;
    let api = FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut bot = Command::new(&cli.bot)
        .env("TELOXIDE_TOKEN", "123:LOAD")
        .env("TELOXIDE_API_URL", &api.url)
        .env("STYLEGRAM_HTTP_ADDR", http.to_string())
        .env("STYLEGRAM_FAST_WORKERS", cli.workers.to_string())
        .env("STYLEGRAM_MAX_SIDE", cli.max_side.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", cli.bot.display()))?;
    let state = api.state.clone();
    if !fake_bot_api::eventually(Duration::from_secs(60), move || {
        state.calls("getupdates") > 0
    })
    .await
    {
        let _ = bot.kill();
        bail!("the bot never started polling");
    }
    let timeout = Duration::from_secs(cli.timeout);
    let start = Instant::now();
    let tasks: Vec<_> = (0..cli.users)
        .map(|i| {
            let user = api.user(100_000 + i as i64, "en");
            tokio::spawn(one_user(user, photo.clone(), cli.mode, timeout))
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        if let Ok(Some(t)) = task.await {
            times.push(t.as_secs_f64());
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let metrics = metrics_after(&format!("http://{http}/metrics"), cli.mode, times.len()).await?;
    let rss = memory_mb(bot.id(), "VmHWM:");
    let _ = bot.kill();
    let _ = bot.wait();
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    let (p50, p95) = if times.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (pick(0.5), pick(0.95))
    };
    let overhead50 = metric(&metrics, "stylegram_overhead_seconds{quantile=\"0.5\"}");
    let overhead95 = metric(&metrics, "stylegram_overhead_seconds{quantile=\"0.95\"}");
    let fmt_ms = |v: Option<f64>| v.map_or("–".to_owned(), |s| format!("{:.1}", s * 1000.0));
    let table = format!(
        "| users | answered | wall (s) | per user p50 / p95 (s) | bot peak RSS (MiB) | bot overhead per job p50 / p95 (ms) |\n\
         |---|---|---|---|---|---|\n\
         | {} | {} | {wall:.1} | {p50:.1} / {p95:.1} | {} | {} / {} |\n",
        cli.users,
        times.len(),
        rss.map_or("–".to_owned(), |r| format!("{r:.0}")),
        fmt_ms(overhead50),
        fmt_ms(overhead95),
    );
    // Where a job's time went, from the bot's own split in /metrics.
    let stage_names = cli.mode.stages();
    let mut stages = String::from("| stage | p50 (ms) | p95 (ms) |\n|---|---|---|\n");
    for stage in stage_names {
        let q = |q: &str| {
            metric(
                &metrics,
                &format!(
                    "stylegram_stage_seconds{{mode=\"{}\",stage=\"{stage}\",quantile=\"{q}\"}}",
                    cli.mode.metric_label()
                ),
            )
        };
        stages.push_str(&format!(
            "| {stage} | {} | {} |\n",
            fmt_ms(q("0.5")),
            fmt_ms(q("0.95"))
        ));
    }
    let table = format!(
        "{table}\nWhere a job's time went (the bot's `stylegram_stage_seconds`):\n\n{stages}"
    );
    print!("{table}");
    let doc = format!(
        "# Bot load benchmark\n\n\
         Made by `bot-load --users {} --workers {} --max-side {} --mode {}` (`make bench-bot` \
         runs it with its defaults): the real `stylegram-bot` process against the fake Bot API \
         server, every user sending `{}` at once, picking the first painting and pressing Go in \
         {} mode. \
         \"Bot overhead\" is the bot's own time per job from /metrics: from a worker taking the \
         job to the result being sent, minus the engine's time (fetching the photo from the file \
         cache or the Bot API, building the request, sending the result). Machine: {}.\n\n{table}",
        cli.users,
        cli.workers,
        cli.max_side,
        cli.mode.metric_label(),
        cli.photo.display(),
        cli.mode.metric_label(),
        cpu_name(),
    );
    std::fs::write(&cli.out, doc).with_context(|| format!("{}", cli.out.display()))?;
    println!("wrote {}", cli.out.display());
    if times.len() < cli.users {
        bail!(
            "{} of {} users got no result",
            cli.users - times.len(),
            cli.users
        );
    }
    Ok(())
}
