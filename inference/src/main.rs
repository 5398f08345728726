//! `stylegram`: fast-mode tools on ONNX Runtime.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use stylegram_imaging::{self as images, Format, ImageLimits, ImagingError};
use stylegram_inference::InferenceError;
use stylegram_inference::adain::AdainModel;
use stylegram_inference::paintings::Paintings;
use stylegram_inference::quantize::{self, CalibrationSet};
use stylegram_inference::registry::{self, Registry, Status};
use stylegram_inference::runtime::{self, Device, SessionOptions};
use stylegram_inference::stylizer::{Options, Stylizer};

mod bench_cmd;
mod compare_cmd;

/// Stylegram's ONNX Runtime tools: fast-mode stylization with a model bundle.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ONNX Runtime library in use, its version, whether its CUDA provider can be used,
    /// the CPU's instruction sets, and which bundle fast mode would serve and why.
    Doctor {
        /// Folder of model bundles.
        #[arg(long, default_value = "models", env = "STYLEGRAM_MODELS")]
        models: PathBuf,
        /// Bundle to activate instead of the registry's choice.
        #[arg(long, env = "STYLEGRAM_ACTIVE_MODEL")]
        active: Option<String>,
    },
    /// Repaint a photo in one or more styles with the fast (AdaIN) model.
    ///
    /// Example: stylegram stylize photo.jpg --style starry.jpg --style wave.jpg:0.5 --alpha 0.8 --out out.jpg
    Stylize(StylizeArgs),
    /// List the model bundles of a folder with their status, or check one bundle.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Latency at several sizes (p50/p95), FLOPs and GFLOP/s, side by side with PyTorch eager running
    /// the same network and weights (bench/adain_reference.py); writes the table to docs/benchmarks.md.
    Bench(bench_cmd::BenchArgs),
    /// List the gallery's paintings (id, artist, year, titles).
    #[command(alias = "presets")]
    Paintings {
        /// Folder of the gallery's paintings.
        #[arg(long, default_value = "styles", env = "STYLEGRAM_STYLES")]
        styles_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Validate every bundle in the folder and show which would serve (STYLEGRAM_ACTIVE_MODEL, or
    /// the first valid by name that suits the provider: int8 on CPU, float on CUDA).
    List {
        /// Models folder.
        #[arg(long, default_value = "models", env = "STYLEGRAM_MODELS")]
        dir: PathBuf,
        /// The bundle to activate.
        #[arg(long, env = "STYLEGRAM_ACTIVE_MODEL")]
        active: Option<String>,
    },
    /// Validate one bundle: manifest, SHA-256 of its files, sessions and a smoke inference.
    Check {
        /// The bundle folder.
        dir: PathBuf,
    },
    /// Write the int8 variant of a bundle: activation ranges calibrated on photos and style
    /// pictures, weights int8 per channel (ONNX QDQ form, run as integer convolutions by ONNX
    /// Runtime). Compare it with `stylegram bench --compare` and `stylegram-train eval --model`.
    Quantize(QuantizeArgs),
    /// Write the fp16 variant of a float bundle, for GPUs: convolutions and the ops between them in
    /// half precision, AdaIN's statistics and the inputs and outputs in float32. Check it with
    /// `stylegram models compare` (on CPU, ONNX Runtime runs it through float32 casts).
    Convert(ConvertArgs),
    /// How far one bundle's pictures are from another's: PSNR over photo × style pairs, with this
    /// CPU and its integer arithmetic named (writes docs/quantization-psnr.md).
    Compare(compare_cmd::CompareArgs),
}

#[derive(Args)]
struct QuantizeArgs {
    /// The float bundle to quantise.
    src: PathBuf,
    /// The new bundle's folder.
    #[arg(long)]
    out: PathBuf,
    /// The model's name in its manifest (default: the --out folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Folder with content/ and style/ pictures to calibrate on (keep the evaluation set out).
    #[arg(
        long,
        default_value = "../shared/data/train",
        env = "STYLEGRAM_DATA_TRAIN"
    )]
    calibration: PathBuf,
    /// Pictures taken from each of content/ and style/.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    images: u32,
    /// Long side of the calibration pictures in pixels.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(64..=2048))]
    size: u32,
    /// Convolutions left in float, as encoder/NODE or decoder/NODE (ONNX node names, comma
    /// separated), or `none`. The default is the decoder's first, which reads AdaIN's output
    /// (docs/quantization.md says why).
    #[arg(long, value_delimiter = ',', default_values_t = quantize::DEFAULT_KEEP_FLOAT.iter().map(|k| k.to_string()))]
    keep_float: Vec<String>,
}

