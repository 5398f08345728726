//! `bot-soak`: scripted users against the real bot processes through a fake Bot API that misbehaves
//! (429s, 5xx, late answers, dropped connections), while the processes are restarted and killed.
//! Once in-process (the bot restarted mid-run with SIGTERM), once in Redis mode (two workers, one
//! killed with SIGKILL and started again, the bot restarted). It counts what every user got and
//! writes a table: results delivered, lost, duplicated, refusals, latency per mode, retries by
//! fault, memory.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use fake_bot_api::probe::{cpu_name, memory_mb, metric};
use fake_bot_api::redis::RedisServer;
use fake_bot_api::{Event, EventKind, FakeBotApi, FakeUser, FaultRule};

/// Soak test: scripted users, API faults and process restarts, in-process and in Redis mode.
#[derive(Parser, Clone)]
#[command(version)]
struct Cli {
    /// The bot binary.
    #[arg(long, default_value = "target/release/stylegram-bot")]
    bot: PathBuf,
    /// Users, arriving evenly over `--seconds` (each does one job, resending it when told to).
    #[arg(long, default_value_t = 240)]
    users: usize,
    /// Seconds over which users arrive, per mode.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// The modes to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "in-process,redis"
    )]
    modes: Vec<Setup>,
    /// Faults the fake Bot API answers with (see `fake-bot-api --help`).
    #[arg(
        long = "fault",
        value_name = "RULE",
        default_values = ["*=429:1@0.05", "*=502@0.02", "*=delay:12000@0.004", "*=drop@0.005"]
    )]
    faults: Vec<FaultRule>,
    /// Seed of the users' choices and of the faults.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The photos the users send (every .jpg, .jpeg and .png in the folder).
    #[arg(long, default_value = "../shared/data/test/content")]
    photos: PathBuf,
    /// The style pictures the users send as their own style.
    #[arg(long, default_value = "../shared/data/test/style")]
    styles: PathBuf,
    /// Where the Markdown report goes.
    #[arg(long, default_value = "docs/reliability.md")]
    out: PathBuf,
}

/// How the bot is deployed for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Setup {
    /// One bot process that paints its own jobs.
    InProcess,
    /// A bot process and two `stylegram-bot worker` processes around a private redis-server.
    Redis,
}

/// What a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Fast,
    Quality,
    /// A file that is not a usable picture: the bot must refuse it.
    Hostile,
}

/// How a user's request ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// A result arrived this many seconds after the last Go.
    Delivered(f64),
    /// The hostile file was refused with a message.
    Refused,
    /// Told the job failed or could not be delivered (counted, not lost).
    ToldFailed,
    /// Nothing usable arrived.
    Lost,
}

/// One user's script and what came of it.
struct Report {
    kind: Kind,
    ending: Ending,
    /// Times the user started over (told the bot restarted, or a button went out of date).
    resent: u32,
    /// Results in the chat at the end (more than one is a duplicate).
    results: usize,
}

/// A tiny deterministic generator for the users' choices.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Results delivered since the watched process started (it counts as warmed up after
/// [`WARM_RESULTS`] of them, [`WARM_QUALITY`] in quality mode).
#[derive(Default)]
struct Served {
    all: AtomicUsize,
    quality: AtomicUsize,
}

/// Results, all modes and quality mode, after which the watched process counts as warmed up.
const WARM_RESULTS: usize = 25;
const WARM_QUALITY: usize = 3;

