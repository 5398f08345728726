//! `stylegram bench`: the fast path's latency against PyTorch eager, written to docs/benchmarks.md.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use clap::Args;
use stylegram_imaging::{self as images, Format, ImageLimits};
use stylegram_inference::InferenceError;
use stylegram_inference::adain::AdainModel;
use stylegram_inference::bench::{self, Latency};
use stylegram_inference::cpu::CpuFeatures;
use stylegram_inference::runtime::{self, Device, SessionOptions};
use stylegram_inference::stylizer::{Options, Stylizer};

use crate::Failure;

/// Options of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Model bundle folder.
    #[arg(long, default_value = "models/adain-v1", env = "STYLEGRAM_MODEL")]
    model: PathBuf,
    /// Another bundle timed in the same run on the same photo, e.g. the int8 variant from
    /// `stylegram models quantize` (its rows are compared with PyTorch running the float --model).
    #[arg(long)]
    compare: Option<PathBuf>,
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
    /// Where ONNX Runtime runs: cpu, cuda (fails with the reason when CUDA cannot be used) or auto;
    /// PyTorch runs on the same kind of device.
    #[arg(long, default_value = "cpu")]
    device: Device,
}

struct Row {
    model: String,
    size: u32,
    gflop: f64,
    end_to_end: Latency,
    network: Latency,
    /// PyTorch's latency and the largest and mean 8-bit differences from its picture.
    reference: Option<(Latency, u8, f64)>,
}

/// Largest and mean absolute difference between two pictures in 8-bit levels.
fn differences(a: &image::RgbImage, b: &image::RgbImage) -> (u8, f64) {
    let (max, sum) = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .fold((0u8, 0u64), |(m, s), (x, y)| {
            let d = x.abs_diff(*y);
            (m.max(d), s + u64::from(d))
        });
    (max, sum as f64 / a.as_raw().len().max(1) as f64)
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}

/// Runs PyTorch eager on the same photo and style; returns its latency, its picture and its version.
fn reference(
    args: &BenchArgs,
    torch_device: &str,
    photo: &image::RgbImage,
    style: &image::RgbImage,
) -> Result<(Latency, image::RgbImage, String, Option<String>), Failure> {
    let dir = tempfile_dir()?;
    let (c, s, o) = (
        dir.join("content.ppm"),
        dir.join("style.ppm"),
        dir.join("ref.ppm"),
    );
    std::fs::write(&c, images::ppm::encode(photo)).map_err(usage)?;
    // The encoder sees the style padded to a multiple of 8 on our side; give PyTorch the same pixels.
    let padded = images::pad_reflect_to_multiple(style, 8);
    std::fs::write(&s, images::ppm::encode(&padded)).map_err(usage)?;
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
        .args(["--device", torch_device])
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
    let theirs = images::ppm::decode(&std::fs::read(&o).map_err(usage)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        Latency {
            p50: json["p50"].as_f64().unwrap_or(f64::NAN),
            p95: json["p95"].as_f64().unwrap_or(f64::NAN),
        },
        theirs,
        json["torch"].as_str().unwrap_or("?").to_owned(),
        json["device"]
            .as_str()
            .filter(|d| *d != "cpu")
            .map(str::to_owned),
    ))
}

fn tempfile_dir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("stylegram-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(usage)?;
    Ok(dir)
}

