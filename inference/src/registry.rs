//! The model registry: every bundle under a models folder, validated before it is served, one of them
//! active, swapped without a restart. A request takes the active [`Stylizer`] (an `Arc`) when it
//! starts and finishes on it, whatever is swapped meanwhile; a bundle that fails validation never
//! replaces a working one.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::InferenceError;
use crate::adain::AdainModel;
use crate::bundle::MANIFEST;
use crate::cpu::CpuFeatures;
use crate::runtime::{Provider, SessionOptions};
use crate::stylizer::Stylizer;
use stylegram_imaging::{self as images, ImageLimits};

/// A small real photo every bundle must stylize before it is served.
const SMOKE_JPEG: &[u8] = include_bytes!("../assets/smoke.jpg");

/// Where a bundle stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Serving requests now.
    Active,
    /// Validated; can be activated.
    Ready,
    /// Failed validation, with the reason.
    Invalid(String),
}

/// One bundle as the registry sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The folder's name.
    pub name: String,
    /// The manifest's version, when it could be read.
    pub version: Option<String>,
    /// Its status.
    pub status: Status,
    /// Whether requests are served by (the last valid load of) this bundle; can be true while
    /// `status` is `Invalid`, when the active bundle's files changed and failed validation.
    pub serving: bool,
}

