//! Training checkpoints: a folder holding `decoder.safetensors` (the weights export reads),
//! `optimizer.safetensors` (Adam's moments) and `state.json` (iteration, loss scales, recipe).
//! Written to a temporary folder and renamed into place, so a crash never leaves half a checkpoint.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;
use tch::nn::VarStore;

use crate::TrainingError;
use crate::adam::Adam;

/// The decoder weights inside a checkpoint folder.
pub const DECODER_FILE: &str = "decoder.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
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
    let mut moments: Vec<(String, Tensor)> = Vec::new();
    for (name, adam) in names.iter().zip(optimizers) {
        let (m, v, _) = adam.state();
        moments.push((format!("m.{name}"), m.to_device(tch::Device::Cpu)));
        moments.push((format!("v.{name}"), v.to_device(tch::Device::Cpu)));
    }
    Tensor::write_safetensors(&moments, tmp.join(OPTIMIZER_FILE))?;
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

/// Restores decoder weights into `vs` and Adam moments into `optimizers` (one per name in `names`).
pub fn restore(
    dir: &Path,
    vs: &mut VarStore,
    names: &[String],
    optimizers: &mut [Adam],
    state: &State,
) -> Result<(), TrainingError> {
    let decoder = dir.join(DECODER_FILE);
    vs.load(&decoder).map_err(|e| TrainingError::BadWeights {
        path: decoder.clone(),
        message: e.to_string(),
    })?;
    let path: PathBuf = dir.join(OPTIMIZER_FILE);
    let mut moments: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .map_err(|e| TrainingError::BadWeights {
            path: path.clone(),
            message: e.to_string(),
        })?
        .into_iter()
        .collect();
    let device = vs.device();
    for (name, adam) in names.iter().zip(optimizers.iter_mut()) {
        let mut take = |key: String| {
            moments
                .remove(&key)
                .map(|t| t.to_device(device))
                .ok_or_else(|| TrainingError::BadWeights {
                    path: path.clone(),
                    message: format!("'{key}' is missing"),
                })
        };
        let m = take(format!("m.{name}"))?;
        let v = take(format!("v.{name}"))?;
        adam.restore(m, v, state.iteration as i32);
    }
    Ok(())
}
