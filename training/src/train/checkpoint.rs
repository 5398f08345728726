//! Training checkpoints: a folder holding `decoder.safetensors` (the weights export reads),
//! `adam-m.safetensors` and `adam-v.safetensors` (Adam's first and second moments, one file each so
//! that no file is larger than the weights) and `state.json` (iteration, loss scales, recipe).
//! Written to a temporary folder and renamed into place, so a crash never leaves half a checkpoint.
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::Tensor;
use tch::nn::VarStore;

use crate::TrainingError;
use stylegram_quality::adam::Adam;

/// The decoder weights inside a checkpoint folder.
pub const DECODER_FILE: &str = "decoder.safetensors";
/// Adam's moment files, first then second.
const MOMENT_FILES: [(&str, &str); 2] = [("m", "adam-m.safetensors"), ("v", "adam-v.safetensors")];
const STATE_FILE: &str = "state.json";

/// What besides tensors a run needs to continue exactly where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// Iterations completed.
    pub iteration: u64,
    /// The loss's per-layer normalisation ([`super::loss::LayerScales`]).
    pub layer_scales: [f64; 4],
    /// The run's settings, as given (for the record and for `export`'s manifest).
    pub recipe: serde_json::Value,
    /// Seconds of training so far, over all sessions.
    pub elapsed_s: f64,
    /// Adam's step count (its bias correction). Equals `iteration` unless the run was warm-started
    /// from weights alone, which restarts Adam; older checkpoints lack it.
    #[serde(default)]
    pub adam_steps: Option<u64>,
}

/// What [`restore`] brings back besides the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Adam's moments too: the run continues exactly as if never stopped.
    Exact,
    /// Weights only; Adam starts from zero moments (for checkpoints whose moments were not kept).
    WarmStart,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainingError + '_ {
    move |source| TrainingError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a checkpoint of `vs` (the decoder), the optimisers (one per variable, in `names` order) and
/// `state` to `dir`, replacing what was there.
pub fn save(
    dir: &Path,
    vs: &VarStore,
    names: &[String],
    optimizers: &[Adam],
    state: &State,
) -> Result<(), TrainingError> {
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let mut weights: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.to_device(tch::Device::Cpu)))
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&weights, tmp.join(DECODER_FILE))?;
    for (index, (prefix, file)) in MOMENT_FILES.iter().enumerate() {
        let moments: Vec<(String, Tensor)> = names
            .iter()
            .zip(optimizers)
            .map(|(name, adam)| {
                let (m, v, _) = adam.state();
                let moment = if index == 0 { m } else { v };
                (
                    format!("{prefix}.{name}"),
                    moment.to_device(tch::Device::Cpu),
                )
            })
            .collect();
        Tensor::write_safetensors(&moments, tmp.join(file))?;
    }
    let json = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(tmp.join(STATE_FILE), json).map_err(io(&tmp))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    Ok(())
}

/// Reads `state.json` of a checkpoint folder.
pub fn read_state(dir: &Path) -> Result<State, TrainingError> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|e| TrainingError::BadWeights {
        path,
        message: format!("not a Stylegram training state: {e}"),
    })
}

/// Copies the tensors of a safetensors file into the variables of `vs` of the same names, converting
/// to each variable's kind (so weights stored in f16 for transport train on in f32).
fn load_weights(path: &Path, vs: &mut VarStore) -> Result<(), TrainingError> {
    let bad = |message: String| TrainingError::BadWeights {
        path: path.to_owned(),
        message,
    };
    let mut saved: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .collect();
    for (name, mut var) in vs.variables() {
        let value = saved
            .remove(&name)
            .ok_or_else(|| bad(format!("'{name}' is missing")))?;
        if value.size() != var.size() {
            return Err(bad(format!(
                "'{name}' has shape {:?}, the decoder expects {:?}",
                value.size(),
                var.size()
            )));
        }
        tch::no_grad(|| var.copy_(&value));
    }
    Ok(())
}

/// Restores decoder weights into `vs` and, for [`Resume::Exact`], Adam's moments into
/// `optimizers` (one per name in `names`).
pub fn restore(
    dir: &Path,
    vs: &mut VarStore,
    names: &[String],
    optimizers: &mut [Adam],
    state: &State,
    resume: Resume,
) -> Result<(), TrainingError> {
    load_weights(&dir.join(DECODER_FILE), vs)?;
    if resume == Resume::WarmStart {
        return Ok(());
    }
    let mut moments: std::collections::HashMap<String, Tensor> = std::collections::HashMap::new();
    for (_, file) in MOMENT_FILES {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(TrainingError::BadWeights {
                path,
                message: "Adam's moments are missing; pass --warm-start to continue from the \
                          weights alone (Adam restarts)"
                    .into(),
            });
        }
        let tensors = Tensor::read_safetensors(&path).map_err(|e| TrainingError::BadWeights {
            path: path.clone(),
            message: e.to_string(),
        })?;
        moments.extend(tensors);
    }
    let device = vs.device();
    let steps = state.adam_steps.unwrap_or(state.iteration);
    for (name, adam) in names.iter().zip(optimizers.iter_mut()) {
        let mut take = |key: String| {
            moments
                .remove(&key)
                .map(|t| t.to_device(device))
                .ok_or_else(|| TrainingError::BadWeights {
                    path: dir.to_owned(),
                    message: format!("Adam moment '{key}' is missing"),
                })
        };
        let m = take(format!("m.{name}"))?;
        let v = take(format!("v.{name}"))?;
        adam.restore(m, v, steps as i32);
    }
    Ok(())
}
