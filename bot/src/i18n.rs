//! Everything the bot says, in English and Russian.
use serde::{Deserialize, Serialize};

/// A language the bot speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    /// English (the default for every language code but Russian-speaking ones).
    #[default]
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// The language for a Telegram `language_code` ("ru", "be", "uk" and "kk" get Russian).
    pub fn from_code(code: Option<&str>) -> Lang {
        match code.map(|c| c.split('-').next().unwrap_or(c)) {
            Some("ru" | "be" | "uk" | "kk") => Lang::Ru,
            _ => Lang::En,
        }
    }

    /// The other language (for /lang).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Ru,
            Lang::Ru => Lang::En,
        }
    }

    /// English or Russian text.
    pub fn pick(self, en: &'static str, ru: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }
}

/// A phrase, by what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    /// /start's two lines.
    Start,
    /// /help.
    Help,
    /// After /lang.
    LangSwitched,
    /// Gallery caption.
    ChooseStyle,
    /// Asks for the user's own style picture.
    SendStylePicture,
    /// Asks for the second style of a mix.
    SendMixPicture,
    /// Options panel header.
    Options,
    /// A text or sticker when a photo was expected.
    SendPhotoFirst,
    /// The file is not an image we can read.
    NotAnImage,
    /// The file is over the size limit.
    TooLarge,
    /// Another job is still running.
    Busy,
    /// Hourly limit reached.
    RateLimited,
    /// Job accepted, waiting.
    Queued,
    /// Job running.
    Working,
    /// /cancel with a job cancelled.
    Cancelled,
    /// /cancel with nothing to cancel.
    NothingToCancel,
    /// The engine failed.
    Failed,
    /// An old button was pressed.
    Expired,
    /// A non-admin sent an admin command.
    AdminOnly,
    /// /settings header.
    Settings,
    /// Saved settings.
    Saved,
    /// The bot stopped (restart) before or while painting the user's job.
    Interrupted,
    /// Telegram did not take the result before the delivery deadline.
    Undeliverable,
}

/// The phrase `msg` in `lang`.
pub fn text(lang: Lang, msg: Msg) -> &'static str {
    use Msg::*;
    match msg {
        Start => lang.pick(
            "🎨 I repaint your photo in the style of a painting.\nSend me a photo (or an image as a file for full resolution).",
            "🎨 Я перерисую ваше фото в стиле картины.\nПришлите фото (или картинку файлом — для полного разрешения).",
        ),
        Help => lang.pick(
            "Send a photo, pick a painting or send your own style picture, choose ⚡ Fast (seconds) or 🎨 Quality (a minute or more), set the strength and press Go.\n\n/start — begin\n/settings — your defaults\n/lang — English/русский\n/cancel — stop the current job\n/help — this text",
            "Пришлите фото, выберите картину или пришлите свою картинку-стиль, выберите ⚡ Быстро (секунды) или 🎨 Качество (минута и больше), силу стиля и нажмите «Поехали».\n\n/start — начать\n/settings — настройки по умолчанию\n/lang — English/русский\n/cancel — остановить задачу\n/help — эта справка",
        ),
        LangSwitched => lang.pick("Language: English.", "Язык: русский."),
        ChooseStyle => lang.pick(
            "Choose a style, or send your own style picture.",
            "Выберите стиль или пришлите свою картинку-стиль.",
        ),
        SendStylePicture => lang.pick(
            "Send the picture whose style you want.",
            "Пришлите картинку, стиль которой нужен.",
        ),
        SendMixPicture => lang.pick(
            "Pick a second style to mix in: a painting below or your own picture.",
            "Выберите второй стиль для смешивания: картину ниже или свою картинку.",
        ),
        Options => lang.pick("Settings for this picture:", "Параметры для этой картинки:"),
        SendPhotoFirst => lang.pick(
            "Send me a photo first (or /help).",
            "Сначала пришлите фото (или /help).",
        ),
        NotAnImage => lang.pick(
            "I can't read this file as a picture. Send a JPEG, PNG or WebP image.",
            "Не получается прочитать этот файл как картинку. Пришлите JPEG, PNG или WebP.",
        ),
        TooLarge => lang.pick(
            "This file is too large. Send a smaller picture.",
            "Файл слишком большой. Пришлите картинку поменьше.",
        ),
        Busy => lang.pick(
            "You already have a picture in progress; wait for it or /cancel it.",
            "Ваша картинка ещё в работе; дождитесь её или отмените: /cancel.",
        ),
        RateLimited => lang.pick(
            "You have reached the hourly limit. Try again later.",
            "Достигнут лимит на час. Попробуйте позже.",
        ),
        Queued => lang.pick("⏳ In line", "⏳ В очереди"),
        Working => lang.pick("🎨 Painting", "🎨 Рисую"),
        Cancelled => lang.pick("Cancelled.", "Отменено."),
        NothingToCancel => lang.pick("Nothing to cancel.", "Отменять нечего."),
        Failed => lang.pick(
            "Sorry, something went wrong with this picture. Please try again.",
            "Извините, с этой картинкой что-то пошло не так. Попробуйте ещё раз.",
        ),
        Expired => lang.pick(
            "This button is out of date; send a new photo.",
            "Эта кнопка устарела; пришлите новое фото.",
        ),
        AdminOnly => lang.pick(
            "This command is for operators only.",
            "Эта команда только для операторов.",
        ),
        Settings => lang.pick(
            "Your defaults for new pictures:",
            "Ваши настройки по умолчанию:",
        ),
        Saved => lang.pick("Saved.", "Сохранено."),
        Interrupted => lang.pick(
            "The bot is restarting, so this picture was stopped. Please send the photo again in a minute.",
            "Бот перезапускается, и эта картинка остановлена. Пришлите фото ещё раз через минуту.",
        ),
        Undeliverable => lang.pick(
            "Sorry, Telegram did not accept your finished picture in time. Please send the photo again.",
            "Извините, Telegram не принял готовую картинку вовремя. Пришлите фото ещё раз.",
        ),
    }
}