/// Sizes and modification times of a bundle's files: a change means "validate again".
type Fingerprint = Vec<(String, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files: Fingerprint = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    meta.is_file().then(|| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            meta.len(),
                            meta.modified().ok(),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Loads and checks a bundle: manifest schema, SHA-256 of every file, both sessions, and a smoke
/// inference on a small real photo giving finite output of the right shape.
pub fn validate(dir: &Path, options: SessionOptions) -> Result<AdainModel, InferenceError> {
    let model = AdainModel::load(dir, options)?;
    if model.provider() == Provider::Cpu {
        int8_suits(&model, &CpuFeatures::detect()).map_err(|message| {
            InferenceError::BadBundle {
                dir: dir.to_owned(),
                message,
            }
        })?;
    }
    let smoke = images::decode(SMOKE_JPEG, &ImageLimits::default())?;
    model.smoke_test(&smoke)?;
    Ok(model)
}

/// Why `model` suits the provider its sessions got on `cpu`, in words, for `doctor`.
pub fn suitability(model: &AdainModel, cpu: &CpuFeatures) -> String {
    match (model.is_quantized(), model.provider()) {
        (true, Provider::Cpu) if model.int8_exact_everywhere() => "int8 on the CPU, where ONNX \
            Runtime runs its convolutions as integers; 7-bit weights, exact with and without VNNI"
            .to_owned(),
        (true, Provider::Cpu) => format!(
            "int8 on the CPU, where ONNX Runtime runs its convolutions as integers; 8-bit weights, \
             exact here only because this CPU has {}",
            cpu.int8_arithmetic()
        ),
        (false, Provider::Cuda) => {
            "float on CUDA: ONNX Runtime's CUDA provider has no integer convolutions".to_owned()
        }
        (true, Provider::Cuda) => "int8 on CUDA, named by the operator: CUDA runs it as float \
            convolutions between dequantisations"
            .to_owned(),
        (false, Provider::Cpu) => "float on the CPU: named by the operator, or no valid int8 \
            bundle (slower than int8 there; `stylegram bench --compare` measures by how much)"
            .to_owned(),
    }
}

/// Whether `model`'s integer convolutions are right on `cpu`: int8 bundles with 8-bit weights
/// overflow the saturating 16-bit pair sums of CPUs without VNNI (`stylegram_onnx::u8s8`).
pub fn int8_suits(model: &AdainModel, cpu: &CpuFeatures) -> Result<(), String> {
    if model.int8_exact_everywhere() || cpu.exact_int8_dot() {
        return Ok(());
    }
    Err(format!(
        "its int8 weights use 8 bits, and this CPU ({}) has no VNNI: its integer convolutions would \
         overflow. Rebuild it with `stylegram models quantize` (7-bit weights) or serve a float bundle",
        cpu.model
    ))
}

struct Entry {
    fingerprint: Fingerprint,
    version: Option<String>,
    problem: Option<String>,
}

/// The models folder and the active model.
pub struct Registry {
    root: PathBuf,
    options: SessionOptions,
    cache_capacity: usize,
    active: RwLock<(String, Arc<Stylizer>)>,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Registry {
    /// Validates every bundle under `root` and activates `preferred`; if `None`, the first valid one
    /// by name that suits the provider (an int8 bundle on CPU, a float one on CUDA, where ONNX
    /// Runtime has no integer convolutions), else the first valid one. Fails when the preferred
    /// bundle, or every bundle, is invalid.
    pub fn open(
        root: &Path,
        preferred: Option<&str>,
        options: SessionOptions,
        cache_capacity: usize,
    ) -> Result<Self, InferenceError> {
        let mut entries = BTreeMap::new();
        let mut valid: BTreeMap<String, AdainModel> = BTreeMap::new();
        for (name, dir) in bundle_dirs(root)? {
            let fp = fingerprint(&dir);
            match validate(&dir, options) {
                Ok(model) => {
                    entries.insert(
                        name.clone(),
                        Entry {
                            fingerprint: fp,
                            version: Some(model.manifest().version.clone()),
                            problem: None,
                        },
                    );
                    valid.insert(name, model);
                }
                Err(e) => {
                    tracing::warn!("model {name} is not usable: {e}");
                    entries.insert(
                        name,
                        Entry {
                            fingerprint: fp,
                            version: None,
                            problem: Some(e.to_string()),
                        },
                    );
                }
            }
        }
        let name = match preferred {
            Some(p) => match (valid.contains_key(p), entries.get(p)) {
                (true, _) => p.to_owned(),
                (false, Some(entry)) => {
                    return Err(InferenceError::BadBundle {
                        dir: root.join(p),
                        message: entry.problem.clone().unwrap_or_default(),
                    });
                }
                (false, None) => {
                    return Err(InferenceError::BadRequest(format!(
                        "no model '{p}' in {}; there are: {}",
                        root.display(),
                        entries.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
            },
            None => valid
                .iter()
                .find(|(_, m)| m.is_quantized() == (m.provider() == Provider::Cpu))
                .or_else(|| valid.iter().next())
                .map(|(name, _)| name.clone())
                .ok_or_else(|| {
                    InferenceError::BadRequest(format!(
                        "no valid model bundle in {} (see `stylegram models check`)",
                        root.display()
                    ))
                })?,
        };
        let model = valid.remove(&name).expect("chosen from the valid ones");
        tracing::info!("active model: {name}");
        Ok(Registry {
            root: root.to_owned(),
            options,
            cache_capacity,
            active: RwLock::new((
                name,
                Arc::new(Stylizer::new(Arc::new(model), cache_capacity)),
            )),
            entries: Mutex::new(entries),
        })
    }

    /// The active model's stylizer; hold it for the whole request.
    pub fn current(&self) -> Arc<Stylizer> {
        self.active.read().expect("active lock").1.clone()
    }

    /// The active bundle's name.
    pub fn active_name(&self) -> String {
        self.active.read().expect("active lock").0.clone()
    }

    /// Every bundle with its status, by name.
    pub fn list(&self) -> Vec<ModelInfo> {
        let active = self.active_name();
        self.entries
            .lock()
            .expect("entries lock")
            .iter()
            .map(|(name, e)| ModelInfo {
                name: name.clone(),
                version: e.version.clone(),
                status: match (&e.problem, *name == active) {
                    (Some(p), _) => Status::Invalid(p.clone()),
                    (None, true) => Status::Active,
                    (None, false) => Status::Ready,
                },
                serving: *name == active,
            })
            .collect()
    }

    /// Validates bundle `name` afresh and makes it the active model. On failure the active model
    /// stays and the reason is returned.
    pub fn activate(&self, name: &str) -> Result<(), InferenceError> {
        let dir = inside(&self.root, name)?;
        let fp = fingerprint(&dir);
        let result = validate(&dir, self.options);
        let mut entries = self.entries.lock().expect("entries lock");
        match result {
            Ok(model) => {
                entries.insert(
                    name.to_owned(),
                    Entry {
                        fingerprint: fp,
                        version: Some(model.manifest().version.clone()),
                        problem: None,
                    },
                );
                let stylizer = Arc::new(Stylizer::new(Arc::new(model), self.cache_capacity));
                *self.active.write().expect("active lock") = (name.to_owned(), stylizer);
                tracing::info!("active model: {name}");
                Ok(())
            }
            Err(e) => {
                tracing::warn!("model {name} rejected, keeping {}: {e}", self.active_name());
                entries.insert(
                    name.to_owned(),
                    Entry {
                        fingerprint: fp,
                        version: None,
                        problem: Some(e.to_string()),
                    },
                );
                Err(e)
            }
        }
    }

    /// Looks for added, changed and removed bundles; validates what changed, reloads the active one
    /// if its files changed and still validate. Returns the names that were (re)validated.
    pub fn rescan(&self) -> Result<Vec<String>, InferenceError> {
        let active = self.active_name();
        let dirs = bundle_dirs(&self.root)?;
        let mut changed = Vec::new();
        for (name, dir) in &dirs {
            let fp = fingerprint(dir);
            let known = self
                .entries
                .lock()
                .expect("entries lock")
                .get(name)
                .map(|e| e.fingerprint.clone());
            if known.as_ref() == Some(&fp) {
                continue;
            }
            changed.push(name.clone());
            if *name == active {
                // A failure keeps the running model; the reason shows in `list`.
                let _ = self.activate(name);
                continue;
            }
            let (version, problem) = match validate(dir, self.options) {
                Ok(model) => (Some(model.manifest().version.clone()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            self.entries.lock().expect("entries lock").insert(
                name.clone(),
                Entry {
                    fingerprint: fp,
                    version,
                    problem,
                },
            );
        }
        self.entries
            .lock()
            .expect("entries lock")
            .retain(|name, _| *name == active || dirs.iter().any(|(n, _)| n == name));
        Ok(changed)
    }

    /// Rescans every `interval` on a background thread for as long as the registry lives.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let registry = Arc::downgrade(self);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                match registry.rescan() {
                    Ok(changed) if !changed.is_empty() => {
                        tracing::info!("models rescanned: {}", changed.join(", "));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cannot rescan the models folder: {e}"),
                }
            }
        })
    }
}

/// The sub-folders of `root` that hold a manifest, by name.
/// The bundle folder `name` names in `root`: one plain folder name (no `/`, no `..`, not hidden, not
/// absolute), which after following links is still inside `root`. Operators' `/use` names arrive
/// here; nothing outside the models folder is ever opened.
pub fn inside(root: &Path, name: &str) -> Result<PathBuf, InferenceError> {
    let refuse = |why: &str| InferenceError::BadRequest(format!("no model '{name}': {why}"));
    let mut parts = Path::new(name).components();
    let plain = matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    );
    if !plain || name.starts_with('.') || name.contains(['/', '\\']) {
        return Err(refuse(
            "a model is named by its folder in the models folder",
        ));
    }
    let dir = root.join(name);
    let (Ok(real_root), Ok(real_dir)) = (root.canonicalize(), dir.canonicalize()) else {
        return Err(refuse("there is no such folder in the models folder"));
    };
    if !real_dir.starts_with(&real_root) {
        return Err(refuse("it links outside the models folder"));
    }
    Ok(dir)
}

fn bundle_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>, InferenceError> {
    let entries = std::fs::read_dir(root).map_err(|source| InferenceError::Io {
        path: root.to_owned(),
        source,
    })?;
    let mut dirs: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // Links that lead outside the models folder are not models.
            let dir = inside(root, &name).ok()?;
            dir.join(MANIFEST).is_file().then_some((name, dir))
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_names_cannot_leave_the_models_folder() {
        let base = std::env::temp_dir().join(format!("stylegram-inside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let models = base.join("models");
        std::fs::create_dir_all(models.join("adain-v2")).unwrap();
        std::fs::create_dir_all(base.join("secret")).unwrap();
        std::os::unix::fs::symlink(base.join("secret"), models.join("escape")).unwrap();
        std::os::unix::fs::symlink(models.join("adain-v2"), models.join("alias")).unwrap();

        assert!(inside(&models, "adain-v2").is_ok());
        assert!(
            inside(&models, "alias").is_ok(),
            "a link within the folder is fine"
        );
        let secret = base.join("secret");
        for name in [
            "../secret",
            secret.to_str().unwrap(),
            "escape",
            "adain-v2/../../secret",
            ".",
            "..",
            "",
            "missing",
        ] {
            let refused = inside(&models, name).expect_err(name).to_string();
            assert!(refused.contains("no model"), "{name}: {refused}");
        }
        let listed: Vec<String> = std::fs::read_dir(&models)
            .unwrap()
            .flatten()
            .filter_map(|e| inside(&models, &e.file_name().to_string_lossy()).ok())
            .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(!listed.contains(&"escape".to_owned()));
        let _ = std::fs::remove_dir_all(&base);
    }
}