#[derive(Args)]
struct ConvertArgs {
    /// The float bundle to convert.
    src: PathBuf,
    /// The new bundle's folder.
    #[arg(long)]
    out: PathBuf,
    /// The model's name in its manifest (default: the --out folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Half precision (the only conversion so far; required, so that the command says what it does).
    #[arg(long, required = true)]
    fp16: bool,
}

/// Refuses an `--out` that holds a bundle already, or is the source.
fn new_bundle_folder(src: &std::path::Path, out: &std::path::Path) -> Result<(), Failure> {
    if out.join(stylegram_inference::bundle::MANIFEST).exists() || out == src {
        return Err(Failure::Usage(format!(
            "--out {}: a bundle is already there; choose a new folder",
            out.display()
        )));
    }
    Ok(())
}

fn convert(args: ConvertArgs) -> Result<(), Failure> {
    new_bundle_folder(&args.src, &args.out)?;
    let start = Instant::now();
    let made =
        stylegram_inference::half::convert_bundle(&args.src, &args.out, args.name.as_deref())?;
    let model = registry::validate(&args.out, SessionOptions::default())?;
    println!(
        "wrote {} ({}) in {:.1} s: {} nodes in fp16, {} casts; validated on {}",
        args.out.display(),
        made.manifest.name,
        start.elapsed().as_secs_f64(),
        made.encoder.half_nodes + made.decoder.half_nodes,
        made.encoder.casts + made.decoder.casts,
        model.provider(),
    );
    Ok(())
}

fn quantize(args: QuantizeArgs) -> Result<(), Failure> {
    new_bundle_folder(&args.src, &args.out)?;
    let set = CalibrationSet::load(&args.calibration, args.images as usize, args.size)
        .map_err(|e| Failure::Usage(format!("--calibration: {e}")))?;
    let steps = set.contents.len() * 2 + set.styles.len();
    let bar = indicatif::ProgressBar::new(steps as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "calibrating {bar:30} {pos}/{len} pictures {elapsed}",
        )
        .expect("valid template"),
    );
    let start = Instant::now();
    let keep_float: Vec<String> = args
        .keep_float
        .into_iter()
        .filter(|k| k != "none")
        .collect();
    let made = quantize::quantize_bundle(
        &args.src,
        &args.out,
        args.name.as_deref(),
        &keep_float,
        &set,
        || bar.inc(1),
    )?;
    bar.finish_and_clear();
    let model = registry::validate(&args.out, SessionOptions::default())?;
    let describe = |r: &stylegram_onnx::qdq::QuantizeReport| {
        format!(
            "{} of {} convolutions integer, {} ReLUs folded, {} ops on uint8",
            r.integer_convolutions, r.convolutions, r.relus_absorbed, r.pass_through_ops
        )
    };
    println!(
        "wrote {} in {:.1} s (encoder: {}; decoder: {}); validated on {}",
        args.out.display(),
        start.elapsed().as_secs_f64(),
        describe(&made.encoder),
        describe(&made.decoder),
        model.provider(),
    );
    Ok(())
}

