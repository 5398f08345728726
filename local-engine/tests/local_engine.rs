//! The local engine through the `Engine` boundary, with the shipped models and presets: what the bot
//! sees of fast and quality mode, without Telegram.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stylegram_engine::{
    Engine, EngineError, Flow, Mode, Request, Strength, StyleSource, WeightedStyle,
};
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_local_engine::{LocalConfig, LocalEngine};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn photo() -> Arc<Vec<u8>> {
    Arc::new(std::fs::read(repo("styles/great-wave.jpg")).unwrap())
}

#[cfg(feature = "quality")]
fn vgg_weights() -> PathBuf {
    stylegram_quality::paths::vgg_weights()
}

#[cfg(not(feature = "quality"))]
fn vgg_weights() -> PathBuf {
    PathBuf::new()
}

/// Small sizes and few iterations, so the suite stays quick.
fn config() -> LocalConfig {
    LocalConfig {
        models_dir: repo("models"),
        active_model: None,
        styles_dir: repo("styles"),
        device: "cpu".into(),
        threads: 2,
        fast_max_side: 256,
        quality_size: 96,
        quality_iterations: Some(8),
        quality_time_budget: None,
        vgg: vgg_weights(),
        preview_interval: Duration::ZERO,
        limits: ImageLimits::default(),
        warm_up: false,
    }
}

fn open(config: LocalConfig) -> LocalEngine {
    LocalEngine::open(config)
        .expect("the shipped models and presets open (run `make test`, which bootstraps)")
}

fn engine() -> LocalEngine {
    open(config())
}

fn request(engine: &LocalEngine, mode: Mode, strength: u8) -> Request {
    Request {
        content: photo(),
        styles: vec![WeightedStyle {
            source: StyleSource::Painting(engine.paintings()[0].id.clone()),
            weight: 1.0,
        }],
        mode,
        strength: Strength::new(strength).unwrap(),
        preserve_colors: false,
    }
}

fn decode(jpeg: &[u8]) -> image::RgbImage {
    images::decode(jpeg, &ImageLimits::default()).unwrap()
}

#[test]
fn fast_mode_paints_at_the_configured_size_and_strength_changes_the_picture() {
    let engine = engine();
    let mut never = |_| panic!("fast mode reports no progress");
    let strong = engine
        .run(&request(&engine, Mode::Fast, 5), &mut never)
        .unwrap();
    let weak = engine
        .run(&request(&engine, Mode::Fast, 1), &mut never)
        .unwrap();
    // great-wave.jpg is 578×320; the long side is capped at 256 and the aspect kept.
    assert_eq!(strong.picture.width, 256);
    assert!(
        (140..=143).contains(&strong.picture.height),
        "{}",
        strong.picture.height
    );
    let (a, b) = (decode(&strong.picture.jpeg), decode(&weak.picture.jpeg));
    assert_eq!(
        a.dimensions(),
        (strong.picture.width, strong.picture.height)
    );
    // Strength 1 keeps much more of the photo than strength 5.
    let source = images::resize_exact(
        &decode(&photo()),
        strong.picture.width,
        strong.picture.height,
    );
    assert!(images::psnr(&b, &source) > images::psnr(&a, &source) + 1.0);
    let stages: Vec<&str> = strong.stages.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(stages, ["decode", "style", "network", "encode"]);
    let accounted: f64 = strong.stages.iter().map(|(_, t)| t).sum();
    assert!(accounted <= strong.seconds + 1e-6 && accounted > 0.5 * strong.seconds);
    let placement = engine.placement();
    assert_eq!(placement.fast, "CPU");
    assert!(
        placement.to_string().starts_with("fast: CPU (adain-v1"),
        "{placement}"
    );
}

