//! Quality mode in the local engine: the Gatys optimiser on a pool of VGG copies, started from the
//! fast model's picture of the same photo and style (see `docs/gatys.md`, "Warm starts").
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;
use stylegram_engine::{EngineError, Flow, Progress, Request};
use stylegram_inference::runtime::Device;
use stylegram_quality::gatys::{self, Style};
use stylegram_quality::vgg::{Precision, Vgg};

use crate::{LocalConfig, jpeg};

/// Gatys on libtorch, with the settings the engine was opened with.
pub(crate) struct QualityMode {
    device: tch::Device,
    vgg_path: PathBuf,
    size: u32,
    iterations: Option<usize>,
    time_budget: Option<Duration>,
    preview_interval: Duration,
    /// Idle VGG copies: a quality job takes one (loading another when none is idle) and puts it
    /// back, so concurrent jobs never share one (`tch` tensors are not `Sync`).
    vggs: Mutex<Vec<Vgg>>,
}

impl QualityMode {
    /// Picks libtorch's device for `device` ("auto" means CUDA when libtorch sees one).
    pub(crate) fn new(config: &LocalConfig, device: Device) -> Result<Self, EngineError> {
        let device = match device {
            Device::Auto => gatys::default_device(),
            Device::Cpu => tch::Device::Cpu,
            Device::Cuda if tch::Cuda::is_available() => tch::Device::Cuda(0),
            Device::Cuda => {
                return Err(EngineError::BadRequest(
                    "device cuda, but libtorch sees no CUDA device".into(),
                ));
            }
        };
        if device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        Ok(QualityMode {
            device,
            vgg_path: config.vgg.clone(),
            size: config.quality_size,
            iterations: config.quality_iterations,
            time_budget: config.quality_time_budget,
            preview_interval: config.preview_interval,
            vggs: Mutex::new(Vec::new()),
        })
    }

    /// Where quality mode runs: "CPU" or "CUDA".
    pub(crate) fn provider(&self) -> &'static str {
        if self.device.is_cuda() { "CUDA" } else { "CPU" }
    }

    fn take_vgg(&self) -> Result<Vgg, EngineError> {
        if let Some(vgg) = self.vggs.lock().expect("vgg lock").pop() {
            return Ok(vgg);
        }
        Vgg::load(&self.vgg_path, self.device)
            .map(|vgg| vgg.with_precision(Precision::auto(self.device)))
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    /// The longer side of quality results (the warm start is made at this size).
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// Paints `content` in `styles` with the quality preset, its β scaled by the request's
    /// strength, starting from `start` when given; previews go out at most every
    /// `preview_interval`.
    pub(crate) fn paint(
        &self,
        request: &Request,
        content: &RgbImage,
        start: Option<&RgbImage>,
        styles: &[(Arc<RgbImage>, f32)],
        progress: &mut dyn FnMut(Progress) -> Flow,
    ) -> Result<RgbImage, EngineError> {
        let styles: Vec<Style> = styles
            .iter()
            .map(|(image, weight)| Style {
                image: gatys::fit_long_side(image, self.size),
                weight: f64::from(*weight),
            })
            .collect();
        let mut config = gatys::quality_mode();
        config.size = self.size;
        if let Some(iterations) = self.iterations {
            config.iterations = iterations;
        }
        config.time_budget = self.time_budget;
        config.style_weight *= request.strength.style_weight_factor();
        config.preserve_color = request.preserve_colors;
        config.preview_every = 5;
        let vgg = self.take_vgg()?;
        let mut cancelled = false;
        let mut last_preview: Option<Instant> = start.map(|_| Instant::now());
        let output = gatys::optimize_from(&vgg, content, start, &styles, &config, |p| {
            let due = last_preview.is_none_or(|t| t.elapsed() >= self.preview_interval);
            let preview = match (&p.preview, due) {
                (Some(image), true) => {
                    last_preview = Some(Instant::now());
                    jpeg(image).ok()
                }
                _ => None,
            };
            match progress(Progress {
                fraction: p.fraction,
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
