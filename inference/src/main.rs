//! `stylegram`: fast-mode tools on ONNX Runtime.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stylegram_inference::runtime;

/// Stylegram's ONNX Runtime tools.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ONNX Runtime library in use, its version and whether it has the CUDA provider.
    Doctor,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Doctor => match runtime::report() {
            Ok(r) => {
                println!("ONNX Runtime {} at {}", r.version, r.library.display());
                println!(
                    "CUDA execution provider: {}",
                    if r.cuda_compiled_in {
                        "compiled in"
                    } else {
                        "not in this build"
                    }
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
