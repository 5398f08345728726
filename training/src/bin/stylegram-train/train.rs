//! `stylegram-train train`: the AdaIN decoder's training loop behind a command line.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use stylegram_quality::vgg::Vgg;
use stylegram_training::paths;
use stylegram_training::train::data::{ImageFolder, Sampling};
use stylegram_training::train::mlflow::MlflowRun;
use stylegram_training::train::{Precision, Resume, TrainConfig, Trainer, iteration_flops};

use crate::{UsageError, parse_device};

/// Options of `train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Content photos (folder, searched recursively).
    #[arg(
        long,
        default_value = "../shared/data/train/content",
        env = "STYLEGRAM_TRAIN_CONTENT"
    )]
    content: PathBuf,
    /// Style pictures (folder, searched recursively).
    #[arg(
        long,
        default_value = "../shared/data/train/style",
        env = "STYLEGRAM_TRAIN_STYLE"
    )]
    style: PathBuf,
    /// Run folder for checkpoints, metrics and pictures [default: runs/adain-<unix time>, or the
    /// resumed run's folder].
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Continue from a run folder (or its checkpoint/ folder): weights, Adam state and iteration.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// With --resume: continue from the checkpoint's weights alone when its Adam moments were not
    /// kept. Adam restarts from zero moments; the iteration count and learning-rate schedule go on.
    #[arg(long, requires = "resume")]
    warm_start: bool,
    /// Total iterations to reach.
    #[arg(long, default_value_t = 30_000)]
    iterations: u64,
    /// Stop after this many seconds of training (a checkpoint is written).
    #[arg(long)]
    max_time: Option<f64>,
    /// Images per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Shorter side after resizing, before cropping. The shipped corpus is stored at 320 px, so
    /// the default keeps it at its native size rather than upscaling.
    #[arg(long, default_value_t = 320)]
    resize: u32,
    /// Side of the random square crops (a multiple of 8).
    #[arg(long, default_value_t = 256)]
    crop: u32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Learning-rate decay: lr / (1 + decay · iteration).
    #[arg(long, default_value_t = 5e-5)]
    lr_decay: f64,
    /// λ, the style loss weight.
    #[arg(long, default_value_t = 10.0)]
    style_weight: f64,
    /// Do not divide each layer's loss by its mean activation squared (see docs/adain.md).
    #[arg(long)]
    no_layer_scales: bool,
    /// Precision [default: bf16 on CUDA, f32 on CPU].
    #[arg(long, value_enum)]
    precision: Option<PrecisionArg>,
    /// Same as --precision bf16 (mixed precision; losses stay f32).
    #[arg(long, conflicts_with = "precision")]
    amp: bool,
    /// Record losses every N iterations.
    #[arg(long, default_value_t = 10)]
    log_every: u64,
    /// Checkpoint, loss plot and sample grid every N iterations.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Image decoding threads [default: cores − 1].
    #[arg(long)]
    threads: Option<usize>,
    /// Batches decoded ahead.
    #[arg(long, default_value_t = 8)]
    prefetch: usize,
    /// Seed for the decoder's initialisation and the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda, or auto (CUDA when libtorch sees a GPU).
    #[arg(long, default_value = "auto", env = "STYLEGRAM_DEVICE")]
    device: String,
    /// VGG weights from `import-vgg`.
    #[arg(long, env = "STYLEGRAM_VGG")]
    vgg: Option<PathBuf>,
    /// MLflow tracking server (http URL): params, metrics and pictures go there too.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    mlflow_uri: Option<String>,
    /// MLflow experiment name (created when missing).
    #[arg(
        long,
        env = "MLFLOW_EXPERIMENT_NAME",
        default_value = "stylegram-adain"
    )]
    mlflow_experiment: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    F32,
    Bf16,
}

fn folder(path: &std::path::Path, what: &str) -> Result<ImageFolder, UsageError> {
    ImageFolder::scan(path).map_err(|e| UsageError(format!("--{what}: {e}")))
}

