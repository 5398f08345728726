//! AdaIN training (Huang & Belongie 2017): a frozen VGG16 encoder up to relu4_1, AdaIN, and a
//! decoder trained so that the encoder of its output matches the AdaIN target (content loss) and the
//! style image's feature statistics (style loss).
//!
//! One iteration: encode a batch of content crops `c` and style crops `s`; `t = AdaIN(f(c), f(s))`;
//! `g(t)` is the decoder's image; the loss ([`loss`]) compares `f(g(t))` with `t` and with the
//! statistics of `f(s)`; Adam updates the decoder alone.
pub mod checkpoint;
pub mod data;
pub mod loss;
pub mod mlflow;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::TrainingError;
use crate::adain::{adain, mean_std};
use crate::decoder::{Decoder, LAYERS, Layer};
pub use checkpoint::Resume;
use data::{Batch, ImageFolder, Loader, Sampling};
use loss::{LayerScales, StyleTargets};
pub use report::{Metrics, Record, sample_sheet};
use stylegram_quality::adam::Adam;
use stylegram_quality::vgg::Vgg;

/// Number precision of the forward and backward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32 (TF32 convolutions where cuDNN allows).
    F32,
    /// Mixed precision: convolutions in bf16; weights, AdaIN statistics and losses in f32. bf16
    /// keeps f32's exponent range, so no loss scaling is needed (tch has no GradScaler, and its
    /// `autocast` picks fp16).
    Bf16,
}

/// Everything a training run is configured by.
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    /// Folder of content photos (searched recursively).
    pub content: PathBuf,
    /// Folder of style pictures (searched recursively).
    pub style: PathBuf,
    /// Batch size, resize and crop, seed.
    #[serde(skip)]
    pub sampling: Sampling,
    /// Stop after this many iterations in total.
    pub iterations: u64,
    /// Stop after this much training time in this session.
    pub max_time: Option<Duration>,
    /// Adam's base learning rate.
    pub lr: f64,
    /// lr / (1 + decay · iteration).
    pub lr_decay: f64,
    /// λ, the style loss weight.
    pub style_weight: f64,
    /// Divide each layer's loss by its squared mean activation (see [`loss`]).
    pub normalise_layers: bool,
    /// Precision of the passes.
    pub precision: Precision,
    /// Record losses every this many iterations.
    pub log_every: u64,
    /// Write a checkpoint (and refresh the plot and samples) every this many iterations.
    pub checkpoint_every: u64,
    /// Image decoding threads.
    pub threads: usize,
    /// Iterations decoded ahead.
    pub prefetch: usize,
}

/// The run folder's layout.
pub struct RunPaths {
    /// `runs/<id>/`.
    pub dir: PathBuf,
}

impl RunPaths {
    /// The layout under `dir`.
    pub fn new(dir: &Path) -> Self {
        RunPaths {
            dir: dir.to_owned(),
        }
    }
    /// The latest checkpoint folder.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }
    /// One JSON object per logged iteration.
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }
    /// The loss curves.
    pub fn loss_plot(&self) -> PathBuf {
        self.dir.join("loss.png")
    }
    /// The latest sample grid.
    pub fn samples(&self) -> PathBuf {
        self.dir.join("samples.jpg")
    }
}

/// What a training session reports while it runs.
#[derive(Debug, Clone, Copy)]
pub struct TrainingProgress {
    /// Iterations completed.
    pub iteration: u64,
    /// Losses at the last logged iteration.
    pub content: f64,
    /// Unweighted style loss.
    pub style: f64,
    /// Iterations per second in this session.
    pub iterations_per_s: f64,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Iterations completed in total.
    pub iterations: u64,
    /// Iterations per second in this session.
    pub iterations_per_s: f64,
    /// Achieved convolution throughput in TFLOP/s (see [`iteration_flops`]).
    pub tflops: f64,
    /// Content and style losses of the last logged iteration.
    pub content: f64,
    /// Unweighted style loss of the last logged iteration.
    pub style: f64,
}

/// Convolution FLOPs (2 per multiply–add) of one image through the encoder up to relu4_1 and of one
/// through the decoder, at `side`×`side`.
pub fn network_flops(vgg: &Vgg, side: i64) -> Result<(f64, f64), TrainingError> {
    let mut encoder = 0.0;
    let mut s = side as f64;
    for (_, pool_before, weight, _) in vgg.layers_until("relu4_1")? {
        if pool_before {
            s /= 2.0;
        }
        let w = weight.size();
        encoder += 2.0 * (w[0] * w[1] * 9) as f64 * s * s;
    }
    let mut decoder = 0.0;
    for layer in LAYERS {
        match layer {
            Layer::Upsample => s *= 2.0,
            Layer::Conv { input, output } => decoder += 2.0 * (input * output * 9) as f64 * s * s,
        }
    }
    Ok((encoder, decoder))
}

