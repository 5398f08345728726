//! The handler tree: commands, messages (photos, documents, text) and button presses, each read
//! against the chat's dialogue state.
use std::sync::Arc;

use stylegram_engine::Mode;
use teloxide::dispatching::UpdateHandler;
use teloxide::dispatching::dialogue::{Dialogue, ErasedStorage};
use teloxide::prelude::*;
use teloxide::types::{InputFile, InputMedia, InputMediaPhoto, MessageId};
use teloxide::utils::command::BotCommands;

use crate::app::{App, FileProblem};
use crate::i18n::{Lang, Msg, text};
use crate::queue::{Admission, Cancelled, Job};
use crate::session::{Draft, State, StyleChoice};
use crate::ui::{self, Action, FollowUp, SettingChange};

/// The dialogue of one chat.
pub type Dlg = Dialogue<State, ErasedStorage<State>>;
type HandlerResult = anyhow::Result<()>;

/// Commands (operator commands answer only `ADMIN_IDS`).
#[derive(BotCommands, Clone, Debug)]
#[command(
    rename_rule = "lowercase",
    description = "Stylegram repaints your photo in the style of a painting."
)]
pub enum Command {
    /// Introduction.
    #[command(description = "begin")]
    Start,
    /// Help.
    #[command(description = "how it works")]
    Help,
    /// Switch language.
    #[command(description = "English / русский")]
    Lang,
    /// Cancel the current job.
    #[command(description = "stop the current job")]
    Cancel,
    /// Per-user defaults.
    #[command(description = "your defaults")]
    Settings,
    /// Operators: list models.
    #[command(description = "operators: list models")]
    Models,
    /// Operators: switch the fast model.
    #[command(description = "operators: switch the fast model")]
    Use(String),
    /// Operators: rescan the models folder.
    #[command(description = "operators: rescan the models folder")]
    Reload,
    /// Operators: queue and latency statistics.
    #[command(description = "operators: statistics")]
    Stats,
}

/// The dispatcher's handler tree.
pub fn tree() -> UpdateHandler<anyhow::Error> {
    let messages = Update::filter_message()
        .enter_dialogue::<Message, ErasedStorage<State>, State>()
        .branch(teloxide::filter_command::<Command, _>().endpoint(command))
        .branch(dptree::endpoint(message));
    // Button presses, routed per dialogue state as in teloxide's dialogue examples: the actions
    // that mean the same in every state first, then one branch per state, then "out of date".
    let callbacks = Update::filter_callback_query()
        .enter_dialogue::<CallbackQuery, ErasedStorage<State>, State>()
        .map_async(Press::read)
        .branch(dptree::filter(|p: Press| p.action.any_state()).endpoint(in_any_state))
        .branch(dptree::case![State::ChoosingStyle { draft }].endpoint(choosing_style))
        .branch(
            dptree::case![State::AwaitingStylePicture { draft }].endpoint(awaiting_style_picture),
        )
        .branch(dptree::case![State::ChoosingMix { draft }].endpoint(choosing_mix))
        .branch(dptree::case![State::Options { draft }].endpoint(options))
        .endpoint(out_of_date);
    dptree::entry()
        // A user who writes or presses a button can be reached again, even if they blocked the bot
        // before.
        .inspect(|update: Update, app: Arc<App>| {
            if let Some(user) = update.from() {
                app.telegram.reachable(ChatId(user.id.0 as i64));
            }
        })
        .branch(messages)
        .branch(callbacks)
}

/// Sends `words` to `chat`: an answer to the user, which must get through.
async fn say(app: &App, chat: ChatId, words: impl Into<String>) -> HandlerResult {
    let words = words.into();
    app.telegram
        .must("message", chat, |api| api.send_message(chat, words.clone()))
        .await?;
    Ok(())
}

async fn set(dialogue: &Dlg, state: State) -> HandlerResult {
    dialogue
        .update(state)
        .await
        .map_err(|e| anyhow::anyhow!("dialogue storage: {e}"))
}

