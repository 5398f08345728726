//! The demo side of the fake server: act as a user over HTTP (`/control/...`) and a one-page chat
//! at `/` that uses it, so `make run` can be tried without Telegram; and switch faults on and off
//! (`/control/faults`, `/control/block`).
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::faults::FaultRule;
use crate::state::{State, UserSpec};

/// The chat page.
const PAGE: &str = include_str!("page.html");

pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/control/text", post(text))
        .route("/control/upload", post(upload))
        .route("/control/press", post(press))
        .route("/control/events", get(events))
        .route("/control/bytes/{seq}", get(bytes))
        .route(
            "/control/faults",
            post(add_fault).delete(clear_faults).get(faults_served),
        )
        .route("/control/block", post(block))
}

/// `POST /control/faults` with a [`FaultRule`] as JSON, e.g.
/// `{"method": "sendPhoto", "fault": {"kind": "too_many_requests", "retry_after": 2}, "rate": 0.05}`.
async fn add_fault(AxState(state): AxState<Arc<State>>, axum::Json(rule): axum::Json<FaultRule>) {
    state.add_fault(&rule);
}

/// `DELETE /control/faults`: every fault rule off.
async fn clear_faults(AxState(state): AxState<Arc<State>>) {
    state.clear_faults();
}

/// `GET /control/faults`: the faults served so far, by label.
async fn faults_served(
    AxState(state): AxState<Arc<State>>,
) -> axum::Json<std::collections::HashMap<String, u64>> {
    axum::Json(state.faults_served())
}

#[derive(Deserialize)]
struct BlockRequest {
    chat_id: i64,
    #[serde(default = "yes")]
    blocked: bool,
}

fn yes() -> bool {
    true
}

/// `POST /control/block` with `{"chat_id": 42}` (or `"blocked": false` to unblock).
async fn block(AxState(state): AxState<Arc<State>>, axum::Json(r): axum::Json<BlockRequest>) {
    state.block(r.chat_id, r.blocked);
}

#[derive(Deserialize)]
struct TextRequest {
    user_id: i64,
    #[serde(default = "default_language")]
    language: String,
    text: String,
}

fn default_language() -> String {
    "en".into()
}

fn register(state: &State, user_id: i64, language: &str) {
    state.add_user(&UserSpec {
        id: user_id,
        first_name: format!("Demo{user_id}"),
        language: language.to_owned(),
    });
}

async fn text(AxState(state): AxState<Arc<State>>, axum::Json(r): axum::Json<TextRequest>) {
    register(&state, r.user_id, &r.language);
    state.user_text(r.user_id, &r.text);
}

#[derive(Deserialize)]
struct UploadQuery {
    user_id: i64,
    #[serde(default = "default_language")]
    language: String,
    /// "photo" or "document".
    kind: String,
    #[serde(default)]
    name: String,
}

async fn upload(
    AxState(state): AxState<Arc<State>>,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> Response {
    register(&state, q.user_id, &q.language);
    match q.kind.as_str() {
        "photo" => state.user_photo(q.user_id, body.to_vec(), 0, 0),
        "document" => {
            let name = if q.name.is_empty() { "file" } else { &q.name };
            state.user_document(q.user_id, body.to_vec(), name, "application/octet-stream");
        }
        _ => return (StatusCode::BAD_REQUEST, "kind is photo or document").into_response(),
    }
    StatusCode::OK.into_response()
}

#[derive(Deserialize)]
struct PressRequest {
    user_id: i64,
    message_id: i64,
    data: String,
}

async fn press(AxState(state): AxState<Arc<State>>, axum::Json(r): axum::Json<PressRequest>) {
    state.user_press(r.user_id, r.message_id, &r.data);
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
}

async fn events(
    AxState(state): AxState<Arc<State>>,
    Query(q): Query<EventsQuery>,
) -> axum::Json<Vec<crate::Event>> {
    axum::Json(
        state
            .events()
            .into_iter()
            .filter(|e| e.seq > q.after)
            .collect(),
    )
}

async fn bytes(AxState(state): AxState<Arc<State>>, Path(seq): Path<u64>) -> Response {
    let inner = state.lock();
    match inner
        .events
        .iter()
        .find(|e| e.seq == seq)
        .and_then(|e| e.bytes.clone())
    {
        Some(b) => Bytes::from(b).into_response(),
        None => (StatusCode::NOT_FOUND, "no bytes for this event").into_response(),
    }
}
