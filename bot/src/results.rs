//! Finished results on their way to their users. A result is kept before its first attempt (in
//! the spool in-process, in Redis with a TTL in scale-out mode) and until Telegram took it; it is
//! sent once (the delivery claim); a process that restarts delivers what an earlier run kept; and
//! when the deadline passes, its user is told once, in their language.
use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{InputFile, MessageId};

use crate::app::App;
use crate::delivery::CallError;
use crate::i18n::{Msg, text};
use crate::outcome::{JobEvent, Outcome};
use crate::queue::unix_ms;
use crate::store::Finished;
use crate::ui;

/// Delivers job `id`'s result, unless another process already did (then `Outcome::Duplicate`).
pub async fn deliver(app: &App, id: u64, finished: Finished) -> Result<(), Outcome> {
    if !app.jobs.claim_delivery(id).await {
        tracing::info!(job = id, "another worker delivered this job");
        return Err(Outcome::Duplicate);
    }
    app.jobs.keep_result(id, finished.clone()).await;
    send(app, id, &finished).await
}

/// Sends a kept result with its caption and buttons, then lets it go: delivered, refused for
/// good, or given up at the deadline (its user is told). A gone chat drops it silently.
async fn send(app: &App, id: u64, finished: &Finished) -> Result<(), Outcome> {
    let chat = ChatId(finished.chat);
    let lang = finished.lang;
    let keyboard = ui::result_keyboard(id, &finished.draft, lang);
    let sent = app
        .telegram
        .must("result", chat, |api| {
            let photo = InputFile::memory(finished.jpeg.clone()).file_name("stylegram.jpg");
            api.send_photo(chat, photo)
                .caption(finished.caption.clone())
                .reply_markup(keyboard.clone())
        })
        .await;
    let outcome = match sent {
        Ok(_) => Ok(()),
        Err(CallError::Gone) => Err(Outcome::Gone),
        Err(e) => {
            tracing::error!(job = id, "cannot deliver the result: {e}");
            let told = app
                .telegram
                .must("undeliverable", chat, |api| {
                    api.send_message(chat, text(lang, Msg::Undeliverable))
                })
                .await;
            if let Err(e) = told {
                tracing::warn!(job = id, "cannot tell the user either: {e}");
            }
            Err(Outcome::Failed)
        }
    };
    app.jobs.delivered(id).await;
    if let (Ok(()), Some(status)) = (&outcome, finished.status_message) {
        app.telegram
            .may_drop("status", chat, |api| {
                api.delete_message(chat, MessageId(status))
            })
            .await;
    }
    outcome
}

/// Delivers the results an earlier run of this process kept and never sent (the spool), oldest
/// first, and counts them in the statistics.
pub async fn resume(app: Arc<App>) {
    let pending = app.jobs.undelivered().await;
    if !pending.is_empty() {
        tracing::info!(
            results = pending.len(),
            "delivering results kept by an earlier run"
        );
    }
    for (id, finished) in pending {
        // Back in memory too, for the buttons under the result.
        app.jobs.keep_result(id, finished.clone()).await;
        let outcome = match send(&app, id, &finished).await {
            Ok(()) => Outcome::Done,
            Err(o) => o,
        };
        let age = unix_ms().saturating_sub(finished.finished_ms) as f64 / 1000.0;
        app.stats.record(&JobEvent {
            mode: finished.draft.mode,
            outcome,
            latency: age,
            overhead: 0.0,
            stages: Vec::new(),
        });
    }
}
