//! Bot configuration from flags and environment variables (every one is listed in the README).
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use teloxide::Bot;

/// Everything the bot process is configured with.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Bot token from @BotFather.
    #[arg(long, env = "TELOXIDE_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
    /// Bot API server URL (point it at the fake server for local demos and tests).
    #[arg(long, env = "TELOXIDE_API_URL")]
    pub api_url: Option<url::Url>,
    /// Folder of fast-mode model bundles.
    #[arg(long, env = "STYLEGRAM_MODELS", default_value = "models")]
    pub models_dir: PathBuf,
    /// The model to serve first [default: the first valid bundle by name that suits the device: int8
    /// on CPU, float on CUDA].
    #[arg(long, env = "STYLEGRAM_ACTIVE_MODEL")]
    pub active_model: Option<String>,
    /// Folder of the gallery's paintings.
    #[arg(long, env = "STYLEGRAM_STYLES", default_value = "styles")]
    pub styles_dir: PathBuf,
    /// VGG weights for quality mode [default: the bootstrap's, under STYLEGRAM_HOME].
    #[arg(long, env = "STYLEGRAM_VGG")]
    pub vgg: Option<PathBuf>,
    /// Where the engines run: auto (CUDA when present), cpu or cuda.
    #[arg(long, env = "STYLEGRAM_DEVICE", default_value = "auto")]
    pub device: String,
    /// ONNX Runtime threads per fast job (0 = one per core).
    #[arg(long, env = "STYLEGRAM_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Longer side of fast-mode results in pixels.
    #[arg(long, env = "STYLEGRAM_MAX_SIDE", default_value_t = 1024)]
    pub max_side: u32,
    /// Longer side of quality-mode results in pixels.
    #[arg(long, env = "STYLEGRAM_QUALITY_SIDE", default_value_t = 512)]
    pub quality_side: u32,
    /// Quality-mode iteration cap [default: 60, L-BFGS from the fast model's picture].
    #[arg(long, env = "STYLEGRAM_QUALITY_ITERATIONS")]
    pub quality_iterations: Option<usize>,
    /// Seconds a quality job may optimise after its fast picture; it then answers with the best
    /// picture so far, and its progress counts towards this limit [default: none, the iteration
    /// cap ends it].
    #[arg(long, env = "STYLEGRAM_QUALITY_SECONDS")]
    pub quality_seconds: Option<f64>,
    /// Seconds between progress edits and previews of a quality job.
    #[arg(long, env = "STYLEGRAM_PROGRESS_SECONDS", default_value_t = 3.0)]
    pub progress_seconds: f64,
    /// Fast-mode workers (jobs painted at once).
    #[arg(long, env = "STYLEGRAM_FAST_WORKERS", default_value_t = 2)]
    pub fast_workers: usize,
    /// Quality-mode workers.
    #[arg(long, env = "STYLEGRAM_QUALITY_WORKERS", default_value_t = 1)]
    pub quality_workers: usize,
    /// Jobs one user may start per hour.
    #[arg(long, env = "STYLEGRAM_JOBS_PER_HOUR", default_value_t = 60)]
    pub jobs_per_hour: usize,
    /// Largest photo or document accepted, in megabytes (Telegram's getFile serves up to 20).
    #[arg(long, env = "STYLEGRAM_MAX_FILE_MB", default_value_t = 20)]
    pub max_file_mb: u32,
    /// Telegram user ids allowed to run operator commands, comma separated (empty: nobody).
    #[arg(long, env = "ADMIN_IDS", default_value = "", hide_default_value = true)]
    pub admin_ids: AdminIds,
    /// Address of the HTTP server for /healthz and /metrics.
    #[arg(long, env = "STYLEGRAM_HTTP_ADDR", default_value = "127.0.0.1:9090")]
    pub http_addr: SocketAddr,
    /// Receive updates by webhook at this public URL instead of long polling.
    #[arg(long, env = "STYLEGRAM_WEBHOOK_URL")]
    pub webhook_url: Option<url::Url>,
    /// Local address the webhook server listens on.
    #[arg(long, env = "STYLEGRAM_WEBHOOK_ADDR", default_value = "127.0.0.1:8443")]
    pub webhook_addr: SocketAddr,
    /// Secret token Telegram sends with each webhook call (1-256 of A-Z, a-z, 0-9, _ and -).
    #[arg(long, env = "STYLEGRAM_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Scale out through Redis (e.g. redis://127.0.0.1:6379/0): dialogues, settings and jobs live
    /// there and `stylegram-bot worker` processes paint the jobs.
    #[arg(long, env = "STYLEGRAM_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<url::Url>,
    /// Redis database for dialogues (their keys are bare chat ids, so they get a database of their
    /// own, not the queue's).
    #[arg(long, env = "STYLEGRAM_REDIS_DIALOGUE_DB", default_value_t = 1)]
    pub redis_dialogue_db: u32,
    /// This worker's name in Redis [default: host name and process id].
    #[arg(long, env = "STYLEGRAM_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Seconds a worker's lease lasts; its jobs are retried elsewhere this long after it dies.
    #[arg(long, env = "STYLEGRAM_WORKER_LEASE_SECONDS", default_value_t = 10)]
    pub worker_lease_seconds: u64,
    /// Seconds a result's delivery (or a user's file download) is retried through 429s, 5xx and
    /// dropped connections before the bot gives up.
    #[arg(
        long,
        env = "STYLEGRAM_DELIVERY_DEADLINE_SECONDS",
        default_value_t = 300
    )]
    pub delivery_deadline_seconds: u64,
    /// Seconds one Bot API call may take before it counts as a timeout (and is retried); more than
    /// the 10 s long poll.
    #[arg(long, env = "STYLEGRAM_API_TIMEOUT_SECONDS", default_value_t = 17)]
    pub api_timeout_seconds: u64,
    /// Folder where finished results wait until Telegram has taken them (in-process mode), so a
    /// restarted bot still delivers them [default: spool under STYLEGRAM_HOME, or
    /// ~/.cache/stylegram/spool].
    #[arg(long = "spool", env = "STYLEGRAM_SPOOL")]
    pub spool_dir: Option<PathBuf>,
    /// Seconds running jobs are given to finish after SIGTERM or Ctrl-C; then quality jobs are
    /// stopped (put back on the queue in Redis mode, their users told in-process).
    #[arg(long, env = "STYLEGRAM_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
}

