//! Helpers for the bot's end-to-end tests: the real `stylegram-bot` process against the fake Bot
//! API server, with real pictures.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_bot_api::{Event, EventKind, FakeBotApi, FakeUser};

/// Patience for anything the bot does (generous: tests share two CPU cores).
pub const WAIT: Duration = Duration::from_secs(60);

/// The repository's preset paintings (`styles/`): the tests paint these, photos and styles alike,
/// so that no verdict depends on a data folder outside the clone.
pub fn pictures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../styles")
}

/// One of the repository's preset paintings, by file name.
pub fn picture(name: &str) -> PathBuf {
    pictures().join(name)
}

/// A path in the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// A picture's bytes and size, to send as a photo.
pub fn photo(name: &str) -> (Vec<u8>, u32, u32) {
    let bytes = std::fs::read(picture(name)).unwrap();
    let image = image::load_from_memory(&bytes).unwrap();
    (bytes, image.width(), image.height())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh, empty spool folder for one bot process.
pub fn new_spool() -> PathBuf {
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("stylegram-e2e-spool-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Sends SIGTERM to `child` (what systemd, Docker and Kubernetes send) and waits until it exits;
/// its exit status and how long it took.
pub fn terminate(child: &mut Child) -> (std::process::ExitStatus, Duration) {
    let asked = std::time::Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = child.wait().expect("the process ends");
    (status, asked.elapsed())
}

/// The bot process; killed when dropped.
pub struct BotProcess {
    /// The child process.
    pub child: Child,
    /// Its /healthz and /metrics address.
    pub http: String,
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `stylegram-bot` against `api` with small, quick engine settings plus `env`, and waits
/// until it polls (or, with a webhook, registers it).
pub async fn start_bot(api: &FakeBotApi, env: &[(&str, String)]) -> BotProcess {
    let polls = api.state.calls("getupdates");
    let bot = spawn_bot(api, &[], env);
    let state = api.state.clone();
    let ready = fake_bot_api::eventually(WAIT, move || {
        state.calls("getupdates") > polls || state.webhook().is_some()
    })
    .await;
    assert!(ready, "the bot never started polling");
    bot
}

/// Starts `stylegram-bot <args>` against `api` with small, quick engine settings plus `env`.
pub fn spawn_bot(api: &FakeBotApi, args: &[&str], env: &[(&str, String)]) -> BotProcess {
    let http_port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stylegram-bot"));
    cmd.args(args)
        .env("TELOXIDE_TOKEN", "123:TEST")
        .env("TELOXIDE_API_URL", &api.url)
        .env("STYLEGRAM_MODELS", repo("models"))
        .env("STYLEGRAM_STYLES", repo("styles"))
        .env("STYLEGRAM_DEVICE", "cpu")
        .env("STYLEGRAM_THREADS", "1")
        .env("STYLEGRAM_MAX_SIDE", "128")
        .env("STYLEGRAM_QUALITY_SIDE", "64")
        .env("STYLEGRAM_QUALITY_ITERATIONS", "30")
        .env("STYLEGRAM_PROGRESS_SECONDS", "0.2")
        .env("STYLEGRAM_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("ADMIN_IDS", "1")
        .env("STYLEGRAM_SPOOL", new_spool())
        .env("RUST_LOG", "stylegram_bot=debug,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("stylegram-bot starts");
    BotProcess {
        child,
        http: format!("http://127.0.0.1:{http_port}"),
    }
}

#[allow(unused_imports)] // used by the scale-out tests only
pub use fake_bot_api::redis::RedisServer;

/// Waits for the next event of `kind` in the user's chat whose text contains `needle`.
pub async fn expect(user: &mut FakeUser, kind: EventKind, needle: &str) -> Event {
    let found = user
        .wait(WAIT, |e| e.kind == kind && e.text.contains(needle))
        .await;
    found.unwrap_or_else(|| {
        panic!(
            "no {kind:?} containing '{needle}'; the chat was:\n{:#?}",
            user.history()
        )
    })
}

/// Sends a photo and picks the first painting: returns the options panel.
pub async fn photo_to_options(user: &mut FakeUser, photo_name: &str) -> Event {
    let (bytes, w, h) = photo(photo_name);
    user.photo(bytes, w, h);
    let gallery = expect(user, EventKind::Photo, "").await;
    assert!(
        image::load_from_memory(gallery.bytes.as_deref().unwrap()).is_ok(),
        "the gallery is a picture"
    );
    user.press(&gallery, "1. ");
    expect(user, EventKind::Text, "").await
}
