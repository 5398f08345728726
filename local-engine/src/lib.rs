//! Both engines on one machine behind the [`stylegram_engine::Engine`] boundary: fast mode from the
//! ONNX model registry (`stylegram-inference`), quality mode from the Gatys optimiser on libtorch
//! (`stylegram-quality`, behind the `quality` feature; without it the engine is fast-only and the
//! binary links no libtorch).
mod decoded;
#[cfg(feature = "quality")]
mod quality;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;
use stylegram_engine::{
    Engine, EngineError, Flow, Mode, ModelStatus, Output, PaintingInfo, Picture, Placement,
    Progress, Request, StyleSource,
};
use stylegram_imaging::{self as images, Format, ImageLimits, ImagingError};
use stylegram_inference::InferenceError;
use stylegram_inference::paintings::Paintings;
use stylegram_inference::registry::{Registry, Status};
use stylegram_inference::runtime::{Device, SessionOptions};
use stylegram_inference::stylizer::{Options, StylizeTimes};

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
    /// Quality-mode iteration cap (`gatys::quality_mode()`'s when `None`).
    pub quality_iterations: Option<usize>,
    /// Quality-mode time limit, after the fast picture (none: the iteration cap ends a job).
    pub quality_time_budget: Option<Duration>,
    /// VGG weights for quality mode (loaded on the first quality job).
    pub vgg: PathBuf,
    /// Seconds between quality-mode previews.
    pub preview_interval: Duration,
    /// What user pictures may be.
    pub limits: ImageLimits,
    /// Ready fast mode in the background as soon as the engine opens (see
    /// [`LocalEngine::open`]), instead of on the first user's job.
    pub warm_up: bool,
}

/// Fast and quality mode in this process.
pub struct LocalEngine {
    config: LocalConfig,
    registry: Arc<Registry>,
    paintings: Paintings,
    painting_images: Arc<Mutex<HashMap<String, Arc<RgbImage>>>>,
    /// Photos decoded by `check_image`, so that `run` does not decode them again.
    decoded: decoded::Decoded,
    #[cfg(feature = "quality")]
    quality: quality::QualityMode,
}

/// Bytes of decoded photos kept between a check and its job: about a dozen photos as Telegram
/// sends them (1280 px on the long side, 4.9 MB decoded at 3 bytes a pixel). Larger pictures are
/// decoded again; the bot's measured peak (782 MiB for 50 users) stays under its 1 GB target.
const DECODED_BYTES: usize = 64 << 20;

/// A picture problem the user can act on becomes [`EngineError::BadImage`].
fn imaging_error(e: ImagingError) -> EngineError {
    if e.is_bad_picture() {
        EngineError::BadImage(e.to_string())
    } else {
        EngineError::Failed(e.to_string())
    }
}

fn inference_error(e: InferenceError) -> EngineError {
    match e {
        InferenceError::Image(e) => imaging_error(e),
        InferenceError::BadRequest(m) => EngineError::BadRequest(m),
        other => EngineError::Failed(other.to_string()),
    }
}

/// The picture as JPEG, with its size.
fn jpeg(image: &RgbImage) -> Result<Picture, EngineError> {
    Ok(Picture {
        jpeg: images::encode(image, Format::Jpeg).map_err(imaging_error)?,
        width: image.width(),
        height: image.height(),
    })
}

impl LocalEngine {
    /// Opens the model registry and the gallery's paintings; fails when no fast model is valid.
    /// With `config.warm_up`, a thread then readies fast mode before the first user asks: the
    /// paintings are decoded, their style statistics computed at the fast size, and the network
    /// runs once (ONNX Runtime sets itself up on its first run).
    pub fn open(config: LocalConfig) -> Result<Self, EngineError> {
        let device: Device = config.device.parse().map_err(EngineError::BadRequest)?;
        #[cfg(feature = "quality")]
        let quality = quality::QualityMode::new(&config, device)?;
        let session = SessionOptions {
            device,
            intra_threads: config.threads,
        };
        let registry = Registry::open(
            &config.models_dir,
            config.active_model.as_deref(),
            session,
            64,
        )
        .map_err(|e| EngineError::Failed(e.to_string()))?;
        let paintings =
            Paintings::load(&config.styles_dir).map_err(|e| EngineError::Failed(e.to_string()))?;
        let engine = LocalEngine {
            config,
            registry: Arc::new(registry),
            paintings,
            painting_images: Arc::new(Mutex::new(HashMap::new())),
            decoded: decoded::Decoded::new(DECODED_BYTES),
            #[cfg(feature = "quality")]
            quality,
        };
        if engine.config.warm_up {
            engine.warm_up();
        }
        Ok(engine)
    }

