//! What the fake server remembers: users' updates waiting for the bot, files, the messages in each
//! chat, and a log of everything the bot did, which tests read.
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::faults::{Fault, FaultRule, Faults};

/// The fake bot's own user id (its messages come `from` it).
pub const BOT_ID: i64 = 777_000;
/// A date every message carries (Telegram treats `date: 0` as an inaccessible message).
const DATE: i64 = 1_780_000_000;

/// One thing the bot did, as the tests see it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Position in the server's log, from 1.
    pub seq: u64,
    /// The chat it happened in.
    pub chat_id: i64,
    /// The message concerned (0 for callback answers).
    pub message_id: i64,
    /// What happened.
    pub kind: EventKind,
    /// The message's text or caption after this event.
    pub text: String,
    /// The picture or file bytes sent with it, if any.
    #[serde(skip)]
    pub bytes: Option<Vec<u8>>,
    /// Whether `bytes` is set (for the demo page, which fetches them separately).
    pub has_bytes: bool,
    /// A document's file name.
    pub file_name: Option<String>,
    /// The inline keyboard's buttons as (label, callback data), row by row.
    pub buttons: Vec<Vec<(String, String)>>,
}

/// The kind of an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A text message.
    Text,
    /// A photo (with an optional caption).
    Photo,
    /// A document.
    Document,
    /// An edit of an earlier message's text, caption, media or keyboard.
    Edit,
    /// A deleted message.
    Delete,
    /// An answer to a button press (its text, if any, in `text`).
    CallbackAnswer,
}

impl Event {
    /// An event without bytes or buttons (its `seq` is set when logged).
    pub(crate) fn plain(chat_id: i64, message_id: i64, kind: EventKind, text: String) -> Self {
        Event {
            seq: 0,
            chat_id,
            message_id,
            kind,
            text,
            bytes: None,
            has_bytes: false,
            file_name: None,
            buttons: Vec::new(),
        }
    }

    /// The callback data of the button labelled with something containing `label`.
    pub fn button(&self, label: &str) -> Option<&str> {
        self.buttons
            .iter()
            .flatten()
            .find(|(l, _)| l.contains(label))
            .map(|(_, d)| d.as_str())
    }
}

/// Where the bot receives updates.
#[derive(Debug, Clone, Default)]
pub struct Webhook {
    /// The bot's webhook URL.
    pub url: String,
    /// Sent back in `X-Telegram-Bot-Api-Secret-Token`.
    pub secret: Option<String>,
}

#[derive(Default)]
pub(crate) struct Inner {
    next_update_id: i64,
    pub(crate) updates: VecDeque<Value>,
    next_file: u64,
    pub(crate) files: HashMap<String, (String, Vec<u8>)>,
    next_message_id: HashMap<i64, i64>,
    pub(crate) messages: HashMap<(i64, i64), Value>,
    users: HashMap<i64, Value>,
    pub(crate) events: Vec<Event>,
    pub(crate) webhook: Option<Webhook>,
    next_callback: u64,
    /// Which user pressed each callback query, so its answer lands in their chat's log.
    pub(crate) callbacks: HashMap<String, i64>,
    /// Bot API calls by method name (lowercase), for tests that count requests.
    pub(crate) calls: HashMap<String, u64>,
    /// Faults switched on, blocked chats, and the faults served.
    pub(crate) faults: Faults,
}

/// The server's shared state.
#[derive(Default)]
pub struct State {
    pub(crate) inner: Mutex<Inner>,
    /// Woken when an update arrives (long polls wait on it).
    pub(crate) updates_ready: Notify,
    /// Woken when the bot does something (tests wait on it).
    pub(crate) events_ready: Notify,
}

/// A test user: id, first name and Telegram language code.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Telegram user id (also the private chat's id).
    pub id: i64,
    /// Shown name.
    pub first_name: String,
    /// `language_code`, e.g. "en" or "ru".
    pub language: String,
}

impl State {
    /// Answers the next `times` calls of `method` (case-insensitive) with `fault`.
    pub fn inject(&self, method: &str, fault: Fault, times: usize) {
        self.add_fault(&FaultRule {
            method: method.to_owned(),
            fault,
            times: Some(times),
            rate: None,
        });
    }