/// The bot token: never printed, in logs or in `Debug` output (request URLs carry it).
#[derive(Clone)]
pub struct Token(String);

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Token(s.to_owned()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(redacted)")
    }
}

impl Token {
    /// The token itself, for the Bot API client only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

/// The Telegram user ids allowed operator commands. An empty list is valid: compose files and
/// `.env` files set `ADMIN_IDS=` to mean "nobody".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminIds(Vec<u64>);

impl std::str::FromStr for AdminIds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| {
                id.parse()
                    .map_err(|_| format!("'{id}' is not a Telegram user id (a whole number)"))
            })
            .collect::<Result<_, _>>()
            .map(AdminIds)
    }
}

impl AdminIds {
    /// Whether `user` may run operator commands.
    pub fn contains(&self, user: &u64) -> bool {
        self.0.contains(user)
    }
}

impl Config {
    /// How long a call that must get through is retried.
    pub fn delivery_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.delivery_deadline_seconds)
    }

    /// A Bot API client for this configuration.
    pub fn bot(&self) -> Bot {
        let token = self.token.as_ref().map_or("", Token::secret);
        let client = teloxide::net::default_reqwest_settings()
            .timeout(std::time::Duration::from_secs(self.api_timeout_seconds))
            .build()
            .unwrap_or_default();
        let bot = Bot::with_client(token, client);
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

    /// Checks settings that would otherwise fail later; the message says what to fix.
    pub fn check(&self) -> Result<(), String> {
        if self.token.as_ref().is_none_or(|t| t.secret().is_empty()) {
            return Err(
                "TELOXIDE_TOKEN is not set; get a token from @BotFather and run `TELOXIDE_TOKEN=... make run`"
                    .into(),
            );
        }
        if let Some(secret) = &self.webhook_secret {
            let valid = (1..=256).contains(&secret.len())
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(
                    "STYLEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
                        .into(),
                );
            }
        }
        if self.fast_workers == 0 || self.quality_workers == 0 {
            return Err(
                "STYLEGRAM_FAST_WORKERS and STYLEGRAM_QUALITY_WORKERS must be at least 1".into(),
            );
        }
        if !(self.progress_seconds > 0.0 && self.progress_seconds.is_finite()) {
            return Err("STYLEGRAM_PROGRESS_SECONDS must be a positive number".into());
        }
        if self
            .quality_seconds
            .is_some_and(|s| !(s > 0.0 && s.is_finite()))
        {
            return Err("STYLEGRAM_QUALITY_SECONDS must be a positive number".into());
        }
        if let Some(url) = &self.redis_url {
            if !matches!(url.scheme(), "redis" | "rediss") {
                return Err(format!(
                    "STYLEGRAM_REDIS_URL must start with redis:// or rediss://, not {}://",
                    url.scheme()
                ));
            }
            if queue_db(url)? == self.redis_dialogue_db {
                return Err(format!(
                    "STYLEGRAM_REDIS_DIALOGUE_DB ({}) must differ from the queue's database in STYLEGRAM_REDIS_URL",
                    self.redis_dialogue_db
                ));
            }
        }
        if self.api_timeout_seconds <= 10 {
            return Err(
                "STYLEGRAM_API_TIMEOUT_SECONDS must be more than 10 (the long poll's wait)".into(),
            );
        }
        if self.worker_lease_seconds < 3 {
            return Err("STYLEGRAM_WORKER_LEASE_SECONDS must be at least 3".into());
        }
        Ok(())
    }

    /// The Redis URL for dialogues: the queue's server, database [`Config::redis_dialogue_db`].
    pub fn dialogue_redis_url(&self) -> Option<String> {
        self.redis_url.as_ref().map(|url| {
            let mut url = url.clone();
            url.set_path(&format!("/{}", self.redis_dialogue_db));
            url.to_string()
        })
    }

    /// This worker's name in Redis: the configured worker id, else `worker-<host>-<pid>`.
    pub fn worker_name(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "host".into());
            format!("worker-{host}-{}", std::process::id())
        })
    }

    /// Where undelivered results wait: `--spool`, else `spool` under `STYLEGRAM_HOME`, else under
    /// `~/.cache/stylegram`.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir.clone().unwrap_or_else(|| {
            let home = std::env::var_os("STYLEGRAM_HOME")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/stylegram"))
                })
                .unwrap_or_else(std::env::temp_dir);
            home.join("spool")
        })
    }

    /// How long running jobs are given to finish on shutdown.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_seconds)
    }

    /// The largest accepted file in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        u64::from(self.max_file_mb) << 20
    }
}