/// FLOPs of one training iteration: per image, the encoder runs forward on the content, the style
/// and the output, and backward (input gradients only) through the output; the decoder runs
/// forward and backward (input and weight gradients): 4 encoder passes and 3 decoder passes.
pub fn iteration_flops(vgg: &Vgg, sampling: &Sampling) -> Result<f64, TrainingError> {
    let (encoder, decoder) = network_flops(vgg, i64::from(sampling.crop))?;
    Ok(sampling.batch as f64 * (4.0 * encoder + 3.0 * decoder))
}

/// A training session: the frozen encoder, the decoder being trained, and its optimiser.
pub struct Trainer {
    vgg: Vgg,
    vs: VarStore,
    decoder: Decoder,
    names: Vec<String>,
    optimizers: Vec<Adam>,
    config: TrainConfig,
    scales: LayerScales,
    iteration: u64,
    elapsed_before: f64,
    /// The iteration this session warm-started from (weights only), for the record.
    warm_start_at: Option<u64>,
    paths: RunPaths,
    tracker: Option<mlflow::MlflowRun>,
}

fn images_to_tensor(bytes: &[u8], sampling: &Sampling, device: Device, kind: Kind) -> Tensor {
    let side = i64::from(sampling.crop);
    Tensor::from_slice(bytes)
        .view([sampling.batch as i64, 3, side, side])
        .to_device(device)
        .to_kind(kind)
        / 255.0
}

impl Trainer {
    /// Prepares a run in `run_dir`: a fresh decoder, or the checkpoint in `resume` (a checkpoint
    /// folder) with its iteration, loss scales and, for [`Resume::Exact`], optimiser state.
    pub fn new(
        vgg: Vgg,
        config: TrainConfig,
        run_dir: &Path,
        resume: Option<(&Path, Resume)>,
        content: &ImageFolder,
        style: &ImageFolder,
    ) -> Result<Self, TrainingError> {
        let device = vgg.device();
        let (iteration, scales, elapsed_before, state) = match resume {
            Some((dir, _)) => {
                let state = checkpoint::read_state(dir)?;
                (
                    state.iteration,
                    LayerScales(state.layer_scales),
                    state.elapsed_s,
                    Some(state),
                )
            }
            None if config.normalise_layers => {
                // Four batches from a separate random stream, so training batches stay untouched.
                let probe = Sampling {
                    seed: config.sampling.seed ^ 0x5CA1E,
                    ..config.sampling
                };
                let mut pixels = Vec::new();
                for i in 0..4 {
                    let b = data::make_batch(content.files(), style.files(), &probe, i)
                        .map_err(TrainingError::InvalidConfig)?;
                    pixels.extend(b.content);
                    pixels.extend(b.style);
                }
                let side = i64::from(probe.crop);
                let images = Tensor::from_slice(&pixels)
                    .view([-1, 3, side, side])
                    .to_device(device)
                    .to_kind(Kind::Float)
                    / 255.0;
                (0, LayerScales::measure(&vgg, &images)?, 0.0, None)
            }
            None => (0, LayerScales::NONE, 0.0, None),
        };
        let mut vs = VarStore::new(device);
        let decoder = Decoder::new(&vs.root(), 1.0 / scales.0[3]);
        let variables = vs.variables();
        let mut names: Vec<String> = variables
            .iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        let mut optimizers: Vec<Adam> = names
            .iter()
            .map(|n| Adam::new(config.lr, &variables[n]))
            .collect();
        let mut warm_start_at = None;
        if let (Some((dir, how)), Some(state)) = (resume, &state) {
            checkpoint::restore(dir, &mut vs, &names, &mut optimizers, state, how)?;
            if how == Resume::WarmStart {
                warm_start_at = Some(state.iteration);
            }
            tracing::info!(
                "resumed from {} at iteration {} ({how:?})",
                dir.display(),
                state.iteration
            );
        }
        std::fs::create_dir_all(run_dir).map_err(|source| TrainingError::Io {
            path: run_dir.to_owned(),
            source,
        })?;
        Ok(Trainer {
            vgg,
            vs,
            decoder,
            names,
            optimizers,
            config,
            scales,
            iteration,
            elapsed_before,
            warm_start_at,
            paths: RunPaths {
                dir: run_dir.to_owned(),
            },
            tracker: None,
        })
    }

