//! The engines behind the [`stylegram_engine::Engine`] boundary on one machine: fast mode from the
//! ONNX model registry, quality mode from the Gatys optimiser (preset 3) on libtorch.
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;
use stylegram_engine::{
    Engine, EngineError, Flow, Mode, ModelStatus, Output, Picture, PresetInfo, Progress, Request,
    StyleSource,
};
use stylegram_inference::InferenceError;
use stylegram_inference::images::{self, Format, ImageLimits};
use stylegram_inference::presets::Presets;
use stylegram_inference::registry::{Registry, Status};
use stylegram_inference::runtime::{Device, SessionOptions};
use stylegram_inference::stylizer::Options;

use crate::gatys::{self, Style};
use crate::vgg::{Precision, Vgg};

/// How the local engines are set up.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Folder of fast-mode model bundles.
    pub models_dir: PathBuf,
    /// The bundle to serve first (default: the first valid one by name that suits the provider:
    /// int8 on CPU, float on CUDA).
    pub active_model: Option<String>,
    /// Folder of preset paintings (`manifest.json` inside).
    pub styles_dir: PathBuf,
    /// Where both engines run: "auto" (CUDA when present), "cpu" or "cuda".
    pub device: String,
    /// ONNX Runtime threads per fast job (0 = one per core).
    pub threads: usize,
    /// Longer side of fast-mode results.
    pub fast_max_side: u32,
    /// Longer side of quality-mode results.
    pub quality_size: u32,
    /// Quality-mode iteration cap (preset 3's when `None`).
    pub quality_iterations: Option<usize>,
    /// VGG weights for quality mode (loaded on the first quality job).
    pub vgg: PathBuf,
    /// Seconds between quality-mode previews.
    pub preview_interval: Duration,
    /// What user pictures may be.
    pub limits: ImageLimits,
}

/// Fast and quality mode in this process.
pub struct LocalEngine {
    config: LocalConfig,
    torch_device: tch::Device,
    registry: Arc<Registry>,
    presets: Presets,
    preset_images: Mutex<HashMap<String, Arc<RgbImage>>>,
    /// Idle VGG copies: a quality job takes one (loading another when none is idle) and puts it
    /// back, so concurrent jobs never share one (`tch` tensors are not `Sync`).
    vggs: Mutex<Vec<Vgg>>,
}

fn image_error(e: InferenceError) -> EngineError {
    match e {
        InferenceError::UnreadableImage(_)
        | InferenceError::ImageTooLarge { .. }
        | InferenceError::ImageTooSmall { .. }
        | InferenceError::ExtremeAspect { .. } => EngineError::BadImage(e.to_string()),
        InferenceError::BadRequest(m) => EngineError::BadRequest(m),
        other => EngineError::Failed(other.to_string()),
    }
}

fn jpeg(image: &RgbImage) -> Result<Picture, EngineError> {
    Ok(Picture {
        jpeg: images::encode(image, Format::Jpeg).map_err(image_error)?,
        width: image.width(),
        height: image.height(),
    })
}

impl LocalEngine {
    /// Opens the model registry and the presets; fails when no fast model is valid.
    pub fn open(config: LocalConfig) -> Result<Self, EngineError> {
        let ort_device: Device = config.device.parse().map_err(EngineError::BadRequest)?;
        let torch_device = match ort_device {
            Device::Auto => gatys::default_device(),
            Device::Cpu => tch::Device::Cpu,
            Device::Cuda if tch::Cuda::is_available() => tch::Device::Cuda(0),
            Device::Cuda => {
                return Err(EngineError::BadRequest(
                    "device cuda, but libtorch sees no CUDA device".into(),
                ));
            }
        };
        if torch_device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let session = SessionOptions {
            device: ort_device,
            intra_threads: config.threads,
        };
        let registry = Registry::open(
            &config.models_dir,
            config.active_model.as_deref(),
            session,
            64,
        )
        .map_err(|e| EngineError::Failed(e.to_string()))?;
        let presets =
            Presets::load(&config.styles_dir).map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok(LocalEngine {
            config,
            torch_device,
            registry: Arc::new(registry),
            presets,
            preset_images: Mutex::new(HashMap::new()),
            vggs: Mutex::new(Vec::new()),
        })
    }

