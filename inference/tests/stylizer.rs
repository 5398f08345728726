//! The fast-mode pipeline with the shipped model on real photos: strength, style mixing, colour
//! preservation, the style cache, and the `stylegram stylize` command line.
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use image::RgbImage;
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::adain::AdainModel;
use stylegram_inference::runtime::{Device, SessionOptions};
use stylegram_inference::stylizer::{Options, Stylizer};

/// One of the repository's preset paintings (`styles/`): the tests paint these, photos and styles
/// alike, so that no verdict depends on a data folder outside the clone.
fn picture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../styles")
        .join(name)
}

fn shipped_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/adain-v1")
}

fn stylizer() -> &'static Stylizer {
    static STYLIZER: OnceLock<Stylizer> = OnceLock::new();
    STYLIZER.get_or_init(|| {
        let options = SessionOptions {
            device: Device::Cpu,
            intra_threads: 0,
        };
        Stylizer::new(
            Arc::new(AdainModel::load(&shipped_model(), options).unwrap()),
            8,
        )
    })
}

fn load(path: &str, side: u32) -> RgbImage {
    images::fit_max_side(
        images::load(picture(path), &ImageLimits::default()).unwrap(),
        side,
    )
}

/// The largest per-channel difference in 8-bit levels.
fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap()
}

fn options(alpha: f32) -> Options {
    Options {
        alpha,
        preserve_color: false,
        max_side: 160,
    }
}

#[test]
fn alpha_zero_ignores_the_style_and_reconstructs_the_photo() {
    let s = stylizer();
    let photo = load("great-wave.jpg", 160);
    let (a, b) = (
        load("starry-night-rhone.jpg", 160),
        load("composition-vii.jpg", 160),
    );
    let zero_a = s.stylize(&photo, &[(&a, 1.0)], &options(0.0)).unwrap();
    let zero_b = s.stylize(&photo, &[(&b, 1.0)], &options(0.0)).unwrap();
    assert_eq!(
        max_diff(&zero_a, &zero_b),
        0,
        "with alpha 0 the style does not enter"
    );
    // AdaIN(x, x) = x (up to eps): decoding the photo's own statistics at alpha 1 is the same picture.
    let own = s.stylize(&photo, &[(&photo, 1.0)], &options(1.0)).unwrap();
    assert!(max_diff(&zero_a, &own) <= 2, "{}", max_diff(&zero_a, &own));
    let full = s.stylize(&photo, &[(&a, 1.0)], &options(1.0)).unwrap();
    assert!(
        max_diff(&zero_a, &full) > 60,
        "alpha 1 must change the picture"
    );
    assert_eq!(full.dimensions(), photo.dimensions());
}

#[test]
fn mixing_weights_are_normalised_and_one_style_is_the_plain_path() {
    let s = stylizer();
    let photo = load("portrait-of-metzinger.jpg", 160);
    let (a, b) = (
        load("starry-night-rhone.jpg", 160),
        load("composition-vii.jpg", 160),
    );
    let plain = s.stylize(&photo, &[(&a, 1.0)], &options(1.0)).unwrap();
    let heavy = s.stylize(&photo, &[(&a, 7.5)], &options(1.0)).unwrap();
    let with_zero = s
        .stylize(&photo, &[(&a, 2.0), (&b, 0.0)], &options(1.0))
        .unwrap();
    assert!(max_diff(&plain, &heavy) <= 1);
    assert!(max_diff(&plain, &with_zero) <= 1);
    let half = s
        .stylize(&photo, &[(&a, 1.0), (&b, 1.0)], &options(1.0))
        .unwrap();
    let quarter = s
        .stylize(&photo, &[(&a, 3.0), (&b, 1.0)], &options(1.0))
        .unwrap();
    assert!(max_diff(&plain, &half) > 20 && max_diff(&half, &quarter) > 5);
    assert!(
        s.stylize(&photo, &[(&a, 0.0)], &options(1.0)).is_err(),
        "weights summing to 0"
    );
    assert!(s.stylize(&photo, &[], &options(1.0)).is_err(), "no style");
    assert!(
        s.stylize(&photo, &[(&a, 1.0)], &options(1.5)).is_err(),
        "alpha above 1"
    );
}

