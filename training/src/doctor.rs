//! `doctor`: what this machine has (libtorch, ONNX Runtime, CUDA, cuDNN, VGG weights) and what is missing.
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::paths;

/// One checked item.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub what: &'static str,
    /// What was found.
    pub found: String,
    /// `None` when all is well; otherwise how to fix it.
    pub fix: Option<String>,
}

/// Runs every check.
pub fn run() -> Vec<Check> {
    let mut checks = Vec::new();
    let (torch_version, torch_dir) = loaded_libtorch();
    checks.push(Check {
        what: "libtorch",
        found: format!(
            "{torch_version} ({})",
            torch_dir.map_or("location unknown".into(), |d| d.display().to_string())
        ),
        fix: None,
    });
    let cuda = tch::Cuda::is_available();
    checks.push(Check {
        what: "libtorch CUDA",
        found: if cuda {
            format!(
                "yes: {} device(s), cuDNN {}",
                tch::Cuda::device_count(),
                if tch::Cuda::cudnn_is_available() {
                    tch::utils::version_cudnn().to_string()
                } else {
                    "missing".into()
                }
            )
        } else {
            "no (CPU only)".into()
        },
        fix: None,
    });
    checks.push(Check {
        what: "libtorch threads",
        found: format!(
            "{} intra-op (set with OMP_NUM_THREADS)",
            tch::get_num_threads()
        ),
        fix: None,
    });
    let cpu = stylegram_inference::cpu::CpuFeatures::detect();
    checks.push(Check {
        what: "CPU",
        found: cpu.to_string(),
        fix: None,
    });
    checks.push(Check {
        what: "int8 arithmetic",
        found: format!(
            "{}; int8 bundles with 7-bit weights are exact either way",
            cpu.int8_arithmetic()
        ),
        fix: None,
    });
    checks.push(Check {
        what: "quality-mode precision",
        found: match stylegram_quality::vgg::cpu_bf16_held_back() {
            None => "bf16 convolutions (AVX-512 BF16{})"
                .replace("{}", if cpu.amx_bf16 { ", AMX" } else { "" }),
            Some(why) => format!("f32 ({why})"),
        },
        fix: None,
    });
    match stylegram_inference::runtime::report() {
        Ok(r) => {
            checks.push(Check {
                what: "ONNX Runtime",
                found: format!("{} ({})", r.version, r.library.display()),
                fix: None,
            });
            checks.push(Check {
                what: "ONNX Runtime CUDA",
                found: r.cuda_line(),
                fix: None,
            });
        }
        Err(e) => checks.push(Check {
            what: "ONNX Runtime",
            found: "missing".into(),
            fix: Some(e.to_string()),
        }),
    }
    checks.push(file_check(
        "VGG16 source (ONNX)",
        paths::vgg_onnx(),
        "run `make bootstrap` (or set STYLEGRAM_VGG_ONNX)",
    ));
    checks.push(file_check(
        "VGG weights",
        paths::vgg_weights(),
        "run `stylegram-train import-vgg` (make does it), or set STYLEGRAM_VGG",
    ));
    checks
}

fn file_check(what: &'static str, path: PathBuf, fix: &str) -> Check {
    if path.is_file() {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Check {
            what,
            found: format!("{} ({:.1} MB)", path.display(), size as f64 / 1e6),
            fix: None,
        }
    } else {
        Check {
            what,
            found: format!("missing: {}", path.display()),
            fix: Some(fix.to_owned()),
        }
    }
}

/// Renders the checks as an aligned report.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let mark = if c.fix.is_none() { "ok " } else { "MISSING" };
        let _ = writeln!(out, "{mark:<7} {:<width$}  {}", c.what, c.found);
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "{:<7} {:<width$}  fix: {fix}", "", "");
        }
    }
    out
}

/// The libtorch this process really loaded: its folder (from `/proc/self/maps`) and the version in the
/// PyTorch `version.py` next to it. torch-sys already checked at build time that it is 2.11.0; this
/// shows what a machine with another `LD_LIBRARY_PATH` picked up.
fn loaded_libtorch() -> (String, Option<PathBuf>) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .map(PathBuf::from);
    let dir = lib.as_ref().and_then(|l| l.parent()).map(PathBuf::from);
    let version = dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("../version.py")).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|v| v.trim_matches(['\'', '"', ' ']).to_owned())
        })
        .unwrap_or_else(|| "2.11.0 (checked at build time)".to_owned());
    (version, dir)
}
