//! Loading ONNX Runtime (`load-dynamic`) and creating sessions on CPU or CUDA, with the provider each
//! session really got logged and returned, never a silent fallback.
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::InferenceError;

/// The ONNX Runtime release the bootstrap installs (API 31, matching `ort` 2.0.0-rc.15).
pub const ORT_VERSION: &str = "1.31.1";

/// Where a session should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA when this ONNX Runtime build has it and it initialises, CPU otherwise.
    #[default]
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA; creating a session fails with the reason if CUDA cannot be used.
    Cuda,
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            other => Err(format!(
                "unknown device '{other}': expected auto, cpu or cuda"
            )),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// The execution provider a session actually got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// ONNX Runtime's default CPU provider.
    Cpu,
    /// The CUDA execution provider.
    Cuda,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provider::Cpu => "CPU",
            Provider::Cuda => "CUDA",
        })
    }
}

/// How to build a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Where to run.
    pub device: Device,
    /// Threads for one operator (0 = ONNX Runtime's default, one per physical core).
    pub intra_threads: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            device: Device::Auto,
            intra_threads: 0,
        }
    }
}

/// The places searched for `libonnxruntime.so`, in order: `ORT_DYLIB_PATH`, then the bootstrap's copy
/// under `STYLEGRAM_HOME` (default `~/.cache/stylegram`).
pub fn library_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(
        stylegram_home()
            .join(format!("onnxruntime-{ORT_VERSION}"))
            .join("libonnxruntime.so"),
    );
    candidates
}

/// The bootstrap's cache folder: `STYLEGRAM_HOME`, default `~/.cache/stylegram`.
pub fn stylegram_home() -> PathBuf {
    match std::env::var_os("STYLEGRAM_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
            .join(".cache/stylegram"),
    }
}