/// Runs `train`.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    if args.crop < 64 || !args.crop.is_multiple_of(8) {
        return Err(UsageError(format!(
            "--crop {} must be a multiple of 8 and at least 64",
            args.crop
        ))
        .into());
    }
    if args.resize < args.crop {
        return Err(UsageError(format!(
            "--resize {} is smaller than --crop {}",
            args.resize, args.crop
        ))
        .into());
    }
    if args.batch == 0 || args.log_every == 0 || args.checkpoint_every == 0 {
        return Err(UsageError(
            "--batch, --log-every and --checkpoint-every must be at least 1".into(),
        )
        .into());
    }
    let device = parse_device(&args.device)?;
    let precision = match (args.amp, args.precision) {
        (true, _) | (false, Some(PrecisionArg::Bf16)) => Precision::Bf16,
        (false, Some(PrecisionArg::F32)) => Precision::F32,
        (false, None) if device.is_cuda() => Precision::Bf16,
        (false, None) => Precision::F32,
    };
    let content = folder(&args.content, "content")?;
    let style = folder(&args.style, "style")?;
    let resume = match &args.resume {
        Some(p) if p.join("checkpoint").is_dir() => Some(p.join("checkpoint")),
        Some(p) if p.join("state.json").is_file() => Some(p.clone()),
        Some(p) => {
            return Err(UsageError(format!(
                "--resume {}: no checkpoint there (expected a run folder or its checkpoint/)",
                p.display()
            ))
            .into());
        }
        None => None,
    };
    let run_dir = match (&args.run_dir, &resume) {
        (Some(dir), _) => dir.clone(),
        (None, Some(checkpoint)) => checkpoint
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
        (None, None) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from(format!("runs/adain-{now}"))
        }
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .max(1)
    });
    tch::manual_seed(args.seed as i64);
    let config = TrainConfig {
        content: args.content.clone(),
        style: args.style.clone(),
        sampling: Sampling {
            batch: args.batch,
            resize: args.resize,
            crop: args.crop,
            seed: args.seed,
        },
        iterations: args.iterations,
        max_time: args.max_time.map(Duration::from_secs_f64),
        lr: args.lr,
        lr_decay: args.lr_decay,
        style_weight: args.style_weight,
        normalise_layers: !args.no_layer_scales,
        precision,
        log_every: args.log_every,
        checkpoint_every: args.checkpoint_every,
        threads,
        prefetch: args.prefetch,
    };
    // Connect to MLflow before the slower setup, so a wrong URL fails at once.
    let tracker = if let Some(uri) = &args.mlflow_uri {
        let run_name = run_dir
            .file_name()
            .map_or_else(|| "adain".to_owned(), |n| n.to_string_lossy().into_owned());
        let mut params: Vec<(String, String)> = vec![
            ("batch".into(), args.batch.to_string()),
            ("resize".into(), args.resize.to_string()),
            ("crop".into(), args.crop.to_string()),
            ("lr".into(), args.lr.to_string()),
            ("lr_decay".into(), args.lr_decay.to_string()),
            ("style_weight".into(), args.style_weight.to_string()),
            ("iterations".into(), args.iterations.to_string()),
            ("precision".into(), format!("{precision:?}").to_lowercase()),
            ("device".into(), format!("{device:?}")),
            ("seed".into(), args.seed.to_string()),
            ("content".into(), args.content.display().to_string()),
            ("style".into(), args.style.display().to_string()),
            ("content_images".into(), content.files().len().to_string()),
            ("style_images".into(), style.files().len().to_string()),
        ];
        params.sort();
        let run = MlflowRun::start(uri, &args.mlflow_experiment, &run_name, &params)
            .map_err(|e| UsageError(format!("--mlflow-uri {uri}: {e}")))?;
        eprintln!("tracking in MLflow at {uri}, run {}", run.run_id());
        Some(run)
    } else {
        None
    };
    let vgg_path = args.vgg.clone().unwrap_or_else(paths::vgg_weights);
    let vgg = Vgg::load(&vgg_path, device)
        .with_context(|| format!("loading VGG weights {}", vgg_path.display()))?;
    let flops = iteration_flops(&vgg, &config.sampling)?;
    let how = if args.warm_start {
        Resume::WarmStart
    } else {
        Resume::Exact
    };
    let resume = resume.as_deref().map(|dir| (dir, how));
    let mut trainer = Trainer::new(vgg, config, &run_dir, resume, &content, &style)?;
    if let Some(run) = tracker {
        run.log_params(&[
            ("layer_scales".into(), format!("{:?}", trainer.scales().0)),
            ("start_iteration".into(), trainer.iteration().to_string()),
        ])?;
        trainer.track_with(run);
    }
    eprintln!(
        "training on {device:?} ({precision:?}): {} content and {} style images, batch {} of \
         {}×{} crops, {:.2} TFLOP per iteration; layer scales {:?}; run folder {}",
        content.files().len(),
        style.files().len(),
        args.batch,
        args.crop,
        args.crop,
        flops / 1e12,
        trainer.scales().0.map(|s| (s * 100.0).round() / 100.0),
        run_dir.display()
    );
    let bar = ProgressBar::new(args.iterations);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} it  {per_sec}  ETA {eta}  {msg}",
        )
        .expect("valid template"),
    );
    bar.set_position(trainer.iteration());
    bar.reset_eta();
    let summary = trainer.run(&content, &style, |p| {
        bar.set_position(p.iteration);
        bar.set_message(format!("content {:.3}  style {:.4}", p.content, p.style));
        if !bar.is_hidden() {
            return;
        }
        if p.iteration.is_multiple_of(500) {
            eprintln!(
                "iteration {}: content {:.4}, style {:.5}, {:.2} it/s",
                p.iteration, p.content, p.style, p.iterations_per_s
            );
        }
    })?;
    bar.finish_and_clear();
    let paths = trainer.paths();
    println!(
        "{} iterations; {:.2} it/s ({:.1} TFLOP/s); last losses: content {:.4}, style {:.5}\n\
         checkpoint {}\nmetrics {}\nloss plot {}\nsamples {}",
        summary.iterations,
        summary.iterations_per_s,
        summary.tflops,
        summary.content,
        summary.style,
        paths.checkpoint().display(),
        paths.metrics().display(),
        paths.loss_plot().display(),
        paths.samples().display()
    );
    Ok(ExitCode::SUCCESS)
}