impl Served {
    fn count(&self, kind: Kind) {
        self.all.fetch_add(1, Ordering::SeqCst);
        if kind == Kind::Quality {
            self.quality.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn reset(&self) {
        self.all.store(0, Ordering::SeqCst);
        self.quality.store(0, Ordering::SeqCst);
    }

    fn warm(&self) -> bool {
        self.all.load(Ordering::SeqCst) >= WARM_RESULTS
            && self.quality.load(Ordering::SeqCst) >= WARM_QUALITY
    }
}

/// A user's plan, drawn before the run.
#[derive(Clone)]
struct Plan {
    kind: Kind,
    photo: Vec<u8>,
    /// Their own style picture, or a painting's number in the gallery.
    style: Result<Vec<u8>, usize>,
}

/// Patience per step (a quality job behind others, through faults, restarts and slow answers).
const STEP: Duration = Duration::from_secs(300);

/// Words of the bot's messages (English) that the users react to.
const GALLERY: &str = "Choose a style";
const OPTIONS: &str = "Settings for this picture";
const OUT_OF_DATE: &str = "out of date";
const RESTARTING: &str = "restarting";

fn is_result(e: &Event) -> bool {
    e.kind == EventKind::Photo && (e.text.contains("⚡ Fast") || e.text.contains("🎨 Quality"))
}

fn says(e: &Event, words: &str) -> bool {
    e.text.contains(words)
}

/// One try at the whole conversation; `None` means "start over".
async fn attempt(user: &mut FakeUser, plan: &Plan) -> Option<Ending> {
    user.photo(plan.photo.clone(), 0, 0);
    if plan.kind == Kind::Hostile {
        let answer = user
            .wait(STEP, |e| {
                e.kind == EventKind::Text && (says(e, "can't read") || says(e, "too large"))
                    || says(e, GALLERY)
            })
            .await;
        return Some(match answer {
            Some(e) if !says(&e, GALLERY) => Ending::Refused,
            _ => Ending::Lost,
        });
    }
    let gallery = user
        .wait(STEP, |e| e.kind == EventKind::Photo && says(e, GALLERY))
        .await?;
    match &plan.style {
        Ok(own) => {
            user.press_data(gallery.message_id, gallery.button("My own style")?);
            user.wait(STEP, |e| {
                says(e, "Send the picture") || says(e, OUT_OF_DATE)
            })
            .await
            .filter(|e| !says(e, OUT_OF_DATE))?;
            user.photo(own.clone(), 0, 0);
        }
        Err(n) => {
            let label = format!("{n}. ");
            let data = gallery.button(&label).or_else(|| gallery.button("1. "))?;
            user.press_data(gallery.message_id, data);
        }
    }
    let mut options = user
        .wait(STEP, |e| says(e, OPTIONS) || says(e, OUT_OF_DATE))
        .await
        .filter(|e| says(e, OPTIONS))?;
    if plan.kind == Kind::Quality {
        user.press_data(options.message_id, options.button("Quality")?);
        options = user
            .wait(STEP, |e| {
                e.kind == EventKind::Edit && says(e, "🎨 Quality") || says(e, OUT_OF_DATE)
            })
            .await
            .filter(|e| !says(e, OUT_OF_DATE))?;
    }
    let go = Instant::now();
    user.press_data(options.message_id, options.button("Go")?);
    let end = user
        .wait(STEP, |e| {
            is_result(e)
                || says(e, RESTARTING)
                || says(e, OUT_OF_DATE)
                || says(e, "went wrong")
                || says(e, "did not accept")
        })
        .await;
    match end {
        Some(e) if is_result(&e) => Some(Ending::Delivered(go.elapsed().as_secs_f64())),
        Some(e) if says(&e, RESTARTING) || says(&e, OUT_OF_DATE) => None,
        Some(_) => Some(Ending::ToldFailed),
        None => Some(Ending::Lost),
    }
}

/// A user's whole visit: tries until an ending (at most three times).
async fn visit(mut user: FakeUser, plan: Plan, served: Arc<Served>) -> Report {
    let mut resent = 0;
    let ending = loop {
        match attempt(&mut user, &plan).await {
            Some(ending) => {
                if matches!(ending, Ending::Delivered(_)) {
                    served.count(plan.kind);
                }
                break ending;
            }
            None if resent < 3 => resent += 1,
            None => break Ending::Lost,
        }
    };
    if ending == Ending::Lost || (plan.kind == Kind::Hostile && ending != Ending::Refused) {
        let seen: Vec<String> = user
            .history()
            .iter()
            .map(|e| format!("{:?} {}", e.kind, e.text))
            .collect();
        eprintln!(
            "user {} ({:?}) ended {ending:?}; the chat: {seen:?}",
            user.id, plan.kind
        );
    }
    // Anything late (a duplicate) shows up within a few seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    Report {
        kind: plan.kind,
        ending,
        resent,
        results: user.history().iter().filter(|e| is_result(e)).count(),
    }
}

/// Pictures in a folder, as bytes.
fn pictures(dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| stylegram_imaging::Format::from_path(p).is_some())
        .collect();
    if paths.is_empty() {
        bail!("no .jpg, .jpeg or .png pictures in {}", dir.display());
    }
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
        .collect()
}

/// Files the bot must refuse: bytes that are no picture, a web page, and a PNG header that claims
/// 65535×65535 pixels (a decompression bomb).
fn hostile_files() -> Vec<Vec<u8>> {
    let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bomb.extend_from_slice(&65535u32.to_be_bytes());
    bomb.extend_from_slice(&65535u32.to_be_bytes());
    bomb.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    vec![
        b"these bytes are not a picture".repeat(40),
        b"<!doctype html><html><body>not a photo</body></html>".to_vec(),
        bomb,
    ]
}