#[derive(Args)]
struct StylizeArgs {
    /// The photo to repaint.
    content: PathBuf,
    /// A style picture with an optional weight (path[:weight]); repeat to mix (weights are normalised).
    #[arg(long, value_parser = parse_style, required_unless_present = "painting")]
    style: Vec<(PathBuf, f32)>,
    /// A painting of the gallery by id (see `stylegram paintings`), optionally with a weight (id[:weight]);
    /// mixes with --style.
    #[arg(long, value_parser = parse_style, alias = "preset")]
    painting: Vec<(PathBuf, f32)>,
    /// Folder of the gallery's paintings.
    #[arg(long, default_value = "styles", env = "STYLEGRAM_STYLES")]
    styles_dir: PathBuf,
    /// Style strength in [0, 1].
    #[arg(long, default_value_t = 1.0)]
    alpha: f32,
    /// Keep the photo's colours (take only the stylized luminance).
    #[arg(long)]
    preserve_color: bool,
    /// Longer side of the result in pixels (larger photos are downscaled).
    #[arg(long, default_value_t = 512, env = "STYLEGRAM_MAX_SIDE")]
    max_side: u32,
    /// Output file: .jpg or .png.
    #[arg(long, short, default_value = "stylized.jpg")]
    out: PathBuf,
    /// auto, cpu or cuda (cuda fails with the reason when unavailable; auto falls back to CPU, logged).
    #[arg(long, default_value = "auto", env = "STYLEGRAM_DEVICE")]
    device: Device,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, default_value_t = 0, env = "STYLEGRAM_THREADS")]
    threads: usize,
    /// Model bundle folder (default: the one the registry serves from --models: the int8 bundle on
    /// CPU, a float one on CUDA).
    #[arg(long, env = "STYLEGRAM_MODEL")]
    model: Option<PathBuf>,
    /// Folder of model bundles, used when --model is not given.
    #[arg(long, default_value = "models", env = "STYLEGRAM_MODELS")]
    models: PathBuf,
}

/// `path` or `path:weight`.
fn parse_style(s: &str) -> Result<(PathBuf, f32), String> {
    match s.rsplit_once(':') {
        Some((path, weight)) if !path.is_empty() && weight.parse::<f32>().is_ok() => {
            let w: f32 = weight.parse().expect("checked");
            if w >= 0.0 && w.is_finite() {
                Ok((PathBuf::from(path), w))
            } else {
                Err(format!("weight '{weight}' must be a number ≥ 0"))
            }
        }
        _ => Ok((PathBuf::from(s), 1.0)),
    }
}

/// A failure the user can fix (exit status 2) or anything else (exit status 1).
pub(crate) enum Failure {
    Usage(String),
    Other(String),
}