    /// Answers the fraction `rate` of `method`'s calls (`*`: every method but getUpdates and the start-up calls) with
    /// `fault`.
    pub fn inject_rate(&self, method: &str, fault: Fault, rate: f64) {
        self.add_fault(&FaultRule {
            method: method.to_owned(),
            fault,
            times: None,
            rate: Some(rate),
        });
    }

    /// Switches a fault rule on.
    pub fn add_fault(&self, rule: &FaultRule) {
        self.lock().faults.add(rule);
    }

    /// Switches every fault rule off.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Seeds the draws of fraction faults, so a run can be repeated.
    pub fn seed_faults(&self, seed: u64) {
        self.lock().faults.seed(seed);
    }

    /// Marks `chat` as blocked by its user (every call for it answers 403), or unblocks it.
    pub fn block(&self, chat: i64, blocked: bool) {
        let mut inner = self.lock();
        if blocked {
            inner.faults.blocked.insert(chat);
        } else {
            inner.faults.blocked.remove(&chat);
        }
    }

    /// Whether `chat` is blocked.
    pub(crate) fn is_blocked(&self, chat: i64) -> bool {
        self.lock().faults.blocked.contains(&chat)
    }

    /// The faults served so far, by label (429, 5xx, delay, drop, 403).
    pub fn faults_served(&self) -> HashMap<String, u64> {
        self.lock()
            .faults
            .served
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect()
    }

    /// Counts a 403 served for a blocked chat.
    pub(crate) fn served_blocked(&self) {
        *self.lock().faults.served.entry("403").or_insert(0) += 1;
    }