fn plans(cli: &Cli) -> anyhow::Result<Vec<Plan>> {
    let (photos, styles) = (pictures(&cli.photos)?, pictures(&cli.styles)?);
    let hostile = hostile_files();
    let mut dice = Dice(cli.seed | 1);
    Ok((0..cli.users)
        .map(|_| {
            let kind = if dice.chance(0.04) {
                Kind::Hostile
            } else if dice.chance(0.2) {
                Kind::Quality
            } else {
                Kind::Fast
            };
            let photo = match kind {
                Kind::Hostile => hostile[dice.below(hostile.len())].clone(),
                _ => photos[dice.below(photos.len())].clone(),
            };
            let style = if dice.chance(0.3) {
                Ok(styles[dice.below(styles.len())].clone())
            } else {
                Err(1 + dice.below(6))
            };
            Plan { kind, photo, style }
        })
        .collect())
}

/// One `stylegram-bot` process (the bot, or a worker) and where its metrics are.
struct Process {
    child: Child,
    metrics: String,
    role: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Retries and skips counted by the processes, summed over every process that ran.
#[derive(Default, Debug)]
struct Counted(HashMap<String, f64>);

const COUNTERS: [&str; 5] = [
    "stylegram_api_retries_total{fault=\"429\"}",
    "stylegram_api_retries_total{fault=\"5xx\"}",
    "stylegram_api_retries_total{fault=\"network\"}",
    "stylegram_api_skipped_total",
    "stylegram_api_gave_up_total",
];

impl Counted {
    /// Adds what `process` counted so far (read just before it stops).
    async fn read(&mut self, process: &Process) {
        let Ok(response) = reqwest::get(&process.metrics).await else {
            return;
        };
        let text = response.text().await.unwrap_or_default();
        for name in COUNTERS {
            *self.0.entry(name.to_owned()).or_insert(0.0) += metric(&text, name).unwrap_or(0.0);
        }
    }

    fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }
}

/// Everything a run needs to start processes.
struct Launcher {
    bot: PathBuf,
    api: String,
    env: Vec<(String, String)>,
}

impl Launcher {
    fn start(&self, role: &str, args: &[&str], extra: &[(&str, &str)]) -> anyhow::Result<Process> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(&self.bot);
        cmd.args(args)
            .env("TELOXIDE_TOKEN", "123:SOAK")
            .env("TELOXIDE_API_URL", &self.api)
            .env("STYLEGRAM_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.bot.display()))?;
        Ok(Process {
            child,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            role: role.to_owned(),
        })
    }
}

/// Waits until `process` serves its metrics (it is up).
async fn until_up(process: &Process) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if reqwest::get(&process.metrics).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{} never came up", process.role)
}

/// Stops `process` with SIGTERM (or SIGKILL when `kill`), after reading its counters.
async fn stop(mut process: Process, counted: &mut Counted, kill: bool) -> anyhow::Result<()> {
    counted.read(&process).await;
    let signal = if kill { "-KILL" } else { "-TERM" };
    Command::new("kill")
        .args([signal, &process.child.id().to_string()])
        .status()?;
    let status = process.child.wait()?;
    if !kill && !status.success() {
        bail!("{} exited with {status} after SIGTERM", process.role);
    }
    Ok(())
}

/// The figures of one run.
struct RunFigures {
    setup: Setup,
    reports: Vec<Report>,
    counted: Counted,
    served: HashMap<String, u64>,
    rss_warm: Option<f64>,
    rss_end: Option<f64>,
    rss_role: String,
    wall: f64,
}