#[test]
fn preserve_color_keeps_the_photos_chroma() {
    let s = stylizer();
    let photo = load("great-wave.jpg", 160);
    let style = load("starry-night-rhone.jpg", 160);
    let mut o = options(1.0);
    o.preserve_color = true;
    let out = s.stylize(&photo, &[(&style, 1.0)], &o).unwrap();
    let iq = |p: &image::Rgb<u8>| {
        let [r, g, b] = p.0.map(f32::from);
        (
            0.596 * r - 0.274 * g - 0.322 * b,
            0.211 * r - 0.523 * g + 0.312 * b,
        )
    };
    // Away from clipping, I and Q match the photo's to rounding.
    let mut checked = 0;
    for (x, y, p) in out.enumerate_pixels() {
        if p.0.iter().any(|&v| v == 0 || v == 255) {
            continue;
        }
        let ((ci, cq), (oi, oq)) = (iq(photo.get_pixel(x, y)), iq(p));
        assert!((ci - oi).abs() < 0.7 && (cq - oq).abs() < 0.7, "at {x},{y}");
        checked += 1;
    }
    assert!(checked > out.width() * out.height() / 2);
}

#[test]
fn style_statistics_are_cached_by_picture() {
    let model = AdainModel::load(
        &shipped_model(),
        SessionOptions {
            device: Device::Cpu,
            intra_threads: 0,
        },
    )
    .unwrap();
    let s = Stylizer::new(Arc::new(model), 2);
    let style = load("udnie.jpg", 128);
    let first = s.style_stats(&style, 128).unwrap();
    let again = s.style_stats(&style.clone(), 128).unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second call is served from the cache"
    );
    assert_eq!(s.cached_styles(), 1);
    for other in ["wheat-field-cypresses.jpg", "composition-vii.jpg"] {
        s.style_stats(&load(other, 128), 128).unwrap();
    }
    assert_eq!(s.cached_styles(), 2, "capacity 2");
    let recomputed = s.style_stats(&style, 128).unwrap();
    assert!(
        !Arc::ptr_eq(&first, &recomputed),
        "evicted, then computed again"
    );
    assert_eq!(*first, *recomputed);
}

#[test]
fn the_command_line_writes_a_picture_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_stylegram"))
            .arg("stylize")
            .arg(picture("great-wave.jpg"))
            .arg("--model")
            .arg(shipped_model())
            .args(["--device", "cpu", "--max-side", "128"])
            .args(extra)
            .output()
            .unwrap()
    };
    let style = picture("starry-night-rhone.jpg").display().to_string();
    let o = run(&[
        "--style",
        &style,
        "--out",
        out.to_str().unwrap(),
        "--preserve-color",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written = image::open(&out).unwrap();
    assert_eq!(written.width().max(written.height()), 128);

    let bad_style = dir.path().join("style.jpg");
    std::fs::write(&bad_style, b"not an image").unwrap();
    let gif = dir.path().join("out.gif").display().to_string();
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec![
                "--style",
                bad_style.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            "cannot decode",
        ),
        (
            vec!["--style", &style, "--out", &gif],
            ".jpg, .jpeg or .png",
        ),
        (
            vec![
                "--style",
                &style,
                "--alpha",
                "2",
                "--out",
                out.to_str().unwrap(),
            ],
            "outside [0, 1]",
        ),
    ];
    for (args, message) in cases {
        let o = run(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    // Without --model the registry's choice serves: the int8 bundle on CPU.
    let o = Command::new(env!("CARGO_BIN_EXE_stylegram"))
        .arg("stylize")
        .arg(picture("great-wave.jpg"))
        .args(["--style", &style, "--device", "cpu", "--max-side", "128"])
        .arg("--models")
        .arg(shipped_model().parent().unwrap())
        .arg("--out")
        .arg(&out)
        .env_remove("STYLEGRAM_MODEL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("model adain-v1-int8"), "{stdout}");
    let o = Command::new(env!("CARGO_BIN_EXE_stylegram"))
        .arg("stylize")
        .arg(picture("great-wave.jpg"))
        .args(["--style", &style, "--models"])
        .arg(dir.path())
        .env_remove("STYLEGRAM_MODEL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no valid model bundle"), "{stderr}");
}

#[test]
fn the_shipped_paintings_are_public_domain_small_and_readable() {
    use stylegram_inference::paintings::{MAX_FILE_BYTES, Paintings};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../styles");
    let paintings = Paintings::load(&dir).unwrap();
    assert!((8..=12).contains(&paintings.all().len()));
    for p in paintings.all() {
        assert!(
            p.artist_died < 2026 - 70,
            "{}: {} died in {}",
            p.id,
            p.artist,
            p.artist_died
        );
        assert!(!p.title_en.is_empty() && !p.title_ru.is_empty());
        assert!(std::fs::metadata(dir.join(&p.file)).unwrap().len() <= MAX_FILE_BYTES);
        let image = paintings.image(p).unwrap();
        assert!(image.width().min(image.height()) >= 256, "{}", p.id);
    }
    assert!(paintings.get("great-wave").is_some() && paintings.get("nope").is_none());
}
