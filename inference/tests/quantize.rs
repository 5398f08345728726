//! The int8 variant of the shipped bundle: calibrated on pictures kept apart from the evaluation pair, valid as a bundle, run
//! by ONNX Runtime as integer convolutions, and close to the float model's pictures.
use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use stylegram_imaging as images;
use stylegram_inference::adain::AdainModel;
use stylegram_inference::bundle::Manifest;
use stylegram_inference::cpu::CpuFeatures;
use stylegram_inference::quantize::{self, CalibrationSet};
use stylegram_inference::registry;
use stylegram_inference::runtime;
use stylegram_onnx::{Model, u8s8};

mod common;

use common::{options, repo, wave_starry_night};

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

#[test]
fn the_int8_bundle_is_valid_runs_integer_convolutions_and_stays_close_to_float() {
    let scratch = tempfile::tempdir().unwrap();
    let dst = scratch.path().join("adain-int8");
    // Calibrated on six of the repository's paintings, none of them the evaluation pair.
    let train = scratch.path().join("train");
    for (kind, names) in [
        (
            "content",
            ["church-at-auvers", "water-lilies", "portrait-of-metzinger"],
        ),
        (
            "style",
            ["composition-vii", "udnie", "wheat-field-cypresses"],
        ),
    ] {
        std::fs::create_dir_all(train.join(kind)).unwrap();
        for name in names {
            let file = format!("{name}.jpg");
            std::fs::copy(repo("styles").join(&file), train.join(kind).join(&file)).unwrap();
        }
    }
    let set = CalibrationSet::load(&train, 3, 256).unwrap();
    assert_eq!((set.contents.len(), set.styles.len()), (3, 3));
    let mut calls = 0;
    let keep_float: Vec<String> = quantize::DEFAULT_KEEP_FLOAT
        .iter()
        .map(|k| k.to_string())
        .collect();
    let made = quantize::quantize_bundle(
        &repo("models/adain-v1"),
        &dst,
        None,
        &keep_float,
        &set,
        || calls += 1,
    )
    .unwrap();
    assert_eq!(
        calls,
        3 + 3 + 3,
        "every encoder and decoder run reports progress"
    );

    // Every convolution quantised but the decoder's first (it reads AdaIN's output, kept float);
    // all but the decoder's last (its output is the picture) end in a quantised activation, so
    // ONNX Runtime can run them as integer convolutions.
    assert_eq!(made.encoder.convolutions, 8);
    assert_eq!(made.encoder.integer_convolutions, 8);
    assert_eq!(made.decoder.convolutions, 7);
    assert_eq!(made.decoder.integer_convolutions, 6);
    let float = Manifest::read_verified(&repo("models/adain-v1")).unwrap();
    let int8 = Manifest::read_verified(&dst).unwrap();
    assert_eq!(int8.name, "adain-int8");
    assert!(int8.architecture["quantization"]["scheme"].is_string());
    assert_eq!(
        int8.architecture["quantization"]["float_convolutions"],
        serde_json::json!(quantize::DEFAULT_KEEP_FLOAT)
    );
    // One byte per quantised weight: the encoder shrinks to under 30%; the decoder keeps its first
    // convolution's 1.2 M float weights (40% of its parameters), so it stays under 60%.
    for (file, digest) in &int8.files {
        let ratio = digest.bytes as f64 / float.files[file].bytes as f64;
        let limit = if file == "encoder.onnx" { 0.3 } else { 0.6 };
        assert!(ratio < limit, "{file} is {ratio:.2} of the float file");
    }

    for graph in ["encoder.onnx", "decoder.onnx"] {
        let ops = optimised_ops(&dst.join(graph), scratch.path());
        let integer = ops.iter().filter(|o| *o == "QLinearConv").count();
        let expected = if graph == "encoder.onnx" { 8 } else { 6 };
        assert_eq!(integer, expected, "{graph} after optimisation: {ops:?}");
    }

    // The registry's validation (digests, sessions, smoke test) accepts it, and its pictures are
    // close to the float model's on a photo and style it was not calibrated on.
    let quantised = registry::validate(&dst, options()).unwrap();
    let reference = AdainModel::load(&repo("models/adain-v1"), options()).unwrap();
    let ours = wave_starry_night(&quantised, 1.0);
    let theirs = wave_starry_night(&reference, 1.0);
    let p = images::psnr(&ours, &theirs);
    eprintln!("int8 vs float PSNR {p:.1} dB");
    assert!(p > 28.0, "int8 vs float PSNR {p:.1} dB");
    // A different, much worse picture (the float model with a weaker style) is further away: the
    // check above can fail.
    let weak = wave_starry_night(&reference, 0.5);
    assert!(images::psnr(&weak, &theirs) < p);

    // Quantising AdaIN's output too (every convolution integer) costs PSNR: why the decoder's first
    // convolution stays float. 6.0 dB on the mean of 36 evaluation pairs (docs/quantization.md),
    // 1.3 dB on this pair of paintings with this small calibration set.
    let all_int8 = scratch.path().join("all-int8");
    quantize::quantize_bundle(&repo("models/adain-v1"), &all_int8, None, &[], &set, || {}).unwrap();
    let all_int8 = AdainModel::load(&all_int8, options()).unwrap();
    let everywhere = wave_starry_night(&all_int8, 1.0);
    let q = images::psnr(&everywhere, &theirs);
    eprintln!("every convolution int8: PSNR {q:.1} dB");
    assert!(
        p > q + 0.5,
        "AdaIN's output kept float {p:.1} dB, quantised {q:.1} dB"
    );

    // Quantising twice is refused.
    let again =
        quantize::quantize_bundle(&dst, &scratch.path().join("twice"), None, &[], &set, || {});
    assert!(
        again
            .err()
            .is_some_and(|e| e.to_string().contains("already a variant (quantization)"))
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

/// The shipped int8 bundle gives the same integers on every x86-64 CPU: each output channel's
/// weights keep the 16-bit saturating pair sums of CPUs without VNNI exact, whatever the input
/// (checked with `u8s8`'s reference of that arithmetic, so the verdict does not depend on this
/// machine's CPU). The 8-bit bundle shipped before fails this on any machine.
#[test]
fn the_shipped_int8_weights_are_exact_without_vnni() {
    let bundle = repo("models/adain-v1-int8");
    let mut tensors = 0;
    for graph in ["encoder.onnx", "decoder.onnx"] {
        let model = Model::from_file(bundle.join(graph)).unwrap();
        for (name, dims, weights) in model.int8_weights() {
            let per_channel = weights.len() / dims[0];
            for (c, channel) in weights.chunks(per_channel).enumerate() {
                let worst = u8s8::worst_pair_sum(channel);
                assert!(
                    worst <= i32::from(i16::MAX),
                    "{graph} {name} channel {c}: a pair sum can reach {worst}"
                );
                // The adversarial input saturates nothing: both arithmetics agree.
                let input: Vec<u8> = channel
                    .iter()
                    .map(|&w| if w > 0 { 255 } else { 0 })
                    .collect();
                assert_eq!(
                    u8s8::dot_pairwise_saturating(&input, channel),
                    u8s8::dot_exact(&input, channel)
                );
            }
            tensors += 1;
        }
    }
    let manifest = Manifest::read_verified(&bundle).unwrap();
    let kept = manifest.architecture["quantization"]["float_convolutions"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        tensors + kept,
        16,
        "every convolution has int8 weights, but those kept float"
    );
    assert_eq!(manifest.architecture["quantization"]["weight_bits"], 7);

    // The registry accepts it for a CPU without VNNI (and would refuse 8-bit weights there).
    let model = AdainModel::load(&bundle, options()).unwrap();
    assert!(model.int8_exact_everywhere());
    let epyc = CpuFeatures::parse("model name\t: AMD EPYC 7B13\nflags\t\t: avx avx2 fma\n");
    assert!(!epyc.exact_int8_dot());
    registry::int8_suits(&model, &epyc).unwrap();
}