async fn command(msg: Message, cmd: Command, dialogue: Dlg, app: Arc<App>) -> HandlerResult {
    let Some(user) = msg.from.as_ref() else {
        return Ok(());
    };
    let lang = app.lang(user).await;
    let chat = msg.chat.id;
    let admin_only = matches!(
        cmd,
        Command::Models | Command::Use(_) | Command::Reload | Command::Stats
    );
    if admin_only && !app.is_admin(user.id.0) {
        tracing::info!(user = user.id.0, "operator command refused: {cmd:?}");
        say(&app, chat, text(lang, Msg::AdminOnly)).await?;
        return Ok(());
    }
    let reply = match cmd {
        Command::Start => {
            set(&dialogue, State::Idle).await?;
            text(lang, Msg::Start).to_owned()
        }
        Command::Help => text(lang, Msg::Help).to_owned(),
        Command::Lang => {
            let new = lang.other();
            app.settings.update(user.id.0, |s| s.lang = Some(new)).await;
            text(new, Msg::LangSwitched).to_owned()
        }
        Command::Cancel => {
            set(&dialogue, State::Idle).await?;
            cancel(&app, user.id.0, lang).await;
            return Ok(());
        }
        Command::Settings => {
            let settings = app.settings.get(user.id.0).await;
            app.telegram
                .must("settings", chat, |api| {
                    api.send_message(chat, ui::settings_text(&settings, lang))
                        .reply_markup(ui::settings_keyboard(&settings, lang))
                })
                .await?;
            return Ok(());
        }
        Command::Models => models_text(&app),
        Command::Use(name) => {
            let engine = app.engine.clone();
            let name = name.trim().to_owned();
            let wanted = name.clone();
            match tokio::task::spawn_blocking(move || engine.use_model(&wanted)).await? {
                Ok(()) => match app.jobs.order_model(&name).await {
                    Ok(false) => format!("Now serving {name}."),
                    Ok(true) => {
                        format!("Now serving {name}; workers switch before their next job.")
                    }
                    Err(e) => format!("Checked {name}, but the workers were not told: {e:#}"),
                },
                Err(e) => format!("Kept {}: {e}", active_model(&app)),
            }
        }
        Command::Reload => {
            let engine = app.engine.clone();
            if let Err(e) = app.jobs.order_reload().await {
                tracing::error!("cannot ask the workers to reload: {e:#}");
            }
            match tokio::task::spawn_blocking(move || engine.reload()).await? {
                Ok(changed) if changed.is_empty() => {
                    format!("No model changed.\n\n{}", models_text(&app))
                }
                Ok(changed) => format!(
                    "Revalidated: {}\n\n{}",
                    changed.join(", "),
                    models_text(&app)
                ),
                Err(e) => format!("Reload failed: {e}"),
            }
        }
        Command::Stats => crate::ops::stats_text(&app).await,
    };
    say(&app, chat, reply).await
}

fn active_model(app: &App) -> String {
    app.engine
        .models()
        .into_iter()
        .find(|m| m.active)
        .map_or_else(|| "none".into(), |m| m.name)
}

fn models_text(app: &App) -> String {
    let lines: Vec<String> = app
        .engine
        .models()
        .into_iter()
        .map(|m| {
            let version = m.version.as_deref().unwrap_or("?");
            match (&m.problem, m.active) {
                (Some(p), true) => {
                    format!("⚠ {} {version} (serving the last valid load): {p}", m.name)
                }
                (Some(p), false) => format!("⚠ {}: {p}", m.name),
                (None, true) => format!("✅ {} {version} (active)", m.name),
                (None, false) => format!("◻ {} {version}", m.name),
            }
        })
        .collect();
    format!("Models:\n{}", lines.join("\n"))
}

async fn cancel(app: &App, user: u64, lang: Lang) {
    let chat = ChatId(user as i64);
    let answer = match app.jobs.cancel(user).await {
        Ok(Cancelled::Waiting(job)) => {
            if let Some(status) = job.status_message {
                app.telegram
                    .may_drop("status", chat, |api| {
                        api.edit_message_text(chat, MessageId(status), text(lang, Msg::Cancelled))
                    })
                    .await;
            }
            Msg::Cancelled
        }
        Ok(Cancelled::Running(_)) => Msg::Cancelled,
        Ok(Cancelled::Nothing) => Msg::NothingToCancel,
        Err(e) => {
            tracing::error!(user, "cannot cancel: {e:#}");
            Msg::Failed
        }
    };
    if let Err(e) = say(app, chat, text(lang, answer)).await {
        tracing::warn!(user, "cannot answer /cancel: {e:#}");
    }
}

