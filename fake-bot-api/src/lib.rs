//! A fake Telegram Bot API server on 127.0.0.1: enough of the Bot API for teloxide's long polling
//! and webhooks, photo and document uploads and downloads, inline keyboards and message edits.
//!
//! Tests start it in-process ([`FakeBotApi::start`]) and act as users through [`FakeUser`]; the
//! `fake-bot-api` binary serves the same thing with a small chat page for local demos. [`redis`]
//! starts a private redis-server for the scale-out tests.
mod api;
mod control;
mod faults;
pub mod probe;
pub mod redis;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};

pub use faults::{Fault, FaultRule};
pub use state::{BOT_ID, Event, EventKind, State, UserSpec, Webhook};

/// A running fake server.
pub struct FakeBotApi {
    /// Its address, e.g. `http://127.0.0.1:41234/` (what `TELOXIDE_API_URL` takes).
    pub url: String,
    /// Its state, shared with the server.
    pub state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
    pusher: tokio::task::JoinHandle<()>,
}

/// The server's routes over `state`.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/{bot}/{method}", any(api::method))
        .route("/file/{bot}/{*path}", get(api::download))
        .merge(control::routes())
        .with_state(state)
}

impl FakeBotApi {
    /// Serves on `addr` (port 0 picks a free one) on the current tokio runtime.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let state = Arc::new(State::default());
        let app = router(state.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("fake Bot API server stopped: {e}");
            }
        });
        let pusher = tokio::spawn(api::webhook_pusher(state.clone()));
        Ok(FakeBotApi {
            url: format!("http://{local}/"),
            state,
            server,
            pusher,
        })
    }

    /// A user who can talk to the bot, registered with the server.
    pub fn user(&self, id: i64, language: &str) -> FakeUser {
        let spec = UserSpec {
            id,
            first_name: format!("Tester{id}"),
            language: language.to_owned(),
        };
        self.state.add_user(&spec);
        FakeUser {
            state: self.state.clone(),
            id,
            cursor: 0,
        }
    }
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        self.server.abort();
        self.pusher.abort();
    }
}

/// A test user: sends messages and presses buttons, and waits for what the bot does in their chat.
pub struct FakeUser {
    state: Arc<State>,
    /// The user's id (and private chat id).
    pub id: i64,
    cursor: u64,
}

impl FakeUser {
    /// Sends a text message (or a /command).
    pub fn text(&self, text: &str) {
        self.state.user_text(self.id, text);
    }

    /// Sends a photo of the given pixel size.
    pub fn photo(&self, bytes: Vec<u8>, width: u32, height: u32) {
        self.state.user_photo(self.id, bytes, width, height);
    }

    /// Sends a file as a document.
    pub fn document(&self, bytes: Vec<u8>, file_name: &str, mime: &str) {
        self.state.user_document(self.id, bytes, file_name, mime);
    }

    /// Presses the button whose label contains `label` on `event`'s message; panics (a test
    /// failure) when there is none.
    pub fn press(&self, event: &Event, label: &str) {
        let data = event.button(label).unwrap_or_else(|| {
            panic!(
                "no button '{label}' on message {}: {:?}",
                event.message_id, event.buttons
            )
        });
        self.state.user_press(self.id, event.message_id, data);
    }

    /// Presses a button by its callback data.
    pub fn press_data(&self, message_id: i64, data: &str) {
        self.state.user_press(self.id, message_id, data);
    }

    /// Waits for the next event in this chat, after the last one returned, that `accept` takes;
    /// `None` after `timeout`.
    pub async fn wait(
        &mut self,
        timeout: Duration,
        accept: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.events_ready.notified();
            let found = {
                let inner = self.state.lock();
                inner
                    .events
                    .iter()
                    .filter(|e| e.chat_id == self.id && e.seq > self.cursor)
                    .find(|e| accept(e))
                    .cloned()
            };
            if let Some(event) = found {
                self.cursor = event.seq;
                return Some(event);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Every event in this chat so far.
    pub fn history(&self) -> Vec<Event> {
        self.state
            .events()
            .into_iter()
            .filter(|e| e.chat_id == self.id)
            .collect()
    }
}

/// Waits until `check` holds, polling every 20 ms; false after `timeout`.
pub async fn eventually(timeout: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}