    fn warm_up(&self) {
        let registry = self.registry.clone();
        let paintings = self.paintings.clone();
        let images = self.painting_images.clone();
        let side = self.config.fast_max_side;
        let spawned = std::thread::Builder::new()
            .name("warm-up".into())
            .spawn(move || {
                let started = Instant::now();
                let stylizer = registry.current();
                let mut ready = Vec::new();
                for painting in paintings.all() {
                    let image = match paintings.image(painting) {
                        Ok(image) => Arc::new(image),
                        Err(e) => {
                            tracing::warn!(painting = %painting.id, "cannot read: {e}");
                            continue;
                        }
                    };
                    if let Err(e) = stylizer.style_stats(&image, side) {
                        tracing::warn!(painting = %painting.id, "no style statistics: {e}");
                    }
                    images
                        .lock()
                        .expect("paintings lock")
                        .insert(painting.id.clone(), image.clone());
                    ready.push(image);
                }
                if let Some(style) = ready.first() {
                    let photo = RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
                    let options = Options {
                        alpha: 1.0,
                        preserve_color: false,
                        max_side: 64,
                    };
                    let _ = stylizer.stylize(&photo, &[(style.as_ref(), 1.0)], &options);
                }
                tracing::info!(
                    paintings = ready.len(),
                    "fast mode ready in {:.1} s (paintings' statistics computed, network run once)",
                    started.elapsed().as_secs_f64()
                );
            });
        if let Err(e) = spawned {
            tracing::warn!("no warm-up thread: {e}");
        }
    }

    /// How many photos this engine has decoded for checks and jobs (a photo checked and then
    /// painted, or painted again, counts once while it stays in the cache).
    pub fn photos_decoded(&self) -> u64 {
        self.decoded.decodes()
    }

    /// The model registry (for a folder watcher).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn painting_image(&self, id: &str) -> Result<Arc<RgbImage>, EngineError> {
        if let Some(image) = self.painting_images.lock().expect("paintings lock").get(id) {
            return Ok(image.clone());
        }
        let preset = self
            .paintings
            .get(id)
            .ok_or_else(|| EngineError::BadRequest(format!("no painting '{id}'")))?;
        let image = Arc::new(self.paintings.image(preset).map_err(inference_error)?);
        self.painting_images
            .lock()
            .expect("paintings lock")
            .insert(id.to_owned(), image.clone());
        Ok(image)
    }

    /// The request's style pictures, decoded, with their weights.
    fn styles(&self, request: &Request) -> Result<Vec<(Arc<RgbImage>, f32)>, EngineError> {
        if request.styles.is_empty() {
            return Err(EngineError::BadRequest("no style chosen".into()));
        }
        request
            .styles
            .iter()
            .map(|s| {
                let image = match &s.source {
                    StyleSource::Painting(id) => self.painting_image(id)?,
                    StyleSource::Picture(bytes) => {
                        Arc::new(images::decode(bytes, &self.config.limits).map_err(imaging_error)?)
                    }
                };
                Ok((image, s.weight))
            })
            .collect()
    }

    /// Fast mode: the registry's current AdaIN model; the picture and where the time went.
    fn paint_fast(
        &self,
        request: &Request,
        content: &RgbImage,
    ) -> Result<(RgbImage, StylizeTimes), EngineError> {
        let styles = self.styles(request)?;
        let refs: Vec<(&RgbImage, f32)> = styles.iter().map(|(i, w)| (i.as_ref(), *w)).collect();
        let options = Options {
            alpha: request.strength.alpha(),
            preserve_color: request.preserve_colors,
            max_side: self.config.fast_max_side,
        };
        self.registry
            .current()
            .stylize_timed(content, &refs, &options)
            .map_err(inference_error)
    }

    /// The fast model's picture at quality size, where quality mode starts; `None` (the photo is
    /// the start) when the fast model cannot paint it.
    #[cfg(feature = "quality")]
    fn warm_start(
        &self,
        request: &Request,
        content: &RgbImage,
        styles: &[(Arc<RgbImage>, f32)],
    ) -> Option<RgbImage> {
        let refs: Vec<(&RgbImage, f32)> = styles.iter().map(|(i, w)| (i.as_ref(), *w)).collect();
        let options = Options {
            alpha: request.strength.alpha(),
            preserve_color: request.preserve_colors,
            max_side: self.quality.size(),
        };
        self.registry
            .current()
            .stylize(content, &refs, &options)
            .map_err(|e| tracing::warn!("no warm start for quality mode: {e}"))
            .ok()
    }

    /// Quality mode, when this build has it.
    fn paint_quality(
        &self,
        request: &Request,
        content: &RgbImage,
        progress: &mut dyn FnMut(Progress) -> Flow,
    ) -> Result<RgbImage, EngineError> {
        #[cfg(feature = "quality")]
        {
            let styles = self.styles(request)?;
            // The fast model's picture of the same photo and style: the user sees it within a
            // second, and the optimisation starts from it instead of from the photo.
            let warm = self.warm_start(request, content, &styles);
            if let Some(warm) = &warm {
                let first = Progress {
                    fraction: 0.0,
                    eta: Duration::ZERO,
                    preview: jpeg(warm).ok(),
                };
                if progress(first) == Flow::Stop {
                    return Err(EngineError::Cancelled);
                }
            }
            self.quality
                .paint(request, content, warm.as_ref(), &styles, progress)
        }
        #[cfg(not(feature = "quality"))]
        {
            let _ = (request, content, progress);
            Err(EngineError::BadRequest(
                "quality mode is not in this build (built without the `quality` feature)".into(),
            ))
        }
    }
}

