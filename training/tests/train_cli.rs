//! `stylegram-train train` and `export` end to end on real photos at a small size: the run folder's
//! files, bit-exact resume, learning on a fixed pair, bad input, and a verified bundle.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stylegram_inference::bundle::Manifest;

/// A content and a style folder made of the repository's paintings (one unreadable file among the photos).
fn folders(dir: &Path, contents: &[&str], styles: &[&str]) -> (PathBuf, PathBuf) {
    let (c, s) = (dir.join("content"), dir.join("style"));
    std::fs::create_dir_all(c.join("nested")).unwrap();
    std::fs::create_dir_all(&s).unwrap();
    for name in contents {
        std::fs::copy(common::picture(name), c.join("nested").join(name)).unwrap();
    }
    for name in styles {
        std::fs::copy(common::picture(name), s.join(name)).unwrap();
    }
    std::fs::write(c.join("broken.jpg"), b"not a jpeg at all").unwrap();
    (c, s)
}

/// Small, fast settings; `extra` adds flags or overrides these.
const DEFAULTS: [(&str, &str); 6] = [
    ("--batch", "2"),
    ("--resize", "72"),
    ("--crop", "64"),
    ("--log-every", "1"),
    ("--checkpoint-every", "2"),
    ("--threads", "2"),
];

fn train(content: &Path, style: &Path, run: &Path, extra: &[&str]) -> Output {
    let defaults = DEFAULTS
        .iter()
        .filter(|(flag, _)| !extra.contains(flag))
        .flat_map(|(flag, value)| [*flag, *value]);
    Command::new(env!("CARGO_BIN_EXE_stylegram-train"))
        .args(["train", "--device", "cpu"])
        .args(defaults)
        .arg("--content")
        .arg(content)
        .arg("--style")
        .arg(style)
        .arg("--run-dir")
        .arg(run)
        .arg("--vgg")
        .arg(common::vgg_path())
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_run_writes_its_files_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = folders(
        dir.path(),
        &["great-wave.jpg", "portrait-of-metzinger.jpg"],
        &["starry-night-rhone.jpg", "composition-vii.jpg"],
    );
    let straight = dir.path().join("straight");
    let o = train(&c, &s, &straight, &["--iterations", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for file in [
        "metrics.jsonl",
        "loss.png",
        "samples.jpg",
        "checkpoint/decoder.safetensors",
    ] {
        assert!(straight.join(file).is_file(), "{file} missing");
    }
    let metrics = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 4);
    assert!(
        metrics
            .lines()
            .all(|l| l.contains("\"content\"") && l.contains("\"tflops\""))
    );

    let resumed = dir.path().join("resumed");
    let o = train(&c, &s, &resumed, &["--iterations", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_stylegram-train"))
        .args([
            "train", "--device", "cpu", "--batch", "2", "--resize", "72", "--crop", "64",
        ])
        .args([
            "--log-every",
            "1",
            "--checkpoint-every",
            "2",
            "--threads",
            "3",
        ])
        .arg("--content")
        .arg(&c)
        .arg("--style")
        .arg(&s)
        .arg("--vgg")
        .arg(common::vgg_path())
        .args(["--iterations", "4", "--resume"])
        .arg(&resumed)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let a = std::fs::read(straight.join("checkpoint/decoder.safetensors")).unwrap();
    let b = std::fs::read(resumed.join("checkpoint/decoder.safetensors")).unwrap();
    assert!(a == b, "resumed weights differ from an uninterrupted run's");
    let m = std::fs::read_to_string(resumed.join("metrics.jsonl")).unwrap();
    assert_eq!(
        m.lines().count(),
        4,
        "the resumed run continues the metrics file"
    );
}

#[test]
fn a_checkpoint_without_adam_moments_needs_and_supports_a_warm_start() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = folders(dir.path(), &["great-wave.jpg"], &["starry-night-rhone.jpg"]);
    let first = dir.path().join("first");
    let o = train(&c, &s, &first, &["--iterations", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoint = first.join("checkpoint");
    for file in ["adam-m.safetensors", "adam-v.safetensors"] {
        std::fs::remove_file(checkpoint.join(file)).unwrap();
    }
    let resume = checkpoint.to_str().unwrap();
    let second = dir.path().join("second");
    let o = train(&c, &s, &second, &["--iterations", "4", "--resume", resume]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--warm-start"), "{}", stderr(&o));

    let o = train(
        &c,
        &s,
        &second,
        &["--iterations", "4", "--resume", resume, "--warm-start"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(second.join("checkpoint/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["iteration"], 4, "the iteration count goes on");
    assert_eq!(state["adam_steps"], 2, "Adam restarted at the warm start");
    assert_eq!(state["recipe"]["warm_start_at"], 2);
}

#[test]
fn training_on_one_pair_lowers_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = folders(dir.path(), &["great-wave.jpg"], &["starry-night-rhone.jpg"]);
    let run = dir.path().join("run");
    let o = train(
        &c,
        &s,
        &run,
        &[
            "--iterations",
            "40",
            "--lr",
            "1e-3",
            "--checkpoint-every",
            "100",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let totals: Vec<f64> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["total"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let first: f64 = totals[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = totals[totals.len() - 5..].iter().sum::<f64>() / 5.0;
    assert!(last < 0.5 * first, "loss went from {first} to {last}");
}

#[test]
fn bad_training_input_exits_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = folders(dir.path(), &["great-wave.jpg"], &["starry-night-rhone.jpg"]);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let run = dir.path().join("run");
    let cases: [(&Path, &[&str], &str); 4] = [
        (&c, &["--crop", "60"], "multiple of 8"),
        (&empty, &[], "no image files"),
        (&c, &["--resize", "48"], "smaller than --crop"),
        (&c, &["--resume", "/nonexistent/run"], "no checkpoint there"),
    ];
    for (content, extra, message) in cases {
        let o = train(content, &s, &run, extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{extra:?}: {}", stderr(&o));
    }
}

#[test]
fn export_writes_a_bundle_that_verifies_and_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = folders(dir.path(), &["great-wave.jpg"], &["starry-night-rhone.jpg"]);
    let run = dir.path().join("run");
    let o = train(&c, &s, &run, &["--iterations", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bundle = dir.path().join("models").join("tiny");
    let o = Command::new(env!("CARGO_BIN_EXE_stylegram-train"))
        .args(["export", "--checkpoint"])
        .arg(&run)
        .arg("--out")
        .arg(&bundle)
        .arg("--vgg")
        .arg(common::vgg_path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest = Manifest::read_verified(&bundle).unwrap();
    assert_eq!(manifest.name, "tiny");
    assert_eq!(manifest.training["iterations"], 2);
    assert_eq!(manifest.graphs["decoder"].inputs.len(), 4);

    let decoder = bundle.join("decoder.onnx");
    let mut bytes = std::fs::read(&decoder).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&decoder, bytes).unwrap();
    let err = Manifest::read_verified(&bundle).unwrap_err().to_string();
    assert!(
        err.contains("decoder.onnx") && err.contains("sha256"),
        "{err}"
    );

    let o = Command::new(env!("CARGO_BIN_EXE_stylegram-train"))
        .args(["export", "--checkpoint"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
