//! `stylegram-train export`: a training checkpoint to a self-contained model bundle.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use stylegram_quality::vgg::Vgg;
use stylegram_training::decoder::Decoder;
use stylegram_training::export::{self, BundleInfo};
use stylegram_training::paths;
use stylegram_training::train::checkpoint::{self, DECODER_FILE};
use stylegram_training::train::{Metrics, RunPaths};
use tch::nn::VarStore;

use crate::UsageError;

/// Options of `export`.
#[derive(Args)]
pub struct ExportArgs {
    /// A run folder or its checkpoint/ folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Bundle folder to write (models/<name>/).
    #[arg(long)]
    out: PathBuf,
    /// Model name [default: the --out folder's name].
    #[arg(long)]
    name: Option<String>,
    /// Model version.
    #[arg(long, default_value = "1.0.0")]
    version: String,
    /// Where the model was trained, for the manifest.
    #[arg(long, default_value = "unrecorded")]
    hardware: String,
    /// The training data, for the manifest [default: the run's content and style folders].
    #[arg(long)]
    data: Option<String>,
    /// VGG weights from `import-vgg` (the encoder graph is built from them).
    #[arg(long, env = "STYLEGRAM_VGG")]
    vgg: Option<PathBuf>,
}

/// The mean content and style losses over the last 1000 logged iterations of a run, if its
/// metrics.jsonl is there.
fn final_losses(run_dir: &Path, iteration: u64) -> serde_json::Value {
    let Ok(metrics) = Metrics::open_read_only(&RunPaths::new(run_dir).metrics(), iteration) else {
        return serde_json::json!({});
    };
    let last: Vec<_> = metrics
        .iter()
        .filter(|r| r.iteration + 1000 > iteration)
        .collect();
    if last.is_empty() {
        return serde_json::json!({});
    }
    let mean = |f: fn(&stylegram_training::train::Record) -> f64| {
        last.iter().map(|r| f(r)).sum::<f64>() / last.len() as f64
    };
    serde_json::json!({
        "train_content_loss_last_1000_iterations": mean(|r| r.content),
        "train_style_loss_last_1000_iterations": mean(|r| r.style),
        "train_iterations_per_second": last.last().map(|r| r.iterations_per_s),
        "train_tflops": last.last().map(|r| r.tflops),
    })
}

/// Runs `export`.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let dir = if args.checkpoint.join(DECODER_FILE).is_file() {
        args.checkpoint.clone()
    } else if args
        .checkpoint
        .join("checkpoint")
        .join(DECODER_FILE)
        .is_file()
    {
        args.checkpoint.join("checkpoint")
    } else {
        return Err(UsageError(format!(
            "--checkpoint {}: no {DECODER_FILE} there or in its checkpoint/ folder",
            args.checkpoint.display()
        ))
        .into());
    };
    let state = checkpoint::read_state(&dir)?;
    let mut vs = VarStore::new(tch::Device::Cpu);
    let _decoder = Decoder::new(&vs.root(), 1.0 / state.layer_scales[3]);
    vs.load(dir.join(DECODER_FILE))
        .with_context(|| format!("loading {}", dir.join(DECODER_FILE).display()))?;
    let vgg_path = args.vgg.clone().unwrap_or_else(paths::vgg_weights);
    let vgg = Vgg::load(&vgg_path, tch::Device::Cpu)
        .with_context(|| format!("loading VGG weights {}", vgg_path.display()))?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_name()
            .map_or_else(|| "adain".to_owned(), |n| n.to_string_lossy().into_owned())
    });
    let data = args.data.clone().unwrap_or_else(|| {
        let config = &state.recipe["config"];
        format!(
            "content: {}; style: {}",
            config["content"].as_str().unwrap_or("?"),
            config["style"].as_str().unwrap_or("?")
        )
    });
    let run_dir = dir.parent().unwrap_or(Path::new("."));
    let metrics = final_losses(run_dir, state.iteration);
    let manifest = export::write_bundle(
        &args.out,
        &vgg,
        &vs.variables(),
        BundleInfo {
            name,
            version: args.version.clone(),
            state,
            data,
            hardware: args.hardware.clone(),
            metrics,
        },
    )?;
    for (file, digest) in &manifest.files {
        println!(
            "wrote {} ({:.1} MB, sha256 {})",
            args.out.join(file).display(),
            digest.bytes as f64 / 1e6,
            digest.sha256
        );
    }
    println!("wrote {}", args.out.join("manifest.json").display());
    Ok(ExitCode::SUCCESS)
}