#[test]
fn a_checked_photo_is_decoded_once_for_its_job_and_follow_ups() {
    let engine = engine();
    let request = request(&engine, Mode::Fast, 4);
    assert_eq!(engine.check_image(&request.content).unwrap(), (578, 320));
    let mut never = |_| panic!("fast mode reports no progress");
    engine.run(&request, &mut never).unwrap();
    let stronger = Request {
        strength: Strength::MAX,
        ..request.clone()
    };
    engine.run(&stronger, &mut never).unwrap();
    assert_eq!(
        engine.photos_decoded(),
        1,
        "checked, painted twice, decoded once"
    );
    // Another photo is decoded on its own.
    let mut other = request.clone();
    other.content = Arc::new(std::fs::read(repo("styles/water-lilies.jpg")).unwrap());
    engine.run(&other, &mut never).unwrap();
    assert_eq!(engine.photos_decoded(), 2);
}

#[test]
fn bad_input_is_sorted_by_who_can_act_on_it() {
    let engine = engine();
    let mut go_on = |_| Flow::Continue;
    let mut not_a_picture = request(&engine, Mode::Fast, 3);
    not_a_picture.content = Arc::new(b"definitely not a jpeg".to_vec());
    assert!(matches!(
        engine.run(&not_a_picture, &mut go_on),
        Err(EngineError::BadImage(_))
    ));
    assert!(matches!(
        engine.check_image(b"GIF89a"),
        Err(EngineError::BadImage(_))
    ));
    let mut unknown = request(&engine, Mode::Fast, 3);
    unknown.styles[0].source = StyleSource::Painting("no-such-painting".into());
    assert!(matches!(
        engine.run(&unknown, &mut go_on),
        Err(EngineError::BadRequest(m)) if m.contains("no-such-painting")
    ));
    let mut none = request(&engine, Mode::Fast, 3);
    none.styles.clear();
    assert!(matches!(
        engine.run(&none, &mut go_on),
        Err(EngineError::BadRequest(_))
    ));
    assert!(matches!(
        engine.use_model("../models"),
        Err(EngineError::BadRequest(_))
    ));
}

#[cfg(feature = "quality")]
#[test]
fn quality_mode_reports_progress_with_previews_and_stops_when_asked() {
    let engine = engine();
    let mut fractions = Vec::new();
    let mut previews = 0;
    let mut first_preview = None;
    let output = engine
        .run(&request(&engine, Mode::Quality, 3), &mut |p| {
            fractions.push(p.fraction);
            previews += usize::from(p.preview.is_some());
            if first_preview.is_none() {
                first_preview = Some((p.fraction, p.preview.is_some()));
            }
            Flow::Continue
        })
        .unwrap();
    assert_eq!(
        first_preview,
        Some((0.0, true)),
        "the fast model's picture is the first preview, before any iteration"
    );
    assert_eq!(output.picture.width.max(output.picture.height), 96);
    assert!(!fractions.is_empty() && fractions.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        fractions.iter().all(|f| (0.0..=1.0).contains(f)),
        "{fractions:?}"
    );
    assert!(previews > 0, "previews are sent");
    let stopped = engine.run(&request(&engine, Mode::Quality, 3), &mut |_| Flow::Stop);
    assert!(matches!(stopped, Err(EngineError::Cancelled)));
}

#[cfg(feature = "quality")]
#[test]
fn a_quality_time_limit_ends_the_job_with_a_picture_and_full_progress() {
    // A cap the job would take minutes to reach, and a limit that is spent by the first iteration.
    let engine = open(LocalConfig {
        quality_iterations: Some(100_000),
        quality_time_budget: Some(Duration::ZERO),
        ..config()
    });
    let mut fractions = Vec::new();
    let output = engine
        .run(&request(&engine, Mode::Quality, 3), &mut |p| {
            fractions.push(p.fraction);
            Flow::Continue
        })
        .unwrap();
    assert_eq!(
        fractions,
        [0.0, 1.0],
        "the fast picture, then one iteration that spends the whole limit"
    );
    assert_eq!(output.picture.width.max(output.picture.height), 96);
}
