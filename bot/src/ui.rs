//! What the user sees: the gallery of paintings, the options panel, the result and status messages, and
//! the callback data their buttons carry.
use stylegram_engine::{Mode, Strength};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::app::App;
use crate::i18n::{Lang, Msg, label, text};
use crate::session::{Draft, Settings, StyleChoice};

/// Paintings per gallery page.
pub const PER_PAGE: usize = 4;

/// What a button press asks for (its callback data, parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Show gallery page n.
    Page(usize),
    /// Choose a painting.
    Painting(String),
    /// "I'll send my own style picture".
    OwnStyle,
    /// Set the mode.
    Mode(Mode),
    /// Set the strength.
    Strength(Strength),
    /// Toggle colour preservation.
    Colors,
    /// Add or remove a second style.
    Mix,
    /// Start the job.
    Go,
    /// Cancel the user's job.
    Cancel,
    /// A follow-up on finished job `id`.
    Result(u64, FollowUp),
    /// A change in /settings.
    Setting(SettingChange),
    /// Data we do not know (an old or forged button).
    Unknown,
}

/// The buttons under a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Same photo, another style.
    Another,
    /// One step stronger.
    Stronger,
    /// One step weaker.
    Weaker,
    /// The same in quality mode.
    Quality,
    /// The full-resolution result as a document.
    AsFile,
}

/// The buttons of /settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingChange {
    /// Default mode.
    Mode(Mode),
    /// Default strength.
    Strength(Strength),
    /// Toggle default colour preservation.
    Colors,
    /// Switch language.
    Lang,
}

fn mode_code(mode: Mode) -> char {
    match mode {
        Mode::Fast => 'f',
        Mode::Quality => 'q',
    }
}

fn parse_mode(s: &str) -> Option<Mode> {
    match s {
        "f" => Some(Mode::Fast),
        "q" => Some(Mode::Quality),
        _ => None,
    }
}

fn parse_strength(s: &str) -> Option<Strength> {
    s.parse().ok().and_then(|k| Strength::new(k).ok())
}

impl Action {
    /// The callback data for this action (at most 64 bytes, Telegram's limit).
    pub fn data(&self) -> String {
        match self {
            Action::Page(n) => format!("p:{n}"),
            Action::Painting(id) => format!("s:{id}"),
            Action::OwnStyle => "own".into(),
            Action::Mode(m) => format!("m:{}", mode_code(*m)),
            Action::Strength(k) => format!("k:{k}"),
            Action::Colors => "c".into(),
            Action::Mix => "x".into(),
            Action::Go => "go".into(),
            Action::Cancel => "cancel".into(),
            Action::Result(id, f) => {
                let code = match f {
                    FollowUp::Another => 'a',
                    FollowUp::Stronger => '+',
                    FollowUp::Weaker => '-',
                    FollowUp::Quality => 'q',
                    FollowUp::AsFile => 'f',
                };
                format!("r:{id}:{code}")
            }
            Action::Setting(SettingChange::Mode(m)) => format!("set:m:{}", mode_code(*m)),
            Action::Setting(SettingChange::Strength(k)) => format!("set:k:{k}"),
            Action::Setting(SettingChange::Colors) => "set:c".into(),
            Action::Setting(SettingChange::Lang) => "set:l".into(),
            Action::Unknown => "?".into(),
        }
    }

    /// Parses callback data written by [`Action::data`].
    pub fn parse(data: &str) -> Action {
        let parts: Vec<&str> = data.split(':').collect();
        let parsed = match parts.as_slice() {
            ["p", n] => n.parse().ok().map(Action::Page),
            ["s", id] if !id.is_empty() => Some(Action::Painting((*id).to_owned())),
            ["own"] => Some(Action::OwnStyle),
            ["m", m] => parse_mode(m).map(Action::Mode),
            ["k", k] => parse_strength(k).map(Action::Strength),
            ["c"] => Some(Action::Colors),
            ["x"] => Some(Action::Mix),
            ["go"] => Some(Action::Go),
            ["cancel"] => Some(Action::Cancel),
            ["r", id, code] => {
                let follow = match *code {
                    "a" => Some(FollowUp::Another),
                    "+" => Some(FollowUp::Stronger),
                    "-" => Some(FollowUp::Weaker),
                    "q" => Some(FollowUp::Quality),
                    "f" => Some(FollowUp::AsFile),
                    _ => None,
                };
                id.parse()
                    .ok()
                    .zip(follow)
                    .map(|(i, f)| Action::Result(i, f))
            }
            ["set", "m", m] => parse_mode(m).map(|m| Action::Setting(SettingChange::Mode(m))),
            ["set", "k", k] => {
                parse_strength(k).map(|k| Action::Setting(SettingChange::Strength(k)))
            }
            ["set", "c"] => Some(Action::Setting(SettingChange::Colors)),
            ["set", "l"] => Some(Action::Setting(SettingChange::Lang)),
            _ => None,
        };
        parsed.unwrap_or(Action::Unknown)
    }
}

