//! ONNX Runtime's GPU build as the bootstrap installs it (`STYLEGRAM_GPU=1 scripts/bootstrap.sh`,
//! `make bootstrap-gpu`), checked without a GPU: every library its CUDA provider needs resolves
//! against what the bootstrap installed (the driver's `libcuda.so.1` aside), and on a machine
//! without a usable GPU sessions fall back to the CPU with the reason named.
//!
//! With the CPU build (the default on machines without an NVIDIA driver) these tests have nothing to
//! check and say so; `make test-gpu-build` installs the GPU build and runs them.
use std::path::{Path, PathBuf};
use std::process::Command;

use stylegram_inference::registry;
use stylegram_inference::runtime::{self, Device, Provider, SessionOptions};

/// The CUDA provider library next to the ONNX Runtime this process loads, if this is the GPU build.
fn cuda_provider_library() -> Option<PathBuf> {
    let library = runtime::library_path().expect("ONNX Runtime is installed (run the bootstrap)");
    let provider = library.parent()?.join("libonnxruntime_providers_cuda.so");
    if provider.is_file() {
        Some(provider)
    } else {
        eprintln!(
            "{} is ONNX Runtime's CPU build: nothing to check (make test-gpu-build checks the GPU build)",
            library.display()
        );
        None
    }
}

/// Whether this machine has an NVIDIA driver (then CUDA may well work, and the fallback is not shown).
fn has_nvidia_driver() -> bool {
    Path::new("/dev/nvidia0").exists()
}

/// The folders of `LD_LIBRARY_PATH`, as the bootstrap's env.sh sets it.
fn loader_path() -> Vec<PathBuf> {
    std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default()
}

#[test]
fn every_library_the_cuda_provider_links_resolves_except_the_driver() {
    let Some(provider) = cuda_provider_library() else {
        return;
    };
    let out = Command::new("ldd")
        .arg(&provider)
        .output()
        .expect("ldd runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ldd failed: {listing}");
    let missing: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains("not found"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "libcuda.so.1")
        .collect();
    assert!(
        missing.is_empty(),
        "the CUDA provider links libraries the bootstrap did not install: {missing:?}\n{listing}"
    );
    // The CUDA libraries it does link come from the torch venv's CUDA 13 build.
    for name in [
        "libcublas.so.13",
        "libcublasLt.so.13",
        "libcudart.so.13",
        "libcurand.so.10",
    ] {
        let line = listing
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} is not among the provider's libraries:\n{listing}"));
        assert!(line.contains("nvidia/cu13/lib"), "{line}");
    }
}

#[test]
fn the_libraries_cuda_opens_by_name_are_on_the_loader_path() {
    if cuda_provider_library().is_none() {
        return;
    }
    // cuDNN and cuFFT are opened with dlopen when a session starts, so ldd does not list them.
    let dirs = loader_path();
    for name in ["libcudnn.so.9", "libcufft.so.12"] {
        assert!(
            dirs.iter().any(|d| d.join(name).is_file()),
            "{name} is in none of LD_LIBRARY_PATH's folders {dirs:?} (source the bootstrap's env.sh)"
        );
    }
}

#[test]
fn without_a_gpu_sessions_fall_back_to_the_cpu_and_say_why() {
    if cuda_provider_library().is_none() || has_nvidia_driver() {
        return;
    }
    assert!(runtime::cuda_compiled_in().unwrap());
    let reason = runtime::cuda_usable().unwrap_err();
    assert!(reason.contains("libcuda.so.1"), "{reason}");
    let report = runtime::report().unwrap();
    assert!(
        report
            .cuda_line()
            .starts_with("compiled in but cannot be used here"),
        "{}",
        report.cuda_line()
    );

    let bundle = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/adain-v1");
    let auto = SessionOptions {
        device: Device::Auto,
        intra_threads: 1,
    };
    let model = registry::validate(&bundle, auto).expect("auto falls back to the CPU");
    assert_eq!(model.provider(), Provider::Cpu);

    let cuda = SessionOptions {
        device: Device::Cuda,
        intra_threads: 1,
    };
    let Err(refused) = registry::validate(&bundle, cuda) else {
        panic!("a CUDA session was made without a GPU");
    };
    let refused = refused.to_string();
    assert!(
        refused.contains("CUDA was requested but cannot be used")
            && refused.contains("libcuda.so.1"),
        "{refused}"
    );

    // `stylegram doctor` gives the reason once, in its own line, not again as a log warning.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stylegram"))
        .arg("doctor")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let said = |text: &str| text.matches("libcuda.so.1").count();
    assert_eq!((said(&stdout), said(&stderr)), (1, 0), "{stdout}\n{stderr}");
}