/// Runs `bench`.
pub fn run(args: BenchArgs) -> Result<(), Failure> {
    let limits = ImageLimits::default();
    let content = images::load(&args.content, &limits)?;
    let style_full = images::load(&args.style, &limits)?;
    let options = SessionOptions {
        device: args.device,
        intra_threads: args.threads,
    };
    let mut bundles = vec![args.model.clone()];
    bundles.extend(args.compare.clone());
    let stylizers = bundles
        .iter()
        .map(|dir| Ok(Stylizer::new(Arc::new(AdainModel::load(dir, options)?), 8)))
        .collect::<Result<Vec<_>, InferenceError>>()?;
    let provider = stylizers[0].model().provider();
    let torch_device = match provider {
        runtime::Provider::Cuda => "cuda",
        runtime::Provider::Cpu => "cpu",
    };
    let mut rows = Vec::new();
    let mut torch_version = String::from("-");
    let mut gpu_name: Option<String> = None;
    let shown_size = if args.sizes.contains(&512) {
        512
    } else {
        args.sizes.first().copied().unwrap_or(0)
    };
    let mut sheet = Vec::new();
    for &size in &args.sizes {
        let photo = images::resize_exact(&content, size, size);
        let jpeg = images::encode(&photo, Format::Jpeg)?;
        let style = images::fit_max_side(style_full.clone(), size);
        let opts = Options {
            alpha: 1.0,
            preserve_color: false,
            max_side: size,
        };
        let mut pictures = Vec::new();
        for (stylizer, dir) in stylizers.iter().zip(&bundles) {
            let model = stylizer.model();
            eprintln!("timing {} at {size}×{size} ...", model.manifest().name);
            let stats = stylizer.style_stats(&style, size)?;
            let end_to_end = bench::time_runs(args.runs, || {
                let decoded = images::decode(&jpeg, &limits)?;
                let out = stylizer.stylize(&decoded, &[(&style, 1.0)], &opts)?;
                Ok(images::encode(&out, Format::Jpeg)?)
            })?;
            let network = bench::time_runs(args.runs, || model.transfer(&photo, &stats, 1.0))?;
            pictures.push(model.transfer(&photo, &stats, 1.0)?);
            rows.push(Row {
                model: model.manifest().name.clone(),
                size,
                gflop: bench::bundle_flops(dir, size as usize, size as usize)? / 1e9,
                end_to_end: bench::latency(&end_to_end),
                network: bench::latency(&network),
                reference: None,
            });
        }
        if !args.no_reference {
            eprintln!("timing PyTorch eager at {size}×{size} ...");
            let (latency, theirs, torch, gpu) = reference(&args, torch_device, &photo, &style)?;
            torch_version = torch;
            gpu_name = gpu_name.or(gpu);
            let first = rows.len() - pictures.len();
            for (row, ours) in rows[first..].iter_mut().zip(&pictures) {
                let (max, mean) = differences(ours, &theirs);
                row.reference = Some((latency, max, mean));
            }
            pictures.push(theirs);
        }
        if size == shown_size {
            sheet = std::iter::once(photo).chain(pictures).collect();
        }
    }
    let cpu = CpuFeatures::detect();
    println!("CPU: {cpu}; int8: {}", cpu.int8_arithmetic());
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Fast-mode benchmark\n\nCPU: {}. Integer arithmetic: {}.\n\nMade by `stylegram bench --threads {} --runs {}{}{}` with model `{}` on {} \
         ({} cores visible{}), ONNX Runtime {} ({provider} provider, {} intra-op threads), PyTorch {} eager \
         ({} threads, on {torch_device}, `bench/adain_reference.py`, same weights read from the bundle's ONNX files). \
         Photo: koala resized to a square; style: Van Gogh, statistics cached. p50 / p95 over {} runs \
         after one warm-up.\n",
        cpu,
        cpu.int8_arithmetic(),
        args.threads,
        args.runs,
        args.compare
            .as_ref()
            .map(|c| format!(" --compare {}", c.display()))
            .unwrap_or_default(),
        match args.device {
            Device::Cpu => String::new(),
            other => format!(" --device {other}"),
        },
        stylizers[0].model().manifest().name,
        cpu.model,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        gpu_name.map(|g| format!(", GPU: {g}")).unwrap_or_default(),
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
         - **max Δ / mean Δ**: largest and mean difference between the model's picture and PyTorch's \
         (which always runs the float `--model`), in 8-bit levels.\n\n",
    );
    md.push_str(
        "| model | size | GFLOP | end to end p50 / p95 (s) | network p50 / p95 (s) | GFLOP/s | PyTorch eager p50 / p95 (s) | PyTorch ÷ ours (network p50) | max Δ / mean Δ |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let (torch, ratio, diff) = match r.reference {
            Some((l, max, mean)) => (
                format!("{:.3} / {:.3}", l.p50, l.p95),
                format!("{:.2}×", l.p50 / r.network.p50),
                format!("{max} / {mean:.2}"),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            md,
            "| {10} | {0}×{0} | {1:.1} | {2:.3} / {3:.3} | {4:.3} / {5:.3} | {6:.0} | {7} | {8} | {9} |",
            r.size,
            r.gflop,
            r.end_to_end.p50,
            r.end_to_end.p95,
            r.network.p50,
            r.network.p95,
            r.gflop / r.network.p50,
            torch,
            ratio,
            diff,
            r.model
        );
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).map_err(usage)?;
    }
    let sheet_path = args.out.with_file_name(format!(
        "{}-pictures.jpg",
        args.out
            .file_stem()
            .map_or_else(|| "benchmarks".into(), |s| s.to_string_lossy())
    ));
    let _ = writeln!(
        md,
        "\n{shown_size}×{shown_size}, left to right: the photo, {}{}:\n\n![pictures]({})",
        rows.iter()
            .filter(|r| r.size == shown_size)
            .map(|r| format!("`{}`", r.model))
            .collect::<Vec<_>>()
            .join(", "),
        if args.no_reference {
            ""
        } else {
            ", PyTorch eager"
        },
        sheet_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    images::contact_sheet(&[sheet], shown_size.min(512))
        .save(&sheet_path)
        .map_err(|e| usage(format!("cannot write {}: {e}", sheet_path.display())))?;
    std::fs::write(&args.out, &md).map_err(usage)?;
    print!("{md}");
    Ok(())
}
