//! What the bundle-variant tests share: the repository's paths, CPU sessions, and one photo and
//! style kept out of every calibration set.
use std::path::PathBuf;

use image::RgbImage;
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::adain::AdainModel;
use stylegram_inference::runtime::{Device, SessionOptions};

/// `path` from the repository's root.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// CPU sessions with two threads.
pub fn options() -> SessionOptions {
    SessionOptions {
        device: Device::Cpu,
        intra_threads: 2,
    }
}

/// Hokusai's Great Wave painted by `model` in the style of Van Gogh's Starry Night over the Rhône
/// at strength `alpha`, 256 px (256×142).
pub fn wave_starry_night(model: &AdainModel, alpha: f32) -> RgbImage {
    let load = |p: &str| {
        images::fit_max_side(images::load(repo(p), &ImageLimits::default()).unwrap(), 256)
    };
    let photo = load("styles/great-wave.jpg");
    let style = load("styles/starry-night-rhone.jpg");
    model
        .transfer(&photo, &model.style_stats(&style).unwrap(), alpha)
        .unwrap()
}
