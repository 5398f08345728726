//! Painters: take jobs from a lane, run the engine off the async runtime, keep the user informed
//! (position, percent, ETA, previews) and hand the result to [`crate::results`]. On shutdown they
//! stop taking jobs and [`drain`] what runs.
use std::sync::Arc;
use std::time::{Duration, Instant};

use stylegram_engine::{
    EngineError, Flow, Mode, Output, Progress, Request, StyleSource, WeightedStyle,
};
use teloxide::prelude::*;
use teloxide::types::{ChatAction, InputFile, InputMedia, InputMediaPhoto, MessageId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{App, FileProblem};
use crate::i18n::{Msg, text};
use crate::jobs::LocalJobs;
use crate::outcome::JobEvent;
use crate::outcome::Outcome;
use crate::queue::{Job, Ticket, unix_ms};
use crate::redis_queue::RedisQueue;
use crate::results;
use crate::session::StyleChoice;
use crate::store::Finished;
use crate::ui;

/// How long stopped jobs are waited for once the grace period is over: their users are told, and
/// deliveries still retrying stay kept for the next start. A stop takes at most the grace period
/// plus this.
const LAST_WAIT: Duration = Duration::from_secs(10);

/// Starts this process's painters over the in-process queue (`app.config`'s worker pools), on
/// `tracker`; they stop taking jobs when `stop` is cancelled.
pub fn spawn_painters(
    app: &Arc<App>,
    jobs: &Arc<LocalJobs>,
    stop: &CancellationToken,
    tracker: &TaskTracker,
) {
    for (mode, count) in [
        (Mode::Fast, app.config.fast_workers),
        (Mode::Quality, app.config.quality_workers),
    ] {
        for _ in 0..count {
            tracker.spawn(work(app.clone(), jobs.clone(), mode, stop.clone()));
        }
    }
}

/// Starts the updaters that tell waiting users their place in line.
pub fn spawn_position_updates(app: &Arc<App>) {
    for mode in [Mode::Fast, Mode::Quality] {
        tokio::spawn(update_positions(app.clone(), mode));
    }
}

async fn work(app: Arc<App>, jobs: Arc<LocalJobs>, mode: Mode, stop: CancellationToken) {
    loop {
        let ticket = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            ticket = jobs.queue().next(mode) => ticket,
        };
        let event = run_and_measure(&app, &ticket).await;
        if event.outcome == Outcome::Interrupted {
            tell_interrupted(&app, &ticket.job).await;
        }
        app.stats.record(&event);
        jobs.queue().finish(&ticket);
    }
}

/// Tells a job's user that a shutdown stopped it and how to resend it.
pub async fn tell_interrupted(app: &App, job: &Job) {
    let chat = ChatId(job.chat);
    let words = text(job.lang, Msg::Interrupted);
    let told = match job.status_message {
        Some(status) => app
            .telegram
            .must("interrupted", chat, |api| {
                api.edit_message_text(chat, MessageId(status), words)
            })
            .await
            .map(|_| ()),
        None => app
            .telegram
            .must("interrupted", chat, |api| api.send_message(chat, words))
            .await
            .map(|_| ()),
    };
    if let Err(e) = told {
        tracing::warn!(job = job.id, "cannot tell the user their job stopped: {e}");
    }
}

/// After a shutdown signal: tells the users of waiting in-process jobs (`local`) that they were not
/// started, gives running jobs the grace period, then stops them and waits a little longer for
/// their deliveries. What is still undelivered stays kept (spool or Redis) for the next start.
pub async fn drain(app: &Arc<App>, local: Option<&LocalJobs>, tracker: &TaskTracker) {
    if let Some(local) = local {
        for job in local.queue().drain_waiting() {
            let app = app.clone();
            tracker.spawn(async move { tell_interrupted(&app, &job).await });
        }
    }
    tracker.close();
    let grace = app.config.shutdown_grace();
    if tokio::time::timeout(grace, tracker.wait()).await.is_ok() {
        return;
    }
    let running: Vec<Arc<Ticket>> = lock_running(app).values().cloned().collect();
    tracing::warn!(
        jobs = running.len(),
        "the grace period is over; stopping the jobs still running"
    );
    for ticket in running {
        ticket.interrupt();
    }
    if tokio::time::timeout(LAST_WAIT, tracker.wait())
        .await
        .is_ok()
    {
        return;
    }
    tracing::warn!("deliveries still in progress stay kept for the next start");
    if local.is_some() {
        // Jobs that did not stop in time (an engine step that cannot be interrupted): their users
        // are told here, since their painters will not get to it before the process ends.
        // (Painted ones are kept for delivery after the restart: nothing to resend.)
        let stuck: Vec<Arc<Ticket>> = lock_running(app)
            .values()
            .filter(|t| !t.is_painted())
            .cloned()
            .collect();
        let telling = async {
            for ticket in &stuck {
                tell_interrupted(app, &ticket.job).await;
            }
        };
        let _ = tokio::time::timeout(LAST_WAIT, telling).await;
    }
}

