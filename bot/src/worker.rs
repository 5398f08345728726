//! Workers: take jobs from a lane, run the engine off the async runtime, keep the user informed
//! (position, percent, ETA, previews) and deliver the result.
use std::sync::Arc;
use std::time::{Duration, Instant};

use stylegram_engine::{
    EngineError, Flow, Mode, Output, Progress, Request, StyleSource, WeightedStyle,
};
use teloxide::prelude::*;
use teloxide::types::{InputFile, InputMedia, InputMediaPhoto, MessageId};

use crate::app::{App, FileProblem};
use crate::delivery;
use crate::i18n::{Msg, text};
use crate::jobs::LocalJobs;
use crate::outcome::Outcome;
use crate::queue::Ticket;
use crate::redis_queue::{JobEvent, RedisQueue};
use crate::session::StyleChoice;
use crate::store::Finished;
use crate::ui;

/// Starts this process's painters over the in-process queue: `app.config`'s worker pools.
pub fn spawn_painters(app: &Arc<App>, bot: &Bot, jobs: &Arc<LocalJobs>) {
    for (mode, count) in [
        (Mode::Fast, app.config.fast_workers),
        (Mode::Quality, app.config.quality_workers),
    ] {
        for _ in 0..count {
            tokio::spawn(work(app.clone(), bot.clone(), jobs.clone(), mode));
        }
    }
}

/// Starts the updaters that tell waiting users their place in line.
pub fn spawn_position_updates(app: &Arc<App>, bot: &Bot) {
    for mode in [Mode::Fast, Mode::Quality] {
        tokio::spawn(update_positions(app.clone(), bot.clone(), mode));
    }
}

async fn work(app: Arc<App>, bot: Bot, jobs: Arc<LocalJobs>, mode: Mode) {
    loop {
        let ticket = jobs.queue().next(mode).await;
        let event = run_and_measure(&app, &bot, &ticket).await;
        app.stats
            .record(mode, event.outcome, event.latency, event.overhead);
        jobs.queue().finish(&ticket);
    }
}

/// Runs a job and measures it for the statistics.
pub async fn run_and_measure(app: &Arc<App>, bot: &Bot, ticket: &Arc<Ticket>) -> JobEvent {
    let picked = Instant::now();
    let (outcome, engine_seconds) = match run(app, bot, ticket).await {
        Ok(seconds) => (Outcome::Done, seconds),
        Err(o) => (o, 0.0),
    };
    JobEvent {
        mode: ticket.job.draft.mode,
        outcome,
        latency: ticket.submitted.elapsed().as_secs_f64(),
        overhead: (picked.elapsed().as_secs_f64() - engine_seconds).max(0.0),
    }
}