/// Button labels.
pub mod label {
    use super::Lang;

    /// ⚡ Fast.
    pub fn fast(lang: Lang) -> &'static str {
        lang.pick("⚡ Fast", "⚡ Быстро")
    }
    /// 🎨 Quality.
    pub fn quality(lang: Lang) -> &'static str {
        lang.pick("🎨 Quality", "🎨 Качество")
    }
    /// Own style picture.
    pub fn own_style(lang: Lang) -> &'static str {
        lang.pick("🖼 My own style", "🖼 Свой стиль")
    }
    /// Keep colours toggle.
    pub fn colors(lang: Lang) -> &'static str {
        lang.pick("Keep colours", "Сохранить цвета")
    }
    /// Mix toggle.
    pub fn mix(lang: Lang) -> &'static str {
        lang.pick("➕ Mix a second style", "➕ Смешать со вторым стилем")
    }
    /// Remove mix.
    pub fn unmix(lang: Lang) -> &'static str {
        lang.pick("➖ No mix", "➖ Без смешивания")
    }
    /// Go.
    pub fn go(lang: Lang) -> &'static str {
        lang.pick("▶ Go", "▶ Поехали")
    }
    /// Another style.
    pub fn another(lang: Lang) -> &'static str {
        lang.pick("🔄 Another style", "🔄 Другой стиль")
    }
    /// Stronger.
    pub fn stronger(lang: Lang) -> &'static str {
        lang.pick("➕ Stronger", "➕ Сильнее")
    }
    /// Weaker.
    pub fn weaker(lang: Lang) -> &'static str {
        lang.pick("➖ Weaker", "➖ Слабее")
    }
    /// Quality version.
    pub fn quality_version(lang: Lang) -> &'static str {
        lang.pick("🎨 Quality version", "🎨 Качественная версия")
    }
    /// Send as file.
    pub fn as_file(lang: Lang) -> &'static str {
        lang.pick("📎 Send as file", "📎 Прислать файлом")
    }
    /// Cancel.
    pub fn cancel(lang: Lang) -> &'static str {
        lang.pick("✖ Cancel", "✖ Отмена")
    }
    /// Strength.
    pub fn strength(lang: Lang) -> &'static str {
        lang.pick("Strength", "Сила")
    }
    /// Mode.
    pub fn mode(lang: Lang) -> &'static str {
        lang.pick("Mode", "Режим")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_speakers_get_russian_and_everyone_else_english() {
        assert_eq!(Lang::from_code(Some("ru")), Lang::Ru);
        assert_eq!(Lang::from_code(Some("uk-UA")), Lang::Ru);
        assert_eq!(Lang::from_code(Some("en-GB")), Lang::En);
        assert_eq!(Lang::from_code(Some("de")), Lang::En);
        assert_eq!(Lang::from_code(None), Lang::En);
    }

    #[test]
    fn every_phrase_differs_between_languages() {
        use Msg::*;
        for msg in [
            Start,
            Help,
            LangSwitched,
            ChooseStyle,
            SendStylePicture,
            SendMixPicture,
            Options,
            SendPhotoFirst,
            NotAnImage,
            TooLarge,
            Busy,
            RateLimited,
            Queued,
            Working,
            Cancelled,
            NothingToCancel,
            Failed,
            Expired,
            AdminOnly,
            Settings,
            Saved,
        ] {
            assert_ne!(text(Lang::En, msg), text(Lang::Ru, msg), "{msg:?}");
        }
    }
}
