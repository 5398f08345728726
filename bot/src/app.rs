//! The bot's shared context: the engine, the way out to Telegram, the queue, the stores and the
//! statistics, and the helpers every handler and worker uses (language, file downloads).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stylegram_engine::{Engine, PaintingInfo};
use teloxide::types::User;

use crate::config::Config;
use crate::delivery::Telegram;
use crate::i18n::{Lang, Msg};
use crate::jobs::JobStore;
use crate::queue::Ticket;
use crate::settings::SettingsStore;
use crate::stats::Stats;
use crate::store::Bounded;

/// Bytes of downloaded files kept in memory.
const FILE_CACHE_BYTES: usize = 256 << 20;
/// How long a downloaded picture stays in memory (for follow-ups); later it is downloaded again.
pub const PICTURE_KEEP: Duration = Duration::from_secs(3600);

/// Everything the handlers and workers share.
pub struct App {
    /// The style-transfer engines.
    pub engine: Arc<dyn Engine>,
    /// The one way out to the Bot API.
    pub telegram: Telegram,
    /// The gallery's paintings, in order.
    pub paintings: Vec<PaintingInfo>,
    /// The job queue and the finished results.
    pub jobs: Arc<dyn JobStore>,
    /// Job statistics.
    pub stats: Stats,
    /// Per-user defaults.
    pub settings: SettingsStore,
    /// Downloaded files by Telegram file id.
    pub files: Bounded<Vec<u8>>,
    /// Rendered gallery pages (JPEG) by page number.
    pub galleries: Bounded<Vec<u8>>,
    /// Held while a gallery page is drawn.
    pub drawing_gallery: tokio::sync::Mutex<()>,
    /// Jobs this process is painting, by id (stopped on shutdown).
    pub running: Mutex<HashMap<u64, Arc<Ticket>>>,
    /// Pictures checked at once: a burst of uploads decodes a few at a time, not all at once
    /// (each decoded picture can take up to 150 MB).
    checking: tokio::sync::Semaphore,
    /// The configuration.
    pub config: Config,
}

/// Why a user's file could not be used.
#[derive(Debug)]
pub enum FileProblem {
    /// Over the size limit.
    TooLarge,
    /// Not a picture we can read (with the engine's reason).
    NotAnImage(String),
    /// The Bot API failed (after its retries).
    Transport(String),
}

impl FileProblem {
    /// The message for the user.
    pub fn message(&self) -> Msg {
        match self {
            FileProblem::TooLarge => Msg::TooLarge,
            FileProblem::NotAnImage(_) => Msg::NotAnImage,
            FileProblem::Transport(_) => Msg::Failed,
        }
    }
}

impl App {
    /// A context around `engine`, talking to Telegram through `telegram`, with jobs and settings
    /// where `jobs` and `settings` keep them.
    pub fn new(
        engine: Arc<dyn Engine>,
        telegram: Telegram,
        jobs: Arc<dyn JobStore>,
        settings: SettingsStore,
        config: Config,
    ) -> Self {
        App {
            paintings: engine.paintings(),
            engine,
            telegram,
            jobs,
            stats: Stats::default(),
            settings,
            files: Bounded::new(FILE_CACHE_BYTES).with_max_age(PICTURE_KEEP),
            running: Mutex::new(HashMap::new()),
            galleries: Bounded::new(16 << 20),
            drawing_gallery: tokio::sync::Mutex::new(()),
            checking: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            ),
            config,
        }
    }

    /// The language to answer `user` in: their /lang choice, else their client's language.
    pub async fn lang(&self, user: &User) -> Lang {
        self.settings
            .get(user.id.0)
            .await
            .lang
            .unwrap_or_else(|| Lang::from_code(user.language_code.as_deref()))
    }

    /// Whether `user` may run operator commands.
    pub fn is_admin(&self, user: u64) -> bool {
        self.config.admin_ids.contains(&user)
    }

    /// A painting's title in `lang`.
    pub fn painting_title(&self, id: &str, lang: Lang) -> String {
        self.paintings.iter().find(|p| p.id == id).map_or_else(
            || id.to_owned(),
            |p| match lang {
                Lang::En => p.title_en.clone(),
                Lang::Ru => p.title_ru.clone(),
            },
        )
    }

    /// The bytes of a Telegram file (from this process's cache, from the job store where the bot
    /// process kept it, or downloaded), refusing files over the limit before downloading them.
    pub async fn file_bytes(
        &self,
        file_id: &str,
        declared_size: Option<u64>,
    ) -> Result<Arc<Vec<u8>>, FileProblem> {
        if let Some(bytes) = self.files.get(file_id) {
            return Ok(bytes);
        }
        if let Some(bytes) = self.jobs.picture(file_id).await {
            self.files
                .insert(file_id.to_owned(), bytes.clone(), bytes.len());
            return Ok(bytes);
        }
        let limit = self.config.max_file_bytes();
        if declared_size.is_some_and(|s| s > limit) {
            return Err(FileProblem::TooLarge);
        }
        let bytes = match self.telegram.file(file_id, limit).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(FileProblem::TooLarge),
            Err(e) => return Err(FileProblem::Transport(e.to_string())),
        };
        if bytes.len() as u64 > limit {
            return Err(FileProblem::TooLarge);
        }
        let bytes = Arc::new(bytes);
        self.files
            .insert(file_id.to_owned(), bytes.clone(), bytes.len());
        Ok(bytes)
    }

    /// Forgets a job's pictures once it is over (delivered, given up, cancelled): they are not kept
    /// in this process or in Redis; a follow-up downloads them again.
    pub async fn forget_pictures(&self, file_ids: impl IntoIterator<Item = &str>) {
        for id in file_ids {
            self.files.remove(id);
            self.jobs.forget_picture(id).await;
        }
    }

    /// Downloads a user's picture and checks that the engine can read it.
    pub async fn checked_image(
        &self,
        file_id: &str,
        declared_size: Option<u64>,
    ) -> Result<(), FileProblem> {
        let bytes = self.file_bytes(file_id, declared_size).await?;
        let _turn = self
            .checking
            .acquire()
            .await
            .map_err(|e| FileProblem::Transport(e.to_string()))?;
        let engine = self.engine.clone();
        let checked = tokio::task::spawn_blocking(move || engine.check_image(&bytes))
            .await
            .map_err(|e| FileProblem::Transport(e.to_string()))?;
        checked
            .map(|_| ())
            .map_err(|e| FileProblem::NotAnImage(e.to_string()))
    }
}
