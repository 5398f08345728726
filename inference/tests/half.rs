//! The fp16 variant of the shipped bundle (`stylegram models convert --fp16`), checked on the CPU:
//! ONNX Runtime's CPU provider runs its fp16 ops through float32 casts, so the pictures show exactly
//! what rounding weights and feature maps to half precision costs.

use stylegram_imaging as images;
use stylegram_inference::adain::AdainModel;
use stylegram_inference::bundle::Manifest;
use stylegram_inference::half;
use stylegram_inference::registry;

mod common;

use common::{options, repo, wave_starry_night};

#[test]
fn the_fp16_bundle_is_valid_half_the_size_and_paints_like_the_float_one() {
    let scratch = tempfile::tempdir().unwrap();
    let dst = scratch.path().join("adain-fp16");
    let made = half::convert_bundle(&repo("models/adain-v1"), &dst, None).unwrap();
    // Every conv, ReLU, pad, pool and upsampling is fp16; four casts: the photo in, relu4_1 out
    // (AdaIN's statistics stay float32), AdaIN's output in, the picture out.
    assert_eq!(made.encoder.casts + made.decoder.casts, 4);
    assert!(made.encoder.half_nodes >= 8 + 8 && made.decoder.half_nodes >= 8 + 7);
    let float = Manifest::read_verified(&repo("models/adain-v1")).unwrap();
    let half = Manifest::read_verified(&dst).unwrap();
    assert_eq!(half.name, "adain-fp16");
    assert!(half.architecture["half_precision"]["scheme"].is_string());
    for (file, digest) in &half.files {
        let ratio = digest.bytes as f64 / float.files[file].bytes as f64;
        assert!(
            (0.45..0.55).contains(&ratio),
            "{file} is {ratio:.2} of the float file"
        );
    }

    let model = registry::validate(&dst, options()).unwrap();
    let reference = AdainModel::load(&repo("models/adain-v1"), options()).unwrap();
    let ours = wave_starry_night(&model, 1.0);
    let theirs = wave_starry_night(&reference, 1.0);
    let p = images::psnr(&ours, &theirs);
    eprintln!("fp16 vs float PSNR {p:.1} dB");
    assert!(p > 45.0, "fp16 vs float PSNR {p:.1} dB");
    // Not the same picture: the weights really are rounded.
    assert!(p.is_finite(), "fp16 gave the float picture exactly");

    // A variant is not converted again, nor quantised.
    for again in [
        half::convert_bundle(&dst, &scratch.path().join("twice"), None).err(),
        half::convert_bundle(
            &repo("models/adain-v1-int8"),
            &scratch.path().join("q"),
            None,
        )
        .err(),
    ] {
        let message = again.expect("refused").to_string();
        assert!(message.contains("already a variant"), "{message}");
    }
}

#[test]
fn the_convert_command_says_what_it_wrote_and_refuses_to_overwrite() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("h");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stylegram"))
            .args(["models", "convert"])
            .arg(repo("models/adain-v1"))
            .args(args)
            .output()
            .unwrap()
    };
    let out_arg = out.display().to_string();
    let first = run(&["--fp16", "--out", &out_arg]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("nodes in fp16, 4 casts; validated on"),
        "{stdout}"
    );
    let second = run(&["--fp16", "--out", &out_arg]);
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("a bundle is already there"));
    let without = run(&["--out", &scratch.path().join("x").display().to_string()]);
    assert_eq!(without.status.code(), Some(2), "--fp16 is required");
}
