//! Conversation state per chat (the dialogue), the job being put together, and per-user defaults.
use serde::{Deserialize, Serialize};
use stylegram_engine::{Mode, Strength};

use crate::i18n::Lang;

/// A style the user picked: a painting of the gallery, or a picture they sent (by Telegram file id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StyleChoice {
    /// A gallery painting's id.
    #[serde(alias = "Preset")]
    Painting(String),
    /// The file id of the user's picture.
    Picture(String),
}

/// A job being put together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// The photo's file id.
    pub photo: String,
    /// The style.
    pub style: Option<StyleChoice>,
    /// A second style mixed in half and half.
    pub mix: Option<StyleChoice>,
    /// Fast or quality.
    pub mode: Mode,
    /// How strongly the style is applied.
    pub strength: Strength,
    /// Keep the photo's colours.
    pub preserve_colors: bool,
}

impl Draft {
    /// A draft for `photo` with the user's defaults.
    pub fn new(photo: String, settings: &Settings) -> Self {
        Draft {
            photo,
            style: None,
            mix: None,
            mode: settings.mode,
            strength: settings.strength,
            preserve_colors: settings.preserve_colors,
        }
    }
}

/// Where a chat's conversation stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Waiting for a photo.
    #[default]
    Idle,
    /// The gallery is shown; a painting or the user's own picture is next.
    ChoosingStyle {
        /// The job so far.
        draft: Draft,
    },
    /// Waiting for the user's style picture.
    AwaitingStylePicture {
        /// The job so far.
        draft: Draft,
    },
    /// The gallery is shown again to pick a second style to mix in.
    ChoosingMix {
        /// The job so far.
        draft: Draft,
    },
    /// The options panel is shown; "Go" is next.
    Options {
        /// The job so far.
        draft: Draft,
    },
}

/// A user's defaults, changed with /settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Chosen language (else from the Telegram client's language).
    pub lang: Option<Lang>,
    /// Default mode.
    pub mode: Mode,
    /// Default strength.
    pub strength: Strength,
    /// Keep colours by default.
    pub preserve_colors: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lang: None,
            mode: Mode::Fast,
            strength: Strength::DEFAULT,
            preserve_colors: false,
        }
    }
}
