//! The boundary between the transport (the bot) and the engines (ONNX Runtime for fast mode,
//! libtorch for quality mode): a [`Request`] in, an [`Output`] out, [`Progress`] on the side. Plain
//! data only: encoded image bytes, never tensors, never Telegram types.
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which engine paints the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// The feed-forward AdaIN model: about a second.
    Fast,
    /// Gatys optimisation: richer, a minute or more, with progress.
    Quality,
}

/// Where a style comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StyleSource {
    /// A painting from the gallery, by id (see [`Engine::paintings`]).
    #[serde(alias = "Preset")]
    Painting(String),
    /// A picture the user sent (encoded bytes).
    Picture(Arc<Vec<u8>>),
}

/// A style and its share in a mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedStyle {
    /// The style.
    pub source: StyleSource,
    /// Its weight; weights are normalised to sum to 1.
    pub weight: f32,
}

/// How strongly the style is applied: a level from 1 (a hint of style) to 5 (full style). The one
/// place that knows the range and what a level means to each engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Strength(u8);

impl Strength {
    /// The weakest level.
    pub const MIN: Strength = Strength(1);
    /// The strongest level: the full style.
    pub const MAX: Strength = Strength(5);
    /// The level quality mode's presets were tuned at (β unchanged).
    pub const NEUTRAL: Strength = Strength(3);
    /// The level a new user starts with: strong, with some of the photo's detail kept.
    pub const DEFAULT: Strength = Strength(4);

    /// The level `level`, if it is within [`Strength::MIN`]..=[`Strength::MAX`].
    pub fn new(level: u8) -> Result<Strength, EngineError> {
        if (Self::MIN.0..=Self::MAX.0).contains(&level) {
            Ok(Strength(level))
        } else {
            Err(EngineError::BadRequest(format!(
                "strength {level} is outside {}..={}",
                Self::MIN.0,
                Self::MAX.0
            )))
        }
    }

    /// Every level, weakest first.
    pub fn all() -> impl Iterator<Item = Strength> {
        (Self::MIN.0..=Self::MAX.0).map(Strength)
    }

    /// The level as a number, 1..=5.
    pub fn level(self) -> u8 {
        self.0
    }

    /// One level stronger, staying at the top.
    pub fn stronger(self) -> Strength {
        Strength((self.0 + 1).min(Self::MAX.0))
    }

    /// One level weaker, staying at the bottom.
    pub fn weaker(self) -> Strength {
        Strength((self.0 - 1).max(Self::MIN.0))
    }

    /// Fast mode's AdaIN α (Huang & Belongie, eq. 9): level / 5, so the top level is the full
    /// style and level 1 keeps 80% of the photo's features.
    pub fn alpha(self) -> f32 {
        f32::from(self.0) / f32::from(Self::MAX.0)
    }

    /// Quality mode's factor on the recipe's style weight β: 1 at [`Strength::NEUTRAL`], and each
    /// level up or down multiplies or divides β by √10.
    pub fn style_weight_factor(self) -> f64 {
        10f64.powf((f64::from(self.0) - f64::from(Self::NEUTRAL.0)) / 2.0)
    }
}

impl TryFrom<u8> for Strength {
    type Error = EngineError;
    fn try_from(level: u8) -> Result<Self, Self::Error> {
        Strength::new(level)
    }
}

impl From<Strength> for u8 {
    fn from(strength: Strength) -> u8 {
        strength.0
    }
}

impl std::fmt::Display for Strength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One style-transfer job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The photo (encoded bytes, as the user sent them).
    pub content: Arc<Vec<u8>>,
    /// One style, or several to mix.
    pub styles: Vec<WeightedStyle>,
    /// Fast or quality.
    pub mode: Mode,
    /// How strongly the style is applied.
    pub strength: Strength,
    /// Keep the photo's colours.
    pub preserve_colors: bool,
}

/// An encoded picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Picture {
    /// JPEG bytes.
    pub jpeg: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// A finished job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// The result at full output resolution.
    pub picture: Picture,
    /// Seconds the engine spent (decoding included).
    pub seconds: f64,
    /// Where those seconds went, stage by stage (for operators' metrics), e.g.
    /// `[("decode", 0.01), ("style", 0.0), ("network", 0.4), ("encode", 0.02)]`.
    pub stages: Vec<(String, f64)>,
}

