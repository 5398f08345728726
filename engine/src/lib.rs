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
    /// A preset painting by id (see [`Engine::presets`]).
    Preset(String),
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

/// Strength levels the transport offers, 1 (a hint of style) to 5 (full style).
pub const STRENGTHS: std::ops::RangeInclusive<u8> = 1..=5;

/// One style-transfer job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The photo (encoded bytes, as the user sent them).
    pub content: Arc<Vec<u8>>,
    /// One style, or several to mix.
    pub styles: Vec<WeightedStyle>,
    /// Fast or quality.
    pub mode: Mode,
    /// 1..=5, see [`STRENGTHS`].
    pub strength: u8,
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

/// A preset painting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetInfo {
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
    /// The request itself is wrong (unknown preset or model, bad strength): tell the caller.
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
    /// The preset paintings, in gallery order.
    fn presets(&self) -> Vec<PresetInfo>;
    /// A contact sheet of the given presets' thumbnails, left to right.
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
    /// Where each mode runs, e.g. "fast: CPU, quality: CUDA".
    fn provider(&self) -> String;
}
