//! The model registry on copies of the shipped bundle: validation on load, statuses, hot swap under
//! concurrent requests, a corrupt bundle rejected while the old model keeps serving.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use image::RgbImage;
use stylegram_inference::bundle::Manifest;
use stylegram_inference::registry::{Registry, Status};
use stylegram_inference::runtime::{Device, SessionOptions};
use stylegram_inference::stylizer::Options;

fn shipped_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/adain-v1")
}

/// Copies the shipped bundle to `root/name` with its manifest's version set to `version`.
fn install(root: &Path, name: &str, version: &str) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["encoder.onnx", "decoder.onnx"] {
        std::fs::copy(shipped_model().join(f), dir.join(f)).unwrap();
    }
    let mut manifest = Manifest::read_verified(&shipped_model()).unwrap();
    manifest.name = name.to_owned();
    manifest.version = version.to_owned();
    manifest.write(&dir).unwrap();
}

/// Copies the shipped int8 bundle to `root/name` as it is; returns its folder.
fn install_int8(root: &Path, name: &str) -> PathBuf {
    let int8 = shipped_model().with_file_name("adain-v1-int8");
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["encoder.onnx", "decoder.onnx", "manifest.json"] {
        std::fs::copy(int8.join(f), dir.join(f)).unwrap();
    }
    dir
}

fn options() -> SessionOptions {
    SessionOptions {
        device: Device::Cpu,
        intra_threads: 1,
    }
}

fn photo() -> RgbImage {
    RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, 128])
    })
}

#[test]
fn statuses_hot_swap_under_load_and_a_corrupt_bundle_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    install(root.path(), "a", "1.0.0");
    install(root.path(), "b", "2.0.0");
    install(root.path(), "c", "3.0.0");
    // c is truncated: its digest no longer matches.
    let decoder = root.path().join("c/decoder.onnx");
    let bytes = std::fs::read(&decoder).unwrap();
    std::fs::write(&decoder, &bytes[..bytes.len() / 2]).unwrap();

    let registry = Arc::new(Registry::open(root.path(), Some("a"), options(), 4).unwrap());
    let list = registry.list();
    assert_eq!(
        list.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(list[0].status, Status::Active);
    assert_eq!(list[1].status, Status::Ready);
    assert!(matches!(&list[2].status, Status::Invalid(why) if why.contains("sha256")));
    assert!(Registry::open(root.path(), Some("c"), options(), 4).is_err());
    assert!(Registry::open(root.path(), Some("zzz"), options(), 4).is_err());

    // Requests run on 3 threads while the active model is swapped to b.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (registry, stop, served) = (registry.clone(), stop.clone(), served.clone());
            std::thread::spawn(move || {
                let (content, style) = (photo(), photo());
                let mut versions = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    let stylizer = registry.current();
                    let out = stylizer
                        .stylize(&content, &[(&style, 1.0)], &Options::default())
                        .expect("no request fails during a swap");
                    assert_eq!(out.dimensions(), (48, 40));
                    versions.push(stylizer.model().manifest().version.clone());
                    served.fetch_add(1, Ordering::Relaxed);
                }
                versions
            })
        })
        .collect();
    while served.load(Ordering::Relaxed) < 6 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    registry.activate("b").unwrap();
    let after_swap = served.load(Ordering::Relaxed);
    while served.load(Ordering::Relaxed) < after_swap + 9 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stop.store(true, Ordering::Release);
    let versions: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(versions.contains(&"1.0.0".to_owned()) && versions.contains(&"2.0.0".to_owned()));
    assert_eq!(registry.current().model().manifest().version, "2.0.0");
    assert_eq!(registry.active_name(), "b");

    // Activating the corrupt bundle fails and b keeps serving.
    assert!(registry.activate("c").is_err());
    assert_eq!(registry.active_name(), "b");

    // b's files are replaced by a broken decoder: the rescan rejects it, the loaded b keeps serving.
    std::fs::write(root.path().join("b/decoder.onnx"), b"garbage").unwrap();
    assert_eq!(registry.rescan().unwrap(), ["b"]);
    assert_eq!(registry.active_name(), "b");
    let b = registry.list().into_iter().find(|m| m.name == "b").unwrap();
    assert!(b.serving && matches!(b.status, Status::Invalid(_)));
    registry
        .current()
        .stylize(&photo(), &[(&photo(), 1.0)], &Options::default())
        .unwrap();

    // A new bundle dropped into the folder is found, validated and can be activated.
    install(root.path(), "d", "4.0.0");
    assert_eq!(registry.rescan().unwrap(), ["d"]);
    assert_eq!(
        registry
            .list()
            .into_iter()
            .find(|m| m.name == "d")
            .unwrap()
            .status,
        Status::Ready
    );
    registry.activate("d").unwrap();
    assert_eq!(registry.current().model().manifest().version, "4.0.0");
    assert!(registry.rescan().unwrap().is_empty(), "nothing changed");
}

#[test]
fn the_watcher_picks_up_a_changed_active_bundle() {
    let root = tempfile::tempdir().unwrap();
    install(root.path(), "a", "1.0.0");
    let registry = Arc::new(Registry::open(root.path(), None, options(), 4).unwrap());
    let _watcher = registry.watch(std::time::Duration::from_millis(100));
    std::thread::sleep(std::time::Duration::from_millis(50));
    install(root.path(), "a", "1.1.0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while registry.current().model().manifest().version != "1.1.0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher did not reload"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn without_a_choice_cpu_sessions_serve_the_int8_bundle() {
    let root = tempfile::tempdir().unwrap();
    install(root.path(), "a-float", "1.0.0");
    let dir = install_int8(root.path(), "b-int8");
    // By name the float bundle comes first; on CPU the int8 one is chosen.
    let registry = Registry::open(root.path(), None, options(), 1).unwrap();
    assert_eq!(registry.active_name(), "b-int8");
    assert!(registry.current().model().is_quantized());
    // An explicit choice wins.
    let registry = Registry::open(root.path(), Some("a-float"), options(), 1).unwrap();
    assert!(!registry.current().model().is_quantized());
    // With float bundles only, the first by name serves, as before.
    std::fs::remove_dir_all(&dir).unwrap();
    let registry = Registry::open(root.path(), None, options(), 1).unwrap();
    assert_eq!(registry.active_name(), "a-float");
}

/// `stylegram doctor` names the bundle fast mode would serve and why, and the bundles it refused.
#[test]
fn doctor_says_which_bundle_serves_and_why() {
    let root = tempfile::tempdir().unwrap();
    install(root.path(), "a-float", "1.0.0");
    install_int8(root.path(), "b-int8");
    install(root.path(), "c-broken", "1.0.0");
    std::fs::write(root.path().join("c-broken/decoder.onnx"), b"not onnx").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stylegram"))
        .arg("doctor")
        .arg("--models")
        .arg(root.path())
        .env_remove("STYLEGRAM_ACTIVE_MODEL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("CPU: "), "{text}");
    assert!(text.contains("CUDA execution provider: "), "{text}");
    // Whichever provider this machine gives, the bundle that suits it serves, and says why.
    let serves = text
        .lines()
        .find(|l| l.starts_with("fast mode serves: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        serves.starts_with("fast mode serves: b-int8 on CPU (int8 on the CPU")
            && serves.contains("7-bit weights, exact with and without VNNI")
            || serves.starts_with("fast mode serves: a-float on CUDA (float on CUDA"),
        "{serves}"
    );
    assert!(text.contains("not usable: c-broken: "), "{text}");
}