/// How a long job is going.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Fraction done, 0..=1.
    pub fraction: f32,
    /// Estimated time left.
    pub eta: Duration,
    /// The picture so far, now and then.
    pub preview: Option<Picture>,
}

/// The answer of a progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop now (the user cancelled).
    Stop,
}

/// A painting of the gallery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaintingInfo {
    /// Stable id, used in requests.
    pub id: String,
    /// English title.
    pub title_en: String,
    /// Russian title.
    pub title_ru: String,
    /// The painter.
    pub artist: String,
    /// Year painted.
    pub year: i32,
}

/// A fast-mode model the engine knows of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatus {
    /// Bundle name (its folder).
    pub name: String,
    /// Its version, when the bundle could be read.
    pub version: Option<String>,
    /// Why it cannot be used, if it cannot.
    pub problem: Option<String>,
    /// Whether it serves requests now.
    pub active: bool,
}

/// What can go wrong, sorted by who can act on it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The user's picture cannot be used (unreadable, too large, too small...): tell the user.
    #[error("{0}")]
    BadImage(String),
    /// The request itself is wrong (unknown painting or model, bad strength): tell the caller.
    #[error("{0}")]
    BadRequest(String),
    /// The progress callback asked to stop.
    #[error("cancelled")]
    Cancelled,
    /// The engine failed: log it, apologise to the user.
    #[error("{0}")]
    Failed(String),
}

/// A style-transfer engine. Methods block; call them off the async runtime.
pub trait Engine: Send + Sync {
    /// The gallery's paintings, in order.
    fn paintings(&self) -> Vec<PaintingInfo>;
    /// A contact sheet of the given paintings' thumbnails, left to right.
    fn gallery(&self, ids: &[String]) -> Result<Picture, EngineError>;
    /// Checks that `bytes` are an image the engine accepts; returns its size.
    fn check_image(&self, bytes: &[u8]) -> Result<(u32, u32), EngineError>;
    /// Runs a job, calling `progress` now and then (quality mode); [`Flow::Stop`] cancels it.
    fn run(
        &self,
        request: &Request,
        progress: &mut dyn FnMut(Progress) -> Flow,
    ) -> Result<Output, EngineError>;
    /// The fast-mode models and their status.
    fn models(&self) -> Vec<ModelStatus>;
    /// Switches fast mode to model `name` (validated first; the old one keeps serving on failure).
    fn use_model(&self, name: &str) -> Result<(), EngineError>;
    /// Rescans the models folder; returns the names whose bundles changed.
    fn reload(&self) -> Result<Vec<String>, EngineError>;
    /// Where each mode runs.
    fn placement(&self) -> Placement;
}

/// Where each mode runs, for `/stats`, `/metrics` and the workers' heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Fast mode's ONNX Runtime execution provider: `CPU` or `CUDA`.
    pub fast: String,
    /// The fast-mode model serving.
    pub model: String,
    /// Quality mode's device (`CPU`, `CUDA`), or `not built`.
    pub quality: String,
    /// The CPU, its instruction sets and its int8 arithmetic.
    pub cpu: String,
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fast: {} ({}), quality: {}; CPU {}",
            self.fast, self.model, self.quality, self.cpu
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_accepts_one_to_five_only() {
        assert!(Strength::new(0).is_err());
        assert!(Strength::new(6).is_err());
        let levels: Vec<u8> = Strength::all().map(Strength::level).collect();
        assert_eq!(levels, [1, 2, 3, 4, 5]);
        assert!(serde_json::from_str::<Strength>("9").is_err());
        assert_eq!(
            serde_json::from_str::<Strength>("2").unwrap(),
            Strength::new(2).unwrap()
        );
        assert_eq!(Strength::MAX.stronger(), Strength::MAX);
        assert_eq!(Strength::MIN.weaker(), Strength::MIN);
    }

    #[test]
    fn strength_means_alpha_for_fast_and_a_beta_factor_for_quality() {
        assert_eq!(Strength::MAX.alpha(), 1.0);
        assert!((Strength::MIN.alpha() - 0.2).abs() < 1e-6);
        assert!((Strength::NEUTRAL.style_weight_factor() - 1.0).abs() < 1e-12);
        let up = Strength::new(4).unwrap().style_weight_factor();
        assert!((up - 10f64.sqrt()).abs() < 1e-9, "{up}");
        let down = Strength::new(1).unwrap().style_weight_factor();
        assert!((down - 0.1).abs() < 1e-9, "{down}");
    }
}
