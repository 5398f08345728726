//! `stylegram bench`: the fast path's latency against PyTorch eager, written to docs/benchmarks.md.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use clap::Args;
use stylegram_inference::adain::AdainModel;
use stylegram_inference::bench::{self, Latency};
use stylegram_inference::images::{self, Format, ImageLimits};
use stylegram_inference::runtime::{self, Device, SessionOptions};
use stylegram_inference::stylizer::{Options, Stylizer};

use crate::Failure;

/// Options of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Model bundle folder.
    #[arg(long, default_value = "models/adain-v1", env = "STYLEGRAM_MODEL")]
    model: PathBuf,
    /// Square photo sizes to time.
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024")]
    sizes: Vec<u32>,
    /// Timed runs per size (after one warm-up).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Threads for ONNX Runtime and for PyTorch.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The photo (resized to each size).
    #[arg(long, default_value = "../shared/data/test/content/koala.jpg")]
    content: PathBuf,
    /// The style (its statistics are computed once, as when cached).
    #[arg(long, default_value = "../shared/data/test/style/vangog.jpg")]
    style: PathBuf,
    /// Python with torch, onnx and pillow (the bootstrap's venv is first on PATH after env.sh).
    #[arg(long, default_value = "python3")]
    python: String,
    /// The PyTorch reference script.
    #[arg(long, default_value = "bench/adain_reference.py")]
    reference: PathBuf,
    /// Skip the PyTorch comparison.
    #[arg(long)]
    no_reference: bool,
    /// Where the table goes.
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
}

struct Row {
    size: u32,
    gflop: f64,
    end_to_end: Latency,
    network: Latency,
    reference: Option<(Latency, u8)>,
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}

/// Runs PyTorch eager on the same photo and style; returns its latency and the largest 8-bit
/// difference from `ours`.
fn reference(
    args: &BenchArgs,
    photo: &image::RgbImage,
    style: &image::RgbImage,
    ours: &image::RgbImage,
) -> Result<(Latency, u8, String), Failure> {
    let dir = tempfile_dir()?;
    let (c, s, o) = (
        dir.join("content.png"),
        dir.join("style.png"),
        dir.join("ref.png"),
    );
    photo.save(&c).map_err(usage)?;
    // The encoder sees the style padded to a multiple of 8 on our side; give PyTorch the same pixels.
    images::pad_reflect_to_multiple(style, 8)
        .save(&s)
        .map_err(usage)?;
    let output = Command::new(&args.python)
        .arg(&args.reference)
        .arg("--model")
        .arg(&args.model)
        .arg("--content")
        .arg(&c)
        .arg("--style")
        .arg(&s)
        .args([
            "--runs",
            &args.runs.to_string(),
            "--threads",
            &args.threads.to_string(),
        ])
        .arg("--out")
        .arg(&o)
        .output()
        .map_err(|e| usage(format!("cannot run {}: {e}", args.python)))?;
    if !output.status.success() {
        return Err(Failure::Other(format!(
            "the PyTorch reference failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| Failure::Other(format!("reference output: {e}")))?;
    let theirs = images::load(&o, &ImageLimits::default())?;
    let diff = ours
        .as_raw()
        .iter()
        .zip(theirs.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        Latency {
            p50: json["p50"].as_f64().unwrap_or(f64::NAN),
            p95: json["p95"].as_f64().unwrap_or(f64::NAN),
        },
        diff,
        json["torch"].as_str().unwrap_or("?").to_owned(),
    ))
}

fn tempfile_dir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("stylegram-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(usage)?;
    Ok(dir)
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// Runs `bench`.
pub fn run(args: BenchArgs) -> Result<(), Failure> {
    let limits = ImageLimits::default();
    let content = images::load(&args.content, &limits)?;
    let style_full = images::load(&args.style, &limits)?;
    let options = SessionOptions {
        device: Device::Cpu,
        intra_threads: args.threads,
    };
    let model = Arc::new(AdainModel::load(&args.model, options)?);
    let stylizer = Stylizer::new(model.clone(), 8);
    let mut rows = Vec::new();
    let mut torch_version = String::from("-");
    for &size in &args.sizes {
        eprintln!("timing {size}×{size} ...");
        let photo = images::resize_exact(&content, size, size);
        let jpeg = images::encode(&photo, Format::Jpeg)?;
        let style = images::fit_max_side(style_full.clone(), size);
        let stats = stylizer.style_stats(&style, size)?;
        let opts = Options {
            alpha: 1.0,
            preserve_color: false,
            max_side: size,
        };
        let end_to_end = bench::time_runs(args.runs, || {
            let decoded = images::decode(&jpeg, &limits)?;
            let out = stylizer.stylize(&decoded, &[(&style, 1.0)], &opts)?;
            images::encode(&out, Format::Jpeg)
        })?;
        let network = bench::time_runs(args.runs, || model.stylize(&photo, &stats, 1.0))?;
        let ours = model.stylize(&photo, &stats, 1.0)?;
        let reference = if args.no_reference {
            None
        } else {
            let (latency, diff, torch) = reference(&args, &photo, &style, &ours)?;
            torch_version = torch;
            Some((latency, diff))
        };
        rows.push(Row {
            size,
            gflop: bench::bundle_flops(&args.model, size as usize, size as usize)? / 1e9,
            end_to_end: bench::latency(&end_to_end),
            network: bench::latency(&network),
            reference,
        });
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Fast-mode benchmark\n\nMade by `stylegram bench --threads {} --runs {}` with model `{}` on {} \
         ({} cores visible), ONNX Runtime {} (CPU provider, {} intra-op threads), PyTorch {} eager \
         ({} threads, `bench/adain_reference.py`, same weights read from the bundle's ONNX files). \
         Photo: koala resized to a square; style: Van Gogh, statistics cached. p50 / p95 over {} runs \
         after one warm-up.\n",
        args.threads,
        args.runs,
        model.manifest().name,
        cpu_name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        runtime::report().map(|r| r.version).unwrap_or_default(),
        args.threads,
        torch_version,
        args.threads,
        args.runs
    );
    md.push_str(
        "- **end to end**: JPEG bytes → decode → stylize (style statistics from the cache) → JPEG bytes.\n\
         - **network**: encoder + AdaIN + decoder on the decoded photo (what PyTorch also runs).\n\
         - **GFLOP/s**: the network's convolution FLOPs over its p50.\n\
         - **max Δ**: largest difference between our picture and PyTorch's, in 8-bit levels.\n\n",
    );
    md.push_str(
        "| size | GFLOP | end to end p50 / p95 (s) | network p50 / p95 (s) | GFLOP/s | PyTorch eager p50 / p95 (s) | PyTorch ÷ ours (network p50) | max Δ |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let (torch, ratio, diff) = match r.reference {
            Some((l, d)) => (
                format!("{:.3} / {:.3}", l.p50, l.p95),
                format!("{:.2}×", l.p50 / r.network.p50),
                d.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            md,
            "| {0}×{0} | {1:.1} | {2:.3} / {3:.3} | {4:.3} / {5:.3} | {6:.0} | {7} | {8} | {9} |",
            r.size,
            r.gflop,
            r.end_to_end.p50,
            r.end_to_end.p95,
            r.network.p50,
            r.network.p95,
            r.gflop / r.network.p50,
            torch,
            ratio,
            diff
        );
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).map_err(usage)?;
    }
    std::fs::write(&args.out, &md).map_err(usage)?;
    print!("{md}");
    Ok(())
}