fn button(label: impl Into<String>, action: Action) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(label, action.data())
}

/// Number of gallery pages.
pub fn pages(app: &App) -> usize {
    app.paintings.len().div_ceil(PER_PAGE).max(1)
}

/// The painting ids on gallery page `page`.
pub fn page_ids(app: &App, page: usize) -> Vec<String> {
    app.paintings
        .iter()
        .skip(page * PER_PAGE)
        .take(PER_PAGE)
        .map(|p| p.id.clone())
        .collect()
}

/// The gallery keyboard for `page`: one button per painting (left to right as in the picture),
/// page arrows, and "my own style".
pub fn gallery_keyboard(app: &App, page: usize, lang: Lang) -> InlineKeyboardMarkup {
    let mut rows: Vec<Vec<InlineKeyboardButton>> = app
        .paintings
        .iter()
        .enumerate()
        .skip(page * PER_PAGE)
        .take(PER_PAGE)
        .map(|(i, p)| {
            let title = match lang {
                Lang::En => &p.title_en,
                Lang::Ru => &p.title_ru,
            };
            vec![button(
                format!("{}. {title} — {}", i + 1, p.artist),
                Action::Painting(p.id.clone()),
            )]
        })
        .collect();
    let n = pages(app);
    if n > 1 {
        rows.push(vec![
            button("◀", Action::Page((page + n - 1) % n)),
            button(format!("{}/{n}", page + 1), Action::Page(page)),
            button("▶", Action::Page((page + 1) % n)),
        ]);
    }
    rows.push(vec![button(label::own_style(lang), Action::OwnStyle)]);
    InlineKeyboardMarkup::new(rows)
}

fn style_name(app: &App, style: &StyleChoice, lang: Lang) -> String {
    match style {
        StyleChoice::Painting(id) => app.painting_title(id, lang),
        StyleChoice::Picture(_) => lang.pick("your picture", "ваша картинка").to_owned(),
    }
}

/// "Starry Night + your picture".
pub fn styles_name(app: &App, draft: &Draft, lang: Lang) -> String {
    let mut name = draft
        .style
        .as_ref()
        .map_or_else(String::new, |s| style_name(app, s, lang));
    if let Some(mix) = &draft.mix {
        name.push_str(" + ");
        name.push_str(&style_name(app, mix, lang));
    }
    name
}

fn mode_label(mode: Mode, lang: Lang) -> &'static str {
    match mode {
        Mode::Fast => label::fast(lang),
        Mode::Quality => label::quality(lang),
    }
}

fn yes_no(v: bool, lang: Lang) -> &'static str {
    if v {
        lang.pick("yes", "да")
    } else {
        lang.pick("no", "нет")
    }
}

fn mark(on: bool, label: &str) -> String {
    if on {
        format!("✅ {label}")
    } else {
        label.to_owned()
    }
}

/// The options panel's text.
pub fn options_text(app: &App, draft: &Draft, lang: Lang) -> String {
    format!(
        "{}\n{}: {}\n{}: {}\n{}: {}/{}\n{}: {}",
        text(lang, Msg::Options),
        lang.pick("Style", "Стиль"),
        styles_name(app, draft, lang),
        label::mode(lang),
        mode_label(draft.mode, lang),
        label::strength(lang),
        draft.strength,
        Strength::MAX,
        label::colors(lang),
        yes_no(draft.preserve_colors, lang),
    )
}

fn mode_strength_rows(
    mode: Mode,
    strength: Strength,
    lang: Lang,
    wrap: impl Fn(Action) -> Action,
) -> Vec<Vec<InlineKeyboardButton>> {
    vec![
        [Mode::Fast, Mode::Quality]
            .map(|m| button(mark(m == mode, mode_label(m, lang)), wrap(Action::Mode(m))))
            .to_vec(),
        Strength::all()
            .map(|k| {
                let l = if k == strength {
                    format!("•{k}•")
                } else {
                    k.to_string()
                };
                button(l, wrap(Action::Strength(k)))
            })
            .collect(),
    ]
}

/// The options panel's keyboard.
pub fn options_keyboard(draft: &Draft, lang: Lang) -> InlineKeyboardMarkup {
    let mut rows = mode_strength_rows(draft.mode, draft.strength, lang, |a| a);
    rows.push(vec![button(
        mark(draft.preserve_colors, label::colors(lang)),
        Action::Colors,
    )]);
    rows.push(vec![button(
        if draft.mix.is_some() {
            label::unmix(lang)
        } else {
            label::mix(lang)
        },
        Action::Mix,
    )]);
    rows.push(vec![button(label::go(lang), Action::Go)]);
    InlineKeyboardMarkup::new(rows)
}