    /// The model registry (for a folder watcher).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn preset_image(&self, id: &str) -> Result<Arc<RgbImage>, EngineError> {
        if let Some(image) = self.preset_images.lock().expect("presets lock").get(id) {
            return Ok(image.clone());
        }
        let preset = self
            .presets
            .get(id)
            .ok_or_else(|| EngineError::BadRequest(format!("no preset style '{id}'")))?;
        let image = Arc::new(self.presets.image(preset).map_err(image_error)?);
        self.preset_images
            .lock()
            .expect("presets lock")
            .insert(id.to_owned(), image.clone());
        Ok(image)
    }

    fn styles(&self, request: &Request) -> Result<Vec<(Arc<RgbImage>, f32)>, EngineError> {
        if request.styles.is_empty() {
            return Err(EngineError::BadRequest("no style chosen".into()));
        }
        request
            .styles
            .iter()
            .map(|s| {
                let image = match &s.source {
                    StyleSource::Preset(id) => self.preset_image(id)?,
                    StyleSource::Picture(bytes) => {
                        Arc::new(images::decode(bytes, &self.config.limits).map_err(image_error)?)
                    }
                };
                Ok((image, s.weight))
            })
            .collect()
    }

    fn take_vgg(&self) -> Result<Vgg, EngineError> {
        if let Some(vgg) = self.vggs.lock().expect("vgg lock").pop() {
            return Ok(vgg);
        }
        Vgg::load(&self.config.vgg, self.torch_device)
            .map(|vgg| vgg.with_precision(Precision::auto(self.torch_device)))
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    fn fast(&self, request: &Request, content: &RgbImage) -> Result<RgbImage, EngineError> {
        let styles = self.styles(request)?;
        let refs: Vec<(&RgbImage, f32)> = styles.iter().map(|(i, w)| (i.as_ref(), *w)).collect();
        let options = Options {
            alpha: f32::from(request.strength) / 5.0,
            preserve_color: request.preserve_colors,
            max_side: self.config.fast_max_side,
        };
        self.registry
            .current()
            .stylize(content, &refs, &options)
            .map_err(image_error)
    }

    fn quality(
        &self,
        request: &Request,
        content: &RgbImage,
        progress: &mut dyn FnMut(Progress) -> Flow,
    ) -> Result<RgbImage, EngineError> {
        let styles: Vec<Style> = self
            .styles(request)?
            .into_iter()
            .map(|(image, weight)| Style {
                image: gatys::fit_long_side(&image, self.config.quality_size),
                weight: f64::from(weight),
            })
            .collect();
        let mut config = gatys::preset(3).expect("preset 3 exists");
        config.size = self.config.quality_size;
        if let Some(iterations) = self.config.quality_iterations {
            config.iterations = iterations;
        }
        // Strength 3 is the preset's β; each step multiplies or divides it by √10.
        config.style_weight *= 10f64.powf((f64::from(request.strength) - 3.0) / 2.0);
        config.preserve_color = request.preserve_colors;
        config.preview_every = 5;
        let vgg = self.take_vgg()?;
        let mut last_preview: Option<Instant> = None;
        let mut cancelled = false;
        let output = gatys::stylize(&vgg, content, &styles, &config, |p| {
            let due = last_preview.is_none_or(|t| t.elapsed() >= self.config.preview_interval);
            let preview = match (&p.preview, due) {
                (Some(image), true) => {
                    last_preview = Some(Instant::now());
                    jpeg(image).ok()
                }
                _ => None,
            };
            let fraction = p.iteration as f32 / p.iterations.max(1) as f32;
            match progress(Progress {
                fraction,
                eta: p.eta,
                preview,
            }) {
                Flow::Continue => ControlFlow::Continue(()),
                Flow::Stop => {
                    cancelled = true;
                    ControlFlow::Break(())
                }
            }
        })
        .map_err(|e| EngineError::Failed(e.to_string()));
        self.vggs.lock().expect("vgg lock").push(vgg);
        let output = output?;
        if cancelled {
            return Err(EngineError::Cancelled);
        }
        Ok(output.image)
    }
}

impl Engine for LocalEngine {
    fn presets(&self) -> Vec<PresetInfo> {
        self.presets
            .all()
            .iter()
            .map(|p| PresetInfo {
                id: p.id.clone(),
                title_en: p.title_en.clone(),
                title_ru: p.title_ru.clone(),
                artist: p.artist.clone(),
                year: p.year,
            })
            .collect()
    }

    fn gallery(&self, ids: &[String]) -> Result<Picture, EngineError> {
        let thumbs = ids
            .iter()
            .map(|id| {
                let image = self.preset_image(id)?;
                Ok(images::fit_max_side(image.as_ref().clone(), 256))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        jpeg(&images::contact_sheet(&[thumbs], 256))
    }

    fn check_image(&self, bytes: &[u8]) -> Result<(u32, u32), EngineError> {
        let image = images::decode(bytes, &self.config.limits).map_err(image_error)?;
        Ok(image.dimensions())
    }

    fn run(
        &self,
        request: &Request,
        progress: &mut dyn FnMut(Progress) -> Flow,
    ) -> Result<Output, EngineError> {
        if !stylegram_engine::STRENGTHS.contains(&request.strength) {
            return Err(EngineError::BadRequest(format!(
                "strength {} is outside 1..=5",
                request.strength
            )));
        }
        let start = Instant::now();
        let content = images::decode(&request.content, &self.config.limits).map_err(image_error)?;
        let result = match request.mode {
            Mode::Fast => self.fast(request, &content)?,
            Mode::Quality => self.quality(request, &content, progress)?,
        };
        Ok(Output {
            picture: jpeg(&result)?,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    fn models(&self) -> Vec<ModelStatus> {
        self.registry
            .list()
            .into_iter()
            .map(|m| ModelStatus {
                active: m.serving,
                problem: match m.status {
                    Status::Invalid(p) => Some(p),
                    _ => None,
                },
                name: m.name,
                version: m.version,
            })
            .collect()
    }

    fn use_model(&self, name: &str) -> Result<(), EngineError> {
        self.registry
            .activate(name)
            .map_err(|e| EngineError::BadRequest(e.to_string()))
    }

    fn reload(&self) -> Result<Vec<String>, EngineError> {
        self.registry
            .rescan()
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    fn provider(&self) -> String {
        let fast = self.registry.current().model().provider();
        let quality = if self.torch_device.is_cuda() {
            "CUDA"
        } else {
            "CPU"
        };
        format!("fast: {fast}, quality: {quality}")
    }
}