/// The picture in a message: its file id and declared size, or why it is not usable.
fn picture(msg: &Message) -> Option<Result<(String, u64), FileProblem>> {
    if let Some(sizes) = msg.photo() {
        let largest = sizes.iter().max_by_key(|p| p.width * p.height)?;
        return Some(Ok((
            largest.file.id.0.clone(),
            u64::from(largest.file.size),
        )));
    }
    let doc = msg.document()?;
    let mime_ok = doc.mime_type.as_ref().is_some_and(|m| m.type_() == "image");
    let name_ok = doc.file_name.as_deref().is_some_and(|n| {
        let n = n.to_ascii_lowercase();
        [
            ".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff",
        ]
        .iter()
        .any(|e| n.ends_with(e))
    });
    if !(mime_ok || name_ok) {
        return Some(Err(FileProblem::NotAnImage(format!(
            "document of type {}",
            doc.mime_type
                .as_ref()
                .map_or("unknown".to_owned(), ToString::to_string)
        ))));
    }
    Some(Ok((doc.file.id.0.clone(), u64::from(doc.file.size))))
}

async fn message(msg: Message, dialogue: Dlg, state: State, app: Arc<App>) -> HandlerResult {
    let Some(user) = msg.from.as_ref() else {
        return Ok(());
    };
    let lang = app.lang(user).await;
    let chat = msg.chat.id;
    let file = match picture(&msg) {
        None => {
            let hint = match state {
                State::ChoosingStyle { .. } | State::AwaitingStylePicture { .. } => {
                    Msg::ChooseStyle
                }
                State::ChoosingMix { .. } => Msg::SendMixPicture,
                State::Idle | State::Options { .. } => Msg::SendPhotoFirst,
            };
            say(&app, chat, text(lang, hint)).await?;
            return Ok(());
        }
        Some(Err(problem)) => {
            tracing::info!(user = user.id.0, "file refused: {problem:?}");
            say(&app, chat, text(lang, problem.message())).await?;
            return Ok(());
        }
        Some(Ok((id, size))) => match app.checked_image(&id, Some(size)).await {
            Ok(()) => id,
            Err(problem) => {
                tracing::info!(user = user.id.0, "picture refused: {problem:?}");
                say(&app, chat, text(lang, problem.message())).await?;
                return Ok(());
            }
        },
    };
    match state {
        State::ChoosingStyle { mut draft } | State::AwaitingStylePicture { mut draft } => {
            draft.style = Some(StyleChoice::Picture(file));
            show_options(&app, chat, lang, &dialogue, draft).await
        }
        State::ChoosingMix { mut draft } => {
            draft.mix = Some(StyleChoice::Picture(file));
            show_options(&app, chat, lang, &dialogue, draft).await
        }
        State::Idle | State::Options { .. } => {
            let draft = Draft::new(file, &app.settings.get(user.id.0).await);
            set(&dialogue, State::ChoosingStyle { draft }).await?;
            send_gallery(&app, chat, lang, Msg::ChooseStyle).await
        }
    }
}

/// Gallery page `page` as a JPEG, drawn once per page and then served from [`App::galleries`].
async fn gallery_picture(app: &Arc<App>, page: usize) -> anyhow::Result<Vec<u8>> {
    let key = page.to_string();
    if let Some(jpeg) = app.galleries.get(&key) {
        return Ok(jpeg.as_ref().clone());
    }
    // One drawing at a time: when many users arrive at once, the first draws the page and the
    // others wait for it instead of each decoding the paintings (that stampede cost 400 MB).
    let _drawing = app.drawing_gallery.lock().await;
    if let Some(jpeg) = app.galleries.get(&key) {
        return Ok(jpeg.as_ref().clone());
    }
    let ids = ui::page_ids(app, page);
    let engine = app.engine.clone();
    let picture = tokio::task::spawn_blocking(move || engine.gallery(&ids)).await??;
    let size = picture.jpeg.len();
    app.galleries
        .insert(key, Arc::new(picture.jpeg.clone()), size);
    Ok(picture.jpeg)
}

async fn send_gallery(app: &Arc<App>, chat: ChatId, lang: Lang, caption: Msg) -> HandlerResult {
    let jpeg = gallery_picture(app, 0).await?;
    app.telegram
        .must("gallery", chat, |api| {
            api.send_photo(
                chat,
                InputFile::memory(jpeg.clone()).file_name("styles.jpg"),
            )
            .caption(text(lang, caption))
            .reply_markup(ui::gallery_keyboard(app, 0, lang))
        })
        .await?;
    Ok(())
}

