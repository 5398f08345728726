//! `stylegram-train gatys` on bad and unusual input: a clear message and exit status 2, never a panic;
//! grayscale and transparent images are handled.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use image::{DynamicImage, GrayImage, Rgba, RgbaImage};

fn gatys(content: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stylegram-train"))
        .args(["gatys", "--device", "cpu", "--content"])
        .arg(content)
        .arg("--style")
        .arg(common::picture("starry-night-rhone.jpg"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unreadable_missing_and_tiny_inputs_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");

    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "this is not a picture").unwrap();
    let o = gatys(&text, &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot decode the image"),
        "{}",
        stderr(&o)
    );

    let o = gatys(&dir.path().join("missing.jpg"), &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.jpg"), "{}", stderr(&o));

    let tiny = dir.path().join("tiny.png");
    DynamicImage::new_rgb8(20, 20).save(&tiny).unwrap();
    let o = gatys(&tiny, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("each side must be at least 32 pixels"),
        "{}",
        stderr(&o)
    );

    let strip = dir.path().join("strip.png");
    DynamicImage::new_rgb8(40, 1000).save(&strip).unwrap();
    let o = gatys(&strip, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("aspect ratio"), "{}", stderr(&o));

    let o = gatys(&tiny, &out, &["--preset", "9"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap rejects presets outside 1..5"
    );
    assert!(!out.exists(), "nothing is written on failure");
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn grayscale_and_transparent_photos_are_stylized() {
    let dir = tempfile::tempdir().unwrap();
    let gray = dir.path().join("gray.png");
    DynamicImage::ImageLuma8(GrayImage::from_fn(48, 40, |x, y| {
        image::Luma([((x * 5 + y * 3) % 256) as u8])
    }))
    .save(&gray)
    .unwrap();
    let alpha = dir.path().join("alpha.png");
    DynamicImage::ImageRgba8(RgbaImage::from_fn(40, 48, |x, _| {
        Rgba([200, 30, 30, if x < 20 { 0 } else { 255 }])
    }))
    .save(&alpha)
    .unwrap();
    for input in [gray, alpha] {
        let out = dir.path().join("out.png");
        let o = gatys(
            &input,
            &out,
            &["--size", "48", "--iterations", "2", "--scales", "1"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let result = image::open(&out).unwrap();
        assert_eq!(result.width().max(result.height()), 48);
        assert!(String::from_utf8_lossy(&o.stdout).contains("2 iterations"));
    }
}

#[test]
fn a_warm_start_from_a_fast_model_bundle_and_a_missing_bundle_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let photo = common::picture("great-wave.jpg");
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let bundle = models.join("adain-v1-int8");
    let bundle = bundle.to_str().unwrap();
    let vgg = stylegram_quality::paths::vgg_weights();
    let vgg = vgg.to_str().unwrap();
    let o = gatys(
        &photo,
        &out,
        &[
            "--size",
            "64",
            "--iterations",
            "3",
            "--warm-start",
            bundle,
            "--vgg",
            vgg,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("3 iterations") && said.contains("warm start"),
        "{said}"
    );
    assert!(image::open(&out).is_ok());

    let missing = models.join("no-such-bundle");
    let o = gatys(
        &photo,
        &out,
        &[
            "--size",
            "64",
            "--warm-start",
            missing.to_str().unwrap(),
            "--vgg",
            vgg,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--warm-start"), "{}", stderr(&o));
}

#[test]
fn the_warm_start_study_reports_fast_fast_plus_and_quality_mode_with_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (kind, file) in [
        ("content", "great-wave.jpg"),
        ("style", "starry-night-rhone.jpg"),
    ] {
        std::fs::create_dir_all(data.join(kind)).unwrap();
        std::fs::copy(common::picture(file), data.join(kind).join(file)).unwrap();
    }
    let out_dir = dir.path().join("report");
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/adain-v1-int8");
    // fast+ at 5 s: past the first iterations on any CPU at 48 px, so its row never depends on speed.
    let o = Command::new(env!("CARGO_BIN_EXE_stylegram-train"))
        .args([
            "gatys-study",
            "--warm-starts",
            "--pairs",
            "1",
            "--sizes",
            "48",
        ])
        .args(["--fast-plus-seconds", "5", "--data"])
        .arg(&data)
        .arg("--model")
        .arg(&bundle)
        .arg("--out-dir")
        .arg(&out_dir)
        .arg("--vgg")
        .arg(stylegram_quality::paths::vgg_weights())
        .env("STYLEGRAM_DEVICE", "cpu")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(out_dir.join("gatys-warm.md")).unwrap();
    let ladder = report
        .lines()
        .find(|l| l.starts_with("| 48 | great-wave×starry-night-rhone | ") && l.contains(" it., "))
        .unwrap_or_else(|| panic!("no fast/fast+/quality row:\n{report}"));
    // The fast picture is the start (0 iterations) and further from preset 3's objective than
    // anything refined from it.
    let cells: Vec<&str> = ladder.split('|').map(str::trim).collect();
    let objective = |cell: &str| cell.split(' ').next().unwrap().parse::<f64>().unwrap();
    assert!(cells[4].contains("(0 it., 0.0 s)"), "{ladder}");
    assert!(objective(cells[4]) > objective(cells[5]), "{ladder}");
    for sheet in ["gatys-warm-sheet.jpg", "gatys-fast-plus-sheet.jpg"] {
        let (w, h) = image::image_dimensions(out_dir.join(sheet)).unwrap();
        assert!(w > 100 && h > 20, "{sheet}: {w}×{h}");
    }
}