    /// The fault to answer this call of `method` (lowercase) with, if one applies.
    pub(crate) fn take_fault(&self, method: &str) -> Option<Fault> {
        self.lock().faults.take(method)
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (or updates) a user so their messages carry the right `from`.
    pub fn add_user(&self, user: &UserSpec) {
        self.lock().users.insert(
            user.id,
            json!({"id": user.id, "is_bot": false, "first_name": user.first_name,
                   "language_code": user.language}),
        );
    }

    fn user_json(inner: &Inner, id: i64) -> Value {
        inner.users.get(&id).cloned().unwrap_or_else(
            || json!({"id": id, "is_bot": false, "first_name": format!("user{id}")}),
        )
    }

    /// The bot's `User` object.
    pub fn bot_user() -> Value {
        json!({"id": BOT_ID, "is_bot": true, "first_name": "Stylegram", "username": "stylegram_test_bot"})
    }

    fn chat_json(inner: &Inner, chat_id: i64) -> Value {
        let user = Self::user_json(inner, chat_id);
        json!({"id": chat_id, "type": "private", "first_name": user["first_name"]})
    }

    /// Stores bytes as a file the bot can download; returns its file id.
    pub(crate) fn store_file(inner: &mut Inner, name: &str, bytes: Vec<u8>) -> String {
        inner.next_file += 1;
        let id = format!("file{}", inner.next_file);
        let path = format!("files/{}/{name}", inner.next_file);
        inner.files.insert(id.clone(), (path, bytes));
        id
    }

    /// A new message in `chat_id`, stored, with fields from `body` merged in.
    pub(crate) fn new_message(inner: &mut Inner, chat_id: i64, from: Value, body: Value) -> Value {
        let id = inner.next_message_id.entry(chat_id).or_insert(0);
        *id += 1;
        let mut message = json!({
            "message_id": *id, "date": DATE, "chat": Self::chat_json(inner, chat_id), "from": from,
        });
        if let (Some(m), Value::Object(extra)) = (message.as_object_mut(), body) {
            m.extend(extra);
        }
        inner.messages.insert(
            (chat_id, message["message_id"].as_i64().unwrap_or(0)),
            message.clone(),
        );
        message
    }

    /// Queues an update (a message or callback query) for the bot.
    pub(crate) fn push_update(&self, key: &str, value: Value) {
        {
            let mut inner = self.lock();
            inner.next_update_id += 1;
            let update = json!({"update_id": inner.next_update_id, key: value});
            inner.updates.push_back(update);
        }
        self.updates_ready.notify_waiters();
    }

    /// A user sends text (a command or a reply).
    pub fn user_text(&self, user_id: i64, text: &str) {
        let message = {
            let mut inner = self.lock();
            let from = Self::user_json(&inner, user_id);
            let mut body = json!({"text": text});
            if let Some(command) = text.strip_prefix('/') {
                let length = 1 + command.split_whitespace().next().unwrap_or("").len();
                body["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
            }
            Self::new_message(&mut inner, user_id, from, body)
        };
        self.push_update("message", message);
    }

    /// A user sends a photo (Telegram would recompress it; the fake keeps the bytes as they are).
    pub fn user_photo(&self, user_id: i64, bytes: Vec<u8>, width: u32, height: u32) {
        let message = {
            let mut inner = self.lock();
            let size = bytes.len();
            let id = Self::store_file(&mut inner, "photo.jpg", bytes);
            let from = Self::user_json(&inner, user_id);
            let body = json!({"photo": [{"file_id": id, "file_unique_id": format!("u{id}"),
                "width": width, "height": height, "file_size": size}]});
            Self::new_message(&mut inner, user_id, from, body)
        };
        self.push_update("message", message);
    }

    /// A user sends a file as a document.
    pub fn user_document(&self, user_id: i64, bytes: Vec<u8>, file_name: &str, mime: &str) {
        let message = {
            let mut inner = self.lock();
            let size = bytes.len();
            let id = Self::store_file(&mut inner, file_name, bytes);
            let from = Self::user_json(&inner, user_id);
            let body = json!({"document": {"file_id": id, "file_unique_id": format!("u{id}"),
                "file_name": file_name, "mime_type": mime, "file_size": size}});
            Self::new_message(&mut inner, user_id, from, body)
        };
        self.push_update("message", message);
    }

    /// A user presses an inline button with `data` under message `message_id` of their chat.
    pub fn user_press(&self, user_id: i64, message_id: i64, data: &str) {
        let query = {
            let mut inner = self.lock();
            inner.next_callback += 1;
            let id = format!("cb{}", inner.next_callback);
            inner.callbacks.insert(id.clone(), user_id);
            let message = inner
                .messages
                .get(&(user_id, message_id))
                .cloned()
                .unwrap_or_else(|| {
                    json!({"message_id": message_id, "date": 0,
                    "chat": Self::chat_json(&inner, user_id)})
                });
            json!({"id": id, "from": Self::user_json(&inner, user_id),
                   "message": message, "chat_instance": format!("ci{user_id}"), "data": data})
        };
        self.push_update("callback_query", query);
    }

    /// Appends to the event log and wakes waiting tests.
    pub(crate) fn log(&self, inner: &mut Inner, mut event: Event) {
        event.seq = inner.events.len() as u64 + 1;
        event.has_bytes = event.bytes.is_some();
        tracing::debug!(chat = event.chat_id, kind = ?event.kind, text = %event.text, "bot event");
        inner.events.push(event);
        self.events_ready.notify_waiters();
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// How many times the bot called `method` (case-insensitive).
    pub fn calls(&self, method: &str) -> u64 {
        self.lock()
            .calls
            .get(&method.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// The webhook the bot registered, if any.
    pub fn webhook(&self) -> Option<Webhook> {
        self.lock().webhook.clone()
    }

    /// Updates not yet fetched by the bot.
    pub fn pending_updates(&self) -> usize {
        self.lock().updates.len()
    }
}

/// The buttons of an `InlineKeyboardMarkup` JSON value.
pub(crate) fn buttons_of(markup: &Value) -> Vec<Vec<(String, String)>> {
    markup["inline_keyboard"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|buttons| {
                            buttons
                                .iter()
                                .map(|b| {
                                    (
                                        b["text"].as_str().unwrap_or("").to_owned(),
                                        b["callback_data"].as_str().unwrap_or("").to_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}