async fn show_options(
    app: &App,
    chat: ChatId,
    lang: Lang,
    dialogue: &Dlg,
    draft: Draft,
) -> HandlerResult {
    app.telegram
        .must("options", chat, |api| {
            api.send_message(chat, ui::options_text(app, &draft, lang))
                .reply_markup(ui::options_keyboard(&draft, lang))
        })
        .await?;
    set(dialogue, State::Options { draft }).await
}

/// Shows the changed options in their panel ("message not modified" is fine).
async fn edit_options(app: &App, at: (ChatId, MessageId), lang: Lang, draft: &Draft) {
    let edited = app
        .telegram
        .must("options", at.0, |api| {
            api.edit_message_text(at.0, at.1, ui::options_text(app, draft, lang))
                .reply_markup(ui::options_keyboard(draft, lang))
        })
        .await;
    if let Err(e) = edited {
        tracing::debug!("options panel not edited: {e}");
    }
}

/// Queues `draft` for `user`, with a status message for quality jobs and for fast jobs that must
/// wait. Returns the message for the button's answer, if any.
async fn submit(app: &App, user: u64, lang: Lang, draft: Draft) -> anyhow::Result<Option<Msg>> {
    let chat = ChatId(user as i64);
    let mode = draft.mode;
    // The pictures were downloaded and checked here: whoever paints the job reads these bytes.
    let own_styles = [&draft.style, &draft.mix].into_iter().flatten();
    let file_ids = std::iter::once(&draft.photo).chain(own_styles.filter_map(|s| match s {
        StyleChoice::Picture(id) => Some(id),
        StyleChoice::Painting(_) => None,
    }));
    for id in file_ids {
        if let Some(bytes) = app.files.get(id) {
            app.jobs.keep_picture(id, bytes).await;
        }
    }
    // Only for the position shown; if Redis cannot say, submitting reports the problem.
    let [fast, quality] = app
        .jobs
        .depths()
        .await
        .unwrap_or([(Mode::Fast, 0, 0), (Mode::Quality, 0, 0)]);
    let (_, waiting, running) = if mode == Mode::Fast { fast } else { quality };
    let workers = match mode {
        Mode::Fast => app.config.fast_workers,
        Mode::Quality => app.config.quality_workers,
    };
    let workers = app.jobs.capacity(mode, workers).await.unwrap_or(workers);
    let must_wait = waiting + running >= workers;
    let status_message = if mode == Mode::Quality || must_wait {
        let position = (waiting + running + 1).saturating_sub(workers);
        let m = app
            .telegram
            .must("status", chat, |api| {
                api.send_message(chat, ui::queued_text(lang, position))
                    .reply_markup(ui::cancel_keyboard(lang))
            })
            .await?;
        Some(m.id.0)
    } else {
        None
    };
    let job = Job {
        id: 0,
        submitted_ms: 0,
        user,
        chat: chat.0,
        lang,
        draft,
        status_message,
    };
    let refusal = match app.jobs.submit(job).await {
        Ok(Admission::Queued { .. }) => return Ok(None),
        Ok(Admission::Busy) => Msg::Busy,
        Ok(Admission::RateLimited) => Msg::RateLimited,
        Err(e) => {
            tracing::error!(user, "cannot queue the job: {e:#}");
            Msg::Failed
        }
    };
    match status_message {
        Some(id) => {
            app.telegram
                .must("status", chat, |api| {
                    api.edit_message_text(chat, MessageId(id), text(lang, refusal))
                })
                .await?;
        }
        None => say(app, chat, text(lang, refusal)).await?,
    }
    Ok(Some(refusal))
}

/// A button press: who pressed what, where, in which language.
#[derive(Clone)]
struct Press {
    query: CallbackQuery,
    action: Action,
    user: u64,
    chat: ChatId,
    lang: Lang,
    /// The message that carries the button.
    at: Option<(ChatId, MessageId)>,
}