fn lock_running(
    app: &App,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Arc<Ticket>>> {
    app.running.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a job and measures it for the statistics; once it is over (unless a shutdown interrupted
/// it), its pictures are forgotten.
pub async fn run_and_measure(app: &Arc<App>, ticket: &Arc<Ticket>) -> JobEvent {
    let picked = Instant::now();
    lock_running(app).insert(ticket.job.id, ticket.clone());
    let mut stages = Vec::new();
    let (outcome, engine_seconds) = match run(app, ticket, &mut stages).await {
        Ok(seconds) => (Outcome::Done, seconds),
        Err(o) => (o, 0.0),
    };
    lock_running(app).remove(&ticket.job.id);
    if outcome != Outcome::Interrupted {
        app.forget_pictures(pictures(&ticket.job)).await;
    }
    JobEvent {
        mode: ticket.job.draft.mode,
        outcome,
        latency: ticket.submitted.elapsed().as_secs_f64(),
        overhead: (picked.elapsed().as_secs_f64() - engine_seconds).max(0.0),
        stages,
    }
}

/// The Telegram file ids of a job's photo and own style pictures.
fn pictures(job: &Job) -> impl Iterator<Item = &str> {
    let draft = &job.draft;
    let own = [&draft.style, &draft.mix]
        .into_iter()
        .flatten()
        .filter_map(|s| match s {
            StyleChoice::Picture(id) => Some(id.as_str()),
            StyleChoice::Painting(_) => None,
        });
    std::iter::once(draft.photo.as_str()).chain(own)
}

/// Records the jobs the worker processes finished in this process's statistics.
pub async fn read_events(app: Arc<App>, redis: Arc<RedisQueue>) {
    loop {
        match redis.next_event().await {
            Ok(Some(e)) => app.stats.record(&e),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("cannot read job statistics from Redis: {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Edits the status messages of waiting jobs whose position changed, every progress interval.
async fn update_positions(app: Arc<App>, mode: Mode) {
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
            let (chat, lang) = (ChatId(job.chat), job.lang);
            app.telegram
                .may_drop("position", chat, |api| {
                    api.edit_message_text(chat, MessageId(message), ui::queued_text(lang, position))
                        .reply_markup(ui::cancel_keyboard(lang))
                })
                .await;
        }
    }
}

async fn request(app: &App, ticket: &Ticket) -> Result<Request, FileProblem> {
    let draft = &ticket.job.draft;
    let content = app.file_bytes(&draft.photo, None).await?;
    let mut styles = Vec::new();
    for choice in draft.style.iter().chain(draft.mix.iter()) {
        let source = match choice {
            StyleChoice::Picture(id) => StyleSource::Picture(app.file_bytes(id, None).await?),
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

/// Sends `words` to the job's user: a refusal or a failure, which must get through.
async fn tell(app: &App, job: &Job, words: String) {
    let chat = ChatId(job.chat);
    if let Err(e) = app
        .telegram
        .must("refusal", chat, |api| api.send_message(chat, words.clone()))
        .await
    {
        tracing::warn!(job = job.id, "cannot tell the user: {e}");
    }
}

/// Runs one job to its end; the engine's seconds on success (with the stages' seconds in
/// `stages`), the outcome otherwise.
async fn run(
    app: &Arc<App>,
    ticket: &Arc<Ticket>,
    stages: &mut Vec<(String, f64)>,
) -> Result<f64, Outcome> {
    let job = &ticket.job;
    let chat = ChatId(job.chat);
    let lang = job.lang;
    if ticket.is_cancelled() {
        return Err(Outcome::Cancelled);
    }
    if app.telegram.is_gone(chat) {
        tracing::info!(job = job.id, "dropped: the user's chat is gone");
        return Err(Outcome::Gone);
    }
    // An earlier attempt painted it but stopped before Telegram took it: deliver, do not repaint.
    if let Some(finished) = app.jobs.undelivered_result(job.id).await {
        tracing::info!(
            job = job.id,
            "delivering the result an earlier attempt painted"
        );
        return results::deliver(app, job.id, finished).await.map(|()| 0.0);
    }
    let fetching = Instant::now();
    let request = match request(app, ticket).await {
        Ok(r) => {
            stages.push(("download".into(), fetching.elapsed().as_secs_f64()));
            r
        }
        Err(problem) => {
            tracing::warn!(job = job.id, "cannot fetch the job's pictures: {problem:?}");
            tell(app, job, text(lang, problem.message()).to_owned()).await;
            return Err(Outcome::Failed);
        }
    };
    match ticket.status_message() {
        Some(status) => {
            app.telegram
                .may_drop("progress", chat, |api| {
                    api.edit_message_text(chat, MessageId(status), ui::progress_text(lang, 0.0, 0))
                        .reply_markup(ui::cancel_keyboard(lang))
                })
                .await;
        }
        None => {
            app.telegram
                .may_drop("chat action", chat, |api| {
                    api.send_chat_action(chat, ChatAction::UploadPhoto)
                })
                .await;
        }
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
    let reporter = tokio::spawn(report_progress(app.clone(), ticket.clone(), rx));
    let result = running
        .await
        .unwrap_or_else(|e| Err(EngineError::Failed(e.to_string())));
    // The user may start the next job as soon as the engine is done with this one (an interrupted
    // job keeps its user's slot: it goes back on the queue, or its user is told).
    if !ticket.is_interrupted() {
        app.jobs.release(ticket).await;
    }
    if let Some(preview) = reporter.await.ok().flatten() {
        app.telegram
            .may_drop("preview", chat, |api| api.delete_message(chat, preview))
            .await;
    }
    match result {
        Ok(output) => {
            ticket.mark_painted();
            let finished = finished(app, job, &output);
            stages.extend(output.stages.iter().cloned());
            let sending = Instant::now();
            let delivered = results::deliver(app, job.id, finished).await;
            stages.push(("upload".into(), sending.elapsed().as_secs_f64()));
            delivered.map(|()| output.seconds)
        }
        Err(EngineError::Cancelled) if ticket.is_interrupted() => Err(Outcome::Interrupted),
        Err(EngineError::Cancelled) => {
            if let Some(status) = ticket.status_message() {
                app.telegram
                    .may_drop("cancelled", chat, |api| {
                        api.edit_message_text(chat, MessageId(status), text(lang, Msg::Cancelled))
                    })
                    .await;
            }
            Err(Outcome::Cancelled)
        }
        Err(EngineError::BadImage(reason)) => {
            tracing::info!(job = job.id, "unusable picture: {reason}");
            tell(
                app,
                job,
                format!("{} ({reason})", text(lang, Msg::NotAnImage)),
            )
            .await;
            Err(Outcome::Failed)
        }
        Err(e) => {
            tracing::error!(job = job.id, "engine failed: {e}");
            tell(app, job, text(lang, Msg::Failed).to_owned()).await;
            Err(Outcome::Failed)
        }
    }
}

/// What a job's delivery sends.
fn finished(app: &App, job: &Job, output: &Output) -> Finished {
    Finished {
        user: job.user,
        chat: job.chat,
        lang: job.lang,
        draft: job.draft.clone(),
        caption: ui::result_caption(app, &job.draft, job.lang, output.seconds),
        status_message: job.status_message,
        finished_ms: unix_ms(),
        jpeg: output.picture.jpeg.clone(),
    }
}

/// Forwards engine progress to the user: the status message's percent and ETA, and a preview
/// photo edited in place. Returns the preview message, to delete once the result is there. Both
/// may be skipped when Telegram asks the bot to slow down.
async fn report_progress(
    app: Arc<App>,
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
            let words = ui::progress_text(lang, progress.fraction, progress.eta.as_secs());
            app.telegram
                .may_drop("progress", chat, |api| {
                    api.edit_message_text(chat, MessageId(status), words.clone())
                        .reply_markup(ui::cancel_keyboard(lang))
                })
                .await;
        }
        if let Some(preview) = progress.preview {
            let caption = lang.pick("Preview", "Промежуточный результат");
            let file = || InputFile::memory(preview.jpeg.clone()).file_name("preview.jpg");
            match preview_message {
                None => {
                    let sent = app
                        .telegram
                        .call(
                            "preview",
                            chat,
                            crate::delivery::Importance::MayDrop,
                            |api| api.send_photo(chat, file()).caption(caption),
                        )
                        .await;
                    if let Ok(m) = sent {
                        preview_message = Some(m.id);
                        app.jobs.set_preview(ticket.job.id, m.id.0).await;
                    }
                }
                Some(id) => {
                    app.telegram
                        .may_drop("preview", chat, |api| {
                            let media =
                                InputMedia::Photo(InputMediaPhoto::new(file()).caption(caption));
                            api.edit_message_media(chat, id, media)
                        })
                        .await;
                }
            }
        }
    }
    preview_message
}