/// The /settings panel's text.
pub fn settings_text(settings: &Settings, lang: Lang) -> String {
    format!(
        "{}\n{}: {}\n{}: {}/{}\n{}: {}\n{}",
        text(lang, Msg::Settings),
        label::mode(lang),
        mode_label(settings.mode, lang),
        label::strength(lang),
        settings.strength,
        Strength::MAX,
        label::colors(lang),
        yes_no(settings.preserve_colors, lang),
        lang.pick("Language: English", "Язык: русский"),
    )
}

/// The /settings panel's keyboard.
pub fn settings_keyboard(settings: &Settings, lang: Lang) -> InlineKeyboardMarkup {
    let wrap = |a: Action| match a {
        Action::Mode(m) => Action::Setting(SettingChange::Mode(m)),
        Action::Strength(k) => Action::Setting(SettingChange::Strength(k)),
        other => other,
    };
    let mut rows = mode_strength_rows(settings.mode, settings.strength, lang, wrap);
    rows.push(vec![button(
        mark(settings.preserve_colors, label::colors(lang)),
        Action::Setting(SettingChange::Colors),
    )]);
    rows.push(vec![button(
        "English / Русский",
        Action::Setting(SettingChange::Lang),
    )]);
    InlineKeyboardMarkup::new(rows)
}

/// The buttons under a result.
pub fn result_keyboard(job: u64, draft: &Draft, lang: Lang) -> InlineKeyboardMarkup {
    let r = |f| Action::Result(job, f);
    let mut rows = vec![
        vec![
            button(label::another(lang), r(FollowUp::Another)),
            button(label::as_file(lang), r(FollowUp::AsFile)),
        ],
        vec![
            button(label::weaker(lang), r(FollowUp::Weaker)),
            button(label::stronger(lang), r(FollowUp::Stronger)),
        ],
    ];
    if draft.mode == Mode::Fast {
        rows.push(vec![button(
            label::quality_version(lang),
            r(FollowUp::Quality),
        )]);
    }
    InlineKeyboardMarkup::new(rows)
}

/// The result's caption: style, mode, time.
pub fn result_caption(app: &App, draft: &Draft, lang: Lang, seconds: f64) -> String {
    format!(
        "{} · {} · {}/{} · {seconds:.1} s",
        styles_name(app, draft, lang),
        mode_label(draft.mode, lang),
        draft.strength,
        Strength::MAX
    )
}

/// A status message's cancel button.
pub fn cancel_keyboard(lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![button(label::cancel(lang), Action::Cancel)]])
}

/// "⏳ In line: 3 ahead of you".
pub fn queued_text(lang: Lang, position: usize) -> String {
    match lang {
        Lang::En => format!("{}: {position} ahead of you", text(lang, Msg::Queued)),
        Lang::Ru => format!("{}: перед вами {position}", text(lang, Msg::Queued)),
    }
}

/// "🎨 Painting: 42%, about 31 s left".
pub fn progress_text(lang: Lang, fraction: f32, eta_s: u64) -> String {
    let percent = (fraction * 100.0).round() as u32;
    let working = text(lang, Msg::Working);
    // No estimate yet (the first second of a job): no ETA rather than "0 s left".
    if eta_s == 0 && fraction < 1.0 {
        return format!("{working}: {percent}%");
    }
    match lang {
        Lang::En => format!("{working}: {percent}%, about {eta_s} s left"),
        Lang::Ru => format!("{working}: {percent}%, осталось около {eta_s} с"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_survives_its_callback_data() {
        let actions = [
            Action::Page(2),
            Action::Painting("starry_night".into()),
            Action::OwnStyle,
            Action::Mode(Mode::Quality),
            Action::Strength(Strength::MAX),
            Action::Colors,
            Action::Mix,
            Action::Go,
            Action::Cancel,
            Action::Result(123_456, FollowUp::Stronger),
            Action::Result(7, FollowUp::AsFile),
            Action::Setting(SettingChange::Mode(Mode::Fast)),
            Action::Setting(SettingChange::Strength(Strength::MIN)),
            Action::Setting(SettingChange::Colors),
            Action::Setting(SettingChange::Lang),
        ];
        for action in actions {
            let data = action.data();
            assert!(data.len() <= 64, "{data}");
            assert_eq!(Action::parse(&data), action, "{data}");
        }
    }

    #[test]
    fn forged_data_is_unknown() {
        for data in ["", "k:9", "k:0", "r:x:+", "r:1:z", "m:z", "set:k:6", "s:"] {
            assert_eq!(Action::parse(data), Action::Unknown, "{data}");
        }
    }
}