impl Press {
    async fn read(q: CallbackQuery, app: Arc<App>) -> Press {
        Press {
            action: Action::parse(q.data.as_deref().unwrap_or("")),
            user: q.from.id.0,
            chat: ChatId(q.from.id.0 as i64),
            lang: app.lang(&q.from).await,
            at: q.message.as_ref().map(|m| (m.chat().id, m.id())),
            query: q,
        }
    }

    /// Answers the press (Telegram stops the button's spinner), with `msg` shown if given.
    async fn answer(&self, app: &App, msg: Option<Msg>) -> HandlerResult {
        app.telegram
            .must("answer", self.chat, |api| {
                let reply = api.answer_callback_query(self.query.id.clone());
                match msg {
                    Some(msg) => reply.text(text(self.lang, msg)),
                    None => reply,
                }
            })
            .await?;
        Ok(())
    }
}

impl Action {
    /// Whether the action means the same in every dialogue state.
    fn any_state(&self) -> bool {
        matches!(
            self,
            Action::Cancel | Action::Result(..) | Action::Setting(_)
        )
    }
}

/// Cancel, a result's follow-up buttons and /settings changes: the same in every state.
async fn in_any_state(press: Press, dialogue: Dlg, app: Arc<App>) -> HandlerResult {
    let (user, lang) = (press.user, press.lang);
    let answer = match press.action.clone() {
        Action::Cancel => {
            set(&dialogue, State::Idle).await?;
            cancel(&app, user, lang).await;
            None
        }
        Action::Result(id, follow) => follow_up(&app, &dialogue, user, lang, id, follow).await?,
        Action::Setting(change) => {
            let settings = app
                .settings
                .update(user, |s| match change {
                    SettingChange::Mode(m) => s.mode = m,
                    SettingChange::Strength(k) => s.strength = k,
                    SettingChange::Colors => s.preserve_colors = !s.preserve_colors,
                    SettingChange::Lang => s.lang = Some(lang.other()),
                })
                .await;
            let lang = settings.lang.unwrap_or(lang);
            if let Some((c, m)) = press.at {
                let edited = app
                    .telegram
                    .must("settings", c, |api| {
                        api.edit_message_text(c, m, ui::settings_text(&settings, lang))
                            .reply_markup(ui::settings_keyboard(&settings, lang))
                    })
                    .await;
                if let Err(e) = edited {
                    tracing::debug!("settings panel not edited: {e}");
                }
            }
            Some(Msg::Saved)
        }
        _ => Some(Msg::Expired),
    };
    press.answer(&app, answer).await
}

/// Which of the draft's styles a painting picked from the gallery becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The style.
    Style,
    /// The second style, mixed in half and half.
    Mix,
}

/// A press on the gallery: turn its pages, pick a painting for `slot`, or ask to send one's own
/// picture (which moves the dialogue on only from `ChoosingStyle`, `own_moves_on`).
async fn gallery_press(
    press: Press,
    dialogue: Dlg,
    app: Arc<App>,
    mut draft: Draft,
    slot: Slot,
    own_moves_on: bool,
) -> HandlerResult {
    let answer = match press.action.clone() {
        Action::Page(page) => {
            turn_gallery_page(&app, &press, page).await?;
            None
        }
        Action::Painting(id) if app.paintings.iter().any(|p| p.id == id) => {
            let choice = Some(StyleChoice::Painting(id));
            match slot {
                Slot::Style => draft.style = choice,
                Slot::Mix => draft.mix = choice,
            }
            show_options(&app, press.chat, press.lang, &dialogue, draft).await?;
            None
        }
        Action::OwnStyle => {
            if own_moves_on {
                set(&dialogue, State::AwaitingStylePicture { draft }).await?;
            }
            say(&app, press.chat, text(press.lang, Msg::SendStylePicture)).await?;
            None
        }
        _ => Some(Msg::Expired),
    };
    press.answer(&app, answer).await
}

/// The gallery is shown: turn its pages, pick a painting, or ask to send one's own style.
async fn choosing_style(press: Press, dialogue: Dlg, app: Arc<App>, draft: Draft) -> HandlerResult {
    gallery_press(press, dialogue, app, draft, Slot::Style, true).await
}

/// Waiting for the user's style picture: a painting from the gallery still counts.
async fn awaiting_style_picture(
    press: Press,
    dialogue: Dlg,
    app: Arc<App>,
    draft: Draft,
) -> HandlerResult {
    gallery_press(press, dialogue, app, draft, Slot::Style, false).await
}