impl Engine for LocalEngine {
    fn paintings(&self) -> Vec<PaintingInfo> {
        self.paintings
            .all()
            .iter()
            .map(|p| PaintingInfo {
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
                let image = self.painting_image(id)?;
                Ok(images::fit_max_side(image.as_ref().clone(), 256))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        jpeg(&images::contact_sheet(&[thumbs], 256))
    }

    fn check_image(&self, bytes: &[u8]) -> Result<(u32, u32), EngineError> {
        let image = self
            .decoded
            .get_or_decode(bytes, || images::decode(bytes, &self.config.limits))
            .map_err(imaging_error)?;
        Ok(image.dimensions())
    }

    fn run(
        &self,
        request: &Request,
        progress: &mut dyn FnMut(Progress) -> Flow,
    ) -> Result<Output, EngineError> {
        let start = Instant::now();
        let content = self
            .decoded
            .get_or_decode(&request.content, || {
                images::decode(&request.content, &self.config.limits)
            })
            .map_err(imaging_error)?;
        let mut stages = vec![("decode".to_owned(), start.elapsed().as_secs_f64())];
        let result = match request.mode {
            Mode::Fast => {
                let (image, times) = self.paint_fast(request, &content)?;
                stages.push(("style".to_owned(), times.style.as_secs_f64()));
                stages.push(("network".to_owned(), times.network.as_secs_f64()));
                image
            }
            Mode::Quality => {
                let painting = Instant::now();
                let image = self.paint_quality(request, &content, progress)?;
                stages.push(("optimise".to_owned(), painting.elapsed().as_secs_f64()));
                image
            }
        };
        let encoding = Instant::now();
        let picture = jpeg(&result)?;
        stages.push(("encode".to_owned(), encoding.elapsed().as_secs_f64()));
        Ok(Output {
            picture,
            seconds: start.elapsed().as_secs_f64(),
            stages,
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

    fn placement(&self) -> Placement {
        let current = self.registry.current();
        #[cfg(feature = "quality")]
        let quality = self.quality.provider();
        #[cfg(not(feature = "quality"))]
        let quality = "not built";
        let cpu = stylegram_inference::cpu::CpuFeatures::detect();
        Placement {
            fast: current.model().provider().to_string(),
            model: current.model().manifest().name.clone(),
            quality: quality.to_owned(),
            cpu: format!("{cpu}; int8: {}", cpu.int8_arithmetic()),
        }
    }
}
