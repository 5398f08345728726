//! The Bot API methods the bot uses, answered from [`State`]: `/bot<token>/<Method>` (JSON or
//! multipart bodies; teloxide capitalises method names) and `/file/bot<token>/<path>` downloads.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::state::{BOT_ID, Event, EventKind, Inner, State, Webhook, buttons_of};

/// The longest a `getUpdates` call waits server-side, whatever timeout the bot asks for, so a test's
/// shutdown is never held up by a long poll.
const MAX_POLL_WAIT: Duration = Duration::from_secs(2);

/// A method's parameters: JSON values, and uploaded files by part name.
#[derive(Default)]
struct Params {
    values: HashMap<String, Value>,
    files: HashMap<String, (String, Vec<u8>)>,
}

impl Params {
    async fn read(request: Request) -> Result<Self, String> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        let mut params = Params::default();
        for (k, v) in url_pairs(&query) {
            params.values.insert(k, parse_value(&v));
        }
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(request, &())
                .await
                .map_err(|e| e.to_string())?;
            while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
                let name = field.name().unwrap_or("").to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                match file_name {
                    Some(file_name) => {
                        params.files.insert(name, (file_name, bytes.to_vec()));
                    }
                    None => {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        params.values.insert(name, parse_value(&text));
                    }
                }
            }
        } else {
            let body = axum::body::to_bytes(request.into_body(), 64 << 20)
                .await
                .map_err(|e| e.to_string())?;
            if !body.is_empty() {
                let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                if let Value::Object(map) = value {
                    params.values.extend(map);
                }
            }
        }
        Ok(params)
    }

    fn int(&self, key: &str) -> Option<i64> {
        match self.values.get(key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    fn str(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The bytes of an input file given as `attach://name`, a file part, or an earlier file id.
    fn file(&self, inner: &Inner, key: &str) -> Option<(String, Vec<u8>)> {
        if let Some(file) = self.files.get(key) {
            return Some(file.clone());
        }
        let reference = self.str(key)?;
        self.file_ref(inner, &reference)
    }

    fn file_ref(&self, inner: &Inner, reference: &str) -> Option<(String, Vec<u8>)> {
        match reference.strip_prefix("attach://") {
            Some(part) => self.files.get(part).cloned(),
            None => inner.files.get(reference).map(|(path, bytes)| {
                let name = path.rsplit('/').next().unwrap_or("file").to_owned();
                (name, bytes.clone())
            }),
        }
    }
}

/// A multipart or query string value: JSON when it parses as JSON, else the string itself.
fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn bad(code: u16, description: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(json!({"ok": false, "error_code": code, "description": description})),
    )
        .into_response()
}

/// `POST|GET /bot<token>/<Method>`.
pub(crate) async fn method(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    if !bot.starts_with("bot") {
        return bad(404, "Not Found");
    }
    let method = method.to_ascii_lowercase();
    *state.lock().calls.entry(method.clone()).or_insert(0) += 1;
    match state.take_fault(&method) {
        Some(Fault::TooManyRequests { retry_after }) => {
            let body = json!({"ok": false, "error_code": 429,
                "description": format!("Too Many Requests: retry after {retry_after}"),
                "parameters": {"retry_after": retry_after}});
            return (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        }
        Some(Fault::ServerError { status }) => return bad(status, "Internal Server Error"),
        // Unwinding out of the handler ends the connection's task: the socket closes with no
        // answer. (resume_unwind skips the panic hook, so nothing is printed.)
        Some(Fault::Drop) => std::panic::resume_unwind(Box::new("connection dropped")),
        // A client that gives up meanwhile drops this future: the call is then never served.
        Some(fault @ Fault::Delay { .. }) => {
            tokio::time::sleep(fault.delay().unwrap_or_default()).await;
        }
        None => {}
    }
    let params = match Params::read(request).await {
        Ok(p) => p,
        Err(e) => return bad(400, &format!("Bad Request: {e}")),
    };
    if let Some(chat) = params.int("chat_id")
        && state.is_blocked(chat)
    {
        state.served_blocked();
        return bad(403, "Forbidden: bot was blocked by the user");
    }
    match method.as_str() {
        "getme" => {
            let mut me = State::bot_user();
            for flag in [
                "can_join_groups",
                "can_read_all_group_messages",
                "supports_inline_queries",
                "can_connect_to_business",
                "has_main_web_app",
            ] {
                me[flag] = json!(false);
            }
            ok(me)
        }
        "getupdates" => get_updates(&state, &params).await,
        "getwebhookinfo" => {
            let inner = state.lock();
            let url = inner.webhook.as_ref().map_or("", |w| w.url.as_str());
            ok(json!({"url": url, "has_custom_certificate": false,
                      "pending_update_count": inner.updates.len()}))
        }
        "setwebhook" => {
            let Some(url) = params.str("url") else {
                return bad(400, "Bad Request: url is required");
            };
            state.lock().webhook = Some(Webhook {
                url,
                secret: params.str("secret_token"),
            });
            ok(json!(true))
        }
        "deletewebhook" => {
            state.lock().webhook = None;
            ok(json!(true))
        }
        "getfile" => {
            let inner = state.lock();
            let id = params.str("file_id").unwrap_or_default();
            match inner.files.get(&id) {
                Some((path, bytes)) => {
                    ok(json!({"file_id": id, "file_unique_id": format!("u{id}"),
                                                  "file_size": bytes.len(), "file_path": path}))
                }
                None => bad(400, "Bad Request: invalid file_id"),
            }
        }
        "sendmessage" | "sendphoto" | "senddocument" => send(&state, &method, &params),
        "editmessagetext"
        | "editmessagecaption"
        | "editmessagemedia"
        | "editmessagereplymarkup" => edit(&state, &method, &params),
        "deletemessage" => {
            let mut inner = state.lock();
            let (chat_id, message_id) = (
                params.int("chat_id").unwrap_or(0),
                params.int("message_id").unwrap_or(0),
            );
            if inner.messages.remove(&(chat_id, message_id)).is_none() {
                return bad(400, "Bad Request: message to delete not found");
            }
            let event = Event::plain(chat_id, message_id, EventKind::Delete, String::new());
            state.log(&mut inner, event);
            ok(json!(true))
        }
        "answercallbackquery" => {
            let mut inner = state.lock();
            let id = params.str("callback_query_id").unwrap_or_default();
            let chat_id = inner.callbacks.get(&id).copied().unwrap_or(0);
            let text = params.str("text").unwrap_or_default();
            let event = Event::plain(chat_id, 0, EventKind::CallbackAnswer, text);
            state.log(&mut inner, event);
            ok(json!(true))
        }
        "sendchataction" | "setmycommands" | "deletemycommands" | "close" | "logout" => {
            ok(json!(true))
        }
        "getmycommands" => ok(json!([])),
        _ => bad(404, "Not Found: method not found"),
    }
}

async fn get_updates(state: &State, params: &Params) -> Response {
    let offset = params.int("offset").unwrap_or(0);
    let limit = params.int("limit").unwrap_or(100).clamp(1, 100) as usize;
    let wait =
        Duration::from_secs(params.int("timeout").unwrap_or(0).max(0) as u64).min(MAX_POLL_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notified = state.updates_ready.notified();
        {
            let mut inner = state.lock();
            if inner.webhook.is_some() {
                return bad(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active",
                );
            }
            while inner
                .updates
                .front()
                .is_some_and(|u| u["update_id"].as_i64().unwrap_or(0) < offset)
            {
                inner.updates.pop_front();
            }
            if !inner.updates.is_empty() || tokio::time::Instant::now() >= deadline {
                let batch: Vec<Value> = inner.updates.iter().take(limit).cloned().collect();
                return ok(Value::Array(batch));
            }
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

fn send(state: &State, method: &str, params: &Params) -> Response {
    let Some(chat_id) = params.int("chat_id") else {
        return bad(400, "Bad Request: chat_id is required");
    };
    let markup = params.values.get("reply_markup").cloned();
    let mut inner = state.lock();
    let (kind, body, text, bytes, file_name) = match method {
        "sendmessage" => {
            let text = params.str("text").unwrap_or_default();
            if text.is_empty() {
                return bad(400, "Bad Request: message text is empty");
            }
            (EventKind::Text, json!({"text": text}), text, None, None)
        }
        "sendphoto" => {
            let Some((name, bytes)) = params.file(&inner, "photo") else {
                return bad(400, "Bad Request: there is no photo in the request");
            };
            let caption = params.str("caption").unwrap_or_default();
            let size = bytes.len();
            let id = State::store_file(&mut inner, &name, bytes.clone());
            let body = json!({"photo": [{"file_id": id, "file_unique_id": format!("u{id}"),
                "width": 1, "height": 1, "file_size": size}], "caption": caption});
            (EventKind::Photo, body, caption, Some(bytes), None)
        }
        _ => {
            let Some((name, bytes)) = params.file(&inner, "document") else {
                return bad(400, "Bad Request: there is no document in the request");
            };
            let caption = params.str("caption").unwrap_or_default();
            let size = bytes.len();
            let id = State::store_file(&mut inner, &name, bytes.clone());
            let body = json!({"document": {"file_id": id, "file_unique_id": format!("u{id}"),
                "file_name": name, "file_size": size}, "caption": caption});
            (EventKind::Document, body, caption, Some(bytes), Some(name))
        }
    };
    let mut body = body;
    if let Some(markup) = &markup {
        body["reply_markup"] = markup.clone();
    }
    let message = State::new_message(&mut inner, chat_id, State::bot_user(), body);
    let event = Event {
        seq: 0,
        chat_id,
        message_id: message["message_id"].as_i64().unwrap_or(0),
        kind,
        text,
        bytes,
        has_bytes: false,
        file_name,
        buttons: markup.as_ref().map(buttons_of).unwrap_or_default(),
    };
    state.log(&mut inner, event);
    ok(message)
}

fn edit(state: &State, method: &str, params: &Params) -> Response {
    let (Some(chat_id), Some(message_id)) = (params.int("chat_id"), params.int("message_id"))
    else {
        return bad(400, "Bad Request: chat_id and message_id are required");
    };
    let mut inner = state.lock();
    let Some(mut message) = inner.messages.get(&(chat_id, message_id)).cloned() else {
        return bad(400, "Bad Request: message to edit not found");
    };
    if message["from"]["id"].as_i64() != Some(BOT_ID) {
        return bad(400, "Bad Request: message can't be edited");
    }
    let mut bytes = None;
    match method {
        "editmessagetext" => message["text"] = json!(params.str("text").unwrap_or_default()),
        "editmessagecaption" => {
            message["caption"] = json!(params.str("caption").unwrap_or_default())
        }
        "editmessagemedia" => {
            let media = params.values.get("media").cloned().unwrap_or(Value::Null);
            let reference = media["media"].as_str().unwrap_or("").to_owned();
            let Some((name, data)) = params.file_ref(&inner, &reference) else {
                return bad(400, "Bad Request: there is no media in the request");
            };
            let id = State::store_file(&mut inner, &name, data.clone());
            message["photo"] = json!([{"file_id": id, "file_unique_id": format!("u{id}"),
                "width": 1, "height": 1, "file_size": data.len()}]);
            message["caption"] = media.get("caption").cloned().unwrap_or(json!(""));
            bytes = Some(data);
        }
        _ => {}
    }
    match params.values.get("reply_markup") {
        Some(markup) => message["reply_markup"] = markup.clone(),
        None => {
            if let Some(m) = message.as_object_mut() {
                m.remove("reply_markup");
            }
        }
    }
    message["edit_date"] = json!(1_780_000_001);
    inner
        .messages
        .insert((chat_id, message_id), message.clone());
    let text = message["text"]
        .as_str()
        .or(message["caption"].as_str())
        .unwrap_or("")
        .to_owned();
    let event = Event {
        seq: 0,
        chat_id,
        message_id,
        kind: EventKind::Edit,
        text,
        bytes,
        has_bytes: false,
        file_name: None,
        buttons: buttons_of(&message["reply_markup"]),
    };
    state.log(&mut inner, event);
    ok(message)
}

/// `GET /file/bot<token>/<path>`: a file's bytes (paths arrive percent-encoded).
pub(crate) async fn download(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    Path((_bot, path)): Path<(String, String)>,
) -> Response {
    let path = percent_encoding::percent_decode_str(&path)
        .decode_utf8_lossy()
        .into_owned();
    let inner = state.lock();
    match inner.files.values().find(|(p, _)| *p == path) {
        Some((_, bytes)) => Bytes::from(bytes.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// Delivers queued updates to the registered webhook, in order, retrying on failure.
pub(crate) async fn webhook_pusher(state: Arc<State>) {
    let client = reqwest::Client::new();
    loop {
        let notified = state.updates_ready.notified();
        let next = {
            let inner = state.lock();
            inner
                .webhook
                .clone()
                .and_then(|w| inner.updates.front().cloned().map(|u| (w, u)))
        };
        let Some((hook, update)) = next else {
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
            continue;
        };
        let mut request = client.post(&hook.url).json(&update);
        if let Some(secret) = &hook.secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                let mut inner = state.lock();
                if inner.updates.front() == Some(&update) {
                    inner.updates.pop_front();
                }
            }
            Ok(response) => {
                tracing::warn!("webhook answered {}", response.status());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                tracing::debug!("webhook not reachable: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
