//! The int8 variant of the shipped bundle: calibrated on training pictures, valid as a bundle, run
//! by ONNX Runtime as integer convolutions, and close to the float model's pictures.
use std::path::{Path, PathBuf};

use image::RgbImage;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::adain::AdainModel;
use stylegram_inference::bundle::Manifest;
use stylegram_inference::quantize::{self, CalibrationSet};
use stylegram_inference::registry;
use stylegram_inference::runtime::{self, Device, SessionOptions};
use stylegram_onnx::Model;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn options() -> SessionOptions {
    SessionOptions {
        device: Device::Cpu,
        intra_threads: 2,
    }
}

/// The op types of `graph` after ONNX Runtime's level-3 optimisation on CPU.
fn optimised_ops(graph: &Path, scratch: &Path) -> Vec<String> {
    let optimised = scratch.join("optimised.onnx");
    let _session = Session::builder(runtime::environment().unwrap())
        .unwrap()
        .with_optimization_level(GraphOptimizationLevel::All)
        .unwrap()
        .with_optimized_model_path(&optimised)
        .unwrap()
        .commit_from_file(graph)
        .unwrap();
    Model::from_file(&optimised)
        .unwrap()
        .nodes()
        .iter()
        .map(|n| n.op_type().to_owned())
        .collect()
}

fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    10.0 * (255.0f64.powi(2) / mse).log10()
}

#[test]
fn the_int8_bundle_is_valid_runs_integer_convolutions_and_stays_close_to_float() {
    let scratch = tempfile::tempdir().unwrap();
    let dst = scratch.path().join("adain-int8");
    let set = CalibrationSet::load(&repo("../shared/data/train"), 4, 256).unwrap();
    assert_eq!((set.contents.len(), set.styles.len()), (4, 4));
    let mut calls = 0;
    let made = quantize::quantize_bundle(&repo("models/adain-v1"), &dst, None, &set, || calls += 1)
        .unwrap();
    assert_eq!(
        calls,
        4 + 4 + 4,
        "every encoder and decoder run reports progress"
    );

    // Every convolution quantised; all but the decoder's last (its output is the picture) end in a
    // quantised activation, so ONNX Runtime can run them as integer convolutions.
    assert_eq!(made.encoder.convolutions, 8);
    assert_eq!(made.encoder.integer_convolutions, 8);
    assert_eq!(made.decoder.convolutions, 8);
    assert_eq!(made.decoder.integer_convolutions, 7);
    let float = Manifest::read_verified(&repo("models/adain-v1")).unwrap();
    let int8 = Manifest::read_verified(&dst).unwrap();
    assert_eq!(int8.name, "adain-int8");
    assert!(int8.architecture["quantization"]["scheme"].is_string());
    for (file, digest) in &int8.files {
        let ratio = digest.bytes as f64 / float.files[file].bytes as f64;
        assert!(ratio < 0.3, "{file} is {ratio:.2} of the float file");
    }

    for graph in ["encoder.onnx", "decoder.onnx"] {
        let ops = optimised_ops(&dst.join(graph), scratch.path());
        let integer = ops.iter().filter(|o| *o == "QLinearConv").count();
        let expected = if graph == "encoder.onnx" { 8 } else { 7 };
        assert_eq!(integer, expected, "{graph} after optimisation: {ops:?}");
    }

    // The registry's validation (digests, sessions, smoke test) accepts it, and its pictures are
    // close to the float model's on a photo and style it was not calibrated on.
    let quantised = registry::validate(&dst, options()).unwrap();
    let reference = AdainModel::load(&repo("models/adain-v1"), options()).unwrap();
    let load = |p: &str| {
        images::fit_max_side(images::load(repo(p), &ImageLimits::default()).unwrap(), 256)
    };
    let photo = load("../shared/data/test/content/koala.jpg");
    let style = load("../shared/data/test/style/vangog.jpg");
    let ours = quantised
        .stylize(&photo, &quantised.style_stats(&style).unwrap(), 1.0)
        .unwrap();
    let theirs = reference
        .stylize(&photo, &reference.style_stats(&style).unwrap(), 1.0)
        .unwrap();
    let p = psnr(&ours, &theirs);
    assert!(p > 24.0, "int8 vs float PSNR {p:.1} dB");
    // A different, much worse picture (the float model with a weaker style) is further away: the
    // check above can fail.
    let weak = reference
        .stylize(&photo, &reference.style_stats(&style).unwrap(), 0.5)
        .unwrap();
    assert!(psnr(&weak, &theirs) < p);

    // Quantising twice is refused.
    let again = quantize::quantize_bundle(&dst, &scratch.path().join("twice"), None, &set, || {});
    assert!(
        again
            .err()
            .is_some_and(|e| e.to_string().contains("already quantised"))
    );
}

#[test]
fn calibration_needs_pictures() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("content")).unwrap();
    let err = CalibrationSet::load(empty.path(), 4, 256).err().unwrap();
    assert!(err.to_string().contains("no .jpg or .png"), "{err}");
    let missing = CalibrationSet::load(&empty.path().join("nowhere"), 4, 256)
        .err()
        .unwrap();
    assert!(missing.to_string().contains("nowhere"), "{missing}");
}

#[test]
fn the_quantize_command_explains_bad_arguments() {
    let scratch = tempfile::tempdir().unwrap();
    let existing = repo("models/adain-v1-int8").display().to_string();
    let new = scratch.path().join("new").display().to_string();
    let nowhere = scratch.path().join("nowhere").display().to_string();
    let cases = [
        (
            vec!["--out", existing.as_str()],
            "a bundle is already there",
        ),
        (
            vec!["--out", new.as_str(), "--calibration", nowhere.as_str()],
            "--calibration",
        ),
    ];
    for (args, message) in cases {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_stylegram"))
            .args(["models", "quantize"])
            .arg(repo("models/adain-v1"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(!scratch.path().join("new").exists(), "nothing is written");
}