/// The gallery is shown again to pick a second style to mix in.
async fn choosing_mix(press: Press, dialogue: Dlg, app: Arc<App>, draft: Draft) -> HandlerResult {
    gallery_press(press, dialogue, app, draft, Slot::Mix, false).await
}

/// The options panel: mode, strength, colours, a second style, and "Go".
async fn options(press: Press, dialogue: Dlg, app: Arc<App>, mut draft: Draft) -> HandlerResult {
    let (at, lang) = (press.at, press.lang);
    let answer = match press.action.clone() {
        Action::Mode(mode) => {
            draft.mode = mode;
            change_options(&app, at, lang, &dialogue, draft).await?;
            None
        }
        Action::Strength(k) => {
            draft.strength = k;
            change_options(&app, at, lang, &dialogue, draft).await?;
            None
        }
        Action::Colors => {
            draft.preserve_colors = !draft.preserve_colors;
            change_options(&app, at, lang, &dialogue, draft).await?;
            None
        }
        Action::Mix => {
            if draft.mix.take().is_some() {
                change_options(&app, at, lang, &dialogue, draft).await?;
            } else {
                set(&dialogue, State::ChoosingMix { draft }).await?;
                send_gallery(&app, press.chat, lang, Msg::SendMixPicture).await?;
            }
            None
        }
        Action::Go => {
            if let Some((c, m)) = at {
                app.telegram
                    .may_drop("options", c, |api| api.edit_message_reply_markup(c, m))
                    .await;
            }
            set(&dialogue, State::Idle).await?;
            submit(&app, press.user, lang, draft).await?
        }
        _ => Some(Msg::Expired),
    };
    press.answer(&app, answer).await
}

/// A button that does not belong to the chat's state (an old message, or none in progress).
async fn out_of_date(press: Press, app: Arc<App>) -> HandlerResult {
    press.answer(&app, Some(Msg::Expired)).await
}

/// Shows gallery page `page` in the message that carries the pressed button.
async fn turn_gallery_page(app: &Arc<App>, press: &Press, page: usize) -> HandlerResult {
    let page = page.min(ui::pages(app) - 1);
    if let Some((c, m)) = press.at {
        let jpeg = gallery_picture(app, page).await?;
        app.telegram
            .must("gallery", c, |api| {
                let media = InputMedia::Photo(
                    InputMediaPhoto::new(InputFile::memory(jpeg.clone()).file_name("styles.jpg"))
                        .caption(text(press.lang, Msg::ChooseStyle)),
                );
                api.edit_message_media(c, m, media)
                    .reply_markup(ui::gallery_keyboard(app, page, press.lang))
            })
            .await?;
    }
    Ok(())
}

async fn change_options(
    app: &App,
    at: Option<(ChatId, MessageId)>,
    lang: Lang,
    dialogue: &Dlg,
    draft: Draft,
) -> HandlerResult {
    if let Some(at) = at {
        edit_options(app, at, lang, &draft).await;
    }
    set(dialogue, State::Options { draft }).await
}

async fn follow_up(
    app: &Arc<App>,
    dialogue: &Dlg,
    user: u64,
    lang: Lang,
    id: u64,
    follow: FollowUp,
) -> anyhow::Result<Option<Msg>> {
    let chat = ChatId(user as i64);
    let Some(done) = app.jobs.result(id).await?.filter(|d| d.user == user) else {
        return Ok(Some(Msg::Expired));
    };
    let mut draft = done.draft.clone();
    match follow {
        FollowUp::AsFile => {
            app.telegram
                .must("document", chat, |api| {
                    let file = InputFile::memory(done.jpeg.clone())
                        .file_name(format!("stylegram-{id}.jpg"));
                    api.send_document(chat, file)
                })
                .await?;
            return Ok(None);
        }
        FollowUp::Another => {
            draft.style = None;
            draft.mix = None;
            set(dialogue, State::ChoosingStyle { draft }).await?;
            send_gallery(app, chat, done.lang, Msg::ChooseStyle).await?;
            return Ok(None);
        }
        FollowUp::Stronger => draft.strength = draft.strength.stronger(),
        FollowUp::Weaker => draft.strength = draft.strength.weaker(),
        FollowUp::Quality => draft.mode = Mode::Quality,
    }
    submit(app, user, lang, draft).await
}