/// The database number in a Redis URL's path (0 when absent).
fn queue_db(url: &url::Url) -> Result<u32, String> {
    let path = url.path().trim_start_matches('/');
    if path.is_empty() {
        return Ok(0);
    }
    path.parse()
        .map_err(|_| format!("STYLEGRAM_REDIS_URL: '{path}' is not a database number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn admins(args: &[&str]) -> Result<AdminIds, String> {
        Cli::try_parse_from(std::iter::once("stylegram-bot").chain(args.iter().copied()))
            .map(|cli| cli.config.admin_ids)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn admin_ids_may_be_empty_or_spaced_but_not_words() {
        assert_eq!(admins(&["--admin-ids", ""]), Ok(AdminIds::default()));
        let two = admins(&["--admin-ids", "12, 34,"]).unwrap();
        assert!(two.contains(&12) && two.contains(&34) && !two.contains(&1));
        let err = admins(&["--admin-ids", "12,alice"]).unwrap_err();
        assert!(err.contains("'alice' is not a Telegram user id"), "{err}");
    }

    #[test]
    fn a_quality_time_limit_must_be_a_positive_number_of_seconds() {
        let check = |seconds: &str| {
            let limit = format!("--quality-seconds={seconds}");
            Cli::try_parse_from(["stylegram-bot", "--token", "1:x", &limit])
                .map_err(|e| e.to_string())
                .and_then(|cli| cli.config.check())
        };
        assert_eq!(check("20"), Ok(()));
        assert_eq!(check("0.5"), Ok(()));
        for bad in ["0", "-3", "inf"] {
            let err = check(bad).unwrap_err();
            assert!(
                err.contains("STYLEGRAM_QUALITY_SECONDS must be a positive number"),
                "{bad}: {err}"
            );
        }
        assert!(check("soon").is_err(), "not a number");
    }
}