async fn run(cli: &Cli, setup: Setup, plans: &[Plan]) -> anyhow::Result<RunFigures> {
    let api = FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    api.state.seed_faults(cli.seed);
    for rule in &cli.faults {
        api.state.add_fault(rule);
    }
    let spool = std::env::temp_dir().join(format!("stylegram-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let redis = match setup {
        Setup::Redis => Some(RedisServer::start().await),
        Setup::InProcess => None,
    };
    let mut env: Vec<(String, String)> = [
        ("STYLEGRAM_MAX_SIDE", "256"),
        ("STYLEGRAM_QUALITY_SIDE", "96"),
        ("STYLEGRAM_QUALITY_ITERATIONS", "20"),
        ("STYLEGRAM_PROGRESS_SECONDS", "1"),
        ("STYLEGRAM_FAST_WORKERS", "1"),
        ("STYLEGRAM_QUALITY_WORKERS", "1"),
        ("STYLEGRAM_THREADS", "1"),
        ("STYLEGRAM_API_TIMEOUT_SECONDS", "11"),
        ("STYLEGRAM_SHUTDOWN_GRACE_SECONDS", "5"),
        ("STYLEGRAM_WORKER_LEASE_SECONDS", "3"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.push((
        "STYLEGRAM_SPOOL".into(),
        spool.to_string_lossy().into_owned(),
    ));
    if let Some(redis) = &redis {
        env.push(("STYLEGRAM_REDIS_URL".into(), redis.url()));
    }
    let launcher = Launcher {
        bot: cli.bot.clone(),
        api: api.url.clone(),
        env,
    };
    let mut counted = Counted::default();
    let mut bot = launcher.start("bot", &[], &[])?;
    until_up(&bot).await?;
    let mut workers = Vec::new();
    if setup == Setup::Redis {
        for id in ["w1", "w2"] {
            let worker = launcher.start(id, &["worker"], &[("STYLEGRAM_WORKER_ID", id)])?;
            until_up(&worker).await?;
            workers.push(Some(worker));
        }
    }

    let start = Instant::now();
    let window = Duration::from_secs(cli.seconds);
    let spacing = window / u32::try_from(cli.users.max(1))?;
    let mut tasks = Vec::new();
    let base = match setup {
        Setup::InProcess => 300_000,
        Setup::Redis => 400_000,
    };
    // (when, what): the disruptions, as fractions of the arrival window.
    let mut schedule: Vec<(f64, &str)> = match setup {
        Setup::InProcess => vec![(0.3, "restart bot")],
        Setup::Redis => vec![(0.3, "kill w1"), (0.6, "restart bot")],
    };
    // The watched process's peak memory once it has served its first results (in-process: the
    // bot started by the restart; in Redis mode: worker w2, never restarted).
    let served = Arc::new(Served::default());
    let mut rss_warm = None;
    let watched = |bot: &Process, workers: &[Option<Process>]| match setup {
        Setup::InProcess => bot.child.id(),
        Setup::Redis => workers[1].as_ref().map_or(0, |w| w.child.id()),
    };
    for (i, plan) in plans.iter().enumerate() {
        let due = spacing * u32::try_from(i)?;
        tokio::time::sleep(due.saturating_sub(start.elapsed())).await;
        while let Some(&(at, what)) = schedule.first()
            && start.elapsed().as_secs_f64() >= at * window.as_secs_f64()
        {
            schedule.remove(0);
            match what {
                "restart bot" => {
                    println!("{setup:?}: SIGTERM to the bot, then a new bot");
                    stop(bot, &mut counted, false).await?;
                    bot = launcher.start("bot", &[], &[])?;
                    until_up(&bot).await?;
                    if setup == Setup::InProcess {
                        served.reset();
                    }
                }
                _ => {
                    println!("{setup:?}: SIGKILL to worker w1, started again in 3 s");
                    if let Some(w1) = workers[0].take() {
                        stop(w1, &mut counted, true).await?;
                    }
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let w1 = launcher.start("w1", &["worker"], &[("STYLEGRAM_WORKER_ID", "w1")])?;
                    until_up(&w1).await?;
                    workers[0] = Some(w1);
                }
            }
        }
        if rss_warm.is_none() && schedule.is_empty() && served.warm() {
            rss_warm = memory_mb(watched(&bot, &workers), "VmHWM:");
        }
        let user = api.user(base + i as i64, "en");
        tasks.push(tokio::spawn(visit(user, plan.clone(), served.clone())));
    }
    let mut reports = Vec::new();
    for task in tasks {
        if rss_warm.is_none() && served.warm() {
            rss_warm = memory_mb(watched(&bot, &workers), "VmHWM:");
        }
        reports.push(task.await?);
    }
    let wall = start.elapsed().as_secs_f64();
    let rss_end = memory_mb(watched(&bot, &workers), "VmHWM:");
    let rss_role = match setup {
        Setup::InProcess => "the bot started after the restart",
        Setup::Redis => "worker w2",
    }
    .to_owned();
    for worker in workers.into_iter().flatten() {
        stop(worker, &mut counted, false).await?;
    }
    stop(bot, &mut counted, false).await?;
    let _ = std::fs::remove_dir_all(&spool);
    Ok(RunFigures {
        setup,
        reports,
        counted,
        served: api.state.faults_served(),
        rss_warm,
        rss_end,
        rss_role,
        wall,
    })
}

fn quantiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "–".into();
    }
    v.sort_by(f64::total_cmp);
    let pick = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    format!("{:.1} / {:.1}", pick(0.5), pick(0.95))
}

/// The table row of a run, and whether it lost or duplicated anything.
fn row(f: &RunFigures) -> (String, bool) {
    let count = |p: &dyn Fn(&Report) -> bool| f.reports.iter().filter(|r| p(r)).count();
    let valid = count(&|r| r.kind != Kind::Hostile);
    let delivered = count(&|r| matches!(r.ending, Ending::Delivered(_)));
    let lost = count(&|r| r.kind != Kind::Hostile && r.ending == Ending::Lost);
    let told_failed = count(&|r| r.ending == Ending::ToldFailed);
    let duplicated: usize = f.reports.iter().map(|r| r.results.saturating_sub(1)).sum();
    let hostile = count(&|r| r.kind == Kind::Hostile);
    let refused = count(&|r| r.ending == Ending::Refused);
    let resent: u32 = f.reports.iter().map(|r| r.resent).sum();
    let latency = |kind| {
        quantiles(
            f.reports
                .iter()
                .filter(|r| r.kind == kind)
                .filter_map(|r| match r.ending {
                    Ending::Delivered(s) => Some(s),
                    _ => None,
                })
                .collect(),
        )
    };
    let served = |k: &str| f.served.get(k).copied().unwrap_or(0);
    let c = |k: &str| f.counted.get(k) as u64;
    let mb = |v: Option<f64>| v.map_or("–".into(), |m| format!("{m:.0}"));
    let row = format!(
        "| {:?} | {} | {valid} | {delivered} | {lost} | {duplicated} | {told_failed} | {refused} of {hostile} | {resent} | {} | {} | {} / {} / {} | {} / {} / {} / {} | {} | {} → {} ({}) | {:.0} |",
        f.setup,
        f.reports.len(),
        latency(Kind::Fast),
        latency(Kind::Quality),
        c(COUNTERS[0]),
        c(COUNTERS[1]),
        c(COUNTERS[2]),
        served("429"),
        served("5xx"),
        served("delay"),
        served("drop"),
        c(COUNTERS[3]),
        mb(f.rss_warm),
        mb(f.rss_end),
        f.rss_role,
        f.wall,
    );
    (row, lost > 0 || duplicated > 0 || refused < hostile)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let plans = plans(&cli)?;
    let mut figures = Vec::new();
    for &setup in &cli.modes {
        println!(
            "{setup:?}: {} users over {} s, faults {:?}",
            cli.users,
            cli.seconds,
            cli.faults
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
        figures.push(run(&cli, setup, &plans).await?);
    }
    let header = "| mode | users | valid requests | results delivered | lost | duplicated | told it failed | hostile files refused | started over | fast p50 / p95 (s) | quality p50 / p95 (s) | retries 429 / 5xx / network | faults served 429 / 5xx / late / dropped | previews and edits skipped | peak RSS MiB after warm-up → end | wall (s) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";
    let mut bad = false;
    let mut table = String::from(header);
    for f in &figures {
        let (line, failed) = row(f);
        bad |= failed;
        table.push('\n');
        table.push_str(&line);
    }
    println!("{table}");
    let cpu = cpu_name();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let doc = format!(
        "# Reliability: the soak test\n\n\
         Made by `make soak` (`{command}`) on {cpu}. Scripted users arrive evenly over \
         {} s per mode; each sends a photo (from `{}`), picks a painting or sends their own style \
         picture (from `{}`), chooses fast or quality mode and presses Go; a few send files that \
         are not pictures. The fake Bot API answers with the faults {:?} (every method but polling and start-up). \
         In-process, the bot is stopped with SIGTERM and started again mid-run; in Redis mode, \
         worker w1 is killed with SIGKILL and started again, and the bot is restarted with SIGTERM. \
         A user told that the bot restarted, or whose button went out of date, starts over (\"started \
         over\"). \"Lost\" is a valid request that got neither a result nor a message; \"duplicated\" \
         counts results beyond one per user. Peak RSS (VmHWM) is read from the process that runs to the \
         end (in-process: the bot started by the restart; Redis: worker w2) once it has delivered \
         {WARM_RESULTS} results, {WARM_QUALITY} of them in quality mode, and after the last \
         disruption; then at the end. Engines are small to keep the run short: fast results \
         at 256 px, quality at 96 px with 20 iterations.\n\n{table}\n",
        cli.seconds,
        cli.photos.display(),
        cli.styles.display(),
        cli.faults
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    );
    if let Some(dir) = cli.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.out, doc).with_context(|| format!("{}", cli.out.display()))?;
    println!("wrote {}", cli.out.display());
    if bad {
        bail!("results were lost or duplicated, or a hostile file was not refused");
    }
    Ok(())
}