impl From<InferenceError> for Failure {
    fn from(e: InferenceError) -> Self {
        match e {
            InferenceError::Image(ImagingError::Encode(_)) => Failure::Other(e.to_string()),
            InferenceError::Image(_)
            | InferenceError::BadRequest(_)
            | InferenceError::BadBundle { .. }
            | InferenceError::Io { .. } => Failure::Usage(e.to_string()),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl From<ImagingError> for Failure {
    fn from(e: ImagingError) -> Self {
        InferenceError::from(e).into()
    }
}

fn stylize_command(args: StylizeArgs) -> Result<(), Failure> {
    let format = Format::from_path(&args.out).ok_or_else(|| {
        Failure::Usage(format!(
            "--out {}: the name must end in .jpg, .jpeg or .png",
            args.out.display()
        ))
    })?;
    if !(0.0..=1.0).contains(&args.alpha) {
        return Err(Failure::Usage(format!(
            "--alpha {} is outside [0, 1]",
            args.alpha
        )));
    }
    if args.max_side < 32 {
        return Err(Failure::Usage(format!(
            "--max-side {} is below 32",
            args.max_side
        )));
    }
    let limits = ImageLimits::default();
    let content = images::load(&args.content, &limits)?;
    let mut styles = args
        .style
        .iter()
        .map(|(path, weight)| Ok((images::load(path, &limits)?, *weight)))
        .collect::<Result<Vec<_>, InferenceError>>()?;
    if !args.painting.is_empty() {
        let paintings = Paintings::load(&args.styles_dir)?;
        for (id, weight) in &args.painting {
            let id = id.to_string_lossy();
            let painting = paintings.get(&id).ok_or_else(|| {
                let known: Vec<&str> = paintings.all().iter().map(|p| p.id.as_str()).collect();
                Failure::Usage(format!(
                    "unknown painting '{id}'; the paintings are: {}",
                    known.join(", ")
                ))
            })?;
            styles.push((paintings.image(painting)?, *weight));
        }
    }
    let start = Instant::now();
    let session_options = SessionOptions {
        device: args.device,
        intra_threads: args.threads,
    };
    let stylizer = match &args.model {
        Some(dir) => {
            let model = AdainModel::load(dir, session_options).map_err(|e| match e {
                InferenceError::Io { path, source } => Failure::Usage(format!(
                    "--model {}: cannot read {}: {source}",
                    dir.display(),
                    path.display()
                )),
                other => other.into(),
            })?;
            Arc::new(Stylizer::new(Arc::new(model), 16))
        }
        None => Registry::open(&args.models, None, session_options, 16)
            .map_err(|e| Failure::Usage(format!("--models {}: {e}", args.models.display())))?
            .current(),
    };
    let loaded = start.elapsed();
    let options = Options {
        alpha: args.alpha,
        preserve_color: args.preserve_color,
        max_side: args.max_side,
    };
    let start = Instant::now();
    let weighted: Vec<(&image::RgbImage, f32)> = styles.iter().map(|(s, w)| (s, *w)).collect();
    let out = stylizer.stylize(&content, &weighted, &options)?;
    let bytes = images::encode(&out, format)?;
    std::fs::write(&args.out, bytes)
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", args.out.display())))?;
    println!(
        "{} {}×{} in {:.2} s on {} (model {} loaded in {:.2} s)",
        args.out.display(),
        out.width(),
        out.height(),
        start.elapsed().as_secs_f64(),
        stylizer.model().provider(),
        stylizer.model().manifest().name,
        loaded.as_secs_f64()
    );
    Ok(())
}

fn doctor(models: &std::path::Path, active: Option<&str>) -> Result<(), Failure> {
    let r = runtime::report().map_err(|e| Failure::Other(e.to_string()))?;
    println!("ONNX Runtime {} at {}", r.version, r.library.display());
    let cpu = stylegram_inference::cpu::CpuFeatures::detect();
    println!("CPU: {cpu}");
    println!("int8 arithmetic: {}", cpu.int8_arithmetic());
    println!("CUDA execution provider: {}", r.cuda_line());
    let registry = Registry::open(models, active, SessionOptions::default(), 1)?;
    let serving = registry.current();
    println!(
        "fast mode serves: {} on {} ({})",
        registry.active_name(),
        serving.model().provider(),
        if active.is_some() {
            "named by STYLEGRAM_ACTIVE_MODEL or --active".to_owned()
        } else {
            registry::suitability(serving.model(), &cpu)
        }
    );
    for m in registry.list() {
        if let Status::Invalid(why) = &m.status {
            println!("not usable: {}: {why}", m.name);
        }
    }
    Ok(())
}

fn list_models(dir: &std::path::Path, active: Option<&str>) -> Result<(), Failure> {
    let registry = Registry::open(dir, active, SessionOptions::default(), 1)?;
    for m in registry.list() {
        let status = match &m.status {
            Status::Active => "active".to_owned(),
            Status::Ready => "ready".to_owned(),
            Status::Invalid(why) => format!("INVALID: {why}"),
        };
        println!(
            "{:<20} {:<10} {}{}",
            m.name,
            m.version.as_deref().unwrap_or("-"),
            status,
            if m.serving && m.status != Status::Active {
                " (serving its last valid load)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `doctor` states every problem in its own lines (the CUDA reason among them); its default log
    // level keeps the same words from coming twice.
    let default_level = match cli.command {
        Command::Doctor { .. } => "error",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Doctor { models, active } => doctor(&models, active.as_deref()),
        Command::Stylize(args) => stylize_command(args),
        Command::Models(ModelsCommand::List { dir, active }) => {
            list_models(&dir, active.as_deref())
        }
        Command::Models(ModelsCommand::Check { dir }) => {
            let start = Instant::now();
            registry::validate(&dir, SessionOptions::default())
                .map(|model| {
                    let m = model.manifest();
                    println!(
                        "ok: {} {} ({}; {} files verified, sessions on {}, smoke test passed) in {:.2} s",
                        m.name,
                        m.version,
                        m.architecture["family"].as_str().unwrap_or("?"),
                        m.files.len(),
                        model.provider(),
                        start.elapsed().as_secs_f64()
                    );
                })
                .map_err(Failure::from)
        }
        Command::Models(ModelsCommand::Quantize(args)) => quantize(args),
        Command::Models(ModelsCommand::Convert(args)) => convert(args),
        Command::Models(ModelsCommand::Compare(args)) => compare_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Paintings { styles_dir } => Paintings::load(&styles_dir)
            .map(|paintings| {
                for p in paintings.all() {
                    println!(
                        "{:<24} {} ({}, {}) / {}",
                        p.id, p.title_en, p.artist, p.year, p.title_ru
                    );
                }
            })
            .map_err(|e| Failure::Usage(e.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Other(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
    }
}