/// The ONNX Runtime library this process uses (the first candidate that exists).
pub fn library_path() -> Result<PathBuf, InferenceError> {
    let candidates = library_candidates();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| InferenceError::RuntimeMissing {
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static Environment, InferenceError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = library_path()?;
    let load_error = |message: String| InferenceError::RuntimeLoad {
        path: path.clone(),
        message,
    };
    let builder = ort::init_from(&path).map_err(|e| load_error(e.to_string()))?;
    let env = builder
        .with_name("stylegram")
        .build()
        .map_err(|e| load_error(e.to_string()))?;
    tracing::debug!(library = %path.display(), "loaded ONNX Runtime");
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// Whether the loaded ONNX Runtime build contains the CUDA execution provider.
pub fn cuda_compiled_in() -> Result<bool, InferenceError> {
    environment()?;
    Ok(ep::CUDA::is_available()?)
}

/// The CUDA execution provider as it is set up for every session (heuristic cuDNN algorithm choice:
/// every photo has its own size, and exhaustive search costs hundreds of milliseconds per new
/// shape, measured in ../shared/ENVIRONMENT.md).
fn cuda_provider() -> ep::ExecutionProviderDispatch {
    ep::CUDA::default()
        .with_conv_algorithm_search(ep::cuda::ConvAlgorithmSearch::Heuristic)
        .build()
        .error_on_failure()
}

static CUDA_USABLE: OnceLock<Result<(), String>> = OnceLock::new();

/// Whether the CUDA execution provider loads and initialises in this process, and if not, why
/// (asked of ONNX Runtime once per process; a build without it, a missing driver or library, no
/// GPU). The first answer of "no" is logged once, as a warning when the build has CUDA.
pub fn cuda_usable() -> Result<(), String> {
    CUDA_USABLE
        .get_or_init(|| {
            let answer = probe_cuda();
            if let Err(reason) = &answer {
                if cuda_compiled_in().unwrap_or(false) {
                    tracing::warn!(
                        "CUDA execution provider cannot be used, serving on the CPU: {reason}"
                    );
                } else {
                    tracing::info!(
                        "this ONNX Runtime build has no CUDA execution provider; serving on the CPU"
                    );
                }
            }
            answer
        })
        .clone()
}

fn probe_cuda() -> Result<(), String> {
    let env = environment().map_err(|e| e.to_string())?;
    if !cuda_compiled_in().map_err(|e| e.to_string())? {
        return Err("this ONNX Runtime build has no CUDA execution provider (STYLEGRAM_GPU=1 scripts/bootstrap.sh installs the GPU build)".to_owned());
    }
    let builder = Session::builder(env).map_err(|e| e.to_string())?;
    builder
        .with_execution_providers([cuda_provider()])
        .map(drop)
        .map_err(|e| short_reason(&e.to_string()))
}

/// The part of an ONNX Runtime error a person needs: what failed, without the source location.
fn short_reason(message: &str) -> String {
    let tail = message.rsplit(" : FAIL : ").next().unwrap_or(message);
    tail.trim().to_owned()
}

/// Creates a session from ONNX bytes with graph optimisation level 3 and returns the provider it got.
pub fn create_session(
    model: &[u8],
    options: SessionOptions,
) -> Result<(Session, Provider), InferenceError> {
    let env = environment()?;
    let mut builder = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(options.intra_threads)?;
    let mut provider = Provider::Cpu;
    let wants_cuda = match options.device {
        Device::Cpu => false,
        // Asked once per process: a machine without CUDA logs one line, not one per session.
        Device::Auto => cuda_usable().is_ok(),
        Device::Cuda => true,
    };
    if wants_cuda {
        match builder.with_execution_providers([cuda_provider()]) {
            Ok(b) => {
                builder = b;
                provider = Provider::Cuda;
            }
            Err(e) if options.device == Device::Auto => {
                tracing::warn!(reason = %e, "CUDA execution provider failed for this session, using CPU");
                builder = e.recover();
            }
            Err(e) => {
                return Err(InferenceError::Ort(format!(
                    "CUDA was requested but cannot be used: {}",
                    short_reason(&e.to_string())
                )));
            }
        }
    }
    // Every photo has its own size, so a memory pattern planned for one shape does not serve the
    // next; each kept plan holds the peak of its shape (measured in docs/bot-benchmark.md).
    builder = builder.with_memory_pattern(false)?;
    let session = builder.commit_from_memory(model)?;
    tracing::info!(%provider, "ONNX Runtime session ready");
    Ok((session, provider))
}

/// Facts about the ONNX Runtime this process would use, for `doctor`.
#[derive(Debug, Clone)]
pub struct RuntimeReport {
    /// The shared library file.
    pub library: PathBuf,
    /// The version from the library's build info (e.g. `1.31.1`).
    pub version: String,
    /// Whether the CUDA execution provider is compiled into that build.
    pub cuda_compiled_in: bool,
    /// Whether it loads and initialises here, or why not.
    pub cuda_usable: Result<(), String>,
}

impl RuntimeReport {
    /// One line on the CUDA execution provider for `doctor`: whether sessions will get it, or why not.
    pub fn cuda_line(&self) -> String {
        match (&self.cuda_usable, self.cuda_compiled_in) {
            (Ok(()), _) => "usable: fast mode runs on the GPU".to_owned(),
            (Err(_), false) => "not in this build (CPU build; STYLEGRAM_GPU=1 scripts/bootstrap.sh installs the GPU build)".to_owned(),
            (Err(reason), true) => format!("compiled in but cannot be used here, so fast mode runs on the CPU: {reason}"),
        }
    }
}

/// Loads ONNX Runtime and describes it.
pub fn report() -> Result<RuntimeReport, InferenceError> {
    let library = library_path()?;
    let cuda_compiled_in = cuda_compiled_in()?;
    Ok(RuntimeReport {
        version: version_from_build_info(ort::info(), &library),
        library,
        cuda_compiled_in,
        cuda_usable: cuda_usable(),
    })
}

/// `git-branch=rel-1.31.1` in the build info, else the version suffix of the resolved library file name.
fn version_from_build_info(info: &str, library: &Path) -> String {
    if let Some(rest) = info.split("git-branch=rel-").nth(1) {
        return rest.split([',', ' ']).next().unwrap_or(rest).to_owned();
    }
    let resolved = std::fs::canonicalize(library).unwrap_or_else(|_| library.to_owned());
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_prefix("libonnxruntime.so.")
        .map(str::to_owned)
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parses_user_words() {
        assert_eq!("CUDA".parse::<Device>(), Ok(Device::Cuda));
        assert_eq!("gpu".parse::<Device>(), Ok(Device::Cuda));
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert!(
            "tpu"
                .parse::<Device>()
                .unwrap_err()
                .contains("expected auto, cpu or cuda")
        );
    }

    #[test]
    fn short_reasons_drop_the_source_location() {
        let full = "/onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:2043 \
                    onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : \
                    FAIL : Failed to load library libonnxruntime_providers_cuda.so with error: \
                    libcuda.so.1: cannot open shared object file: No such file or directory\n";
        assert_eq!(
            short_reason(full),
            "Failed to load library libonnxruntime_providers_cuda.so with error: libcuda.so.1: \
             cannot open shared object file: No such file or directory"
        );
        assert_eq!(short_reason("plain words"), "plain words");
    }

    #[test]
    fn version_comes_from_build_info_or_file_name() {
        let info = "ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc, build type=Release";
        assert_eq!(version_from_build_info(info, Path::new("/x")), "1.31.1");
        assert_eq!(
            version_from_build_info("no branch", Path::new("/x/libonnxruntime.so.1.2.3")),
            "1.2.3"
        );
    }
}