    /// Also reports metrics and pictures to an MLflow run.
    pub fn track_with(&mut self, run: mlflow::MlflowRun) {
        self.tracker = Some(run);
    }

    /// The loss's per-layer normalisation in use.
    pub fn scales(&self) -> LayerScales {
        self.scales
    }

    /// Iterations completed so far.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The run folder.
    pub fn paths(&self) -> &RunPaths {
        &self.paths
    }

    /// The decoder's variables (`conv{i}.weight` / `conv{i}.bias`).
    pub fn variables(&self) -> std::collections::HashMap<String, Tensor> {
        self.vs.variables()
    }

    /// One optimisation step on `batch`; returns the loss (f32 scalars, not synchronised).
    fn step(&mut self, batch: &Batch) -> Result<loss::Loss, TrainingError> {
        let device = self.vgg.device();
        let kind = match self.config.precision {
            Precision::F32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        };
        let content = images_to_tensor(&batch.content, &self.config.sampling, device, kind);
        let style = images_to_tensor(&batch.style, &self.config.sampling, device, kind);
        let targets = StyleTargets::new(&self.vgg, &style)?;
        let t = tch::no_grad(|| -> Result<Tensor, TrainingError> {
            let f = self.vgg.activations(&content, &["relu4_1"])?.remove(0);
            Ok(adain(&f, &targets.relu4_1))
        })?;
        let output = self.decoder.forward_in(&t, kind);
        let loss = loss::loss(
            &self.vgg,
            &output,
            &t,
            &targets,
            &self.scales,
            self.config.style_weight,
        )?;
        loss.total.backward();
        let lr = self.config.lr / (1.0 + self.config.lr_decay * self.iteration as f64);
        let mut variables = self.vs.variables();
        for (name, adam) in self.names.iter().zip(self.optimizers.iter_mut()) {
            let var = variables.get_mut(name).expect("names come from the store");
            let grad = var.grad();
            adam.set_lr(lr);
            adam.step(var, &grad);
            var.zero_grad();
        }
        self.iteration += 1;
        Ok(loss)
    }

    /// Trains until the iteration count or the time limit is reached, writing metrics, checkpoints,
    /// the loss plot and sample grids (and sending them to MLflow when tracking); `progress` is
    /// called at every logged iteration.
    pub fn run(
        &mut self,
        content: &ImageFolder,
        style: &ImageFolder,
        progress: impl FnMut(&TrainingProgress),
    ) -> Result<Summary, TrainingError> {
        let result = self.train(content, style, progress);
        if let Some(tracker) = &mut self.tracker
            && let Err(e) = tracker.finish(result.is_ok())
        {
            tracing::warn!("{e}");
        }
        result
    }