/// Records the jobs the worker processes finished in this process's statistics.
pub async fn read_events(app: Arc<App>, redis: Arc<RedisQueue>) {
    loop {
        match redis.next_event().await {
            Ok(Some(e)) => app.stats.record(e.mode, e.outcome, e.latency, e.overhead),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("cannot read job statistics from Redis: {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Edits the status messages of waiting jobs whose position changed, every progress interval.
async fn update_positions(app: Arc<App>, bot: Bot, mode: Mode) {
    let mut shown: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let interval = Duration::from_secs_f64(app.config.progress_seconds);
    loop {
        tokio::time::sleep(interval).await;
        let waiting = match app.jobs.waiting(mode).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("cannot read the line: {e:#}");
                continue;
            }
        };
        shown.retain(|id, _| waiting.iter().any(|(_, j)| j.id == *id));
        for (position, job) in waiting {
            let Some(message) = job.status_message else {
                continue;
            };
            if shown.get(&job.id) == Some(&position) {
                continue;
            }
            shown.insert(job.id, position);
            let lang = job.lang;
            let _ = bot
                .edit_message_text(
                    ChatId(job.chat),
                    MessageId(message),
                    ui::queued_text(lang, position),
                )
                .reply_markup(ui::cancel_keyboard(lang))
                .await;
        }
    }
}

async fn request(app: &App, bot: &Bot, ticket: &Ticket) -> Result<Request, FileProblem> {
    let draft = &ticket.job.draft;
    let content = app.file_bytes(bot, &draft.photo, None).await?;
    let mut styles = Vec::new();
    for choice in draft.style.iter().chain(draft.mix.iter()) {
        let source = match choice {
            StyleChoice::Picture(id) => StyleSource::Picture(app.file_bytes(bot, id, None).await?),
            StyleChoice::Painting(id) => StyleSource::Painting(id.clone()),
        };
        styles.push(WeightedStyle {
            source,
            weight: 1.0,
        });
    }
    Ok(Request {
        content,
        styles,
        mode: draft.mode,
        strength: draft.strength,
        preserve_colors: draft.preserve_colors,
    })
}

/// Runs one job to its end; the engine's seconds on success, the outcome otherwise.
async fn run(app: &Arc<App>, bot: &Bot, ticket: &Arc<Ticket>) -> Result<f64, Outcome> {
    let job = &ticket.job;
    let chat = ChatId(job.chat);
    let lang = job.lang;
    if ticket.is_cancelled() {
        return Err(Outcome::Cancelled);
    }
    let request = match request(app, bot, ticket).await {
        Ok(r) => r,
        Err(problem) => {
            tracing::warn!(job = job.id, "cannot fetch the job's pictures: {problem:?}");
            let _ = bot.send_message(chat, text(lang, problem.message())).await;
            return Err(Outcome::Failed);
        }
    };
    if let Some(status) = ticket.status_message() {
        let _ = bot
            .edit_message_text(chat, MessageId(status), ui::progress_text(lang, 0.0, 0))
            .reply_markup(ui::cancel_keyboard(lang))
            .await;
    } else {
        let _ = bot
            .send_chat_action(chat, teloxide::types::ChatAction::UploadPhoto)
            .await;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Progress>(8);
    let engine = app.engine.clone();
    let cancel = ticket.clone();
    let running = tokio::task::spawn_blocking(move || {
        engine.run(&request, &mut |p: Progress| {
            let _ = tx.try_send(p);
            if cancel.is_cancelled() {
                Flow::Stop
            } else {
                Flow::Continue
            }
        })
    });
    let reporter = tokio::spawn(report_progress(
        app.clone(),
        bot.clone(),
        ticket.clone(),
        rx,
    ));
    let result = running
        .await
        .unwrap_or_else(|e| Err(EngineError::Failed(e.to_string())));
    // The user may start the next job as soon as the engine is done with this one.
    app.jobs.release(ticket).await;
    let preview = reporter.await.ok().flatten();
    if let Some(preview) = preview {
        let _ = bot.delete_message(chat, preview).await;
    }
    match result {
        Ok(output) => deliver(app, bot, ticket, output).await,
        Err(EngineError::Cancelled) => {
            if let Some(status) = ticket.status_message() {
                let _ = bot
                    .edit_message_text(chat, MessageId(status), text(lang, Msg::Cancelled))
                    .await;
            }
            Err(Outcome::Cancelled)
        }
        Err(EngineError::BadImage(reason)) => {
            tracing::info!(job = job.id, "unusable picture: {reason}");
            let _ = bot
                .send_message(chat, format!("{} ({reason})", text(lang, Msg::NotAnImage)))
                .await;
            Err(Outcome::Failed)
        }
        Err(e) => {
            tracing::error!(job = job.id, "engine failed: {e}");
            let _ = bot.send_message(chat, text(lang, Msg::Failed)).await;
            Err(Outcome::Failed)
        }
    }
}

/// Forwards engine progress to the user: the status message's percent and ETA, and a preview
/// photo edited in place. Returns the preview message, to delete once the result is there.
async fn report_progress(
    app: Arc<App>,
    bot: Bot,
    ticket: Arc<Ticket>,
    mut rx: tokio::sync::mpsc::Receiver<Progress>,
) -> Option<MessageId> {
    let chat = ChatId(ticket.job.chat);
    let lang = ticket.job.lang;
    let interval = Duration::from_secs_f64(app.config.progress_seconds);
    let mut last_edit: Option<Instant> = None;
    let mut preview_message: Option<MessageId> = None;
    while let Some(progress) = rx.recv().await {
        if let Some(status) = ticket.status_message()
            && last_edit.is_none_or(|t| t.elapsed() >= interval)
        {
            last_edit = Some(Instant::now());
            let _ = bot
                .edit_message_text(
                    chat,
                    MessageId(status),
                    ui::progress_text(lang, progress.fraction, progress.eta.as_secs()),
                )
                .reply_markup(ui::cancel_keyboard(lang))
                .await;
        }
        if let Some(preview) = progress.preview {
            let file = InputFile::memory(preview.jpeg).file_name("preview.jpg");
            let caption = lang.pick("Preview", "Промежуточный результат");
            match preview_message {
                None => {
                    if let Ok(m) = bot.send_photo(chat, file).caption(caption).await {
                        preview_message = Some(m.id);
                        app.jobs.set_preview(ticket.job.id, m.id.0).await;
                    }
                }
                Some(id) => {
                    let media = InputMedia::Photo(InputMediaPhoto::new(file).caption(caption));
                    let _ = bot.edit_message_media(chat, id, media).await;
                }
            }
        }
    }
    preview_message
}

async fn deliver(
    app: &Arc<App>,
    bot: &Bot,
    ticket: &Ticket,
    output: Output,
) -> Result<f64, Outcome> {
    let job = &ticket.job;
    let chat = ChatId(job.chat);
    let lang = job.lang;
    if !app.jobs.claim_delivery(job.id).await {
        tracing::info!(job = job.id, "another worker delivered this job");
        return Err(Outcome::Duplicate);
    }
    let caption = ui::result_caption(app, &job.draft, lang, output.seconds);
    app.jobs
        .keep_result(
            job.id,
            Finished {
                user: job.user,
                lang,
                draft: job.draft.clone(),
                jpeg: output.picture.jpeg.clone(),
            },
        )
        .await;
    let keyboard = ui::result_keyboard(job.id, &job.draft, lang);
    let deadline = app.config.delivery_deadline();
    let sent = delivery::with_retries("result", deadline, delivery::classify, || {
        let photo = InputFile::memory(output.picture.jpeg.clone()).file_name("stylegram.jpg");
        bot.send_photo(chat, photo)
            .caption(caption.clone())
            .reply_markup(keyboard.clone())
            .into_future()
    })
    .await;
    if let Err(e) = sent {
        tracing::error!(job = job.id, "cannot send the result: {e}");
        return Err(Outcome::Failed);
    }
    app.jobs.delivered(job.id).await;
    if let Some(status) = ticket.status_message() {
        let _ = bot.delete_message(chat, MessageId(status)).await;
    }
    Ok(output.seconds)
}