    fn train(
        &mut self,
        content: &ImageFolder,
        style: &ImageFolder,
        mut progress: impl FnMut(&TrainingProgress),
    ) -> Result<Summary, TrainingError> {
        let sampling = self.config.sampling;
        let flops = iteration_flops(&self.vgg, &sampling)?;
        let mut metrics = Metrics::open(&self.paths.metrics(), self.iteration)?;
        let samples = report::SampleSet::new(content, style, sampling.crop, self.vgg.device())?;
        let mut loader = Loader::start(
            content,
            style,
            sampling,
            self.iteration,
            self.config.threads,
            self.config.prefetch,
        );
        let start = Instant::now();
        let first = self.iteration;
        let mut last = TrainingProgress {
            iteration: self.iteration,
            content: f64::NAN,
            style: f64::NAN,
            iterations_per_s: 0.0,
        };
        while self.iteration < self.config.iterations
            && self.config.max_time.is_none_or(|t| start.elapsed() < t)
        {
            let batch = loader.next_batch()?;
            let loss = self.step(&batch)?;
            let done = self.iteration >= self.config.iterations
                || self.config.max_time.is_some_and(|t| start.elapsed() >= t);
            if self.iteration.is_multiple_of(self.config.log_every) || done {
                let content_loss = loss.content.double_value(&[]);
                let style_loss = loss.style.double_value(&[]);
                if !(content_loss.is_finite() && style_loss.is_finite()) {
                    return Err(TrainingError::InvalidConfig(format!(
                        "the loss became non-finite at iteration {} (content {content_loss}, \
                         style {style_loss}); lower --lr or use --precision f32",
                        self.iteration
                    )));
                }
                let seconds = start.elapsed().as_secs_f64();
                last = TrainingProgress {
                    iteration: self.iteration,
                    content: content_loss,
                    style: style_loss,
                    iterations_per_s: (self.iteration - first) as f64 / seconds.max(1e-9),
                };
                let record = report::Record {
                    iteration: self.iteration,
                    content: content_loss,
                    style: style_loss,
                    total: content_loss + self.config.style_weight * style_loss,
                    lr: self.config.lr / (1.0 + self.config.lr_decay * self.iteration as f64),
                    elapsed_s: self.elapsed_before + seconds,
                    iterations_per_s: last.iterations_per_s,
                    tflops: last.iterations_per_s * flops / 1e12,
                };
                metrics.record(&record)?;
                if let Some(tracker) = &mut self.tracker
                    && let Err(e) = tracker.log_metrics(
                        record.iteration,
                        &[
                            ("loss", record.total),
                            ("content_loss", record.content),
                            ("style_loss", record.style),
                            ("lr", record.lr),
                            ("iterations_per_s", record.iterations_per_s),
                            ("tflops", record.tflops),
                        ],
                    )
                {
                    tracing::warn!("{e}");
                }
                progress(&last);
            }
            if self.iteration.is_multiple_of(self.config.checkpoint_every) || done {
                self.save(start.elapsed().as_secs_f64(), &metrics, &samples)?;
            }
        }
        if self.iteration == first {
            self.save(start.elapsed().as_secs_f64(), &metrics, &samples)?;
        }
        Ok(Summary {
            iterations: self.iteration,
            iterations_per_s: last.iterations_per_s,
            tflops: last.iterations_per_s * flops / 1e12,
            content: last.content,
            style: last.style,
        })
    }

    fn save(
        &mut self,
        seconds: f64,
        metrics: &Metrics,
        samples: &report::SampleSet,
    ) -> Result<(), TrainingError> {
        let state = checkpoint::State {
            iteration: self.iteration,
            layer_scales: self.scales.0,
            recipe: serde_json::json!({
                "config": self.config,
                "batch": self.config.sampling.batch,
                "resize": self.config.sampling.resize,
                "crop": self.config.sampling.crop,
                "seed": self.config.sampling.seed,
                "warm_start_at": self.warm_start_at,
            }),
            elapsed_s: self.elapsed_before + seconds,
            adam_steps: self.optimizers.first().map(|a| a.state().2 as u64),
        };
        checkpoint::save(
            &self.paths.checkpoint(),
            &self.vs,
            &self.names,
            &self.optimizers,
            &state,
        )?;
        if let Err(e) = metrics.plot(&self.paths.loss_plot()) {
            tracing::warn!("loss plot not drawn: {e}");
        }
        let sheet = samples.render(&self.vgg, &self.decoder)?;
        sheet
            .save(self.paths.samples())
            .map_err(|e| TrainingError::InvalidConfig(format!("writing samples: {e}")))?;
        if let Some(tracker) = &mut self.tracker {
            let uploaded = tracker.flush().and_then(|_| {
                let plot = tracker.log_artifact(&self.paths.loss_plot(), "loss.png")?;
                let samples = tracker.log_artifact(&self.paths.samples(), "samples.jpg")?;
                Ok(plot && samples)
            });
            match uploaded {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!("the MLflow server does not proxy artifacts; not uploaded")
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
        Ok(())
    }
}

/// Stylizes a batch of content images with one style each through `vgg` and `decoder` (`[N, 3, H, W]`
/// in [0, 1]; H and W multiples of 8), alpha = 1, in f32 without gradients.
pub fn paint_batch(
    vgg: &Vgg,
    decoder: &Decoder,
    content: &Tensor,
    style: &Tensor,
) -> Result<Tensor, TrainingError> {
    tch::no_grad(|| {
        let f = vgg.activations(content, &["relu4_1"])?.remove(0);
        let s = vgg.activations(style, &["relu4_1"])?.remove(0);
        let (mean, std) = mean_std(&s);
        let t = crate::adain::adain_with_stats(&f, &mean, &std);
        Ok(decoder.forward_in(&t, Kind::Float).clamp(0.0, 1.0))
    })
}
